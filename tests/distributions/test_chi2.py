"""Chi2: its gradient in df is the gamma's at alpha = df/2, halved (chain rule)."""

from __future__ import annotations

import torch

from reparam.distributions import Chi2
from reparam.distributions._gamma_grad import standard_gamma_grad


def test_df_gradient_is_half_the_gamma_gradient() -> None:
    df = torch.tensor([1e-3, 4.0, 2e4], dtype=torch.float64, requires_grad=True)
    z = Chi2(df).rsample()
    (grad,) = torch.autograd.grad(z.sum(), df)
    # z = 2x, x ~ Gamma(df/2, 1): dz/ddf = 2 * dx/dalpha * 1/2.
    expected = standard_gamma_grad(z.detach() / 2, df.detach() / 2)
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-300)
    assert isinstance(Chi2(df).expand((2, 3)), Chi2)
