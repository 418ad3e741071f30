"""Broadcast shapes in plain Python.

``torch.broadcast_shapes`` spends ~0.3 s on its first call in a process (lazy initialisation
inside torch) and ~20 us on later ones; the gamma gradient calls this on every backward pass.
"""

from __future__ import annotations

import torch


def broadcast_shape(*shapes: torch.Size | tuple[int, ...]) -> torch.Size:
    """The shape that ``shapes`` broadcast to (numpy/torch rules); ``ValueError`` naming both
    sizes where a dimension does not broadcast."""
    ndim = max((len(s) for s in shapes), default=0)
    out = [1] * ndim
    for shape in shapes:
        for i, size in enumerate(shape, start=ndim - len(shape)):
            if size != 1:
                if out[i] not in (1, size):
                    listed = [tuple(s) for s in shapes]
                    raise ValueError(f"shapes {listed} do not broadcast: {out[i]} vs {size}")
                out[i] = size
    return torch.Size(out)
