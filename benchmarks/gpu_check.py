"""The GPU check: device-sensitive behaviour on CUDA, then speed against torch's native ops.

Run: ``python benchmarks/gpu_check.py [--max-n 10000000] [--rounds 7]``. On a machine without
CUDA it runs the same cases on the CPU (sizes capped by ``--cpu-max-n``) and says so, so the
script itself is exercised by CI-like runs; the figures that matter come from a GPU.

Part 1, device checks (CUDA only): every distribution in ``rp.distributions`` and every
estimator runs ``rsample``/``expect`` + ``backward`` on the GPU with parameters on the GPU; the
outputs and gradients must stay on that device, be finite, and the step must do no host
synchronisation (``torch.cuda.set_sync_debug_mode("error")`` plus the instrumented counter of
``tests/sync_counter.py``). Each case prints ``ok`` or the error.

Part 2, speed (median of ``--rounds`` rounds, CUDA events or wall time, each round synchronised):

* ``rsample`` + ``backward`` of Gamma, Beta, Dirichlet, StudentT, VonMises against torch's own
  classes (VonMises: torch has no ``rsample``; its ``sample()`` is the baseline) at 10^2 .. 10^7
  samples per call: ratio ours / torch;
* one training step of a VAE (``rp.models.VAE``, ELBO) against the same network written in
  plain torch; one ``BayesLinear`` (flipout) step against ``nn.Linear``; one ``rp.DisARM()``
  step against a hand-written torch DisARM; with host syncs counted per step.

The numbers print as a markdown table for docs/studies/gpu.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.distributions import Bernoulli, Distribution, Normal

import reparam as rp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import itertools

from sync_counter import count_syncs

D = rp.distributions


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step: Callable[[], object], device: torch.device, rounds: int) -> float:
    """Median seconds of ``step`` over ``rounds`` rounds (after one warm-up call)."""
    step()
    _sync(device)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def syncs_of(step: Callable[[], object]) -> int:
    with count_syncs() as log:
        step()
    return log.count


# ------------------------------------------------------------------ part 1: device checks
def _distributions(device: torch.device) -> dict[str, Callable[[], Distribution]]:
    def p(*values: float) -> Tensor:
        return torch.tensor(values, device=device, requires_grad=True)

    return {
        "Gamma": lambda: D.Gamma(p(0.5, 3.0), p(1.0, 2.0)),
        "Chi2": lambda: D.Chi2(p(0.5, 4.0)),
        "InverseGamma": lambda: D.InverseGamma(p(3.0, 4.0), p(2.0, 1.0)),
        "StudentT": lambda: D.StudentT(p(4.0, 9.0), p(0.0, 1.0), p(1.0, 2.0)),
        "Beta": lambda: D.Beta(p(2.0, 0.5), p(3.0, 0.5)),
        "Dirichlet": lambda: D.Dirichlet(p(0.5, 1.0, 2.0)),
        "VonMises": lambda: D.VonMises(p(0.0, 1.0), p(2.0, 0.5)),
        "TruncatedNormal": lambda: D.TruncatedNormal(p(0.0, 1.0), p(1.0, 2.0), -1.0, 2.0),
        "Implicit(Normal)": lambda: D.Implicit(Normal(p(0.0, 1.0), p(1.0, 2.0))),
        "InverseCDF(Normal)": lambda: D.InverseCDF(Normal(p(0.0, 1.0), p(1.0, 2.0))),
    }


def _estimators() -> dict[str, tuple[Callable[[], object], str]]:
    return {
        "Pathwise": (rp.Pathwise, "normal"),
        "Pathwise(QMC)": (lambda: rp.Pathwise(sampling=rp.QMC()), "normal"),
        "ScoreFunction(LeaveOneOut)": (lambda: rp.ScoreFunction(rp.baselines.LeaveOneOut()), "normal"),
        "ScoreFunction(MovingAverage)": (lambda: rp.ScoreFunction(rp.baselines.MovingAverage()), "normal"),
        "MeasureValued": (rp.MeasureValued, "normal"),
        "ARM": (rp.ARM, "bernoulli"),
        "DisARM": (rp.DisARM, "bernoulli"),
        "REBAR": (rp.REBAR, "bernoulli"),
        "RELAX": (rp.RELAX, "bernoulli"),
        "VIMCO": (rp.VIMCO, "bernoulli"),
        "GumbelSoftmax": (lambda: rp.GumbelSoftmax(temperature=0.5), "bernoulli"),
        "IndeCateR": (rp.IndeCateR, "bernoulli"),
        "Exact": (rp.Exact, "bernoulli"),
    }


def device_checks(device: torch.device) -> list[tuple[str, str]]:
    results = []
    for name, make in _distributions(device).items():
        results.append((f"rsample {name}", _check(lambda make=make: _rsample_step(make()), device)))
    for name, (make_estimator, family) in _estimators().items():
        estimator = make_estimator()
        if isinstance(estimator, nn.Module):
            estimator.to(device)
        step = lambda e=estimator, f=family: _expect_step(e, f, device)  # noqa: E731
        results.append((f"expect {name}", _check(step, device)))
    return results


def _rsample_step(q: Distribution) -> list[Tensor]:
    z = q.rsample((64,))
    leaves = [t for t in vars(q).values() if isinstance(t, Tensor) and t.requires_grad and t.is_leaf]
    z.sum().backward()
    return [z, *[t.grad for t in leaves if t.grad is not None]]


def _expect_step(estimator: object, family: str, device: torch.device) -> list[Tensor]:
    theta = torch.zeros(8, device=device, requires_grad=True)
    q: Distribution = Normal(theta, 1.0) if family == "normal" else Bernoulli(logits=theta)
    value = rp.expect(lambda z: (z - 0.3) ** 2, q, estimator, num_samples=4)  # type: ignore[arg-type]
    value.sum().backward()
    assert theta.grad is not None
    return [value, theta.grad]


def _check(step: Callable[[], list[Tensor]], device: torch.device) -> str:
    try:
        with count_syncs(cuda_debug=True) as log:
            outputs = step()
            _sync(device)
    except Exception as error:  # reported, not raised: every case gets its line
        return f"error: {type(error).__name__}: {str(error).splitlines()[0][:160]}"
    wrong = [t for t in outputs if t.device.type != device.type]
    if wrong:
        return f"tensor on {wrong[0].device}, expected {device}"
    if not all(bool(torch.isfinite(t).all()) for t in outputs):
        return "non-finite output"
    return "ok" if log.count == 0 else f"{log.count} host syncs: {log.events[0]}"


# ------------------------------------------------------------------ part 2: speed
def _pairs(device: torch.device) -> dict[str, tuple[Callable[[Tensor], Distribution], ...]]:
    return {
        "Gamma(3)": (lambda a: D.Gamma(a, 1.0), lambda a: torch.distributions.Gamma(a, 1.0)),
        "Beta(2,3)": (lambda a: D.Beta(a, 3.0), lambda a: torch.distributions.Beta(a, 3.0)),
        "Dirichlet(5 x 1.5)": (
            lambda a: D.Dirichlet(a.expand(5)),
            lambda a: torch.distributions.Dirichlet(a.expand(5)),
        ),
        "StudentT(4)": (lambda a: D.StudentT(a + 1.0), lambda a: torch.distributions.StudentT(a + 1.0)),
        "VonMises(0,2)": (
            lambda a: D.VonMises(0.0, a - 1.0),
            lambda a: torch.distributions.VonMises(0.0, a - 1.0),
        ),
    }


def distribution_ratios(device: torch.device, sizes: list[int], rounds: int) -> list[list[str]]:
    rows = []
    for name, (ours, theirs) in _pairs(device).items():
        for n in sizes:
            value = {"Dirichlet(5 x 1.5)": 1.5, "Beta(2,3)": 2.0}.get(name, 3.0)
            a = torch.tensor(value, device=device, requires_grad=True)

            def step(make: Callable[[Tensor], Distribution] = ours, a: Tensor = a, n: int = n) -> None:
                make(a).rsample((n,)).sum().backward()

            def baseline(make: Callable[[Tensor], Distribution] = theirs, a: Tensor = a, n: int = n) -> None:
                q = make(a)
                if q.has_rsample:
                    q.rsample((n,)).sum().backward()
                else:
                    q.sample((n,)).sum()

            t_ours, t_torch = timed(step, device, rounds), timed(baseline, device, rounds)
            times = [f"{t_ours * 1e3:.3g}", f"{t_torch * 1e3:.3g}", f"{t_ours / t_torch:.2f}"]
            rows.append([name, f"{n:.0e}", *times, str(syncs_of(step))])
    return rows


def _vae_steps(device: torch.device) -> tuple[Callable[[], None], Callable[[], None]]:
    x = (torch.rand(128, 784, device=device) < 0.3).float()
    model = rp.models.VAE(784, 50, (200, 200)).to(device)

    def ours() -> None:  # forward + backward; the optimizer is the same for both and left out
        (-model.objective(x).mean()).backward()

    def mlp(*sizes: int) -> nn.Sequential:
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(sizes):
            layers += [nn.Linear(a, b), nn.Tanh()]
        return nn.Sequential(*layers[:-1]).to(device)

    enc, dec = mlp(784, 200, 200, 100), mlp(50, 200, 200, 784)

    def plain() -> None:
        mu, log_sigma = enc(x).chunk(2, -1)
        z = mu + log_sigma.exp() * torch.randn_like(mu)
        logits = dec(z)
        rec = -nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
        kl = 0.5 * (mu**2 + (2 * log_sigma).exp() - 2 * log_sigma - 1).sum(-1)
        (-(rec - kl).mean()).backward()

    return ours, plain


def _bayes_linear_steps(device: torch.device) -> tuple[Callable[[], None], Callable[[], None]]:
    x = torch.randn(256, 512, device=device)
    layer = rp.nn.BayesLinear(512, 512, estimator="flipout", device=device)
    linear = nn.Linear(512, 512, device=device)

    def ours() -> None:
        (layer(x).pow(2).mean() + layer.kl_divergence() / 1e4).backward()

    def plain() -> None:
        linear(x).pow(2).mean().backward()

    return ours, plain


def _disarm_steps(device: torch.device) -> tuple[Callable[[], None], Callable[[], None]]:
    logits = torch.zeros(100, 200, device=device, requires_grad=True)
    target = torch.full((200,), 0.499, device=device)

    def f(b: Tensor) -> Tensor:
        return ((b - target) ** 2).sum(-1)

    def ours() -> None:
        rp.expect(f, Bernoulli(logits=logits), rp.DisARM(), num_samples=1).sum().backward()

    def plain() -> None:
        # DisARM (Dong, Mnih & Tucker 2020), one antithetic pair, written out.
        with torch.no_grad():
            u = torch.rand_like(logits)
            b1 = (u < torch.sigmoid(logits)).float()
            b2 = (1 - u < torch.sigmoid(logits)).float()
            diff = (f(b1) - f(b2)).unsqueeze(-1)
            sign = (-1.0) ** b2
            weight = 0.5 * sign * (b1 != b2).float() * torch.sigmoid(sign * logits.abs())
            grad = diff * weight
        (0.5 * (f(b1) + f(b2)).sum() + (grad * logits).sum()).backward()

    return ours, plain


def step_ratios(device: torch.device, rounds: int) -> list[list[str]]:
    rows = []
    cases = (
        ("VAE step (784-200-200-50)", _vae_steps),
        ("BayesLinear flipout 512x512", _bayes_linear_steps),
        ("DisARM step (100 x 200 bits)", _disarm_steps),
    )
    for name, make in cases:
        ours, plain = make(device)
        t_ours, t_plain = timed(ours, device, rounds), timed(plain, device, rounds)
        times = [f"{t_ours * 1e3:.3g}", f"{t_plain * 1e3:.3g}", f"{t_ours / t_plain:.2f}"]
        rows.append([name, *times, str(syncs_of(ours))])
    return rows


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-n", type=int, default=10_000_000, help="largest samples per call on CUDA")
    parser.add_argument("--cpu-max-n", type=int, default=10_000, help="largest samples per call on the CPU")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    where = torch.cuda.get_device_name() if cuda else "CPU (no CUDA: device checks skipped)"
    print(f"# reparam GPU check on {where}, torch {torch.__version__}\n")
    failed = 0
    if cuda:
        print("## Device checks (outputs on the GPU, finite, 0 host syncs)\n")
        checks = device_checks(device)
        failed = sum(result != "ok" for _, result in checks)
        print(markdown(["case", "result"], [list(c) for c in checks]) + "\n")
    top = args.max_n if cuda else args.cpu_max_n
    sizes = [n for n in (10**k for k in range(2, 8)) if n <= top]
    print(f"## rsample + backward, ours vs torch ({device.type}, median of {args.rounds})\n")
    print(markdown(["distribution", "samples", "ours ms", "torch ms", "ratio", "host syncs"],
                   distribution_ratios(device, sizes, args.rounds)) + "\n")
    print(f"## Training steps, ours vs plain torch ({device.type})\n")
    print(markdown(["step", "ours ms", "plain ms", "ratio", "host syncs"], step_ratios(device, args.rounds)))
    if failed:
        print(f"\n{failed} device check(s) failed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
