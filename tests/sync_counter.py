"""Count host synchronisations (device -> host reads) in a block of torch code, on any device.

On a GPU every read of a tensor's *value* by the host (``.item()``, ``bool(t)``, ``if t.any():``,
``float(t)``, ``.tolist()``, a boolean-mask selection whose output size depends on the data,
``nonzero``...) waits for all queued kernels: a stall. On the CPU nothing stalls, so these reads
are invisible unless instrumented. This module instruments them at two levels and counts each
read once:

* a ``TorchDispatchMode`` sees the aten ops that need the value on the host, including inside
  autograd's backward pass: ``_local_scalar_dense`` (what ``item``/``bool``/``float``/``int``
  call), ``is_nonzero``, ``equal``, ``nonzero``, ``masked_select``, ``unique``, ``index`` /
  ``index_put_`` with a boolean index, ``repeat_interleave`` without ``output_size``, and a copy
  from a non-CPU tensor to the CPU;
* a ``TorchFunctionMode`` sees ``Tensor.tolist`` and ``Tensor.numpy``, which read the data
  without an aten op.

When CUDA is present, ``count_syncs(cuda_debug=True)`` also sets
``torch.cuda.set_sync_debug_mode("error")`` for the block, so a sync the instrumentation misses
still raises.

API::

    from sync_counter import count_syncs, assert_no_syncs

    with count_syncs() as syncs:          # a SyncLog
        loss = model(x).sum()
        loss.backward()
    syncs.count                           # int: host syncs in the block
    syncs.events                          # [SyncEvent(op, location)], location = "file:line"
    print(syncs)                          # one line per event, for failure messages

    with assert_no_syncs("BayesLinear step"):   # raises AssertionError listing the events
        ...

Both are context managers; modes nest, so a ``count_syncs`` block may sit inside another
``TorchDispatchMode`` (e.g. a device-mismatch detector).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["SyncEvent", "SyncLog", "assert_no_syncs", "count_syncs"]

_aten = torch.ops.aten
# ops whose result is a host value or whose output shape depends on the data
_ALWAYS = {
    _aten._local_scalar_dense.default,
    _aten.is_nonzero.default,
    _aten.equal.default,
    _aten.nonzero.default,
    _aten.masked_select.default,
    _aten._unique2.default,
    _aten.unique_dim.default,
    _aten.unique_consecutive.default,
}
_BOOL_INDEX = {_aten.index.Tensor, _aten.index_put.default, _aten.index_put_.default}
_REPEAT = {_aten.repeat_interleave.Tensor, _aten.repeat_interleave.self_Tensor}
_COPIES = {_aten._to_copy.default, _aten.copy_.default}


@dataclass(frozen=True)
class SyncEvent:
    """One host sync: the op (aten name or ``Tensor.tolist``) and the innermost caller frame
    outside torch (``file:line``)."""

    op: str
    location: str


@dataclass
class SyncLog:
    events: list[SyncEvent] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.events)

    def __str__(self) -> str:
        if not self.events:
            return "no host syncs"
        return f"{self.count} host syncs:\n" + "\n".join(f"  {e.op} at {e.location}" for e in self.events)


def _location() -> str:
    """The innermost frame that is neither torch nor this module (the code that asked)."""
    here = __file__
    for frame in reversed(traceback.extract_stack()[:-2]):
        name = frame.filename
        if (name == here and frame.name != "<module>") or "/torch/" in name or name.startswith("<"):
            continue
        return f"{name}:{frame.lineno}"
    return "?"


def _has_bool_index(args: tuple[Any, ...]) -> bool:
    indices = args[1] if len(args) > 1 else ()
    if not isinstance(indices, (list, tuple)):
        return False
    return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in indices)


def _is_device_to_host(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    if func is _aten._to_copy.default:
        source, target = args[0], kwargs.get("device")
        return (
            isinstance(source, torch.Tensor)
            and target is not None
            and torch.device(target).type == "cpu"
            and source.device.type not in ("cpu", "meta")
        )
    destination, source = args[0], args[1]
    return (
        isinstance(destination, torch.Tensor)
        and isinstance(source, torch.Tensor)
        and destination.device.type == "cpu"
        and source.device.type not in ("cpu", "meta")
    )


class _DispatchCounter(TorchDispatchMode):
    def __init__(self, log: SyncLog) -> None:
        super().__init__()
        self.log = log

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        hit = (
            func in _ALWAYS
            or (func in _BOOL_INDEX and _has_bool_index(args))
            or (func in _REPEAT and kwargs.get("output_size") is None)
            or (func in _COPIES and _is_device_to_host(func, args, kwargs))
        )
        if hit:
            self.log.events.append(SyncEvent(str(func), _location()))
        return func(*args, **kwargs)


class _FunctionCounter(TorchFunctionMode):
    _READS = ("tolist", "numpy")

    def __init__(self, log: SyncLog) -> None:
        super().__init__()
        self.log = log

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        if getattr(func, "__name__", None) in self._READS and getattr(func, "__objclass__", None) is not None:
            self.log.events.append(SyncEvent(f"Tensor.{func.__name__}", _location()))
        return func(*args, **(kwargs or {}))


@contextmanager
def count_syncs(cuda_debug: bool = True) -> Iterator[SyncLog]:
    """Record every host sync in the block into the yielded :class:`SyncLog`."""
    log = SyncLog()
    previous = None
    if cuda_debug and torch.cuda.is_available():
        previous = torch.cuda.get_sync_debug_mode()
        torch.cuda.set_sync_debug_mode("error")
    try:
        with _FunctionCounter(log), _DispatchCounter(log):
            yield log
    finally:
        if previous is not None:
            torch.cuda.set_sync_debug_mode(previous)


@contextmanager
def assert_no_syncs(what: str = "block", cuda_debug: bool = True) -> Iterator[SyncLog]:
    """Like :func:`count_syncs`, then raise ``AssertionError`` naming each sync if any."""
    with count_syncs(cuda_debug) as log:
        yield log
    if log.count:
        raise AssertionError(f"{what}: {log}")


if __name__ == "__main__":  # a self-check: python tests/sync_counter.py
    x = torch.randn(5, requires_grad=True)
    with count_syncs() as found:
        x.sum().item()
        bool(x.sum() > 0)
        x[x > 0].sum().backward()  # the selection, and index_put with the mask in its backward
        x.tolist()
    print(found)
    sys.exit(0 if found.count == 5 else 1)
