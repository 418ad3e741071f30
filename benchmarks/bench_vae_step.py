"""A training step of reparam.models.VAE against the same VAE written by hand in plain torch.

Model: the IWAE paper's MNIST network, 784-200-200-50 tanh encoder (diagonal Gaussian q), mirror
decoder with Bernoulli logits, batch 100, Adam. Three objectives:

* ELBO, one pathwise sample, analytic KL (``model.objective(x, "elbo")``: rp.expect + Pathwise);
* IWAE, k = 5, standard gradient (``reparam.vi.iwae_bound``);
* IWAE, k = 5, DReG gradient (Tucker et al. 2018).

The hand versions are the pytorch-examples style: ``z = mu + sigma * eps``, BCE-with-logits,
the closed-form KL, ``logsumexp`` of inline log-weights, and for DReG the same one-pass recipe
(stop-gradient log q, squared normalised weights through a hook on z). Both sides start from
the same weights. Paired rounds: each round times ``--steps`` steps of each side, the order
alternating; the table shows median per-step times and the median of per-round ratios.

Run: python benchmarks/bench_vae_step.py [--rounds 21 --steps 10 --threads 1]
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reparam.models import VAE

Step = Callable[[], None]
LOG_2PI = math.log(2 * math.pi)


class HandVAE(nn.Module):
    """pytorch-examples style VAE with the same layers as ``reparam.models.VAE``."""

    def __init__(self, ours: VAE) -> None:
        super().__init__()
        self.encoder = copy.deepcopy(ours.encoder)
        self.decoder = copy.deepcopy(ours.decoder)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, raw = self.encoder(x).chunk(2, dim=-1)
        return mu, F.softplus(raw) + 1e-4

    def elbo_loss(self, x: Tensor) -> Tensor:
        mu, sigma = self.encode(x)
        z = mu + sigma * torch.randn_like(sigma)
        bce = F.binary_cross_entropy_with_logits(self.decoder(z), x, reduction="none").sum(-1)
        kl = 0.5 * (mu**2 + sigma**2 - 1.0 - 2.0 * sigma.log()).sum(-1)
        return (bce + kl).mean()

    def log_weights(self, x: Tensor, k: int, stop_q: bool) -> tuple[Tensor, Tensor]:
        mu, sigma = self.encode(x)
        eps = torch.randn(k, *mu.shape)
        z = mu + sigma * eps
        mu_q, sigma_q = (mu.detach(), sigma.detach()) if stop_q else (mu, sigma)
        log_q = (-0.5 * ((z - mu_q) / sigma_q) ** 2 - sigma_q.log() - 0.5 * LOG_2PI).sum(-1)
        log_prior = (-0.5 * z**2 - 0.5 * LOG_2PI).sum(-1)
        logits = self.decoder(z)
        log_lik = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)
        return log_lik + log_prior - log_q, z

    def iwae_loss(self, x: Tensor, k: int) -> Tensor:
        log_w, _ = self.log_weights(x, k, stop_q=False)
        return -(torch.logsumexp(log_w, 0) - math.log(k)).mean()

    def dreg_loss(self, x: Tensor, k: int) -> Tensor:
        log_w, z = self.log_weights(x, k, stop_q=True)
        w = torch.softmax(log_w.detach(), 0)
        z.register_hook(lambda grad: grad * w.unsqueeze(-1))
        return -(w * log_w).sum(0).mean()


def steps_for(objective: str, x: Tensor) -> tuple[Step, Step]:
    ours = VAE()
    hand = HandVAE(ours)
    opt_ours = torch.optim.Adam(ours.parameters(), 1e-3)
    opt_hand = torch.optim.Adam(hand.parameters(), 1e-3)
    kind, k, gradient = {
        "elbo": ("elbo", 1, "standard"),
        "iwae-5": ("iwae", 5, "standard"),
        "dreg-5": ("iwae", 5, "dreg"),
    }[objective]

    def hand_step() -> None:
        if kind == "elbo":
            loss = hand.elbo_loss(x)
        elif gradient == "standard":
            loss = hand.iwae_loss(x, k)
        else:
            loss = hand.dreg_loss(x, k)
        opt_hand.zero_grad()
        loss.backward()
        opt_hand.step()

    def ours_step() -> None:
        loss = -ours.objective(x, kind, k, gradient).mean()
        opt_ours.zero_grad()
        loss.backward()
        opt_ours.step()

    return hand_step, ours_step


def per_step(step: Step, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def paired(hand: Step, ours: Step, rounds: int, steps: int) -> tuple[float, float, float]:
    """Median per-step times (hand, ours) and the median of per-round ratios ours / hand."""
    for _ in range(3):
        hand()
        ours()
    t_hand, t_ours, ratios = [], [], []
    for r in range(rounds):
        if r % 2 == 0:
            a, b = per_step(hand, steps), per_step(ours, steps)
        else:
            b, a = per_step(ours, steps), per_step(hand, steps)
        t_hand.append(a)
        t_ours.append(b)
        ratios.append(b / a)
    return statistics.median(t_hand), statistics.median(t_ours), statistics.median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--steps", type=int, default=10, help="optimizer steps per round and side")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--objectives", default="elbo,iwae-5,dreg-5", help="comma-separated subset")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x = (torch.rand(100, 784) < 0.3).float()
    setup = f"{args.threads} thread(s), {args.rounds} paired rounds x {args.steps} steps"
    print(f"torch {torch.__version__}, {setup}")
    print("VAE 784-200-200-50 tanh, Bernoulli decoder, batch 100, Adam; median per step\n")
    print("| objective | hand torch | reparam | reparam / hand (median of rounds) | target <= 1.05 |")
    print("|---|---|---|---|---|")
    for objective in args.objectives.split(","):
        hand, ours = steps_for(objective, x)
        t_hand, t_ours, ratio = paired(hand, ours, args.rounds, args.steps)
        verdict = "ok" if ratio <= 1.05 else "missed"
        print(f"| {objective} | {t_hand * 1e3:.2f} ms | {t_ours * 1e3:.2f} ms | {ratio:.3f} | {verdict} |")


if __name__ == "__main__":
    main()
