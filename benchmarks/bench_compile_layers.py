"""Compiled / eager training-step time for the Bayesian layers, the models and two estimators at
realistic sizes (CPU inductor, ``fullgraph=True``), under torch.compile's default settings and
under the recommended ``rp.compile`` (the same, with inductor's ``fallback_random``: ATen's
random-number generators inside the graph).

A step is the forward (a layer's output and ``kl_divergence()``, a model's objective, or
``rp.expect``) plus ``backward``. Each step is compiled once per setting (not timed), then eager
and compiled steps are timed in alternating rounds (eager, default, recommended, eager, ...; each
round ``--steps`` steps and at least 50 ms); the table gives the median step time of each and,
per setting, the median over rounds of compiled / eager (< 1: the compiled step is faster); the
cases above 1.0 are listed at the end.

Sizes: ``BayesLinear`` 512 -> 512 on a batch of 256; ``BayesConv2d`` 16 -> 32 channels, 3x3,
on 32 images of 16x16; the IWAE paper's 784-200-200-50 VAE on a batch of 128 (ELBO with
Pathwise, one sample; IWAE-DReG with k = 5); the linear 784-200 Bernoulli VAE of the DisARM
paper on a batch of 128 with DisARM and RLOO (2 samples); Bayesian logistic regression on 31
features, a batch of 32, 50 samples; ``rp.expect`` of a quadratic over 1,000 Gaussian variables
with 64 samples (Pathwise, Pathwise(Antithetic), Pathwise(Stratified); Pathwise also on 3
variables, the size of bench_compile.py's problems); and a one-operation function, whose ratio is
the fixed cost of calling a compiled function.

    .venv/bin/python benchmarks/bench_compile_layers.py --rounds 5 --steps 10
    .venv/bin/python benchmarks/bench_compile_layers.py --only BayesLinear --settings recommended
    .venv/bin/python benchmarks/bench_compile_layers.py --threads 2 --dynamic true   # symbolic sizes
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch._dynamo
from torch import Tensor, nn

import reparam as rp
from reparam.baselines import LeaveOneOut
from reparam.models import VAE, BayesianLogisticRegression
from reparam.models.discrete_vae import DiscreteVAE, DiscreteVAEConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "estimators"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_compile import compile_with, header, paired_rounds, parse_common, parse_dynamic, summary
from estimator_cases import forward

Case = Callable[[], tuple[Callable[[], Tensor], list[Tensor]]]  # () -> (step, leaves to clear)


def _layer(make: Callable[[], nn.Module], shape: tuple[int, ...]) -> Case:
    def build() -> tuple[Callable[[], Tensor], list[Tensor]]:
        layer, x = make(), torch.randn(shape)

        def step() -> Tensor:
            loss: Tensor = layer(x).square().mean() + 1e-3 * rp.nn.kl_divergence(layer)
            return loss

        return step, list(layer.parameters())

    return build


def _model(make: Callable[[], nn.Module], objective: Callable[[nn.Module], Tensor]) -> Case:
    def build() -> tuple[Callable[[], Tensor], list[Tensor]]:
        model = make()
        return (lambda: objective(model)), list(model.parameters())

    return build


def _estimator(make: Callable[[], object], variables: int, samples: int) -> Case:
    def build() -> tuple[Callable[[], Tensor], list[Tensor]]:
        loc, scale = torch.randn(variables), 0.5 + torch.rand(variables)
        leaves = [loc.requires_grad_(True), scale.requires_grad_(True)]
        run = forward(make(), "normal", samples)
        return (lambda: run(*leaves)), leaves

    return build


def _cases() -> dict[str, Case]:
    mnist = torch.rand(128, 784).round()
    blr_x, blr_y = torch.randn(32, 31), torch.randint(0, 2, (32,)).float()
    cases: dict[str, Case] = {}
    for mode in ("reparam", "local", "flipout"):
        cases[f"BayesLinear 512x512 b256 {mode}"] = _layer(
            lambda mode=mode: rp.nn.BayesLinear(512, 512, estimator=mode), (256, 512)  # type: ignore[misc]
        )
    for mode in ("reparam", "local", "flipout"):
        cases[f"BayesConv2d 16->32 3x3 b32 16x16 {mode}"] = _layer(
            lambda mode=mode: rp.nn.BayesConv2d(16, 32, 3, padding=1, estimator=mode),  # type: ignore[misc]
            (32, 16, 16, 16),
        )
    cases["VAE 784-200-200-50 b128 elbo"] = _model(VAE, lambda m: -m.objective(mnist, "elbo").mean())  # type: ignore[operator]
    cases["VAE 784-200-200-50 b128 iwae-dreg k5"] = _model(
        VAE, lambda m: -m.objective(mnist, "iwae", k=5, gradient="dreg").mean()  # type: ignore[operator]
    )
    linear = DiscreteVAEConfig(arch="linear")
    cases["DiscreteVAE linear b128 DisARM n2"] = _model(
        lambda: DiscreteVAE(linear), lambda m: m.loss(mnist, rp.DisARM(), 2)[0]  # type: ignore[operator]
    )
    cases["DiscreteVAE linear b128 RLOO n2"] = _model(
        lambda: DiscreteVAE(linear),
        lambda m: m.loss(mnist, rp.ScoreFunction(LeaveOneOut()), 2)[0],  # type: ignore[operator]
    )
    cases["LogisticRegression D31 b32 S50"] = _model(
        lambda: BayesianLogisticRegression(31),
        lambda m: -m.elbo(blr_x, blr_y, num_samples=50, data_scale=455 / 32),  # type: ignore[operator]
    )
    cases["Pathwise 1000 vars x 64"] = _estimator(rp.Pathwise, 1000, 64)
    cases["Pathwise(Antithetic) 1000 vars x 64"] = _estimator(
        lambda: rp.Pathwise(sampling=rp.Antithetic()), 1000, 64
    )
    cases["Pathwise(Stratified) 1000 vars x 64"] = _estimator(
        lambda: rp.Pathwise(sampling=rp.Stratified()), 1000, 64
    )
    cases["Pathwise 3 vars x 64 (toy)"] = _estimator(rp.Pathwise, 3, 64)
    cases["floor: (2 x).sum(), 3 numbers"] = _floor
    return cases


def _floor() -> tuple[Callable[[], Tensor], list[Tensor]]:
    """One multiplication and a sum: compiled / eager here is the fixed per-call cost of a
    compiled function (guards, AOT autograd's wrappers around the forward and the backward)."""
    x = torch.randn(3, requires_grad=True)
    return (lambda: (2.0 * x).sum()), [x]


def _time(step: Callable[[], Tensor], leaves: list[Tensor], steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        for leaf in leaves:
            leaf.grad = None
        step().backward()
    return (time.perf_counter() - start) / steps


def main() -> None:
    args = parse_common(__doc__, steps=10, only_help="substrings of case names")
    settings, dynamic = tuple(args.settings), parse_dynamic(args.dynamic)
    header("step", settings)
    ratios: dict[str, list[float]] = {}
    for name, build in _cases().items():
        if args.only and not any(part in name for part in args.only):
            continue
        torch._dynamo.reset()
        eager, leaves = build()
        variants = [build() for _ in settings]  # own module / parameters per variant
        steps = [step for step, _ in variants]
        owns = [own for _, own in variants]
        compiled = [compile_with(s, f, dynamic, args.backend) for s, f in zip(settings, steps, strict=True)]
        _time(eager, leaves, 2)  # warm-up
        for step, own in zip(compiled, owns, strict=True):
            _time(step, own, 2)  # the compilation
        ratios[name] = paired_rounds(
            name,
            lambda n, e=eager, x=leaves: _time(e, x, n),
            [lambda n, c=c, x=own: _time(c, x, n) for c, own in zip(compiled, owns, strict=True)],
            args.rounds,
            args.steps,
        )
    summary(settings, ratios)


if __name__ == "__main__":
    main()
