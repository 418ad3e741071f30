"""The run folder: a non-empty --out is refused, --overwrite moves it aside, --resume needs a
checkpoint; torn metrics lines are dropped with a warning; data checks name split and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reparam.data import Splits
from reparam.training import DataError, MetricsLog, MissingCheckpointError, RunFolderError, check_splits
from reparam.training.metrics import write_csv
from reparam.training.runs import prepare_run_folder


def test_non_empty_out_is_refused_and_overwrite_moves_it_aside(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert prepare_run_folder(out, resume=False, overwrite=False) is None and not out.exists()
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderError, match="--resume.*--overwrite"):
        prepare_run_folder(out, resume=False, overwrite=False)
    moved = prepare_run_folder(out, resume=False, overwrite=True)
    assert moved is not None and moved.name.startswith("run.old-") and not out.exists()
    assert (moved / "notes.txt").read_text() == "mine"  # never deleted
    with pytest.raises(MissingCheckpointError, match="drop --resume"):
        prepare_run_folder(moved, resume=True, overwrite=False)


def test_torn_last_metrics_line_is_dropped_with_a_warning(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.write({"step": 1, "loss": 2.0})
    with log.path.open("a") as stream:
        stream.write('{"step": 2, "lo')
    with pytest.warns(UserWarning, match="torn last line"):
        log.truncate_after(5)
    assert log.read() == [{"step": 1, "loss": 2.0}]
    csv = write_csv([{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0, "valid": -3.0}], tmp_path / "m.csv")
    assert csv.read_text().splitlines() == ["step,loss,valid", "1,2.0,", "2,1.0,-3.0"]


def _splits(x: torch.Tensor) -> Splits:
    return Splits("s", x, x.clone(), x.clone())


@pytest.mark.parametrize(
    ("change", "values", "message"),
    [
        (
            lambda x: x.index_put_((torch.tensor([1]), torch.tensor([2])), torch.tensor(float("nan"))),
            "unit",
            "non-finite",
        ),
        (lambda x: x * 255, "unit", "--binarize"),
        (lambda x: x * 0.5, "binary", "not all 0 or 1"),
        (lambda x: x[:0], "real", "empty"),
    ],
)
def test_bad_data_is_named(change, values: str, message: str) -> None:
    x = torch.bernoulli(torch.full((10, 4), 0.5))
    x[0] = 1.0
    with pytest.raises(DataError, match=message) as error:
        check_splits(_splits(change(x.clone())), "d.npz", values=values)
    assert "d.npz" in str(error.value) and "'train'" in str(error.value)


def test_images_are_flattened_with_a_note_and_widths_must_match() -> None:
    x = torch.zeros(5, 3, 3)
    checked, notes = check_splits(_splits(x), "d.npz")
    assert checked.x_train.shape == (5, 9) and "flattened" in notes[0]
    with pytest.raises(DataError, match="different widths"):
        check_splits(Splits("s", torch.zeros(3, 4), torch.zeros(3, 5), torch.zeros(3, 4)), "d.npz")
