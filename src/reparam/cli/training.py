"""The command-line convention every ``reparam train`` command shares, written once.

:func:`train_command` registers a command whose function only parses its model's options and
returns a :class:`~reparam.training.engine.Task`; the decorator adds the shared options
(``--out``, ``--resume``, ``--overwrite``, ``--fast``, ``--device``, ``--precision``, ``--seed``, ``--steps``,
``--minutes``, logging and checkpoint cadence, ``--progress``, ``--plots``, ``--tensorboard``,
``--threads``) and runs the task with :func:`reparam.training.engine.fit`:

* every user error (a :class:`~reparam.training.errors.TrainingError`) is a usage error: one
  line on stderr, exit status 2, no traceback;
* Ctrl-C saves a checkpoint and exits 130 printing the exact command that resumes;
* the summary line says at which step each figure was measured.
"""

from __future__ import annotations

import inspect
import os
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import typer

from reparam._optional import MissingExtraError, require
from reparam.cli.app import train_app
from reparam.training.engine import RunResult, RunSettings, Task, fit
from reparam.training.errors import TrainingError


def usage_error(message: object) -> typer.Exit:
    """Print ``message`` as one usage-error line on stderr; returns the exit (status 2) to raise."""
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(2)


def parse_ints(text: str, option: str) -> tuple[int, ...]:
    """``"200,200"`` -> ``(200, 200)``, or a usage error naming ``option``."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise usage_error(f"{option} must be comma-separated positive ints like 200,200, got {text!r}.")
    return values


def options_from(cls: type[Any], values: dict[str, Any], **overrides: Any) -> Any:
    """The dataclass ``cls`` from the command's parsed ``values`` (its fields only) and
    ``overrides``; an invalid option is a usage error."""
    names = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in values.items() if k in names} | overrides)
    except TrainingError as error:
        raise usage_error(error) from None


@dataclass(frozen=True)
class Defaults:
    """A command's defaults for the shared options, and what ``--fast`` changes."""

    steps: int
    log_every: int
    eval_every: int
    checkpoint_every: int
    fast_steps: int


