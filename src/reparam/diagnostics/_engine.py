"""How ``gradient_stats`` draws many independent gradient estimates.

Three ways, tried in this order, each falling back to the next:

* **batched, linear** (``"batched"``): one call of the estimator on ``q.expand((chunk, *batch))``
  (so ``chunk`` independent estimates share one forward pass), with ``f`` called on the samples
  of all estimates at once (sample and chunk dims merged). The tensors of the expanded ``q``
  are replaced by per-estimate leaves, so one backward pass gives every estimate's gradient with
  respect to ``q``'s own tensors (row ``c`` of the surrogate depends only on row ``c``); a
  batched vector-Jacobian product (``torch.autograd.grad(..., is_grads_batched=True)``) over
  the small graph from ``params`` to ``q``'s tensors finishes the chain rule. Cost linear in
  ``chunk``. Used when every path from ``params`` to the estimate runs through ``q``'s tensors.
* **batched, identity cotangents** (``"batched-dense"``): the same forward pass, then a batched
  backward with the identity as ``grad_outputs`` (``chunk`` vector-Jacobian products at once,
  through ``torch.func.vmap``). Used when ``f`` itself depends on ``params``; costs
  ``chunk**2`` per intermediate, so chunks are kept small.
* **loop** (``"loop"``): one estimate and one ``torch.autograd.grad`` at a time. Used for
  estimators that keep state between calls (a moving-average baseline must see one estimate
  at a time), for ``q`` without ``expand``, and whenever the batched forms fail.

``torch.func.vmap`` over the estimator itself is not used: ``torch.distributions`` draw
reparameterized noise with in-place RNG calls on fresh tensors (``Normal.rsample``), which
``vmap(randomness="different")`` refuses; expanding ``q`` along a new batch dim gives the same
independence with ordinary batched code.

The batched forms assume ``f`` treats samples independently (row ``i`` of its output depends
only on row ``i`` of its input), as an integrand does; pass ``vectorize=False`` otherwise.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent

from reparam.estimators.base import CostFn, Estimator, evaluations
from reparam.expect import check_surrogate

QLike = Distribution | Callable[[], Distribution]

# Elements per intermediate tensor a batched call may create.
_WORK = 2**20
_BUDGET = 2**22


@dataclass
class Draws:
    """Per-estimate gradients of one chunk: one tensor ``(chunk, *param.shape)`` per param, and
    per param whether the estimate reached it at all (``False``: autograd found no path)."""

    grads: list[Tensor]
    reached: list[bool]


def build_q(q: QLike) -> Distribution:
    """``q`` itself, or ``q()`` for a zero-argument callable returning a distribution."""
    built = q if isinstance(q, Distribution) else q()
    if not isinstance(built, Distribution):
        raise TypeError(
            f"q must be a torch.distributions.Distribution or a zero-argument callable returning "
            f"one, got {type(built).__name__}; e.g. q=Normal(loc, scale) or q=lambda: Normal(loc, scale)."
        )
    return built


def is_stateful(estimator: object) -> bool:
    """Whether an estimator (or a baseline / control variate it holds) keeps state between
    calls, so that it must see one estimate at a time.

    An object counts as stateful when it says so (``stateful = True``) or has a ``reset()``
    method (as :class:`~reparam.baselines.MovingAverage` has). Attributes are searched two
    levels deep; modules and tensors are not state in this sense.
    """

    def visit(obj: object, depth: int) -> bool:
        flag = getattr(obj, "stateful", None)
        if isinstance(flag, bool):
            return flag
        if callable(getattr(obj, "reset", None)) and not isinstance(obj, torch.nn.Module):
            return True
        if depth == 0:
            return False
        children = getattr(obj, "__dict__", {})
        for value in children.values():
            if isinstance(value, (Tensor, torch.nn.Module, int, float, str, bool, type(None))):
                continue
            if visit(value, depth - 1):
                return True
        return False

    return visit(estimator, 2)


def chunk_size(
    estimator: Estimator, q: Distribution, num_samples: int, repeats: int, dense: bool, requested: int | None
) -> int:
    """Estimates per batched call.

    The largest power of two (at most ``repeats``) for which one batched call touches at most
    ``2**20`` elements per intermediate: ``evaluations(estimator, q_big, num_samples) *
    q_big.batch_shape.numel() * event`` for ``q_big`` expanded to ``rows`` estimates (this also
    covers estimators like ``MeasureValued`` whose work grows with the batch size, hence
    quadratically in ``rows``); with identity cotangents (``dense``) also ``rows**2`` times the
    per-estimate size at most ``2**22``.
    """
    if requested is not None:
        return max(1, min(int(requested), repeats))
    event = max(1, q.event_shape.numel())
    single = evaluations(estimator, q, num_samples) * max(1, q.batch_shape.numel()) * event

    def fits(rows: int) -> bool:
        try:
            q_big = q.expand(torch.Size((rows, *q.batch_shape)))
            work = evaluations(estimator, q_big, num_samples) * q_big.batch_shape.numel() * event
        except Exception:
            work = rows * single
        return work <= _WORK and not (dense and rows * rows * single > _BUDGET)

    rows = 1
    while rows * 2 < repeats and fits(rows * 2):
        rows *= 2
    return repeats if fits(repeats) else rows


def chunks(repeats: int, size: int) -> Iterator[int]:
    done = 0
    while done < repeats:
        step = min(size, repeats - done)
        yield step
        done += step


def _flat_sum(surrogate: Tensor, rows: int) -> Tensor:
    return surrogate.reshape(rows, -1).sum(1)


def merged_f(f: CostFn, rows: int) -> CostFn:
    """``f`` for samples shaped ``(m, rows, *batch, *event)``: calls ``f`` once on all
    ``m * rows`` samples and restores the ``rows`` dim in the costs."""

    def wrapped(z: Tensor) -> Tensor:
        m = z.shape[0]
        costs = f(z.reshape(m * rows, *z.shape[2:]))
        if not isinstance(costs, Tensor) or costs.dim() == 0 or costs.shape[0] != m * rows:
            raise ValueError("f does not keep the sample dim; cannot batch estimates")
        return costs.reshape(m, rows, *costs.shape[1:])

    return wrapped


def _chain(q: Distribution) -> list[Distribution]:
    out = [q]
    while isinstance(out[-1], Independent):
        out.append(out[-1].base_dist)
    return out


def _replace_with_leaves(q: Distribution, q_big: Distribution) -> tuple[list[Tensor], list[Tensor]]:
    """Swap each parameter tensor of ``q_big`` (an expanded copy of ``q``) that needs grad for a
    fresh leaf; return ``(leaves, originals)`` where ``originals`` are ``q``'s tensors."""
    leaves: list[Tensor] = []
    originals: list[Tensor] = []
    for small, big in zip(_chain(q), _chain(q_big), strict=True):
        for name in small.arg_constraints:
            original = small.__dict__.get(name)
            expanded = big.__dict__.get(name)
            if not isinstance(original, Tensor) or not isinstance(expanded, Tensor):
                continue
            if not original.requires_grad:
                continue
            leaf = expanded.detach().clone().requires_grad_(True)
            setattr(big, name, leaf)
            leaves.append(leaf)
            originals.append(original)
    return leaves, originals


