"""One step of Bayesian logistic regression by black-box VI: reparam.vi against the same step
written by hand in torch and against Pyro's SVI (AutoNormal, Trace_ELBO with vectorized
particles), at equal samples (50) and batch (32) on the breast-cancer set.

* reparam: ``rp.vi.MeanFieldGaussian`` + ``rp.vi.elbo(..., prior=N(0, I), data_scale=N/B)``
  (pathwise, closed-form KL) and ``loss.backward()``.
* hand: ``w = loc + exp(log_scale) * eps``, BCE-with-logits, the closed-form KL written out
  (the leanest plain-torch step);
* hand-dists: the same with ``Independent(Normal(...)).rsample`` and ``kl_divergence`` (what a
  torch user writing it with ``torch.distributions`` gets; the same ops reparam runs).
* pyro: ``SVI(model, AutoNormal(model), Adam, Trace_ELBO(num_particles=50,
  vectorize_particles=True))`` with ``pyro.plate("data", N, subsample=rows)`` (which scales the
  likelihood by N/B); its KL term is Monte Carlo (Trace_ELBO), the expectation is the same.

All three use Adam (lr 0.01), start from loc = 0 and posterior scale 0.1 (Pyro's AutoNormal
default) and draw the same minibatch rows. Timing: paired rounds, each timing ``--steps``
steps of every side in a rotating order; the table gives the median per-step time of each side
and the median over rounds of the per-round ratios. Then each side trains ``--train-steps``
steps from the start and the final ELBO on the whole training split is evaluated the same way
for all (closed-form KL, 2000 samples), repeated over ``--seeds`` seeds: mean and standard error.

Pyro is not a dependency of reparam: this script pip-installs ``pyro-ppl`` into the running
interpreter's environment when it is missing (``--no-deps``: it must not touch torch).

Run: python benchmarks/bench_vi.py [--rounds 21 --steps 50 --train-steps 3000 --seeds 3]
"""

from __future__ import annotations

import argparse
import importlib
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Independent, Normal, kl_divergence

import reparam as rp
from reparam.data import breast_cancer
from reparam.models.logistic_regression import log_likelihood

Step = Callable[[Tensor], None]
INIT_SCALE = 0.1
LR = 0.01


def ensure_pyro() -> None:
    """Install pyro-ppl (and its two small pure-Python deps) into this environment if missing."""
    try:
        importlib.import_module("pyro")
        return
    except ImportError:
        pass
    print("pyro-ppl not found: installing it into this environment (benchmark only) ...", flush=True)
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--no-deps", "pyro-ppl", "pyro-api"], check=True)
    for module, package in (("opt_einsum", "opt_einsum"), ("tqdm", "tqdm")):
        try:
            importlib.import_module(module)
        except ImportError:
            subprocess.run([*pip, package], check=True)
    importlib.invalidate_caches()


class Data:
    def __init__(self, batch_size: int) -> None:
        splits = breast_cancer()
        self.x, self.y = splits.x_train, splits.y_train
        self.n, self.dim = self.x.shape
        self.batch_size = batch_size
        self.scale = self.n / batch_size


