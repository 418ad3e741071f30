"""One training step of the linear Bernoulli-latent VAE (784-200, batch 50): reparam vs hand-written
torch vs Storchastic, for DisARM (one antithetic pair) and RLOO (2 samples).

A step is: encoder, the estimator's samples, decoder on them, ELBO surrogate (analytic entropy),
backward, Adam update. Variants:

* ``ours``: ``DiscreteVAE.loss(x, rp.DisARM(), 1)`` / ``rp.ScoreFunction(LeaveOneOut())`` with 2
  samples; ``f`` (the decoder) is called ONCE on the stacked pair / both samples;
* ``torch 2-call``: the usual hand-written DisARM, decoding ``b`` and ``b~`` in two calls (for
  RLOO, two separately drawn samples decoded in two calls);
* ``torch 1-call``: the same by hand with the pair stacked into one decoder call;
* ``storchastic``: ``storch.method.DisARM`` / ``storch.method.ScoreFunction(baseline_factory=
  "batch_average")`` (RLOO) with ``n_samples`` 1 pair / 2 samples, ``storch.backward()``.

Timing: ``--rounds`` rounds; in each, every variant runs ``--steps`` steps in a rotating order;
the table shows the median per-step time and the median over rounds of the per-round ratio
ours / peer (paired rounds). Storchastic patches torch on import, so it is timed in a subprocess
against its own ``torch 2-call`` reference, and its ratio to ours goes through that reference.

Storchastic is not a project dependency: this script installs it into the running interpreter's
environment with ``pip install --no-deps storchastic entmax pyro-ppl pyro-api opt_einsum`` (its
declared dependencies would pull another torch) and says exactly why if that, or its step, fails.

Run: python benchmarks/bench_discrete_step.py [--rounds 15] [--steps 20] [--no-storch]
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

BATCH = 50
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "binarized_mnist.npz"


def batch() -> Tensor:
    if DATA.is_file():
        from reparam.data import binarized_mnist

        return binarized_mnist(DATA).x_train[:BATCH]
    return torch.bernoulli(torch.full((BATCH, 784), 0.13), generator=torch.Generator().manual_seed(0))


def make_model(x: Tensor):  # -> (DiscreteVAE, Adam)
    from reparam.models.discrete_vae import DiscreteVAE, DiscreteVAEConfig

    torch.manual_seed(0)
    model = DiscreteVAE(DiscreteVAEConfig("linear"), x.mean(0))
    return model, torch.optim.Adam(model.parameters(), lr=1e-4)


def cost(model, x: Tensor, b: Tensor) -> Tensor:
    """-log p(x, b) written directly in torch (the same computation as DiscreteVAE.cost)."""
    logits = model.decoder(b)
    nll = F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)
    theta = model.prior_logits
    return nll - (b * F.logsigmoid(theta) + (1 - b) * F.logsigmoid(-theta)).sum(-1)


def hand_disarm(model, opt, x: Tensor, one_call: bool) -> None:
    logits = model.encoder(x - model.input_mean)
    with torch.no_grad():
        u = torch.rand_like(logits)
        p = torch.sigmoid(logits)
        b, b_tilde = (u < p).float(), (1 - u < p).float()
    if one_call:
        both = cost(model, x, torch.stack([b, b_tilde]))
        f, f_tilde = both[0], both[1]
    else:
        f, f_tilde = cost(model, x, b), cost(model, x, b_tilde)
    grad = 0.5 * (f - f_tilde).detach().unsqueeze(-1) * (b - b_tilde) * torch.sigmoid(logits.detach().abs())
    entropy = torch.distributions.Bernoulli(logits=logits).entropy().sum(-1)
    loss = (0.5 * (f + f_tilde) + (grad * logits).sum(-1) - entropy).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def hand_rloo(model, opt, x: Tensor, one_call: bool) -> None:
    logits = model.encoder(x - model.input_mean)
    q = torch.distributions.Bernoulli(logits=logits)
    with torch.no_grad():
        b = q.sample((2,))
    f = cost(model, x, b) if one_call else torch.stack([cost(model, x, b[0]), cost(model, x, b[1])])
    log_q = q.log_prob(b).sum(-1)
    signal = (f - f.flip(0)).detach()  # (f_i - f_other) / (n - 1) with n = 2
    loss = (f.mean(0) + (signal * log_q).mean(0) - q.entropy().sum(-1)).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def ours(model, opt, x: Tensor, estimator, n: int) -> None:
    loss, _ = model.loss(x, estimator, n)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def time_variants(variants: dict[str, Callable[[], None]], rounds: int, steps: int) -> dict[str, list[float]]:
    """Per-round seconds per step for each variant, in a rotating order (paired rounds)."""
    names = list(variants)
    for name in names:  # warm-up
        for _ in range(3):
            variants[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            start = time.perf_counter()
            for _ in range(steps):
                variants[name]()
            times[name].append((time.perf_counter() - start) / steps)
    return times


def ensure_storchastic() -> str | None:
    """Import storch, installing it (no deps) if needed; ``None`` or the reason it failed."""
    try:
        importlib.import_module("storch")
        return None
    except ImportError:
        pass
    packages = ["storchastic", "entmax", "pyro-ppl", "pyro-api", "opt_einsum"]
    print(f"installing {' '.join(packages)} with --no-deps for the comparison ...", flush=True)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *packages],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return (
            f"pip install failed: {done.stderr.strip().splitlines()[-1] if done.stderr else done.returncode}"
        )
    importlib.invalidate_caches()
    try:
        importlib.import_module("storch")
    except Exception as error:  # an import-time incompatibility with this torch
        return f"import storch failed: {type(error).__name__}: {error}"
    return None


def storch_worker(rounds: int, steps: int) -> None:
    """Run in a subprocess: time Storchastic's steps against ``torch 2-call`` (paired rounds)."""
    import storch
    from storch.method import DisARM, ScoreFunction

    x = batch()
    results: dict[str, object] = {}
    for name, method_factory, hand in (
        ("disarm", lambda: DisARM("z", n_samples=1), lambda m, o: hand_disarm(m, o, x, False)),
        (
            "rloo",
            lambda: ScoreFunction("z", n_samples=2, baseline_factory="batch_average"),
            lambda m, o: hand_rloo(m, o, x, False),
        ),
    ):
        model, opt = make_model(x)
        model_h, opt_h = make_model(x)
        method = method_factory()

        def storch_step(model=model, opt=opt, method=method) -> None:
            opt.zero_grad(set_to_none=True)
            xs = storch.denote_independent(x, 0, "data")
            logits = model.encoder(xs - model.input_mean)
            q = torch.distributions.Bernoulli(logits=logits)
            z = method(q)
            z = z.float()  # storch's DisARM returns bool samples
            storch.add_cost(cost(model, xs, z), "nll")
            storch.add_cost(-q.entropy().sum(-1), "entropy")
            storch.backward()
            opt.step()

        try:
            times = time_variants(
                {"storchastic": storch_step, "torch 2-call": lambda h=hand, m=model_h, o=opt_h: h(m, o)},
                rounds,
                steps,
            )
        except Exception as error:
            results[name] = {"error": f"{type(error).__name__}: {error}"}
            continue
        results[name] = times
    print("STORCH_RESULT " + json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-storch", action="store_true")
    parser.add_argument("--storch-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.storch_worker:
        storch_worker(args.rounds, args.steps)
        return

    import reparam as rp
    from reparam.baselines import LeaveOneOut

    x = batch()
    rows = []
    for label, estimator, n, hand in (
        ("DisARM (1 pair)", rp.DisARM(), 1, hand_disarm),
        ("RLOO (2 samples)", rp.ScoreFunction(baseline=LeaveOneOut()), 2, hand_rloo),
    ):
        pairs = {name: make_model(x) for name in ("ours", "torch 2-call", "torch 1-call")}
        variants = {
            "ours": lambda p=pairs["ours"], e=estimator, n=n: ours(p[0], p[1], x, e, n),
            "torch 2-call": lambda p=pairs["torch 2-call"], h=hand: h(p[0], p[1], x, False),
            "torch 1-call": lambda p=pairs["torch 1-call"], h=hand: h(p[0], p[1], x, True),
        }
        times = time_variants(variants, args.rounds, args.steps)
        rows.append((label, times))

    storch_note, storch_times = "", {}
    if not args.no_storch:
        reason = ensure_storchastic()
        if reason is None:
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--storch-worker",
                    "--rounds",
                    str(args.rounds),
                    "--steps",
                    str(args.steps),
                    "--threads",
                    str(args.threads),
                ],
                capture_output=True,
                text=True,
            )
            line = [ln for ln in done.stdout.splitlines() if ln.startswith("STORCH_RESULT ")]
            if done.returncode != 0 or not line:
                tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                storch_note = "storchastic step failed: " + " | ".join(tail)
            else:
                storch_times = json.loads(line[0][len("STORCH_RESULT ") :])
        else:
            storch_note = f"storchastic not run: {reason}"

    med = statistics.median
    print(
        f"\none training step, linear discrete VAE 784-200, batch {BATCH}, torch {torch.__version__}, "
        f"{args.threads} thread(s), median of {args.rounds} rounds x {args.steps} steps\n"
    )
    print("| estimator | variant | ms / step | ours / variant (paired median) |")
    print("|---|---|---|---|")
    for (label, times), key in zip(rows, ("disarm", "rloo"), strict=True):
        for name, series in times.items():
            ratio = med(a / b for a, b in zip(times["ours"], series, strict=True))
            print(f"| {label} | {name} | {1000 * med(series):.2f} | {ratio:.3f} |")
        entry = storch_times.get(key)
        if isinstance(entry, dict) and "error" in entry:
            print(f"| {label} | storchastic | — | failed: {entry['error']} |")
        elif isinstance(entry, dict):
            s, h = entry["storchastic"], entry["torch 2-call"]
            storch_over_hand = med(a / b for a, b in zip(s, h, strict=True))
            ours_over_hand = med(a / b for a, b in zip(times["ours"], times["torch 2-call"], strict=True))
            print(
                f"| {label} | storchastic (subprocess) | {1000 * med(s):.2f} | "
                f"{ours_over_hand / storch_over_hand:.3f} "
                f"(via torch 2-call: storch/torch = {storch_over_hand:.2f}) |"
            )
    if storch_note:
        print(f"\n* {storch_note}")
    print(
        "\n* ours evaluates the decoder once on the stacked pair / samples; "
        "target ours <= 1.05x hand-written torch."
    )


if __name__ == "__main__":
    main()
