"""The one training engine behind every ``reparam train`` command.

:func:`fit` runs a :class:`Task` (a model's small definition: build, loss of one step,
evaluation, state, plots) under :class:`RunSettings`, and does everything else once: the run
folder (refuse / ``--overwrite`` moves aside / ``--resume``), the loop with its step and time
budget, logging (``metrics.jsonl``, ``metrics.csv``, optional TensorBoard) with metrics averaged
over the log window and across processes, evaluation cadence, verified checkpoints on a step and
time cadence, bit-for-bit resume, Ctrl-C, non-finite guards, progress, and data-parallel
training under ``torchrun`` (``torch.distributed`` DDP; rank 0 writes; each rank takes its
slice of every batch, :meth:`Context.shard`).

Example (a tiny VAE on toy bits; ``reparam train vae`` does the same with real data):
    >>> import tempfile
    >>> from reparam.data import Splits
    >>> from reparam.training.tasks.vae import VAEOptions, VAETask
    >>> x = (torch.rand(64, 16) < 0.5).float()
    >>> task = VAETask(VAEOptions(batch_size=16, hidden=(32,), latent=4, eval_k=2, eval_size=16),
    ...                splits=Splits("toy", x, x[:16], x[:16]))
    >>> out = Path(tempfile.mkdtemp()) / "run"
    >>> result = fit(task, RunSettings(out=out, steps=5, progress=False))
    >>> result.status, result.step
    ('done', 5)
    >>> sorted(p.name for p in out.iterdir())
    ['checkpoint.pt', 'metrics.csv', 'metrics.jsonl']
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from reparam._optional import require
from reparam.training.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from reparam.training.devices import resolve_device
from reparam.training.distributed import World, join_world, local_rank
from reparam.training.errors import OptionsError
from reparam.training.guards import GracefulInterrupt, NonFiniteLossError, check_finite
from reparam.training.metrics import CSV_FILE, METRICS_FILE, MetricsLog, TensorBoardLog, write_csv
from reparam.training.precision import Precision, check_precision
from reparam.training.progress import training_progress
from reparam.training.rng import rng_state, seed_everything, set_rng_state
from reparam.training.runs import prepare_run_folder
from reparam.training.state import load_object_state, object_state

# Settings that never change the numbers: they may differ between a run and its resumption.
RESUMABLE = (
    "steps",
    "minutes",
    "progress",
    "checkpoint_every",
    "checkpoint_minutes",
    "threads",
    "tensorboard",
)


@dataclass(frozen=True)
class RunSettings:
    """How to run a task (the options every ``reparam train`` command shares)."""

    out: Path
    steps: int
    resume: bool = False
    overwrite: bool = False
    minutes: float | None = None
    log_every: int = 100
    eval_every: int = 1000
    checkpoint_every: int = 0  # steps; 0: time cadence only
    checkpoint_minutes: float = 5.0
    progress: bool = True
    device: str = "auto"
    threads: int = 1
    seed: int = 0
    tensorboard: bool = False
    precision: str = "32"  # 32 | bf16-mixed | 16-mixed (reparam.training.precision)

    def validate(self) -> None:
        check_precision(self.precision)
        for name in ("steps", "log_every", "eval_every"):
            if getattr(self, name) < 1:
                raise OptionsError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}.")
        if self.checkpoint_every < 0 or not self.checkpoint_minutes > 0:
            raise OptionsError("--checkpoint-every must be >= 0 and --checkpoint-minutes > 0.")
        if self.minutes is not None and not self.minutes > 0:
            raise OptionsError(f"--minutes must be > 0, got {self.minutes}.")
        if self.threads < 1:
            raise OptionsError(f"--threads must be >= 1, got {self.threads}.")


@dataclass(frozen=True)
class Context:
    """What a task's :meth:`Task.setup` gets: the device, this process's place, the seed."""

    device: torch.device
    world: World
    seed: int
    steps: int  # the run's planned steps (learning-rate schedules span them)
    precision: Precision = field(default_factory=Precision)

    def shard(self, rows: Tensor) -> Tensor:
        """This rank's slice of a batch's row indices (all of them in one process)."""
        return rows[self.world.rank :: self.world.size] if self.world.size > 1 else rows


@dataclass
class RunResult:
    """Where a run stopped, what it reached and at which step each figure was measured."""

    step: int
    status: str  # "done", "time", "interrupted", "nonfinite", or a task's own stop ("solved")
    out: Path
    train: dict[str, float] = field(default_factory=dict)  # last logged training means ...
    train_step: int | None = None  # ... measured over the log window ending at this step
    evaluation: dict[str, float] = field(default_factory=dict)
    eval_step: int | None = None
    checkpoint_step: int = 0
    seconds: float = 0.0
    message: str = ""
    moved_to: Path | None = None
    files: list[Path] = field(default_factory=list)
    main: bool = True  # rank 0 (the process that reports)


class Task:
    """A model's part of a training run. Subclasses set :attr:`kind`, implement :meth:`setup`,
    :meth:`loss`, :meth:`evaluate`, :meth:`state_dict` and :meth:`load_state_dict`, and may
    override :meth:`train_step` (a step the model takes itself), :meth:`learning_rate`,
    :meth:`stop_reason` and :meth:`finish` (plots, summaries)."""

    kind = "task"
    #: option names (besides the engine's RESUMABLE) that may change between a run and its resumption
    resumable: tuple[str, ...] = ()
    #: whether several processes may train it data-parallel (else one process only, with the reason)
    parallel: bool | str = True
    #: whether the task runs on the CPU only (``--device auto`` then picks the CPU)
    cpu_only = False
    #: whether some parameters may get no gradient in a step (DDP's find_unused_parameters)
    unused_parameters = False
    #: whether ``--precision bf16-mixed|16-mixed`` applies (else only 32, with the reason)
    mixed_precision: bool | str = True

    def __init__(self, options: Any) -> None:
        self.options = options
        self.optimizer: torch.optim.Optimizer | None = None
        self.precision = Precision()  # the engine sets the run's before setup

    def option_values(self) -> dict[str, Any]:
        """The options that define the run (saved in the checkpoint, compared on resume)."""
        if is_dataclass(self.options) and not isinstance(self.options, type):
            return asdict(self.options)
        return dict(self.options)

    def setup(self, context: Context) -> None:
        """Load and check the data, build the model and the optimizer on ``context.device``."""
        raise NotImplementedError

    def module(self) -> nn.Module:
        """A module holding every trained parameter (what DDP synchronises)."""
        raise NotImplementedError

    def loss(self, step: int) -> tuple[Tensor, dict[str, float | Tensor]]:
        """The loss of step ``step`` (0-based) and metrics to log (averaged over the window)."""
        raise NotImplementedError

    def learning_rate(self, step: int) -> float | None:
        """The learning rate of step ``step`` (``None``: leave the optimizer's)."""
        return None

    def train_step(self, step: int, model: nn.Module, world: World, device: torch.device) -> dict[str, float]:
        """One optimizer step; returns its metrics (averaged across ranks), ``"loss"`` checked
        finite before the parameters change. ``model`` is :meth:`module`, under DDP when parallel."""
        assert self.optimizer is not None
        rate = self.learning_rate(step)
        if rate is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = rate
        with self.precision.autocast():
            loss, metrics = model(step) if model is not self.module() else self.loss(step)
        names = ["loss", *metrics]
        values = world.mean([float(loss.detach()), *(float(v) for v in metrics.values())], device)
        check_finite(values[0], step + 1)
        self.optimizer.zero_grad(set_to_none=True)
        self.precision.backward(loss)
        self.precision.step(self.optimizer)
        return dict(zip(names, values, strict=True))

    def record(self, step: int) -> dict[str, float]:
        """Extra values for the metrics line of step ``step`` (e.g. the learning rate)."""
        return {}

    def evaluate(self) -> dict[str, float]:
        """Held-out metrics of the current model."""
        return {}

    #: attributes whose state the default :meth:`state_dict` saves (modules and optimizers by
    #: their ``state_dict``, objects with ``state()``/``load()`` by those, others by
    #: :func:`~reparam.training.state.object_state`)
    saved: tuple[str, ...] = ()

    def state_dict(self) -> dict[str, Any]:
        """The state of the :attr:`saved` attributes, as tensors and plain data."""
        state: dict[str, Any] = {}
        for name in self.saved:
            part = getattr(self, name)
            if hasattr(part, "state_dict"):
                state[name] = part.state_dict()
            else:
                state[name] = part.state() if hasattr(part, "state") else object_state(part)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        for name in self.saved:
            part = getattr(self, name)
            if hasattr(part, "load_state_dict"):
                part.load_state_dict(state[name])
            elif hasattr(part, "load"):
                part.load(state[name])
            else:
                load_object_state(part, state[name])

    def stop_reason(self) -> str | None:
        """A reason to stop before ``steps`` (e.g. ``"solved"``), checked after every step."""
        return None

    def status(self, metrics: dict[str, float]) -> str:
        """The progress bar's text for the latest step's metrics."""
        return f"loss {metrics.get('loss', math.nan):8.3f}"

    def finish(self, out: Path, result: RunResult) -> list[Path]:
        """After the run (rank 0): plots and summaries; returns the files written."""
        return []


class _StepModule(nn.Module):
    """The task's module with ``forward(step) = task.loss(step)``, for DDP's hooks."""

    def __init__(self, task: Task) -> None:
        super().__init__()
        self.inner = task.module()
        self.__dict__["task"] = task  # not a submodule

    def forward(self, step: int) -> tuple[Tensor, dict[str, float | Tensor]]:
        task: Task = self.__dict__["task"]
        return task.loss(step)


def _defining(task: Task, settings: RunSettings) -> dict[str, Any]:
    """The values that define a run's numbers: the task's options and the seed."""
    return {**task.option_values(), "seed": settings.seed}


def _check_options(task: Task, settings: RunSettings, saved: dict[str, Any]) -> None:
    current = _defining(task, settings)
    free = set(RESUMABLE) | set(task.resumable)

    def comparable(value: Any) -> Any:
        return list(value) if isinstance(value, tuple | list) else value

    changed = [
        f"--{k.replace('_', '-')} (run: {saved.get(k)!r}, now: {current[k]!r})"
        for k in current
        if k not in free and comparable(saved.get(k)) != comparable(current[k])
    ]
    if changed:
        raise OptionsError(
            f"--resume with different options: {'; '.join(changed)}; rerun with the run's options "
            f"(only {', '.join(sorted('--' + k.replace('_', '-') for k in free))} may change) or a new --out."
        )


def _params_finite(module: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in module.parameters())


def fit(
    task: Task,
    settings: RunSettings,
    stop: Callable[[int], bool] | None = None,
    echo: Callable[[str], None] | None = None,
) -> RunResult:
    """Run (or resume) ``task``; see the module docstring. ``stop(step)`` returning true ends the
    run as Ctrl-C does (checkpoint saved, status ``"interrupted"``); ``echo`` shows notes
    (resuming, notes about the data) on rank 0."""
    settings.validate()
    if settings.tensorboard:  # before anything is written: a refused run leaves no folder
        require("tensorboard", extra="tensorboard", feature="--tensorboard logs")
    device = resolve_device(
        "cpu" if task.cpu_only and settings.device == "auto" else settings.device, local_rank()
    )
    precision = Precision.resolve(settings.precision, device)
    if precision.mixed and task.mixed_precision is not True:
        raise OptionsError(f"{task.kind} trains in float32 only: {task.mixed_precision}; drop --precision.")
    world = join_world(device)
    if world.size > 1 and task.parallel is not True:
        raise OptionsError(
            f"{task.kind} trains in one process only: {task.parallel}; run it without torchrun."
        )
    say = echo if (echo is not None and world.main) else (lambda text: None)
    out = Path(settings.out)
    moved = prepare_run_folder(out, settings.resume, settings.overwrite) if world.main else None
    if moved is not None:
        say(f"moved the previous run in {out} aside to {moved}")
    checkpoint_path = out / CHECKPOINT_FILE
    torch.set_num_threads(settings.threads)
    seed_everything(settings.seed)
    context = Context(device, world, settings.seed, settings.steps, precision)
    task.precision = precision
    task.setup(context)
    module = task.module()
    model = world.wrap(_StepModule(task), device, task.unused_parameters) if world.size > 1 else module
    metrics = MetricsLog(out / METRICS_FILE)
    step, elapsed, window, checkpoint_step = 0, 0.0, [], 0
    result = RunResult(0, "done", out, moved_to=moved, main=world.main)
    if settings.resume:
        state = load_checkpoint(checkpoint_path, kind=task.kind)
        _check_options(task, settings, state["options"])
        task.load_state_dict(state["task"])
        step, elapsed, window = int(state["step"]), float(state["elapsed"]), list(state["window"])
        checkpoint_step = step
        result.evaluation, result.eval_step = dict(state["evaluation"]), state["eval_step"]
        result.train, result.train_step = dict(state["train"]), state["train_step"]
        if state["settings"].get("precision", "32") == settings.precision:
            precision.load_state_dict(state.get("precision", {}))
        if int(state.get("world_size", 1)) == world.size:
            set_rng_state(state["rng"][world.rank])
        else:
            seed_everything(settings.seed + 1_000_003 * world.rank + step)
            say(
                f"note: the run was trained on {state.get('world_size', 1)} process(es), now {world.size}: "
                "it continues, but not bit for bit as on the same number."
            )
        if world.main:
            metrics.truncate_after(step)
        say(f"resuming from step {step} ({checkpoint_path})")
    elif world.size > 1:
        seed_everything(settings.seed + 1_000_003 * world.rank)  # distinct noise on each rank

    def save() -> None:
        nonlocal checkpoint_step
        if not _params_finite(module):
            raise NonFiniteLossError(
                f"the parameters became non-finite by step {step}; training stopped. Lower the learning "
                "rate, or check the data and the model's scales"
            )
        rngs = world.gather(rng_state())
        if world.main:
            save_checkpoint(
                checkpoint_path,
                {
                    "kind": task.kind,
                    "options": _defining(task, settings),
                    "settings": {
                        k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()
                    },
                    "step": step,
                    "elapsed": elapsed,
                    "window": window,
                    "world_size": world.size,
                    "rng": rngs,
                    "evaluation": result.evaluation,
                    "eval_step": result.eval_step,
                    "train": result.train,
                    "train_step": result.train_step,
                    "task": task.state_dict(),
                    "precision": precision.state_dict(),
                },
            )
            write_csv(metrics.read(), out / CSV_FILE)
        checkpoint_step = step

    if not settings.resume:
        if world.main:
            metrics.path.unlink(missing_ok=True)
        save()
    board = (
        TensorBoardLog(out / "tensorboard", purge_step=step + 1)
        if settings.tensorboard and world.main
        else None
    )
    timed = settings.minutes is not None
    started, last_save = time.perf_counter() - elapsed, time.perf_counter()
    latest: dict[str, float] = {}
    try:
        with (
            GracefulInterrupt() as interrupt,
            training_progress(disable=not (settings.progress and world.main)) as bar,
        ):
            total = math.ceil(60 * settings.minutes) if settings.minutes is not None else settings.steps
            bar_task = bar.add_task(
                f"train {task.kind}" + (" (seconds)" if timed else ""),
                total=total,
                completed=min(int(elapsed), total) if timed else step,
                status="",
            )
            while step < settings.steps:
                now = time.perf_counter()
                out_of_time = timed and now - started >= 60 * settings.minutes  # type: ignore[operator]
                interrupted = interrupt.requested or (stop is not None and stop(step))
                save_due = now - last_save >= 60 * settings.checkpoint_minutes
                interrupted, out_of_time, save_due = world.any([interrupted, out_of_time, save_due], device)
                if interrupted or out_of_time:
                    result.status = "interrupted" if interrupted else "time"
                    break
                latest = task.train_step(step, model, world, device)
                step += 1
                window.append(latest)
                if step % settings.log_every == 0 or step == settings.steps:
                    record: dict[str, Any] = {"step": step}
                    record.update({k: sum(w[k] for w in window) / len(window) for k in window[0]})
                    record.update(task.record(step))
                    result.train, result.train_step = {k: v for k, v in record.items() if k != "step"}, step
                    window = []
                    if step % settings.eval_every == 0 or step == settings.steps:
                        evaluation = task.evaluate()
                        averaged = world.mean(list(evaluation.values()), device)
                        result.evaluation = dict(zip(evaluation, averaged, strict=True))
                        result.eval_step = step
                        record.update(result.evaluation)
                    record["seconds"] = round(time.perf_counter() - started, 3)
                    if world.main:
                        metrics.write(record)
                        if board is not None:
                            board.write(record)
                reason = task.stop_reason()
                shown = int(time.perf_counter() - started) if timed else step
                bar.update(bar_task, completed=min(shown, total), status=f"step {step} {task.status(latest)}")
                due = settings.checkpoint_every and step % settings.checkpoint_every == 0
                if due or save_due:
                    elapsed = time.perf_counter() - started
                    save()
                    last_save = time.perf_counter()
                if reason is not None:
                    result.status = reason
                    break
            if timed:
                bar.update(bar_task, completed=total)
    except NonFiniteLossError as error:
        result.step, result.status = step, "nonfinite"
        result.message = (
            f"{error}; the last good checkpoint (step {checkpoint_step}) is kept: {checkpoint_path}"
        )
        result.checkpoint_step, result.seconds = checkpoint_step, time.perf_counter() - started
        return result
    finally:
        if board is not None:
            board.close()
    elapsed = time.perf_counter() - started
    save()
    result.step, result.checkpoint_step, result.seconds = step, checkpoint_step, elapsed
    if world.main:
        result.files = task.finish(out, result)
    return result
