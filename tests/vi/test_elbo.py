"""reparam.vi.elbo on the conjugate Gaussian model of conftest.py (closed-form posterior and
evidence).

Derivations used below:
* At q = p(z | x): log p(x, z) - log q(z) = log p(x) for every z, so the Monte Carlo form of
  the ELBO equals log p(x) exactly (zero variance); the analytic-KL form
  E_q[log p(x|z)] - KL(q || p) has the same expectation and is checked within 5 standard
  errors of its per-sample spread.
* For any q: ELBO(q) = log p(x) - KL(q || p(z|x)), so the exact ELBO gradient is
  -grad KL(q || posterior), computed by autograd through torch's closed-form KL.
* STL drops -grad_phi log q_phi(z)|_z, whose expectation is zero: unbiased; at q = posterior
  the remaining path term grad_z [log p(x,z) - log q(z)] dz/dphi is zero sample by sample.
"""

from __future__ import annotations

import math

import pytest
import torch
from seeds import seeded
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

import reparam as rp
from reparam.vi import elbo


def _z_test(samples: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    se = samples.std(0) / math.sqrt(samples.shape[0])
    return (samples.mean(0) - exact).abs() / se.clamp_min(1e-12)


def test_elbo_at_posterior_is_log_evidence_mc_form(conjugate) -> None:
    q = conjugate.posterior()
    value = elbo(conjugate.log_joint, q, num_samples=64, kl="mc")
    assert torch.allclose(value, conjugate.log_evidence, atol=1e-8)
    # the same with the prior split out and the KL as Monte Carlo
    value = elbo(conjugate.log_likelihood, q, num_samples=64, prior=conjugate.prior, kl="mc")
    assert torch.allclose(value, conjugate.log_evidence, atol=1e-8)


def test_elbo_at_posterior_analytic_kl_within_mc_error(conjugate) -> None:
    q = conjugate.posterior()
    # 500 independent estimates of 4 samples each: their mean has standard error std / sqrt(500).
    estimates = torch.stack(
        [elbo(conjugate.log_likelihood, q, num_samples=4, prior=conjugate.prior) for _ in range(500)]
    )
    assert float(_z_test(estimates, conjugate.log_evidence)) < 5
    # and the analytic-entropy form of the prior=None ELBO
    estimates = torch.stack([elbo(conjugate.log_joint, q, num_samples=4) for _ in range(500)])
    assert float(_z_test(estimates, conjugate.log_evidence)) < 5


def test_elbo_below_evidence_away_from_posterior(conjugate) -> None:
    q = MultivariateNormal(conjugate.post_mean + 0.3, conjugate.post_cov * 2.0)
    exact = conjugate.log_evidence - kl_divergence(q, conjugate.posterior())
    value = elbo(conjugate.log_joint, q, num_samples=20000, kl="mc")
    assert float(exact) < float(conjugate.log_evidence)
    assert abs(float(value - exact)) < 0.05


def _gradients(conjugate, stl: bool, at_posterior: bool, estimator=None, repeats: int = 400):
    loc = (conjugate.post_mean + (0.0 if at_posterior else 0.4)).clone().requires_grad_()
    log_scale = (0.5 * torch.diagonal(conjugate.post_cov).log() + (0.0 if at_posterior else 0.3)).clone()
    log_scale.requires_grad_()
    grads = []
    for _ in range(repeats):
        q = Independent(Normal(loc, log_scale.exp()), 1)
        value = elbo(conjugate.log_joint, q, estimator, num_samples=4, kl="mc", stl=stl)
        grads.append(torch.cat(torch.autograd.grad(value, [loc, log_scale])))
    q = Independent(Normal(loc, log_scale.exp()), 1)
    exact_value = conjugate.log_evidence - kl_divergence(
        MultivariateNormal(loc, scale_tril=torch.diag_embed(log_scale.exp())), conjugate.posterior()
    )
    exact = torch.cat(torch.autograd.grad(exact_value, [loc, log_scale]))
    del q
    return torch.stack(grads), exact


@pytest.mark.parametrize("stl", [False, True])
def test_elbo_gradient_unbiased(conjugate, stl: bool) -> None:
    grads, exact = _gradients(conjugate, stl=stl, at_posterior=False)
    assert bool((_z_test(grads, exact) < 5).all())


def test_stl_unbiased_with_full_rank_family(conjugate) -> None:
    family = rp.vi.FullRankGaussian(
        2, init_scale=0.3, init_loc=conjugate.post_mean + 0.2, dtype=torch.float64
    )
    params = list(family.parameters())
    grads = []
    for _ in range(400):
        value = elbo(conjugate.log_joint, family(), num_samples=4, stl=True)
        grads.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(value, params)]))
    exact_value = conjugate.log_evidence - kl_divergence(family(), conjugate.posterior())
    exact = torch.cat([g.reshape(-1) for g in torch.autograd.grad(exact_value, params)])
    grads = torch.stack(grads)
    # the strictly-upper off-diagonal entries are unused by the family: zero in both
    used = grads.std(0) > 0
    assert torch.allclose(exact[~used], torch.zeros_like(exact[~used]))
    assert bool((_z_test(grads[:, used], exact[used]) < 5).all())


