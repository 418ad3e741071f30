"""``reparam train discrete-vae``: a Bernoulli-latent VAE on static binarized MNIST with any
discrete gradient estimator, with progress, atomic checkpoints and bit-for-bit resume.

The model's randomness comes from torch's global generator and the minibatch order from a
dedicated generator; both are saved in the checkpoint with the model, the optimizer, the
estimator's state (REBAR/RELAX parameters, moving-average baselines) and the step, so a resumed
run repeats the uninterrupted one exactly.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import typer
from rich.console import Console
from torch import Tensor, nn

from reparam.cli.app import train_app
from reparam.data import Splits, binarized_mnist
from reparam.estimators.base import Estimator
from reparam.estimators.registry import ESTIMATORS, make_estimator
from reparam.models.discrete_vae import ARCHITECTURES, DiscreteVAE, DiscreteVAEConfig
from reparam.training import (
    CHECKPOINT_FILE,
    METRICS_FILE,
    GracefulInterrupt,
    MetricsLog,
    NonFiniteLossError,
    check_finite,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
    training_progress,
)
from reparam.training.batches import ShuffledBatches

# Options that may differ between a run and its resumption.
RESUMABLE = {"steps", "minutes", "out", "progress", "checkpoint_every", "log_every", "eval_every", "threads"}


@dataclass(frozen=True)
class Options:
    out: str
    data: str
    estimator: str = "disarm"
    arch: str = "linear"
    num_samples: int = 1
    batch_size: int = 50
    lr: float = 1e-3
    steps: int = 10000
    minutes: float | None = None
    seed: int = 0
    log_every: int = 100
    eval_every: int = 2000
    eval_k: int = 100
    eval_size: int = 1000
    checkpoint_every: int = 500
    train_size: int | None = None
    progress: bool = True
    threads: int = 1

    def validate(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise typer.BadParameter(
                f"unknown estimator {self.estimator!r}; choose from: {', '.join(sorted(ESTIMATORS))}",
                param_hint="--estimator",
            )
        if self.arch not in ARCHITECTURES:
            raise typer.BadParameter(f"--arch must be one of {', '.join(ARCHITECTURES)}", param_hint="--arch")
        for name in ("num_samples", "batch_size", "steps", "log_every", "eval_every", "eval_k", "eval_size"):
            if getattr(self, name) < 1:
                raise typer.BadParameter(
                    f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}"
                )
        if not self.lr > 0:
            raise typer.BadParameter(f"--lr must be > 0, got {self.lr}", param_hint="--lr")


@dataclass(frozen=True)
class TrainResult:
    step: int
    status: str  # "done" | "time" | "interrupted" | "nonfinite"
    out: Path
    train_elbo: float  # mean training-batch ELBO over the last log window
    test_bound: float | None  # eval_k-sample importance-weighted bound on eval_size test rows
    seconds: float


def estimator_state(estimator: object) -> object:
    return estimator.state_dict() if isinstance(estimator, nn.Module) else copy.deepcopy(estimator)


def num_samples_for(estimator: object, requested: int) -> int:
    return max(requested, int(getattr(estimator, "min_samples", 1)))


def test_bound(model: DiscreteVAE, x: Tensor, k: int) -> float:
    return float(model.importance_bound(x, k=k, chunk=max(1, 20000 // k)).mean())


def _save(
    path: Path,
    options: Options,
    model: DiscreteVAE,
    optimizer: torch.optim.Optimizer,
    order: ShuffledBatches,
    estimator: Estimator,
    step: int,
    elapsed: float,
    window: list[float],
) -> None:
    save_checkpoint(
        path,
        {
            "kind": "discrete-vae",
            "options": asdict(options),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "estimator": estimator_state(estimator),
            "rng": rng_state(),
            "order": order.state(),
            "step": step,
            "elapsed": elapsed,
            "window": list(window),
        },
    )


def train(
    options: Options,
    resume: bool = False,
    splits: Splits | None = None,
    stop: Callable[[int], bool] | None = None,
) -> TrainResult:
    """Train (or resume) as configured; ``splits`` replaces the data at ``options.data`` and
    ``stop(step)`` returning true ends the run as Ctrl-C does (checkpoint saved)."""
    options.validate()
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint_path, metrics = out / CHECKPOINT_FILE, MetricsLog(out / METRICS_FILE)
    splits = splits if splits is not None else binarized_mnist(options.data)
    x_train = splits.x_train if options.train_size is None else splits.x_train[: options.train_size]
    x_test = splits.x_test[: options.eval_size]
    torch.set_num_threads(options.threads)
    seed_everything(options.seed)
    config = DiscreteVAEConfig(arch=options.arch, data_dim=x_train.shape[1])
    model = DiscreteVAE(config, x_train.mean(0))
    estimator = make_estimator(options.estimator)
    params = list(model.parameters())
    if isinstance(estimator, nn.Module):
        params += list(estimator.parameters())  # REBAR/RELAX: their variance gradients
    optimizer = torch.optim.Adam(params, lr=options.lr)
    order = ShuffledBatches(len(x_train), options.batch_size, options.seed + 104729)
    step, elapsed, window = 0, 0.0, []
    if resume:
        state = load_checkpoint(checkpoint_path)
        saved = {k: v for k, v in state["options"].items() if k not in RESUMABLE}
        current = {k: v for k, v in asdict(options).items() if k not in RESUMABLE}
        if saved != current:
            changed = sorted(k for k in current if saved.get(k) != current[k])
            raise typer.BadParameter(
                f"--resume with different options {changed}; rerun with the original ones (only "
                f"{', '.join(sorted(RESUMABLE))} may change)."
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if isinstance(estimator, nn.Module):
            estimator.load_state_dict(state["estimator"])
        else:
            estimator = state["estimator"]
        order.load(state["order"])
        step, elapsed, window = int(state["step"]), float(state["elapsed"]), list(state["window"])
        set_rng_state(state["rng"])
        metrics.truncate_after(step)
    else:
        metrics.path.unlink(missing_ok=True)
        _save(checkpoint_path, options, model, optimizer, order, estimator, step, elapsed, window)

    n = num_samples_for(estimator, options.num_samples)
    console = Console(stderr=True)
    status, last, recent = "done", math.nan, list(window)
    started = time.perf_counter() - elapsed
    with GracefulInterrupt() as interrupt, training_progress(console, disable=not options.progress) as bar:
        task = bar.add_task(
            f"discrete-vae {options.estimator}", total=options.steps, completed=step, status=""
        )
        try:
            while step < options.steps:
                if interrupt.requested or (stop is not None and stop(step)):
                    status = "interrupted"
                    break
                if options.minutes is not None and time.perf_counter() - started >= 60 * options.minutes:
                    status = "time"
                    break
                x = x_train[order.next()]
                loss, bound = model.loss(x, estimator, n)
                last = check_finite(loss.detach(), step + 1)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                window.append(float(bound.mean()))
                if step % options.log_every == 0 or step == options.steps:
                    record: dict[str, Any] = {
                        "step": step,
                        "train_elbo": sum(window) / len(window),
                        "seconds": round(time.perf_counter() - started, 3),
                    }
                    recent, window = window, []
                    if step % options.eval_every == 0 or step == options.steps:
                        record["test_bound"] = test_bound(model, x_test, options.eval_k)
                    metrics.write(record)
                if step % 10 == 0 or step == options.steps:
                    bar.update(task, completed=step, status=f"-ELBO {last:8.2f}")
                if options.checkpoint_every and step % options.checkpoint_every == 0:
                    elapsed = time.perf_counter() - started
                    _save(checkpoint_path, options, model, optimizer, order, estimator, step, elapsed, window)
        except NonFiniteLossError as error:
            console.print(f"[red]{error}[/red] ({checkpoint_path})")
            return TrainResult(step, "nonfinite", out, math.nan, None, time.perf_counter() - started)
    elapsed = time.perf_counter() - started
    _save(checkpoint_path, options, model, optimizer, order, estimator, step, elapsed, window)
    recent = window or recent
    train_elbo = sum(recent) / len(recent) if recent else math.nan
    final_bound = test_bound(model, x_test, options.eval_k) if status != "interrupted" else None
    return TrainResult(step, status, out, train_elbo, final_bound, elapsed)


@train_app.command("discrete-vae")
def train_discrete_vae(
    data: str = typer.Option(..., "--data", help="Static binarized MNIST .npz (keys train/valid/test)."),
    out: Path = typer.Option(Path("runs/discrete-vae"), "--out", help="Folder for checkpoint and metrics."),
    estimator: str = typer.Option("disarm", "--estimator", "-e", help="Estimator name (reparam registry)."),
    arch: str = typer.Option("linear", help="linear (784-200) | nonlinear (784-200-200-200)."),
    num_samples: int = typer.Option(
        1, "--num-samples", "-n", help="Samples (antithetic pairs for ARM/DisARM)."
    ),
    batch_size: int = typer.Option(50),
    lr: float = typer.Option(1e-3, help="Adam learning rate (model and estimator parameters)."),
    steps: int = typer.Option(10000),
    minutes: float | None = typer.Option(None, help="Stop after this much training time (total)."),
    seed: int = typer.Option(0),
    log_every: int = typer.Option(100),
    eval_every: int = typer.Option(2000, help="Test importance-weighted bound every N steps."),
    eval_k: int = typer.Option(100, help="Importance samples of the test bound."),
    eval_size: int = typer.Option(1000, help="Test rows used for the bound (10000 for the full set)."),
    checkpoint_every: int = typer.Option(500, help="Checkpoint every N steps (and at the end)."),
    fast: bool = typer.Option(
        False, "--fast", help="A tiny smoke run: 30 steps, 1000 train rows, 20-sample bound."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoint.pt."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    threads: int = typer.Option(1, help="torch CPU threads."),
) -> None:
    """Train a Bernoulli-latent VAE (ARM/DisARM papers' models) with any discrete estimator."""
    options = Options(
        out=str(out),
        data=data,
        estimator=estimator,
        arch=arch,
        num_samples=num_samples,
        batch_size=batch_size,
        lr=lr,
        steps=steps,
        minutes=minutes,
        seed=seed,
        log_every=log_every,
        eval_every=eval_every,
        eval_k=eval_k,
        eval_size=eval_size,
        checkpoint_every=checkpoint_every,
        progress=progress,
        threads=threads,
    )
    if fast:
        options = replace(
            options,
            steps=min(steps, 30),
            train_size=1000,
            eval_k=20,
            eval_size=100,
            log_every=10,
            eval_every=30,
        )
    if not Path(data).is_file():
        raise typer.BadParameter(
            f"{data!r} does not exist; pass the binarized MNIST .npz, e.g. "
            "../shared/data/binarized_mnist.npz",
            param_hint="--data",
        )
    result = train(options, resume=resume)
    console = Console()
    bound = "—" if result.test_bound is None else f"{result.test_bound:.2f}"
    console.print(
        f"{options.estimator} ({options.arch}): step {result.step} ({result.status}), "
        f"train ELBO {result.train_elbo:.2f}, test {options.eval_k}-sample bound {bound}, "
        f"{result.seconds:.0f} s; checkpoint {result.out / CHECKPOINT_FILE}"
    )
    if result.status == "nonfinite":
        raise typer.Exit(1)