def reparam_side(data: Data, num_samples: int) -> tuple[Step, Callable[[], tuple[Tensor, Tensor]]]:
    family = rp.vi.MeanFieldGaussian(data.dim, init_scale=INIT_SCALE)
    prior = Independent(Normal(torch.zeros(data.dim), torch.ones(data.dim)), 1)
    optimizer = torch.optim.Adam(family.parameters(), lr=LR)
    estimator = rp.Pathwise()

    def step(rows: Tensor) -> None:
        x, y = data.x[rows], data.y[rows]
        loss = -rp.vi.elbo(
            lambda w: log_likelihood(w, x, y),
            family(),
            estimator,
            num_samples,
            prior=prior,
            data_scale=data.scale,
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step, lambda: (family.loc.detach().clone(), family.log_scale.detach().exp())


def hand_side(data: Data, num_samples: int) -> tuple[Step, Callable[[], tuple[Tensor, Tensor]]]:
    loc = torch.zeros(data.dim, requires_grad=True)
    log_scale = torch.full((data.dim,), math.log(INIT_SCALE), requires_grad=True)
    optimizer = torch.optim.Adam([loc, log_scale], lr=LR)

    def step(rows: Tensor) -> None:
        x, y = data.x[rows], data.y[rows]
        scale = log_scale.exp()
        w = loc + scale * torch.randn(num_samples, data.dim)
        logits = w @ x.T
        nll = F.binary_cross_entropy_with_logits(logits, y.float().expand_as(logits), reduction="none")
        kl = 0.5 * (loc**2 + scale**2 - 1.0 - 2.0 * log_scale).sum()
        loss = data.scale * nll.sum(-1).mean() + kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step, lambda: (loc.detach().clone(), log_scale.detach().exp())


def hand_distributions_side(data: Data, num_samples: int) -> tuple[Step, Callable[[], tuple[Tensor, Tensor]]]:
    loc = torch.zeros(data.dim, requires_grad=True)
    log_scale = torch.full((data.dim,), math.log(INIT_SCALE), requires_grad=True)
    prior = Independent(Normal(torch.zeros(data.dim), torch.ones(data.dim)), 1)
    optimizer = torch.optim.Adam([loc, log_scale], lr=LR)

    def step(rows: Tensor) -> None:
        x, y = data.x[rows], data.y[rows]
        q = Independent(Normal(loc, log_scale.exp()), 1)
        w = q.rsample((num_samples,))
        logits = w @ x.T
        nll = F.binary_cross_entropy_with_logits(logits, y.float().expand_as(logits), reduction="none")
        loss = data.scale * nll.sum(-1).mean() + kl_divergence(q, prior)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step, lambda: (loc.detach().clone(), log_scale.detach().exp())


def pyro_side(data: Data, num_samples: int) -> tuple[Step, Callable[[], tuple[Tensor, Tensor]]]:
    import pyro
    import pyro.distributions as dist
    from pyro.infer import SVI, Trace_ELBO
    from pyro.infer.autoguide import AutoNormal
    from pyro.infer.autoguide.initialization import init_to_mean

    pyro.clear_param_store()
    dim, n = data.dim, data.n

    def model(x: Tensor, y: Tensor, rows: Tensor) -> None:
        w = pyro.sample("w", dist.Normal(torch.zeros(dim), torch.ones(dim)).to_event(1))
        with pyro.plate("data", n, subsample=rows):
            logits = (w * x).sum(-1)  # (particles, batch) with vectorized particles
            pyro.sample("y", dist.Bernoulli(logits=logits), obs=y.float())

    guide = AutoNormal(model, init_loc_fn=init_to_mean, init_scale=INIT_SCALE)
    svi = SVI(
        model,
        guide,
        pyro.optim.Adam({"lr": LR}),
        Trace_ELBO(num_particles=num_samples, vectorize_particles=True, max_plate_nesting=1),
    )

    def step(rows: Tensor) -> None:
        svi.step(data.x[rows], data.y[rows], rows)

    def posterior() -> tuple[Tensor, Tensor]:
        store = pyro.get_param_store()
        return store["AutoNormal.locs.w"].detach().clone(), store["AutoNormal.scales.w"].detach().clone()

    return step, posterior


SIDES = {
    "reparam": reparam_side,
    "hand": hand_side,
    "hand-dists": hand_distributions_side,
    "pyro": pyro_side,
}


def full_elbo(data: Data, loc: Tensor, scale: Tensor, samples: int = 2000) -> float:
    """Whole-training-split ELBO of N(loc, diag(scale^2)): closed-form KL, MC likelihood."""
    with torch.no_grad():
        w = loc + scale * torch.randn(samples, data.dim)
        ll = log_likelihood(w, data.x, data.y).mean()
        kl = 0.5 * (loc**2 + scale**2 - 1.0 - 2.0 * scale.log()).sum()
        return float(ll - kl)


def time_steps(data: Data, rounds: int, steps: int, num_samples: int) -> dict[str, list[float]]:
    sides = {name: make(data, num_samples)[0] for name, make in SIDES.items()}
    generator = torch.Generator().manual_seed(0)
    for step in sides.values():  # warm-up (imports, allocator, Pyro's first trace)
        for _ in range(5):
            step(torch.randint(0, data.n, (data.batch_size,), generator=generator))
    names = list(sides)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        rows = [torch.randint(0, data.n, (data.batch_size,), generator=generator) for _ in range(steps)]
        for name in order:
            start = time.perf_counter()
            for batch in rows:
                sides[name](batch)
            times[name].append((time.perf_counter() - start) / steps)
    return times


def train_and_evaluate(data: Data, train_steps: int, seeds: int, num_samples: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {name: [] for name in SIDES}
    for seed in range(seeds):
        for name, make in SIDES.items():
            torch.manual_seed(seed)
            step, posterior = make(data, num_samples)
            generator = torch.Generator().manual_seed(seed)
            for _ in range(train_steps):
                step(torch.randint(0, data.n, (data.batch_size,), generator=generator))
            loc, scale = posterior()
            torch.manual_seed(10_000 + seed)
            results[name].append(full_elbo(data, loc, scale))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--train-steps", type=int, default=3000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ensure_pyro()
    import pyro

    data = Data(args.batch)
    print(
        f"Bayesian logistic regression, breast cancer ({data.n} x {data.dim}), batch {args.batch}, "
        f"{args.samples} samples, Adam; torch {torch.__version__}, pyro {pyro.__version__}, "
        f"{args.threads} thread(s); {args.rounds} paired rounds x {args.steps} steps"
    )
    times = time_steps(data, args.rounds, args.steps, args.samples)
    median = {name: statistics.median(t) for name, t in times.items()}

    def ratio(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))

    print()
    print("| side | median ms / step | reparam / side (median of paired ratios) | target |")
    print("|---|---|---|---|")
    print(f"| reparam.vi | {1000 * median['reparam']:.3f} | 1.000 | |")
    print(
        f"| hand-written torch, inline formulas | {1000 * median['hand']:.3f} | "
        f"{ratio('reparam', 'hand'):.3f} | <= 1.05 |"
    )
    print(
        f"| hand-written torch, torch.distributions | {1000 * median['hand-dists']:.3f} | "
        f"{ratio('reparam', 'hand-dists'):.3f} | <= 1.05 |"
    )
    pyro_ratio = ratio("reparam", "pyro")
    print(f"| pyro SVI (AutoNormal) | {1000 * median['pyro']:.3f} | {pyro_ratio:.3f} | <= 0.33 |")
    print(f"(hand / pyro: {ratio('hand', 'pyro'):.3f})")

    elbos = train_and_evaluate(data, args.train_steps, args.seeds, args.samples)
    print()
    print(f"Final ELBO on the training split after {args.train_steps} steps ({args.seeds} seeds):")
    print("| side | mean ELBO | standard error | per seed |")
    print("|---|---|---|---|")
    for name, values in elbos.items():
        mean = statistics.fmean(values)
        se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
        print(f"| {name} | {mean:.3f} | {se:.3f} | {', '.join(f'{v:.2f}' for v in values)} |")


if __name__ == "__main__":
    main()
