"""``reparam train vae``: train a Gaussian VAE with checkpoints, bit-for-bit resume and plots.

Every random draw comes from two sources saved in the checkpoint: torch's global generator
(the model's samples) and a dedicated data generator (epoch shuffles, dynamic binarization);
with the model, the optimizer and the position in the current epoch, a resumed run repeats the
uninterrupted one exactly.
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
from torch import Tensor

from reparam._optional import require
from reparam.cli.app import train_app
from reparam.data import Splits, dynamic_binarize, load
from reparam.estimators.registry import ESTIMATORS, make_estimator
from reparam.models.vae import OBJECTIVES, VAE
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
from reparam.vi.iwae import GRADIENTS

# Options that may differ between a run and its resumption (they do not change the numbers).
RESUMABLE = ("steps", "minutes", "out", "progress", "checkpoint_minutes", "checkpoint_every", "threads")


@dataclass(frozen=True)
class TrainOptions:
    """Everything that defines a training run (saved in the checkpoint)."""

    out: str
    data: str = "digits"
    objective: str = "elbo"
    k: int = 1
    gradient: str = "standard"
    estimator: str = "pathwise"
    steps: int = 10000
    minutes: float | None = None
    batch_size: int = 100
    lr: float = 1e-3
    lr_final: float = 1e-3
    hidden: tuple[int, ...] = (200, 200)
    latent: int = 50
    activation: str = "tanh"
    likelihood: str = "bernoulli"
    binarize: str = "dynamic"
    seed: int = 0
    log_every: int = 100
    eval_every: int = 1000
    eval_k: int = 50
    eval_size: int = 1000
    checkpoint_minutes: float = 5.0
    checkpoint_every: int = 0
    progress: bool = True
    threads: int = 1

    def validate(self) -> None:
        if self.objective not in OBJECTIVES:
            raise typer.BadParameter(f"--objective must be one of {OBJECTIVES}, got {self.objective!r}.")
        if self.gradient not in GRADIENTS:
            raise typer.BadParameter(f"--gradient must be one of {GRADIENTS}, got {self.gradient!r}.")
        if self.estimator not in ESTIMATORS:
            raise typer.BadParameter(
                f"--estimator must be one of {sorted(ESTIMATORS)}, got {self.estimator!r}."
            )
        if self.objective == "iwae" and self.estimator != "pathwise":
            raise typer.BadParameter(
                "--objective iwae is pathwise only; use --objective elbo with --estimator."
            )
        if self.estimator != "pathwise" and self.gradient != "standard":
            raise typer.BadParameter("--gradient stl/dreg needs --estimator pathwise.")
        for name in ("k", "steps", "batch_size", "log_every", "eval_every", "eval_k", "eval_size"):
            if getattr(self, name) < 1:
                raise typer.BadParameter(
                    f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}."
                )
        if self.lr <= 0 or self.lr_final <= 0:
            raise typer.BadParameter(f"--lr and --lr-final must be > 0, got {self.lr}, {self.lr_final}.")


@dataclass
class TrainResult:
    step: int
    status: str  # "done", "time", "interrupted", "nonfinite"
    out: Path
    last_loss: float = math.nan


def load_data(options: TrainOptions) -> Splits:
    """The splits named by ``--data``; digits are binarized for a Bernoulli likelihood. IDX
    folders trained with dynamic binarization load grey levels (binarized per batch)."""
    if options.data == "digits":
        return load("digits", binarize=options.likelihood == "bernoulli", seed=options.seed)
    if Path(options.data).is_dir():
        gaussian, dynamic = options.likelihood == "gaussian", options.binarize == "dynamic"
        return load(
            options.data, binarize="none" if gaussian or dynamic else options.binarize, seed=options.seed
        )
    return load(options.data)


def learning_rate(options: TrainOptions, step: int) -> float:
    """Cosine decay (in log space) from ``lr`` to ``lr_final`` over ``steps``."""
    t = min(step / options.steps, 1.0)
    log_lr = math.log(options.lr_final) + 0.5 * (1 + math.cos(math.pi * t)) * (
        math.log(options.lr) - math.log(options.lr_final)
    )
    return math.exp(log_lr)


def _checkpoint(
    path: Path,
    options: TrainOptions,
    model: VAE,
    optimizer: torch.optim.Optimizer,
    order: ShuffledBatches,
    estimator: object,
    step: int,
    elapsed: float,
    window: list[float],
) -> None:
    save_checkpoint(
        path,
        {
            "kind": "vae",
            "options": asdict(options),
            "model_config": model.config.to_dict(),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": rng_state(),
            "data_order": order.state(),
            "estimator": copy.deepcopy(estimator),
            "step": step,
            "elapsed": elapsed,
            "loss_window": list(window),  # losses since the last metrics line
        },
    )


def _valid_bound(model: VAE, x: Tensor, options: TrainOptions) -> float:
    with torch.no_grad():
        return float(model.log_marginal(x, k=options.eval_k, chunk=options.eval_k).mean())


def train(
    options: TrainOptions,
    resume: bool = False,
    splits: Splits | None = None,
    stop: Callable[[int], bool] | None = None,
) -> TrainResult:
    """Run (or resume) training; returns where it stopped. See :func:`train_vae` for the CLI.

    ``splits`` replaces the data named by ``options.data``; ``stop(step)`` returning true ends
    the run as Ctrl-C does (checkpoint saved, status ``"interrupted"``)."""
    options.validate()
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint_path, metrics = out / CHECKPOINT_FILE, MetricsLog(out / METRICS_FILE)
    splits = splits if splits is not None else load_data(options)
    x_train = splits.x_train
    x_valid = splits.x_valid if len(splits.x_valid) else splits.x_test
    # A random validation subset (some sets are sorted by class), fixed by the seed.
    pick = torch.Generator().manual_seed(options.seed)
    x_valid = x_valid[torch.randperm(len(x_valid), generator=pick)[: options.eval_size]]
    dynamic = (
        Path(options.data).is_dir() and options.likelihood == "bernoulli" and options.binarize == "dynamic"
    )
    if dynamic:  # validate on one fixed binarization
        x_valid = dynamic_binarize(x_valid, pick)

    torch.set_num_threads(options.threads)
    seed_everything(options.seed)
    model = VAE(x_train.shape[1], options.latent, options.hidden, options.activation, options.likelihood)
    optimizer = torch.optim.Adam(model.parameters(), lr=options.lr, eps=1e-4)
    order = ShuffledBatches(len(x_train), options.batch_size, options.seed + 7919)
    estimator = make_estimator(options.estimator)
    step, elapsed, window = 0, 0.0, []
    if resume:
        state = load_checkpoint(checkpoint_path)
        saved = {k: v for k, v in state["options"].items() if k not in RESUMABLE}
        current = {k: v for k, v in asdict(options).items() if k not in RESUMABLE}
        saved["hidden"] = tuple(saved["hidden"])
        if saved != current:
            changed = sorted(k for k in current if saved.get(k) != current[k])
            raise typer.BadParameter(
                f"--resume with different options {changed}; rerun with the original ones "
                "(only --steps, --minutes, --out and checkpoint/progress options may change)."
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        order.load(state["data_order"])
        estimator = state["estimator"]
        step, elapsed = int(state["step"]), float(state["elapsed"])
        window = list(state.get("loss_window", []))
        set_rng_state(state["rng"])
        metrics.truncate_after(step)
    else:
        metrics.path.unlink(missing_ok=True)
        _checkpoint(checkpoint_path, options, model, optimizer, order, estimator, step, elapsed, window)

    pathwise = options.estimator == "pathwise"
    console = Console(stderr=True)
    status, last_loss = "done", math.nan
    started, last_save = time.perf_counter() - elapsed, time.perf_counter()
    with GracefulInterrupt() as interrupt, training_progress(console, disable=not options.progress) as bar:
        task = bar.add_task("train vae", total=options.steps, completed=step, status="")
        try:
            while step < options.steps:
                if interrupt.requested or (stop is not None and stop(step)):
                    status = "interrupted"
                    break
                if options.minutes is not None and time.perf_counter() - started >= 60 * options.minutes:
                    status = "time"
                    break
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(options, step)
                x = x_train[order.next()]
                if dynamic:
                    x = dynamic_binarize(x, order.generator)
                bound = model.objective(
                    x, options.objective, options.k, options.gradient, None if pathwise else estimator
                )
                loss = -bound.mean()
                last_loss = check_finite(loss.detach(), step + 1)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                window.append(last_loss)
                if step % options.log_every == 0 or step == options.steps:
                    record: dict[str, Any] = {
                        "step": step,
                        "loss": sum(window) / len(window),
                        "lr": learning_rate(options, step - 1),
                        "seconds": round(time.perf_counter() - started, 3),
                    }
                    window = []
                    if step % options.eval_every == 0 or step == options.steps:
                        record["valid_bound"] = _valid_bound(model, x_valid, options)
                    metrics.write(record)
                if step % 10 == 0 or step == options.steps:
                    bar.update(task, completed=step, status=f"loss {last_loss:8.3f}")
                due = options.checkpoint_every and step % options.checkpoint_every == 0
                if due or time.perf_counter() - last_save >= 60 * options.checkpoint_minutes:
                    elapsed = time.perf_counter() - started
                    _checkpoint(
                        checkpoint_path, options, model, optimizer, order, estimator, step, elapsed, window
                    )
                    last_save = time.perf_counter()
        except NonFiniteLossError as error:
            console.print(f"[red]{error}[/red] ({checkpoint_path})")
            return TrainResult(step, "nonfinite", out, last_loss)
    elapsed = time.perf_counter() - started
    _checkpoint(checkpoint_path, options, model, optimizer, order, estimator, step, elapsed, window)
    return TrainResult(step, status, out, last_loss)


def write_plots(out: Path, splits: Splits | None = None, options: TrainOptions | None = None) -> list[Path]:
    """Samples, reconstructions and learning curves of the run in ``out`` as PNGs."""
    from reparam.cli.vae_plots import learning_curves, reconstruction_grid, sample_grid

    state = load_checkpoint(out / CHECKPOINT_FILE)
    model = VAE.from_config(state["model_config"])
    model.load_state_dict(state["model"])
    model.eval()
    if splits is None:
        splits = load_data(options or TrainOptions(**_options_dict(state["options"])))
    generator = torch.Generator().manual_seed(0)
    return [
        sample_grid(model, out / "samples.png", generator),
        # Random test rows: some sets (binarized MNIST) are sorted by class.
        reconstruction_grid(
            model,
            splits.x_test[torch.randperm(len(splits.x_test), generator=generator)[:32]],
            out / "reconstructions.png",
        ),
        learning_curves(MetricsLog(out / METRICS_FILE).read(), out / "learning_curves.png"),
    ]


def _options_dict(saved: dict[str, Any]) -> dict[str, Any]:
    values = dict(saved)
    values["hidden"] = tuple(values["hidden"])
    return values


@train_app.command("vae")
def train_vae(
    out: Path = typer.Option(..., "--out", help="Folder for checkpoint.pt, metrics.jsonl, PNGs."),
    data: str = typer.Option("digits", help="'digits', a binarized-MNIST .npz path, or an IDX folder."),
    objective: str = typer.Option("elbo", help="elbo | iwae"),
    k: int = typer.Option(1, "--k", help="Samples per data point (IWAE: importance samples)."),
    gradient: str = typer.Option("standard", help="standard | stl | dreg (pathwise only)."),
    estimator: str = typer.Option(
        "pathwise", help="pathwise, or a score-function estimator: reinforce-loo, ..."
    ),
    steps: int = typer.Option(10000, help="Optimizer steps (the learning-rate schedule spans them)."),
    minutes: float | None = typer.Option(None, help="Stop after this much training time (total)."),
    batch_size: int = typer.Option(100),
    lr: float = typer.Option(1e-3),
    lr_final: float | None = typer.Option(
        None, help="Final learning rate of the cosine schedule (default: --lr)."
    ),
    hidden: str = typer.Option("200,200", help="Hidden sizes, comma-separated (decoder mirrors them)."),
    latent: int = typer.Option(50),
    activation: str = typer.Option("tanh"),
    likelihood: str = typer.Option("bernoulli", help="bernoulli | gaussian"),
    binarize: str = typer.Option("dynamic", help="For IDX folders: none | static | dynamic."),
    seed: int = typer.Option(0),
    log_every: int = typer.Option(100),
    eval_every: int = typer.Option(1000, help="Validation IWAE bound every N steps."),
    eval_k: int = typer.Option(50),
    eval_size: int = typer.Option(1000),
    checkpoint_minutes: float = typer.Option(5.0, help="Checkpoint every N minutes (and at the end)."),
    checkpoint_every: int = typer.Option(0, help="Also checkpoint every N steps (0: off)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoint.pt."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    plots: bool = typer.Option(True, "--plots/--no-plots"),
    threads: int = typer.Option(1, help="torch CPU threads (1 is fastest on a shared, busy machine)."),
) -> None:
    """Train a Gaussian VAE (ELBO, IWAE-k, STL, DReG, or score-function ELBO)."""
    if plots:
        require("matplotlib", extra="plots", feature="train vae (without --no-plots)")
    try:
        sizes = tuple(int(h) for h in hidden.split(",") if h.strip())
    except ValueError as error:
        raise typer.BadParameter(
            f"--hidden must be comma-separated ints like 200,200, got {hidden!r}."
        ) from error
    options = TrainOptions(
        out=str(out),
        data=data,
        objective=objective,
        k=k,
        gradient=gradient,
        estimator=estimator,
        steps=steps,
        minutes=minutes,
        batch_size=batch_size,
        lr=lr,
        lr_final=lr if lr_final is None else lr_final,
        hidden=sizes,
        latent=latent,
        activation=activation,
        likelihood=likelihood,
        binarize=binarize,
        seed=seed,
        log_every=log_every,
        eval_every=eval_every,
        eval_k=eval_k,
        eval_size=eval_size,
        checkpoint_minutes=checkpoint_minutes,
        checkpoint_every=checkpoint_every,
        progress=progress,
        threads=threads,
    )
    result = train(options, resume=resume)
    if result.status == "nonfinite":
        raise typer.Exit(1)
    if plots:
        for path in write_plots(out, options=replace(options)):
            typer.echo(f"wrote {path}")
    records = MetricsLog(out / METRICS_FILE).read()
    valid = [r["valid_bound"] for r in records if "valid_bound" in r]
    summary = f"step {result.step}, last loss {result.last_loss:.3f}"
    if valid:
        summary += f", validation IWAE-{options.eval_k} bound {valid[-1]:.3f}"
    typer.echo(f"{summary}; checkpoint {out / CHECKPOINT_FILE}")
    if result.status == "interrupted":
        typer.echo("interrupted: checkpoint saved; continue with the same command plus --resume.")
        raise typer.Exit(130)
