"""Score-function estimator: unbiased against closed forms and enumeration, per-element credit,
gradients of f's own parameters, and its one-sample variance."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats
from seeds import seeded
from torch.distributions import Bernoulli, Categorical, Exponential, Normal, Poisson

import reparam as rp


def test_unbiased_normal_square(estimates, unbiased) -> None:
    # E[(z - 2)^2] = (mu - 2)^2 + sigma^2.
    mu, sigma = 0.5, 1.5
    grads = estimates(Normal, lambda z: (z - 2.0) ** 2, rp.ScoreFunction(), (mu, sigma), repeats=20000)
    unbiased(grads[0], 2 * (mu - 2.0))
    unbiased(grads[1], 2 * sigma)


def test_unbiased_exponential_sin(estimates, unbiased) -> None:
    lam = 1.7
    (grad,) = estimates(Exponential, torch.sin, rp.ScoreFunction(), (lam,), repeats=20000)
    unbiased(grad, (1 - lam**2) / (1 + lam**2) ** 2)


def test_unbiased_poisson_by_enumeration(estimates, unbiased) -> None:
    # d/dlambda E[f(k)] = sum_k f(k) pmf(k) (k / lambda - 1), summed to where the pmf vanishes.
    lam = 2.5
    f = lambda k: 1.0 / (1.0 + k) + torch.sqrt(k)  # noqa: E731
    ks = torch.arange(0, 80, dtype=torch.float64)
    pmf = torch.as_tensor(stats.poisson.pmf(ks.numpy(), lam))
    exact = float((f(ks) * pmf * (ks / lam - 1)).sum())
    (grad,) = estimates(Poisson, f, rp.ScoreFunction(), (lam,), num_samples=4, repeats=20000)
    unbiased(grad, exact)


def test_unbiased_bernoulli_logits(estimates, unbiased) -> None:
    # E[f(b)] = p f(1) + (1 - p) f(0); d/dlogit = p (1 - p) (f(1) - f(0)).
    logit = 0.7
    p = 1 / (1 + math.exp(-logit))
    f = lambda b: (b - 0.3) ** 2 + 3.0  # noqa: E731
    (grad,) = estimates(lambda t: Bernoulli(logits=t), f, rp.ScoreFunction(), (logit,), repeats=20000)
    unbiased(grad, p * (1 - p) * ((0.7**2) - (0.3**2)))


def test_unbiased_categorical_with_interactions(unbiased) -> None:
    # Two categorical variables (K = 3) and a cost that couples them: f(a, b) = W[a, b]. Exact
    # gradient by enumerating all 9 outcomes. 20000 independent copies sit in one batch
    # (batch shape (R, 2), costs (1, R)), so each copy is one independent estimate.
    torch.manual_seed(seeded(1))
    weights = torch.randn(3, 3, dtype=torch.float64)
    base = torch.randn(2, 3, dtype=torch.float64)
    logits = base.expand(20000, 2, 3).clone().requires_grad_()

    def f(z: torch.Tensor) -> torch.Tensor:
        return weights[z[..., 0], z[..., 1]]

    value = rp.expect(f, Categorical(logits=logits), rp.ScoreFunction(), num_samples=1)
    value.sum().backward()
    exact_logits = base.clone().requires_grad_()
    probs = exact_logits.softmax(-1)
    (exact,) = torch.autograd.grad((probs[0][:, None] * probs[1][None, :] * weights).sum(), exact_logits)
    for i in range(2):
        for k in range(3):
            unbiased(logits.grad[:, i, k], exact[i, k])


def test_credits_each_cost_with_its_own_slice(estimates) -> None:
    # x ~ N(1, 1), f = x^2: score-function d/dmu = x^2 (x - 1), variance E[x^4 (x-1)^2] - 4 = 30.
    # Here 20000 independent copies sit in one batch; if their log-probs leaked into each
    # other's credit the variance would grow with the batch size. Sample-variance standard
    # error: sqrt((mu4 - 900) / R); mu4 of x^2(x-1) - 2 is ~ 1.2e4 (numerically), so ~0.8:
    # 5 standard errors ~ 4 (13%).
    (grad, _) = estimates(Normal, lambda z: z**2, rp.ScoreFunction(), (1.0, 1.0), repeats=20000)
    assert abs(grad.var().item() - 30.0) < 4.0


def test_gradients_of_f_own_parameters_flow() -> None:
    # E_{z~N(mu,1)}[(z - w)^2] = (mu - w)^2 + 1, so d/dw = 2 (w - mu) = 2 (1.5 - 0.5) = 2.
    w = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    mu = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    value = rp.expect(lambda z: (z - w) ** 2, Normal(mu, 1.0), rp.ScoreFunction(), num_samples=20000)
    value.backward()
    # d/dw estimate = mean of 2(w - z): standard error 2/sqrt(20000) = 0.014.
    assert abs(w.grad.item() - 2.0) < 5 * 2 / math.sqrt(20000)


def test_samples_carry_no_gradient() -> None:
    mu = torch.tensor(0.0, requires_grad=True)
    seen = []
    rp.expect(lambda z: seen.append(z) or z, Normal(mu, 1.0), rp.ScoreFunction(), num_samples=3)
    assert not seen[0].requires_grad


def test_rejects_non_baseline() -> None:
    with pytest.raises(TypeError, match="baseline"):
        rp.ScoreFunction(baseline=0.5)  # type: ignore[arg-type]
