r"""The one switch between the host-dispatched and the sync-free evaluations.

Several derivatives in this package choose among regimes by the values of their inputs (the
gamma sample derivative: series, Temme's expansion or differences; the incomplete beta
function: how many continued-fraction terms). Two implementations exist for each:

* **host-dispatched** (fast path): read a few numbers back to the host (``float(t.max())``,
  boolean masks) and evaluate each element by the one regime it needs. On the CPU a read costs
  nothing (there is no queue of pending kernels to wait for), so this is the fastest;
* **sync-free**: every regime chosen by ``torch.where`` and fixed-size pools, fixed term counts,
  never reading a tensor value. On an accelerator a read stalls the host until the device queue
  drains (and breaks CUDA graphs and ``torch.compile``'s full graphs), so this path wins there,
  although it evaluates more per element (about 2x the CPU time of the fast path).

:func:`sync_free` decides, per call, from the tensor alone: the sync-free path for any device
other than the CPU, inside ``torch.compile``/``torch.jit.trace``, under ``torch.func``
transforms (``vmap`` cannot read a batched value), or inside :func:`force_sync_free`. Both paths
agree to ~1e-9 relative (``tests/distributions/test_sync_paths.py``).

Example::

    >>> import torch
    >>> sync_free(torch.zeros(3))
    False
    >>> with force_sync_free():
    ...     sync_free(torch.zeros(3))
    True
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch
from torch import Tensor

_STATE = threading.local()


def _forced() -> bool:
    return getattr(_STATE, "depth", 0) > 0


def sync_free(tensor: Tensor) -> bool:
    """Whether work on ``tensor`` must avoid host reads: ``tensor.device.type != "cpu"``, or
    forced (:func:`force_sync_free`), or compiling/tracing, or a ``torch.func`` wrapped tensor."""
    if tensor.device.type != "cpu" or _forced():
        return True
    if torch.compiler.is_compiling() or torch.jit.is_tracing():
        return True
    return bool(torch._C._functorch.is_functorch_wrapped_tensor(tensor))


@contextlib.contextmanager
def force_sync_free() -> Iterator[None]:
    """Run the sync-free evaluations on the CPU too (for tests and benchmarks: the path every
    accelerator takes), in this thread, until the block exits (nestable).

    Example::

        >>> import torch, reparam as rp
        >>> with rp.distributions.force_sync_free():
        ...     z = rp.distributions.Gamma(torch.tensor(2.0, requires_grad=True), 1.0).rsample((4,))
    """
    _STATE.depth = getattr(_STATE, "depth", 0) + 1
    try:
        yield
    finally:
        _STATE.depth -= 1
