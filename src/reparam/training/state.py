"""The state of plain Python objects (estimators, baselines) as tensors and plain data, for
``weights_only`` checkpoints: modules use their ``state_dict``; other objects their attributes
that are numbers, strings, tensors, or such objects in turn.

Example:
    >>> from reparam.baselines import MovingAverage
    >>> a, b = MovingAverage(), MovingAverage()
    >>> a.steps = 3
    >>> load_object_state(b, object_state(a)); b.steps
    3
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import Tensor, nn

_PLAIN = (str, int, float, bool, type(None))


def _value(value: Any) -> tuple[bool, Any]:
    if isinstance(value, Tensor):
        return True, value.detach().clone()
    if isinstance(value, _PLAIN):
        return True, value
    if isinstance(value, list | tuple) and all(isinstance(v, _PLAIN | Tensor) for v in value):
        return True, [v.detach().clone() if isinstance(v, Tensor) else v for v in value]
    if isinstance(value, nn.Module) or hasattr(value, "__dict__"):
        return True, object_state(value)
    return False, None


def object_state(obj: Any) -> dict[str, Any]:
    """A state dict of ``obj``: ``obj.state_dict()`` for a module, else its plain attributes
    (recursively, callable objects such as baselines included); functions and other values are
    left out (they are rebuilt from options)."""
    if isinstance(obj, nn.Module):
        return {"module": obj.state_dict()}
    state: dict[str, Any] = {}
    for name, value in vars(obj).items():
        if inspect.isroutine(value) or isinstance(value, type):
            continue  # functions and classes are rebuilt from the options
        keep, plain = _value(value)
        if keep:
            state[name] = plain
    return state


def load_object_state(obj: Any, state: dict[str, Any]) -> None:
    """Restore what :func:`object_state` returned into ``obj`` (built the same way)."""
    if isinstance(obj, nn.Module):
        obj.load_state_dict(state["module"])
        return
    for name, value in state.items():
        current = getattr(obj, name, None)
        if isinstance(value, dict) and current is not None and not isinstance(current, dict):
            load_object_state(current, value)
        else:
            if isinstance(current, tuple) and isinstance(value, list):
                value = tuple(value)
            if not isinstance(value, Tensor) and not isinstance(current, Tensor) and current == value:
                continue  # configuration (e.g. a frozen dataclass field): unchanged
            object.__setattr__(obj, name, value)  # also restores fields of frozen dataclasses
