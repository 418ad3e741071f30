"""Atomic checkpoints: round trip, no temp files left, a failed write keeps the old file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reparam.training import load_checkpoint, save_checkpoint


def test_round_trip_and_no_leftovers(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "ckpt.pt", {"step": 3, "w": torch.arange(4.0)})
    state = load_checkpoint(path)
    assert state["step"] == 3
    assert torch.equal(state["w"], torch.arange(4.0))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_failed_write_keeps_previous_checkpoint(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "ckpt.pt", {"step": 1})

    class Unpicklable:
        def __reduce__(self) -> tuple:
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError):
        save_checkpoint(path, {"step": 2, "bad": Unpicklable()})
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_missing_checkpoint_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="--resume"):
        load_checkpoint(tmp_path / "nope.pt")
