"""Data sets: the small sets bundled with scikit-learn (embedded, no download), static
binarized MNIST from an ``.npz`` path, and MNIST-format IDX folders (e.g. Fashion-MNIST).

Every loader returns a :class:`Splits` of float32 tensors. Image sets are flattened to rows
with values in ``[0, 1]``.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from reparam._optional import require


@dataclass(frozen=True)
class Splits:
    """Train / validation / test rows (``x``) and, where the set has them, labels (``y``)."""

    name: str
    x_train: Tensor
    x_valid: Tensor
    x_test: Tensor
    y_train: Tensor | None = None
    y_valid: Tensor | None = None
    y_test: Tensor | None = None

    @property
    def num_features(self) -> int:
        return int(self.x_train.shape[-1])


def _split_indices(n: int, fractions: tuple[float, float], seed: int) -> tuple[np.ndarray, ...]:
    order = np.random.default_rng(seed).permutation(n)
    n_valid, n_test = round(fractions[0] * n), round(fractions[1] * n)
    return order[n_valid + n_test :], order[:n_valid], order[n_valid : n_valid + n_test]


def _as_splits(name: str, x: np.ndarray, y: np.ndarray | None, seed: int) -> Splits:
    train, valid, test = _split_indices(len(x), (0.1, 0.2), seed)

    def features(rows: np.ndarray) -> Tensor:
        return torch.as_tensor(x[rows], dtype=torch.float32)

    def labels(rows: np.ndarray) -> Tensor | None:
        return None if y is None else torch.as_tensor(y[rows], dtype=torch.long)

    return Splits(
        name,
        features(train),
        features(valid),
        features(test),
        labels(train),
        labels(valid),
        labels(test),
    )


def digits(binarize: bool = False, seed: int = 0) -> Splits:
    """scikit-learn's 8x8 digits (1797 x 64), scaled to ``[0, 1]``; 70/10/20 split.

    ``binarize=True`` thresholds at 0.5 (for Bernoulli likelihoods)."""
    datasets = require("sklearn.datasets", extra="data", feature="the digits data set")
    bunch = datasets.load_digits()
    x = bunch.data.astype(np.float32) / 16.0
    if binarize:
        x = (x > 0.5).astype(np.float32)
    return _as_splits("digits", x, bunch.target, seed)


def breast_cancer(seed: int = 0, test_fraction: float = 0.2) -> Splits:
    """scikit-learn's breast-cancer set: 569 x 30 features standardised with the training
    split's statistics, plus a bias column of ones (569 x 31); labels in {0, 1}."""
    datasets = require("sklearn.datasets", extra="data", feature="the breast-cancer data set")
    bunch = datasets.load_breast_cancer()
    x, y = bunch.data.astype(np.float64), bunch.target
    train, _, test = _split_indices(len(x), (0.0, test_fraction), seed)
    mean, std = x[train].mean(0), x[train].std(0)
    x = (x - mean) / np.where(std > 0, std, 1.0)
    x = np.concatenate([x, np.ones((len(x), 1))], axis=1).astype(np.float32)
    empty = np.zeros((0,), dtype=np.int64)
    return Splits(
        "breast-cancer",
        torch.as_tensor(x[train]),
        torch.zeros((0, x.shape[1])),
        torch.as_tensor(x[test]),
        torch.as_tensor(y[train], dtype=torch.long),
        torch.as_tensor(empty),
        torch.as_tensor(y[test], dtype=torch.long),
    )


