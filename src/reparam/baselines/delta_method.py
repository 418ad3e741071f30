"""Delta-method (second-order Taylor) control variate."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import (
    Bernoulli,
    Beta,
    Binomial,
    Categorical,
    Cauchy,
    ContinuousBernoulli,
    Dirichlet,
    Distribution,
    Exponential,
    Gamma,
    Geometric,
    Gumbel,
    HalfCauchy,
    HalfNormal,
    Independent,
    Laplace,
    LogNormal,
    LowRankMultivariateNormal,
    Multinomial,
    MultivariateNormal,
    NegativeBinomial,
    Normal,
    OneHotCategorical,
    Poisson,
    Uniform,
    VonMises,
    Weibull,
)

from reparam.baselines.base import ControlVariate, CostFn

# Families whose mean and variance are finite for every valid parameter: no check needed.
_FINITE_MOMENTS: tuple[type[Distribution], ...] = (
    Normal,
    MultivariateNormal,
    LowRankMultivariateNormal,
    Gamma,  # also Chi2
    Beta,
    Dirichlet,
    Exponential,
    Uniform,
    Laplace,
    LogNormal,
    HalfNormal,
    Gumbel,
    Weibull,
    VonMises,
    Bernoulli,
    ContinuousBernoulli,
    Binomial,
    Poisson,
    Geometric,
    NegativeBinomial,
    OneHotCategorical,
    Multinomial,
)
# Families with no mean at all, whatever the parameters.
_NO_MEAN: dict[type[Distribution], str] = {
    Categorical: "its outcomes are category labels, not numbers, so it has no mean (torch gives nan)",
    Cauchy: "it has no mean and infinite variance",
    HalfCauchy: "it has infinite mean and variance",
}
_ALTERNATIVE = "use baseline=LeaveOneOut() (num_samples >= 2) or MovingAverage() instead"


def check_moments(q: Distribution) -> None:
    """Raise a clear error if ``q`` lacks the finite mean and variance the expansion needs.

    Static for the common families (no host sync): ``_FINITE_MOMENTS`` (and ``Independent`` of
    them) pass, ``Categorical``, ``Cauchy`` and ``HalfCauchy`` are refused; any other family
    (``StudentT``, ``InverseGamma``, ``Pareto``, ... whose moments exist only for some
    parameters) is checked on its values, one host sync per call.
    """
    base = q
    while isinstance(base, Independent):
        base = base.base_dist
    if isinstance(base, _FINITE_MOMENTS):
        return
    for family, reason in _NO_MEAN.items():
        if isinstance(base, family):
            raise ValueError(
                f"DeltaMethod() expands f around the mean of q and needs q's variance, but q is "
                f"{type(q).__name__}: {reason}; {_ALTERNATIVE}."
            )
    for moment in ("mean", "variance"):
        try:
            value = getattr(q, moment)
        except NotImplementedError:
            raise ValueError(
                f"DeltaMethod() needs q.{moment}, which {type(q).__name__} does not implement; "
                f"{_ALTERNATIVE}."
            ) from None
        if not bool(torch.isfinite(value).all()):
            kind = "undefined (nan)" if bool(torch.isnan(value).any()) else "infinite"
            raise ValueError(
                f"DeltaMethod() needs a finite {moment} of q, but the {moment} of "
                f"{type(q).__name__} is {kind} at these parameters (e.g. InverseGamma needs "
                f"concentration > 2 for a finite variance, StudentT df > 2); {_ALTERNATIVE}."
            )


def _leave_one_out_coefficient(costs: Tensor, control: Tensor, eps: float = 1e-12) -> Tensor:
    """``beta_i = Cov(f, h) / Var(h)`` per cost element, estimated from every sample but ``i``."""
    n = costs.shape[0]
    if n < 3:
        return torch.ones_like(costs)
    m = n - 1
    s_f, s_h = costs.sum(0), control.sum(0)
    s_fh, s_hh = (costs * control).sum(0), (control * control).sum(0)
    mean_f = (s_f - costs) / m
    mean_h = (s_h - control) / m
    cov = (s_fh - costs * control) / m - mean_f * mean_h
    var = (s_hh - control * control) / m - mean_h * mean_h
    return torch.where(var > eps, cov / var.clamp_min(eps), torch.ones_like(var))


def _hessian_blocks(total: CostFn, point: Tensor, outer: int, inner: int) -> tuple[Tensor, Tensor, Tensor]:
    """Value, gradient ``(outer, inner)`` and per-slice Hessian blocks ``(outer, inner, inner)``
    of ``total(x) = sum_e f_e(x_e)``, a sum of functions of disjoint slices: one backward pass
    for the gradient, then one batched double-backward whose ``inner`` directions (coordinate
    ``j`` of every slice at once) give column ``j`` of every block. Under ``torch.compile`` the
    same products are taken with ``torch.func`` (:func:`_hessian_blocks_func`), which traces
    into one graph where ``torch.autograd.grad`` would not; likewise inside a ``torch.func``
    transform (a ``point`` wrapped by it), where ``requires_grad_`` is not allowed."""
    if torch.compiler.is_compiling() or torch._C._functorch.is_functorch_wrapped_tensor(point):
        return _hessian_blocks_func(total, point, outer, inner)
    with torch.enable_grad():
        x = point.detach().clone().requires_grad_(True)
        value = total(x)
        (gradient,) = torch.autograd.grad(value.sum(), x, create_graph=True)
        if gradient.requires_grad:
            basis = torch.eye(inner, dtype=point.dtype, device=point.device)
            directions = basis.unsqueeze(1).expand(inner, outer, inner).reshape(inner, *point.shape)
            try:
                (columns,) = torch.autograd.grad(gradient, x, directions, is_grads_batched=True)
            except RuntimeError:  # an op without a batching rule: one product at a time
                columns = torch.stack(
                    [torch.autograd.grad(gradient, x, d, retain_graph=True)[0] for d in directions]
                )
        else:  # f is linear in z
            columns = torch.zeros(inner, *point.shape, dtype=point.dtype, device=point.device)
    hessian = columns.detach().reshape(inner, outer, inner).permute(1, 2, 0)
    return value.detach(), gradient.detach().reshape(outer, inner), hessian


def _hessian_blocks_func(
    total: CostFn, point: Tensor, outer: int, inner: int
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`_hessian_blocks` with ``torch.func``: the gradient by ``grad``, the ``inner``
    Hessian-vector products by ``vmap`` over the ``vjp`` of the gradient (reverse over reverse,
    as in eager)."""
    x = point.detach()

    def summed(y: Tensor) -> tuple[Tensor, Tensor]:
        value = total(y)
        return value.sum(), value

    def gradient_of(y: Tensor) -> tuple[Tensor, Tensor]:
        found: tuple[Tensor, Tensor] = torch.func.grad(summed, has_aux=True)(y)
        return found

    gradient, vjp_fn, value = torch.func.vjp(gradient_of, x, has_aux=True)  # type: ignore[misc]
    basis = torch.eye(inner, dtype=point.dtype, device=point.device)
    directions = basis.unsqueeze(1).expand(inner, outer, inner).reshape(inner, *point.shape)
    (columns,) = torch.func.vmap(vjp_fn)(directions)
    hessian = columns.detach().reshape(inner, outer, inner).permute(1, 2, 0)
    return value.detach(), gradient.detach().reshape(outer, inner), hessian


