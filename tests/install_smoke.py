"""Smoke test of the installed wheel in a venv holding only torch, numpy and their dependencies.

Run by tests/test_install.py with that venv's python (not collected by pytest itself). Checks
the core API a user of ``pip install reparam`` meets, with no optional package importable.
"""

from __future__ import annotations

import importlib.util
import io
from contextlib import redirect_stderr
from pathlib import Path

import torch

import reparam as rp
from reparam._optional import MissingExtraError

for name in ("rich", "typer", "matplotlib", "sklearn", "scipy", "gymnasium"):
    assert importlib.util.find_spec(name) is None, f"{name} is importable: the venv is not bare"
assert "site-packages" in Path(rp.__file__).parts, f"reparam comes from {rp.__file__}, not the wheel"
assert (Path(rp.__file__).parent / "py.typed").is_file(), "the wheel has no py.typed"

torch.manual_seed(0)
start = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
exact = 2 * start  # d/dloc E_{N(loc, 1)}[sum z^2] = 2 loc


def f(z: torch.Tensor) -> torch.Tensor:
    return (z**2).sum(-1)


# rp.expect with a pathwise, a score-function (leave-one-out baseline) and a discrete estimator.
estimators = {"pathwise": rp.Pathwise(), "score-loo": rp.ScoreFunction(rp.baselines.LeaveOneOut())}
for name, estimator in estimators.items():
    loc = start.clone().requires_grad_()
    rp.expect(f, torch.distributions.Normal(loc, 1.0), estimator, num_samples=8).backward()
    assert loc.grad is not None and bool(torch.isfinite(loc.grad).all()), name
logits = torch.zeros(4, dtype=torch.float64, requires_grad=True)
rp.expect(lambda b: b.sum(-1), torch.distributions.Bernoulli(logits=logits), rp.Exact()).backward()
# d/dlogit E[b] = sigmoid'(0) = 1/4, exactly by enumeration (float64 rounding only).
assert logits.grad is not None and torch.allclose(logits.grad, torch.full_like(logits, 0.25), atol=1e-12)

# rp.distributions: the implicit-reparameterised Gamma.
concentration = torch.tensor([0.3, 1.0, 4.0], requires_grad=True)
rp.distributions.Gamma(concentration, torch.ones(3)).rsample((64,)).sum().backward()
assert concentration.grad is not None and bool(torch.isfinite(concentration.grad).all())

# rp.vi.fit, with the plain progress lines (no rich) on stderr.
target = torch.distributions.Normal(torch.tensor([1.0, -1.0]), 1.0)
lines = io.StringIO()
with redirect_stderr(lines):
    family = rp.vi.MeanFieldGaussian(2)
    result = rp.vi.fit(lambda z: target.log_prob(z).sum(-1), family, steps=5, num_samples=4)
assert len(result.history) == 5 and result.q is not None
assert "vi.fit 5/5" in lines.getvalue(), lines.getvalue()

# rp.nn: a Bayesian layer's forward pass and KL.
layer = rp.nn.BayesLinear(3, 2)
(layer(torch.randn(5, 3)).sum() + rp.nn.kl_divergence(layer)).backward()
assert all(p.grad is not None for p in layer.parameters())

# rp.gradient_stats against the exact gradient, and an rp.compare markdown table.
loc = start.clone().requires_grad_()
q = torch.distributions.Normal(loc, 1.0)
stats = rp.gradient_stats(f, q, [loc], rp.Pathwise(), repeats=400, exact=[exact])
assert stats.bias is not None
# |bias / stderr| < 6 per coordinate: two-sided false-alarm rate 2e-9 each.
assert bool((stats.bias[0].abs() < 6 * stats.stderr[0]).all()), (stats.bias, stats.stderr)
table = rp.compare(f, q, [loc], estimators, num_samples=4, repeats=100, exact=[exact])
markdown = table.to_markdown()
assert "pathwise" in markdown and "score-loo" in markdown, markdown

# Optional pieces name their extra.
try:
    import reparam.cli
except MissingExtraError as error:
    assert str(error) == "the reparam command line needs typer: pip install 'reparam[cli]'", error
else:
    raise AssertionError("import reparam.cli worked without typer")
try:
    rp.nn.reliability_diagram(torch.full((4, 2), 0.5), torch.zeros(4, dtype=torch.long), "x.png")
except MissingExtraError as error:
    assert "pip install 'reparam[plots]'" in str(error), error
else:
    raise AssertionError("reliability_diagram worked without matplotlib")

print("install-smoke-ok")
