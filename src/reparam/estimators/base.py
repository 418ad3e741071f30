"""The estimator protocol and the pieces every estimator shares.

An estimator turns ``(f, q, num_samples)`` into a *surrogate*: a tensor whose value is the
Monte Carlo estimate of ``E_q[f(z)]`` and whose gradient (by ordinary autograd) is the
estimator's gradient estimate. ``rp.expect`` only validates its arguments and calls one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor
from torch.distributions import Distribution

CostFn = Callable[[Tensor], Tensor]


@runtime_checkable
class Estimator(Protocol):
    """What every estimator implements: ``estimator(f, q, num_samples) -> surrogate``."""

    def __call__(self, f: CostFn, q: Distribution, num_samples: int) -> Tensor: ...


def evaluations(estimator: object, q: Distribution, num_samples: int) -> int:
    """Evaluations of ``f`` (per sample point) one estimate costs.

    Estimators that evaluate ``f`` more than once per sample define
    ``evaluations(q, num_samples)``; the default is ``num_samples``.
    """
    method = getattr(estimator, "evaluations", None)
    if callable(method):
        return int(method(q, num_samples))
    return int(num_samples)


def check_costs(costs: object, q: Distribution, num_samples: int) -> Tensor:
    """Validate what ``f`` returned: a tensor shaped ``(num_samples, *q.batch_shape[:k])``."""
    if not isinstance(costs, Tensor):
        raise TypeError(
            f"f must return a torch.Tensor of costs, got {type(costs).__name__}; "
            "return e.g. `loss.sum(-1)` as a tensor with the sample dim first."
        )
    if not costs.is_floating_point():
        raise TypeError(
            f"f returned costs of dtype {costs.dtype}; return real floating costs (e.g. `.float()`, "
            "or `.to(z.dtype)` to match the samples) so that they can be averaged and differentiated."
        )
    batch = tuple(q.batch_shape)
    if costs.dim() == 0 or costs.shape[0] != num_samples:
        raise ValueError(
            f"f returned costs of shape {tuple(costs.shape)}, but its leading dim must be the "
            f"sample dim of size num_samples={num_samples}; f receives samples shaped "
            f"(num_samples, *batch_shape, *event_shape) = {(num_samples, *batch, *q.event_shape)} "
            "and must keep dim 0 (reduce other dims, e.g. `.sum(-1)`, not `.sum()` or `.mean()`)."
        )
    rest = tuple(costs.shape[1:])
    if rest != batch[: len(rest)]:
        raise ValueError(
            f"f returned costs of shape {tuple(costs.shape)}; after the sample dim they must be a "
            f"prefix of q.batch_shape={batch} (one cost per leading batch element), so that each "
            "cost can be credited to its own random variables. Sum the trailing dims inside f."
        )
    return costs


def evaluate(f: CostFn, z: Tensor, q: Distribution, num_samples: int) -> Tensor:
    """Call ``f`` on samples and validate its output."""
    return check_costs(f(z), q, num_samples)


def credit_log_prob(log_prob: Tensor, costs: Tensor) -> Tensor:
    """Sum ``log_prob`` (shaped ``(n, *batch_shape)``) down to the shape of ``costs``.

    Each cost element is credited with the log-density of the variables in its batch slice:
    with costs shaped ``(n, *batch_shape[:k])`` the trailing ``len(batch_shape) - k`` dims are
    summed.
    """
    extra = log_prob.dim() - costs.dim()
    if extra > 0:
        log_prob = log_prob.sum(dim=tuple(range(costs.dim(), log_prob.dim())))
    return log_prob


def finite_log_prob(log_prob: Tensor) -> Tensor:
    """``log_prob`` with its non-finite entries (``±inf``, or ``nan`` from ``inf - inf`` inside a
    saturated ``log_prob``, e.g. ``Bernoulli(logits=inf).log_prob(1)``) replaced by ``0``.

    Used only inside zero-valued score terms ``L - stop(L)``, where a non-finite ``L`` would turn
    the term's value into ``inf - inf = nan``. Such entries are probability-zero events or
    saturated parameters (where the score is ``0``): they contribute no score term, and the
    upstream gradient reaching them is exactly ``0``.
    """
    return torch.where(torch.isfinite(log_prob), log_prob, torch.zeros_like(log_prob))


def magic_box_minus_one(log_prob: Tensor) -> Tensor:
    r"""``expm1(L - stop(L))``: the DiCE "magic box" :math:`\boxdot(L) = e^{L - \bot(L)}`
    minus one.

    Its value is exactly ``0`` and every derivative of order :math:`k \ge 1` equals that of
    :math:`\boxdot(L)`: :math:`\nabla \boxdot = \boxdot\,\nabla L`, so
    :math:`\nabla^2 \boxdot = \boxdot(\nabla L \nabla L^\top + \nabla^2 L)` and so on, which at
    value ``1`` are :math:`\nabla^k q / q`, the likelihood-ratio weights of every order.
    Non-finite entries of ``L`` count as ``0`` (:func:`finite_log_prob`).

    Reference: Foerster et al., "DiCE: The Infinitely Differentiable Monte Carlo Estimator",
    ICML 2018.
    """
    safe = finite_log_prob(log_prob)
    return torch.expm1(safe - safe.detach())


def score_surrogate(costs: Tensor, log_prob: Tensor, baseline: Tensor | None = None) -> Tensor:
    r"""Per-sample score-function surrogate, right at every order of differentiation.

    .. math::
        s = f + \big(f - \bot(b)\big)\big(\boxdot(L) - 1\big)
          = \boxdot(L)\, f + \big(1 - \boxdot(L)\big)\, \bot(b),

    the DiCE surrogate with the baseline term of Mao et al. Its value is exactly ``costs``; its
    gradient is ``grad f + (f - b) grad L`` (REINFORCE with baseline ``b``); its Hessian is
    :math:`(f - b)(\nabla L \nabla L^\top + \nabla^2 L) + \nabla L \nabla f^\top
    + \nabla f \nabla L^\top + \nabla^2 f`, whose expectation is the Hessian of
    :math:`\mathbb{E}_q[f]` (cross terms with ``f``'s own parameters included) whenever ``b``
    does not depend on the sample it is paired with, since :math:`\mathbb{E}_q[\nabla^k q / q] = 0`.
    ``costs`` shaped ``(n, *cost_shape)``, ``log_prob`` the credited log-density of the same
    shape, ``baseline`` broadcasting against ``costs`` (``None``: no baseline).

    References: Foerster et al., "DiCE: The Infinitely Differentiable Monte Carlo Estimator",
    ICML 2018; Mao et al., "A Baseline for Any Order Gradient Estimation in Stochastic
    Computation Graphs", ICML 2019.

    Example:
        >>> loc = torch.tensor(0.5, requires_grad=True)
        >>> q = torch.distributions.Normal(loc, 1.0)
        >>> z = q.sample((8,))
        >>> costs = z**2
        >>> s = score_surrogate(costs, credit_log_prob(q.log_prob(z), costs), costs.mean())
        >>> bool(s.mean(0) == costs.mean(0))  # the value is the mean cost
        True
        >>> s.mean(0).backward()  # the gradient is the REINFORCE estimate
    """
    signal = costs if baseline is None else costs - baseline.detach()
    return costs + signal * magic_box_minus_one(log_prob)


def zero_value(x: Tensor) -> Tensor:
    """``x - x.detach()``: zero in value, ``grad x`` in gradient."""
    return x - x.detach()


def sample_shape_for(num_samples: int) -> torch.Size:
    return torch.Size((num_samples,))


def draw_without_gradient(q: Distribution, num_samples: int) -> Tensor:
    """Samples carrying no gradient. ``rsample`` under ``no_grad`` where ``q`` has it: the same
    distribution as ``sample`` and, for location-scale families, a cheaper kernel."""
    with torch.no_grad():
        return q.rsample((num_samples,)) if q.has_rsample else q.sample((num_samples,))


def _validating(q: Distribution) -> list[Distribution]:
    chain = [q]
    while hasattr(chain[-1], "base_dist"):
        chain.append(chain[-1].base_dist)
    return chain


def log_prob_of_own_samples(q: Distribution, z: Tensor) -> Tensor:
    """``q.log_prob(z)`` for samples ``q`` drew itself, skipping the support check that
    argument validation would repeat on every call (the samples are in the support by
    construction).

    Empty samples (a size-0 batch dim) give an empty log-density shaped like the samples less
    the event dims: torch's ``Independent.log_prob`` cannot reshape an empty tensor."""
    if z.numel() == 0:  # a static shape check, not a host sync
        return _empty_log_prob(q, z)
    chain = _validating(q)
    saved = [d._validate_args for d in chain]
    try:
        for d in chain:
            d._validate_args = False
        return q.log_prob(z)
    finally:
        for d, flag in zip(chain, saved, strict=True):
            d._validate_args = flag


def _empty_log_prob(q: Distribution, z: Tensor) -> Tensor:
    """``q.log_prob(z)`` for empty ``z``: an empty tensor shaped like the samples less the event
    dims, joined to the graph of ``q``'s parameters (so their gradient is an empty/zero one).

    torch's own ``log_prob`` is not asked: on empty batches some of its implementations fail
    (``Independent`` reshapes with ``-1``; ``MultivariateNormal`` divides by the batch size when
    argument validation is off)."""
    shape = z.shape[: z.dim() - len(q.event_shape)]
    dtype = z.dtype if z.is_floating_point() else torch.get_default_dtype()
    out = z.new_zeros(shape, dtype=dtype)
    for parameter in _tensors_of(q):
        out = out + parameter.sum().to(dtype) * 0.0
    return out


def _tensors_of(q: Distribution) -> list[Tensor]:
    """The tensors ``q`` (and the distributions it wraps) hold that carry a gradient."""
    found: list[Tensor] = []
    for value in vars(q).values():
        if isinstance(value, Tensor) and value.requires_grad:
            found.append(value)
        elif isinstance(value, Distribution):
            found += _tensors_of(value)
    return found


def refuse_create_graph(estimator: str) -> None:
    """Raise the error for a double-backward graph through an estimator that gives first
    derivatives only (autograd runs a ``backward`` with grad enabled iff ``create_graph=True``)."""
    raise RuntimeError(
        f"{estimator} gives first derivatives only: its gradient is built from sampled costs "
        "with no graph in q's parameters, so create_graph=True (Hessians, Hessian-vector "
        "products, higher derivatives) would be silently wrong. Use rp.Pathwise() (q with "
        "rsample), rp.ScoreFunction() (any baseline) or rp.Exact() when you need "
        "create_graph=True, or call backward without create_graph."
    )


def creating_graph(grad: Tensor) -> bool:
    """Whether a custom ``backward`` receiving ``grad`` is building a graph for a further
    derivative.

    Under plain autograd, ``backward`` runs with grad mode on iff ``create_graph=True``. Under
    ``torch.func`` every ``backward`` runs with grad mode on (the transforms compose), so there
    the question is how many differentiating transforms (``grad``/``vjp``/``jacrev``, ``jvp``)
    are active around it: one is a first derivative, two or more (``grad(grad(f))``,
    ``jacrev(grad(f))``, ``jvp`` over ``grad``) a higher one. ``vmap`` does not count.
    """
    if torch.compiler.is_compiling():  # dynamo cannot trace the interpreter stack
        return torch.is_grad_enabled() and not torch._C._functorch.is_functorch_wrapped_tensor(grad)
    stack = torch._C._functorch.get_interpreter_stack()
    if stack:
        kinds = (torch._C._functorch.TransformType.Grad, torch._C._functorch.TransformType.Jvp)
        return sum(interpreter.key() in kinds for interpreter in stack) >= 2
    return torch.is_grad_enabled()


class _FirstOrderOnly(torch.autograd.Function):
    """Identity; its backward passes the gradient on, and refuses a double-backward graph."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, estimator: str) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        ctx.estimator = inputs[1]

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        if creating_graph(grad):
            refuse_create_graph(ctx.estimator)
        return grad, None


def first_order_only(x: Tensor, estimator: str) -> Tensor:
    """``x`` unchanged, except that a ``create_graph=True`` backward through it raises a clear
    error naming ``estimator`` (for estimators whose second derivatives would be wrong).

    Example:
        >>> logits = torch.zeros(3, requires_grad=True)
        >>> first_order_only(logits, "ARM()").sum().backward()  # first order: fine
        >>> logits.grad
        tensor([1., 1., 1.])
    """
    if not x.requires_grad:
        return x
    out: Tensor = _FirstOrderOnly.apply(x, estimator)  # torch types Function.apply as Any
    return out
