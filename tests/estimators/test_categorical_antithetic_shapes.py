"""Shapes and dtypes shared by the categorical antithetic estimators (ARSM, CARMS): size-0 batch
dims give empty, correctly shaped gradients; float32 stays float32. (Their refusal of second
derivatives is in test_first_order_only.py, their unbiasedness in test_arsm.py/test_carms.py.)"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from categorical_cases import COUPLED_LOGITS, coupled_cost
from torch.distributions import Categorical, OneHotCategorical

import reparam as rp

# estimator and the smallest num_samples it takes
ESTIMATORS: dict[str, tuple[Callable[[], object], int]] = {"ARSM": (rp.ARSM, 2), "CARMS": (rp.CARMS, 3)}


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
@pytest.mark.parametrize("shape", [(0,), (2, 0), (0, 3)])
def test_size_zero_batch(no_default_validation: None, name: str, shape: tuple[int, ...]) -> None:
    make, n = ESTIMATORS[name]
    leaf = torch.zeros(*shape, 3, dtype=torch.float64, requires_grad=True)
    q = OneHotCategorical(logits=leaf, validate_args=False)
    value = make()(lambda y: y.sum((-2, -1)) if len(shape) > 1 else y.sum(-1), q, n)  # type: ignore[operator]
    (grad,) = torch.autograd.grad(value.sum(), leaf, allow_unused=True)
    assert grad is not None and grad.shape == leaf.shape


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_float32_keeps_dtype(name: str) -> None:
    make, n = ESTIMATORS[name]
    leaf = COUPLED_LOGITS.float().requires_grad_(True)
    value = make()(lambda z: coupled_cost(z).float(), Categorical(logits=leaf), n)  # type: ignore[operator]
    (grad,) = torch.autograd.grad(value, leaf)
    assert value.dtype == grad.dtype == torch.float32 and torch.isfinite(grad).all()
