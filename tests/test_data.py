"""Data loaders added for the Bayesian-network experiments."""

from __future__ import annotations

import torch

from reparam.data import diabetes, load


def test_diabetes_splits_and_standardisation() -> None:
    splits = diabetes()
    assert (len(splits.x_train), len(splits.x_valid), len(splits.x_test)) == (310, 44, 88)
    assert splits.num_features == 10 and splits.y_train.dtype == torch.float32
    torch.testing.assert_close(splits.x_train.mean(0), torch.zeros(10), atol=1e-5, rtol=0)
    torch.testing.assert_close(splits.x_train.std(0, unbiased=False), torch.ones(10), atol=1e-4, rtol=0)
    assert float(splits.y_train.min()) >= 25 and float(splits.y_train.max()) <= 346  # original units
    assert torch.equal(load("diabetes").x_test, splits.x_test)
