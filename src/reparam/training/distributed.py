"""The process group of a ``torchrun`` launch, through ``torch.distributed`` and
``DistributedDataParallel`` (no layer of our own): which rank this process is, averaging
metrics across ranks, gathering per-rank RNG states for the checkpoint, and wrapping the model.

Plain ``torch.distributed`` rather than Lightning Fabric: the engine needs only DDP's gradient
all-reduce, a rank-sliced batch and a few collectives, all in torch itself, so data-parallel
training costs no extra dependency. ``torchrun --nproc-per-node N -m reparam train ...`` sets
``WORLD_SIZE``/``RANK``/``LOCAL_RANK``; without them the world is one process and nothing here
touches ``torch.distributed``.
"""

from __future__ import annotations

import atexit
import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class World:
    """This process's place among ``size`` data-parallel processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes files and shows progress."""
        return self.rank == 0

    def mean(self, values: list[float], device: torch.device) -> list[float]:
        """The across-rank means of ``values`` (one all-reduce)."""
        if self.size == 1 or not values:
            return values
        packed = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(packed)
        return (packed / self.size).tolist()

    def any(self, flags: list[bool], device: torch.device) -> list[bool]:
        """For each flag, whether any rank raised it (one all-reduce)."""
        if self.size == 1:
            return flags
        packed = torch.tensor([float(f) for f in flags], device=device)
        dist.all_reduce(packed)
        return [bool(v > 0) for v in packed.tolist()]

    def gather(self, value: Any) -> list[Any]:
        """``value`` from every rank, in rank order."""
        if self.size == 1:
            return [value]
        values: list[Any] = [None] * self.size
        dist.all_gather_object(values, value)
        return values

    def wrap(self, module: nn.Module, device: torch.device, unused: bool = False) -> nn.Module:
        """``module`` under ``DistributedDataParallel`` (gradients averaged across ranks);
        ``unused``: some parameters may get no gradient in a step."""
        if self.size == 1:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=unused)


LEAVE_TIMEOUT = timedelta(seconds=60)


def leave_world() -> None:
    """Destroy the process group :func:`join_world` created (a no-op without one).

    The ranks first wait for each other (at most :data:`LEAVE_TIMEOUT`; a rank that died is
    reported by the barrier and then left): a rank that tears gloo down while a peer is still
    talking to it aborted the process at exit ("terminate called without an active exception")."""
    if not dist.is_initialized():
        return
    try:
        if dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=LEAVE_TIMEOUT)
        else:
            dist.barrier()
    except RuntimeError as error:  # a peer gone: nothing left to wait for
        print(f"reparam: leaving the process group without every rank: {error}", file=sys.stderr)
    dist.destroy_process_group()


def local_rank() -> int:
    """``LOCAL_RANK`` set by ``torchrun`` (0 without it)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def join_world(device: torch.device) -> World:
    """The world ``torchrun`` describes in the environment (initialising the process group:
    NCCL for CUDA devices, else gloo), or a one-process world."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" and dist.is_nccl_available() else "gloo"
        dist.init_process_group(backend)
        atexit.register(leave_world)  # kept for later runs in this process; destroyed at exit
    return World(rank, size, local_rank)
