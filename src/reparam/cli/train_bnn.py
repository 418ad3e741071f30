"""``reparam train bnn``: a Bayesian MLP/CNN on digits (classification) or diabetes (heteroscedastic
regression), with any of the three gradient estimators or a deterministic baseline; progress bar,
atomic checkpoints every epoch, ``--resume``, metrics log, plots and a summary."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import typer
from rich.console import Console
from rich.table import Table
from torch import Tensor, nn

from reparam._optional import pyplot, require
from reparam.cli.app import train_app
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
    reliability_diagram,
)
from reparam.nn.base import check_estimator
from reparam.nn.likelihoods import heteroscedastic_gaussian_nll
from reparam.training import (
    CHECKPOINT_FILE,
    METRICS_FILE,
    GracefulInterrupt,
    MetricsLog,
    check_finite,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
    training_progress,
)

CHOICES = ("deterministic", "reparam", "local", "flipout")
REGRESSION = ("diabetes",)


@dataclass(frozen=True)
class Config:
    data: str = "digits"
    arch: str = "mlp"
    estimator: str = "flipout"
    epochs: int = 40
    batch_size: int = 64
    lr: float = 3e-3
    prior_scale: float = 1.0
    kl_weight: float = 1.0
    hidden: tuple[int, ...] = (200, 200)
    eval_samples: int = 32
    seed: int = 0

    @property
    def regression(self) -> bool:
        return self.data in REGRESSION

    @property
    def name(self) -> str:
        return f"{self.data}-{self.arch}-{self.estimator}"


def _validate(config: Config) -> None:
    if config.estimator not in CHOICES:
        raise typer.BadParameter(f"--estimator must be one of {(*CHOICES, 'all')}, got {config.estimator!r}.")
    for name in ("epochs", "batch_size", "eval_samples"):
        if getattr(config, name) < 1:
            raise typer.BadParameter(f"--{name.replace('_', '-')} must be >= 1, got {getattr(config, name)}.")
    if not (config.lr > 0 and config.prior_scale > 0 and config.kl_weight >= 0):
        raise typer.BadParameter("--lr and --prior-scale must be > 0 and --kl-weight >= 0.")
    if config.regression and config.arch == "cnn":
        raise typer.BadParameter("--arch cnn is for image data (digits); use --arch mlp for diabetes.")


def _load(config: Config) -> tuple[Splits, float, float]:
    """The splits, and the training targets' mean and std (regression; 0 and 1 otherwise)."""
    try:
        splits = load(config.data)
    except ValueError as error:
        raise typer.BadParameter(f"--data: {error}") from error
    if splits.y_train is None:
        raise typer.BadParameter(
            f"--data {config.data!r} has no labels; use digits, breast-cancer or diabetes."
        )
    if config.regression:
        y = splits.y_train.float()
        return splits, float(y.mean()), float(y.std())
    return splits, 0.0, 1.0


def _model(config: Config, splits: Splits) -> nn.Module:
    outputs = 2 if config.regression else int(splits.y_train.max()) + 1  # type: ignore[union-attr]
    estimator = None if config.estimator == "deterministic" else check_estimator(config.estimator)
    return build(config.arch, splits.num_features, outputs, estimator, config.prior_scale, config.hidden)


@torch.no_grad()
def evaluate(model: nn.Module, config: Config, x: Tensor, y: Tensor, y_mean: float, y_std: float) -> dict:
    """Test metrics from ``eval_samples`` posterior draws (one pass for a deterministic net)."""
    samples = 1 if config.estimator == "deterministic" else config.eval_samples
    model.eval()
    outputs = predict_samples(model, x, samples)
    model.train()
    if config.regression:
        regression = regression_uncertainty(outputs)
        target = (y - y_mean) / y_std
        rmse = float(((regression.mean - target) ** 2).mean().sqrt()) * y_std
        # mixture NLL in standardised units + log(y_std) = NLL in the original units
        nll = float(-regression.log_likelihood(target).mean()) + math.log(y_std)
        return {
            "rmse": rmse,
            "nll": nll,
            "aleatoric_std": float(regression.aleatoric_variance.mean().sqrt()) * y_std,
            "epistemic_std": float(regression.epistemic_variance.mean().sqrt()) * y_std,
        }
    prediction = classification_uncertainty(outputs)
    return {
        "accuracy": accuracy(prediction.probs, y),
        "nll": negative_log_likelihood(prediction.probs, y),
        "ece": expected_calibration_error(prediction.probs, y),
        "mutual_information": float(prediction.mutual_information.mean()),
        "expected_entropy": float(prediction.expected_entropy.mean()),
    }


