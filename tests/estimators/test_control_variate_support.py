"""The conditional noise REBAR/RELAX rely on: z~ ~ p(z | b) must agree with b and have the same
marginal law as z, and the variance gradient must reach the control's parameters whatever the
sign or scale of the loss."""

from __future__ import annotations

import math

import torch

from reparam.estimators.control_variate_support import (
    attach_gradient,
    bernoulli_noise_pair,
    categorical_noise_pair,
)


def test_bernoulli_conditional_noise_agrees_with_b_and_has_the_right_marginal() -> None:
    # z = a + Logistic and z~ | b: H(z~) = b always. Marginally z~ ~ a + Logistic too (b is drawn
    # from its marginal), so E[z~] = a and E[sigmoid(z~ - a)] = 1/2 (the logistic CDF at 0 of the
    # noise); with n = 2e5 the standard errors are ~ 4e-3 and 6.5e-4: 5-se bounds.
    alpha = torch.tensor([-2.0, 0.0, 1.5], dtype=torch.float64)
    n = 200_000
    z, b, z_tilde = bernoulli_noise_pair(alpha, n)
    assert torch.equal((z_tilde > 0).to(b.dtype), b) and torch.equal((z > 0).to(b.dtype), b)
    se_mean = math.pi / math.sqrt(3) / math.sqrt(n)
    assert ((z_tilde.mean(0) - alpha).abs() < 5 * se_mean).all()
    se_cdf = 0.5 / math.sqrt(3 * n)  # sd of a Uniform(0, 1) over sqrt(n)
    assert ((torch.sigmoid(z_tilde - alpha).mean(0) - 0.5).abs() < 5 * se_cdf).all()
    assert torch.isfinite(z_tilde).all()


def test_bernoulli_conditional_noise_is_finite_at_extreme_logits() -> None:
    alpha = torch.tensor([-60.0, 60.0], requires_grad=True)
    _, b, z_tilde = bernoulli_noise_pair(alpha, 1000)
    z_tilde.sum().backward()
    assert torch.isfinite(z_tilde).all() and torch.isfinite(alpha.grad).all()
    assert (b[:, 0] == 0).all() and (b[:, 1] == 1).all()  # P(b = 1) = sigmoid(-+60)


def test_categorical_conditional_noise_agrees_with_b_and_has_the_right_marginal() -> None:
    # z = log theta + Gumbel, b = argmax z; z~ | b has argmax b and, marginally, the law of z:
    # E[z~_k] = log theta_k + Euler's gamma, sd pi / sqrt(6) per coordinate.
    alpha = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    n = 200_000
    _, b, z_tilde = categorical_noise_pair(alpha, n)
    assert torch.equal(z_tilde.argmax(-1), b.argmax(-1))
    expected = torch.log_softmax(alpha, -1) + 0.5772156649015329
    se = math.pi / math.sqrt(6) / math.sqrt(n)
    assert ((z_tilde.mean(0) - expected).abs() < 5 * se).all()


def test_attached_gradient_ignores_the_loss_scale_and_sign() -> None:
    p = torch.zeros(3, requires_grad=True)
    g = torch.tensor([1.0, -2.0, 0.5])
    for scale in (1.0, -7.0):
        p.grad = None
        value = attach_gradient([p], [g], "RELAX()")
        assert value.item() == 0.0
        (scale * (value + 1.0)).backward()
        torch.testing.assert_close(p.grad, g)
