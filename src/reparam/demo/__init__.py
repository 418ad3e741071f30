"""``reparam demo``: the reparameterization trick end to end on embedded data.

(a) six estimators on closed-form problems, (b) fitting a Gaussian to real data (the sigma
collapse of the naive objective, and the ELBO that recovers the exact posterior, with both
estimators), (c) Bernoulli latents where only the score function (with a baseline) works.

``import reparam.demo`` needs only torch; running the demo needs the ``cli`` extra (rich) for
its terminal output and the ``plots`` and ``data`` extras for its figures and data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from reparam._optional import require
from reparam.demo import bernoulli, estimator_tables, fitting_normal
from reparam.demo.report import Report

if TYPE_CHECKING:
    from rich.console import Console


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo's runs; ``fast()`` is for tests."""

    repeats: int = 2000
    fit_steps: int = 1000
    fit_variance_repeats: int = 200
    bernoulli_steps: int = 400

    @classmethod
    def fast(cls) -> DemoSettings:
        return cls(repeats=200, fit_steps=60, fit_variance_repeats=20, bernoulli_steps=30)


def run_demo(out: Path, settings: DemoSettings | None = None, console: Console | None = None) -> Path:
    """Run the three parts, print rich tables, and write PNGs plus ``report.md`` into ``out``."""
    settings = settings or DemoSettings()
    if console is None:
        console = require("rich.console", extra="cli", feature="reparam demo").Console()
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    # The demo's tensors are small: one intra-op thread is faster than two, and immune to the
    # spin-waiting that makes a second thread crawl on a busy machine.
    torch.set_num_threads(1)
    try:
        return _run(Path(out), settings, console)
    finally:
        torch.set_num_threads(threads)


def _run(out: Path, settings: DemoSettings, console: Console) -> Path:
    progress_module = require("rich.progress", extra="cli", feature="reparam demo")
    report = Report(Path(out), "reparam demo: Monte Carlo gradients, measured")
    start = time.perf_counter()
    with progress_module.Progress(console=console, transient=True) as progress:
        task = progress.add_task("demo", total=3)
        progress.update(task, description="(a) estimators on closed-form problems")
        estimator_tables.run(console, settings.repeats, report.folder, report)
        progress.advance(task)
        progress.update(task, description="(b) fitting a Gaussian: naive objective vs ELBO")
        fitting_normal.run(console, report.folder, report, settings.fit_steps, settings.fit_variance_repeats)
        progress.advance(task)
        progress.update(task, description="(c) Bernoulli latents")
        bernoulli.run(
            console, report.folder, report, max(settings.repeats // 4, 50), settings.bernoulli_steps
        )
        progress.advance(task)
    report.text(f"Ran in {time.perf_counter() - start:.1f} s with torch {torch.__version__}.")
    return report.write()
