"""``reparam evaluate vae CHECKPOINT --k 5000``: test log-likelihood by importance sampling.

:math:`\\log p(x) \\approx \\log \\frac1k \\sum_{i=1}^k p(x, z_i) / q(z_i \\mid x)`,
:math:`z_i \\sim q(z \\mid x)`, the estimator of Burda et al. (2016, section 5) with ``k = 5000``.
It is a stochastic lower bound (in expectation) on :math:`\\log p(x)`, so the reported NLL is an
upper bound up to Monte Carlo error. Rows are processed ``--batch`` at a time and samples
``--chunk`` at a time (running log-sum-exp): memory is ``batch * chunk * features`` floats
whatever ``k`` is.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch
import typer

from reparam.cli.app import evaluate_app
from reparam.cli.training import usage_error
from reparam.data import load
from reparam.models.vae import VAE
from reparam.training import load_checkpoint, training_progress
from reparam.training.errors import CheckpointError


def evaluate(
    model: VAE, x: torch.Tensor, k: int, chunk: int, batch: int, progress: bool = False
) -> torch.Tensor:
    """Per-row importance-sampling estimates of :math:`\\log p(x)` (see the module docstring)."""
    values = []
    with training_progress(disable=not progress) as bar:
        task = bar.add_task(f"log p(x), k={k}", total=len(x), status="")
        for start in range(0, len(x), batch):
            values.append(model.log_marginal(x[start : start + batch], k=k, chunk=chunk))
            nll = -float(torch.cat(values).mean())
            bar.update(task, completed=min(start + batch, len(x)), status=f"NLL {nll:8.3f}")
    return torch.cat(values)


def _rows(checkpoint: dict, data: str | None, split: str) -> torch.Tensor:
    options = checkpoint["options"]
    source = data or options["data"]
    if split not in ("train", "valid", "test"):
        raise usage_error(f"--split must be train, valid or test, got {split!r}.")
    try:
        return _load_rows(options, source, split)
    except (OSError, ValueError, KeyError) as error:
        where = "--data" if data else f"the run's data {source!r} (pass --data to point elsewhere)"
        raise usage_error(f"{where}: {str(error).strip(chr(39))}") from None


def _load_rows(options: dict[str, Any], source: str, split: str) -> torch.Tensor:
    if source == "digits":
        splits = load("digits", binarize=options["likelihood"] == "bernoulli", seed=options["seed"])
    elif Path(source).is_dir():
        # Grey levels for a Gaussian model; else the training binarization, drawn once
        # (fixed by the seed) for a model trained with dynamic binarization.
        mode = "none" if options["likelihood"] == "gaussian" else options["binarize"]
        splits = load(source, binarize=mode, seed=options["seed"])
    else:
        splits = load(source)
    rows: torch.Tensor = getattr(splits, f"x_{split}")
    return rows


@evaluate_app.command("vae")
def evaluate_vae(
    checkpoint: Path = typer.Argument(..., help="checkpoint.pt written by `reparam train vae`."),
    k: int = typer.Option(5000, "--k", help="Importance samples per row."),
    chunk: int = typer.Option(500, help="Samples processed at once (bounds memory)."),
    batch: int = typer.Option(100, help="Rows processed at once."),
    limit: int | None = typer.Option(
        None, help="Evaluate N rows drawn at random (fixed by --seed) from the split; sets are often sorted."
    ),
    split: str = typer.Option("test"),
    data: str | None = typer.Option(None, help="Override the data source stored in the checkpoint."),
    seed: int = typer.Option(0),
    threads: int = typer.Option(1, help="torch CPU threads."),
    out: Path | None = typer.Option(None, help="Also write the result as JSON here."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Test log-likelihood of a trained VAE by importance sampling (Burda et al. 2016)."""
    if k < 1 or chunk < 1 or batch < 1 or (limit is not None and limit < 1):
        given = f"{k}, {chunk}, {batch}, {limit}"
        raise usage_error(f"--k, --chunk, --batch and --limit must be >= 1, got {given}.")
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    try:
        state = load_checkpoint(checkpoint, kind="vae")
    except CheckpointError as error:
        raise usage_error(error) from None
    model = VAE.from_config(state["task"]["model_config"])
    model.load_state_dict(state["task"]["model"])
    model.eval()
    x = _rows(state, data, split)
    if limit is not None and limit < len(x):
        # A random subset, not the first rows: binarized MNIST's test split is sorted by digit.
        x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:limit]]
    started = time.perf_counter()
    values = evaluate(model, x, k, chunk, batch, progress)
    seconds = time.perf_counter() - started
    nll = -float(values.mean())
    se = float(values.std()) / math.sqrt(len(values)) if len(values) > 1 else math.nan
    result = {
        "checkpoint": str(checkpoint),
        "step": state["step"],
        "split": split,
        "rows": len(values),
        "k": k,
        "nll": nll,
        "nll_standard_error": se,
        "seconds": round(seconds, 1),
        "log_px": [round(v, 4) for v in values.tolist()],  # per row, for paired comparisons
    }
    typer.echo(
        f"{split} NLL (importance sampling, k={k}, {len(values)} rows): {nll:.3f} "
        f"+- {se:.3f} nats (step {state['step']}, {seconds:.0f} s)"
    )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