def _event_covariance(q: Distribution) -> Tensor | None:
    """The covariance of one event of ``q`` shaped ``(*base.batch_shape, d, d)`` (``base``:
    ``q`` with its ``Independent`` wrappers taken off), or ``None`` when the event coordinates
    are independent (univariate ``base``), so that the variances suffice."""
    base = q
    while isinstance(base, Independent):
        base = base.base_dist
    if base.event_shape == torch.Size():
        return None
    if isinstance(base, OneHotCategorical | Multinomial):
        p = base.probs
        cov = torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)
        if isinstance(base, Multinomial):
            cov = base.total_count * cov
    elif isinstance(base, Dirichlet):
        total = base.concentration.sum(-1, keepdim=True)
        m = base.concentration / total
        cov = (torch.diag_embed(m) - m.unsqueeze(-1) * m.unsqueeze(-2)) / (total.unsqueeze(-1) + 1)
    else:
        try:
            found: object = base.covariance_matrix  # type: ignore[attr-defined]
        except (AttributeError, NotImplementedError):
            found = None
        if not isinstance(found, Tensor) or len(base.event_shape) != 1:
            raise ValueError(
                f"DeltaMethod() needs the covariance of q's events, and {type(base).__name__} "
                f"(event_shape {tuple(base.event_shape)}) has no covariance_matrix; {_ALTERNATIVE}."
            )
        cov = found
    d = base.event_shape[0]
    return cov.expand(*base.batch_shape, d, d)


