"""``--precision``: a bf16-mixed VAE run on the CPU trains (its loss falls), runs the forward
pass in bfloat16 (its weights differ from the float32 run's), checkpoints (``weights_only``,
verified) and resumes; 16-mixed is refused on the CPU, unknown names everywhere."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from reparam.data import digits
from reparam.training import OptionsError, RunSettings, fit, load_checkpoint
from reparam.training.precision import Precision
from reparam.training.tasks.vae import VAEOptions, VAETask

OPTIONS = VAEOptions(batch_size=32, hidden=(32,), latent=4, lr=3e-3, lr_final=3e-3, eval_k=4, eval_size=50)


def settings(out: Path, **changes: object) -> RunSettings:
    base = RunSettings(out=out, steps=40, log_every=10, eval_every=40, progress=False, device="cpu")
    return replace(base, **changes)  # type: ignore[arg-type]


def test_bf16_mixed_vae_trains_and_checkpoints_on_cpu(tmp_path: Path) -> None:
    splits = digits(binarize=True)
    mixed = fit(VAETask(OPTIONS, splits), settings(tmp_path / "bf16", precision="bf16-mixed"))
    fit(VAETask(OPTIONS, splits), settings(tmp_path / "fp32"))
    assert mixed.status == "done" and mixed.step == 40
    # trains: the window mean of the loss falls by more than a tenth over 40 steps (it falls from
    # 43 to 30 nats; a forward pass broken by bfloat16 would leave it flat or non-finite)
    log = (tmp_path / "bf16" / "metrics.jsonl").read_text().splitlines()
    losses = [json.loads(line)["loss"] for line in log]
    first, last = losses[0], losses[-1]
    assert last < 0.9 * first, (first, last)
    # checkpoints: weights_only, verified, float32 parameters, the precision recorded
    raw = torch.load(tmp_path / "bf16" / "checkpoint.pt", weights_only=True)
    assert raw["state"]["settings"]["precision"] == "bf16-mixed"
    state = load_checkpoint(tmp_path / "bf16" / "checkpoint.pt", kind="vae")
    weights = state["task"]["model"]
    assert all(t.dtype == torch.float32 and bool(torch.isfinite(t).all()) for t in weights.values())
    # the forward pass really ran in bfloat16: same seed and data, different weights
    reference = load_checkpoint(tmp_path / "fp32" / "checkpoint.pt")["task"]["model"]
    assert any(not torch.equal(weights[k], reference[k]) for k in weights)
    # and a bf16 run resumes
    resumed = fit(
        VAETask(OPTIONS, splits), settings(tmp_path / "bf16", precision="bf16-mixed", steps=45, resume=True)
    )
    assert resumed.step == 45 and load_checkpoint(tmp_path / "bf16" / "checkpoint.pt")["step"] == 45


def test_autocast_dtypes() -> None:
    cpu = torch.device("cpu")
    with Precision.resolve("bf16-mixed", cpu).autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with Precision.resolve("32", cpu).autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    assert Precision.resolve("32", cpu).state_dict() == {}


def test_refusals(tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match="16-mixed needs a GPU.*bf16-mixed"):
        Precision.resolve("16-mixed", torch.device("cpu"))
    with pytest.raises(OptionsError, match="--precision must be one of 32, bf16-mixed, 16-mixed, got '64'"):
        fit(VAETask(OPTIONS, digits(binarize=True)), settings(tmp_path / "run", precision="64"))
    assert not (tmp_path / "run").exists()
