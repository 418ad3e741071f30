"""Shared test settings: deterministic seeds, double precision helpers, data paths."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BINARIZED_MNIST = SHARED_DATA / "binarized_mnist.npz"


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Every test starts from the same seed, so statistical thresholds are reproducible."""
    torch.manual_seed(0)


@pytest.fixture
def mnist_path() -> Path:
    if not BINARIZED_MNIST.is_file():
        pytest.skip(f"{BINARIZED_MNIST} not present")
    return BINARIZED_MNIST