def diabetes(seed: int = 0) -> Splits:
    """scikit-learn's diabetes regression set (442 x 10, target: disease progression after one
    year, 25..346); 70/10/20 split. Features are standardised with the training split's
    statistics; targets ``y`` are float32 in their original units (standardise them in the model
    code and report errors in these units)."""
    datasets = require("sklearn.datasets", extra="data", feature="the diabetes data set")
    bunch = datasets.load_diabetes(scaled=False)
    x, y = bunch.data.astype(np.float64), bunch.target.astype(np.float32)
    train, valid, test = _split_indices(len(x), (0.1, 0.2), seed)
    mean, std = x[train].mean(0), x[train].std(0)
    x = ((x - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)
    parts = [torch.as_tensor(x[rows]) for rows in (train, valid, test)]
    targets = [torch.as_tensor(y[rows]) for rows in (train, valid, test)]
    return Splits("diabetes", *parts, *targets)


def binarized_mnist(path: str | Path) -> Splits:
    """Static binarized MNIST (Larochelle & Murray 2011) from an ``.npz`` with keys
    ``train``/``valid``/``test`` (uint8 0/1, 784 columns)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"data path {str(path)!r} does not exist; pass the .npz with keys train/valid/test, "
            "e.g. ../shared/data/binarized_mnist.npz."
        )
    with np.load(path) as arrays:
        missing = {"train", "valid", "test"} - set(arrays.files)
        if missing:
            raise ValueError(f"{path} lacks keys {sorted(missing)}; expected train/valid/test.")
        parts = [torch.as_tensor(arrays[k].astype(np.float32)) for k in ("train", "valid", "test")]
    return Splits("binarized-mnist", *parts)


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (magic {raw[:4].hex()}).")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _find(folder: Path, prefix: str) -> Path:
    for name in sorted(folder.iterdir()):
        if name.name.startswith(prefix) and "idx" in name.name:
            return name
    raise FileNotFoundError(
        f"no {prefix}*idx* file in {folder}; an MNIST-format folder holds train-images-idx3-ubyte"
        "(.gz), train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte."
    )


def idx_folder(folder: str | Path, binarize: str = "none", valid_size: int = 10000, seed: int = 0) -> Splits:
    """An MNIST-format IDX folder (MNIST, Fashion-MNIST, ...), pixels scaled to ``[0, 1]``.

    Args:
        binarize: ``"none"``, ``"static"`` (threshold 0.5) or ``"dynamic"`` (one Bernoulli draw
            per pixel with the pixel intensity as probability, fixed by ``seed``; redraw per
            epoch with :func:`dynamic_binarize` for the usual dynamic binarization).
        valid_size: the last ``valid_size`` training rows become the validation split.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"IDX folder {str(folder)!r} does not exist.")
    if binarize not in ("none", "static", "dynamic"):
        raise ValueError(f"binarize must be 'none', 'static' or 'dynamic', got {binarize!r}.")
    train_images = _read_idx(_find(folder, "train-images"))
    test_images = _read_idx(_find(folder, "t10k-images"))
    # Flatten whatever the image size is (28 x 28 for MNIST and Fashion-MNIST); scale in float32
    # (a float64 copy of the 60,000 training images would be 376 MB).
    train_x = train_images.reshape(len(train_images), -1).astype(np.float32) / np.float32(255)
    test_x = test_images.reshape(len(test_images), -1).astype(np.float32) / np.float32(255)
    if not 0 < valid_size < len(train_x):
        raise ValueError(
            f"valid_size={valid_size} must be between 1 and the {len(train_x)} training images - 1; "
            "pass a smaller valid_size."
        )
    train_y = _read_idx(_find(folder, "train-labels")).astype(np.int64)
    test_y = _read_idx(_find(folder, "t10k-labels")).astype(np.int64)
    generator = torch.Generator().manual_seed(seed)

    def prepare(x: np.ndarray) -> Tensor:
        t = torch.as_tensor(x, dtype=torch.float32)
        if binarize == "static":
            return (t > 0.5).float()
        if binarize == "dynamic":
            return dynamic_binarize(t, generator)
        return t

    cut = len(train_x) - valid_size
    return Splits(
        folder.name,
        prepare(train_x[:cut]),
        prepare(train_x[cut:]),
        prepare(test_x),
        torch.as_tensor(train_y[:cut]),
        torch.as_tensor(train_y[cut:]),
        torch.as_tensor(test_y),
    )


def dynamic_binarize(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Draw each pixel from Bernoulli(intensity): a fresh binarization per call."""
    return torch.bernoulli(x, generator=generator)


def load(source: str, **options: object) -> Splits:
    """Dispatch on ``source``: ``"digits"``, ``"breast-cancer"``, an ``.npz`` path or an IDX
    folder."""
    if source == "digits":
        return digits(**options)  # type: ignore[arg-type]
    if source in ("breast-cancer", "breast_cancer"):
        return breast_cancer(**options)  # type: ignore[arg-type]
    if source == "diabetes":
        return diabetes(**options)  # type: ignore[arg-type]
    path = Path(source)
    if path.suffix == ".npz":
        return binarized_mnist(path)
    if path.is_dir():
        return idx_folder(path, **options)  # type: ignore[arg-type]
    raise ValueError(
        f"unknown data source {source!r}; use 'digits', 'breast-cancer', 'diabetes', a path to an .npz "
        "(keys train/valid/test) or an MNIST-format IDX folder."
    )
