r"""``Function.apply`` without its per-call argument binding, where nothing needs that binding.

``torch.autograd.Function.apply`` binds the arguments to ``forward``'s signature with
``inspect.signature(...).bind(...).apply_defaults()`` on every call once ``setup_context`` is
defined (~20-30 us on the CPU, more than the rest of a small ``rsample``), then, outside
``torch.func`` transforms, unwraps dead ``torch.func`` wrappers and calls the C++ apply. When
every argument is given positionally (no defaults to fill), no transform is active, no argument
is a ``torch.func`` wrapper and nothing is compiling (``torch.compile`` intercepts
``Function.apply`` itself), the C++ apply alone does the same: :func:`apply` takes it then,
and the full ``Function.apply`` otherwise.

:func:`distinct` replaces repeated tensors among the arguments by views: ``torch.compile``
refuses an ``autograd.Function`` given one tensor twice ("duplicate tensor input"), which
happens when e.g. ``x.double()`` of a float64 ``x`` returns ``x`` itself.

Example::

    >>> import torch
    >>> class Twice(torch.autograd.Function):
    ...     @staticmethod
    ...     def forward(x):
    ...         return 2 * x
    ...     @staticmethod
    ...     def setup_context(ctx, inputs, output):
    ...         pass
    ...     @staticmethod
    ...     def backward(ctx, grad):
    ...         return 2 * grad
    >>> apply(Twice, torch.ones(2))
    tensor([2., 2.])
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

_C_APPLY = torch._C._FunctionBase.__dict__["apply"]  # the C++ classmethod, unbound


def _needs_wrapper(args: tuple[Any, ...]) -> bool:
    """Whether ``Function.apply``'s Python wrapper is needed: a ``torch.func`` transform is
    active, ``torch.compile`` is tracing, or an argument is a ``torch.func`` wrapped tensor
    (possibly dead: the wrapper unwraps it)."""
    if torch._C._are_functorch_transforms_active() or torch.compiler.is_compiling():
        return True
    wrapped = torch._C._functorch.is_functorch_wrapped_tensor
    return any(isinstance(a, Tensor) and wrapped(a) for a in args)


def apply(function: type[torch.autograd.Function], *args: Any) -> Any:
    """``function.apply(*args)``; the C++ apply directly when nothing needs the Python wrapper
    (module docstring). ``args`` must fill every parameter of ``function.forward`` (defaults
    are not filled in on the direct path)."""
    if _needs_wrapper(args):
        return function.apply(*args)
    return _C_APPLY.__get__(None, function)(*args)


def distinct(*tensors: Tensor) -> tuple[Tensor, ...]:
    """``tensors`` with each repeat of an earlier one (the same object) replaced by a view of
    it (same values, same autograd history), so an ``autograd.Function`` under
    ``torch.compile`` receives no tensor twice; outside compilation ``tensors`` as given (eager
    autograd and ``torch.func`` accept repeats; the check would cost ~n^2/2 comparisons)."""
    if not torch.compiler.is_compiling():
        return tensors
    out: list[Tensor] = []
    for t in tensors:
        repeat = False
        for seen in out:  # (plain loops: traced by torch.compile as they are)
            repeat = repeat or seen is t
        out.append(t.view_as(t) if repeat else t)
    return tuple(out)
