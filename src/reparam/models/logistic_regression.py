r"""Bayesian logistic regression with a Gaussian prior and a Gaussian variational posterior.

.. math::
    w \sim \mathcal N(0, \sigma_0^2 I_D), \qquad
    y_i \mid x_i, w \sim \operatorname{Bernoulli}(\operatorname{sigmoid}(x_i^\top w)),

    \log p(y \mid X, w) = \sum_i y_i\, x_i^\top w - \log(1 + e^{x_i^\top w}),

with :math:`q_\phi(w)` from one of :mod:`reparam.vi.families` (mean-field by default) and the
ELBO :math:`\frac{N}{B}\sum_{i \in \text{batch}} \mathbb E_q[\log p(y_i \mid x_i, w)] -
\mathrm{KL}(q \| p)`, the KL in closed form.

Reference: Jaakkola & Jordan, "Bayesian parameter estimation via variational methods",
Statistics and Computing 2000; Mohamed, Rosca, Figurnov & Mnih, "Monte Carlo Gradient
Estimation in Machine Learning", JMLR 2020, section 8.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import (
    Distribution,
    Independent,
    LowRankMultivariateNormal,
    MultivariateNormal,
    Normal,
)

from reparam.estimators.base import Estimator
from reparam.vi.elbo import elbo
from reparam.vi.families import make_family


def log_likelihood(w: Tensor, x: Tensor, y: Tensor) -> Tensor:
    r""":math:`\sum_i \log p(y_i \mid x_i, w)` for weights ``w`` shaped ``(S, D)`` (or ``(D,)``),
    features ``x`` shaped ``(B, D)`` and labels ``y`` in {0, 1} shaped ``(B,)``; returns ``(S,)``.

    Computed as ``-BCEWithLogits`` (``y l - softplus(l)``), finite for any logit ``l``.
    """
    logits = w @ x.T  # (S, B)
    targets = y.to(logits.dtype).expand_as(logits)
    return -F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(-1)


class BayesianLogisticRegression(nn.Module):
    """Variational Bayesian logistic regression over ``num_features`` weights.

    Args:
        num_features: ``D`` (include the bias column in ``x``: :func:`reparam.data.breast_cancer`
            adds one).
        prior_scale: :math:`\\sigma_0` of the :math:`\\mathcal N(0, \\sigma_0^2 I)` prior.
        family: ``"mean-field"``, ``"full-rank"`` or ``"low-rank"``.
        init_scale: initial posterior standard deviation.
        **family_options: passed to the family (e.g. ``rank=2``).

    Example:
        >>> x_batch, y_batch = torch.randn(32, 5), torch.randint(0, 2, (32,)).float()
        >>> model = rp.models.BayesianLogisticRegression(5)
        >>> loss = -model.elbo(x_batch, y_batch, num_samples=50, data_scale=455 / 32)
        >>> loss.backward()
    """

    def __init__(
        self,
        num_features: int,
        prior_scale: float = 1.0,
        family: str = "mean-field",
        init_scale: float = 1.0,
        dtype: torch.dtype | None = None,
        **family_options: object,
    ) -> None:
        super().__init__()
        if not prior_scale > 0:
            raise ValueError(f"prior_scale must be > 0, got {prior_scale}.")
        self.posterior = make_family(
            family, num_features, init_scale=init_scale, dtype=dtype, **family_options
        )
        self.prior_loc: Tensor
        self.prior_scale: Tensor
        self.register_buffer("prior_loc", torch.zeros(num_features, dtype=dtype))
        self.register_buffer("prior_scale", torch.full((num_features,), float(prior_scale), dtype=dtype))

    @property
    def num_features(self) -> int:
        return int(self.prior_loc.shape[0])

    def prior(self) -> Distribution:
        # the buffers are valid by construction; validation would read them on the host per step
        base = Normal(self.prior_loc, self.prior_scale, validate_args=False)
        return Independent(base, 1, validate_args=False)

    def q(self) -> Distribution:
        q: Distribution = self.posterior()
        return q

    def _check(self, x: Tensor, y: Tensor) -> None:
        if x.dim() != 2 or x.shape[1] != self.num_features:
            raise ValueError(
                f"x must be shaped (batch, {self.num_features}), got {tuple(x.shape)}; "
                "did you forget the bias column?"
            )
        if y.shape != x.shape[:1]:
            raise ValueError(f"y must be shaped ({x.shape[0]},) to match x, got {tuple(y.shape)}.")

    def elbo(
        self,
        x: Tensor,
        y: Tensor,
        estimator: Estimator | None = None,
        num_samples: int = 1,
        data_scale: float = 1.0,
        kl: str = "analytic",
    ) -> Tensor:
        """ELBO estimate on a batch, the likelihood scaled by ``data_scale`` (= N / B)."""
        self._check(x, y)
        return elbo(
            lambda w: log_likelihood(w, x, y),
            self.q(),
            estimator,
            num_samples,
            prior=self.prior(),
            kl=kl,  # type: ignore[arg-type]
            data_scale=data_scale,
        )

    def kl(self) -> Tensor:
        """``KL(q || prior)`` in closed form (for full- and low-rank ``q`` against the prior
        written as a ``MultivariateNormal`` with diagonal ``scale_tril``)."""
        q = self.q()
        if isinstance(q, (MultivariateNormal, LowRankMultivariateNormal)):
            tril = torch.diag_embed(self.prior_scale)
            prior: Distribution = MultivariateNormal(self.prior_loc, scale_tril=tril, validate_args=False)
        else:
            prior = self.prior()
        return torch.distributions.kl_divergence(q, prior)

    @torch.no_grad()
    def predict_proba(self, x: Tensor, num_samples: int = 1000) -> Tensor:
        r"""Posterior predictive
        :math:`p(y=1 \mid x) \approx \frac1S \sum_s \operatorname{sigmoid}(x^\top w_s)`."""
        w = self.q().sample((num_samples,))
        return torch.sigmoid(x @ w.T).mean(-1)

    @torch.no_grad()
    def accuracy(self, x: Tensor, y: Tensor, num_samples: int = 1000) -> float:
        """Fraction of rows whose predictive probability is on the side of the label."""
        self._check(x, y)
        predictions = (self.predict_proba(x, num_samples) > 0.5).long()
        return float((predictions == y).float().mean())
