"""Normalizing flows (zuko) as variational families: rp.expect, rp.vi.fit, STL detaching."""

from __future__ import annotations

import math
import sys

import pytest
import torch
from seeds import seeded

import reparam as rp
from reparam._optional import MissingExtraError
from reparam.vi.flows import FlowFamily, is_zuko_flow, zuko_flow

zuko = pytest.importorskip("zuko", reason="the [flows] extra (zuko) is not installed")


def _perturbed_maf(features: int = 2, context: int = 0) -> torch.nn.Module:
    """A small MAF moved away from its near-identity initialisation, so q is not Gaussian."""
    flow = zuko.flows.MAF(features, context, transforms=2, hidden_features=(16, 16))
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.15 * torch.randn_like(p))
    return flow


def _cost(z: torch.Tensor) -> torch.Tensor:
    # interaction between the two coordinates, bounded growth
    return torch.sin(z[..., 0]) * z[..., 1] + 0.5 * z[..., 0].square()


def test_pathwise_through_a_zuko_flow_matches_quadrature() -> None:
    torch.manual_seed(seeded(0))
    flow = _perturbed_maf()
    params = list(flow.parameters())
    directions = [torch.randn_like(p) for p in params]

    # exact: d/dtheta of the integral of f q over a fine grid (q decays like a Gaussian; the
    # grid [-12, 12]^2 with spacing 0.03 leaves a quadrature error far below the Monte Carlo SE)
    axis = torch.linspace(-12.0, 12.0, 801, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis).float()
    cell = (axis[1] - axis[0]).item() ** 2
    q = flow()
    mass = q.log_prob(grid).exp()
    assert abs(mass.sum().item() * cell - 1.0) < 1e-3  # the grid holds q's mass
    exact_value = (mass * _cost(grid)).sum() * cell
    exact = torch.autograd.grad(exact_value, params)
    exact_projection = sum((g * v).sum() for g, v in zip(exact, directions, strict=True))

    projections = []
    for _ in range(24):
        value = rp.expect(_cost, flow(), rp.Pathwise(), 256)
        grads = torch.autograd.grad(value, params)
        projections.append(sum((g * v).sum() for g, v in zip(grads, directions, strict=True)))
    estimates = torch.stack(projections)
    se = estimates.std() / math.sqrt(len(estimates))
    z = (estimates.mean() - exact_projection) / se
    # |t| < 5 with 23 degrees of freedom: two-sided false-alarm rate about 5e-5 per test
    assert abs(z.item()) < 5.0, (estimates.mean().item(), exact_projection.item(), se.item())


def test_fit_accepts_a_zuko_flow_directly_with_stl() -> None:
    torch.manual_seed(seeded(1))
    cov = torch.tensor([[1.0, 0.8], [0.8, 1.0]])
    target = torch.distributions.MultivariateNormal(torch.tensor([1.0, -1.0]), cov)
    flow = zuko.flows.MAF(2, transforms=1, hidden_features=(16,))
    assert is_zuko_flow(flow)
    result = rp.vi.fit(target.log_prob, flow, steps=250, num_samples=16, lr=0.02, stl=True, progress=False)
    assert result.family is flow
    # the fitted q is the flow's distribution rebuilt with detached parameters
    assert not any(t.requires_grad for t in [result.q.rsample((3,))])
    # a one-layer affine MAF contains the Gaussian target, so the ELBO (<= log Z = 0) ends near
    # 0; the fit starts near -1.6 (q ~ N(0, I)). -0.15 leaves room for 250 noisy Adam steps
    # while catching a fit that does not learn (estimate SE with 4096 samples: ~0.005).
    with torch.no_grad():
        final = rp.vi.elbo(target.log_prob, flow(), rp.Pathwise(), 4096)
    assert -0.15 < final.item() <= 0.02


def test_detached_flow_has_the_same_density_and_no_parameter_path() -> None:
    torch.manual_seed(seeded(2))
    family = FlowFamily(_perturbed_maf())
    q = family()
    z = q.rsample((8,))
    log_q = q.log_prob(z)
    q_sg = rp.vi.detach_parameters(q)
    log_q_sg = q_sg.log_prob(z)
    torch.testing.assert_close(log_q_sg, log_q)  # same float ops, same values
    # only the sample path remains: nothing when z is detached, the same z-gradient otherwise
    assert not q_sg.log_prob(z.detach()).requires_grad
    z_leaf = z.detach().requires_grad_()
    (g_sg,) = torch.autograd.grad(q_sg.log_prob(z_leaf).sum(), z_leaf)
    (g,) = torch.autograd.grad(q.log_prob(z_leaf).sum(), z_leaf)
    torch.testing.assert_close(g_sg, g)


def test_stl_elbo_has_the_value_of_the_standard_elbo() -> None:
    family = FlowFamily(_perturbed_maf())
    target = torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2))
    torch.manual_seed(seeded(3))
    plain = rp.vi.elbo(target.log_prob, family(), rp.Pathwise(), 32)
    torch.manual_seed(seeded(3))
    stl = rp.vi.elbo(target.log_prob, family(), rp.Pathwise(), 32, stl=True)
    torch.testing.assert_close(stl, plain)
    stl.backward()
    assert all(p.grad is not None for p in family.parameters())


def test_context_is_passed_and_detached() -> None:
    context = torch.randn(5, 3, requires_grad=True)
    family = FlowFamily(_perturbed_maf(2, context=3), context=context)
    q = family()
    assert q.batch_shape == (5,) and q.event_shape == (2,)
    z = q.rsample((4,))
    assert z.shape == (4, 5, 2)
    log_q_sg = rp.vi.detach_parameters(q).log_prob(z.detach())
    assert not log_q_sg.requires_grad  # the context (the encoder's output) is detached too
    value = rp.expect(_cost, q, rp.Pathwise(), 4)
    (grad,) = torch.autograd.grad(value.sum(), context)
    assert torch.isfinite(grad).all()


def test_errors_name_the_fix() -> None:
    with pytest.raises(TypeError, match="nn.Module"):
        FlowFamily(lambda: None)  # type: ignore[arg-type]

    class NotAFlow(torch.nn.Module):
        def forward(self) -> torch.Tensor:
            return torch.zeros(2)

    with pytest.raises(TypeError, match="must return a torch.distributions.Distribution"):
        FlowFamily(NotAFlow())()
    raw = zuko.flows.MAF(2, transforms=1)()
    FlowFamily(zuko.flows.MAF(2, transforms=1))()  # registers the detacher for this type
    with pytest.raises(TypeError, match="FlowFamily"):
        rp.vi.detach_parameters(raw)
    with pytest.raises(ValueError, match="unknown flow"):
        zuko_flow("glow", 2)
    with pytest.raises(ValueError, match="features"):
        zuko_flow("maf", 0)
    assert isinstance(zuko_flow("nsf", 2, transforms=1)(), torch.distributions.Distribution)


def test_missing_zuko_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zuko", None)
    with pytest.raises(MissingExtraError, match=r"reparam\[flows\]"):
        zuko_flow("maf", 2)
