"""Data-parallel training: a VAE on 2 CPU processes (gloo, as ``torchrun`` launches them) writes
one checkpoint from rank 0, loadable with ``weights_only=True``, and resumes bit for bit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

from reparam.training import load_checkpoint

SCRIPT = """
import sys
from dataclasses import replace
from pathlib import Path
from reparam.data import digits
from reparam.training import RunSettings, fit
from reparam.training.tasks.vae import VAEOptions, VAETask

root = Path(sys.argv[1])
options = VAEOptions(batch_size=32, hidden=(8,), latent=2, eval_k=2, eval_size=20)
splits = digits(binarize=True)
base = RunSettings(out=root / "full", steps=8, log_every=2, eval_every=4, progress=False, device="cpu")
fit(VAETask(options, splits), base)
fit(VAETask(options, splits), replace(base, out=root / "parts", steps=8), stop=lambda step: step >= 5)
fit(VAETask(options, splits), replace(base, out=root / "parts", resume=True))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_process_vae_trains_and_resumes_bit_for_bit(tmp_path: Path) -> None:
    port = str(_free_port())
    processes = []
    for rank in range(2):
        env = dict(os.environ, WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1")
        env["MASTER_PORT"] = port
        processes.append(
            subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path)], env=env, stderr=subprocess.PIPE)
        )
    for process in processes:
        _, err = process.communicate(timeout=150)
        assert process.returncode == 0, err.decode()[-2000:]
    full, parts = (tmp_path / name / "checkpoint.pt" for name in ("full", "parts"))
    raw = torch.load(full, weights_only=True)["state"]
    assert raw["world_size"] == 2 and len(raw["rng"]) == 2 and raw["step"] == 8
    assert sorted(p.name for p in full.parent.iterdir()) == ["checkpoint.pt", "metrics.csv", "metrics.jsonl"]
    a, b = load_checkpoint(full)["task"], load_checkpoint(parts)["task"]
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert (full.parent / "metrics.jsonl").read_text().count("\n") == 4


def test_torchrun_launch_of_the_command_line(tmp_path: Path) -> None:
    # the command, as a user types it (torchrun = python -m torch.distributed.run;
    # --standalone picks a free rendezvous port), kept short with --fast and a tiny model
    out = tmp_path / "R2"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    command += ["-m", "reparam", "train", "vae", "--data", "digits", "--steps", "40", "--device", "cpu"]
    command += ["--out", str(out), "--fast", "--no-plots", "--no-progress", "--hidden", "8", "--latent", "2"]
    command += ["--eval-k", "2", "--eval-size", "20"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("done at step 40") == 1, done.stdout  # rank 0 reports, once
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "metrics.csv", "metrics.jsonl"]
    raw = torch.load(out / "checkpoint.pt", weights_only=True)
    assert raw["state"]["world_size"] == 2 and raw["state"]["step"] == 40
    assert load_checkpoint(out / "checkpoint.pt", kind="vae")["step"] == 40  # checksum verified
    # Resume on a different number of processes (here 1): it works, not bit for bit (the data
    # shards and RNG streams differ), and says so.
    command = [sys.executable, "-m", "reparam", *command[command.index("train") :]]
    command.remove("--fast")  # --fast caps the run at 40 steps
    command[command.index("--steps") + 1] = "50"
    resumed = subprocess.run([*command, "--resume"], env=env, capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "done at step 50" in resumed.stdout, resumed.stdout
    said = resumed.stdout + resumed.stderr
    assert "resuming from step 40" in said and "bit" in said, said
    assert load_checkpoint(out / "checkpoint.pt", kind="vae")["step"] == 50
