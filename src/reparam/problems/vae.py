r"""``reparam compare --problem vae-snr``: encoder-gradient signal-to-noise through VAE training.

A small Gaussian VAE (64-64-8, tanh, Bernoulli likelihood) is trained on scikit-learn's binarized
8x8 digits with the pathwise ELBO. At several points of training, on one fixed minibatch, each
gradient estimator is drawn ``repeats`` times and, for every encoder parameter :math:`\phi_j`,

.. math::
    \mathrm{SNR}_j = |\hat{\mathbb E}[g_j]| \,/\, \hat\sigma[g_j],

reported as the mean over encoder parameters (Rainforth et al. 2018; Tucker et al. 2018, figure 1),
together with the mean per-coordinate variance. Estimators: the ELBO (analytic KL), IWAE-k with
k = 1, 5, 50 (standard gradient), STL (the sticking-the-landing ELBO), DReG-k (k = 5, 50), and the
score-function ELBO (leave-one-out baseline, 5 samples) next to the pathwise ELBO at 5 samples.

Expected, and printed as checks: IWAE's encoder SNR falls as k grows (as :math:`O(1/\sqrt k)`,
Rainforth et al. 2018); DReG's does not; the score function's variance is orders of magnitude
above the pathwise one at equal samples.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from reparam._optional import pyplot, require
from reparam.baselines import LeaveOneOut
from reparam.data import digits
from reparam.estimators.score_function import ScoreFunction
from reparam.models.vae import VAE
from reparam.problems.base import CompareRequest, register_runner


@dataclass(frozen=True)
class Variant:
    """One gradient estimator of a VAE objective."""

    name: str
    objective: str
    k: int
    gradient: str = "standard"
    score_function: bool = False

    def bound(self, model: VAE, x: Tensor) -> Tensor:
        estimator = ScoreFunction(baseline=LeaveOneOut()) if self.score_function else None
        return model.objective(x, self.objective, self.k, self.gradient, estimator)


VARIANTS: tuple[Variant, ...] = (
    Variant("elbo", "elbo", 1),
    Variant("iwae-1", "iwae", 1),
    Variant("iwae-5", "iwae", 5),
    Variant("iwae-50", "iwae", 50),
    Variant("stl", "elbo", 1, "stl"),
    Variant("dreg-5", "iwae", 5, "dreg"),
    Variant("dreg-50", "iwae", 50, "dreg"),
    Variant("pathwise-elbo-s5", "elbo", 5),
    Variant("reinforce-loo-elbo-s5", "elbo", 5, score_function=True),
)


@dataclass
class GradientStats:
    variant: str
    step: int
    snr: float  # mean over encoder parameters of |mean| / std
    variance: float  # mean over encoder parameters of the per-estimate variance
    seconds: float  # per estimate


def encoder_gradient_stats(model: VAE, x: Tensor, variant: Variant, repeats: int, step: int) -> GradientStats:
    """``repeats`` independent gradient estimates of the encoder; SNR and variance per coordinate."""
    params = list(model.encoder.parameters())
    draws = torch.empty(repeats, sum(p.numel() for p in params), dtype=torch.float64)
    started = time.perf_counter()
    for r in range(repeats):
        loss = -variant.bound(model, x).mean()
        grads = torch.autograd.grad(loss, params)
        draws[r] = torch.cat([g.reshape(-1) for g in grads]).double()
    seconds = (time.perf_counter() - started) / repeats
    mean, std = draws.mean(0), draws.std(0)
    live = std > 0
    snr = float((mean[live].abs() / std[live]).mean())
    return GradientStats(variant.name, step, snr, float(draws.var(0).mean()), seconds)


def run_study(
    steps: int = 3000,
    checkpoints: tuple[int, ...] = (0, 300, 1000, 3000),
    repeats: int = 200,
    batch_size: int = 32,
    seed: int = 0,
    variants: tuple[Variant, ...] = VARIANTS,
) -> list[GradientStats]:
    """Train with the pathwise ELBO for ``steps`` and measure every variant at ``checkpoints``."""
    torch.manual_seed(seed)
    splits = digits(binarize=True, seed=seed)
    x_train = splits.x_train
    model = VAE(input_dim=64, latent_dim=8, hidden=(64,))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    fixed = x_train[torch.randperm(len(x_train))[:batch_size]]
    results: list[GradientStats] = []
    for step in range(steps + 1):
        if step in checkpoints:
            for variant in variants:
                results.append(encoder_gradient_stats(model, fixed, variant, repeats, step))
        if step == steps:
            break
        x = x_train[torch.randint(len(x_train), (batch_size,))]
        loss = -model.elbo(x).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return results


def findings(results: list[GradientStats]) -> list[tuple[str, bool]]:
    """The qualitative claims of the study, each with whether it held at the last checkpoint."""
    last = max(r.step for r in results)
    at = {r.variant: r for r in results if r.step == last}
    claims: list[tuple[str, bool]] = []
    if {"iwae-1", "iwae-5", "iwae-50"} <= set(at):
        claims.append(
            (
                "IWAE encoder SNR falls with k (k=1 > 5 > 50)",
                at["iwae-1"].snr > at["iwae-5"].snr > at["iwae-50"].snr,
            )
        )
    if {"dreg-50", "iwae-50"} <= set(at):
        claims.append(("DReG-50 encoder SNR > IWAE-50 encoder SNR", at["dreg-50"].snr > at["iwae-50"].snr))
    if {"dreg-5", "dreg-50"} <= set(at):
        claims.append(
            (
                "DReG encoder SNR does not fall with k (50 vs 5, within 20%)",
                at["dreg-50"].snr > 0.8 * at["dreg-5"].snr,
            )
        )
    if {"stl", "elbo"} <= set(at):
        claims.append(("STL encoder SNR > ELBO encoder SNR", at["stl"].snr > at["elbo"].snr))
    if {"reinforce-loo-elbo-s5", "pathwise-elbo-s5"} <= set(at):
        ratio = at["reinforce-loo-elbo-s5"].variance / at["pathwise-elbo-s5"].variance
        claims.append((f"score-function variance / pathwise variance = {ratio:.0f}x (> 3x)", ratio > 3))
    return claims


def to_markdown(results: list[GradientStats]) -> str:
    steps = sorted({r.step for r in results})
    names = list(dict.fromkeys(r.variant for r in results))
    cell = {(r.variant, r.step): r for r in results}
    last = steps[-1]
    head = (
        "| estimator | " + " | ".join(f"SNR @ {s}" for s in steps) + f" | variance @ {last} | ms / estimate |"
    )
    lines = [head, "|" + "---|" * (len(steps) + 3)]
    for name in names:
        snrs = " | ".join(f"{cell[(name, s)].snr:.3f}" for s in steps)
        final = cell[(name, last)]
        lines.append(f"| {name} | {snrs} | {final.variance:.3g} | {1000 * final.seconds:.1f} |")
    return "\n".join(lines) + "\n"


def plot(results: list[GradientStats], path: Path) -> Path:
    plt = pyplot()

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = list(dict.fromkeys(r.variant for r in results))
    for name in names:
        rows = [r for r in results if r.variant == name]
        steps = [r.step for r in rows]
        if not name.endswith("-s5"):
            left.plot(steps, [r.snr for r in rows], "o-", label=name)
        else:
            right.plot(steps, [r.variance for r in rows], "o-", label=name)
    left.set(
        yscale="log", xlabel="training step (pathwise ELBO)", ylabel="encoder gradient SNR (mean over params)"
    )
    left.set_title("IWAE's encoder SNR falls with k; DReG keeps it high")
    right.set(yscale="log", xlabel="training step", ylabel="encoder gradient variance (mean over params)")
    right.set_title("score function vs pathwise, ELBO, 5 samples")
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


@register_runner("vae-snr")
def run(request: CompareRequest) -> None:
    """Encoder-gradient SNR through VAE training: ELBO, IWAE-k, STL, DReG; score function vs pathwise."""
    require("rich", extra="cli", feature="the vae-snr runner")
    from rich.console import Console
    from rich.table import Table

    options = dict(request.options)
    steps = int(options.pop("steps", 3000))  # type: ignore[call-overload]
    repeats = int(options.pop("repeats", min(request.repeats, 200)))  # type: ignore[call-overload]
    if options:
        raise ValueError(f"unknown vae-snr options {sorted(options)}; use -O steps=N -O repeats=R.")
    checkpoints = tuple(sorted({0, round(steps / 10), round(steps / 3), steps}))
    torch.set_num_threads(1)
    console = Console(width=max(Console().width, 120))
    with console.status(f"[bold]vae-snr[/]: {steps} training steps, {repeats} estimates per point ..."):
        results = run_study(steps, checkpoints, repeats, seed=0)
    table = Table(title=f"encoder-gradient SNR through training (digits VAE, {repeats} estimates per cell)")
    table.add_column("estimator")
    for s in checkpoints:
        table.add_column(f"SNR @ {s}", justify="right")
    table.add_column(f"variance @ {steps}", justify="right")
    cell = {(r.variant, r.step): r for r in results}
    for variant in VARIANTS:
        table.add_row(
            variant.name,
            *(f"{cell[(variant.name, s)].snr:.3f}" for s in checkpoints),
            f"{cell[(variant.name, steps)].variance:.3g}",
        )
    console.print(table)
    claims = findings(results)
    for text, held in claims:
        console.print(f"{'[green]holds[/]' if held else '[red]does not hold[/]'}: {text}")
    if request.out is not None:
        request.out.mkdir(parents=True, exist_ok=True)
        body = (
            to_markdown(results)
            + "\n"
            + "\n".join(f"* {'holds' if h else 'does NOT hold'}: {t}" for t, h in claims)
        )
        (request.out / "table.md").write_text(body + "\n")
        plot(results, request.out / "snr.png")
        console.print(f"wrote {request.out / 'table.md'} and {request.out / 'snr.png'}")
