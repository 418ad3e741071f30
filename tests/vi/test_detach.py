"""detach_parameters: same family, same values, no gradient through the parameters."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import (
    Gamma,
    Independent,
    LowRankMultivariateNormal,
    MultivariateNormal,
    Normal,
)

import reparam as rp


def _cases(loc: torch.Tensor, scale: torch.Tensor) -> list[torch.distributions.Distribution]:
    tril = torch.tril(torch.ones(3, 3)) * 0.3 + torch.diag_embed(scale)
    return [
        Normal(loc, scale),
        Independent(Normal(loc, scale), 1),
        MultivariateNormal(loc, scale_tril=tril),
        MultivariateNormal(loc, covariance_matrix=tril @ tril.T),
        LowRankMultivariateNormal(loc, torch.ones(3, 1) * scale.unsqueeze(-1), scale),
    ]


@pytest.mark.parametrize("index", range(5))
def test_detached_copy(index: int) -> None:
    loc = torch.tensor([0.1, -0.2, 0.3], requires_grad=True)
    scale = torch.tensor([0.5, 1.0, 1.5], requires_grad=True)
    q = _cases(loc, scale)[index]
    d = rp.vi.detach_parameters(q)
    assert type(d) is type(q)
    assert d.batch_shape == q.batch_shape and d.event_shape == q.event_shape
    z = q.rsample((6,))
    assert torch.allclose(d.log_prob(z), q.log_prob(z), atol=1e-6)
    # gradient reaches loc / scale only through z, not through the density's parameters
    assert not d.log_prob(z.detach()).requires_grad
    assert d.log_prob(z).requires_grad
    assert q.log_prob(z.detach()).requires_grad


def test_unsupported_family_names_fix() -> None:
    with pytest.raises(TypeError, match="register_detach"):
        rp.vi.detach_parameters(Gamma(torch.ones(2), torch.ones(2)))
    with pytest.raises(TypeError, match="Distribution"):
        rp.vi.detach_parameters(torch.ones(2))  # type: ignore[arg-type]
