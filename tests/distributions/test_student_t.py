"""StudentT: df gradient through a log-space gamma stays finite for small df; shapes."""

from __future__ import annotations

import torch

from reparam.distributions import StudentT


def test_small_df_gives_finite_gradients() -> None:
    # df = 0.05 has tails beyond float32's range (|t| > 3e38 with probability ~1e-3), so float64.
    df = torch.tensor([0.05, 1.0, 1e4], dtype=torch.float64, requires_grad=True)
    z = StudentT(df, 0.0, 1.0).rsample((3000,))
    assert bool(torch.isfinite(z).all())
    (grad,) = torch.autograd.grad(torch.atan(z).pow(2).sum(), df)
    assert bool(torch.isfinite(grad).all())


def test_loc_scale_gradients_are_the_location_scale_ones() -> None:
    loc = torch.tensor(0.5, requires_grad=True)
    scale = torch.tensor(2.0, requires_grad=True)
    z = StudentT(torch.tensor(3.0), loc, scale).rsample((10,))
    g_loc, g_scale = torch.autograd.grad(z.sum(), (loc, scale))
    assert float(g_loc) == 10.0
    torch.testing.assert_close(g_scale, ((z.detach() - 0.5) / 2.0).sum())
    assert isinstance(StudentT(3.0).expand((4,)), StudentT)
