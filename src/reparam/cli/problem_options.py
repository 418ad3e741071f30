"""The ``-O KEY=VALUE`` options of each ``reparam compare`` problem: their types, defaults and
help, for ``compare --list`` and for checking ``-O`` before anything runs.

A problem built by a registered builder takes its builder's keyword arguments (types and
defaults read from the signature). A custom runner parses ``request.options`` itself, so the
options of the built-in runners are declared in :data:`RUNNER_OPTIONS`; a runner without an
entry there (one registered by a user) gets its ``-O`` values unchecked, parsed by
:func:`parse_loose`.

Example:
    >>> spec = {o.name: o for o in problem_options("normal-quadratic")}
    >>> spec["mu"].parse("2")
    2.0
    >>> spec["mu"].parse("abc")
    Traceback (most recent call last):
    ...
    ValueError: -O mu=abc: mu must be a float (e.g. -O mu=1.0), got 'abc'.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Sequence
from dataclasses import dataclass

# kind -> (what the error calls it, an example value)
_KINDS = {
    "int": ("an int", "3"),
    "float": ("a float", "1.0"),
    "floats": ("a float or comma-separated floats", "0.1,0.9"),
    "ints": ("comma-separated positive ints", "5,10,50"),
    "bool": ("0 or 1", "1"),
    "str": ("a string", "lqr,pendulum"),
}


@dataclass(frozen=True)
class ProblemOption:
    """One ``-O`` option: ``kind`` is a key of the table above; ``default`` is shown as given."""

    name: str
    kind: str
    default: object
    help: str = ""

    def parse(self, raw: str) -> object:
        """``raw`` as this option's type, or a ``ValueError`` naming the option and the type."""
        what, example = _KINDS[self.kind]
        try:
            if self.kind == "int":
                return int(raw)
            if self.kind == "float":
                return float(raw)
            if self.kind == "bool":
                if raw.lower() not in ("0", "1", "true", "false"):
                    raise ValueError
                return raw.lower() in ("1", "true")
            if self.kind == "ints":
                return [int(part) for part in raw.split(",")]
            if self.kind == "floats":
                values = [float(part) for part in raw.split(",")]
                return values[0] if len(values) == 1 else values
        except ValueError:
            hint = f"(e.g. -O {self.name}={example}), got {raw!r}."
            raise ValueError(f"-O {self.name}={raw}: {self.name} must be {what} {hint}") from None
        return raw

    def signature(self) -> str:
        """``name=default (kind)``."""
        return f"{self.name}={self.default} ({self.kind})"

    def describe(self) -> str:
        """:meth:`signature`, plus the help when there is one."""
        return f"{self.signature()}: {self.help}" if self.help else self.signature()


RUNNER_OPTIONS: dict[str, tuple[ProblemOption, ...]] = {
    "bernoulli-toy": (
        ProblemOption("D", "int", 200, "dimensions (with t: one configuration instead of the paper's three)"),
        ProblemOption("t", "float", 0.499, "target of f(b) = mean_i (b_i - t)^2"),
        ProblemOption("phi", "float", 0.0, "logit of the Bernoulli"),
        ProblemOption("steps", "int", "1000 (200 with short=1)", "optimisation steps"),
        ProblemOption("lr", "float", 0.02, "optimisation learning rate"),
        ProblemOption("short", "bool", 0, "a quick run"),
    ),
    "policy-horizon": (
        ProblemOption("horizons", "ints", "5,10,20,50,100,200", "episode lengths"),
        ProblemOption("tasks", "str", "lqr,pendulum", "comma-separated: lqr, pendulum"),
        ProblemOption("samples", "int", "max(--num-samples, 4)", "episodes per estimate"),
    ),
    "vae-snr": (
        ProblemOption("steps", "int", 3000, "training steps"),
        ProblemOption("repeats", "int", "min(--repeats, 200)", "estimates per point"),
    ),
    "discrete-vae-benchmark": (
        ProblemOption("steps", "int", 200, "training steps per run (budget=evals)"),
        ProblemOption(
            "budget", "str", "evals", "evals: equal f calls; time: equal seconds; steptime: paired timing"
        ),
        ProblemOption("seconds", "float", 10.0, "seconds of training per run (budget=time)"),
        ProblemOption("evals", "int", 4, "evaluations of f per data point and step"),
        ProblemOption("seeds", "int", 3, "seeds per model and estimator"),
        ProblemOption("models", "str", "bernoulli-linear,bernoulli-nonlinear,categorical", "comma list"),
        ProblemOption(
            "data", "str", "binarized-mnist,fashion-mnist",
            "comma list: binarized-mnist, fashion-mnist, synthetic, an .npz or an IDX folder",
        ),
        ProblemOption("batch", "int", 50, "minibatch size"),
        ProblemOption("lr", "float", 1e-3, "Adam learning rate"),
        ProblemOption("checkpoints", "int", 3, "gradient-variance measurements along training"),
        ProblemOption("repeats", "int", 10, "gradient draws per variance measurement"),
        ProblemOption("eval_size", "int", 500, "test rows for the test ELBO"),
        ProblemOption("train_size", "int", 0, "training rows (0: all)"),
        ProblemOption("max_ratio", "float", 10.0, "skip estimators needing more than this x evals"),
    ),
}


