"""``--precision 32|bf16-mixed|16-mixed``: mixed precision through ``torch.autocast`` (and,
for float16, ``torch.amp.GradScaler``), the names Lightning uses.

* ``32``: float32 throughout (the default).
* ``bf16-mixed``: the forward pass under ``torch.autocast(device, torch.bfloat16)``: matrix
  products and convolutions in bfloat16, reductions, losses and log-densities in float32,
  parameters and optimizer state in float32. bfloat16 has float32's exponent range, so no
  loss scaling is needed. Works on the CPU and on GPUs with bfloat16 support.
* ``16-mixed``: the same with float16, whose range is narrow: the loss is multiplied by a
  scale before ``backward`` and the gradients divided by it before the step
  (:class:`torch.amp.GradScaler`; steps with non-finite gradients are skipped and the scale
  lowered). CUDA (and MPS) only: refused on the CPU.

Example:
    >>> precision = Precision.resolve("bf16-mixed", torch.device("cpu"))
    >>> with precision.autocast():
    ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
    torch.bfloat16
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import torch

from reparam.training.errors import OptionsError

PRECISIONS = ("32", "bf16-mixed", "16-mixed")
_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def check_precision(name: str) -> None:
    """An :class:`OptionsError` naming ``--precision`` unless ``name`` is one of :data:`PRECISIONS`."""
    if name not in PRECISIONS:
        raise OptionsError(f"--precision must be one of {', '.join(PRECISIONS)}, got {name!r}.")


@dataclass
class Precision:
    """How a training step runs its forward pass, backward pass and optimizer step."""

    name: str = "32"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    scaler: Any = None  # torch.amp.GradScaler for 16-mixed

    @classmethod
    def resolve(cls, name: str, device: torch.device) -> Precision:
        """``name`` on ``device``, or an :class:`OptionsError` saying why not and what to use."""
        check_precision(name)
        if name == "16-mixed" and device.type == "cpu":
            raise OptionsError(
                "--precision 16-mixed needs a GPU (float16 loss scaling is for CUDA/MPS); "
                "on the CPU use --precision bf16-mixed or 32."
            )
        if name == "bf16-mixed" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise OptionsError(
                f"--precision bf16-mixed: {torch.cuda.get_device_name(device)} has no bfloat16 support; "
                "use --precision 16-mixed or 32."
            )
        scaler = torch.amp.GradScaler(device.type) if name == "16-mixed" else None
        return cls(name, device, scaler)

    @property
    def mixed(self) -> bool:
        return self.name != "32"

    def autocast(self) -> AbstractContextManager[Any]:
        """The forward pass's context: ``torch.autocast`` at the chosen dtype (off for ``32``)."""
        dtype = _DTYPES.get(self.name, torch.float32)
        return torch.autocast(self.device.type, dtype=dtype, enabled=self.mixed)

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()``, of the scaled loss under ``16-mixed``."""
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()`` (unscaled, skipped on non-finite gradients under ``16-mixed``)."""
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        """The loss scaler's state (plain numbers; empty without one)."""
        return dict(self.scaler.state_dict()) if self.scaler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