def _plot_curves(records: list[dict], path: Path, title: str) -> None:
    plt = pyplot()

    figure, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    epochs = [r["epoch"] for r in records]
    axes[0].plot(epochs, [r["loss"] for r in records], label="loss (-ELBO / N)")
    axes[0].plot(epochs, [r["nll"] for r in records], label="train NLL")
    axes[0].set_xlabel("epoch")
    axes[0].legend()
    key = "valid_rmse" if "valid_rmse" in records[0] else "valid_accuracy"
    axes[1].plot(epochs, [r[key] for r in records])
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel(key.replace("_", " "))
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _plot_regression(
    model: nn.Module, config: Config, x: Tensor, y: Tensor, y_mean: float, y_std: float, path: Path
) -> None:
    plt = pyplot()

    samples = 1 if config.estimator == "deterministic" else config.eval_samples
    model.eval()
    prediction = regression_uncertainty(predict_samples(model, x, samples))
    model.train()
    mean = prediction.mean * y_std + y_mean
    aleatoric = prediction.aleatoric_variance.sqrt() * y_std
    total = prediction.total_variance.sqrt() * y_std
    order = torch.argsort(mean)
    figure, axis = plt.subplots(figsize=(7, 4))
    index = torch.arange(len(order))
    axis.fill_between(
        index,
        (mean - 2 * total)[order],
        (mean + 2 * total)[order],
        alpha=0.25,
        label="±2 sd total (aleatoric + epistemic)",
    )
    axis.fill_between(
        index,
        (mean - 2 * aleatoric)[order],
        (mean + 2 * aleatoric)[order],
        alpha=0.35,
        label="±2 sd aleatoric",
    )
    axis.plot(index, mean[order], color="black", linewidth=1, label="predictive mean")
    axis.scatter(index, y[order], s=8, color="crimson", label="target")
    axis.set_xlabel("test example (sorted by predicted mean)")
    axis.set_ylabel(config.data)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def run(
    config: Config, out: Path, resume: bool = False, console: Console | None = None, progress: bool = True
) -> dict[str, Any]:
    """Train (or resume) one configuration in ``out / config.name``; return its summary."""
    _validate(config)
    console = console or Console()
    folder = out / config.name
    checkpoint_path = folder / CHECKPOINT_FILE
    log = MetricsLog(folder / METRICS_FILE)
    splits, y_mean, y_std = _load(config)
    seed_everything(config.seed)
    model = _model(config, splits)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    start = 0
    if resume:
        state = load_checkpoint(checkpoint_path)
        saved = Config(**{**state["config"], "hidden": tuple(state["config"]["hidden"])})
        if {**asdict(saved), "epochs": 0} != {**asdict(config), "epochs": 0}:
            raise typer.BadParameter(
                f"--resume: the checkpoint in {folder} was trained with {saved}, not {config}; "
                "pass the same options (only --epochs may change) or a different --out."
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"])
        start = state["epoch"]
        log.truncate_after(start, key="epoch")
        console.print(f"resuming {config.name} after epoch {start}")
    elif folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)

    x, y = splits.x_train, splits.y_train
    assert y is not None
    target = (y - y_mean) / y_std if config.regression else y
    n = len(x)
    bayesian = config.estimator != "deterministic"
    criterion = ELBOLoss(n, "gaussian" if config.regression else "categorical", config.kl_weight)

    def step(xb: Tensor, yb: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        output = model(xb)
        if bayesian:
            kl = kl_divergence(model)
            return criterion(output, yb, kl), criterion.nll(output, yb).mean(), kl
        nll = (
            heteroscedastic_gaussian_nll(output, yb).mean()
            if config.regression
            else F.cross_entropy(output, yb)
        )
        return nll, nll, torch.zeros(())

    batches = math.ceil(n / config.batch_size)
    with GracefulInterrupt() as interrupt, training_progress(console, disable=not progress) as bar:
        task = bar.add_task(config.name, total=config.epochs, completed=start, status="")
        for epoch in range(start + 1, config.epochs + 1):
            totals = torch.zeros(3)
            order = torch.randperm(n)
            for b, index in enumerate(order.split(config.batch_size)):
                loss, nll, kl = step(x[index], target[index])
                check_finite(loss.detach(), (epoch - 1) * batches + b)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                totals += torch.stack([loss.detach(), nll.detach(), kl.detach()]) * len(index) / n
            record: dict[str, Any] = {
                "epoch": epoch,
                "loss": float(totals[0]),
                "nll": float(totals[1]),
                "kl": float(totals[2]),
            }
            quick = Config(**{**asdict(config), "eval_samples": min(8, config.eval_samples)})
            valid = evaluate(model, quick, splits.x_valid, splits.y_valid, y_mean, y_std)  # type: ignore[arg-type]
            record.update({f"valid_{k}": v for k, v in valid.items() if k in ("accuracy", "rmse", "nll")})
            log.write(record)
            state = {
                "config": asdict(config),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch,
                "rng": rng_state(),
            }
            save_checkpoint(checkpoint_path, state)
            shown = " ".join(f"{k}={v:.4g}" for k, v in record.items() if k != "epoch")
            bar.update(task, completed=epoch, status=shown)
            if interrupt.requested:
                console.print(f"interrupted after epoch {epoch}; resume with --resume")
                break

    test = evaluate(model, config, splits.x_test, splits.y_test, y_mean, y_std)  # type: ignore[arg-type]
    records = log.read()
    if records:
        _plot_curves(records, folder / "curves.png", config.name)
    if config.regression and splits.y_test is not None:
        path = folder / "predictions.png"
        _plot_regression(model, config, splits.x_test, splits.y_test, y_mean, y_std, path)
    done = records[-1]["epoch"] if records else 0
    summary = {"name": config.name, "config": asdict(config), "epochs_done": done, "test": test}
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def test_probabilities(summary_folder: Path, config: Config) -> tuple[Tensor, Tensor]:
    """Reload a finished run and return its test predictive probabilities and labels."""
    splits, _, _ = _load(config)
    model = _model(config, splits)
    model.load_state_dict(load_checkpoint(summary_folder / CHECKPOINT_FILE)["model"])
    model.eval()
    samples = 1 if config.estimator == "deterministic" else config.eval_samples
    probs = classification_uncertainty(predict_samples(model, splits.x_test, samples)).probs
    return probs, splits.y_test  # type: ignore[return-value]


def _table(summaries: list[dict], regression: bool) -> tuple[Table, str]:
    keys = (
        ["rmse", "nll", "aleatoric_std", "epistemic_std"]
        if regression
        else ["accuracy", "nll", "ece", "mutual_information"]
    )
    table = Table(title="test set")
    table.add_column("run")
    for key in keys:
        table.add_column(key, justify="right")
    lines = ["| run | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for summary in summaries:
        values = [f"{summary['test'][k]:.4f}" for k in keys]
        table.add_row(summary["name"], *values)
        lines.append(f"| {summary['name']} | " + " | ".join(values) + " |")
    return table, "\n".join(lines) + "\n"


@train_app.command("bnn")
def train_bnn(
    data: str = typer.Option(
        "digits", help="digits | breast-cancer (classification) | diabetes (regression)."
    ),
    arch: str = typer.Option("mlp", help="mlp | cnn (cnn: 8x8 digits only)."),
    estimator: str = typer.Option("flipout", help="reparam | local | flipout | deterministic | all."),
    epochs: int = typer.Option(40, help="Passes over the training set."),
    batch_size: int = typer.Option(64, help="Minibatch size (the KL is scaled by the dataset size)."),
    lr: float = typer.Option(3e-3, help="Adam learning rate."),
    prior_scale: float = typer.Option(1.0, help="Standard deviation of the N(0, s^2) weight prior."),
    kl_weight: float = typer.Option(1.0, help="Multiplies the KL (1 = the ELBO)."),
    hidden: str = typer.Option("200,200", help="MLP hidden widths, comma separated."),
    eval_samples: int = typer.Option(32, help="Posterior draws for the test predictive."),
    seed: int = typer.Option(0, help="Random seed."),
    out: Path = typer.Option("runs/bnn", help="Output folder (one subfolder per run)."),
    resume: bool = typer.Option(False, help="Continue from the run's checkpoint."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    threads: int = typer.Option(1, help="torch intra-op threads (small models train fastest on one)."),
) -> None:
    """Train a Bayesian network; --estimator all trains the deterministic baseline and the three
    estimators and writes a comparison table (comparison.md) and an overlaid reliability diagram."""
    try:
        widths = tuple(int(w) for w in hidden.split(",") if w.strip())
    except ValueError as error:
        raise typer.BadParameter(f"--hidden must be comma-separated ints, got {hidden!r}.") from error
    if not widths or min(widths) < 1:
        raise typer.BadParameter(f"--hidden must be comma-separated positive ints, got {hidden!r}.")
    require("matplotlib", extra="plots", feature="train bnn")
    torch.set_num_threads(max(1, threads))
    console = Console()
    names = CHOICES if estimator == "all" else (estimator,)
    configs = [
        Config(data, arch, name, epochs, batch_size, lr, prior_scale, kl_weight, widths, eval_samples, seed)
        for name in names
    ]
    for config in configs:
        _validate(config)
    summaries = [run(config, out, resume, console, progress) for config in configs]
    regression = configs[0].regression
    table, markdown = _table(summaries, regression)
    console.print(table)
    stem = f"{data}-{arch}"
    (out / f"{stem}-comparison.md").write_text(markdown)
    if not regression:
        curves = {c.estimator: test_probabilities(out / c.name, c) for c in configs}
        labels = next(iter(curves.values()))[1]
        path = reliability_diagram(
            {k: v[0] for k, v in curves.items()},
            labels,
            out / f"{stem}-reliability.png",
            title=f"{data} {arch}: reliability on the test set",
        )
        console.print(f"reliability diagram: {path}")
    console.print(f"results in {out}/ ({', '.join(c.name for c in configs)})")


__all__ = ["Config", "evaluate", "run", "train_bnn"]