def test_stl_zero_variance_at_posterior(conjugate) -> None:
    # mean-field can't be the posterior here; use the exact full-covariance posterior.
    family = rp.vi.FullRankGaussian(2, dtype=torch.float64)
    with torch.no_grad():
        chol = torch.linalg.cholesky(conjugate.post_cov)
        family.loc.copy_(conjugate.post_mean)
        family.log_diag.copy_(torch.diagonal(chol).log())
        family.off_diag.copy_(torch.tril(chol, -1))
    params = list(family.parameters())
    stl = torch.autograd.grad(elbo(conjugate.log_joint, family(), num_samples=8, stl=True), params)
    plain = torch.autograd.grad(elbo(conjugate.log_joint, family(), num_samples=8, kl="mc"), params)
    assert max(float(g.abs().max()) for g in stl) < 1e-8
    assert max(float(g.abs().max()) for g in plain) > 1e-3  # the score term is what STL removes


def test_data_scale_matches_full_batch(conjugate) -> None:
    # Partition the 20 rows into 4 batches of 5. With the same z draws (same seed), the mean of
    # elbo(batch b, data_scale=4) over b is mean_b[4 ll_b(z)] - KL = ll_full(z) - KL, i.e. the
    # full-batch ELBO; the same holds for the gradient. Scaling the KL too would break it.
    loc = torch.tensor([0.2, -0.4], dtype=torch.float64, requires_grad=True)
    scale = torch.tensor([0.5, 0.7], dtype=torch.float64)
    q = Independent(Normal(loc, scale), 1)
    x = conjugate.x
    torch.manual_seed(seeded(11))
    full = elbo(lambda z: conjugate.log_likelihood(z, x), q, num_samples=16, prior=conjugate.prior)
    (full_grad,) = torch.autograd.grad(full, loc)
    values, grads = [], []
    for b in range(4):
        torch.manual_seed(seeded(11))
        part = elbo(
            lambda z, b=b: conjugate.log_likelihood(z, x[5 * b : 5 * b + 5]),
            q,
            num_samples=16,
            prior=conjugate.prior,
            data_scale=4.0,
        )
        values.append(part.detach())
        grads.append(torch.autograd.grad(part, loc)[0])
    assert torch.allclose(torch.stack(values).mean(), full.detach(), atol=1e-9)
    assert torch.allclose(torch.stack(grads).mean(0), full_grad, atol=1e-9)
    # and with the Monte Carlo KL
    torch.manual_seed(seeded(12))
    full_mc = elbo(
        lambda z: conjugate.log_likelihood(z, x), q, num_samples=16, prior=conjugate.prior, kl="mc"
    )
    parts = []
    for b in range(4):
        torch.manual_seed(seeded(12))
        parts.append(
            elbo(
                lambda z, b=b: conjugate.log_likelihood(z, x[5 * b : 5 * b + 5]),
                q,
                num_samples=16,
                prior=conjugate.prior,
                kl="mc",
                data_scale=4.0,
            ).detach()
        )
    assert torch.allclose(torch.stack(parts).mean(), full_mc.detach(), atol=1e-9)


