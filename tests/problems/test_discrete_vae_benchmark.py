"""The discrete-VAE estimator benchmark at a tiny budget on synthetic data (and Fashion-MNIST where
its Debian package is installed), and the categorical VAE."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from reparam.estimators.registry import make_estimator
from reparam.models.discrete_vae import DiscreteVAE, DiscreteVAEConfig
from reparam.problems import RUNNERS, CompareRequest
from reparam.problems import discrete_vae_benchmark as bench
from reparam.problems.discrete_vae_benchmark import (
    Settings,
    _num_samples,
    estimator_names,
    run_benchmark,
    summarise,
    synthetic,
)

TINY = {
    "data": "synthetic", "steps": "3", "seeds": "2", "repeats": "2", "checkpoints": "1",
    "eval_size": "20", "batch": "8", "train_size": "40",
}  # fmt: skip


def test_runner_writes_the_table_and_the_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("rich")
    request = CompareRequest(
        "discrete-vae-benchmark",
        estimators=("arm", "disarm", "reinforce-loo", "indecater", "carms"),
        out=tmp_path,
        options={**TINY, "models": "bernoulli-linear,categorical"},
    )
    RUNNERS["discrete-vae-benchmark"](request)
    table = (tmp_path / "table.md").read_text()
    assert "| bernoulli-linear | disarm | 2 | 4 | 3 |" in table  # 2 samples x 2 evaluations = budget 4
    assert "| bernoulli-linear | reinforce-loo | 4 | 4 | 3 |" in table
    assert "skipped: needs" in table  # IndeCateR: one evaluation per latent, far over budget
    assert "| categorical | arm |" in table and "n/a" in table  # ARM is Bernoulli-only
    assert "disarm variance" in table and "RLOO test ELBO" in table  # the published orderings
    assert "holds" in capsys.readouterr().out


def test_time_budget_trains_until_the_clock_runs_out() -> None:
    options = {**TINY, "budget": "time", "seconds": "0.3", "seeds": "1", "models": "bernoulli-linear"}
    settings = Settings.parse(options)
    runs = run_benchmark(settings, ["disarm", "arm"], synthetic(rows=120))
    summary, _ = summaries = summarise(runs)
    assert summary.steps >= 1 and math.isfinite(summary.elbo[0])
    assert len(summary.variance_curve) >= 2  # at the start and along training
    # at equal time the runs reach different steps, and the variance grows along training
    (text, _), *_ = bench.findings(summaries, "time", 1)
    assert "at equal wall clock after" in text and text.endswith("steps")


def test_equal_evaluations_choose_num_samples() -> None:
    q = torch.distributions.Bernoulli(logits=torch.zeros(3, 200))
    assert _num_samples(make_estimator("disarm"), q, 4) == (2, 4)
    assert _num_samples(make_estimator("reinforce-loo"), q, 4) == (4, 4)
    assert _num_samples(make_estimator("vimco"), q, 1)[0] == 2  # its minimum, even over budget


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown discrete-vae-benchmark options"):
        Settings.parse({"step": "3"})
    with pytest.raises(ValueError, match="models"):
        Settings.parse({"models": "gaussian"})
    with pytest.raises(ValueError, match="budget"):
        Settings.parse({"budget": "money"})
    with pytest.raises(ValueError, match="unknown estimators"):
        estimator_names(("nope",))
    assert "disarm" in estimator_names(None) and "gumbel-softmax" in estimator_names(None)


def test_categorical_vae_prior_likelihood_and_bounds() -> None:
    x = synthetic(rows=30).x_train[:6]
    model = DiscreteVAE(DiscreteVAEConfig(arch="linear", latent=20, categories=10), x.mean(0))
    q = model.posterior(x)
    assert q.batch_shape == (6, 20) and q.event_shape == (10,)
    b = q.sample((3,))
    # uniform prior at initialisation: log p(b) = 20 log(1/10) for every one-hot b (float32 sums)
    torch.testing.assert_close(model.log_prior(b), torch.full((3, 6), 20 * math.log(0.1)))
    assert model.log_likelihood(x, b).shape == (3, 6)
    elbo = model.elbo(x, num_samples=200)
    bound = model.importance_bound(x, k=200)
    assert torch.isfinite(elbo).all() and torch.isfinite(bound).all()
    # Jensen: the 200-sample importance bound is above the ELBO; their Monte Carlo errors
    # (a few nats at most here) are far below the gap at an untrained encoder (tens of nats)
    assert (bound.mean() > elbo.mean()).item()
    with pytest.raises(ValueError, match="categories"):
        DiscreteVAEConfig(categories=1).validate()


def test_missing_fashion_mnist_is_a_note_naming_the_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(bench, "FASHION_MNIST", str(tmp_path / "absent"))
    datasets, notes = bench.load_data("synthetic,fashion-mnist")
    assert [d.name for d in datasets] == ["synthetic"]
    assert len(notes) == 1 and "apt-get install dataset-fashion-mnist" in notes[0]
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        bench.load_data("fashion-mnist")  # nothing left to run
    with pytest.raises(ValueError, match="unknown data set"):
        bench.load_data("cifar")


@pytest.mark.skipif(
    not Path(bench.FASHION_MNIST).is_dir(),
    reason=f"Fashion-MNIST is not installed ({bench.FASHION_MNIST} is absent): "
    "apt-get install dataset-fashion-mnist",
)
def test_fashion_mnist_is_dynamically_binarized() -> None:
    (data,), notes = bench.load_data("fashion-mnist")
    assert data.dynamic and not notes
    s = data.splits
    assert (len(s.x_train), len(s.x_valid), len(s.x_test)) == (50000, 10000, 10000)
    # training rows keep their grey levels (binarized per batch); validation and test are binary
    assert bool(((s.x_train > 0) & (s.x_train < 1)).any())
    assert set(s.x_test.unique().tolist()) == {0.0, 1.0} and set(s.x_valid.unique().tolist()) == {0.0, 1.0}
    settings = Settings.parse({**TINY, "data": "fashion-mnist", "seeds": "1"})
    run = bench.train_one("bernoulli-linear", "disarm", 0, s, settings, dynamic=True)
    assert run.steps == 3 and math.isfinite(run.test_elbo) and len(run.step_seconds) == 3


def test_paired_step_times_interleave_the_estimators(tmp_path: Path) -> None:
    pytest.importorskip("rich")
    request = CompareRequest(
        "discrete-vae-benchmark",
        estimators=("reinforce-loo", "disarm", "indecater", "carms"),
        out=tmp_path,
        options={**TINY, "budget": "steptime", "models": "bernoulli-linear"},
    )
    RUNNERS["discrete-vae-benchmark"](request)
    table = (tmp_path / "table.md").read_text()
    assert "over 3 interleaved rounds" in table
    assert "| reinforce-loo | 4 | 4 |" in table and "| 1.00 |" in table  # RLOO is the reference
    assert "| disarm | 2 | 4 |" in table and "skipped: needs" in table and "n/a" in table
