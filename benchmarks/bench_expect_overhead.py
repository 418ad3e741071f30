"""Training step with rp.expect vs the same step written by hand in torch (target ratio <= 1.05).

Two steps, each timed in paired rounds (hand and rp.expect alternate, order flipped every
round; each round times `--steps` optimizer steps of each); the table shows median per-step
times and the median of the per-round ratios rp.expect / hand:

* VAE: 784-200-50 Gaussian encoder, 50-200-784 Bernoulli decoder, batch 100, one pathwise
  sample, analytic KL, Adam.
* Bayesian logistic regression: mean-field Normal over 31 weights, batch 32, 50 samples,
  likelihood scaled to the dataset size, analytic KL, Adam; pathwise and score function
  (plain REINFORCE: surrogate f.detach() * log q by hand vs rp.ScoreFunction()).

The rp.expect versions build a torch.distributions.Normal(loc, scale) each step, as a user
would; the hand versions use the same formulas inline. Run: python benchmarks/bench_expect_overhead.py
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.distributions import Normal
from torch.nn.functional import binary_cross_entropy_with_logits as bce
from torch.utils._python_dispatch import TorchDispatchMode

import reparam as rp

Step = Callable[[], None]


# ---------------------------------------------------------------- VAE-sized step
class VAE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(784, 200), nn.Tanh(), nn.Linear(200, 100))
        self.decoder = nn.Sequential(nn.Linear(50, 200), nn.Tanh(), nn.Linear(200, 784))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loc, log_scale = self.encoder(x).chunk(2, dim=-1)
        return loc, log_scale.exp()


def kl_std_normal(loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return 0.5 * (loc**2 + scale**2 - 1.0).sum(-1) - scale.log().sum(-1)


def vae_steps(x: torch.Tensor) -> tuple[Step, Step]:
    model_hand = VAE()
    model_ours = copy.deepcopy(model_hand)
    opt_hand = torch.optim.Adam(model_hand.parameters(), 1e-3)
    opt_ours = torch.optim.Adam(model_ours.parameters(), 1e-3)

    def hand() -> None:
        loc, scale = model_hand.encode(x)
        z = loc + scale * torch.randn_like(scale)
        nll = bce(model_hand.decoder(z), x, reduction="none").sum(-1)
        loss = (nll + kl_std_normal(loc, scale)).mean()
        opt_hand.zero_grad()
        loss.backward()
        opt_hand.step()

    def ours() -> None:
        loc, scale = model_ours.encode(x)

        def nll(z: torch.Tensor) -> torch.Tensor:
            return bce(model_ours.decoder(z), x.expand(z.shape[0], *x.shape), reduction="none").sum(-1)

        expected = rp.expect(nll, Normal(loc, scale), rp.Pathwise(), num_samples=1)
        loss = (expected + kl_std_normal(loc, scale)).mean()
        opt_ours.zero_grad()
        loss.backward()
        opt_ours.step()

    return hand, ours


# ---------------------------------------------------------------- BLR-sized step
def blr_steps(estimator: str, dataset_size: int = 569) -> tuple[Step, Step, Step, Step]:
    """(inline torch, torch with the same torch.distributions calls, rp.expect, rp.expect with
    ``Normal(..., validate_args=False)``: no argument checks, like the inline version)."""
    dims, batch, samples = 31, 32, 50
    features = torch.randn(batch, dims)
    labels = (torch.rand(batch) < 0.5).float()
    scale_up = dataset_size / batch
    init = [torch.zeros(dims), torch.full((dims,), -2.0)]
    sides = [[p.clone().requires_grad_(True) for p in init] for _ in range(4)]
    optimizers = [torch.optim.Adam(params, 1e-2) for params in sides]
    chosen = rp.Pathwise() if estimator == "pathwise" else rp.ScoreFunction()

    def nll(w: torch.Tensor) -> torch.Tensor:  # (samples, dims) -> (samples,)
        logits = w @ features.T
        return scale_up * bce(logits, labels.expand_as(logits), reduction="none").sum(-1)

    def finish(side: int, loss: torch.Tensor) -> None:
        optimizers[side].zero_grad()
        loss.backward()
        optimizers[side].step()

    def inline() -> None:
        loc, rho = sides[0]
        scale = nn.functional.softplus(rho)
        if estimator == "pathwise":
            objective = nll(loc + scale * torch.randn(samples, dims)).mean()
        else:
            with torch.no_grad():
                w = loc + scale * torch.randn(samples, dims)
            log_q = (-0.5 * ((w - loc) / scale) ** 2 - scale.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
            costs = nll(w)
            objective = (costs + costs.detach() * (log_q - log_q.detach())).mean()
        finish(0, objective + kl_std_normal(loc, scale))

    def with_distributions() -> None:
        loc, rho = sides[1]
        scale = nn.functional.softplus(rho)
        q = Normal(loc, scale)
        if estimator == "pathwise":
            objective = nll(q.rsample((samples,))).mean()
        else:
            w = q.sample((samples,))
            log_q = q.log_prob(w).sum(-1)
            costs = nll(w)
            objective = (costs + costs.detach() * (log_q - log_q.detach())).mean()
        finish(1, objective + kl_std_normal(loc, scale))

    def ours() -> None:
        loc, rho = sides[2]
        scale = nn.functional.softplus(rho)
        objective = rp.expect(nll, Normal(loc, scale), chosen, num_samples=samples)
        finish(2, objective + kl_std_normal(loc, scale))

    def ours_unvalidated() -> None:
        loc, rho = sides[3]
        scale = nn.functional.softplus(rho)
        q = Normal(loc, scale, validate_args=False)
        objective = rp.expect(nll, q, chosen, num_samples=samples)
        finish(3, objective + kl_std_normal(loc, scale))

    return inline, with_distributions, ours, ours_unvalidated


# ---------------------------------------------------------------- timing
def per_step(step: Step, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def paired(
    sides: list[Step], rounds: int, steps: int, reference: int = -1
) -> tuple[list[float], list[float]]:
    """Median per-step time of each side, and median per-round ratios ``sides[reference]`` /
    each side. The order of the sides rotates every round."""
    for _ in range(3):  # warm-up
        for step in sides:
            step()
    times: list[list[float]] = [[] for _ in sides]
    ratios: list[list[float]] = [[] for _ in sides]
    for r in range(rounds):
        order = list(range(len(sides)))
        order = order[r % len(order) :] + order[: r % len(order)]
        measured = {i: per_step(sides[i], steps) for i in order}
        for i in range(len(sides)):
            times[i].append(measured[i])
            ratios[i].append(measured[reference % len(sides)] / measured[i])
    return [statistics.median(t) for t in times], [statistics.median(r) for r in ratios]


class OpCounter(TorchDispatchMode):
    """Counts the aten operators a step dispatches (forward, backward and optimizer)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(
        self, func: object, types: object, args: tuple = (), kwargs: dict | None = None
    ) -> object:
        self.count += 1
        return func(*args, **(kwargs or {}))


