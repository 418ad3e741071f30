"""Mixtures: diagonal multivariate transport through conditional CDFs, and the has_rsample contract."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import special, stats
from torch.distributions import Beta, Categorical, Independent, Normal

import reparam as rp
from reparam.distributions import MixtureSameFamily

LOGITS = [0.3, -0.5, 0.0]
LOCS = [[-2.0, 1.0], [0.5, -1.5], [2.5, 2.0]]
SCALES = [[0.6, 1.2], [1.0, 0.4], [0.8, 0.9]]


def _mixture(logits: torch.Tensor, locs: torch.Tensor, scales: torch.Tensor) -> MixtureSameFamily:
    return MixtureSameFamily(Categorical(logits=logits), Independent(Normal(locs, scales), 1))


def test_diagonal_samples_match_each_marginal() -> None:
    q = _mixture(torch.tensor(LOGITS), torch.tensor(LOCS), torch.tensor(SCALES))
    z = q.rsample((3000,)).detach().numpy()
    w = special.softmax(LOGITS)
    for d in range(2):
        cdf = lambda x, d=d: sum(  # noqa: E731
            w[k] * stats.norm(LOCS[k][d], SCALES[k][d]).cdf(x) for k in range(3)
        )
        assert stats.kstest(z[:, d], cdf).pvalue > 1e-3


def test_diagonal_gradient_unbiased_for_a_cross_dimension_cost() -> None:
    # f(z) = z_0 z_1 couples the coordinates, so the conditional-CDF chain (z_1 depends on theta
    # through z_0) matters: E[f] = sum_k w_k mu_k0 mu_k1, with
    #   d/d mu_k0 = w_k mu_k1,  d/d logit_j = w_j (mu_j0 mu_j1 - E[f]),  d/d sigma = 0.
    # Per-replica one-sample gradients; |mean - exact| < 5 standard errors.
    n = 6000
    logits = torch.tensor(LOGITS, dtype=torch.float64).repeat(n, 1).requires_grad_()
    locs = torch.tensor(LOCS, dtype=torch.float64).repeat(n, 1, 1).requires_grad_()
    scales = torch.tensor(SCALES, dtype=torch.float64).repeat(n, 1, 1).requires_grad_()
    q = _mixture(logits, locs, scales)
    rp.expect(lambda z: z[..., 0] * z[..., 1], q, rp.Pathwise(), num_samples=1).sum().backward()
    w = special.softmax(LOGITS)
    mu = np.array(LOCS)
    value = float((w * mu[:, 0] * mu[:, 1]).sum())
    exact = {
        "logits": w * (mu[:, 0] * mu[:, 1] - value),
        "locs": np.stack([w * mu[:, 1], w * mu[:, 0]], -1),
        "scales": np.zeros((3, 2)),
    }
    for name, param in (("logits", logits), ("locs", locs), ("scales", scales)):
        grads = param.grad.numpy()
        mean, se = grads.mean(0), grads.std(0, ddof=1) / math.sqrt(n)
        assert np.all(np.abs(mean - exact[name]) < 5 * se + 1e-9), (name, mean, exact[name], se)


def test_univariate_implicit_gradient_matches_quantile_derivative() -> None:
    # For a one-component "mixture" the transport is the component's own: dz/dloc = 1.
    loc = torch.tensor([0.7], dtype=torch.float64, requires_grad=True)
    q = MixtureSameFamily(Categorical(logits=torch.zeros(1, dtype=torch.float64)), Normal(loc, 2.0))
    z = q.rsample((7,))
    (grad,) = torch.autograd.grad(z.sum(), loc)
    assert float(grad) == pytest.approx(7.0, rel=1e-12)


def test_components_without_cdf_have_no_rsample() -> None:
    q = MixtureSameFamily(Categorical(logits=torch.zeros(2)), Beta(torch.ones(2), torch.ones(2)))
    assert not q.has_rsample
    with pytest.raises(NotImplementedError, match="ScoreFunction"):
        q.rsample()
    with pytest.raises(TypeError, match="rsample"):
        rp.expect(lambda z: z, q, rp.Pathwise())


def test_expand_keeps_rsample() -> None:
    q = _mixture(torch.tensor(LOGITS), torch.tensor(LOCS), torch.tensor(SCALES)).expand((4,))
    assert isinstance(q, MixtureSameFamily) and q.rsample((2,)).shape == (2, 4, 2)
