"""Shapes: broadcasting in plain Python, and picking elements of a possibly shared parameter.

``torch.broadcast_shapes`` spends ~0.3 s on its first call in a process (lazy initialisation
inside torch) and ~20 us on later ones; the gamma gradient broadcasts on every backward pass.
"""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import Tensor

# A float or a tensor, for formulas written once for a shared parameter and for per-element ones.
Scalar = TypeVar("Scalar", float, Tensor)


def broadcast_shape(*shapes: torch.Size | tuple[int, ...]) -> torch.Size:
    """The shape that ``shapes`` broadcast to (numpy/torch rules); ``ValueError`` naming both
    sizes where a dimension does not broadcast."""
    ndim = 0
    for shape in shapes:  # (not max(..., default=0): torch.compile cannot trace that builtin form)
        ndim = max(ndim, len(shape))
    out = [1] * ndim
    for shape in shapes:
        for i, size in enumerate(shape, start=ndim - len(shape)):
            if size != 1:
                if out[i] not in (1, size):
                    listed = [tuple(s) for s in shapes]
                    raise ValueError(f"shapes {listed} do not broadcast: {out[i]} vs {size}")
                out[i] = size
    return torch.Size(out)


def select(t: Tensor, mask: Tensor) -> Tensor:
    """``t`` at the elements ``mask`` picks; a single value (the usual shared parameter) stays a
    0-d tensor that broadcasts, so nothing per-sample is materialised for it."""
    if t.numel() == 1:
        return t.reshape(())
    return t.expand(mask.shape)[mask]
