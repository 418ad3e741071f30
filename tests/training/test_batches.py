"""ShuffledBatches: every row once per epoch, and a restored state continues identically."""

from __future__ import annotations

import pytest
import torch
from seeds import seeded

from reparam.training import ShuffledBatches


def test_each_epoch_is_a_permutation() -> None:
    batches = ShuffledBatches(10, 5, seed=seeded(3))
    epoch = torch.cat([batches.next(), batches.next()])
    assert sorted(epoch.tolist()) == list(range(10))


def test_restored_state_continues_the_same_sequence() -> None:
    first = ShuffledBatches(7, 3, seed=seeded(1))
    for _ in range(4):
        first.next()
    saved = first.state()
    expected = [first.next() for _ in range(5)]
    second = ShuffledBatches(7, 3, seed=seeded(99))
    second.load(saved)
    for want in expected:
        assert torch.equal(second.next(), want)


def test_bad_sizes_are_named() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        ShuffledBatches(10, 0, seed=seeded(0))
