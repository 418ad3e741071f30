r"""Exact implicit derivatives of Beta and Dirichlet samples in their concentrations.

For ``x ~ Beta(a, b)`` with ``I_x(a, b)`` the regularised incomplete beta function, implicit
differentiation of ``I_x(a, b) = u`` gives

.. math::
    \frac{dx}{da} = -\frac{\partial I_x(a, b)/\partial a}{p(x; a, b)}, \qquad
    \frac{dx}{db} = -\frac{\partial I_x(a, b)/\partial b}{p(x; a, b)}

(Figurnov, Mohamed & Mnih, "Implicit Reparameterization Gradients", NeurIPS 2018; Jankowiak &
Obermeyer, "Pathwise Derivatives Beyond the Reparameterization Trick", ICML 2018). On the side
``x < (a + 1)/(a + b + 2)``, writing ``I_x = x^a y^b F / (a B(a, b))`` (``y = 1 - x``,
:mod:`reparam.distributions._incomplete_beta`) and ``p = x^{a-1} y^{b-1} / B(a, b)``,

.. math::
    \frac{d\,\mathrm{logit}\,x}{da} = -\frac{1}{a}\Big[\big(\log x - \tfrac1a - \psi(a)
        + \psi(a + b)\big) F + \partial_a F\Big], \qquad
    \frac{d\,\mathrm{logit}\,x}{db} = -\frac{1}{a}\Big[\big(\log y - \psi(b) + \psi(a + b)\big) F
        + \partial_b F\Big],

free of overflow (no ``B(a, b)``, no powers); on the other side ``I_x(a, b) = 1 - I_y(b, a)``
gives the same with ``(a, b, x)`` and ``(b, a, y)`` exchanged and the sign flipped. Multiplying
by ``x y`` gives ``dx/da`` and ``dx/db``.

Dirichlet: ``x_i ~ Beta(alpha_i, alpha_0 - alpha_i)`` and, given ``x_i``, the other coordinates
divided by ``1 - x_i`` are independent of it and of ``alpha_i``; the transport that keeps those
ratios fixed is ``dx_i/dalpha_i`` from the marginal (``alpha_0 - alpha_i`` held fixed) and
``dx_j/dalpha_i = -x_j/(1 - x_i) dx_i/dalpha_i``, torch's convention (its
``_Dirichlet_backward``). Hence, for an incoming gradient ``g``,

.. math::
    \frac{\partial L}{\partial \alpha_i} = x_i \frac{d\,\mathrm{logit}\,x_i}{d\alpha_i}
        \Big(g_i - \sum_j x_j g_j\Big).

Example::

    >>> import torch
    >>> a = torch.tensor(2.0, requires_grad=True)
    >>> b = torch.tensor(3.0)
    >>> x = beta_rsample(a, b, (4,))
    >>> (grad,) = torch.autograd.grad(x.sum(), a)  # the sum of four implicit derivatives
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx

from reparam.distributions._apply import apply, distinct
from reparam.distributions._gamma_sampler import log_standard_gamma
from reparam.distributions._incomplete_beta import (
    beta_continued_fraction,
    host_path,
    implicit_logit_grad,
    plan,
    plan_for,
)
from reparam.distributions._surrogate import check_no_forward_mode

SECOND_ORDER_MESSAGE = (
    "{name}.rsample: second derivatives in the concentrations are not supported (the implicit "
    "derivative of the sample is evaluated without an autograd graph). Differentiate once, or use "
    "a score-function estimator (rp.ScoreFunction) for higher-order gradients."
)


def beta_logit_grad(
    log_x: Tensor, log_y: Tensor, a: Tensor, b: Tensor, float32_allowed: bool = False
) -> tuple[Tensor, Tensor]:
    """``(d logit(x)/da, d logit(x)/db)`` for ``x ~ Beta(a, b)`` given as ``log x`` and
    ``log y = log(1 - x)`` (both, so that neither side loses digits); float64 unless float32 is
    allowed and suffices (below).

    ``a`` and ``b`` broadcast against the samples; the digammas are evaluated on their own
    shape. The number of continued-fraction terms follows the concentrations
    (:func:`reparam.distributions._incomplete_beta.plan`). On the host path the evaluation is
    :func:`reparam.distributions._incomplete_beta.implicit_logit_grad`, in float32 (returned
    as float32) where ``float32_allowed`` (a float32 caller) and the concentrations allow it
    (within 5e-5 of float64, :func:`reparam.distributions._incomplete_beta.plan`), else in
    float64; the sync-free path runs the forward recurrence in float64.
    """
    if host_path(log_x, a, b):
        terms, float32 = plan_for(a, b, float32_allowed)
        log_x, log_y = (log_x.float(), log_y.float()) if float32 else (log_x.double(), log_y.double())
        return implicit_logit_grad(torch.exp(log_x), torch.exp(log_y), log_x, log_y, a, b, terms)
    terms, float32_ok = plan(a, b)  # sync-free: (SYNC_FREE_TERMS, False)
    log_x, log_y = log_x.double(), log_y.double()
    a, b = a.double(), b.double()
    total = a + b
    x, y = torch.exp(log_x), torch.exp(log_y)
    swap = x > (a + 1) / (total + 2)
    z = torch.where(swap, y, x)
    if float32_allowed and float32_ok:
        fraction = beta_continued_fraction(a.float(), b.float(), z.float(), terms, swap)
        f, f_p, f_q = (v.double() for v in fraction)
    else:
        f, f_p, f_q = beta_continued_fraction(a, b, z, terms, swap)
    psi_total = torch.digamma(total)
    shift_a, shift_b = psi_total - torch.digamma(a), psi_total - torch.digamma(b)
    # Unswapped: (p, q) = (a, b), z = x.  Swapped: (p, q) = (b, a), z = y, logit(x) = -logit(z).
    p = torch.where(swap, b, a)
    log_z, log_w = torch.where(swap, log_y, log_x), torch.where(swap, log_x, log_y)
    shift_p, shift_q = torch.where(swap, shift_b, shift_a), torch.where(swap, shift_a, shift_b)
    grad_p = ((log_z - 1 / p + shift_p) * f + f_p) / -p
    grad_q = ((log_w + shift_q) * f + f_q) / -p
    return torch.where(swap, -grad_q, grad_p), torch.where(swap, -grad_p, grad_q)


def beta_vjp(x: Tensor, a: Tensor, b: Tensor, grad: Tensor) -> tuple[Tensor, Tensor]:
    """``(sum grad dx/da, sum grad dx/db)`` at samples ``x`` of ``Beta(a, b)`` (the backward of
    :class:`BetaSampleGrad`), summed to the shapes and dtypes of ``a`` and ``b``, without a graph.

    On the host path a float32 ``x`` is evaluated in float32 where
    :func:`reparam.distributions._incomplete_beta.plan` allows it, otherwise in float64 (and
    always in float64 on the sync-free path)."""
    x = x.detach()
    if host_path(x, a, b, grad):
        terms, float32 = plan_for(a, b, x.dtype == torch.float32)
        x = x if float32 else x.double()
        y = torch.rsub(x, 1.0)
        grad_a, grad_b = implicit_logit_grad(x, y, torch.log(x), torch.log1p(-x), a, b, terms)
    else:
        x = x.double()
        y = 1 - x
        grad_a, grad_b = beta_logit_grad(torch.log(x), torch.log1p(-x), a, b)
    weight = grad.to(x.dtype) * x * y
    return (
        (weight * grad_a).sum_to_size(a.shape).to(a.dtype),
        (weight * grad_b).sum_to_size(b.shape).to(b.dtype),
    )


def _refuse_second_order(
    name: str, grads: tuple[Tensor, ...], anchors: tuple[Tensor, ...]
) -> tuple[Tensor, ...]:
    """``grads`` unchanged; when a double-backward graph is being built, routed through a node
    whose backward raises :data:`SECOND_ORDER_MESSAGE` (rather than a silently wrong zero)."""
    if not torch.is_grad_enabled():
        return grads
    routed: tuple[Tensor, ...] = _SecondOrderRefused.apply(name, len(grads), *grads, *anchors)  # apply: Any
    return routed


class _SecondOrderRefused(torch.autograd.Function):
    """Identity on its first ``count`` inputs; differentiating it raises a clear error. The
    ``anchors`` (the concentrations) make the outputs part of the double-backward graph."""

    generate_vmap_rule = True  # torch.func.vmap (jacrev's backward): plain torch ops, no host reads

    @staticmethod
    def forward(name: str, count: int, *tensors: Tensor) -> tuple[Tensor, ...]:
        return tuple(t.clone() for t in tensors[:count])

    @staticmethod
    def setup_context(ctx: FunctionCtx, inputs: tuple, output: tuple[Tensor, ...]) -> None:
        ctx.name = inputs[0]  # type: ignore[attr-defined]

    @staticmethod
    def backward(ctx: FunctionCtx, *grads: Tensor) -> tuple[None, ...]:
        raise RuntimeError(SECOND_ORDER_MESSAGE.format(name=ctx.name))  # type: ignore[attr-defined]


class BetaSampleGrad(torch.autograd.Function):
    """``x = sigmoid(t)`` for a detached log-odds sample ``t`` of ``Beta(a, b)``; its backward
    applies the implicit derivatives :func:`beta_logit_grad` at the returned ``x`` (rounded to
    its dtype and kept inside (0, 1), as the caller sees it; first order only)."""

    generate_vmap_rule = True  # torch.func.vmap: batched inputs take the sync-free backward

    @staticmethod
    def forward(a: Tensor, b: Tensor, log_odds: Tensor) -> Tensor:
        return keep_inside_unit_interval(torch.sigmoid(log_odds).to(a.dtype))

    @staticmethod
    def setup_context(ctx: FunctionCtx, inputs: tuple[Tensor, Tensor, Tensor], output: Tensor) -> None:
        a, b, _ = inputs
        ctx.save_for_backward(a, b, output)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        a, b, x = ctx.saved_tensors  # type: ignore[attr-defined]
        with torch.no_grad():
            grad_a, grad_b = beta_vjp(x, a, b, grad)
        grad_a, grad_b = _refuse_second_order("Beta", (grad_a, grad_b), (a, b))
        return grad_a, grad_b, None


class DirichletSampleGrad(torch.autograd.Function):
    """``x = softmax(log G)`` for detached log-gamma draws; its backward applies the implicit
    derivatives of the module docstring at the returned ``x`` (first order only)."""

    generate_vmap_rule = True  # torch.func.vmap: batched inputs take the sync-free backward

    @staticmethod
    def forward(concentration: Tensor, log_g: Tensor) -> Tensor:
        log_x = log_g - torch.logsumexp(log_g, -1, keepdim=True)
        return keep_inside_unit_interval(torch.exp(log_x).to(concentration.dtype))

    @staticmethod
    def setup_context(ctx: FunctionCtx, inputs: tuple[Tensor, Tensor], output: Tensor) -> None:
        ctx.save_for_backward(inputs[0], output)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: Tensor) -> tuple[Tensor | None, None]:
        concentration, x = ctx.saved_tensors  # type: ignore[attr-defined]
        with torch.no_grad():
            out = dirichlet_vjp(x, concentration, grad)
        (out,) = _refuse_second_order("Dirichlet", (out,), (concentration,))
        return out, None


def dirichlet_vjp(x: Tensor, concentration: Tensor, grad: Tensor) -> Tensor:
    """``sum_j grad_j dx_j/dalpha_i`` at a point ``x`` of the simplex (the backward of
    :class:`DirichletSampleGrad`, usable at any ``x``, e.g. to check the tangent field), summed to
    ``concentration``'s shape and dtype, without a graph: on the host path in float32 where
    :func:`reparam.distributions._incomplete_beta.plan_for` allows it (a float32 ``x``), else
    in float64."""
    alpha = concentration.detach()
    rest = alpha.sum(-1, keepdim=True) - alpha
    x = x.detach()
    if not host_path(x, alpha, grad):
        x = x.double()
        grad_logit, _ = beta_logit_grad(torch.log(x), _log_complement(x), alpha, rest)
    else:  # the host path: float32 where plan() allows it
        terms, float32 = plan_for(alpha, rest, x.dtype == torch.float32)
        x = x if float32 else x.double()
        log_y = _log_complement(x)
        grad_logit, _ = implicit_logit_grad(x, torch.exp(log_y), torch.log(x), log_y, alpha, rest, terms)
    g = grad.detach().to(x.dtype)
    g = g - (x * g).sum(-1, keepdim=True)
    return (x * grad_logit * g).sum_to_size(concentration.shape).to(concentration.dtype)


def _log_complement(x: Tensor) -> Tensor:
    """``log(1 - x_i)`` for points ``x`` of the simplex: ``log1p(-x_i)`` except at the largest
    coordinate (the only one that may exceed 1/2), where ``1 - x_i`` is the sum of the others."""
    largest = x.argmax(-1, keepdim=True)
    others = x.scatter(-1, largest, 0.0).sum(-1, keepdim=True)
    out = torch.log1p(-x)
    return out.scatter(-1, largest, torch.log(others))


def keep_inside_unit_interval(x: Tensor) -> Tensor:
    """``x`` with values moved into ``[tiny, 1 - eps/2]`` so ``log_prob`` stays finite at the
    boundaries, without touching the gradient."""
    finfo = torch.finfo(x.dtype)
    return x + (x.detach().clamp(finfo.tiny, 1.0 - finfo.eps / 2) - x.detach())


def _draw_log_gamma(concentration: Tensor, shape: torch.Size) -> Tensor:
    """``log G`` for ``G ~ Gamma(concentration, 1)`` shaped ``shape``, without gradient, in
    float64 (the ``Gamma(alpha + 1)`` draw in the concentration's dtype, the ``log(U)/alpha``
    term of concentrations below 1 in float64: it reaches -1e4 at 1e-4, where float32 would keep
    three digits), with no host synchronisation."""
    with torch.no_grad():
        return log_standard_gamma(concentration.detach(), shape, torch.float64)


def beta_rsample(
    a: Tensor, b: Tensor, shape: torch.Size | tuple[int, ...], stacked: Tensor | None = None
) -> Tensor:
    """``Beta(a, b)`` samples shaped ``shape`` (``a`` and ``b`` broadcast to its trailing
    dimensions) with the exact implicit derivatives in ``a`` and ``b``; ``stacked``: the
    concentrations as ``stack(broadcast(a, b), -1)`` when the caller has it."""
    if stacked is None:
        stacked = torch.stack(torch.broadcast_tensors(a, b), -1)
    check_no_forward_mode("Beta rsample")
    log_g = _draw_log_gamma(stacked, torch.Size((*shape, 2)))
    sample: Tensor = apply(BetaSampleGrad, *distinct(a, b), log_g[..., 0] - log_g[..., 1])
    return sample


def dirichlet_rsample(concentration: Tensor, shape: torch.Size | tuple[int, ...]) -> Tensor:
    """``Dirichlet(concentration)`` samples shaped ``shape`` with the exact implicit derivatives."""
    check_no_forward_mode("Dirichlet rsample")
    log_g = _draw_log_gamma(concentration, torch.Size(shape))
    sample: Tensor = apply(DirichletSampleGrad, concentration, log_g)
    return sample