def test_elbo_with_score_function_and_measure_valued_unbiased(conjugate) -> None:
    loc = (conjugate.post_mean + 0.3).clone().requires_grad_()
    scale = torch.tensor([0.4, 0.3], dtype=torch.float64)
    exact_value = conjugate.log_evidence - kl_divergence(
        MultivariateNormal(loc, scale_tril=torch.diag(scale)), conjugate.posterior()
    )
    (exact,) = torch.autograd.grad(exact_value, loc)
    for estimator in (rp.ScoreFunction(baseline=rp.baselines.LeaveOneOut()), rp.MeasureValued()):
        grads = []
        for _ in range(300):
            q = Independent(Normal(loc, scale), 1)
            value = elbo(conjugate.log_likelihood, q, estimator, num_samples=8, prior=conjugate.prior)
            grads.append(torch.autograd.grad(value, loc)[0])
        assert bool((_z_test(torch.stack(grads), exact) < 5).all()), estimator


def test_errors(conjugate) -> None:
    q = conjugate.posterior()
    with pytest.raises(ValueError, match="prior"):
        elbo(conjugate.log_joint, q, data_scale=2.0)
    with pytest.raises(ValueError, match="kl"):
        elbo(conjugate.log_joint, q, kl="exact")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="data_scale"):
        elbo(conjugate.log_likelihood, q, prior=conjugate.prior, data_scale=float("nan"))
    with pytest.raises(TypeError, match="log_joint"):
        elbo(3, q)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="prior"):
        elbo(conjugate.log_likelihood, q, prior="normal")  # type: ignore[arg-type]


@pytest.mark.parametrize("standard", [True, False])
def test_mean_field_kl_fast_path_matches_torch(standard: bool) -> None:
    # elbo's closed-form KL for diagonal Gaussians (prior constants cached per prior object)
    # must equal torch's registered KL in value and gradient, and notice in-place prior edits.
    from reparam.vi.elbo import _mean_field_kl

    loc = torch.randn(5, dtype=torch.float64, requires_grad=True)
    scale = (torch.rand(5, dtype=torch.float64) + 0.2).requires_grad_()
    q = Independent(Normal(loc, scale), 1)
    if standard:
        prior = Independent(
            Normal(torch.zeros(5, dtype=torch.float64), torch.ones(5, dtype=torch.float64)), 1
        )
    else:
        prior = Independent(
            Normal(torch.randn(5, dtype=torch.float64), torch.rand(5, dtype=torch.float64) + 0.5), 1
        )
    for _ in range(2):  # second call uses the cache
        fast, slow = _mean_field_kl(q, prior), kl_divergence(q, prior)
        assert torch.allclose(fast, slow)
        fast_grads = torch.autograd.grad(fast, [loc, scale])
        slow_grads = torch.autograd.grad(slow, [loc, scale])
        for a, b in zip(fast_grads, slow_grads, strict=True):
            assert torch.allclose(a, b)
    with torch.no_grad():
        prior.base_dist.loc.add_(0.5)
        prior.base_dist.scale.mul_(2.0)
    assert torch.allclose(_mean_field_kl(q, prior), kl_divergence(q, prior))
    # a learnable prior or another family falls back to torch's registry
    learnable = Independent(Normal(torch.zeros(5, dtype=torch.float64, requires_grad=True), 1.0), 1)
    assert _mean_field_kl(q, learnable) is None
