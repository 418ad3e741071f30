"""The demo's conjugate model: closed forms checked against each other and against fitting."""

from __future__ import annotations

import math

import torch

from reparam.demo.fitting_normal import ConjugateModel


def test_elbo_at_exact_posterior_equals_log_evidence() -> None:
    x = torch.tensor([1.0, 2.5, 0.3, 1.7], dtype=torch.float64)
    model = ConjugateModel(x, noise=0.8, prior_scale=2.0)
    mean, var = model.posterior
    assert abs(model.elbo(mean, math.sqrt(var)) - model.log_evidence()) < 1e-9
    # Anywhere else the ELBO is strictly lower (the gap is KL(q || posterior)).
    assert model.elbo(mean + 0.1, math.sqrt(var)) < model.log_evidence()
    assert model.elbo(mean, 2 * math.sqrt(var)) < model.log_evidence()


def test_neg_log_joint_matches_closed_form_elbo() -> None:
    # E_q[-log p(x, theta)] - H[q] estimated with many samples equals -ELBO.
    x = torch.tensor([1.0, 2.5, 0.3], dtype=torch.float64)
    model = ConjugateModel(x, noise=1.1, prior_scale=3.0)
    mu, sigma = 0.7, 0.4
    theta = mu + sigma * torch.randn(200000, dtype=torch.float64)
    costs = model.neg_log_joint(theta)
    entropy = 0.5 * math.log(2 * math.pi * math.e * sigma**2)
    estimate = float(costs.mean()) - entropy
    stderr = float(costs.std()) / math.sqrt(len(costs))
    assert abs(estimate + model.elbo(mu, sigma)) < 5 * stderr


def test_demo_fit_recovers_posterior_and_collapses_naive_sigma(tmp_path) -> None:
    # The demo's own claim, at its own settings: both estimators reach the exact posterior and
    # the naive objective's sigma falls far below the starting value of 1. Thresholds from the
    # run-to-run scatter of the final values over 30 seeds (posterior mean 14.124, sd 0.148;
    # measured with fitting_normal._optimise on the demo's loss, 1000 steps, seeds 0-29):
    #   final mu - mean: sd 0.0015 (pathwise), 0.0019 (score function); |.| < 0.01 is 5.3 sd;
    #   final sigma / sd - 1: pathwise mean 0.0003, sd 0.0046, so |.| < 0.03 is 6.5 sd;
    #   score function mean 0.013, sd 0.030 (max |.| 0.12 in 30), so |.| < 0.16 is 4.9 sd from
    #   its mean. Normal false-alarm rates: 1e-7, 1e-10 and 1e-6 per check (the sds come from
    #   30 runs, so they are known to about 13%).
    import io

    from rich.console import Console

    from reparam.demo import fitting_normal
    from reparam.demo.report import Report

    report = Report(tmp_path, "test")
    curves = fitting_normal.run(Console(file=io.StringIO()), tmp_path, report, steps=1000, repeats=10)
    x = fitting_normal.radius_data()
    mean, var = ConjugateModel(x, noise=float(x.std())).posterior
    for name, sd_tolerance in (("pathwise", 0.03), ("score function (leave-one-out)", 0.16)):
        assert abs(curves[name].mu[-1] - mean) < 0.01, name
        assert abs(curves[name].sigma[-1] / math.sqrt(var) - 1) < sd_tolerance, name
    assert curves["naive"].sigma[-1] < 0.2
    assert (tmp_path / "fit-normal.png").is_file()
