"""Bayesian-network training step: reparam.nn Flipout vs bayesian-torch vs hand-written torch, and
local reparameterization's gradient variance per unit of wall-clock against Flipout's.

1. Speed. One training step (forward, KL, ELBO loss, backward, Adam update) of a 64-400-400-10
   Flipout MLP at batch 128, for
   * ``ours``: ``nn.Sequential`` of :class:`reparam.nn.BayesLinear` (``estimator="flipout"``) with
     ``ELBOLoss`` and ``kl_divergence``;
   * ``bayesian-torch``: the same network of ``bayesian_torch.layers.LinearFlipout`` (each layer
     returns ``(output, kl)``), same prior N(0, 1) and loss;
   * ``torch``: a minimal hand-written Flipout layer (softplus scale, one perturbation per batch,
     random signs, analytic KL) in plain torch.
   Each round times ``--steps`` steps of every implementation in a rotating order; the table
   shows the median per-step time over ``--rounds`` rounds and the median of the per-round
   ratios ours / peer. Target: ours <= 1.0x bayesian-torch.

2. Variance per unit of wall-clock. For the same network at batch 128 on the digits, the total
   variance (trace of the covariance) of the minibatch gradient w.r.t. the weight means under
   ``"local"`` and ``"flipout"`` (``--repeats`` draws, fresh minibatch and noise each), times the
   median step time of each: ``variance x seconds`` is the variance one would get per second of
   compute (lower is better); its ratio local / flipout says which estimator is more efficient.

bayesian-torch is not a project dependency: if missing it is installed into this interpreter's
environment with ``pip install --no-deps bayesian-torch`` (its declared dependencies would pull
torchvision).

``--clock cpu`` times with ``time.thread_time`` instead of the wall clock: on a machine whose cores
are shared with other jobs the wall time mostly measures waiting; with one intra-op thread the
thread's CPU time is what the wall time would be on an idle machine.

Run: python benchmarks/bench_bnn.py [--rounds 15] [--steps 10] [--threads 1] [--repeats 200] [--clock cpu]
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reparam.data import digits
from reparam.nn import BayesLinear, ELBOLoss, inverse_softplus, kl_divergence
from reparam.studies.flipout_variance import gradient_variance

SIZES = (64, 400, 400, 10)
DATASET_SIZE = 1257  # digits training split


def ensure_bayesian_torch() -> type[nn.Module]:
    try:
        module = importlib.import_module("bayesian_torch.layers")
    except ImportError:
        print("installing bayesian-torch (--no-deps) for the comparison ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "bayesian-torch"], check=True
        )
        importlib.invalidate_caches()
        module = importlib.import_module("bayesian_torch.layers")
    return module.LinearFlipout


# ------------------------------------------------------------------ the three implementations
def ours(estimator: str = "flipout") -> tuple[nn.Module, Callable[[Tensor, Tensor], Tensor]]:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(SIZES):
        layers += [BayesLinear(a, b, estimator=estimator, init_scale=0.05), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    criterion = ELBOLoss(DATASET_SIZE)
    return model, lambda x, y: criterion(model(x), y, kl_divergence(model))


class PeerMLP(nn.Module):
    def __init__(self, layer: type[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            layer(a, b, prior_mean=0.0, prior_variance=1.0, posterior_rho_init=inverse_softplus(0.05))
            for a, b in itertools.pairwise(SIZES)
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        kl = torch.zeros(())
        for i, layer in enumerate(self.layers):
            x, layer_kl = layer(x)
            kl = kl + layer_kl
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x, kl


def bayesian_torch_model(layer: type[nn.Module]) -> tuple[nn.Module, Callable[[Tensor, Tensor], Tensor]]:
    model = PeerMLP(layer)

    def loss(x: Tensor, y: Tensor) -> Tensor:
        out, kl = model(x)
        return F.cross_entropy(out, y) + kl / DATASET_SIZE

    return model, loss


class HandFlipout(nn.Module):
    """Minimal Flipout layer in plain torch (what one would write without a library)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        bound = n_in**-0.5
        self.w_mu = nn.Parameter(torch.empty(n_out, n_in).uniform_(-bound, bound))
        self.w_rho = nn.Parameter(torch.full((n_out, n_in), inverse_softplus(0.05)))
        self.b_mu = nn.Parameter(torch.empty(n_out).uniform_(-bound, bound))
        self.b_rho = nn.Parameter(torch.full((n_out,), inverse_softplus(0.05)))

    def forward(self, x: Tensor) -> Tensor:
        w_sigma, b_sigma = F.softplus(self.w_rho), F.softplus(self.b_rho)
        mean = F.linear(x, self.w_mu, self.b_mu)
        s = torch.randint_like(x, 0, 2) * 2 - 1
        r = torch.randint_like(mean, 0, 2) * 2 - 1
        delta = F.linear(x * s, w_sigma * torch.randn_like(w_sigma), b_sigma * torch.randn_like(b_sigma))
        return mean + delta * r

    def kl(self) -> Tensor:
        total = torch.zeros(())
        for mu, rho in ((self.w_mu, self.w_rho), (self.b_mu, self.b_rho)):
            sigma = F.softplus(rho)
            total = total + (-torch.log(sigma) + 0.5 * (sigma**2 + mu**2) - 0.5).sum()
        return total