def aten_ops(step: Step) -> int:
    with OpCounter() as counter:
        step()
    return counter.count


def ms(x: float) -> str:
    return f"{x * 1e3:.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per round and side")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    x = (torch.rand(100, 784) < 0.3).float()
    print(
        f"torch {torch.__version__}, {args.threads} thread(s); {args.rounds} paired rounds; median per step"
    )
    print("hand = inline torch formulas; hand+dist = the same step calling torch.distributions")
    print("(q.rsample / q.sample + q.log_prob) as rp.expect does; ratios are medians of per-round ratios.\n")
    header = [
        "step",
        "hand",
        "hand+dist",
        "rp.expect",
        "rp/hand+dist",
        "rp/hand",
        "rp(no validation)/hand",
        "target <= 1.05",
    ]
    rows = []
    hand, ours = vae_steps(x)
    (t_hand, t_ours), (r_hand, _) = paired([hand, ours], args.rounds, max(1, args.steps // 4), reference=1)
    rows.append(
        [
            "VAE 784-200-50, batch 100, pathwise",
            ms(t_hand),
            "-",
            ms(t_ours),
            "-",
            f"{r_hand:.3f}",
            "-",
            "ok" if r_hand <= 1.05 else "missed",
        ]
    )
    for estimator in ("pathwise", "score function"):
        sides = blr_steps("pathwise" if estimator == "pathwise" else "score")
        (t_hand, t_dist, t_ours, _), (r_hand, r_dist, _, _) = paired(
            list(sides), args.rounds, args.steps, reference=2
        )
        _, (r_plain, _, _, _) = paired(list(sides), max(args.rounds // 2, 3), args.steps, reference=3)
        dist_ok, hand_ok, plain_ok = ("ok" if r <= 1.05 else "missed" for r in (r_dist, r_hand, r_plain))
        verdict = f"vs hand+dist {dist_ok}, vs hand {hand_ok}, unvalidated vs hand {plain_ok}"
        rows.append(
            [
                f"BLR 31 dims, batch 32, 50 samples, {estimator}",
                ms(t_hand),
                ms(t_dist),
                ms(t_ours),
                f"{r_dist:.3f}",
                f"{r_hand:.3f}",
                f"{r_plain:.3f}",
                verdict,
            ]
        )
    ops = []
    for estimator in ("pathwise", "score"):
        inline, dist, ours, _ = blr_steps(estimator)
        ops.append((estimator, [aten_ops(step) for step in (inline, dist, ours)]))
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))
    print("\naten operators dispatched per BLR step (machine-independent; forward + backward + Adam):")
    for estimator, (n_inline, n_dist, n_ours) in ops:
        print(f"  {estimator:<8} hand {n_inline}, hand+dist {n_dist}, rp.expect {n_ours}")


if __name__ == "__main__":
    main()
