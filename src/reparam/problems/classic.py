r"""Classic one-line gradient-estimation problems with closed-form gradients.

* ``normal-quadratic``: :math:`x \sim N(\mu, \sigma^2)`, :math:`f = (x - k)^2`,
  :math:`\mathbb{E}f = (\mu - k)^2 + \sigma^2`.
* ``normal-cos``: :math:`f = \cos(\omega x)`,
  :math:`\mathbb{E}f = \cos(\omega\mu)\,e^{-\omega^2\sigma^2/2}` (the characteristic function of
  the normal): a highly oscillating ``f`` where the pathwise estimator loses to REINFORCE.
* ``exponential-sin``: :math:`z \sim \text{Exp}(\lambda)`,
  :math:`\mathbb{E}\sin z = \lambda/(1 + \lambda^2)` (the Laplace transform of ``sin``).
* ``bernoulli-offset``: :math:`b_i \sim \text{Bernoulli}(\sigma(\phi_i))`,
  :math:`f = \sum_i (b_i - t_i)^2 + c`: pathwise is impossible (discrete ``b``) and the
  constant offset ``c`` inflates plain REINFORCE's variance by about
  :math:`c^2\,\mathbb{E}\|\nabla\log q\|^2`, which a baseline removes.

Reference: Mohamed, Rosca, Figurnov & Mnih, "Monte Carlo Gradient Estimation in Machine
Learning", JMLR 2020, section 3 (the running examples) and section 8.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.distributions import Bernoulli, Exponential, Independent, Normal

from reparam.problems.base import ProblemInstance, register_problem
from reparam.problems.options import finite, leaf, positive

CONTINUOUS = ("pathwise", "reinforce", "reinforce-ma", "reinforce-loo", "measure-valued")


@register_problem("normal-quadratic")
def normal_quadratic(mu: float = 1.0, sigma: float = 1.0, k: float = 0.0) -> ProblemInstance:
    r""":math:`\nabla_{\mu,\sigma}\mathbb{E}_{N(\mu,\sigma^2)}[(x-k)^2] = (2(\mu-k),\ 2\sigma)`."""
    mu, sigma, k = finite("mu", mu), positive("sigma", sigma), finite("k", k)
    loc, scale = leaf(mu), leaf(sigma)
    exact = (
        torch.tensor(2.0 * (mu - k), dtype=torch.float64),
        torch.tensor(2.0 * sigma, dtype=torch.float64),
    )
    return ProblemInstance(
        name="normal-quadratic",
        f=lambda x: (x - k) ** 2,
        q=Normal(loc, scale),
        params=[loc, scale],
        exact=exact,
        param_names=["mu", "sigma"],
        description=f"x ~ N({mu:g}, {sigma:g}^2), f(x) = (x - {k:g})^2, E f = (mu - k)^2 + sigma^2",
        default_estimators=CONTINUOUS,
    )


@register_problem("normal-cos")
def normal_cos(mu: float = 1.0, sigma: float = 1.0, omega: float = 5.0) -> ProblemInstance:
    r""":math:`\mathbb{E}\cos(\omega x) = \cos(\omega\mu)e^{-\omega^2\sigma^2/2}`, so
    :math:`\partial_\mu = -\omega\sin(\omega\mu)e^{-\omega^2\sigma^2/2}` and
    :math:`\partial_\sigma = -\omega^2\sigma\cos(\omega\mu)e^{-\omega^2\sigma^2/2}`."""
    mu, sigma, omega = finite("mu", mu), positive("sigma", sigma), finite("omega", omega)
    loc, scale = leaf(mu), leaf(sigma)
    damp = math.exp(-0.5 * omega**2 * sigma**2)
    exact = (
        torch.tensor(-omega * math.sin(omega * mu) * damp, dtype=torch.float64),
        torch.tensor(-(omega**2) * sigma * math.cos(omega * mu) * damp, dtype=torch.float64),
    )
    return ProblemInstance(
        name="normal-cos",
        f=lambda x: torch.cos(omega * x),
        q=Normal(loc, scale),
        params=[loc, scale],
        exact=exact,
        param_names=["mu", "sigma"],
        description=(
            f"x ~ N({mu:g}, {sigma:g}^2), f(x) = cos({omega:g} x), E f = cos(w mu) exp(-(w sigma)^2 / 2)"
        ),
        default_estimators=CONTINUOUS,
    )


@register_problem("exponential-sin")
def exponential_sin(rate: float = 1.0) -> ProblemInstance:
    r""":math:`\mathbb{E}_{\text{Exp}(\lambda)}\sin z = \lambda/(1+\lambda^2)`, so
    :math:`\partial_\lambda = (1 - \lambda^2)/(1 + \lambda^2)^2`."""
    lam = positive("rate", rate)
    param = leaf(lam)
    exact = (torch.tensor((1.0 - lam**2) / (1.0 + lam**2) ** 2, dtype=torch.float64),)
    return ProblemInstance(
        name="exponential-sin",
        f=torch.sin,
        q=Exponential(param),
        params=[param],
        exact=exact,
        param_names=["rate"],
        description=f"z ~ Exp(rate={lam:g}) (z = -log(u) / rate), f(z) = sin z, E f = rate / (1 + rate^2)",
        default_estimators=CONTINUOUS,
    )


def _targets(targets: float | Sequence[float] | None, dims: int) -> Tensor:
    if targets is None:
        return torch.linspace(0.35, 0.65, dims, dtype=torch.float64) if dims > 1 else torch.full((1,), 0.45)
    values = torch.as_tensor(targets, dtype=torch.float64).reshape(-1)
    if values.numel() == 1:
        return values.expand(dims).clone()
    if values.numel() != dims:
        raise ValueError(f"targets has {values.numel()} values for dims={dims}; give one target or {dims}.")
    return values


@register_problem("bernoulli-offset")
def bernoulli_offset(
    dims: int = 4,
    logits: float = 0.0,
    offset: float = 10.0,
    targets: float | Sequence[float] | None = None,
) -> ProblemInstance:
    r"""Bernoulli latents where the baseline matters.

    :math:`b_i \sim \text{Bernoulli}(p_i)`, :math:`p_i = \sigma(\phi_i)`,
    :math:`f(b) = \sum_i (b_i - t_i)^2 + c`. Then
    :math:`\mathbb{E}f = \sum_i [p_i (1 - t_i)^2 + (1 - p_i) t_i^2] + c`, so
    :math:`\partial_{\phi_i}\mathbb{E}f = p_i(1 - p_i)(1 - 2 t_i)`: a small signal next to the
    offset ``c`` that multiplies every REINFORCE term.
    """
    if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
        raise ValueError(f"dims must be an int >= 1, got {dims!r}; e.g. dims=4.")
    offset = finite("offset", offset)
    t = _targets(targets, dims)
    phi = torch.full((dims,), finite("logits", logits), dtype=torch.float64, requires_grad=True)
    p = torch.sigmoid(phi.detach())
    exact = (p * (1.0 - p) * (1.0 - 2.0 * t),)
    return ProblemInstance(
        name="bernoulli-offset",
        f=lambda b: ((b - t) ** 2).sum(-1) + offset,
        q=Independent(Bernoulli(logits=phi), 1),
        params=[phi],
        exact=exact,
        param_names=["phi"],
        description=(
            f"b ~ Bernoulli(sigmoid(phi)), {dims} dims, f(b) = sum_i (b_i - t_i)^2 + {offset:g}: "
            "pathwise is impossible and the offset hurts REINFORCE without a baseline"
        ),
        default_estimators=("reinforce", "reinforce-ma", "reinforce-loo", "measure-valued"),
    )
