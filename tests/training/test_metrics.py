"""The logs people's tools read: ``--tensorboard`` event files hold every logged scalar at its
step (read back with TensorBoard's own EventAccumulator), also across a resume; ``metrics.csv``
holds the same records as ``metrics.jsonl``; without the tensorboard package the option is a
one-line error naming the extra, before anything is written."""

from __future__ import annotations

import csv
import json
import math
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from reparam._optional import MissingExtraError
from reparam.data import digits
from reparam.training import RunSettings, fit
from reparam.training.tasks.vae import VAEOptions, VAETask

TINY = VAEOptions(batch_size=32, hidden=(8,), latent=2, eval_k=2, eval_size=20)


def settings(out: Path, **changes: object) -> RunSettings:
    base = RunSettings(out=out, steps=20, log_every=5, eval_every=10, progress=False, device="cpu")
    return replace(base, **changes)  # type: ignore[arg-type]


def records(out: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_tensorboard_events_hold_the_logged_scalars_across_a_resume(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    splits = digits(binarize=True)
    out = tmp_path / "run"
    first = fit(VAETask(TINY, splits), settings(out, tensorboard=True), stop=lambda step: step >= 10)
    assert first.status == "interrupted" and first.step == 10
    fit(VAETask(TINY, splits), settings(out, tensorboard=True, resume=True))
    logged = records(out)
    assert [r["step"] for r in logged] == [5, 10, 15, 20]
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss", "lr", "valid_bound", "seconds"} <= tags, tags
    for tag in ("loss", "valid_bound"):
        expected = {int(r["step"]): r[tag] for r in logged if tag in r}
        seen = {e.step: e.value for e in events.Scalars(tag)}
        assert seen.keys() == expected.keys(), (tag, seen, expected)  # each step once, none lost
        for step, value in expected.items():  # stored as float32: relative error <= 2^-24
            assert math.isclose(seen[step], value, rel_tol=1e-6), (tag, step, seen[step], value)


def test_csv_matches_the_jsonl(tmp_path: Path) -> None:
    fit(VAETask(TINY, digits(binarize=True)), settings(tmp_path))
    logged = records(tmp_path)
    with (tmp_path / "metrics.csv").open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == len(logged) == 4
    assert list(rows[0]) == ["step", "loss", "lr", "seconds", "valid_bound"]
    for row, record in zip(rows, logged, strict=True):
        for key in row:
            # an evaluation only every 10 steps: its column is empty in between
            assert (row[key] == "") if key not in record else float(row[key]) == record[key], (key, row)


def test_missing_tensorboard_is_named_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard now fails
    with pytest.raises(MissingExtraError, match=r"pip install 'reparam\[tensorboard\]'"):
        fit(VAETask(TINY, digits(binarize=True)), settings(tmp_path / "run", tensorboard=True))
    assert not (tmp_path / "run").exists()
