"""Gradient variance against batch size for the three estimators of a Bayesian MLP (the finding of
Wen et al. 2018, "Flipout", Fig. 1; and Kingma, Salimans & Welling 2015, section 2.3).

For a minibatch of ``B`` examples the gradient of the mean loss w.r.t. the weight means is an
average of ``B`` per-example gradients. With independent weight noise per example (local
reparameterization) or pseudo-independent noise (Flipout) these terms are (nearly) uncorrelated,
so the variance falls as ``1/B``. With one weight sample shared by the batch (``"reparam"``) the
terms share the noise ``eps``; writing ``g_n = g_n(eps)``,

    Var[(1/B) sum_n g_n] = (1/B) E_eps[Var_n g_n] + Var_eps[E_n g_n]   (law of total variance)

and the second term does not shrink with ``B``: the variance levels off.

The study trains a 64-100-10 Bayesian MLP on the digits briefly with the ELBO, freezes it, and for
each batch size draws ``repeats`` independent gradients of the mean NLL (a fresh minibatch drawn
uniformly with replacement and fresh weight noise per draw; the KL term is deterministic, so it
adds no variance) w.r.t. every ``weight_mu``. It reports the total variance (trace of the
covariance) per estimator, writes a log-log plot with a ``1/B`` reference, and a markdown table.

Run: ``python -m reparam.studies.flipout_variance --out runs/flipout_variance``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from reparam._optional import pyplot
from reparam.data import digits
from reparam.nn import ESTIMATORS, BayesLayer, BayesLinear, ELBOLoss, bayesian_modules
from reparam.nn.base import check_estimator

BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def _set_estimator(model: nn.Module, estimator: str) -> None:
    for layer in bayesian_modules(model):
        if isinstance(layer, BayesLayer):
            layer.estimator = check_estimator(estimator)


def trained_model(x: Tensor, y: Tensor, steps: int, hidden: int = 100, seed: int = 0) -> nn.Sequential:
    """A 64-hidden-10 Bayesian MLP fitted with the ELBO (Flipout, Adam, batch 64) for ``steps``."""
    torch.manual_seed(seed)
    model = nn.Sequential(BayesLinear(x.shape[1], hidden), nn.ReLU(), BayesLinear(hidden, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    criterion = ELBOLoss(len(x))
    for _ in range(steps):
        index = torch.randint(0, len(x), (64,))
        loss = criterion(model(x[index]), y[index], model)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def gradient_variance(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    estimator: str,
    batch_size: int,
    repeats: int,
    fixed_batch: Tensor | None = None,
    chunk: int = 50,
) -> float:
    """Trace of the covariance of the minibatch gradient of the mean NLL w.r.t. all ``weight_mu``
    (sum of per-coordinate sample variances over ``repeats`` independent draws). With
    ``fixed_batch`` (indices, at least ``batch_size``) its first ``batch_size`` are held fixed, so
    only the weight noise varies."""
    _set_estimator(model, estimator)
    params = {k: v.detach() for k, v in model.named_parameters()}
    names = [k for k in params if k.endswith("weight_mu")]

    def loss(p: dict[str, Tensor], index: Tensor) -> Tensor:
        return F.cross_entropy(functional_call(model, p, (x[index],)), y[index])

    def draw(index: Tensor) -> Tensor:
        g = grad(loss)(params, index)
        return torch.cat([g[k].flatten() for k in names])

    batched = vmap(draw, randomness="different")
    draws = []
    for start in range(0, repeats, chunk):
        count = min(chunk, repeats - start)
        if fixed_batch is None:
            index = torch.randint(0, len(x), (count, batch_size))
        else:
            index = fixed_batch[None, :batch_size].expand(count, -1)
        draws.append(batched(index))
    samples = torch.cat(draws)
    return float(samples.var(0).sum())


def step_seconds(
    model: nn.Module, x: Tensor, y: Tensor, estimator: str, batch_size: int, rounds: int = 30
) -> float:
    """Median wall time of one forward+backward of the mean NLL at this batch size."""
    _set_estimator(model, estimator)
    times = []
    for _ in range(rounds):
        index = torch.randint(0, len(x), (batch_size,))
        start = time.perf_counter()
        F.cross_entropy(model(x[index]), y[index]).backward()
        times.append(time.perf_counter() - start)
        model.zero_grad(set_to_none=True)
    return sorted(times)[len(times) // 2]


def plot(panels: dict[str, dict[str, list[float]]], batch_sizes: tuple[int, ...], path: Path) -> None:
    plt = pyplot()

    figure, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2))
    for axis, (title, results) in zip(axes, panels.items(), strict=True):
        for estimator, values in results.items():
            axis.loglog(batch_sizes, values, marker="o", label=estimator)
        reference = results["local"][0]
        axis.loglog(
            batch_sizes, [reference / b for b in batch_sizes], color="grey", linestyle=":", label="1 / B"
        )
        axis.set_xlabel("batch size B")
        axis.set_ylabel("total variance of d loss / d weight means")
        axis.set_title(title, fontsize=10)
        axis.legend()
    figure.suptitle("Gradient variance vs batch size (digits, 64-100-10 Bayesian MLP)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def run(
    out: Path,
    repeats: int = 200,
    train_steps: int = 600,
    batch_sizes: tuple[int, ...] = BATCH_SIZES,
    seed: int = 0,
) -> dict:
    """Measure, write ``variance.png``, ``variance.md`` and ``variance.json`` in ``out``; return
    the numbers."""
    out.mkdir(parents=True, exist_ok=True)
    splits = digits()
    x, y = splits.x_train, splits.y_train
    assert y is not None
    model = trained_model(x, y, train_steps, seed=seed)
    torch.manual_seed(seed + 1)
    # the fixed minibatches are nested prefixes of one permutation, the same for every estimator
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    fixed = order.repeat(math.ceil(max(batch_sizes) / len(x)))[: max(batch_sizes)]
    panels = {
        kind: {
            e: [gradient_variance(model, x, y, e, b, repeats, index) for b in batch_sizes] for e in ESTIMATORS
        }
        for kind, index in (
            ("minibatch and weight noise", None),
            ("weight noise only (minibatch fixed)", fixed),
        )
    }
    lines = [
        "Total variance (trace of the covariance) of the minibatch gradient of the mean NLL w.r.t. the "
        f"weight means, {repeats} draws per cell; 64-100-10 Bayesian MLP after {train_steps} Flipout ELBO "
        f"steps on digits. Last column: variance at B={batch_sizes[-1]} over B={batch_sizes[0]} "
        f"(a 1/B law gives {batch_sizes[0] / batch_sizes[-1]:.1e}).",
    ]
    for kind, results in panels.items():
        lines += [
            "",
            f"{kind}:",
            "",
            "| estimator | " + " | ".join(f"B={b}" for b in batch_sizes) + " | ratio |",
            "|---" * (len(batch_sizes) + 2) + "|",
        ]
        for estimator, values in results.items():
            cells = " | ".join(f"{v:.3g}" for v in values)
            lines.append(f"| {estimator} | {cells} | {values[-1] / values[0]:.1e} |")
    table = "\n".join(lines) + "\n"
    (out / "variance.md").write_text(table)
    (out / "variance.json").write_text(json.dumps({"batch_sizes": list(batch_sizes), "variance": panels}))
    plot(panels, batch_sizes, out / "variance.png")
    return {"batch_sizes": list(batch_sizes), "variance": panels, "table": table}


def slope(batch_sizes: list[int], values: list[float]) -> float:
    """Least-squares slope of log variance on log batch size (-1 for a 1/B law, 0 for a floor)."""
    lx = [math.log(b) for b in batch_sizes]
    ly = [math.log(v) for v in values]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sum((a - mx) ** 2 for a in lx)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/flipout_variance"))
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--train-steps", type=int, default=600)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.repeats < 2:
        parser.error("--repeats must be >= 2 (a variance needs two draws)")
    torch.set_num_threads(args.threads)
    result = run(args.out, args.repeats, args.train_steps)
    print(result["table"])
    tail = [b for b in result["batch_sizes"] if b >= 64]
    for kind, results in result["variance"].items():
        for estimator, values in results.items():
            fitted = slope(tail, values[-len(tail) :])
            print(f"{kind}, {estimator}: log-log slope for B >= 64: {fitted:.2f}")
    print(f"plot: {args.out / 'variance.png'}")


if __name__ == "__main__":
    main()
