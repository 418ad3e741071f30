"""Score-function estimator: unbiased against closed forms and enumeration, per-element credit,
gradients of f's own parameters, and its one-sample variance."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats
from seeds import seeded
from torch import nn
from torch.distributions import Bernoulli, Beta, Categorical, Exponential, Normal, Poisson

import reparam as rp
from reparam.baselines import DeltaMethod, Learned, LeaveOneOut, MovingAverage


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


INF = float("inf")
BASELINE_FACTORIES = {
    "none": lambda: None,
    "moving_average": lambda: MovingAverage(),
    "leave_one_out": lambda: LeaveOneOut(),
    "learned": lambda: Learned(nn.LazyLinear(1, dtype=torch.float64)),
    "delta_method": lambda: DeltaMethod(),
}


@pytest.mark.parametrize("baseline", sorted(BASELINE_FACTORIES))
def test_saturated_bernoulli_logits_give_finite_value_and_zero_gradient(baseline: str) -> None:
    # Bernoulli(logits=+-inf).log_prob is nan (inf - inf inside torch); the surrogate's zero
    # term L - stop(L) made the value nan. The score of a saturated logit is exactly 0.
    logits = torch.tensor([INF, -INF, 0.3], dtype=torch.float64, requires_grad=True)
    weights = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    seen: list[torch.Tensor] = []

    def f(b: torch.Tensor) -> torch.Tensor:
        seen.append(b @ weights)
        return seen[-1]

    estimator = rp.ScoreFunction(BASELINE_FACTORIES[baseline]())
    value = rp.expect(f, Bernoulli(logits=logits), estimator, num_samples=4)
    assert torch.equal(value.detach(), seen[0].mean(0))
    (grad,) = torch.autograd.grad(value, logits)
    assert torch.isfinite(grad).all()
    assert torch.equal(grad[:2], torch.zeros(2, dtype=torch.float64))


@pytest.mark.parametrize("baseline", ["none", "moving_average", "leave_one_out", "learned"])
def test_masked_categorical_logits(baseline: str) -> None:
    # A -inf logit masks a category: values and gradients finite, the masked logit's gradient 0.
    logits = torch.tensor([[0.0, -INF, 1.0], [-INF, 0.5, -INF]], dtype=torch.float64, requires_grad=True)
    estimator = rp.ScoreFunction(BASELINE_FACTORIES[baseline]())
    value = rp.expect(lambda z: z.double().sum(-1) ** 2, Categorical(logits=logits), estimator, num_samples=4)
    (grad,) = torch.autograd.grad(value, logits)
    assert torch.isfinite(value) and torch.isfinite(grad).all()
    assert torch.equal(grad[logits.detach().isinf()], torch.zeros(3, dtype=torch.float64))


class _BetaWithEdgeSamples(Beta):
    """Beta(0.5, 0.5), whose density is infinite at 0 and 1, with its first two draws put
    exactly there (as float underflow does for small concentrations)."""

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        z = super().rsample(sample_shape).clone()
        z[0], z[1] = 0.0, 1.0
        return z

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)


@pytest.mark.parametrize("baseline", ["none", "moving_average", "leave_one_out"])
def test_samples_at_a_density_singularity_keep_the_value_finite(baseline: str) -> None:
    concentration = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    q = _BetaWithEdgeSamples(concentration, concentration)
    assert torch.isinf(q.log_prob(torch.tensor([0.0, 1.0], dtype=torch.float64))).all()
    seen: list[torch.Tensor] = []

    def f(z: torch.Tensor) -> torch.Tensor:
        seen.append(z)
        return z

    value = rp.expect(f, q, rp.ScoreFunction(BASELINE_FACTORIES[baseline]()), num_samples=6)
    assert torch.equal(value.detach(), seen[0].mean(0))


def test_rejects_baseline_or_sampler_class_instead_of_instance() -> None:
    with pytest.raises(TypeError, match=r"baseline must be an instance: write LeaveOneOut\(\)"):
        rp.ScoreFunction(LeaveOneOut)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"baseline must be an instance: write MovingAverage\(\)"):
        rp.ScoreFunction(MovingAverage)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"sampling must be an instance: write Antithetic\(\)"):
        rp.ScoreFunction(sampling=rp.Antithetic)  # type: ignore[arg-type]


@pytest.mark.parametrize("baseline", sorted(BASELINE_FACTORIES))
def test_size_zero_batch_gives_empty_result(baseline: str) -> None:
    loc = torch.zeros(0, dtype=torch.float64, requires_grad=True)
    estimator = rp.ScoreFunction(BASELINE_FACTORIES[baseline]())
    value = rp.expect(lambda z: z**2, Normal(loc, 1.0), estimator, num_samples=3)
    assert value.shape == (0,)
    (grad,) = torch.autograd.grad(value.sum(), loc, allow_unused=True)
    assert grad is None or grad.shape == (0,)
