"""``rp.compile``: what it passes to ``torch.compile``, and that its ``fallback_random`` is what
makes an inductor-compiled step draw eager's numbers.

Every estimator, layer and model step compiled with ``rp.compile`` is checked against eager in
tests/estimators/test_compile.py, tests/nn/test_compile.py and tests/models/test_compile.py.
Its speed is measured by benchmarks/bench_compile.py and benchmarks/bench_compile_layers.py
(never by tests).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch._dynamo
from seeds import seeded
from torch import Tensor
from torch.distributions import Normal

import reparam as rp

pytestmark = pytest.mark.usefixtures("validation_off_as_under_compile")  # as torch.compile runs


def _captured(monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def fake(fn: object, **given: Any) -> object:
        seen.update(given)
        return fn

    monkeypatch.setattr(torch, "compile", fake)
    step = lambda x: x  # noqa: E731
    assert rp.compile(step, **kwargs) is step
    return seen


def test_defaults_are_fullgraph_static_and_fallback_random(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _captured(monkeypatch)
    assert seen["fullgraph"] is True and seen["dynamic"] is False
    assert seen["options"] == {"fallback_random": True}
    assert "mode" not in seen  # torch.compile refuses mode together with options


def test_mode_is_spelled_out_as_options_and_user_options_win(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _captured(
        monkeypatch, mode="max-autotune-no-cudagraphs", dynamic=None, options={"max_autotune": False}
    )
    assert seen["dynamic"] is None and "mode" not in seen
    # the mode's own settings, then fallback_random, then the caller's options on top
    expected = {"max_autotune": False, "coordinate_descent_tuning": True, "fallback_random": True}
    assert seen["options"] == expected
    seen = _captured(monkeypatch, fallback_random=False)
    assert seen["options"] == {"fallback_random": False}


def test_other_backends_get_no_inductor_options(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _captured(monkeypatch, backend="aot_eager")
    assert seen["backend"] == "aot_eager" and seen["fullgraph"] is True and seen["options"] is None


@pytest.mark.slow  # two inductor compilations: ~15 s with a cold inductor cache, ~3 s warm
def test_fallback_random_gives_the_eager_draws_and_inductors_own_do_not() -> None:
    # Pathwise(Antithetic): the torch.randn that inductor replaces by its own Philox code unless
    # fallback_random is set.
    loc = torch.randn(5, requires_grad=True)

    def step(loc: Tensor) -> Tensor:
        q = Normal(loc, 1.0, validate_args=False)
        return rp.expect(lambda z: (z - 1.0).square().sum(-1), q, rp.Pathwise(sampling=rp.Antithetic()), 8)

    def value_and_grad(fn: Any) -> tuple[Tensor, Tensor]:
        torch.manual_seed(seeded(5))
        loc.grad = None
        value = fn(loc)
        value.backward()
        assert loc.grad is not None
        return value.detach(), loc.grad.clone()

    torch._dynamo.reset()
    eager = value_and_grad(step)
    recommended = value_and_grad(rp.compile(step))
    own_generator = value_and_grad(rp.compile(step, fallback_random=False))
    for e, c in zip(eager, recommended, strict=True):
        # same draws; float32 reassociation over a few ops
        torch.testing.assert_close(c, e, rtol=1e-5, atol=1e-6)
    # inductor's Philox stream is another sequence: the value, sum((loc - 1)^2) + the mean of
    # the 20 squared normals, differs unless those coincide with eager's (probability 0; the
    # gradient 2 (loc - 1) does not depend on the antithetic draws)
    assert not torch.allclose(own_generator[0], eager[0])
