"""Implicit reparameterization: agreement with the explicit trick, no gradient through the sampler,
shapes, and argument errors."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Bernoulli, Dirichlet, Normal, constraints

import reparam as rp
from reparam.distributions import Implicit


def test_same_per_sample_gradient_as_normal_rsample_for_the_same_z() -> None:
    # Normal: z = loc + scale * eps gives dz/dloc = 1, dz/dscale = eps = (z - loc)/scale; the
    # implicit formula -(dF/dtheta)/p yields exactly these for every z.
    loc = torch.tensor([0.3, -1.2], dtype=torch.float64, requires_grad=True)
    scale = torch.tensor([0.7, 2.5], dtype=torch.float64, requires_grad=True)
    explicit = Normal(loc, scale).rsample((50,))
    implicit = Implicit(Normal(loc, scale)).reparameterize(explicit.detach())
    torch.testing.assert_close(implicit, explicit.detach(), rtol=0, atol=0)
    for param in (loc, scale):
        for i in range(3):
            want = torch.autograd.grad(explicit[i].sum(), param, retain_graph=True)[0]
            got = torch.autograd.grad(implicit[i].sum(), param, retain_graph=True)[0]
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


class _DifferentiableSampler(Normal):
    """A sampler that (wrongly, for this test) carries its own gradient: 3x the true one."""

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        eps = torch.randn(self._extended_shape(sample_shape), dtype=self.loc.dtype)
        return 3.0 * self.loc + self.scale * eps - 2.0 * self.loc.detach()


def test_no_gradient_flows_through_the_sampler() -> None:
    loc = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    z = Implicit(_DifferentiableSampler(loc, 1.0)).rsample((10,))
    (grad,) = torch.autograd.grad(z.sum(), loc)
    # Implicit gradient of a location family: dz/dloc = 1 per sample, not the sampler's 3.
    assert float(grad) == pytest.approx(10.0, rel=1e-12)


def test_batched_shapes_and_expand() -> None:
    loc = torch.zeros(4, 3, requires_grad=True)
    q = Implicit(Normal(loc, 1.0))
    z = q.rsample((5,))
    assert z.shape == (5, 4, 3)
    z.sum().backward()
    torch.testing.assert_close(loc.grad, torch.full((4, 3), 5.0))
    assert q.expand((2, 4, 3)).rsample().shape == (2, 4, 3)
    assert q.has_rsample and q.support is constraints.real


def test_default_estimator_is_pathwise() -> None:
    loc = torch.tensor(1.0, requires_grad=True)
    rp.expect(lambda z: z**2, Implicit(Normal(loc, 1.0)), num_samples=8).backward()
    assert loc.grad is not None and torch.isfinite(loc.grad)


@pytest.mark.parametrize(
    ("dist", "match"),
    [
        ("not a distribution", "dist must be a torch.distributions.Distribution"),
        (Dirichlet(torch.ones(3)), "univariate"),
        (Bernoulli(0.3), "continuous"),
    ],
)
def test_bad_input_names_argument_and_fix(dist: object, match: str) -> None:
    with pytest.raises((TypeError, ValueError), match=match):
        Implicit(dist)  # type: ignore[arg-type]


def test_missing_cdf_suggests_alternatives() -> None:
    with pytest.raises(NotImplementedError, match=r"cdf\(\).*InverseCDF"):
        Implicit(torch.distributions.Beta(2.0, 3.0))
