r"""Problems on the distributions that gain ``rsample`` in :mod:`reparam.distributions`.

Each has an exact gradient, so ``reparam compare`` can show bias and variance of the pathwise
(implicit) estimator against the score function on the same footing:

* ``vonmises-cos``: :math:`z \sim \mathrm{VM}(\mu, \kappa)`, :math:`f = \cos(z - t)`,
  :math:`\mathbb{E}f = \cos(\mu - t) A(\kappa)` with :math:`A = I_1/I_0`,
  :math:`A'(\kappa) = 1 - A/\kappa - A^2`.
* ``gamma-log``: :math:`z \sim \mathrm{Gamma}(\alpha, \beta)`, :math:`f = \log z`,
  :math:`\mathbb{E}f = \psi(\alpha) - \log\beta`: gradient :math:`(\psi'(\alpha), -1/\beta)`.
  Keep ``alpha >= 0.05``: below that a noticeable share of samples underflow float64
  (:math:`P(z < 10^{-308}) \approx 10^{-308\alpha}`), and ``log z`` of a clamped sample is wrong.
* ``truncated-normal-square``: :math:`z \sim \mathrm{TN}(\mu, \sigma; a, b)`, :math:`f = z^2`,
  :math:`\mathbb{E}f = \mathrm{Var} + \mathrm{mean}^2` (Johnson, Kotz & Balakrishnan, ch. 13),
  differentiated by autograd through the closed-form moments; defaults put the interval six
  to eight scales above ``mu``.
* ``beta-square``: :math:`z \sim \mathrm{Beta}(a, b)`, :math:`\mathbb{E}z^2 = a(a+1)/((a+b)(a+b+1))`.
* ``mixture-square``: a three-component normal mixture, :math:`\mathbb{E}z^2 =
  \sum_k w_k(\mu_k^2 + \sigma_k^2)`, gradients in the logits and the means.

Reference: Figurnov, Mohamed & Mnih, "Implicit Reparameterization Gradients", NeurIPS 2018.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Categorical, Normal

from reparam.distributions import Beta, Gamma, MixtureSameFamily, TruncatedNormal, VonMises
from reparam.problems.base import ProblemInstance, register_problem
from reparam.problems.options import finite, leaf, positive

ESTIMATORS = ("pathwise", "reinforce", "reinforce-loo")


def _autograd_exact(moment: Tensor, params: list[Tensor]) -> tuple[Tensor, ...]:
    return tuple(g.detach() for g in torch.autograd.grad(moment, params))


@register_problem("vonmises-cos")
def vonmises_cos(mu: float = 0.5, kappa: float = 2.0, target: float = 0.0) -> ProblemInstance:
    r""":math:`\partial_\mu = -\sin(\mu - t)A(\kappa)`, :math:`\partial_\kappa = \cos(\mu - t)A'(\kappa)`."""
    mu, kappa, target = finite("mu", mu), positive("kappa", kappa), finite("target", target)
    loc, concentration = leaf(mu), leaf(kappa)
    ratio = float(
        torch.special.i1e(torch.tensor(kappa, dtype=torch.float64))
        / torch.special.i0e(torch.tensor(kappa, dtype=torch.float64))
    )
    d_ratio = 1.0 - ratio / kappa - ratio**2
    exact = (
        torch.tensor(-math.sin(mu - target) * ratio, dtype=torch.float64),
        torch.tensor(math.cos(mu - target) * d_ratio, dtype=torch.float64),
    )
    return ProblemInstance(
        name="vonmises-cos",
        f=lambda z: torch.cos(z - target),
        q=VonMises(loc, concentration),
        params=[loc, concentration],
        exact=exact,
        param_names=["mu", "kappa"],
        description=f"z ~ VonMises({mu:g}, {kappa:g}), f = cos(z - {target:g})",
        default_estimators=ESTIMATORS,
    )


@register_problem("gamma-log")
def gamma_log(alpha: float = 0.5, beta: float = 2.0) -> ProblemInstance:
    r""":math:`\nabla_{\alpha,\beta}\mathbb{E}\log z = (\psi'(\alpha), -1/\beta)`."""
    alpha, beta = positive("alpha", alpha), positive("beta", beta)
    concentration, rate = leaf(alpha), leaf(beta)
    exact = (
        torch.special.polygamma(1, torch.tensor(alpha, dtype=torch.float64)),
        torch.tensor(-1.0 / beta, dtype=torch.float64),
    )
    return ProblemInstance(
        name="gamma-log",
        f=torch.log,
        q=Gamma(concentration, rate),
        params=[concentration, rate],
        exact=exact,
        param_names=["alpha", "beta"],
        description=f"z ~ Gamma({alpha:g}, {beta:g}), f = log z, E f = digamma(alpha) - log(beta)",
        default_estimators=ESTIMATORS,
    )


@register_problem("truncated-normal-square")
def truncated_normal_square(
    mu: float = 0.0, sigma: float = 1.0, low: float = 6.0, high: float = 8.0
) -> ProblemInstance:
    r"""Gradient of :math:`\mathrm{Var} + \mathrm{mean}^2` in ``(mu, sigma)``, bounds fixed."""
    mu, sigma = finite("mu", mu), positive("sigma", sigma)
    low, high = float(low), float(high)
    if not low < high:
        raise ValueError(f"low must be < high, got low={low}, high={high}; use -inf/inf for no bound.")
    loc, scale = leaf(mu), leaf(sigma)
    q = TruncatedNormal(loc, scale, low, high)
    exact = _autograd_exact(q.variance + q.mean**2, [loc, scale])
    return ProblemInstance(
        name="truncated-normal-square",
        f=lambda z: z**2,
        q=q,
        params=[loc, scale],
        exact=exact,
        param_names=["mu", "sigma"],
        description=f"z ~ N({mu:g}, {sigma:g}^2) truncated to [{low:g}, {high:g}], f = z^2",
        default_estimators=ESTIMATORS,
    )


@register_problem("beta-square")
def beta_square(a: float = 0.5, b: float = 2.0) -> ProblemInstance:
    r""":math:`\mathbb{E}z^2 = a(a+1)/((a+b)(a+b+1))`, differentiated in ``(a, b)``."""
    a, b = positive("a", a), positive("b", b)
    ca, cb = leaf(a), leaf(b)
    exact = _autograd_exact(ca * (ca + 1) / ((ca + cb) * (ca + cb + 1)), [ca, cb])
    return ProblemInstance(
        name="beta-square",
        f=lambda z: z**2,
        q=Beta(ca, cb),
        params=[ca, cb],
        exact=exact,
        param_names=["a", "b"],
        description=f"z ~ Beta({a:g}, {b:g}), f = z^2",
        default_estimators=ESTIMATORS,
    )


@register_problem("mixture-square")
def mixture_square(spread: float = 2.0) -> ProblemInstance:
    r"""Weights ``softmax(logits)``, means ``(-spread, 0.5, spread)``, scales ``(0.5, 1, 1.5)``."""
    spread = finite("spread", spread)
    logits, locs = leaf([0.3, -0.2, 0.0]), leaf([-spread, 0.5, spread])
    scales = torch.tensor([0.5, 1.0, 1.5], dtype=torch.float64)
    w = torch.softmax(logits, -1)
    exact = _autograd_exact((w * (locs**2 + scales**2)).sum(), [logits, locs])
    return ProblemInstance(
        name="mixture-square",
        f=lambda z: z**2,
        q=MixtureSameFamily(Categorical(logits=logits), Normal(locs, scales)),
        params=[logits, locs],
        exact=exact,
        param_names=["logits", "locs"],
        description="z ~ 3-component normal mixture, f = z^2",
        default_estimators=ESTIMATORS,
    )
