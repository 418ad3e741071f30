r"""Fixed-size pools: evaluate something expensive on the few elements that need it, without
asking the host how many there are.

A boolean ``mask`` over ``n`` elements picks those that need a second evaluation (the tail of a
series, a fallback). Their positions are found by a cumulative sum and the first ``budget`` of
them are gathered into a pool of exactly ``budget`` slots (unused slots point at a spare element
``n``), evaluated there, and written back with ``index_copy``. Every shape depends on ``n`` and
``budget`` only (Python integers), so no value is read back to the host: no synchronisation on a
GPU, and ``torch.jit.trace``/``torch.compile`` see one fixed graph.

:func:`budget` sizes a pool for elements that fall in the pool independently with probability at
most ``rate`` (samples from the distribution the rate was measured on): the expected count plus
eight standard deviations plus 16, exceeded with probability below ``1e-15`` per call. Elements
beyond the budget keep the value they had before the pool (the caller's cheaper evaluation).

Example::

    >>> import torch
    >>> x = torch.tensor([0.1, 5.0, 0.2, 7.0])
    >>> index = pool_index(x > 1.0, 3)     # slots: elements 1 and 3, then the spare element 4
    >>> index.tolist()
    [1, 3, 4]
    >>> scatter_pool(x, index, gather(x, index, 0.0).sqrt()).tolist()[1]  # sqrt(5) written back
    2.2360680103302
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def budget(n: int, rate: float, sampled: bool) -> int:
    """Pool slots for ``n`` elements: all of them unless ``sampled`` (then each element is in the
    pool with probability at most ``rate``: mean plus eight standard deviations plus 16)."""
    if not sampled:
        return n
    expected = rate * n
    return min(n, math.ceil(expected + 8.0 * math.sqrt(expected) + 16.0))


def pool_index(mask: Tensor, size: int) -> Tensor:
    """Indices (``size`` of them, into ``mask.reshape(-1)`` extended by a spare element ``n``) of
    the first ``size`` elements where ``mask`` holds; unused slots hold ``n``."""
    flat = mask.reshape(-1)
    n = flat.numel()
    position = torch.cumsum(flat, 0) - 1
    slot = torch.where(torch.logical_and(flat, position < size), position, size)
    every = torch.arange(n, device=flat.device)
    index = torch.full((size + 1,), n, dtype=torch.long, device=flat.device)
    return index.scatter(0, slot, every)[:size]  # out of place: vmap-safe


def gather(values: Tensor, index: Tensor, spare: float) -> Tensor:
    """``values.reshape(-1)`` at ``index``, ``spare`` at the spare element (a harmless input for
    the pooled evaluation: padding slots compute on it and are dropped)."""
    flat = values.reshape(-1)
    return torch.cat([flat, flat.new_full((1,), spare)]).index_select(0, index)


def scatter_pool(values: Tensor, index: Tensor, pooled: Tensor) -> Tensor:
    """A copy of ``values`` with the pooled results written at ``index`` (padding dropped)."""
    flat = values.reshape(-1)
    out = torch.cat([flat, flat.new_zeros(1)])
    out.index_copy_(0, index, pooled.to(out.dtype))
    return out[: flat.numel()].reshape(values.shape)
