"""Reliability diagram (DeGroot & Fienberg 1983; Guo et al. 2017) written as a PNG."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from reparam._optional import pyplot
from reparam.nn.metrics import calibration_bins


def reliability_diagram(
    probs: Tensor | dict[str, Tensor], labels: Tensor, path: str | Path, num_bins: int = 15, title: str = ""
) -> Path:
    """Plot accuracy against confidence per bin (a perfectly calibrated model lies on the
    diagonal), with each bin's share of examples below. ``probs`` may be a dict
    ``{name: probs}`` to overlay several models. Uses matplotlib's Agg backend."""
    plt = pyplot()

    series = probs if isinstance(probs, dict) else {"model": probs}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    top.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="calibrated")
    width = 1.0 / num_bins / (len(series) + 0.5)
    for k, (name, p) in enumerate(series.items()):
        bins = calibration_bins(p, labels, num_bins)
        filled = bins.counts > 0
        left = bins.edges[:-1] + k * width
        top.plot(
            bins.confidence[filled].numpy(), bins.accuracy[filled].numpy(), marker="o",
            label=f"{name} (ECE {bins.ece:.3f})",
        )  # fmt: skip
        share = (bins.counts / bins.counts.sum()).numpy()
        bottom.bar(left.numpy(), share, width=width, align="edge", label=name)
    top.set_ylabel("accuracy")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.legend(loc="upper left", fontsize=8)
    top.set_title(title or "reliability diagram")
    bottom.set_xlabel("confidence (max probability)")
    bottom.set_ylabel("share")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
