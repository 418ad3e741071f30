"""``--device auto|cpu|cuda[:N]|mps`` to a ``torch.device`` with an error naming the fix."""

from __future__ import annotations

import torch

from reparam.training.errors import OptionsError


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto``: CUDA (the process's local rank under ``torchrun``) when available, else MPS,
    else the CPU. ``cuda`` under ``torchrun`` also picks the local rank's GPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise OptionsError(
            f"--device {name!r} is not a device; use auto, cpu, cuda, cuda:N or mps."
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise OptionsError(f"--device {name}: CUDA is not available here; use --device cpu (or auto).")
        index = local_rank if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise OptionsError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here.")
        return torch.device("cuda", index)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise OptionsError("--device mps: MPS is not available here; use --device cpu (or auto).")
    if device.type not in ("cpu", "cuda", "mps"):
        raise OptionsError(f"--device {name!r}: use auto, cpu, cuda, cuda:N or mps.")
    return device
