"""Policy tests run many small sequential rollouts: one torch thread is far faster for them on
a small, shared machine (intra-op threads only add synchronisation)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
