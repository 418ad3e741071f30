"""Guards for training loops: non-finite losses and Ctrl-C."""

from __future__ import annotations

import math
import signal
from types import FrameType, TracebackType

from torch import Tensor


class NonFiniteLossError(FloatingPointError):
    """The loss or the parameters became NaN or Inf (the engine keeps the last good checkpoint)."""


def check_finite(loss: Tensor | float, step: int) -> float:
    """Return ``float(loss)`` or raise :class:`NonFiniteLossError` naming the step."""
    value = float(loss)
    if not math.isfinite(value):
        raise NonFiniteLossError(
            f"loss is {value} at step {step}; training stopped. Lower the learning rate, or check "
            "the data and the model's scales"
        )
    return value


class GracefulInterrupt:
    """Context manager turning the first SIGINT (Ctrl-C) into a flag, so the loop can save a
    checkpoint and exit cleanly; a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: object = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> GracefulInterrupt:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not in the main thread: leave SIGINT alone
            self._previous = None
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)  # type: ignore[arg-type]
