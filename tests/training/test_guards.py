"""Non-finite losses stop training with a clear message; Ctrl-C becomes a flag."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from reparam.training import GracefulInterrupt, NonFiniteLossError, check_finite


def test_check_finite_passes_finite_and_names_step_on_nan() -> None:
    assert check_finite(torch.tensor(1.5), step=0) == 1.5
    with pytest.raises(NonFiniteLossError, match="step 7"):
        check_finite(torch.tensor(float("nan")), step=7)
    with pytest.raises(NonFiniteLossError):
        check_finite(float("inf"), step=1)


def test_first_sigint_sets_flag_second_interrupts() -> None:
    with GracefulInterrupt() as interrupt:
        os.kill(os.getpid(), signal.SIGINT)
        assert interrupt.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