def hand_model() -> tuple[nn.Module, Callable[[Tensor, Tensor], Tensor]]:
    layers = [HandFlipout(a, b) for a, b in itertools.pairwise(SIZES)]
    model = nn.ModuleList(layers)

    def loss(x: Tensor, y: Tensor) -> Tensor:
        h = x
        for i, layer in enumerate(layers):
            h = layer(h)
            if i < len(layers) - 1:
                h = F.relu(h)
        kl = sum((layer.kl() for layer in layers), torch.zeros(()))
        return F.cross_entropy(h, y) + kl / DATASET_SIZE

    return model, loss


# ------------------------------------------------------------------ timing
def make_step(model: nn.Module, loss: Callable[[Tensor, Tensor], Tensor]) -> Callable[[Tensor, Tensor], None]:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(x: Tensor, y: Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss(x, y).backward()
        optimizer.step()

    return step


def paired_rounds(
    steps: dict[str, Callable[[], None]], rounds: int, repeat: int, clock: Callable[[], float]
) -> dict[str, list[float]]:
    """Per-step seconds of each implementation in each round (order rotated every round)."""
    names = list(steps)
    for fn in steps.values():  # warm-up
        for _ in range(3):
            fn()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = clock()
            for _ in range(repeat):
                steps[name]()
            times[name].append((clock() - start) / repeat)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=10, help="steps per implementation per round")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=200, help="gradient draws for the variance")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: time.perf_counter; cpu: time.thread_time (the CPU time of this thread; with --threads 1 "
        "it is what the wall time would be on an idle machine, use it when the cores are shared)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    peer_layer = ensure_bayesian_torch()
    data = digits()
    x_all, y_all = data.x_train, data.y_train
    assert y_all is not None

    def batch() -> tuple[Tensor, Tensor]:
        index = torch.randint(0, len(x_all), (args.batch_size,))
        return x_all[index], y_all[index]

    implementations = {
        "ours (reparam.nn flipout)": ours("flipout"),
        "bayesian-torch LinearFlipout": bayesian_torch_model(peer_layer),
        "hand-written torch flipout": hand_model(),
        "ours (reparam.nn local)": ours("local"),
    }
    steps = {}
    for name, (model, loss) in implementations.items():
        step = make_step(model, loss)
        steps[name] = (lambda s: lambda: s(*batch()))(step)
    print(
        f"one training step, 64-400-400-10 MLP, batch {args.batch_size}, {args.threads} thread(s), "
        f"{args.rounds} paired rounds x {args.steps} steps, {args.clock} clock, torch {torch.__version__}\n"
    )
    clock = time.perf_counter if args.clock == "wall" else time.thread_time
    times = paired_rounds(steps, args.rounds, args.steps, clock)
    reference = times["ours (reparam.nn flipout)"]
    print("| implementation | median ms/step | ours-flipout / this (median of per-round ratios) |")
    print("|---|---|---|")
    for name, values in times.items():
        ratio = statistics.median(a / b for a, b in zip(reference, values, strict=True))
        print(f"| {name} | {1e3 * statistics.median(values):.3f} | {ratio:.3f}x |")
    peer_ratio = statistics.median(
        a / b for a, b in zip(reference, times["bayesian-torch LinearFlipout"], strict=True)
    )
    verdict = "meets" if peer_ratio <= 1.0 else "misses"
    print(f"\nours / bayesian-torch = {peer_ratio:.3f}x ({verdict} the <= 1.0x target)\n")

    # variance per unit of wall-clock: local vs flipout on the same parameters
    model, _ = implementations["ours (reparam.nn flipout)"]
    variance = {
        e: gradient_variance(model, x_all, y_all, e, args.batch_size, args.repeats)
        for e in ("local", "flipout")
    }
    seconds = {
        "local": statistics.median(times["ours (reparam.nn local)"]),
        "flipout": statistics.median(reference),
    }
    print(
        f"gradient variance w.r.t. the weight means at batch {args.batch_size} ({args.repeats} draws each):\n"
    )
    print("| estimator | total variance | ms/step | variance x seconds |")
    print("|---|---|---|---|")
    for e in ("local", "flipout"):
        print(f"| {e} | {variance[e]:.4g} | {1e3 * seconds[e]:.3f} | {variance[e] * seconds[e]:.4g} |")
    efficiency = (variance["local"] * seconds["local"]) / (variance["flipout"] * seconds["flipout"])
    better = "local" if efficiency < 1 else "flipout"
    print(
        f"\n(local variance x time) / (flipout variance x time) = {efficiency:.3f}: "
        f"{better} is more efficient"
    )


if __name__ == "__main__":
    main()
