"""Pathwise (reparameterization) gradient estimator."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor
from torch.distributions import Distribution

from reparam.estimators.base import CostFn, evaluate
from reparam.estimators.sampling import Sampler, draw, weights_for


@dataclass(frozen=True)
class Pathwise:
    r"""The reparameterization trick: differentiate through the sample.

    With ``z = g_\phi(\epsilon)``, :math:`\epsilon \sim p(\epsilon)` fixed noise,

    .. math::
        \nabla_\phi \mathbb{E}_{q_\phi}[f(z)]
        = \mathbb{E}_{p(\epsilon)}\big[\nabla_z f(g_\phi(\epsilon))\, \nabla_\phi g_\phi(\epsilon)\big]
        \approx \frac{1}{N} \sum_{n=1}^N \nabla_\phi f(g_\phi(\epsilon_n)).

    Unbiased whenever ``f`` is differentiable (almost everywhere, and Lipschitz enough to swap
    gradient and expectation) and ``q`` has ``rsample`` (explicit or implicit
    reparameterization). Cost: ``num_samples`` evaluations of ``f`` plus one backward pass.

    Args:
        sampling: ``None`` (i.i.d. ``q.rsample``) or a sampler from
            :mod:`reparam.estimators.sampling` that lowers the variance without bias:
            ``Antithetic()``, ``Stratified()``, ``QMC()`` (randomised quasi-Monte Carlo),
            ``ImportanceSampling(scale)``. Samplers need a ``q`` whose standard-normal
            reparameterization is known (Gaussian families, ``Independent`` of them, univariate
            ``q`` with ``icdf``).

    References:
        Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014.
        Rezende, Mohamed & Wierstra, "Stochastic Backpropagation", ICML 2014.
        Mohamed, Rosca, Figurnov & Mnih, "Monte Carlo Gradient Estimation in Machine
        Learning", JMLR 2020, section 5.
    """

    sampling: Sampler | None = None

    def __call__(self, f: CostFn, q: Distribution, num_samples: int) -> Tensor:
        if not q.has_rsample:
            raise TypeError(
                f"estimator=Pathwise() needs a reparameterizable q, but {type(q).__name__} has no "
                "rsample. Use estimator=rp.ScoreFunction() (any q with log_prob), or wrap a "
                "continuous univariate q with a differentiable cdf in "
                "rp.distributions.Implicit(q)."
            )
        if self.sampling is None:
            z = q.rsample((num_samples,))
            return evaluate(f, z, q, num_samples).mean(0)
        z, log_w = draw(self.sampling, q, num_samples)
        costs = evaluate(f, z, q, num_samples)
        weights = weights_for(log_w, costs)
        return (costs if weights is None else weights * costs).mean(0)

    def evaluations(self, q: Distribution, num_samples: int) -> int:
        return num_samples