def _per_row(grad: Tensor, original: Tensor, rows: int) -> Tensor:
    """Sum a per-row gradient ``(rows, *row_shape)`` down to ``(rows, *original.shape)``."""
    extra = grad.dim() - 1 - original.dim()
    target = (rows,) + (1,) * extra + tuple(original.shape)
    return grad.sum_to_size(target).reshape(rows, *original.shape)


def _zeros_like_batched(params: Sequence[Tensor], rows: int) -> list[Tensor]:
    return [torch.zeros(rows, *p.shape, dtype=p.dtype, device=p.device) for p in params]


def _fill(grads: Sequence[Tensor | None], params: Sequence[Tensor], rows: int) -> Draws:
    filled = [
        torch.zeros(rows, *p.shape, dtype=p.dtype, device=p.device) if g is None else g.detach()
        for g, p in zip(grads, params, strict=True)
    ]
    return Draws(filled, [g is not None for g in grads])


def batched_linear(
    estimator: Estimator, f: CostFn, q: Distribution, params: Sequence[Tensor], num_samples: int, rows: int
) -> Draws | None:
    """``rows`` estimates by the linear batched method; ``None`` if ``f`` reaches ``params``
    other than through ``q``'s tensors (then use :func:`batched_dense`)."""
    q_big = q.expand(torch.Size((rows, *q.batch_shape)))
    leaves, originals = _replace_with_leaves(q, q_big)
    surrogate = _flat_sum(check_surrogate(estimator(merged_f(f, rows), q_big, num_samples), estimator), rows)
    if not leaves:
        return None
    grads = torch.autograd.grad(surrogate.sum(), [*leaves, *params], allow_unused=True)
    direct = grads[len(leaves) :]
    if any(g is not None for g in direct):
        return None
    cotangents = [
        torch.zeros(rows, *o.shape, dtype=o.dtype, device=o.device) if g is None else _per_row(g, o, rows)
        for g, o in zip(grads[: len(leaves)], originals, strict=True)
    ]
    per_param = torch.autograd.grad(
        originals, list(params), cotangents, retain_graph=True, allow_unused=True, is_grads_batched=True
    )
    return _fill(per_param, params, rows)


