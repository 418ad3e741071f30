"""``_apply.apply``: the C++ apply outside ``torch.func``/compile (same values and gradients as
``Function.apply``), the full ``Function.apply`` inside them; ``distinct`` lets a Function given
one tensor twice compile with ``fullgraph=True``."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch._dynamo
from torch import Tensor

from reparam.distributions._apply import apply, distinct

pytestmark = pytest.mark.usefixtures("validation_off_as_under_compile")


class _Scale(torch.autograd.Function):
    """``x * y``, backward by hand; counts the calls that go through ``Function.apply``."""

    wrapped_calls = 0
    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, y: Tensor, factor: float) -> Tensor:
        return x * y * factor

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        x, y, factor = inputs
        ctx.save_for_backward(x, y)
        ctx.factor = factor

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, None]:
        x, y = ctx.saved_tensors
        return grad * y * ctx.factor, grad * x * ctx.factor, None

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        cls.wrapped_calls += 1
        return super().apply(*args, **kwargs)


def test_direct_apply_equals_function_apply_outside_transforms() -> None:
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([3.0, -1.0], dtype=torch.float64, requires_grad=True)
    _Scale.wrapped_calls = 0
    got = apply(_Scale, x, y, 0.5)
    assert _Scale.wrapped_calls == 0  # the direct path: no per-call argument binding
    want = _Scale.apply(x, y, 0.5)
    assert torch.equal(got, want)
    assert torch.equal(torch.stack(torch.autograd.grad(got.sum(), (x, y))), torch.stack([0.5 * y, 0.5 * x]))


def test_function_apply_under_torch_func() -> None:
    y = torch.tensor([3.0, -1.0], dtype=torch.float64)
    _Scale.wrapped_calls = 0
    got = torch.func.grad(lambda x: apply(_Scale, x, y, 2.0).sum())(torch.ones(2, dtype=torch.float64))
    assert _Scale.wrapped_calls >= 1  # torch.func needs the wrapper (custom_function_call)
    assert torch.equal(got, 2.0 * y)
    rows = torch.func.vmap(lambda x: apply(_Scale, x, y, 1.0))(torch.eye(2, dtype=torch.float64))
    assert torch.equal(rows, torch.diag(y))


def test_distinct_makes_repeats_views_only_where_needed() -> None:
    x = torch.ones(2, requires_grad=True)
    assert distinct(x, x)[1] is x  # eager: as given (eager autograd accepts repeats)

    def step(x: Tensor) -> Tensor:
        return apply(_Scale, *distinct(x, x), 3.0)

    torch._dynamo.reset()
    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    out = compiled(x)  # without distinct: "autograd.Function.apply: duplicate tensor input"
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.equal(out.detach(), torch.full((2,), 3.0))
    assert torch.equal(grad, torch.full((2,), 6.0))  # d(3 x^2)/dx = 6x, both routes summed
