"""Training data checked before the first step: every split non-empty, 2-D (images are
flattened, with a note), of one width, finite, and in the range the likelihood needs
(``[0, 1]`` for a Bernoulli likelihood, ``{0, 1}`` where the model needs binary data; 0-255
pixels get a ``--binarize`` hint). Each error names the source, the split (the ``.npz`` key)
and the fix.

Example:
    >>> checked, notes = check_splits(splits, "data.npz", values="binary")  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from reparam.data import Splits
from reparam.training.errors import DataError

SPLITS = ("train", "valid", "test")


def _where(source: str, split: str) -> str:
    return f"data {source}, split {split!r} (key {split!r} in an .npz)"


def _check_values(x: Tensor, source: str, split: str, values: str) -> None:
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        first = [*(~finite).nonzero()[0].tolist(), 0]
        row, column = first[0], first[1]
        count = int((~finite).sum())
        raise DataError(
            f"{_where(source, split)}: {count} non-finite value(s) (NaN/Inf; first at row {row}, column "
            f"{column}); remove or impute them before training."
        )
    if values == "real":
        return
    low, high = float(x.min()), float(x.max())
    if high > 1 and low >= 0 and bool((x == x.round()).all()) and high <= 255:
        raise DataError(
            f"{_where(source, split)}: values 0-{high:g} look like 0-255 pixels but a Bernoulli likelihood "
            "needs 0/1; divide by 255 and pass --binarize static (or dynamic), or binarize the file."
        )
    if low < 0 or high > 1:
        raise DataError(
            f"{_where(source, split)}: values in [{low:g}, {high:g}] but a Bernoulli likelihood needs "
            "[0, 1]; "
            "rescale the data or pass --likelihood gaussian where the command has it."
        )
    if values == "binary" and not bool(((x == 0) | (x == 1)).all()):
        raise DataError(
            f"{_where(source, split)}: values are not all 0 or 1 (this model needs binary data); "
            "threshold them at 0.5 first (static binarization)."
        )


def check_splits(
    splits: Splits, source: str, values: str = "real", need: tuple[str, ...] = SPLITS
) -> tuple[Splits, list[str]]:
    """Validated ``splits`` (images flattened to rows) and notes to show the user.

    Args:
        values: ``"real"`` (finite only), ``"unit"`` (in ``[0, 1]``) or ``"binary"`` (0 or 1).
        need: splits that must be non-empty.

    Raises :class:`DataError` naming the source, the split and the fix.
    """
    notes: list[str] = []
    arrays: dict[str, Tensor] = {}
    for split in SPLITS:
        x = getattr(splits, f"x_{split}")
        if x.ndim > 2:
            notes.append(
                f"{_where(source, split)}: {tuple(x.shape)} flattened to rows of {x[0].numel()} values"
            )
            x = x.reshape(len(x), -1)
        elif x.ndim < 2:
            raise DataError(
                f"{_where(source, split)}: shape {tuple(x.shape)} is not (rows, features); store a 2-D array."
            )
        if len(x) == 0 and split in need:
            raise DataError(f"{_where(source, split)}: empty; every split needs rows ({', '.join(need)}).")
        if len(x):
            _check_values(x.float(), source, split, values)
        arrays[f"x_{split}"] = x
    widths = {split: arrays[f"x_{split}"].shape[1] for split in SPLITS if len(arrays[f"x_{split}"])}
    if len(set(widths.values())) > 1:
        raise DataError(
            f"data {source}: the splits have different widths {widths}; every row needs the same features."
        )
    for split in SPLITS:
        y = getattr(splits, f"y_{split}")
        if y is not None and len(y) != len(arrays[f"x_{split}"]):
            raise DataError(
                f"{_where(source, split)}: {len(arrays[f'x_{split}'])} rows but {len(y)} labels; "
                "they must match."
            )
    return replace(splits, **arrays), notes  # type: ignore[arg-type]
