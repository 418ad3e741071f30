"""Measure-valued (weak-derivative) gradient estimator."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Bernoulli, Distribution, Exponential, Independent, Normal, Poisson

from reparam.estimators.base import CostFn, creating_graph, evaluate, refuse_create_graph

# (parameter, constant c, positive samples, negative samples), all shaped like the base sample.
Decomposition = tuple[Tensor, Tensor, Tensor, Tensor]


def _work(z: Tensor) -> Tensor:
    """An empty tensor like ``z`` to draw noise in: float32 for half-precision ``z`` (CPU has
    no bfloat16/float16 kernel for ``poisson``, and half-precision uniforms are coarse); the
    decompositions cast the samples back to ``z.dtype``."""
    low = z.dtype in (torch.float16, torch.bfloat16)
    return torch.empty_like(z, dtype=torch.float32) if low else torch.empty_like(z)


def _uniform(like: Tensor) -> Tensor:
    """``U(0, 1)`` shaped like ``like`` from a factory call (not ``rand_like``/in-place draws),
    so ``vmap(..., randomness="same")`` can draw it."""
    return torch.rand(like.shape, dtype=like.dtype, device=like.device)


def _exp_noise(like: Tensor) -> Tensor:
    """``Exp(1)`` shaped like ``like``: ``-log(1 - U)``."""
    return -torch.log1p(-_uniform(like))


def _normal(q: Normal, z: Tensor) -> list[Decomposition]:
    loc, scale = q.loc.expand(q.batch_shape), q.scale.expand(q.batch_shape)
    mu, sigma = loc.detach(), scale.detach()
    w = _work(z)
    # d/d loc: c = 1/(sigma sqrt(2 pi)), p+ = mu + sigma W, p- = mu - sigma W, W ~ Rayleigh(1)
    # (Weibull(sqrt 2, 2)); the same W on both sides (common random numbers).
    rayleigh = torch.sqrt(2.0 * _exp_noise(w)).to(z.dtype)
    loc_term = (loc, 1.0 / (sigma * math.sqrt(2.0 * math.pi)), mu + sigma * rayleigh, mu - sigma * rayleigh)
    # d/d scale: c = 1/sigma, p+ = double-sided Maxwell(mu, sigma), p- = N(mu, sigma^2).
    # Coupling (Mohamed et al. 2020, section 7.2): if M is standard double-sided Maxwell and
    # U ~ U(0, 1) independent of it, M U ~ N(0, 1), so the negative side is built from the
    # positive side's M: p+ = mu + sigma M, p- = mu + sigma M U.
    # |M| ~ Chi(3): the norm of three standard normals (= sqrt(2 Gamma(3/2, 1)))
    sign = torch.where(_uniform(w) < 0.5, -1.0, 1.0)
    normals = torch.randn((3, *w.shape), dtype=w.dtype, device=w.device)
    maxwell = sign * normals.square().sum(0).sqrt()
    coupled = (maxwell * _uniform(w)).to(z.dtype)
    scale_term = (scale, 1.0 / sigma, mu + sigma * maxwell.to(z.dtype), mu + sigma * coupled)
    return [loc_term, scale_term]


def _exponential(q: Exponential, z: Tensor) -> list[Decomposition]:
    rate = q.rate.expand(q.batch_shape)
    lam = rate.detach()
    # d/d rate: c = 1/rate, p+ = Exp(rate), p- = Gamma(2, rate) = p+ + an independent Exp(rate).
    w = _work(z)
    first = _exp_noise(w).to(z.dtype) / lam
    second = _exp_noise(w).to(z.dtype) / lam
    return [(rate, 1.0 / lam, first, first + second)]


def _poisson(q: Poisson, z: Tensor) -> list[Decomposition]:
    rate = q.rate.expand(q.batch_shape)
    # d/d rate: c = 1, p+ = 1 + Poisson(rate), p- = Poisson(rate), sharing the draw.
    w = _work(z)
    k = torch.poisson(rate.detach().to(w.dtype).expand_as(w)).to(z.dtype)
    return [(rate, torch.ones_like(rate.detach()), k + 1.0, k)]


def _bernoulli(q: Bernoulli, z: Tensor) -> list[Decomposition]:
    probs = q.probs.expand(q.batch_shape)
    # d/d probs: c = 1, p+ = delta_1, p- = delta_0 (logits get the chain rule through probs).
    return [(probs, torch.ones_like(probs.detach()), torch.ones_like(z), torch.zeros_like(z))]


#: Families with a weak-derivative decomposition. Matched by exact type: a subclass may
#: change the law (and its parameters), so it is refused rather than decomposed wrongly.
SUPPORTED: tuple[type[Distribution], ...] = (Normal, Exponential, Poisson, Bernoulli)


def _base(q: Distribution) -> Distribution:
    while isinstance(q, Independent):
        q = q.base_dist
    return q


def _check_supported(q: Distribution) -> None:
    base = _base(q)
    if type(base) in SUPPORTED:
        return
    supported = ", ".join(k.__name__ for k in SUPPORTED)
    raise TypeError(
        f"MeasureValued() does not support {type(base).__name__}; it has weak derivatives for "
        f"{supported} (and Independent of them). Use rp.ScoreFunction() for any q with "
        "log_prob, or rp.Pathwise() for a q with rsample."
    )


def _decompose(base: Distribution, z: Tensor) -> list[Decomposition]:
    """The weak-derivative decompositions of ``base`` (one of :data:`SUPPORTED`) at ``z``."""
    if type(base) is Normal:
        return _normal(base, z)
    if type(base) is Exponential:
        return _exponential(base, z)
    if type(base) is Poisson:
        return _poisson(base, z)
    if type(base) is Bernoulli:
        return _bernoulli(base, z)
    _check_supported(base)  # raises the error naming the supported families
    raise AssertionError("unreachable: SUPPORTED and _decompose disagree")


class _WeakDerivative(torch.autograd.Function):
    """Zero in value; its backward hands ``param`` the gradient ``weight`` (the measure-valued
    estimate of the derivative of the expectation, a constant). It refuses a double-backward graph:
    the estimate is a difference of sampled costs with no graph in the parameters, so a
    derivative of it would be silently wrong. ``setup_context`` style with a generated vmap rule,
    so ``torch.func`` transforms and ``torch.compile`` trace through it."""

    generate_vmap_rule = True

    @staticmethod
    def forward(param: Tensor, weight: Tensor) -> Tensor:
        return torch.zeros_like(param)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Tensor], output: Tensor) -> None:
        param, weight = inputs
        ctx.save_for_backward(weight.to(param.dtype))

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        if creating_graph(grad_output):  # a create_graph=True backward
            refuse_create_graph("MeasureValued()")
        (weight,) = ctx.saved_tensors
        return grad_output * weight, None


@dataclass(frozen=True)
class MeasureValued:
    r"""Measure-valued gradients from weak derivatives, one parameter coordinate at a time.

    The derivative of a density in one parameter splits into a difference of two densities:
    :math:`\partial_\theta q_\theta(z) = c_\theta\,(q^+_\theta(z) - q^-_\theta(z))`, so

    .. math::
        \partial_{\theta_d} \mathbb{E}_{q_\theta}[f(z)]
        = c_{\theta_d}\big(\mathbb{E}_{q^+}[f(z^{+d})] - \mathbb{E}_{q^-}[f(z^{-d})]\big),

    where :math:`z^{\pm d}` is a sample of ``q`` whose ``d``-th coordinate is redrawn from
    :math:`q^\pm` (the other coordinates shared). Decompositions used (Mohamed et al. 2020,
    table 1): Normal loc: :math:`c = 1/(\sigma\sqrt{2\pi})`, :math:`\mu \pm \sigma W` with
    :math:`W` Rayleigh (Weibull(sqrt 2, 2)); Normal scale: :math:`c = 1/\sigma`,
    double-sided Maxwell minus Normal; Exponential rate: :math:`c = 1/\lambda`, Exponential
    minus Gamma(2, rate); Poisson rate: :math:`c = 1`, ``1 + Poisson`` minus Poisson;
    Bernoulli probs: :math:`c = 1`, 1 minus 0. Positive and negative samples share their
    random numbers (coupling), which lowers the variance without bias: the same Rayleigh
    :math:`W` on both sides for the Normal loc, and for the Normal scale the negative sample
    :math:`\mu + \sigma M U` built from the positive one's double-sided Maxwell :math:`M`
    (:math:`M U \sim N(0, 1)` for :math:`U \sim U(0, 1)`; Mohamed et al. 2020, section 7.2).
    With that coupling the one-sample variance of the d/dsigma estimate at
    :math:`x \sim N(1, 1)` is 4 for :math:`f = (x - 1)^2` and 8 for :math:`f = x^2`, the
    paper's figure 2.

    **First derivatives only.** The estimate is a difference of sampled costs with no graph in
    ``q``'s parameters, so a backward pass with ``create_graph=True`` through it raises a
    ``RuntimeError`` (a second derivative would be silently wrong); use :class:`Pathwise` or
    :class:`ScoreFunction` for Hessians. ``create_graph`` for parameters of ``f`` alone works.

    Unbiased for any integrable ``f`` (no differentiability needed). Gradients reach
    ``logits`` and anything upstream of the parameters by the chain rule. Cost:
    ``num_samples * (1 + 2 * P * D)`` evaluations of ``f`` (``P`` parameters of ``D``
    coordinates each), done in one batched call of ``f``. When ``f`` returns one cost per
    leading batch element, ``D`` is the number of coordinates per cost element: slices are
    perturbed together, since each cost depends only on its own slice.

    Example::

        q = Normal(loc, scale)  # loc, scale: leaves with requires_grad=True
        rp.expect(lambda z: (z - 1.0) ** 2, q, rp.MeasureValued(), num_samples=8).backward()

    Reference: Pflug, "Sampling derivatives of probabilities", Computing 1989; Mohamed, Rosca,
    Figurnov & Mnih, "Monte Carlo Gradient Estimation in Machine Learning", JMLR 2020,
    section 6.
    """

    def __call__(self, f: CostFn, q: Distribution, num_samples: int) -> Tensor:
        _check_supported(q)
        base = _base(q)
        with torch.no_grad():
            z = q.sample((num_samples,))
        costs = evaluate(f, z, q, num_samples)
        surrogate = costs.mean(0)

        # Cost element e depends only on its own batch slice (the same contract that lets the
        # score function credit each cost with its own log-prob), so coordinate j of every
        # slice is perturbed in the same call: ``inner`` variants, not one per coordinate.
        cost_dims = costs.dim() - 1
        outer = base.batch_shape[:cost_dims].numel()
        inner = base.batch_shape[cost_dims:].numel()
        flat = z.reshape(num_samples, outer, inner)
        terms = _decompose(base, z)
        mask = torch.eye(inner, dtype=torch.bool, device=z.device).reshape(inner, 1, 1, inner)
        batches = []
        for _, _, plus, minus in terms:
            for side in (plus, minus):
                side = side.detach().reshape(1, num_samples, outer, inner)
                batches.append(torch.where(mask, side, flat.unsqueeze(0)))
        count = len(batches) * inner * num_samples
        if count == 0:  # a size-0 batch: nothing to perturb; f is not called on an empty batch
            values = costs.new_zeros((len(terms), 2, inner, num_samples, outer))
        else:
            stacked = torch.cat(batches).reshape(count, *z.shape[1:])
            values = evaluate(f, stacked, q, count).detach()
            values = values.reshape(len(terms), 2, inner, num_samples, outer)
        for index, (param, constant, _, _) in enumerate(terms):
            difference = (values[index, 0] - values[index, 1]).mean(1)  # (inner, outer)
            weight = constant.reshape(outer, inner) * difference.transpose(0, 1)
            contribution = _WeakDerivative.apply(param.reshape(outer, inner), weight.to(param.dtype)).sum(-1)
            surrogate = surrogate + contribution.reshape(costs.shape[1:]).to(surrogate.dtype)
        return surrogate

    def evaluations(self, q: Distribution, num_samples: int) -> int:
        base = _base(q)
        terms = 2 if type(base) is Normal else 1
        return num_samples * (1 + 2 * terms * base.batch_shape.numel())
