"""Every user error of every command is a usage error: exit status 2, one or two lines on
stderr starting ``Error:``, no traceback, the message naming what to fix, and no run folder
left behind. The invocations are the ones issue #15 found giving tracebacks or unclear lines,
plus the other ways to get each command's options wrong. Run in-process through
:func:`reparam.cli.main` (what ``reparam`` and ``python -m reparam`` call)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reparam.cli import main

TINY = ["--data", "digits", "--hidden", "8", "--latent", "2", "--eval-size", "10", "--eval-k", "2"]
QUIET = ["--no-plots", "--no-progress"]

# (arguments, a fragment the message must contain); {new}: a fresh folder that must not be
# created, {run}: a finished 2-step VAE run, {file}: a plain file, {corrupt}: a checkpoint
# with one byte flipped, {mnist}: a path that does not exist
CASES = [
    # train: data
    (["train", "vae", "--data", "nope.npz", "--out", "{new}"], "nope.npz"),
    (["train", "vae", "--data", "mnist", "--out", "{new}"], "'mnist'"),
    (["train", "discrete-vae", "--data", "nope.npz", "--out", "{new}"], "nope.npz"),
    (["train", "bnn", "--data", "nope", "--out", "{new}"], "--data"),
    # train: options
    (["train", "bnn", "--arch", "transformer", "--out", "{new}"], "--arch"),
    (["train", "bnn", "--estimator", "nope", "--out", "{new}"], "--estimator"),
    (["train", "discrete-vae", "--data", "x.npz", "--estimator", "bogus", "--out", "{new}"], "bogus"),
    (["train", "policy", "--env", "nope", "--out", "{new}"], "--env"),
    (["train", "policy", "--estimator", "nope", "--out", "{new}"], "--estimator"),
    (["train", "vae", "--objective", "foo", "--out", "{new}"], "--objective"),
    (["train", "vae", "--hidden", "0,a", "--out", "{new}"], "--hidden"),
    (["train", "vae", "--lr", "-1", "--out", "{new}"], "--lr"),
    (["train", "vae", "--steps", "0", "--out", "{new}"], "--steps"),
    (["train", "vae", "--steps", "abc", "--out", "{new}"], "--steps"),
    (["train", "vae", "--minutes", "-1", "--out", "{new}"], "--minutes"),
    (["train", "vae", "--device", "tpu", "--out", "{new}"], "--device"),
    (["train", "vae", "--precision", "64", "--out", "{new}"], "--precision"),
    (["train", "vae", *TINY, "--device", "cpu", "--precision", "16-mixed", "--out", "{new}"], "bf16-mixed"),
    (["train", "policy", "--fast", "--precision", "bf16-mixed", "--out", "{new}"], "float32 only"),
    (["train", "vae", "--data", "digits"], "--out"),
    # train: the run folder
    (["train", "vae", "--resume", "--out", "{new}"], "--resume"),
    (["train", "vae", *TINY, *QUIET, "--steps", "2", "--out", "{run}"], "--overwrite"),
    (["train", "vae", *TINY, *QUIET, "--hidden", "9", "--resume", "--out", "{run}"], "--hidden"),
    (["train", "vae", "--resume", "--overwrite", "--out", "{run}"], "--overwrite"),
    (["train", "vae", *TINY, "--out", "{file}"], "is a file"),
    (["train", "vae", *TINY, *QUIET, "--steps", "2", "--out", "{file}/sub"], "cannot write"),
    (["train", "vae", *TINY, *QUIET, "--steps", "2", "--out", "/proc/reparam-x"], "cannot write"),
    # compare
    (["compare", "-p", "normal-cos", "-O", "mu=abc"], "mu must be a float"),
    (["compare", "-p", "normal-cos", "-O", "foo=1"], "omega=5.0"),
    (["compare", "-p", "normal-cos", "-O", "nonsense"], "KEY=VALUE"),
    (["compare", "-p", "vonmises-cos", "-O", "kappa=-1"], "kappa"),
    (["compare", "-p", "policy-horizon", "-O", "horizons=a"], "horizons must be"),
    (["compare", "-p", "policy-horizon", "-O", "horizons=0"], "horizons"),
    (["compare", "-p", "nope"], "normal-quadratic"),
    (["compare", "-p", "normal-cos", "-e", "pathwise,bogus"], "bogus"),
    (["compare"], "--problem"),
    # demo
    (["demo", "--fast", "--out", "/proc/reparam-x"], "cannot write"),
    (["demo", "--fast", "--out", "{file}/sub"], "cannot write"),
    # evaluate
    (["evaluate", "vae", "nope.pt"], "no checkpoint at nope.pt"),
    (["evaluate", "vae", "{corrupt}"], "checksum"),
    (["evaluate", "vae", "{file}"], "not a checkpoint"),
    (["evaluate", "vae", "{run}/checkpoint.pt", "--split", "foo"], "--split"),
    (["evaluate", "vae", "{run}/checkpoint.pt", "--data", "nope.npz", "--k", "2"], "nope.npz"),
    (["evaluate", "vae", "{run}/checkpoint.pt", "--k", "0"], "--k"),
    # the rest
    (["bench", "nope"], "nope"),
    (["nope"], "nope"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("usage")
    run = root / "run"
    with pytest.raises(SystemExit) as done:
        main(["train", "vae", *TINY, *QUIET, "--steps", "2", "--out", str(run)])
    assert done.value.code == 0
    plain = root / "plain.txt"
    plain.write_text("not a checkpoint\n")
    data = bytearray((run / "checkpoint.pt").read_bytes())
    weights = torch.load(run / "checkpoint.pt", weights_only=True)["state"]["task"]["model"]
    first = next(iter(weights.values())).reshape(-1)[:4].numpy().tobytes()
    at = bytes(data).index(first)  # a weight's bytes in the archive (stored uncompressed)
    data[at] ^= 0x40
    corrupt = root / "corrupt.pt"
    corrupt.write_bytes(bytes(data))
    return {"run": run, "file": plain, "corrupt": corrupt}


def _name(value: object) -> str | None:
    return " ".join(value) if isinstance(value, list) else None


@pytest.mark.parametrize(("args", "fragment"), CASES, ids=_name)
def test_user_error_is_a_usage_error(
    args: list[str], fragment: str, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = tmp_path / "new"
    places = {"new": str(new), **{k: str(v) for k, v in files.items()}}
    before = {p: p.stat().st_mtime_ns for p in files["run"].iterdir()}
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main([arg.format(**places) for arg in args])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert done.value.code == 2, err
    assert 1 <= len(lines) <= 2 and lines[0].startswith("Error: "), err
    assert "Traceback" not in err and fragment in err, err
    assert not new.exists(), "a refused run left its folder behind"
    assert {p: p.stat().st_mtime_ns for p in files["run"].iterdir()} == before, "the previous run changed"
