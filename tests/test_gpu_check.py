"""``benchmarks/gpu_check.py`` runs without error where there is no GPU (its CUDA part skipped),
and its device checks pass on the CPU, so the script a GPU session runs cannot rot."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)
    return module


def test_script_runs_on_the_cpu(gpu_check, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    assert gpu_check.main(["--cpu-max-n", "100", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "| Gamma(3) | 1e+02 |" in out and "| VAE step" in out


def test_device_checks_pass_on_the_cpu(gpu_check) -> None:  # type: ignore[no-untyped-def]
    """Every distribution and estimator case ends on the device, finite; host syncs are
    counted (the GPU run requires 0) but only errors and wrong devices fail here."""
    for case, result in gpu_check.device_checks(torch.device("cpu")):
        assert result == "ok" or result.split()[1:3] == ["host", "syncs:"], (case, result)
