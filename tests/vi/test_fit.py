"""reparam.vi.fit recovers the exact posterior of the conjugate model (conftest.py).

Full-rank and low-rank (rank 1 suffices in 2 dims: any 2x2 covariance is w w^T + a positive
diagonal) families can represent p(z | x) exactly, so the ELBO optimum is the posterior itself.
The mean-field optimum of KL(q || p) for a Gaussian p with precision P is known in closed form:
mean = posterior mean, variances 1 / P_dd (Bishop, PRML, section 10.1.2). With sticking the
landing the gradient noise vanishes at the optimum for the exact families, so the tolerance is
set by the optimizer; for mean-field a cosine-decayed step size averages the remaining noise.
"""

from __future__ import annotations

import pytest
import torch
from seeds import seeded

import reparam as rp


def _covariance(q: torch.distributions.Distribution) -> torch.Tensor:
    if hasattr(q, "covariance_matrix"):
        return q.covariance_matrix
    return torch.diag_embed(q.variance)


@pytest.mark.parametrize("name", ["mean-field", "full-rank", "low-rank"])
def test_fit_recovers_posterior(conjugate, name: str) -> None:
    family = rp.vi.make_family(name, 2, init_scale=0.5, dtype=torch.float64)
    steps, lr = (1000, 0.02) if name == "mean-field" else (500, 0.05)
    result = rp.vi.fit(
        conjugate.log_joint, family, steps, num_samples=16, stl=True, lr=lr, schedule="cosine", progress=False
    )
    if name == "mean-field":
        mean = conjugate.post_mean
        cov = torch.diag(1.0 / torch.diagonal(torch.linalg.inv(conjugate.post_cov)))
    else:
        mean, cov = conjugate.post_mean, conjugate.post_cov
    assert len(result.history) == steps
    assert torch.allclose(result.q.mean, mean, atol=2e-2)
    assert torch.allclose(_covariance(result.q), cov, atol=5e-2 * float(cov.diagonal().max()))
    assert not result.q.mean.requires_grad
    # the loss approaches -log p(x) (exact families) from above
    tail = torch.tensor(result.history[-100:]).mean()
    assert float(tail) >= float(-conjugate.log_evidence) - 0.05


def test_fit_with_minibatches(conjugate) -> None:
    # Batches of 5 rows out of 20: data_scale defaults to 20 / 5 = 4, which makes every step's
    # gradient unbiased for the full-data ELBO; the optimum is still the exact posterior.
    family = rp.vi.FullRankGaussian(2, init_scale=0.5, dtype=torch.float64)
    result = rp.vi.fit(
        conjugate.log_likelihood,
        family,
        1000,
        prior=conjugate.prior,
        data=conjugate.x,
        batch_size=5,
        num_samples=8,
        lr=0.03,
        schedule="cosine",
        progress=False,
        generator=torch.Generator().manual_seed(seeded(0)),
    )
    assert torch.allclose(result.q.mean, conjugate.post_mean, atol=0.05)
    assert torch.allclose(result.q.covariance_matrix, conjugate.post_cov, atol=0.02)


def test_fit_plain_callable_with_params(conjugate) -> None:
    loc = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    log_scale = torch.zeros(2, dtype=torch.float64, requires_grad=True)

    def family() -> torch.distributions.Distribution:
        return torch.distributions.Independent(torch.distributions.Normal(loc, log_scale.exp()), 1)

    def kl_to_posterior() -> float:  # exact: -ELBO = KL(q || posterior) - log evidence
        with torch.no_grad():
            q = torch.distributions.MultivariateNormal(loc, torch.diag(torch.exp(2 * log_scale)))
            return float(torch.distributions.kl_divergence(q, conjugate.posterior()))

    start = kl_to_posterior()
    result = rp.vi.fit(conjugate.log_joint, family, 300, params=[loc, log_scale], lr=0.05, progress=False)
    assert result.family is None
    # The exact objective, not the one-sample history (comparing two noisy estimates failed
    # under some seeds): KL falls from 7-9.6 to 0.32-0.39 (the mean-field floor of this
    # correlated posterior) over seed offsets 0-7, so 10% of the start leaves a factor 2.
    assert kl_to_posterior() < 0.1 * start


def test_fit_errors(conjugate) -> None:
    family = rp.vi.MeanFieldGaussian(2, dtype=torch.float64)
    with pytest.raises(ValueError, match="steps"):
        rp.vi.fit(conjugate.log_joint, family, 0)
    with pytest.raises(ValueError, match="prior"):
        rp.vi.fit(conjugate.log_likelihood, family, 5, data=conjugate.x, batch_size=5)
    with pytest.raises(TypeError, match="params"):
        rp.vi.fit(conjugate.log_joint, lambda: family(), 5)
    with pytest.raises(ValueError, match="batch_size"):
        rp.vi.fit(conjugate.log_likelihood, family, 5, prior=conjugate.prior, data=conjugate.x, batch_size=50)
    with pytest.raises(ValueError, match="schedule"):
        rp.vi.fit(conjugate.log_joint, family, 5, schedule="linear")


def test_fit_non_finite_loss_raises() -> None:
    family = rp.vi.MeanFieldGaussian(1)
    with pytest.raises(FloatingPointError, match="step 0"):
        rp.vi.fit(lambda z: z.sum(-1) * float("nan"), family, 3, progress=False)
