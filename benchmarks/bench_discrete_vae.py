"""Discrete VAE at equal wall-clock: train the Bernoulli-latent VAE (ARM/DisARM papers' model) on
static binarized MNIST with each estimator for the same time budget and compare.

For each estimator: steps reached, train ELBO (mean over the last logged window of training
batches), the 100-sample importance-weighted bound on ``--eval-size`` test rows, and the
encoder-gradient variance (mean over encoder parameters of the variance of one gradient
estimate on a fixed batch of 50 test rows, ``--variance-repeats`` draws, at the trained model).
Expected ordering (Yin & Zhou 2019; Dong, Mnih & Tucker 2020): RLOO, ARM and DisARM well ahead
of plain REINFORCE; DisARM at least as good as ARM, with a lower gradient variance.

The budget is small on a shared 2-core machine (the papers train for 1200 epochs, i.e. ~1.2M
steps): the figures show the early ordering, not converged values. Each run uses
``reparam.cli.train_discrete_vae.train`` (checkpoints under ``--out``).

Run: python benchmarks/bench_discrete_vae.py [--minutes 1] [--arch linear]
     [--estimators reinforce,reinforce-loo,arm,disarm,rebar,relax,vimco,gumbel-st]
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import torch

from reparam.data import binarized_mnist
from reparam.estimators.base import evaluations
from reparam.estimators.registry import make_estimator
from reparam.models.discrete_vae import DiscreteVAE, DiscreteVAEConfig, encoder_gradient_variance
from reparam.training import CHECKPOINT_FILE, RunSettings, fit, load_checkpoint
from reparam.training.tasks.discrete_vae import DiscreteVAEOptions, DiscreteVAETask

DEFAULT = "reinforce,reinforce-loo,arm,disarm,rebar,relax,vimco,gumbel-st"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "binarized_mnist.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--minutes", type=float, default=1.0, help="Training time per estimator.")
    parser.add_argument("--estimators", default=DEFAULT)
    parser.add_argument("--arch", default="linear", choices=("linear", "nonlinear"))
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-size", type=int, default=1000)
    parser.add_argument("--eval-k", type=int, default=100)
    parser.add_argument("--variance-repeats", type=int, default=20)
    parser.add_argument("--out", default=None, help="Folder for the runs (default: a temporary one).")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="Smoke run: 0.05 min per estimator, reinforce and disarm, small evaluations.",
    )
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.eval_size, args.eval_k, args.variance_repeats = 0.05, 100, 10, 4
        if args.estimators == DEFAULT:
            args.estimators = "reinforce,disarm"
    torch.set_num_threads(args.threads)
    splits = binarized_mnist(args.data)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-discrete-vae-"))
    names = [n.strip() for n in args.estimators.split(",") if n.strip()]
    x_var = splits.x_test[:50]
    rows = []
    for name in names:
        options = DiscreteVAEOptions(
            data=args.data, estimator=name, arch=args.arch, lr=args.lr,
            eval_k=args.eval_k, eval_size=args.eval_size,
        )  # fmt: skip
        settings = RunSettings(
            out=out / name, steps=10**9, minutes=args.minutes, log_every=50, eval_every=10**9,
            progress=False, threads=args.threads, overwrite=True,
        )  # fmt: skip
        print(f"training {name} for {args.minutes} min ...", flush=True)
        task = DiscreteVAETask(options, splits=splits)
        result = fit(task, settings)
        n = task.num_samples
        saved = load_checkpoint(out / name / CHECKPOINT_FILE, kind="discrete-vae")["task"]
        config = DiscreteVAEConfig(arch=args.arch, data_dim=splits.x_train.shape[1])
        model = DiscreteVAE(config, splits.x_train.mean(0))
        model.load_state_dict(saved["model"])
        estimator = make_estimator(name)
        if isinstance(estimator, torch.nn.Module):
            estimator.load_state_dict(saved["estimator"])
        x_test = splits.x_test[: args.eval_size]
        torch.manual_seed(1)
        chunk = max(1, 20000 // args.eval_k)
        bound = float(model.importance_bound(x_test, k=args.eval_k, chunk=chunk).mean())
        train_elbo = result.train.get("train_elbo", math.nan)
        q = model.posterior(x_var)
        torch.manual_seed(1)
        variance = encoder_gradient_variance(model, x_var, estimator, n, args.variance_repeats)
        torch.manual_seed(0)
        initial_model = DiscreteVAE(config, splits.x_train.mean(0))
        torch.manual_seed(1)
        initial = encoder_gradient_variance(
            initial_model, x_var, make_estimator(name), n, args.variance_repeats
        )
        evals = evaluations(estimator, q, n)
        rows.append((name, n, evals, result.step, train_elbo, bound, variance, initial))

    print(
        f"\ndiscrete VAE ({args.arch}), {args.minutes} min of training per estimator, batch 50, "
        f"Adam lr {args.lr}, "
        f"torch {torch.__version__}, {args.threads} thread(s)\n"
    )
    print(
        f"| estimator | samples | evals of f / step | steps | train ELBO | test bound (IW-{args.eval_k}) "
        "| log10 enc. grad var (trained) | (at init) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, n, evals, steps, train_elbo, bound, variance, initial in rows:
        cells = [f"{math.log10(v):.2f}" if v > 0 else "-inf" for v in (variance, initial)]
        print(
            f"| {name} | {n} | {evals} | {steps} | {train_elbo:.2f} | {bound:.2f} | "
            f"{cells[0]} | {cells[1]} |"
        )
    print(
        f"\n* test bound: {args.eval_k}-sample importance-weighted bound on the first {args.eval_size} "
        "test rows "
        "(higher is better); ARM's paper reports -log p(x) 107.2 (ARM), 107.7 (REBAR), 164.0 (REINFORCE) "
        "after 1200 epochs for the linear model."
    )
    print(
        "* encoder-gradient variance: mean over encoder parameters, one estimate, fixed batch of 50 test "
        "rows; 'trained' at each estimator's own final model, 'at init' at the same initial model for all."
    )
    print(f"* runs and checkpoints in {out}")


if __name__ == "__main__":
    main()
