r"""``reparam compare --problem discrete-vae-benchmark``: every discrete gradient estimator in the
registry trained on the discrete VAEs of the ARM / DisARM / ARMS / CARMS papers.

Models (:class:`~reparam.models.discrete_vae.DiscreteVAE`): the Bernoulli VAE with 200 latents,
``linear`` and ``nonlinear`` (Yin & Zhou 2019; Dong, Mnih & Tucker 2020), and a categorical VAE
with 20 latents of 10 classes (Jang, Gu & Poole 2017; Dimitriev & Zhou 2021), on each data set of
``-O data=`` (a comma list; default ``binarized-mnist,fashion-mnist``):

* ``binarized-mnist``: static binarized MNIST (Larochelle & Murray 2011) from
  ``/work/shared/data/binarized_mnist.npz`` (or any ``.npz`` path with keys train/valid/test);
* ``fashion-mnist``: Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) from the Debian package
  ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``, or any MNIST-format IDX
  folder given by path), **dynamically binarized** as in the DisARM paper: every training batch
  is a fresh Bernoulli draw with the grey level as probability; the validation split (the last
  10,000 training images) and the test set (10,000 images) are binarized once, with a fixed seed,
  so every estimator and seed is scored on the same binary test images. When the folder is absent
  the runner says so (``apt-get install dataset-fashion-mnist``) and runs the other data sets;
* ``synthetic``: binary prototypes with flipped pixels, for tests.

Equal cost. ``budget=evals`` (the default) gives every estimator the same number of evaluations
of :math:`f` per data point and step, ``evals`` (default 4): ``num_samples`` is the largest with
``estimator.evaluations(q, n) <= evals`` (at least the estimator's minimum; ARM and DisARM spend
2 per sample, REBAR and RELAX 3, RLOO / VIMCO / ARMS 1). An estimator whose minimum exceeds
``max_ratio * evals`` (IndeCateR: one evaluation per latent and class) is reported and skipped.
``budget=time`` trains each run for ``seconds`` of wall clock instead of ``steps`` steps, with the
same ``num_samples``. ``budget=steptime`` only times training steps: ``steps`` interleaved rounds
of one step per estimator (load from other jobs falls on all alike), median ms per step.

Measured per model, estimator and seed (``seeds``, default 3; mean and spread are over seeds):
the test ELBO (analytic entropy, 10 samples per test point), the encoder-gradient variance on a
fixed training batch at ``checkpoints`` points along training (mean over encoder parameters of the
variance of one estimate, ``repeats`` draws; the quantity the ARM/DisARM papers plot), and the time
per training step (the median over all steps of all seeds, with its interquartile range: medians,
because wall-clock times on a shared machine have long tails). The published orderings are
printed as checks: DisARM < ARM in variance (Dong et al. 2020), ARMS < DisARM (Dimitriev &
Zhou 2021), and RLOO competitive with DisARM at equal evaluations (Dong et al. 2020; Richter et al. 2020).

Options (``-O name=value``): ``steps`` (200), ``seconds`` (budget=time only, 10), ``budget``
(``evals`` | ``time``), ``evals`` (4), ``seeds`` (3), ``models`` (comma list of
``bernoulli-linear,bernoulli-nonlinear,categorical``), ``data`` (comma list of
``binarized-mnist``, ``fashion-mnist``, ``synthetic``, an ``.npz`` path or an IDX folder),
``batch`` (50), ``lr`` (1e-3), ``checkpoints`` (3), ``repeats`` (10),
``eval_size`` (500), ``train_size`` (all), ``max_ratio`` (10). ``--estimators a,b`` restricts the
estimators.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from reparam._optional import require
from reparam.data import Splits, binarized_mnist, dynamic_binarize, idx_folder
from reparam.estimators.base import Estimator, evaluations
from reparam.estimators.registry import ESTIMATORS, make_estimator
from reparam.models.discrete_vae import DiscreteVAE, DiscreteVAEConfig, encoder_gradient_variance
from reparam.problems.base import CompareRequest, register_runner

#: Unbiased estimators first, then the biased relaxations; those absent from the registry are skipped.
UNBIASED = (
    "reinforce-loo", "vimco", "arm", "disarm", "arms", "double-cv", "rebar", "relax", "indecater",
    "unordered-set", "carms", "arsm",
)  # fmt: skip
BIASED = ("gumbel-softmax", "gumbel-st", "straight-through", "gumbel-decoupled", "decoupled-st")

MODELS: dict[str, DiscreteVAEConfig] = {
    "bernoulli-linear": DiscreteVAEConfig(arch="linear", latent=200),
    "bernoulli-nonlinear": DiscreteVAEConfig(arch="nonlinear", latent=200),
    "categorical": DiscreteVAEConfig(arch="nonlinear", latent=20, categories=10),
}
DEFAULT_DATA = "/work/shared/data/binarized_mnist.npz"
FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
FASHION_MISSING = (
    "Fashion-MNIST is not installed ({path} does not exist): install it with "
    "`apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or pass an MNIST-format IDX folder "
    "with -O data=PATH."
)


@dataclass(frozen=True)
class BenchData:
    """One data set of the benchmark. ``dynamic``: ``splits.x_train`` holds grey levels in
    ``[0, 1]`` and every training batch is a fresh Bernoulli draw (dynamic binarization);
    ``fixed`` is a training batch binarized once, for the gradient-variance measurements."""

    name: str
    splits: Splits
    dynamic: bool = False


@dataclass(frozen=True)
class Settings:
    steps: int = 200
    seconds: float = 10.0
    budget: str = "evals"
    evals: int = 4
    seeds: int = 3
    models: tuple[str, ...] = tuple(MODELS)
    data: str = "binarized-mnist,fashion-mnist"
    batch: int = 50
    lr: float = 1e-3
    checkpoints: int = 3
    repeats: int = 10
    eval_size: int = 500
    train_size: int = 0
    max_ratio: float = 10.0

    @classmethod
    def parse(cls, options: dict[str, object]) -> Settings:
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(
                f"unknown discrete-vae-benchmark options {unknown}; known: {sorted(known)} "
                "(e.g. -O steps=200 -O seeds=3 -O budget=time -O seconds=10)."
            )
        values: dict[str, object] = {}
        for name, raw in options.items():
            default = cls.__dataclass_fields__[name].default
            if name == "models":
                values[name] = tuple(m for m in str(raw).split(",") if m)
            else:
                values[name] = type(default)(raw)  # type: ignore[misc]
        settings = cls(**values)  # type: ignore[arg-type]
        settings.check()
        return settings

    def check(self) -> None:
        if self.budget not in ("evals", "time", "steptime"):
            raise ValueError(f"budget must be 'evals', 'time' or 'steptime', got {self.budget!r}.")
        bad = [m for m in self.models if m not in MODELS]
        if bad or not self.models:
            raise ValueError(f"models: unknown {bad}; choose from {', '.join(MODELS)}.")
        for name in ("steps", "evals", "seeds", "batch", "checkpoints", "repeats", "eval_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if not (self.seconds > 0 and self.lr > 0 and self.max_ratio >= 1):
            raise ValueError("seconds and lr must be > 0 and max_ratio >= 1.")


@dataclass
class Run:
    """One training run: a model, an estimator, a seed."""

    model: str
    estimator: str
    seed: int
    num_samples: int
    evals: int
    steps: int = 0
    test_elbo: float = math.nan
    variances: list[float] = field(default_factory=list)
    seconds_per_step: float = math.nan
    step_seconds: list[float] = field(default_factory=list)
    note: str = ""


def synthetic(rows: int = 600, dim: int = 784, seed: int = 0) -> Splits:
    """Binary data with structure (a few random prototypes with flipped pixels), for tests."""
    g = torch.Generator().manual_seed(seed)
    prototypes = (torch.rand(5, dim, generator=g) < 0.3).float()
    x = prototypes[torch.randint(5, (rows,), generator=g)]
    flip = torch.rand(rows, dim, generator=g) < 0.05
    x = torch.where(flip, 1 - x, x)
    n = rows // 3
    return Splits("synthetic", x[n:], x[:0], x[:n])


def fashion_mnist(folder: str | Path = FASHION_MNIST, seed: int = 0) -> Splits:
    """Fashion-MNIST from an IDX folder (the Debian package's ``.gz`` files): grey-level training
    rows (binarized per batch by the benchmark), validation (last 10,000 training images) and
    test rows binarized once with ``seed``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(FASHION_MISSING.format(path=folder))
    grey = idx_folder(folder, binarize="none", valid_size=10000)
    g = torch.Generator().manual_seed(seed)
    return Splits(
        "fashion-mnist",
        grey.x_train,
        dynamic_binarize(grey.x_valid, g),
        dynamic_binarize(grey.x_test, g),
        grey.y_train,
        grey.y_valid,
        grey.y_test,
    )


def load_data(spec: str) -> tuple[list[BenchData], list[str]]:
    """The data sets named in ``spec`` (comma list) and notes on those that are not installed.

    An explicitly given path that does not exist raises; the default ``fashion-mnist`` that is not
    installed gives a note (and the benchmark runs the others), unless nothing else is left."""
    found: list[BenchData] = []
    notes: list[str] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        if item == "synthetic":
            found.append(BenchData("synthetic", synthetic()))
        elif item in ("binarized-mnist", "mnist"):
            found.append(BenchData("binarized-mnist", binarized_mnist(DEFAULT_DATA)))
        elif item == "fashion-mnist":
            if Path(FASHION_MNIST).is_dir():
                found.append(BenchData("fashion-mnist", fashion_mnist(FASHION_MNIST), dynamic=True))
            else:
                notes.append(FASHION_MISSING.format(path=FASHION_MNIST))
        elif item.endswith(".npz"):
            found.append(BenchData(Path(item).stem, binarized_mnist(item)))
        elif Path(item).is_dir():
            found.append(BenchData(Path(item).name, fashion_mnist(item), dynamic=True))
        else:
            raise ValueError(
                f"data: unknown data set {item!r}; use binarized-mnist, fashion-mnist, synthetic, "
                "an .npz path (keys train/valid/test) or an MNIST-format IDX folder."
            )
    if not found:
        raise FileNotFoundError("data: no data set available. " + " ".join(notes))
    return found, notes


def _num_samples(estimator: object, q: torch.distributions.Distribution, budget: int) -> tuple[int, int]:
    """Largest ``n`` (at least the estimator's minimum) with ``evaluations(n) <= budget``."""
    n = max(1, int(getattr(estimator, "min_samples", 1)))
    while evaluations(estimator, q, n + 1) <= budget:
        n += 1
    return n, evaluations(estimator, q, n)


@dataclass
class _Setup:
    """A model, its estimator with ``n`` samples, and its optimizer, ready to train."""

    model: DiscreteVAE
    estimator: Estimator
    n: int
    optimizer: torch.optim.Optimizer
    x_train: torch.Tensor
    fixed: torch.Tensor
    dynamic: bool

    def step(self) -> float:
        """One training step on a random batch; returns its wall-clock seconds."""
        rows = torch.randint(len(self.x_train), (len(self.fixed),))
        started = time.perf_counter()
        batch = dynamic_binarize(self.x_train[rows]) if self.dynamic else self.x_train[rows]
        loss, _ = self.model.loss(batch, self.estimator, self.n)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return time.perf_counter() - started


def _setup(
    model_name: str, estimator_name: str, seed: int, splits: Splits, s: Settings, dynamic: bool
) -> tuple[Run, _Setup | None]:
    """The run record and, unless the estimator is not applicable or over budget (``run.note``
    says which), everything needed to train."""
    torch.manual_seed(seed)
    x_train = splits.x_train if s.train_size < 1 else splits.x_train[: s.train_size]
    config = MODELS[model_name]
    config = DiscreteVAEConfig(config.arch, config.latent, config.hidden, x_train.shape[1], config.categories)
    model = DiscreteVAE(config, x_train.mean(0))
    estimator = make_estimator(estimator_name)
    fixed = x_train[torch.randperm(len(x_train))[: s.batch]]
    if dynamic:  # one binarization of the variance batch, the same at every checkpoint
        fixed = dynamic_binarize(fixed, torch.Generator().manual_seed(seed))
    try:
        n, evals = _num_samples(estimator, model.posterior(fixed[:1]), s.evals)
    except (TypeError, ValueError) as error:
        note = f"n/a: {str(error).splitlines()[0][:90]}"
        return Run(model_name, estimator_name, seed, 0, 0, note=note), None
    run = Run(model_name, estimator_name, seed, n, evals)
    if evals > s.max_ratio * s.evals:
        run.note = f"skipped: needs {evals} evaluations per step (budget {s.evals})"
        return run, None
    modules = nn.ModuleList([model])
    if isinstance(estimator, nn.Module):  # REBAR / RELAX: their own parameters
        modules.append(estimator)
    optimizer = torch.optim.Adam(modules.parameters(), lr=s.lr)
    try:
        model.loss(fixed[:2], estimator, n)
    except (TypeError, ValueError) as error:
        run.note = f"n/a: {str(error).splitlines()[0][:90]}"
        return run, None
    return run, _Setup(model, estimator, n, optimizer, x_train, fixed, dynamic)


def train_one(
    model_name: str, estimator_name: str, seed: int, splits: Splits, s: Settings, dynamic: bool = False
) -> Run:
    """Train one model with one estimator; measure variance along training, test ELBO, time.

    ``dynamic``: ``splits.x_train`` holds grey levels; each batch is binarized afresh."""
    run, setup = _setup(model_name, estimator_name, seed, splits, s, dynamic)
    if setup is None:
        return run
    model, estimator, n, fixed = setup.model, setup.estimator, setup.n, setup.fixed
    x_test = splits.x_test[: s.eval_size]
    total = s.steps if s.budget == "evals" else None
    marks = {round(s.steps * k / s.checkpoints) for k in range(s.checkpoints + 1)}
    train_time, step = 0.0, 0
    next_mark = 0.0
    while True:
        timed_out = total is None and train_time >= s.seconds
        due = (step in marks) if total is not None else (train_time >= next_mark or timed_out)
        if due:
            run.variances.append(encoder_gradient_variance(model, fixed, estimator, n, s.repeats))
            next_mark += s.seconds / s.checkpoints
        if (total is not None and step >= total) or timed_out:
            break
        elapsed = setup.step()
        run.step_seconds.append(elapsed)
        train_time += elapsed
        step += 1
    run.steps = step
    run.seconds_per_step = train_time / max(step, 1)
    with torch.no_grad():
        run.test_elbo = float(model.elbo(x_test, num_samples=10).mean())
    return run


def paired_step_times(
    model_name: str, names: list[str], splits: Splits, s: Settings, dynamic: bool = False
) -> list[tuple[str, int, int, float, str]]:
    """Median milliseconds per training step of each estimator, from ``s.steps`` interleaved
    rounds (one step of every estimator per round, in turn; the first round, a warm-up, is
    dropped), so that load from other jobs falls on all estimators alike. Rows: (estimator,
    num_samples, evaluations, median ms, note)."""
    prepared = [(name, *_setup(model_name, name, 0, splits, s, dynamic)) for name in names]
    times: dict[str, list[float]] = {name: [] for name, _, setup in prepared if setup is not None}
    for round_ in range(s.steps + 1):
        for name, _, setup in prepared:
            if setup is not None:
                elapsed = setup.step()
                if round_:
                    times[name].append(elapsed)
    medians = {name: 1000 * statistics.median(t) for name, t in times.items() if t}
    return [(name, r.num_samples, r.evals, medians.get(name, math.nan), r.note) for name, r, _ in prepared]


def steptime_markdown(model_name: str, rows: list[tuple[str, int, int, float, str]], rounds: int) -> str:
    base = next((ms for name, *_, ms, note in rows if name == "reinforce-loo" and not note), math.nan)
    lines = [
        f"**{model_name}**: median ms per training step over {rounds} interleaved rounds",
        "",
        "| estimator | n | evals | ms / step | relative to RLOO |",
        "|---|---|---|---|---|",
    ]
    for name, n, evals, ms, note in rows:
        if note:
            lines.append(f"| {name} | {n} | {evals} | {note} | |")
        else:
            lines.append(f"| {name} | {n} | {evals} | {ms:.1f} | {ms / base:.2f} |")
    return "\n".join(lines) + "\n"


def estimator_names(requested: tuple[str, ...] | None) -> list[str]:
    if requested:
        unknown = [e for e in requested if e not in ESTIMATORS]
        if unknown:
            raise ValueError(f"unknown estimators {unknown}; choose from {', '.join(sorted(ESTIMATORS))}.")
        return list(requested)
    return [e for e in (*UNBIASED, *BIASED) if e in ESTIMATORS]


def _spread(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return (values[0], values[0], values[0]) if values else (math.nan, math.nan, math.nan)
    q1, median, q3 = statistics.quantiles(values, n=4)
    return median, q1, q3


@dataclass
class Summary:
    model: str
    estimator: str
    num_samples: int
    evals: int
    steps: float
    elbo: tuple[float, float]
    variance: tuple[float, float]  # at the last checkpoint
    variance_curve: list[float]  # mean over seeds at each checkpoint
    ms_per_step: tuple[float, float, float]  # median, lower and upper quartile over all steps
    note: str


def summarise(runs: list[Run]) -> list[Summary]:
    out = []
    keys = list(dict.fromkeys((r.model, r.estimator) for r in runs))
    for model, est in keys:
        group = [r for r in runs if (r.model, r.estimator) == (model, est)]
        first = group[0]
        curves = [r.variances for r in group if r.variances]
        length = min((len(c) for c in curves), default=0)
        curve = [statistics.fmean(c[i] for c in curves) for i in range(length)]
        out.append(
            Summary(
                model, est, first.num_samples, first.evals,
                statistics.fmean(r.steps for r in group),
                _spread([r.test_elbo for r in group]),
                _spread([c[length - 1] for c in curves] if length else []),
                curve,
                _quartiles([1000 * t for r in group for t in r.step_seconds]),
                first.note,
            )
        )  # fmt: skip
    return out


ORDERINGS = (
    ("disarm", "arm", "Dong et al. 2020"),
    ("arms", "disarm", "Dimitriev & Zhou 2021"),
    ("carms", "reinforce-loo", "Dimitriev & Zhou 2021, categorical"),
)


def findings(summaries: list[Summary], budget: str = "evals", seeds: int = 3) -> list[tuple[str, bool]]:
    """The published orderings, per model where both estimators ran, with the numbers.

    Each variance check also gives the gap in standard errors over seeds,
    ``(b - a) / sqrt((sd_a^2 + sd_b^2) / seeds)``, so a "holds" inside the seed noise reads as such."""
    claims: list[tuple[str, bool]] = []
    by = {(s.model, s.estimator): s for s in summaries if not s.note}
    at = "at equal evaluations" if budget == "evals" else "at equal wall clock"
    for model in dict.fromkeys(s.model for s in summaries):
        for low, high, source in ORDERINGS:
            if (model, low) in by and (model, high) in by:
                (a, sa), (b, sb) = by[(model, low)].variance, by[(model, high)].variance
                se = math.sqrt((sa**2 + sb**2) / max(seeds, 1))
                gap = f"{(b - a) / se:+.1f} se" if se > 0 else "no spread"
                text = f"{model}: {low} variance {a:.3g} < {high} variance {b:.3g}, gap {gap} ({source}) {at}"
                if budget == "time":  # the variance grows along training: say how far each got
                    text += f" after {by[(model, low)].steps:.0f} vs {by[(model, high)].steps:.0f} steps"
                claims.append((text, a < b))
        if (model, "reinforce-loo") in by and (model, "disarm") in by:
            r, d = by[(model, "reinforce-loo")].elbo, by[(model, "disarm")].elbo
            margin = 2 * max(r[1], d[1], 0.5)
            claims.append(
                (
                    f"{model}: RLOO test ELBO {r[0]:.2f} within {margin:.2f} of (or above) DisARM {d[0]:.2f} "
                    f"{at} (Dong et al. 2020)",
                    r[0] >= d[0] - margin,
                )
            )
    return claims


def to_markdown(summaries: list[Summary], settings: Settings, data: str = "") -> str:
    budget = f"{settings.steps} steps" if settings.budget == "evals" else f"{settings.seconds:g} s per run"
    lines = [
        f"{data + ': ' if data else ''}budget: {settings.budget} ({budget}), {settings.evals} evaluations "
        f"of f per data point and step, {settings.seeds} seeds (mean ± sd), batch {settings.batch}",
        "",
        "| model | estimator | n | evals | steps | test ELBO | encoder grad variance (last) | "
        "variance along training | ms / step, median [IQR] | note |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        if s.note:
            lines.append(f"| {s.model} | {s.estimator} | {s.num_samples} | {s.evals} | | | | | | {s.note} |")
            continue
        curve = ", ".join(f"{v:.2g}" for v in s.variance_curve)
        lines.append(
            f"| {s.model} | {s.estimator} | {s.num_samples} | {s.evals} | {s.steps:.0f} | "
            f"{s.elbo[0]:.2f} ± {s.elbo[1]:.2f} | {s.variance[0]:.3g} ± {s.variance[1]:.2g} | {curve} | "
            f"{s.ms_per_step[0]:.1f} [{s.ms_per_step[1]:.1f}, {s.ms_per_step[2]:.1f}] | |"
        )
    return "\n".join(lines) + "\n"


def run_benchmark(
    settings: Settings,
    estimators: list[str],
    splits: Splits | None = None,
    dynamic: bool = False,
    progress: Callable[[Run], None] | None = None,
) -> list[Run]:
    """Every model x estimator x seed on one data set (the first of ``settings.data`` if
    ``splits`` is not given); ``progress`` is called after each run."""
    if splits is None:
        first = load_data(settings.data)[0][0]
        splits, dynamic = first.splits, first.dynamic
    runs = []
    for model in settings.models:
        for name in estimators:
            for seed in range(settings.seeds):
                run = train_one(model, name, seed, splits, settings, dynamic)
                runs.append(run)
                if progress is not None:
                    progress(run)
                if run.note:  # not applicable / over budget: the same for every seed
                    break
    return runs


@register_runner("discrete-vae-benchmark")
def run(request: CompareRequest) -> None:
    """Every discrete estimator on the Bernoulli (linear, nonlinear) and categorical VAEs, binarized
    MNIST and Fashion-MNIST, at equal evaluations of f or equal wall clock; -O steps=, seconds=,
    budget=, seeds=, data=."""
    require("rich", extra="cli", feature="the discrete-vae-benchmark runner")
    from rich.console import Console

    settings = Settings.parse(dict(request.options))
    names = estimator_names(request.estimators)
    torch.set_num_threads(1)
    console = Console(width=max(Console().width, 160))
    datasets, notes = load_data(settings.data)
    for note in notes:
        console.print(f"note: {note}", markup=False, highlight=False)
    what = f"{len(names)} estimators x {len(settings.models)} models x {settings.seeds} seeds"
    bodies = [f"> note: {note}\n" for note in notes]

    def progress(r: Run) -> None:
        ms = 1000 * statistics.median(r.step_seconds) if r.step_seconds else math.nan
        console.print(
            f"  {r.model} {r.estimator} seed {r.seed}: {r.steps} steps, test ELBO {r.test_elbo:.2f}, "
            f"{ms:.1f} ms/step {r.note}",
            markup=False,
            highlight=False,
        )

    if settings.budget == "steptime":  # paired step times only, on the first data set
        data = datasets[0]
        for model in settings.models:
            rows = paired_step_times(model, names, data.splits, settings, data.dynamic)
            table = steptime_markdown(model, rows, settings.steps)
            console.print(table, markup=False, highlight=False)
            bodies.append(table)
        datasets = []
    for data in datasets:
        console.print(f"discrete-vae-benchmark on {data.name}: {what}", markup=False, highlight=False)
        summaries = summarise(run_benchmark(settings, names, data.splits, data.dynamic, progress))
        table = to_markdown(summaries, settings, data.name)
        console.print(table, markup=False, highlight=False)
        claims = findings(summaries, settings.budget, settings.seeds)
        for text, held in claims:
            console.print(f"{'holds' if held else 'DOES NOT HOLD'}: {text}", markup=False, highlight=False)
        checks = "\n".join(f"* {'holds' if h else 'does NOT hold'}: {t}" for t, h in claims)
        bodies.append(table + "\n" + checks + "\n")
    if request.out is not None:
        request.out.mkdir(parents=True, exist_ok=True)
        (request.out / "table.md").write_text("\n".join(bodies))
        console.print(f"wrote {Path(request.out) / 'table.md'}")
