"""Data loaders: the Bayesian-network experiments' sets and MNIST-format IDX folders (gzipped too)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from reparam.data import diabetes, idx_folder, load


def test_diabetes_splits_and_standardisation() -> None:
    splits = diabetes()
    assert (len(splits.x_train), len(splits.x_valid), len(splits.x_test)) == (310, 44, 88)
    assert splits.num_features == 10 and splits.y_train.dtype == torch.float32
    torch.testing.assert_close(splits.x_train.mean(0), torch.zeros(10), atol=1e-5, rtol=0)
    torch.testing.assert_close(splits.x_train.std(0, unbiased=False), torch.ones(10), atol=1e-4, rtol=0)
    assert float(splits.y_train.min()) >= 25 and float(splits.y_train.max()) <= 346  # original units
    assert torch.equal(load("diabetes").x_test, splits.x_test)


def _write_idx_gz(path: Path, array: np.ndarray) -> None:
    """An unsigned-byte IDX file (magic 0x0000 08 ndim, big-endian dims), gzip-compressed."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_idx_folder_reads_gzipped_files(tmp_path: Path) -> None:
    # The Debian dataset packages ship the IDX files gzipped (train-images-idx3-ubyte.gz, ...).
    rng = np.random.default_rng(0)
    images = {"train": rng.integers(0, 256, (12, 4, 3)), "t10k": rng.integers(0, 256, (5, 4, 3))}
    for part, x in images.items():
        _write_idx_gz(tmp_path / f"{part}-images-idx3-ubyte.gz", x)
        _write_idx_gz(tmp_path / f"{part}-labels-idx1-ubyte.gz", np.arange(len(x)) % 10)
    splits = idx_folder(tmp_path, valid_size=2)
    assert (splits.x_train.shape, splits.x_valid.shape, splits.x_test.shape) == ((10, 12), (2, 12), (5, 12))
    # exact: k / 255 in float32 both ways
    torch.testing.assert_close(splits.x_test, torch.as_tensor(images["t10k"].reshape(5, 12) / 255.0).float())
    assert splits.y_valid.tolist() == [0, 1] and splits.y_test.tolist() == [0, 1, 2, 3, 4]
    static = idx_folder(tmp_path, binarize="static", valid_size=2)
    assert torch.equal(static.x_train, (splits.x_train > 0.5).float())


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(
    not FASHION.is_dir(),
    reason=f"Fashion-MNIST is not installed ({FASHION} is absent): apt-get install dataset-fashion-mnist",
)
def test_fashion_mnist_from_the_debian_package() -> None:
    splits = idx_folder(FASHION, valid_size=10000)
    assert (len(splits.x_train), len(splits.x_valid), len(splits.x_test)) == (50000, 10000, 10000)
    assert splits.num_features == 784
    assert float(splits.x_train.min()) == 0.0 and float(splits.x_train.max()) == 1.0
    assert sorted(splits.y_test.unique().tolist()) == list(range(10))
    assert torch.bincount(splits.y_test).tolist() == [1000] * 10  # the test set is balanced
