"""The variational families build the distributions they document, with valid covariances."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Independent, LowRankMultivariateNormal, MultivariateNormal

import reparam as rp


def test_mean_field() -> None:
    family = rp.vi.MeanFieldGaussian(3, init_scale=0.5, init_loc=torch.tensor([1.0, 2.0, 3.0]))
    q = family()
    assert isinstance(q, Independent) and q.event_shape == (3,)
    assert torch.allclose(q.mean, torch.tensor([1.0, 2.0, 3.0]))
    assert torch.allclose(q.stddev, torch.full((3,), 0.5))
    assert len(list(family.parameters())) == 2


def test_full_rank_uses_lower_triangle_only() -> None:
    family = rp.vi.FullRankGaussian(3, init_scale=2.0)
    with torch.no_grad():
        family.off_diag.copy_(torch.arange(9.0).reshape(3, 3))
    q = family()
    assert isinstance(q, MultivariateNormal)
    tril = q.scale_tril
    assert torch.equal(tril, torch.tril(tril))
    assert torch.allclose(torch.diagonal(tril), torch.full((3,), 2.0))
    assert torch.allclose(tril[2, 0], torch.tensor(6.0))


def test_low_rank() -> None:
    family = rp.vi.LowRankGaussian(4, rank=2, init_scale=0.3)
    q = family()
    assert isinstance(q, LowRankMultivariateNormal)
    w = family.cov_factor.detach()
    assert torch.allclose(q.covariance_matrix, w @ w.T + 0.09 * torch.eye(4), atol=1e-6)
    # the factor starts nonzero, so its gradient is not identically zero
    q.log_prob(torch.ones(4)).backward()
    assert float(family.cov_factor.grad.abs().sum()) > 0


def test_errors() -> None:
    with pytest.raises(ValueError, match="dim"):
        rp.vi.MeanFieldGaussian(0)
    with pytest.raises(ValueError, match="rank"):
        rp.vi.LowRankGaussian(3, rank=4)
    with pytest.raises(ValueError, match="init_scale"):
        rp.vi.FullRankGaussian(2, init_scale=-1.0)
    with pytest.raises(ValueError, match="init_loc"):
        rp.vi.MeanFieldGaussian(2, init_loc=torch.zeros(3))
    with pytest.raises(ValueError, match="family"):
        rp.vi.make_family("diagonal", 2)
