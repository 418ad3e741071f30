"""Checkpoints: weights_only round trip, checksum refuses a flipped byte, one-line errors for
missing/empty/truncated/foreign files, stale temp files removed, RNG state round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from reparam.training import CheckpointError, load_checkpoint, save_checkpoint
from reparam.training.checkpoint import remove_stale_temporaries
from reparam.training.rng import rng_state, set_rng_state

MARK = 1.2345678  # a value whose float32 bytes occur once in the file


def _saved(tmp_path: Path) -> Path:
    return save_checkpoint(tmp_path / "ckpt.pt", {"kind": "t", "step": 3, "w": torch.full((16,), MARK)})


def test_round_trip_loads_with_weights_only_and_leaves_no_temporaries(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    assert load_checkpoint(path, kind="t")["step"] == 3
    raw = torch.load(path, weights_only=True)  # no arbitrary unpickling needed
    assert torch.equal(raw["state"]["w"], torch.full((16,), MARK)) and len(raw["sha256"]) == 64
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_a_flipped_byte_in_a_weight_is_refused_in_one_line(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    at = data.find(np.float32(MARK).tobytes())
    assert at > 0
    data[at + 3] ^= 0x40  # exponent bits: the weight becomes ~1e19
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum") as error:
        load_checkpoint(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("damage", ["empty", "truncated", "text", "foreign", "kind"])
def test_damaged_or_foreign_files_get_one_line(tmp_path: Path, damage: str) -> None:
    path = _saved(tmp_path)
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:300])
    elif damage == "text":
        path.write_text("hello")
    elif damage == "foreign":
        torch.save({"model": torch.ones(2)}, path)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path, kind="other" if damage == "kind" else None)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_non_plain_values_are_refused_and_the_previous_checkpoint_kept(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    with pytest.raises(TypeError, match=r"state\['bad'\]"):
        save_checkpoint(path, {"step": 2, "bad": object()})
    assert load_checkpoint(path)["step"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_missing_checkpoint_and_stale_temporaries(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / ".checkpoint.pt.abc.tmp").write_bytes(b"x")
    (tmp_path / "keep.txt").write_text("mine")
    assert [p.name for p in remove_stale_temporaries(tmp_path)] == [".checkpoint.pt.abc.tmp"]
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_rng_state_survives_a_weights_only_checkpoint(tmp_path: Path) -> None:
    np.random.rand(3)  # move numpy's generator off its seed
    path = save_checkpoint(tmp_path / "rng.pt", {"rng": rng_state()})
    first = (torch.rand(2), np.random.rand(2))
    set_rng_state(load_checkpoint(path)["rng"])
    assert torch.equal(torch.rand(2), first[0]) and np.array_equal(np.random.rand(2), first[1])