def _trace_with_covariance(q: Distribution, hessian: Tensor, outer: int, inner: int) -> Tensor:
    """``tr(H_e Sigma_e)`` per cost element: the event covariance (block diagonal over the
    independent events inside a slice) for multivariate ``q``, the variances otherwise."""
    covariance = _event_covariance(q)
    if covariance is not None:
        d = covariance.shape[-1]
        blocks = inner // d
        cov = covariance.reshape(outer, blocks, d, d)
        h = hessian.reshape(outer, blocks, d, blocks, d)
        diagonal_blocks = torch.diagonal(h, dim1=1, dim2=3).permute(0, 3, 1, 2)  # (outer, blocks, d, d)
        return (diagonal_blocks * cov.to(h.dtype)).sum((-1, -2, -3))
    variance = q.variance.expand(q.batch_shape + q.event_shape).reshape(outer, inner)
    return (torch.diagonal(hessian, dim1=-2, dim2=-1) * variance.to(hessian.dtype)).sum(-1)


def _empty_expansion(f: CostFn, m: Tensor, cost_shape: torch.Size) -> tuple[CostFn, Tensor]:
    """The expansion when ``q`` has no coordinates (a size-0 batch dim): ``h`` is ``f(m)``."""
    with torch.no_grad():
        f_m = f(m.unsqueeze(0))[0].reshape(cost_shape)

    def h(z: Tensor) -> Tensor:
        return f_m.expand(z.shape[0], *cost_shape)

    return h, f_m


def taylor_expansion(
    f: CostFn, q: Distribution, cost_shape: torch.Size | tuple[int, ...] = ()
) -> tuple[CostFn, Tensor]:
    r"""``(h, E_q[h])``: the second-order expansion of ``f`` at ``q``'s detached mean
    :math:`m`, :math:`h(z) = f(m) + g^\top(z - m) + \tfrac12 (z - m)^\top H (z - m)`, and its
    expectation under ``q``, differentiable in ``q``'s parameters through its mean and
    (co)variance. With costs shaped ``(N, *cost_shape)`` each cost element gets the expansion
    of its own batch slice. ``h(z)`` is differentiable in ``z`` (for pathwise use)."""
    cost_shape = torch.Size(cost_shape)
    mean = q.mean
    m = mean.detach()
    outer = cost_shape.numel()
    if m.numel() == 0:  # an empty batch: no variables, so f is a constant expansion
        return _empty_expansion(f, m, cost_shape)
    inner = m.numel() // outer

    def total(x: Tensor) -> Tensor:
        costs = f(x.unsqueeze(0))
        if costs.shape[1:] != cost_shape:
            wanted = f"costs shaped {tuple(cost_shape)}" if cost_shape else "one cost"
            raise ValueError(
                f"the delta-method expansion needs {wanted} per sample (f returning shape "
                f"{str(('num_samples', *cost_shape)).replace(chr(39), '')}), like the estimate it controls; "
                f"got {tuple(costs.shape[1:])} per sample. Sum the costs inside f."
            )
        return costs.reshape(outer)

    f_m, gradient, hessian = _hessian_blocks(total, m, outer, inner)

    def h(z: Tensor) -> Tensor:
        dz = (z - m).reshape(z.shape[0], outer, inner).to(hessian.dtype)
        quadratic = torch.einsum("noi,oij,noj->no", dz, hessian, dz)
        return (f_m + torch.einsum("noi,oi->no", dz, gradient) + 0.5 * quadratic).reshape(
            z.shape[0], *cost_shape
        )

    dmu = (mean - m).reshape(outer, inner).to(hessian.dtype)
    trace = _trace_with_covariance(q, hessian, outer, inner)
    expected = (
        f_m + (gradient * dmu).sum(-1) + 0.5 * (trace + torch.einsum("oi,oij,oj->o", dmu, hessian, dmu))
    )
    return h, expected.reshape(cost_shape)