def _shared_parameters(defaults: Defaults) -> list[inspect.Parameter]:
    def option(name: str, annotation: object, default: object) -> inspect.Parameter:
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)

    return [
        option(
            "out",
            Path,
            typer.Option(..., "--out", help="Run folder: checkpoint.pt, metrics.jsonl/csv, plots."),
        ),
        option("resume", bool, typer.Option(False, "--resume", help="Continue the run in --out.")),
        option(
            "overwrite",
            bool,
            typer.Option(False, "--overwrite", help="Move a previous run in --out aside (OUT.old-<time>)."),
        ),
        option("fast", bool, typer.Option(False, "--fast", help="A tiny smoke run (seconds).")),
        option("device", str, typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N | mps")),
        option(
            "precision",
            str,
            typer.Option(
                "32", "--precision", help="32 | bf16-mixed | 16-mixed (torch.autocast; 16-mixed: GPU only)."
            ),
        ),
        option("seed", int, typer.Option(0, "--seed", help="Random seed.")),
        option("steps", int, typer.Option(defaults.steps, "--steps", help="Optimizer steps.")),
        option("minutes", float | None, typer.Option(None, "--minutes", help="Stop after this much time.")),
        option(
            "log_every", int, typer.Option(defaults.log_every, "--log-every", help="Metrics line every N.")
        ),
        option(
            "eval_every", int, typer.Option(defaults.eval_every, "--eval-every", help="Evaluate every N.")
        ),
        option(
            "checkpoint_every",
            int,
            typer.Option(defaults.checkpoint_every, "--checkpoint-every", help="Checkpoint every N steps."),
        ),
        option(
            "checkpoint_minutes",
            float,
            typer.Option(5.0, "--checkpoint-minutes", help="Checkpoint at least every N minutes."),
        ),
        option("progress", bool, typer.Option(True, "--progress/--no-progress", help="Progress bar.")),
        option("plots", bool, typer.Option(True, "--plots/--no-plots", help="Write PNG plots at the end.")),
        option(
            "tensorboard",
            bool,
            typer.Option(False, "--tensorboard", help="Also log to OUT/tensorboard (the tensorboard extra)."),
        ),
        option("threads", int, typer.Option(1, "--threads", help="torch CPU threads.")),
    ]


def fast_settings(settings: RunSettings, steps: int) -> RunSettings:
    """``--fast``: at most ``steps`` steps, four metrics lines and an evaluation at the end."""
    steps = min(settings.steps, steps)
    log_every, eval_every = min(settings.log_every, max(1, steps // 4)), min(settings.eval_every, steps)
    return replace(settings, steps=steps, log_every=log_every, eval_every=eval_every)


def resume_command() -> str:
    """The command line that resumes this run: the one typed, with ``--resume``."""
    args = [a for a in sys.argv[1:] if a not in ("--overwrite", "--resume")] + ["--resume"]
    if os.environ.get("WORLD_SIZE", "1") != "1":
        return shlex.join(["torchrun", "--nproc-per-node", os.environ["WORLD_SIZE"], "-m", "reparam", *args])
    if Path(sys.argv[0]).name in ("reparam", "__main__.py", "-c"):
        return shlex.join(["reparam", *args])
    return "the same command plus --resume"


def summary_line(result: RunResult) -> str:
    """One line: where the run stopped and the step each figure comes from."""
    parts = [f"{result.status} at step {result.step}"]
    if result.train_step is not None:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in result.train.items())
        parts.append(f"training ({shown}) logged at step {result.train_step}")
    if result.eval_step is not None:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in result.evaluation.items() if isinstance(v, int | float))
        parts.append(f"evaluation ({shown}) at step {result.eval_step}")
    parts.append(f"checkpoint {result.out / 'checkpoint.pt'} (step {result.checkpoint_step})")
    return "; ".join(parts)


def run_task(task: Callable[[], Task], settings: RunSettings, plots: bool) -> RunResult:
    """Build and fit the task with the shared error handling (see the module docstring)."""
    try:
        if plots:
            require("matplotlib", extra="plots", feature="plots (or pass --no-plots)")
        result = fit(task(), settings, echo=lambda text: typer.echo(text, err=True))
    except (TrainingError, MissingExtraError) as error:
        raise usage_error(error) from None
    except KeyboardInterrupt:  # a second Ctrl-C: stopped at once, the last checkpoint kept
        typer.echo(f"interrupted; the last checkpoint is kept. Resume with: {resume_command()}", err=True)
        raise typer.Exit(130) from None
    except OSError as error:  # full disk, read-only folder: the previous checkpoint is intact
        typer.echo(f"Error: cannot write the run in {settings.out}: {error}", err=True)
        raise typer.Exit(1) from None
    if not result.main:
        raise typer.Exit(130 if result.status == "interrupted" else 1 if result.status == "nonfinite" else 0)
    for path in result.files:
        typer.echo(f"wrote {path}")
    typer.echo(summary_line(result))
    if result.status == "nonfinite":
        typer.echo(f"Error: {result.message}", err=True)
        raise typer.Exit(1)
    if result.status == "interrupted":
        typer.echo(f"interrupted at step {result.step}, checkpoint saved; resume with: {resume_command()}")
        raise typer.Exit(130)
    return result


def train_command(name: str, defaults: Defaults) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``reparam train NAME``: the decorated function takes its own options plus
    ``settings`` (a :class:`RunSettings`, already adjusted for ``--fast``), ``fast`` and
    ``plots``, and returns a function that builds the task (so errors while building it are
    usage errors too), that and new settings, or, to run several tasks itself, ``None``."""

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        own = [
            p
            for p in inspect.signature(function, eval_str=True).parameters.values()
            if p.name not in ("settings", "fast", "plots")
        ]
        shared = _shared_parameters(defaults)
        shared_names = [p.name for p in shared]

        def command(**values: Any) -> None:
            common = {k: values.pop(k) for k in shared_names}
            fast, plots = common.pop("fast"), common.pop("plots")
            settings = RunSettings(**common)
            if fast and settings.steps > 0:
                settings = fast_settings(settings, defaults.fast_steps)
            try:
                build = function(settings=settings, fast=fast, plots=plots, **values)
            except TrainingError as error:
                raise usage_error(error) from None
            if isinstance(build, tuple):  # the command also changed the settings
                build, settings = build
            if build is not None:
                run_task(build, settings, plots)

        parameters = own + shared
        command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in parameters}
        command.__doc__ = function.__doc__
        command.__name__ = function.__name__
        train_app.command(name)(command)
        return function

    return register
