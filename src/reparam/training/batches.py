"""Epoch-wise shuffled minibatch indices whose state goes into a checkpoint, so a resumed run
draws the same batches as an uninterrupted one."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class ShuffledBatches:
    """Indices of ``batch_size`` rows out of ``n``, reshuffled at every epoch by a dedicated
    generator (seeded with ``seed``), so the data order does not depend on the global RNG.

    ``state()`` / ``load(state)`` save and restore the generator, the current permutation and
    the position in it.
    """

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        if n < 1 or batch_size < 1:
            raise ValueError(f"need n >= 1 rows and batch_size >= 1, got n={n}, batch_size={batch_size}.")
        self.n, self.batch_size = n, min(batch_size, n)
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.randperm(n, generator=self.generator)
        self.position = 0

    def next(self) -> Tensor:
        """The next batch of row indices; a new permutation once the current one runs out."""
        if self.position + self.batch_size > self.n:
            self.order = torch.randperm(self.n, generator=self.generator)
            self.position = 0
        rows = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return rows

    def state(self) -> dict[str, Any]:
        return {
            "generator": self.generator.get_state(),
            "order": self.order.clone(),
            "position": self.position,
        }

    def load(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.order = state["order"].clone()
        self.position = int(state["position"])
