r"""Bernoulli-latent VAE (sigmoid belief network encoder/decoder) as in the ARM and DisARM papers.

Generative model: :math:`b \sim \prod_i \mathrm{Bernoulli}(\sigma(\theta_i))` (200 latents,
learned prior logits), :math:`x \mid b \sim \prod_j \mathrm{Bernoulli}(\sigma(\mathrm{dec}(b)_j))`;
posterior :math:`q(b \mid x) = \prod_i \mathrm{Bernoulli}(\sigma(\mathrm{enc}(x)_i))`.

* ``"linear"``: encoder ``784 -> 200`` (one affine map to the logits), decoder ``200 -> 784``;
* ``"nonlinear"``: encoder ``784 -> 200 -> 200 -> 200`` with LeakyReLU(0.3) between layers,
  decoder mirrored ``200 -> 200 -> 200 -> 784``.

With ``categories=C >= 2`` the latents are categorical instead: ``latent`` one-hot variables of
``C`` classes each (the ``20 x 10`` categorical VAE of Jang et al. 2017 and the ARSM/CARMS
papers), :math:`q(b \mid x) = \prod_i \mathrm{OneHotCategorical}(\mathrm{enc}(x)_i)`, a learned
categorical prior, and the decoder reading the ``latent * C`` one-hot code.

The encoder sees the data minus the training mean, and the decoder's output bias starts at the
logit of the training mean (as in the DisARM reference code's setup). The ELBO is

.. math::
    \mathcal L(x) = \mathbb{E}_{q(b \mid x)}[\log p(x \mid b) + \log p(b)] + \mathcal H[q(b \mid x)],

with the entropy in closed form and the expectation's gradient from any discrete estimator:
``rp.expect(cost, q, estimator, num_samples)`` with ``cost(b) = -log p(x | b) - log p(b)``, one
cost per data point. :class:`~reparam.estimators.VIMCO` instead maximises the multi-sample bound
:math:`\log \frac1K \sum_k p(x, b_k)/q(b_k \mid x)`. ``cost`` accepts relaxed ``b`` in ``[0, 1]``
too (the prior and likelihood are written as cross-entropies), so the relaxation-based
estimators (Gumbel-softmax, REBAR, RELAX) work unchanged.

References: Yin & Zhou, ICLR 2019 (ARM), section 4; Dong, Mnih & Tucker, NeurIPS 2020 (DisARM),
section 6; Tucker et al., NeurIPS 2017 (REBAR).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Bernoulli, OneHotCategorical

from reparam.estimators.base import Estimator
from reparam.estimators.vimco import VIMCO
from reparam.expect import expect

ARCHITECTURES = ("linear", "nonlinear")


@dataclass(frozen=True)
class DiscreteVAEConfig:
    arch: str = "linear"
    latent: int = 200
    hidden: int = 200
    data_dim: int = 784
    categories: int = 0  # 0: Bernoulli latents; C >= 2: one-hot categorical latents of C classes

    def validate(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"arch must be one of {ARCHITECTURES}, got {self.arch!r}.")
        if self.latent < 1 or self.hidden < 1 or self.data_dim < 1:
            raise ValueError(f"latent, hidden and data_dim must be >= 1, got {self}.")
        if self.categories == 1 or self.categories < 0:
            raise ValueError(f"categories must be 0 (Bernoulli latents) or >= 2, got {self.categories}.")

    @property
    def code_dim(self) -> int:
        """Width of the encoder's output and the decoder's input."""
        return self.latent * self.categories if self.categories else self.latent


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(0.3))
    return nn.Sequential(*layers)


class DiscreteVAE(nn.Module):
    """Bernoulli-latent VAE; see the module docstring for the architectures and the objective."""

    def __init__(self, config: DiscreteVAEConfig | None = None, train_mean: Tensor | None = None) -> None:
        super().__init__()
        config = config or DiscreteVAEConfig()
        config.validate()
        self.config = config
        d, h, z = config.data_dim, config.hidden, config.code_dim
        if config.arch == "linear":
            self.encoder, self.decoder = _mlp([d, z]), _mlp([z, d])
        else:
            self.encoder, self.decoder = _mlp([d, h, h, z]), _mlp([z, h, h, d])
        prior_shape = (config.latent, config.categories) if config.categories else (z,)
        self.prior_logits = nn.Parameter(torch.zeros(prior_shape))
        mean = torch.full((d,), 0.5) if train_mean is None else train_mean.detach().float().reshape(d)
        self.input_mean: Tensor
        self.register_buffer("input_mean", mean.clone())
        with torch.no_grad():
            last = self.decoder[-1]
            assert isinstance(last, nn.Linear)
            last.bias.copy_(torch.logit(mean.clamp(1e-3, 1 - 1e-3)))

    def posterior(self, x: Tensor) -> Bernoulli | OneHotCategorical:
        """:math:`q(b \\mid x)`, batch shape ``(batch, latent)`` (categorical: event ``(C,)``)."""
        # logits need no validation (any real is valid; validating reads a value on the host)
        logits = self.encoder(x - self.input_mean)
        c = self.config.categories
        if c:
            return OneHotCategorical(logits=logits.unflatten(-1, (-1, c)), validate_args=False)
        return Bernoulli(logits=logits, validate_args=False)

    def log_prior(self, b: Tensor) -> Tensor:
        """:math:`\\log p(b)` summed over latents; ``b`` may be relaxed (values in [0, 1])."""
        theta = self.prior_logits
        if self.config.categories:
            return (b * F.log_softmax(theta, -1)).sum((-2, -1))
        return (b * F.logsigmoid(theta) + (1 - b) * F.logsigmoid(-theta)).sum(-1)

    def log_likelihood(self, x: Tensor, b: Tensor) -> Tensor:
        """:math:`\\log p(x \\mid b)` summed over pixels; ``b`` shaped ``(..., batch, latent)``
        (categorical: ``(..., batch, latent, C)``)."""
        if self.config.categories:
            b = b.flatten(-2)
        logits: Tensor = self.decoder(b)
        return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)

    def log_joint(self, x: Tensor, b: Tensor) -> Tensor:
        return self.log_likelihood(x, b) + self.log_prior(b)

    def cost(self, x: Tensor) -> Callable[[Tensor], Tensor]:
        """``b -> -log p(x, b)``: one cost per sample and data point, shape ``(n, batch)``."""

        def f(b: Tensor) -> Tensor:
            return -self.log_joint(x, b.to(x.dtype))

        return f

    def loss(self, x: Tensor, estimator: Estimator, num_samples: int = 1) -> tuple[Tensor, Tensor]:
        """``(loss, bound)``: the surrogate to minimise (mean over the batch of the negative
        ELBO, or of the negative multi-sample bound for VIMCO) and the per-data-point bound
        estimate (detached)."""
        return self.loss_given_posterior(x, self.posterior(x), estimator, num_samples)

    def loss_given_posterior(
        self, x: Tensor, q: Bernoulli | OneHotCategorical, estimator: Estimator, num_samples: int = 1
    ) -> tuple[Tensor, Tensor]:
        """:meth:`loss` with the posterior ``q`` given (e.g. logits as leaves, for diagnostics)."""
        if isinstance(estimator, VIMCO):

            def log_weights(b: Tensor) -> Tensor:
                log_q: Tensor = q.log_prob(b).sum(-1)
                return self.log_joint(x, b) - log_q

            bound = expect(log_weights, q, estimator, num_samples)
            return -bound.mean(), bound.detach()
        expected_cost = expect(self.cost(x), q, estimator, num_samples)
        entropy = q.entropy().sum(-1)
        elbo = entropy - expected_cost
        return -elbo.mean(), elbo.detach()

    @torch.no_grad()
    def importance_bound(self, x: Tensor, k: int = 100, chunk: int = 100) -> Tensor:
        """The ``k``-sample importance-weighted bound :math:`\\log \\frac1k \\sum_j p(x, b_j) /
        q(b_j \\mid x)` per data point (Burda et al. 2016), evaluated ``chunk`` rows at a time."""
        out = []
        for start in range(0, x.shape[0], chunk):
            xb = x[start : start + chunk]
            q = self.posterior(xb)
            b = q.sample((k,))
            log_w = self.log_joint(xb, b) - q.log_prob(b).sum(-1)
            out.append(torch.logsumexp(log_w, 0) - math.log(k))
        return torch.cat(out)

    @torch.no_grad()
    def elbo(self, x: Tensor, num_samples: int = 1) -> Tensor:
        """Monte Carlo ELBO per data point (analytic entropy)."""
        q = self.posterior(x)
        b = q.sample((num_samples,))
        entropy: Tensor = q.entropy().sum(-1)
        return self.log_joint(x, b).mean(0) + entropy


def encoder_gradient_variance(
    model: DiscreteVAE, x: Tensor, estimator: Estimator, num_samples: int = 1, repeats: int = 20
) -> float:
    """Mean over encoder parameters of the variance of one gradient estimate of the loss on the
    fixed batch ``x`` (``repeats`` independent draws): the quantity the ARM/DisARM papers plot."""
    params = list(model.encoder.parameters())
    draws = []
    for _ in range(repeats):
        loss, _ = model.loss(x, estimator, num_samples)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        pairs = zip(params, grads, strict=True)
        draws.append(
            torch.cat([torch.zeros_like(p).reshape(-1) if g is None else g.reshape(-1) for p, g in pairs])
        )
    return float(torch.stack(draws).var(0).mean())
