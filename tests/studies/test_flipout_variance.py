"""The Flipout variance study: files, the slope helper, and the ordering it is about."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from seeds import seeded

from reparam.data import digits
from reparam.studies.flipout_variance import gradient_variance, run, slope, trained_model


def test_slope_of_power_laws() -> None:
    sizes = [1, 2, 4, 8]
    assert math.isclose(slope(sizes, [1 / b for b in sizes]), -1.0)
    assert math.isclose(slope(sizes, [3.0] * 4), 0.0, abs_tol=1e-12)


def test_run_writes_table_plot_and_json(tmp_path: Path) -> None:
    result = run(tmp_path, repeats=4, train_steps=2, batch_sizes=(1, 4))
    assert {p.name for p in tmp_path.iterdir()} == {"variance.md", "variance.png", "variance.json"}
    saved = json.loads((tmp_path / "variance.json").read_text())
    for panel in saved["variance"].values():
        assert set(panel) == {"reparam", "local", "flipout"}
        assert all(v > 0 and math.isfinite(v) for values in panel.values() for v in values)
    assert "| flipout |" in result["table"]


def test_shared_noise_variance_does_not_shrink_with_the_batch() -> None:
    # Minibatch fixed, weight noise only, B = 512 after 600 ELBO steps: the shared-weight estimator
    # keeps the variance Var_eps[mean_n g_n(eps)], local reparameterization divides it by ~B
    # (the study measures a ratio of ~30). Each variance is estimated from 60 draws, relative
    # standard error ~ sqrt(2 / 60) = 0.18 for Gaussian-like draws, so a factor 4 is > 5 SE away.
    splits = digits()
    x, y = splits.x_train, splits.y_train
    model = trained_model(x, y, steps=600)
    fixed = torch.randperm(len(x), generator=torch.Generator().manual_seed(seeded(0)))[:512]
    shared = gradient_variance(model, x, y, "reparam", 512, 60, fixed_batch=fixed)
    local = gradient_variance(model, x, y, "local", 512, 60, fixed_batch=fixed)
    assert shared > 4 * local
