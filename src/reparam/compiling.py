"""``rp.compile``: ``torch.compile`` with the settings that keep a Monte Carlo step fast.

A Monte Carlo gradient step draws random numbers. By default inductor replaces ATen's random
number generators in the graphs it compiles by its own counter-based (Philox) code; on the CPU
that code is generated per element and is not vectorised, so a step that draws many numbers
(a Bayesian layer's weight noise, antithetic Normal draws) runs 1.1-5x slower compiled than
eager. With inductor's ``fallback_random`` option the compiled graph calls ATen's generators
instead, which (a) makes every layer and model step measured on the CPU faster compiled than
eager (0.6-0.99 of the eager time; a step of a few microsecond kernels stays faster eager, as a
compiled call has a fixed cost of about 0.07 ms) and (b) draws exactly the numbers eager draws
from the same seed, so a compiled step reproduces the eager one. Figures: docs/gpu.md, "Step
time, compiled / eager".

Importing this module does not import ``torch._dynamo``: ``torch.compile`` loads the compiler
stack when it is first called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import torch

F = TypeVar("F", bound=Callable[..., Any])


def compile(  # named after torch.compile, which it wraps
    fn: F,
    *,
    fallback_random: bool = True,
    dynamic: bool | None = False,
    mode: str | None = None,
    backend: str = "inductor",
    options: dict[str, Any] | None = None,
) -> F:
    r"""``torch.compile(fn, fullgraph=True, dynamic=False, options={"fallback_random": True})``.

    The recommended way to compile a step that samples (an ``rp.expect`` call, a Bayesian
    layer's forward, a model's objective): the whole function becomes one graph
    (``fullgraph=True``: a graph break raises instead of silently running part of the step
    eagerly), and inductor draws with ATen's generators (``fallback_random``), which on the CPU
    is faster than inductor's own random-number code and gives the eager draws for the same
    seed. Call ``.backward()`` on the result as usual: AOT autograd compiles the backward with
    the forward.

    Args:
        fn: the function (or ``nn.Module``) to compile.
        fallback_random: ``True`` (default): ATen's generators inside the graph. ``False``:
            inductor's own Philox code, which fuses the draws into the surrounding kernels; on
            the CPU it is 1.1-5x slower for steps drawing many numbers, on a GPU it may be
            faster (not measured yet), and its draws differ from eager's.
        dynamic: passed to ``torch.compile``. ``False`` (default): one graph per distinct set
            of input shapes, each compiled for its sizes (a fixed batch size and a smaller last
            batch: two graphs; at most ``torch._dynamo.config.recompile_limit``, 8 by
            default). ``None`` (torch's default) recompiles with symbolic sizes when a shape
            first changes and runs that graph from then on: fewer compilations, but on the
            CPU a symbolic-size step was up to 1.4x slower than the static one (docs/gpu.md).
            Use ``None`` or ``True`` when the shapes vary from call to call.
        mode: an inductor mode (``torch.compile``'s ``mode``: ``"max-autotune"``, ...); its
            settings are merged with ``fallback_random`` (``None``: the default mode).
        backend: passed to ``torch.compile``; ``fallback_random`` and ``mode`` apply to
            ``"inductor"`` only (other backends generate no random-number code).
        options: further inductor options, merged over those of ``mode`` and
            ``fallback_random``.

    Returns:
        The compiled function, called like ``fn``.

    Example:
        >>> import torch, reparam as rp
        >>> loc = torch.zeros(3, requires_grad=True)
        >>> def step(loc):
        ...     q = torch.distributions.Normal(loc, 1.0, validate_args=False)
        ...     return rp.expect(lambda z: (z - 1).pow(2).sum(-1), q, rp.Pathwise(), 16)
        >>> compiled = rp.compile(step)
        >>> _ = torch.manual_seed(0); eager_value = step(loc)
        >>> # seconds of inductor code generation: not run with the docstring examples;
        >>> # tests/test_compiling.py checks the same (the eager draws, compiled)
        >>> _ = torch.manual_seed(0); compiled_value = compiled(loc)  # doctest: +SKIP
        >>> torch.allclose(compiled_value, eager_value)  # doctest: +SKIP
        True
        >>> compiled_value.backward(); loc.grad.shape  # doctest: +SKIP
        torch.Size([3])
    """
    if backend != "inductor":
        compiled = torch.compile(fn, fullgraph=True, dynamic=dynamic, backend=backend, options=options)
        return cast(F, compiled)
    settings: dict[str, Any] = {}
    if mode is not None:
        # torch.compile takes a mode or options, not both: spell the mode out as its options
        from torch._inductor import list_mode_options

        settings.update(list_mode_options(mode, dynamic))
    settings["fallback_random"] = fallback_random
    settings.update(options or {})
    return cast(F, torch.compile(fn, fullgraph=True, dynamic=dynamic, options=settings))
