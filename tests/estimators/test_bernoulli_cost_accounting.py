"""The Bernoulli antithetic estimators call ``f`` once per step, on as many rows as their
``evaluations`` says: DisARM two per antithetic pair, ARMS and DoubleCV one per sample."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor
from torch.distributions import Bernoulli

import reparam as rp


@pytest.mark.parametrize(
    ("make", "rows"), [(rp.DisARM, 10), (rp.ARMS, 5), (rp.DoubleCV, 5)], ids=["DisARM", "ARMS", "DoubleCV"]
)
def test_one_call_and_cost(make: Callable[[], rp.Estimator], rows: int) -> None:
    calls: list[int] = []

    def f(b: Tensor) -> Tensor:
        calls.append(b.shape[0])
        return b.sum(-1)

    q = Bernoulli(probs=torch.full((3,), 0.3, requires_grad=True))
    make()(f, q, 5)
    assert calls == [rows]
    assert make().evaluations(q, 5) == rows  # type: ignore[attr-defined]
