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

from reparam.cli.train_discrete_vae import CHECKPOINT, Options, num_samples_for, train
from reparam.data import binarized_mnist
from reparam.estimators.base import evaluations
from reparam.estimators.registry import make_estimator
from reparam.models.discrete_vae import DiscreteVAE, DiscreteVAEConfig, encoder_gradient_variance
from reparam.training import load_checkpoint

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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    splits = binarized_mnist(args.data)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-discrete-vae-"))
    names = [n.strip() for n in args.estimators.split(",") if n.strip()]
    x_var = splits.x_test[:50]
    rows = []
    for name in names:
        options = Options(
            out=str(out / name), data=args.data, estimator=name, arch=args.arch, lr=args.lr,
            steps=10**9, minutes=args.minutes, eval_every=10**9, eval_k=args.eval_k,
            eval_size=args.eval_size, checkpoint_every=0, progress=False, threads=args.threads,
        )  # fmt: skip
        print(f"training {name} for {args.minutes} min ...", flush=True)
        result = train(options, splits=splits)
        state = load_checkpoint(out / name / CHECKPOINT)
        model = DiscreteVAE(DiscreteVAEConfig(arch=args.arch), splits.x_train.mean(0))
        model.load_state_dict(state["model"])
        estimator = make_estimator(name)
        if isinstance(estimator, torch.nn.Module):
            estimator.load_state_dict(state["estimator"])
        n = num_samples_for(estimator, 1)
        q = model.posterior(x_var)
        torch.manual_seed(1)
        variance = encoder_gradient_variance(model, x_var, estimator, n, args.variance_repeats)
        torch.manual_seed(0)
        initial_model = DiscreteVAE(DiscreteVAEConfig(arch=args.arch), splits.x_train.mean(0))
        torch.manual_seed(1)
        initial = encoder_gradient_variance(
            initial_model, x_var, make_estimator(name), n, args.variance_repeats
        )
        rows.append((name, n, evaluations(estimator, q, n), result, variance, initial))

    print(
        f"\ndiscrete VAE ({args.arch}), {args.minutes} min of training per estimator, batch 50, "
        f"Adam lr {args.lr}, "
        f"torch {torch.__version__}, {args.threads} thread(s)\n"
    )
    print(
        "| estimator | samples | evals of f / step | steps | train ELBO | test bound (IW-100) "
        "| log10 enc. grad var (trained) | (at init) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, n, evals, result, variance, initial in rows:
        bound = "—" if result.test_bound is None else f"{result.test_bound:.2f}"
        cells = [f"{math.log10(v):.2f}" if v > 0 else "-inf" for v in (variance, initial)]
        print(
            f"| {name} | {n} | {evals} | {result.step} | {result.train_elbo:.2f} | {bound} | "
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
