"""``reparam train vae``: fast CLI run on digits, bit-for-bit resume, SIGKILL, Ctrl-C, NaN."""

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

from reparam.cli.app import app
from reparam.cli.train_vae import TrainOptions, train
from reparam.data import digits, load
from reparam.training import load_checkpoint

SMALL = ["--hidden", "16", "--latent", "3", "--eval-k", "5", "--eval-size", "50", "--no-progress"]


def small_options(out: Path, **changes: object) -> TrainOptions:
    base = TrainOptions(
        out=str(out),
        steps=40,
        batch_size=32,
        hidden=(16,),
        latent=3,
        log_every=5,
        eval_every=10,
        eval_k=5,
        eval_size=50,
        progress=False,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_cli_fast_mode_on_digits_writes_metrics_checkpoint_and_pngs(tmp_path: Path) -> None:
    from reparam.cli import _register

    _register()
    out = tmp_path / "run"
    args = ["train", "vae", "--out", str(out), "--steps", "30", "--log-every", "10", "--eval-every", "30"]
    result = CliRunner().invoke(app, [*args, "--objective", "iwae", "--k", "3", "--gradient", "dreg", *SMALL])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 20, 30]
    assert "valid_bound" in records[-1] and records[-1]["valid_bound"] < 0
    for name in ("samples.png", "reconstructions.png", "learning_curves.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 30
    # The score-function ELBO trains through the same command; bad options are named.
    sf = CliRunner().invoke(app, [*args, "--estimator", "reinforce-loo", "--k", "2", "--no-plots", *SMALL])
    assert sf.exit_code == 0, sf.output
    bad = CliRunner().invoke(app, [*args, "--objective", "iwae", "--estimator", "reinforce", *SMALL])
    assert bad.exit_code != 0 and "pathwise" in bad.output


def test_resume_is_bit_for_bit_the_uninterrupted_run(tmp_path: Path) -> None:
    # Stop at step 11 (mid-epoch: 1257 rows / 32 per batch), resume to 24, compare everything.
    splits = digits(binarize=True)
    for estimator, objective, k in (("pathwise", "iwae", 3), ("reinforce-ma", "elbo", 1)):
        full = small_options(
            tmp_path / f"full-{estimator}", estimator=estimator, objective=objective, k=k, steps=24
        )
        parts = replace(full, out=str(tmp_path / f"parts-{estimator}"))
        assert train(full, splits=splits).status == "done"
        assert train(parts, splits=splits, stop=lambda step: step >= 11).step == 11
        assert train(parts, resume=True, splits=splits).step == 24
        a, b = (
            load_checkpoint(Path(full.out) / "checkpoint.pt"),
            load_checkpoint(Path(parts.out) / "checkpoint.pt"),
        )
        for name, tensor in a["model"].items():
            assert torch.equal(tensor, b["model"][name]), name
        assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])
        if estimator == "reinforce-ma":  # the moving-average baseline's state is restored too
            assert vars(a["estimator"].baseline) == vars(b["estimator"].baseline)

        def lines(options: TrainOptions) -> list[dict[str, float]]:
            rows = [json.loads(x) for x in (Path(options.out) / "metrics.jsonl").read_text().splitlines()]
            return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]

        assert lines(full) == lines(parts)
    with pytest.raises(Exception, match="different options"):
        train(replace(parts, lr=0.5), resume=True, splits=splits)


def test_nonfinite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    splits = digits(binarize=True)
    x = splits.x_train.clone()
    x[5, 0] = float("nan")  # row 5 turns up somewhere in the first epoch
    poisoned = replace(splits, x_train=x)
    options = small_options(tmp_path, steps=200, checkpoint_every=3)
    result = train(options, splits=poisoned)
    assert result.status == "nonfinite"
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["step"] == result.step - result.step % 3  # the last checkpoint before the NaN
    assert all(torch.isfinite(t).all() for t in state["model"].values())


def _launch(out: Path, *extra: str) -> subprocess.Popen[bytes]:
    code = "from reparam.cli import main; main()"
    args = ["train", "vae", "--out", str(out), "--steps", "100000", "--checkpoint-every", "5", *SMALL, *extra]
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def _wait_for_training(out: Path, process: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        path = out / "checkpoint.pt"
        if path.is_file() and load_checkpoint(path)["step"] >= 10:
            return
        time.sleep(0.2)
    process.kill()
    raise AssertionError("training did not reach step 10 in time")


def test_sigkill_during_training_leaves_a_loadable_checkpoint(tmp_path: Path) -> None:
    process = _launch(tmp_path, "--no-plots")
    _wait_for_training(tmp_path, process)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["step"] >= 10
    # ...and training resumes from it.
    options = TrainOptions(**{**state["options"], "hidden": tuple(state["options"]["hidden"])})
    resumed = train(replace(options, steps=state["step"] + 3), resume=True)
    assert resumed.step == state["step"] + 3


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path: Path) -> None:
    process = _launch(tmp_path, "--no-plots")
    _wait_for_training(tmp_path, process)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=60)[0].decode()
    assert process.returncode == 130, output
    assert "Traceback" not in output and "--resume" in output
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["step"] >= 10 and f"step {state['step']}" in output


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as stream:
        stream.write(header + array.astype(np.uint8).tobytes())


def test_idx_folder_with_dynamic_binarization_trains_and_evaluates(tmp_path: Path) -> None:
    # An MNIST-format folder (10,000 validation rows are cut from the training images).
    rng = np.random.default_rng(seeded(0))
    folder = tmp_path / "idx"
    folder.mkdir()
    for prefix, n in (("train", 10100), ("t10k", 50)):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    splits = load(str(folder), binarize="none")
    assert splits.x_train.shape == (100, 784) and splits.x_valid.shape == (10000, 784)
    assert 0 < splits.x_train.mean() < 1 and not torch.equal(splits.x_train, splits.x_train.round())
    out = tmp_path / "run"
    result = train(small_options(out, data=str(folder), steps=6, batch_size=20, eval_every=6, log_every=3))
    assert result.status == "done"
    from reparam.cli import _register

    _register()
    evaluation = CliRunner().invoke(
        app, ["evaluate", "vae", str(out / "checkpoint.pt"), "--k", "20", "--chunk", "7", "--no-progress"]
    )
    assert evaluation.exit_code == 0, evaluation.output
    assert "test NLL" in evaluation.output and "50 rows" in evaluation.output
