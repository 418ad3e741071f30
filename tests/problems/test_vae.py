"""The vae-snr study: its measured claims, and the ``reparam compare`` runner's outputs."""

from __future__ import annotations

from pathlib import Path

import torch

from reparam.models.vae import VAE
from reparam.problems import RUNNERS, CompareRequest
from reparam.problems.vae import VARIANTS, encoder_gradient_stats, run_study

BY_NAME = {v.name: v for v in VARIANTS}


def test_iwae_encoder_snr_falls_with_k_and_dreg_restores_it() -> None:
    # Rainforth et al. (2018): the standard IWAE encoder gradient has SNR O(1/sqrt(k)); Tucker
    # et al. (2018): DReG's does not decay. With 40 estimates the SNR estimate of a coordinate
    # whose true mean is 0 sits near sqrt(2 / (pi * 40)) = 0.13, so the measured ordering is
    # compressed but keeps its direction after 200 training steps.
    variants = tuple(BY_NAME[n] for n in ("iwae-1", "iwae-50", "dreg-50"))
    results = run_study(steps=200, checkpoints=(200,), repeats=40, variants=variants)
    snr = {r.variant: r.snr for r in results}
    assert snr["iwae-1"] > snr["iwae-50"]
    assert snr["dreg-50"] > snr["iwae-50"]


def test_gradient_stats_see_the_variance_fall_with_samples() -> None:
    # The mean of 5 i.i.d. pathwise estimates has 1/5 the variance of one; with 200 estimates
    # each variance estimate is within ~10% (relative standard error sqrt(2/199)), so "lower"
    # is a safe check of the statistics code; the SNR is positive and finite.
    model = VAE(input_dim=4, latent_dim=2, hidden=(5,))
    x = torch.bernoulli(torch.full((8, 4), 0.5))
    one = encoder_gradient_stats(model, x, BY_NAME["elbo"], repeats=200, step=0)
    five = encoder_gradient_stats(model, x, BY_NAME["pathwise-elbo-s5"], repeats=200, step=0)
    assert 0 < one.snr < float("inf") and five.variance < one.variance


def test_runner_prints_and_writes_table_and_plot(tmp_path: Path) -> None:
    RUNNERS["vae-snr"](CompareRequest("vae-snr", repeats=3, out=tmp_path, options={"steps": 10}))
    table = (tmp_path / "table.md").read_text()
    for variant in VARIANTS:
        assert f"| {variant.name} |" in table
    assert "IWAE encoder SNR falls with k" in table
    assert (tmp_path / "snr.png").read_bytes()[:4] == b"\x89PNG"
