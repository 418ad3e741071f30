"""Checks and builders shared by the problem modules: option validation with errors that name
the option, and float64 leaf parameters."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def positive(name: str, value: float) -> float:
    """``value`` as a float, or a ``ValueError`` naming ``name`` unless finite and > 0."""
    value = float(value)
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(f"{name} must be a positive finite number, got {value}; e.g. {name}=1.0.")
    return value


def finite(name: str, value: float) -> float:
    """``value`` as a float, or a ``ValueError`` naming ``name`` unless finite."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}.")
    return value


def leaf(value: float | list[float]) -> Tensor:
    """A float64 parameter with ``requires_grad=True``."""
    return torch.tensor(value, dtype=torch.float64, requires_grad=True)