def _logistic_regression_options() -> tuple[ProblemOption, ...]:
    from dataclasses import MISSING, fields

    from reparam.studies.logistic_regression import StudyConfig

    kinds = {"int": "int", "float": "float", "bool": "bool"}
    options = [ProblemOption("short", "bool", 0, "a quick run (60 steps)")]
    for f in fields(StudyConfig):
        kind = kinds.get(str(getattr(f.type, "__name__", f.type)), "str")
        options.append(ProblemOption(f.name, kind, f.default if f.default is not MISSING else ""))
    options.append(ProblemOption("samples", "int", "num_samples", "alias of num_samples"))
    return tuple(options)


def _kind(annotation: object) -> str:
    """The option kind of a builder parameter's annotation."""
    if annotation is bool:
        return "bool"
    if annotation is int:
        return "int"
    if annotation is float:
        return "float"
    arguments = typing.get_args(annotation)
    if float in arguments or any(typing.get_origin(a) in (Sequence, list) for a in arguments):
        return "floats"
    return "str"


def problem_options(name: str) -> tuple[ProblemOption, ...] | None:
    """The options of problem ``name`` (a runner's when it has one), or ``None`` when they are
    not declared (a user's runner: its ``-O`` values go to it unchecked)."""
    from reparam.problems import PROBLEMS, RUNNERS

    if name in RUNNERS:
        if name == "logistic-regression":
            return _logistic_regression_options()
        return RUNNER_OPTIONS.get(name)
    builder = PROBLEMS[name]
    hints = typing.get_type_hints(builder)
    return tuple(
        ProblemOption(p.name, _kind(hints.get(p.name, str)), p.default)
        for p in inspect.signature(builder).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )


def parse_loose(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with VALUE an int, a float, a comma-separated list of floats, or a string
    (for runners that declare no options)."""
    key, raw = split_option(text)
    for convert in (int, float):
        try:
            return key, convert(raw)
        except ValueError:
            continue
    if "," in raw:
        try:
            return key, [float(x) for x in raw.split(",")]
        except ValueError:
            pass
    return key, raw


def split_option(text: str) -> tuple[str, str]:
    """``"some-name = 2"`` -> ``("some_name", "2")``; a ``ValueError`` unless ``KEY=VALUE``."""
    if "=" not in text:
        raise ValueError(f"-O {text!r} is not KEY=VALUE; e.g. -O mu=2.0.")
    key, raw = (part.strip() for part in text.split("=", 1))
    return key.replace("-", "_"), raw


def parse_options(name: str, texts: Sequence[str]) -> dict[str, object]:
    """The ``-O`` values for problem ``name``, checked against its options: an unknown key or a
    value of the wrong type raises ``ValueError`` naming the option, the type and the valid keys."""
    spec = problem_options(name)
    if spec is None:
        return dict(parse_loose(text) for text in texts)
    by_name = {o.name: o for o in spec}
    values: dict[str, object] = {}
    for text in texts:
        key, raw = split_option(text)
        if key not in by_name:
            valid = ", ".join(o.signature() for o in spec) or "none"
            raise ValueError(f"-O {key}: {name} has no option {key!r}; its options: {valid}.")
        values[key] = by_name[key].parse(raw)
    return values


def plain_docstring(text: str | None) -> str:
    """A docstring as one plain paragraph: reST roles and double backticks removed."""
    text = re.sub(r":\w+:`([^`]*)`", r"\1", text or "")
    text = text.replace("``", "")
    return " ".join(text.split())