@dataclass(frozen=True)
class DeltaMethod:
    r"""Control variate from the second-order Taylor expansion of ``f`` at the mean of ``q``.

    With :math:`m = \mathbb{E}_q[z]` (held fixed), gradient :math:`g` and Hessian :math:`H` of
    ``f`` at ``m``,

    .. math::
        h(z) = f(m) + g^\top (z - m) + \tfrac12 (z - m)^\top H (z - m), \qquad
        \mathbb{E}_q[h] = f(m) + g^\top(\mu_\phi - m)
            + \tfrac12\big(\operatorname{tr}(H\Sigma_\phi) + (\mu_\phi - m)^\top H (\mu_\phi - m)\big),

    and the estimator is
    :math:`\frac1N\sum_i (f(z_i) - \beta_i h(z_i))\nabla\log q(z_i) + \bar\beta\,\nabla\mathbb{E}_q[h]`.
    :math:`\mathbb{E}_q[h]` needs only the mean and covariance of ``q`` (the event covariance
    for multivariate families: normals, ``OneHotCategorical``, ``Multinomial``, ``Dirichlet``,
    ``Independent`` of them; ``variance`` as a diagonal for univariate ones), so any ``q`` with a
    differentiable mean and variance works. The coefficient
    :math:`\beta_i = \mathrm{Cov}(f, h)/\mathrm{Var}(h)` is estimated from the other samples of
    the batch (leave-one-out), which keeps the estimator unbiased; with fewer than 3 samples
    :math:`\beta = 1`. When ``f`` returns one cost per leading batch element, each element gets
    its own expansion (its Hessian is the block of its own slice).

    ``q`` must have a finite mean and variance (:func:`check_moments`): ``Categorical``,
    ``Cauchy``, ``StudentT(df <= 2)``, ``InverseGamma(concentration <= 2)`` and the like are
    refused with an error naming the moment (use ``LeaveOneOut()`` there). Because
    :math:`\mathbb{E}_{q_\phi}[h]` is exact as a function of :math:`\phi`, the correction is
    right at every order: with ``ScoreFunction``'s DiCE surrogate, Hessians
    (``create_graph=True``) stay unbiased. A size-0 batch gives empty results.

    Needs ``f`` twice differentiable. Cost: ``num_samples + 1`` evaluations of ``f``, one
    backward pass and one batched double-backward of ``D`` Hessian-vector products, ``D`` the
    number of coordinates each cost depends on (:func:`taylor_expansion`, shared with
    ``reparam.studies.DeltaControlled``).

    Reference: Mohamed, Rosca, Figurnov & Mnih, "Monte Carlo Gradient Estimation in Machine
    Learning", JMLR 2020, section 7.2 (delta method control variates); Paisley, Blei & Jordan,
    "Variational Bayesian inference with stochastic search", ICML 2012.
    """

    min_samples: int = 1
    extra_evaluations: int = 1

    def __call__(self, costs: Tensor, z: Tensor, q: Distribution, f: CostFn) -> ControlVariate:
        check_moments(q)
        h, expected = taylor_expansion(f, q, costs.shape[1:])
        control = h(z.detach()).detach()
        beta = _leave_one_out_coefficient(costs.detach(), control)
        correction = beta.mean(0) * (expected - expected.detach())
        return ControlVariate((beta * control).to(costs.dtype), correction.to(costs.dtype))
