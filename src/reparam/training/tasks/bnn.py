"""The Bayesian network's task for ``reparam train bnn``: a Bayesian MLP/CNN on digits or
breast-cancer (classification) or diabetes (heteroscedastic regression), trained with the
reparameterization, local-reparameterization or Flipout estimator, or a deterministic baseline.

Example:
    >>> task = BNNTask(BNNOptions(data="digits"))
    >>> fit(task, RunSettings(out=Path("runs/bnn"), steps=800))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reparam._optional import pyplot
from reparam.data import Splits, load
from reparam.models.bnn import build
from reparam.nn import (
    ELBOLoss,
    accuracy,
    classification_uncertainty,
    expected_calibration_error,
    kl_divergence,
    negative_log_likelihood,
    predict_samples,
    regression_uncertainty,
)
from reparam.nn.base import check_estimator
from reparam.nn.likelihoods import heteroscedastic_gaussian_nll
from reparam.training.batches import ShuffledBatches
from reparam.training.data_checks import check_splits
from reparam.training.engine import Context, RunResult, Task
from reparam.training.errors import DataError, OptionsError
from reparam.training.metrics import METRICS_FILE, MetricsLog

CHOICES = ("deterministic", "reparam", "local", "flipout")
REGRESSION = ("diabetes",)


@dataclass(frozen=True)
class BNNOptions:
    """The network, estimator and data of a BNN run (saved in the checkpoint)."""

    data: str = "digits"
    arch: str = "mlp"
    estimator: str = "flipout"
    batch_size: int = 64
    lr: float = 3e-3
    prior_scale: float = 1.0
    kl_weight: float = 1.0
    hidden: tuple[int, ...] = (200, 200)
    eval_samples: int = 32

    @property
    def regression(self) -> bool:
        return self.data in REGRESSION

    @property
    def name(self) -> str:
        return f"{self.data}-{self.arch}-{self.estimator}"

    def validate(self) -> None:
        if self.estimator not in CHOICES:
            raise OptionsError(
                f"--estimator must be one of {', '.join((*CHOICES, 'all'))}, got {self.estimator!r}."
            )
        if self.arch not in ("mlp", "cnn"):
            raise OptionsError(f"--arch must be mlp or cnn, got {self.arch!r}.")
        for name in ("batch_size", "eval_samples"):
            if getattr(self, name) < 1:
                raise OptionsError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}.")
        if not (self.lr > 0 and self.prior_scale > 0 and self.kl_weight >= 0):
            raise OptionsError("--lr and --prior-scale must be > 0 and --kl-weight >= 0.")
        if self.regression and self.arch == "cnn":
            raise OptionsError("--arch cnn is for image data (digits); use --arch mlp for diabetes.")


def load_bnn_data(options: BNNOptions) -> Splits:
    """The checked, labelled splits named by ``--data``."""
    try:
        splits = load(options.data)
    except (OSError, ValueError) as error:
        raise DataError(f"--data: {error}") from None
    if splits.y_train is None:
        raise DataError(f"--data {options.data!r} has no labels; use digits, breast-cancer or diabetes.")
    return check_splits(splits, options.data)[0]


class BNNTask(Task):
    """A Bayesian network (:func:`reparam.models.bnn.build`) fitted by the ELBO with Adam."""

    kind = "bnn"
    saved = ("model", "optimizer", "order")

    def __init__(self, options: BNNOptions, splits: Splits | None = None, plots: bool = False) -> None:
        options.validate()
        super().__init__(options)
        self.splits, self.plots = splits, plots

    def setup(self, context: Context) -> None:
        o: BNNOptions = self.options
        self.context = context
        splits = self.splits if self.splits is not None else load_bnn_data(o)
        self.splits = splits = (
            splits if splits.x_train.device == context.device else _to(splits, context.device)
        )
        assert splits.y_train is not None
        y = splits.y_train.float()
        self.y_mean, self.y_std = (float(y.mean()), float(y.std())) if o.regression else (0.0, 1.0)
        self.target = (splits.y_train - self.y_mean) / self.y_std if o.regression else splits.y_train
        outputs = 2 if o.regression else int(splits.y_train.max()) + 1
        estimator = None if o.estimator == "deterministic" else check_estimator(o.estimator)
        self.model = build(o.arch, splits.num_features, outputs, estimator, o.prior_scale, o.hidden).to(
            context.device
        )
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=o.lr)
        self.criterion = ELBOLoss(
            len(splits.x_train), "gaussian" if o.regression else "categorical", o.kl_weight
        )
        self.order = ShuffledBatches(len(splits.x_train), o.batch_size, context.seed + 15485863)

    def module(self) -> nn.Module:
        return self.model

    def loss(self, step: int) -> tuple[Tensor, dict[str, float | Tensor]]:
        rows = self.context.shard(self.order.next()).to(self.context.device)
        x, y = self.splits.x_train[rows], self.target[rows]  # type: ignore[union-attr]
        output = self.model(x)
        if self.options.estimator != "deterministic":
            kl = kl_divergence(self.model)
            nll = self.criterion.nll(output, y).mean()
            return self.criterion(output, y, kl), {"nll": nll.detach(), "kl": kl.detach()}
        if self.options.regression:
            nll = heteroscedastic_gaussian_nll(output, y).mean()
        else:
            nll = F.cross_entropy(output, y)
        return nll, {"nll": nll.detach(), "kl": 0.0}

    @torch.no_grad()
    def metrics(self, x: Tensor, y: Tensor, samples: int) -> dict[str, float]:
        """Held-out metrics from ``samples`` posterior draws (one pass for a deterministic net)."""
        samples = 1 if self.options.estimator == "deterministic" else samples
        self.model.eval()
        outputs = predict_samples(self.model, x, samples)
        self.model.train()
        if self.options.regression:
            regression = regression_uncertainty(outputs)
            target = (y - self.y_mean) / self.y_std
            return {
                "rmse": float(((regression.mean - target) ** 2).mean().sqrt()) * self.y_std,
                # mixture NLL in standardised units + log(y_std) = NLL in the original units
                "nll": float(-regression.log_likelihood(target).mean()) + math.log(self.y_std),
                "aleatoric_std": float(regression.aleatoric_variance.mean().sqrt()) * self.y_std,
                "epistemic_std": float(regression.epistemic_variance.mean().sqrt()) * self.y_std,
            }
        prediction = classification_uncertainty(outputs)
        return {
            "accuracy": accuracy(prediction.probs, y),
            "nll": negative_log_likelihood(prediction.probs, y),
            "ece": expected_calibration_error(prediction.probs, y),
            "mutual_information": float(prediction.mutual_information.mean()),
            "expected_entropy": float(prediction.expected_entropy.mean()),
        }

    def evaluate(self) -> dict[str, float]:
        s = self.splits
        assert s is not None and s.y_valid is not None
        valid = self.metrics(s.x_valid, s.y_valid, min(8, self.options.eval_samples))
        return {f"valid_{k}": v for k, v in valid.items() if k in ("accuracy", "rmse", "nll")}

    def status(self, metrics: dict[str, float]) -> str:
        return f"loss {metrics.get('loss', math.nan):.4g} nll {metrics.get('nll', math.nan):.4g}"

    def finish(self, out: Path, result: RunResult) -> list[Path]:
        s, o = self.splits, self.options
        assert s is not None and s.y_test is not None
        test = self.metrics(s.x_test, s.y_test, o.eval_samples)
        summary = {"name": o.name, "options": asdict(o), "steps_done": result.step, "test": test}
        path = out / "summary.json"
        path.write_text(json.dumps(summary, indent=2))
        files = [path]
        if self.plots:
            files.append(_plot_curves(MetricsLog(out / METRICS_FILE).read(), out / "curves.png", o.name))
            if o.regression:
                files.append(self._plot_regression(out / "predictions.png"))
        return files

    @torch.no_grad()
    def test_probabilities(self) -> tuple[Tensor, Tensor]:
        """Test predictive probabilities and labels (classification)."""
        s = self.splits
        assert s is not None and s.y_test is not None
        self.model.eval()
        samples = 1 if self.options.estimator == "deterministic" else self.options.eval_samples
        return classification_uncertainty(predict_samples(self.model, s.x_test, samples)).probs, s.y_test

    @torch.no_grad()
    def _plot_regression(self, path: Path) -> Path:
        plt, s, o = pyplot(), self.splits, self.options
        assert s is not None and s.y_test is not None
        self.model.eval()
        prediction = regression_uncertainty(predict_samples(self.model, s.x_test, o.eval_samples))
        mean = (prediction.mean * self.y_std + self.y_mean).cpu()
        bands = {
            "±2 sd total (aleatoric + epistemic)": (prediction.total_variance.sqrt() * self.y_std).cpu(),
            "±2 sd aleatoric": (prediction.aleatoric_variance.sqrt() * self.y_std).cpu(),
        }
        order = torch.argsort(mean)
        figure, axis = plt.subplots(figsize=(7, 4))
        index = torch.arange(len(order))
        for (label, sd), alpha in zip(bands.items(), (0.25, 0.35), strict=True):
            axis.fill_between(index, (mean - 2 * sd)[order], (mean + 2 * sd)[order], alpha=alpha, label=label)
        axis.plot(index, mean[order], color="black", linewidth=1, label="predictive mean")
        axis.scatter(index, s.y_test.cpu()[order], s=8, color="crimson", label="target")
        axis.set_xlabel("test example (sorted by predicted mean)")
        axis.set_ylabel(o.data)
        axis.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(path, dpi=110)
        plt.close(figure)
        return path


def _to(splits: Splits, device: torch.device) -> Splits:
    moved = {k: v.to(device) for k, v in vars(splits).items() if isinstance(v, Tensor)}
    return replace(splits, **moved)  # type: ignore[arg-type]


def _plot_curves(records: list[dict[str, Any]], path: Path, title: str) -> Path:
    plt = pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    steps = [r["step"] for r in records]
    axes[0].plot(steps, [r["loss"] for r in records], label="loss (-ELBO / N)")
    axes[0].plot(steps, [r["nll"] for r in records], label="train NLL")
    axes[0].set_xlabel("step")
    axes[0].legend()
    evaluated = [r for r in records if "valid_nll" in r]
    key = "valid_rmse" if evaluated and "valid_rmse" in evaluated[0] else "valid_accuracy"
    axes[1].plot([r["step"] for r in evaluated], [r[key] for r in evaluated], "o-")
    axes[1].set_xlabel("step")
    axes[1].set_ylabel(key.replace("_", " "))
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