def batched_dense(
    estimator: Estimator, f: CostFn, q: Distribution, params: Sequence[Tensor], num_samples: int, rows: int
) -> Draws:
    """``rows`` estimates by one forward pass and a batched backward with identity cotangents."""
    q_big = q.expand(torch.Size((rows, *q.batch_shape)))
    surrogate = _flat_sum(check_surrogate(estimator(merged_f(f, rows), q_big, num_samples), estimator), rows)
    eye = torch.eye(rows, dtype=surrogate.dtype, device=surrogate.device)
    grads = torch.autograd.grad(
        surrogate, list(params), eye, retain_graph=True, allow_unused=True, is_grads_batched=True
    )
    return _fill(grads, params, rows)


def one_estimate(
    estimator: Estimator, f: CostFn, q: Distribution, params: Sequence[Tensor], num_samples: int
) -> Draws:
    """One estimate's gradient (the sum of the surrogate differentiated), as in a training step;
    a :class:`Draws` of one row."""
    surrogate = check_surrogate(estimator(f, q, num_samples), estimator)
    if not surrogate.requires_grad:  # no path to any parameter (e.g. a cost constant in z)
        return _fill([None] * len(params), params, 1)
    grads = torch.autograd.grad(surrogate.sum(), list(params), retain_graph=True, allow_unused=True)
    return _fill([None if g is None else g.unsqueeze(0) for g in grads], params, 1)


def timed_estimate(
    estimator: Estimator, f: CostFn, q: QLike, params: Sequence[Tensor], num_samples: int
) -> tuple[Draws, float]:
    """One estimate (building ``q`` if it is a callable) and its wall time in seconds."""
    start = time.perf_counter()
    draws = one_estimate(estimator, f, build_q(q), params, num_samples)
    return draws, time.perf_counter() - start


def try_copy(estimator: Estimator, params: Sequence[Tensor]) -> Estimator:
    """A deep copy (sharing the tensors in ``params``), so that a batched attempt never changes
    the caller's estimator; the estimator itself when it cannot be copied."""
    try:
        return copy.deepcopy(estimator, memo={id(p): p for p in params})
    except Exception:
        return estimator
