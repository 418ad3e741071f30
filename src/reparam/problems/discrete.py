r"""The classic Bernoulli toy of the discrete-estimator papers, with closed-form variances.

:math:`b_i \sim \mathrm{Bernoulli}(\sigma(\phi_i))`, :math:`i = 1..D`, and
:math:`f(b) = \frac1D \sum_i (b_i - t)^2`. Because :math:`b_i^2 = b_i`,
:math:`f(b) = t^2 + c \sum_i b_i` with :math:`c = (1 - 2t)/D`, so

.. math::
    \partial_{\phi_i} \mathbb{E}[f] = c\, p_i (1 - p_i), \qquad p_i = \sigma(\phi_i),

(2.5e-6 per coordinate at :math:`\phi = 0`, :math:`D = 200`, :math:`t = 0.499`), and at a common
:math:`p` (all :math:`\phi_i` equal), with :math:`m = \min(p, 1 - p)` and :math:`g = c\,p(1-p)`,
the per-coordinate variance of ONE estimate is, in closed form (derivations in the comments of
:func:`closed_form_variances`):

* REINFORCE (1 sample, no baseline):
  :math:`\sum_{b_i} P(b_i)(b_i - p)^2 [(t^2 + c b_i + c(D-1)p)^2 + c^2 (D-1) p (1-p)] - g^2`;
* RLOO with 2 samples: :math:`\tfrac{c^2}{4}\, 2p(1-p)\,(1 + 2(D-1)p(1-p)) - g^2`
  (:math:`12.5 c^2` at :math:`p = 1/2`, :math:`D = 200`);
* ARM (one pair): :math:`c^2[\tfrac23(\tfrac18 - (\tfrac12 - m)^3) + (D-1)\tfrac{2m}{12}] - g^2`
  (:math:`(D/12 - 1/16)c^2` at :math:`p = 1/2`);
* DisARM (one pair): :math:`\tfrac{c^2}{4}(1-m)^2\, 2m\,(1 + 2m(D-1)) - g^2`
  (:math:`(D - 1)c^2/16` at :math:`p = 1/2`).

``reparam compare --problem bernoulli-toy`` prints these next to measured bias and variance for
every discrete estimator (D = 200, t = 0.499; D = 1, t = 0.45 and 0.499), and plots
optimisation runs on the RELAX paper's D = 1, t = 0.499 problem (Grathwohl et al. 2018, fig. 1):
the gradient there is only :math:`0.002\,p(1-p)`, so an estimator finds the optimum
:math:`p \to 0` only if its noise (or bias) does not swamp that signal.

References: Tucker et al., NeurIPS 2017 (REBAR, section 5.1); Grathwohl et al., ICLR 2018
(RELAX, section 6.1); Yin & Zhou, ICLR 2019 (ARM); Dong, Mnih & Tucker, NeurIPS 2020 (DisARM).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.distributions import Bernoulli

from reparam._optional import pyplot, require
from reparam.estimators.base import CostFn
from reparam.problems.base import CompareRequest, ProblemInstance, register_problem

TOY_ESTIMATORS: tuple[str, ...] = (
    "reinforce",
    "reinforce-loo",
    "arm",
    "disarm",
    "indecater",
    "rebar",
    "relax",
    "straight-through",
    "gumbel-softmax",
)


def toy_cost(t: float) -> CostFn:
    def f(b: Tensor) -> Tensor:
        return (b - t).pow(2).mean(-1)

    return f


@register_problem("bernoulli-toy")
def bernoulli_toy(D: int = 200, t: float = 0.499, phi: float = 0.0) -> ProblemInstance:
    r"""b ~ Bernoulli(sigmoid(phi)) (D dims), f(b) = mean_i (b_i - t)^2; exact gradient
    (1 - 2t)/D * p (1 - p) per coordinate. Double precision (the signal is ~1e-6)."""
    D, t, phi = int(D), float(t), float(phi)
    if D < 1:
        raise ValueError(f"D must be >= 1, got {D}.")
    logits = torch.full((D,), phi, dtype=torch.float64, requires_grad=True)
    p = torch.sigmoid(logits.detach())
    exact = (1.0 - 2.0 * t) / D * p * (1.0 - p)
    return ProblemInstance(
        name="bernoulli-toy",
        f=toy_cost(t),
        q=Bernoulli(logits=logits),
        params=[logits],
        exact=(exact,),
        param_names=["phi"],
        description=f"b ~ Bernoulli(sigmoid({phi:g})) x {D}, f(b) = mean_i (b_i - {t:g})^2",
        default_estimators=TOY_ESTIMATORS,
    )


def closed_form_variances(D: int, t: float, phi: float = 0.0) -> dict[str, float]:
    """Per-coordinate variance of one estimate at a common logit ``phi``: keys ``reinforce``
    (1 sample), ``reinforce-loo`` (2 samples), ``arm`` and ``disarm`` (one pair), and ``exact``
    (the gradient itself)."""
    p = 1.0 / (1.0 + math.exp(-phi))
    m = min(p, 1.0 - p)
    c = (1.0 - 2.0 * t) / D
    g = c * p * (1.0 - p)
    # REINFORCE: g_i = f(b)(b_i - p), f = t^2 + c b_i + c S', S' = sum_{j != i} b_j with mean
    # (D-1)p and variance (D-1)p(1-p); condition on b_i.
    second = 0.0
    for b, prob in ((1.0, p), (0.0, 1.0 - p)):
        mean_f = t * t + c * b + c * (D - 1) * p
        second += prob * (b - p) ** 2 * (mean_f**2 + c * c * (D - 1) * p * (1.0 - p))
    # RLOO(2): g_i = (f1 - f2)(b1i - b2i)/2 = c/2 (delta_i^2 + delta_i (R1 - R2)), delta = b1i - b2i
    # nonzero w.p. r = 2p(1-p), E(R1 - R2)^2 = 2(D-1)p(1-p).
    r = 2.0 * p * (1.0 - p)
    rloo = c * c / 4.0 * r * (1.0 + 2.0 * (D - 1) * p * (1.0 - p))
    # ARM: g_i = c (u_i - 1/2) sum_j delta_j, delta_j = 1[u_j > 1-p] - 1[u_j < p] in {-1, 0, 1},
    # nonzero w.p. 2m, mean 0; E[(u-1/2)^2 delta^2] = 2 int_{1-m}^1 (u-1/2)^2 du, E(u-1/2)^2 = 1/12.
    arm = c * c * ((2.0 / 3.0) * (0.125 - (0.5 - m) ** 3) + (D - 1) * 2.0 * m / 12.0)
    # DisARM: g_i = c/2 sigma(|phi|) (delta_i^2 + delta_i sum_{j != i} delta_j), sigma(|phi|) = 1 - m.
    disarm = c * c / 4.0 * (1.0 - m) ** 2 * 2.0 * m * (1.0 + 2.0 * m * (D - 1))
    return {
        "exact": g,
        "reinforce": second - g * g,
        "reinforce-loo": rloo - g * g,
        "arm": arm - g * g,
        "disarm": disarm - g * g,
    }


@dataclass(frozen=True)
class ToyRow:
    """One estimator on one toy configuration (coordinates pooled: they are exchangeable)."""

    estimator: str
    num_samples: int
    evaluations: int
    mean: float
    exact: float
    bias: float
    z: float
    variance: float
    closed_form: float | None


CONFIGS: tuple[tuple[int, float], ...] = ((200, 0.499), (1, 0.45), (1, 0.499))


def toy_rows(
    D: int,
    t: float,
    names: tuple[str, ...],
    repeats: int = 2000,
    num_samples: int = 1,
    equal_cost: bool = False,
    phi: float = 0.0,
) -> list[ToyRow]:
    """Measured mean, bias and variance (pooled over the exchangeable coordinates) of each named
    estimator, next to the closed form where there is one. ``z`` is the largest
    ``|bias| / stderr`` over the coordinates."""
    from reparam.diagnostics.compare import compare
    from reparam.estimators.registry import make_estimator

    problem = bernoulli_toy(D=D, t=t, phi=phi)
    closed = closed_form_variances(D, t, phi)
    table = compare(
        problem.f,
        problem.q,
        problem.params,
        {name: make_estimator(name) for name in names},
        num_samples=num_samples,
        repeats=repeats,
        exact=problem.exact,
        equal_cost=equal_cost,
    )
    exact = float(closed["exact"])
    rows = []
    for name in names:
        s = table.stats[name]
        mean, var, se = s.mean[0], s.variance[0], s.stderr[0]
        bias = float(mean.mean()) - exact
        # Zero-variance estimators (DisARM and IndeCateR at D = 1) have se = 0 and a rounding-level
        # bias: floor the standard error at 1e-9 of the gradient so z reads 0, not 1e300.
        floor = 1e-9 * abs(exact) + 1e-300
        z = float(((mean - exact).abs() / se.clamp_min(floor)).max())
        # Closed forms exist for the settings: REINFORCE 1 sample, RLOO 2, ARM/DisARM 1 pair.
        standard = {"reinforce": 1, "reinforce-loo": 2, "arm": 1, "disarm": 1}
        cf = closed[name] if standard.get(name) == s.num_samples else None
        rows.append(
            ToyRow(
                name, s.num_samples, s.evaluations, float(mean.mean()), exact, bias, z, float(var.mean()), cf
            )
        )
    return rows


@dataclass(frozen=True)
class Run:
    """One optimisation run on the toy: ``p = sigmoid(phi)`` after every step."""

    estimator: str
    probs: list[float]

    @property
    def final(self) -> float:
        return self.probs[-1]


def optimisation_runs(
    names: tuple[str, ...],
    t: float = 0.499,
    steps: int = 1000,
    lr: float = 0.02,
    seed: int = 0,
) -> list[Run]:
    """Adam on ``phi`` (D = 1, phi = 0 at start) minimising ``E[(b - t)^2]`` with each estimator
    (REBAR/RELAX also update their own parameters, in the same backward pass). The optimum is
    ``p -> 0`` for ``t < 1/2``."""
    from torch import nn

    from reparam.estimators.registry import make_estimator

    runs = []
    f = toy_cost(t)
    for name in names:
        torch.manual_seed(seed)
        phi = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        estimator = make_estimator(name)
        params = [phi]
        if isinstance(estimator, nn.Module):
            estimator = estimator.double()
            params += list(estimator.parameters())
        optimizer = torch.optim.Adam(params, lr=lr)
        n = max(1, int(getattr(estimator, "min_samples", 1)))
        probs = []
        for _ in range(steps):
            optimizer.zero_grad()
            estimator(f, Bernoulli(logits=phi), n).sum().backward()
            optimizer.step()
            probs.append(float(torch.sigmoid(phi.detach())))
        runs.append(Run(name, probs))
    return runs


def plot_runs(runs: list[Run], path: str | Path, t: float) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 4))
    for run in runs:
        ax.plot(run.probs, label=run.estimator, lw=1.2)
    ax.set_xlabel("Adam step")
    ax.set_ylabel("p = sigmoid(phi)")
    ax.set_ylim(-0.02, 1.02)
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set_title(f"min E[(b - {t})^2], b ~ Bernoulli(p): the optimum is p = 0")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _number(x: float | None) -> str:
    return "—" if x is None else f"{x:.3g}"


def rows_markdown(title: str, rows: list[ToyRow]) -> str:
    lines = [
        f"**{title}**",
        "",
        "| estimator | N | evals | mean grad | exact | bias | max abs z | variance | closed form |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.estimator} | {r.num_samples} | {r.evaluations} | {_number(r.mean)} | {_number(r.exact)} | "
            f"{_number(r.bias)} | {r.z:.1f} | {_number(r.variance)} | {_number(r.closed_form)} |"
        )
    return "\n".join(lines)


def _option(options: dict[str, object], key: str, default: float) -> float:
    value = options.get(key, default)
    if not isinstance(value, (int, float, str)):
        raise ValueError(f"option {key} must be a number, got {value!r}.")
    return float(value)


def _toy_options(options: dict[str, object]) -> dict[str, object]:
    valid = {"D", "t", "phi", "steps", "lr", "short"}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for bernoulli-toy; valid: {', '.join(sorted(valid))}."
        )
    return options


def run_bernoulli_toy(request: CompareRequest) -> None:
    """Discrete estimators on b ~ Bernoulli(sigmoid(phi)), f = mean_i (b_i - t)^2: bias and
    variance against the closed forms (D=200, t=0.499; D=1, t=0.45/0.499) and optimisation runs."""
    require("rich", extra="cli", feature="the bernoulli-toy runner")
    from rich.console import Console
    from rich.table import Table

    options = _toy_options(dict(request.options))
    short = bool(options.get("short", 0))
    phi = _option(options, "phi", 0.0)
    configs: tuple[tuple[int, float], ...] = CONFIGS
    if "D" in options or "t" in options:
        configs = ((int(_option(options, "D", 200)), _option(options, "t", 0.499)),)
    names = tuple(request.estimators) if request.estimators else TOY_ESTIMATORS
    repeats = min(request.repeats, 500) if short else request.repeats
    steps = int(_option(options, "steps", 200 if short else 1000))
    lr = _option(options, "lr", 0.02)
    out = Path(request.out) if request.out is not None else Path("bernoulli-toy")
    out.mkdir(parents=True, exist_ok=True)
    console = Console(width=max(Console().width, 130))
    torch.set_num_threads(1)
    sections = ["# bernoulli-toy: discrete gradient estimators", ""]
    for D, t in configs:
        title = (
            f"D = {D}, t = {t}, phi = {phi}: exact gradient {closed_form_variances(D, t, phi)['exact']:.3g}"
        )
        with console.status(f"[bold]{title}[/] ({len(names)} estimators x {repeats} estimates)"):
            rows = toy_rows(D, t, names, repeats, request.num_samples, request.equal_cost, phi)
        table = Table(title=title + " (per coordinate; coordinates pooled)")
        for column in ("estimator", "N", "evals", "mean grad", "bias", "max |z|", "variance", "closed form"):
            table.add_column(column, justify="left" if column == "estimator" else "right")
        for r in rows:
            table.add_row(
                r.estimator,
                str(r.num_samples),
                str(r.evaluations),
                _number(r.mean),
                _number(r.bias),
                f"{r.z:.1f}",
                _number(r.variance),
                _number(r.closed_form),
            )
        console.print(table)
        sections += [rows_markdown(title, rows), ""]
    note = (
        "REBAR and RELAX are measured at their initial temperature 0.5 and eta 1 (nothing adapted);"
        " in the runs below they adapt them. Closed forms: REINFORCE 1 sample, RLOO 2 samples, ARM and"
        " DisARM 1 pair (each pair costs 2 evaluations of f)."
    )
    console.print(f"[dim]* {note}[/]")
    sections += [f"* {note}", ""]
    run_names = names
    with console.status(f"[bold]optimisation runs[/]: D = 1, t = 0.499, {steps} Adam steps (lr {lr})"):
        runs = optimisation_runs(run_names, t=0.499, steps=steps, lr=lr)
    plot_runs(runs, out / "runs.png", 0.499)
    table = Table(title=f"optimisation runs, D = 1, t = 0.499 ({steps} Adam steps, lr {lr}); optimum p = 0")
    table.add_column("estimator")
    table.add_column("final p", justify="right")
    table.add_column("found the optimum (p < 0.05)")
    lines = [
        "**optimisation runs (D = 1, t = 0.499)**",
        "",
        "| estimator | final p | found (p < 0.05) |",
        "|---|---|---|",
    ]
    for run in runs:
        found = "yes" if run.final < 0.05 else "no"
        table.add_row(run.estimator, f"{run.final:.3g}", found)
        lines.append(f"| {run.estimator} | {run.final:.3g} | {found} |")
    console.print(table)
    sections += [*lines, "", "![runs](runs.png)", ""]
    (out / "table.md").write_text("\n".join(sections))
    console.print(f"wrote {out / 'table.md'} and {out / 'runs.png'}")


def _register_runner() -> None:
    from reparam.problems.base import RUNNERS, register_runner

    if "bernoulli-toy" not in RUNNERS:
        register_runner("bernoulli-toy")(run_bernoulli_toy)


_register_runner()
