"""``reparam train vae``: runs never lost (refuse / --overwrite / --resume), bit-for-bit resume,
non-finite guard, SIGKILL, Ctrl-C (exit 130 with the resume command), usage errors."""

from __future__ import annotations

import gzip
import json
import os
import signal
import struct
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from seeds import seeded
from typer.testing import CliRunner

from reparam.cli import _register
from reparam.cli.app import app
from reparam.data import digits, load
from reparam.training import RunSettings, fit, load_checkpoint
from reparam.training.tasks.vae import VAEOptions, VAETask

_register()
SMALL = ["--hidden", "16", "--latent", "3", "--eval-k", "5", "--eval-size", "50", "--no-progress"]
TINY = VAEOptions(batch_size=32, hidden=(16,), latent=3, eval_k=5, eval_size=50)


def settings(out: Path, **changes: object) -> RunSettings:
    base = RunSettings(out=out, steps=40, log_every=5, eval_every=10, progress=False, device="cpu")
    return replace(base, **changes)  # type: ignore[arg-type]


def invoke(*args: str):
    return CliRunner().invoke(app, ["train", "vae", *args])


def test_second_run_is_refused_files_unchanged_then_resume_and_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["--out", str(out), "--steps", "10", "--log-every", "5", "--eval-every", "10", *SMALL]
    first = invoke(*args, "--objective", "iwae", "--k", "3", "--gradient", "dreg")
    assert first.exit_code == 0, first.output
    assert "evaluation (valid_bound" in first.output and "at step 10" in first.output
    for name in ("samples.png", "reconstructions.png", "learning_curves.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "metrics.csv").read_text().startswith("step,loss,lr,")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    second = invoke(*args, "--objective", "iwae", "--k", "3", "--gradient", "dreg")
    assert second.exit_code == 2 and "--resume" in second.output and "--overwrite" in second.output
    assert "Traceback" not in second.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    resumed = invoke(
        *args[:2],
        "--steps",
        "15",
        *args[4:],
        "--objective",
        "iwae",
        "--k",
        "3",
        "--gradient",
        "dreg",
        "--resume",
    )
    assert resumed.exit_code == 0 and "resuming from step 10" in resumed.output
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 15
    changed = invoke(*args, "--lr", "0.5", "--resume")
    assert changed.exit_code == 2 and "--lr" in changed.output and "different options" in changed.output
    moved = invoke(*args, "--overwrite", "--no-plots")
    assert moved.exit_code == 0 and "moved the previous run" in moved.output
    (old,) = tmp_path.glob("run.old-*")
    assert load_checkpoint(old / "checkpoint.pt")["step"] == 15


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "nope.npz"], "does not exist"),
        (["--data", "mnist"], "unknown data source"),
        (["--resume"], "no checkpoint.pt"),
        (["--objective", "iwae", "--estimator", "reinforce"], "pathwise"),
        (["--hidden", "a,b"], "--hidden"),
        (["--device", "tpu"], "--device"),
    ],
)
def test_user_errors_are_one_line_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = invoke("--out", str(tmp_path / "run"), "--steps", "2", *SMALL, *args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 2 and not (tmp_path / "run").exists()


def test_corrupt_checkpoint_is_refused_on_resume(tmp_path: Path) -> None:
    assert fit(VAETask(TINY), settings(tmp_path, steps=3)).status == "done"
    path = tmp_path / "checkpoint.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    result = invoke("--out", str(tmp_path), "--resume", "--batch-size", "32", *SMALL)
    assert result.exit_code == 2 and str(path) in result.output and "Traceback" not in result.output


def test_resume_is_bit_for_bit_the_uninterrupted_run(tmp_path: Path) -> None:
    # Stop at step 11 (mid-epoch: 1257 rows / 32 per batch), resume to 24, compare everything.
    splits = digits(binarize=True)
    for estimator, objective, k in (("pathwise", "iwae", 3), ("reinforce-ma", "elbo", 1)):
        options = replace(TINY, estimator=estimator, objective=objective, k=k)
        full, parts = tmp_path / f"full-{estimator}", tmp_path / f"parts-{estimator}"
        assert fit(VAETask(options, splits), settings(full, steps=24)).status == "done"
        stopped = fit(VAETask(options, splits), settings(parts, steps=24), stop=lambda step: step >= 11)
        assert stopped.status == "interrupted" and stopped.step == 11
        assert fit(VAETask(options, splits), settings(parts, steps=24, resume=True)).step == 24
        a, b = load_checkpoint(full / "checkpoint.pt"), load_checkpoint(parts / "checkpoint.pt")
        for name, tensor in a["task"]["model"].items():
            assert torch.equal(tensor, b["task"]["model"][name]), name
        assert torch.equal(a["rng"][0]["torch"], b["rng"][0]["torch"])
        assert a["task"]["estimator"] == b["task"]["estimator"]  # the moving-average baseline too

        def lines(out: Path) -> list[dict[str, float]]:
            rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
            return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]

        assert lines(full) == lines(parts)


