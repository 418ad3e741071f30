"""PNG figures of a trained VAE: sample grids, reconstructions, learning curves."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from reparam._optional import pyplot
from reparam.models.vae import VAE


def _side(num_features: int) -> int:
    side = math.isqrt(num_features)
    if side * side != num_features:
        raise ValueError(f"cannot show {num_features} features as a square image.")
    return side


def image_grid(rows: Tensor, columns: int) -> Tensor:
    """Tile square images given as flat rows into one ``(H, W)`` array, ``columns`` per row."""
    side = _side(rows.shape[-1])
    count = rows.shape[0]
    lines = math.ceil(count / columns)
    canvas = torch.ones(lines * (side + 1) + 1, columns * (side + 1) + 1)
    for i in range(count):
        r, c = divmod(i, columns)
        top, left = 1 + r * (side + 1), 1 + c * (side + 1)
        canvas[top : top + side, left : left + side] = rows[i].reshape(side, side)
    return canvas


def _save(grid: Tensor, path: Path, title: str) -> Path:
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6, 6 * grid.shape[0] / grid.shape[1]))
    axis.imshow(grid.numpy(), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    axis.set_title(title)
    axis.axis("off")
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)
    return path


@torch.no_grad()
def sample_grid(model: VAE, path: Path, generator: torch.Generator, count: int = 64) -> Path:
    """Means of :math:`p(x \\mid z)` for ``count`` draws :math:`z \\sim N(0, I)`."""
    z = torch.randn(count, model.config.latent_dim, generator=generator)
    return _save(
        image_grid(model.decode_mean(z).clamp(0, 1), 8), path, "samples: mean of p(x | z), z ~ N(0, I)"
    )


@torch.no_grad()
def reconstruction_grid(model: VAE, x: Tensor, path: Path) -> Path:
    """Pairs of lines: data rows, then the decoder mean at the posterior mean."""
    means = model.decode_mean(model.posterior(x).mean).clamp(0, 1)
    columns = 8
    lines = []
    for start in range(0, len(x), columns):
        lines += [x[start : start + columns], means[start : start + columns]]
    return _save(image_grid(torch.cat(lines), columns), path, "test rows (odd lines) and reconstructions")


def learning_curves(records: list[dict[str, Any]], path: Path) -> Path:
    """Training loss (negative bound) and validation bound against steps."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(7, 4))
    steps = [r["step"] for r in records if "loss" in r]
    axis.plot(steps, [r["loss"] for r in records if "loss" in r], label="train: -bound (minibatch mean)")
    valid = [r for r in records if "valid_bound" in r]
    if valid:
        axis.plot(
            [r["step"] for r in valid],
            [-r["valid_bound"] for r in valid],
            "o-",
            label="validation: -IWAE bound",
        )
    if steps:
        losses = sorted(r["loss"] for r in records if "loss" in r)
        low, high = losses[0], losses[min(len(losses) - 1, int(0.9 * len(losses)))]
        axis.set_ylim(low - 0.05 * (high - low + 1), high + 0.1 * (high - low + 1))
    axis.set_xlabel("step")
    axis.set_ylabel("nats per example")
    axis.legend()
    axis.grid(alpha=0.3)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)
    return path