class PoisonedVAE(VAETask):
    def loss(self, step: int):
        loss, metrics = super().loss(step)
        return (loss * float("nan") if step == 7 else loss), metrics


def test_nonfinite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    result = fit(PoisonedVAE(TINY), settings(tmp_path, steps=20, checkpoint_every=3))
    assert result.status == "nonfinite" and result.step == 7
    assert "last good checkpoint (step 6)" in result.message
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["step"] == 6 and all(torch.isfinite(t).all() for t in state["task"]["model"].values())


def test_nan_data_is_refused_before_training(tmp_path: Path) -> None:
    splits = digits(binarize=True)
    x = splits.x_train.clone()
    x[5, 0] = float("nan")
    with pytest.raises(Exception, match="non-finite"):
        fit(VAETask(TINY, replace(splits, x_train=x)), settings(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def _launch(out: Path, *extra: str) -> subprocess.Popen[bytes]:
    code = "from reparam.cli import main; main()"
    args = ["train", "vae", "--out", str(out), "--steps", "100000", "--checkpoint-every", "5", *SMALL, *extra]
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def _wait_for_training(
    out: Path, process: subprocess.Popen[bytes], timeout: float = 120.0, beyond: int = 9
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        path = out / "checkpoint.pt"
        if path.is_file() and load_checkpoint(path)["step"] > beyond:
            return
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"training did not pass step {beyond} in time")


def test_sigkill_leaves_a_loadable_checkpoint_and_ctrl_c_prints_the_resume_command(tmp_path: Path) -> None:
    process = _launch(tmp_path / "a", "--no-plots")
    _wait_for_training(tmp_path / "a", process)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    killed = load_checkpoint(tmp_path / "a" / "checkpoint.pt")["step"]
    assert killed >= 10
    process = _launch(tmp_path / "a", "--no-plots", "--resume")  # stale temporaries are removed
    _wait_for_training(tmp_path / "a", process, beyond=killed)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=60)[0].decode()
    assert process.returncode == 130, output
    assert "Traceback" not in output and "resuming from step" in output
    state = load_checkpoint(tmp_path / "a" / "checkpoint.pt")
    assert f"interrupted at step {state['step']}" in output and "reparam train vae --out" in output
    assert output.rstrip().endswith("--resume") and not list((tmp_path / "a").glob(".*.tmp"))


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as stream:
        stream.write(header + array.astype(np.uint8).tobytes())


def test_idx_folder_with_dynamic_binarization_trains_and_evaluates(tmp_path: Path) -> None:
    rng = np.random.default_rng(seeded(0))
    folder = tmp_path / "idx"
    folder.mkdir()
    for prefix, n in (("train", 10100), ("t10k", 50)):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    splits = load(str(folder), binarize="none")
    assert splits.x_train.shape == (100, 784) and splits.x_valid.shape == (10000, 784)
    out = tmp_path / "run"
    options = replace(TINY, data=str(folder), batch_size=20)
    assert fit(VAETask(options), settings(out, steps=6, eval_every=6, log_every=3)).status == "done"
    evaluation = CliRunner().invoke(
        app, ["evaluate", "vae", str(out / "checkpoint.pt"), "--k", "20", "--chunk", "7", "--no-progress"]
    )
    assert evaluation.exit_code == 0, evaluation.output
    assert "test NLL" in evaluation.output and "50 rows" in evaluation.output
