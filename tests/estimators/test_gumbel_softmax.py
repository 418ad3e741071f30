"""Gumbel-softmax / concrete relaxation: the bias it should have, finiteness, straight-through."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Bernoulli, Binomial, Categorical, Geometric, OneHotCategorical, Poisson

import reparam as rp


def _bias(temperature: float, n: int = 200_000) -> tuple[float, float, float, float]:
    """For b ~ Bernoulli(sigmoid(a)), a = 0.4, f(b) = (b - 0.2)^2, from n one-sample estimates:
    ``(value bias, its standard error, gradient bias, its standard error)``.

    Exact: E[f(b)] = 0.64 p + 0.04 (1 - p), dE/da = 0.6 p (1 - p), p = sigmoid(0.4)."""
    logits = torch.full((n,), 0.4, dtype=torch.float64, requires_grad=True)
    values = rp.GumbelSoftmax(temperature)(lambda y: (y - 0.2).pow(2), Bernoulli(logits=logits), 1)
    (grads,) = torch.autograd.grad(values.sum(), logits)
    p = torch.sigmoid(torch.tensor(0.4, dtype=torch.float64))
    values = values.detach()
    value_bias = abs(float(values.mean() - (0.64 * p + 0.04 * (1 - p))))
    grad_bias = abs(float(grads.mean() - 0.6 * p * (1 - p)))
    return value_bias, float(values.std()) / n**0.5, grad_bias, float(grads.std()) / n**0.5


def test_bias_shrinks_as_temperature_goes_to_zero() -> None:
    # The relaxed value y = sigmoid((a + L) / tau) tends to b = 1[a + L > 0] as tau -> 0, so
    # E[f(y)] -> E[f(b)] and, the relaxed expectation being smooth in a, so does its gradient.
    # Each comparison is made with a margin of 5 combined standard errors.
    v1, sv1, g1, sg1 = _bias(1.0)
    v2, sv2, g2, sg2 = _bias(0.3)
    v3, sv3, g3, sg3 = _bias(0.05)
    assert v1 > v2 + 5 * (sv1 + sv2) and v2 > v3 + 5 * (sv2 + sv3)
    # The gradient bias at tau = 0.3 and 0.05 (both ~2e-3, not separable from each other at this
    # n) is far below the one at tau = 1 (~3e-2) ...
    assert g2 + 5 * sg2 < g1 - 5 * sg1 and g3 + 5 * sg3 < g1 - 5 * sg1
    # ... while the spread of one estimate grows as tau shrinks (variance ~ 1 / tau).
    assert sg3 > 2 * sg2 > 4 * sg1
    assert v1 > 0.02 and g1 > 0.02  # really biased at tau = 1


@pytest.mark.parametrize("family", ["bernoulli", "categorical", "onehot"])
@pytest.mark.parametrize("straight_through", [False, True])
def test_tiny_temperatures_stay_finite(family: str, straight_through: bool) -> None:
    logits = torch.tensor([[30.0, -30.0, 0.0], [0.0, 0.0, 0.0]], requires_grad=True)
    q = {
        "bernoulli": Bernoulli(logits=logits),
        "categorical": Categorical(logits=logits),
        "onehot": OneHotCategorical(logits=logits),
    }[family]
    est = rp.GumbelSoftmax(temperature=1e-8, straight_through=straight_through)
    value = est(lambda z: (torch.log(z + 1e-3) * z).flatten(1).sum(-1), q, 64)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("family", ["bernoulli", "categorical", "onehot"])
def test_straight_through_forward_is_exactly_discrete(family: str) -> None:
    logits = torch.randn(4, 3, requires_grad=True)
    q = {
        "bernoulli": Bernoulli(logits=logits),
        "categorical": Categorical(logits=logits),
        "onehot": OneHotCategorical(logits=logits),
    }[family]
    seen: list[torch.Tensor] = []

    def f(z: torch.Tensor) -> torch.Tensor:
        seen.append(z.detach().clone())
        return (z * 1.7).flatten(1).sum(-1)

    value = rp.GumbelSoftmax(0.5, straight_through=True)(f, q, 50)
    value.backward()
    z = seen[0]
    assert torch.equal(z, z.round()) and z.min() >= 0
    if family == "onehot":
        assert torch.equal(z.sum(-1), torch.ones_like(z.sum(-1)))
    if family == "categorical":
        assert z.max() <= 2
    assert logits.grad.abs().sum() > 0


def test_relaxed_values_lie_strictly_between_categories() -> None:
    seen: list[torch.Tensor] = []
    rp.GumbelSoftmax(1.0)(
        lambda y: seen.append(y) or y.sum((-1, -2)), OneHotCategorical(logits=torch.zeros(2, 3)), 8
    )
    y = seen[0]
    torch.testing.assert_close(y.sum(-1), torch.ones(8, 2))
    assert ((y > 0) & (y < 1)).all()


def test_bad_temperature_is_refused() -> None:
    with pytest.raises(ValueError, match="temperature must be > 0"):
        rp.GumbelSoftmax(0.0)


# -- decoupled straight-through (Shah et al. 2024) -------------------------------------------


def test_decoupled_with_unit_forward_temperature_is_straight_through() -> None:
    from seeds import seeded

    logits = torch.randn(3, 4, requires_grad=True)

    def f(z: torch.Tensor) -> torch.Tensor:
        return (z * torch.arange(4.0)).pow(2).sum((-1, -2))

    out = []
    for est in (
        rp.GumbelSoftmax(0.4, straight_through=True),
        rp.GumbelSoftmax(straight_through="decoupled", forward_temperature=1.0, backward_temperature=0.4),
    ):
        torch.manual_seed(seeded(7))
        value = est(f, OneHotCategorical(logits=logits), 16)
        (grad,) = torch.autograd.grad(value, logits)
        out.append((value.detach(), grad))
    torch.testing.assert_close(out[0], out[1], rtol=0, atol=0)


@pytest.mark.parametrize("family", ["bernoulli", "onehot"])
def test_decoupled_forward_samples_the_tempered_distribution(family: str) -> None:
    # hard forward draws come from softmax(logits / tau_f) (sigmoid for Bernoulli):
    # |z| < 5 per category, two-sided false-alarm rate 5.7e-7 each
    n, tau_f = 100_000, 2.5
    logits = torch.tensor([1.5, -0.5, 0.0, 2.0], dtype=torch.float64)
    q = Bernoulli(logits=logits) if family == "bernoulli" else OneHotCategorical(logits=logits)
    seen: list[torch.Tensor] = []
    est = rp.GumbelSoftmax(straight_through="decoupled", forward_temperature=tau_f, backward_temperature=0.5)
    est(lambda z: seen.append(z.detach()) or z.reshape(n, -1).sum(-1), q, n)
    z = seen[0]
    assert torch.equal(z, z.round())
    p = torch.sigmoid(logits / tau_f) if family == "bernoulli" else torch.softmax(logits / tau_f, -1)
    assert ((z.mean(0) - p).abs() < 5 * torch.sqrt(p * (1 - p) / n)).all()


def _hard_counts(name: str, logits: torch.Tensor, n: int) -> torch.Tensor:
    """Category counts of the ``n`` hard forward draws of the registry's estimator ``name``."""
    from reparam.estimators.registry import make_estimator

    seen: list[torch.Tensor] = []
    make_estimator(name)(lambda z: seen.append(z.detach()) or z.sum(-1), OneHotCategorical(logits=logits), n)
    return seen[0].reshape(n, -1).sum(0)


def _chi_square(counts: torch.Tensor, p: torch.Tensor) -> float:
    expected = counts.sum() * p
    return float(((counts - expected).pow(2) / expected).sum())


def test_registry_decoupled_is_not_gumbel_st() -> None:
    # The registry's gumbel-decoupled must not be gumbel-st under another name (it was, with
    # forward_temperature=1): its hard draws follow softmax(logits / tau_f), gumbel-st's follow
    # q = softmax(logits). Pearson chi-square goodness of fit, 3 degrees of freedom: accept below
    # chi2.isf(1e-6, 3) = 30.66 (false-alarm rate 1e-6 per check). Power: at the registry's
    # tau_f = 0.75 and n = 20,000 the tempered draws give an expected statistic against q of
    # n * sum (p_f - q)^2 / q = 0.0344 n = 690, far above it.
    from scipy.stats import chi2

    from reparam.estimators.registry import make_estimator

    tau_f = make_estimator("gumbel-decoupled").forward_temperature
    assert tau_f is not None and tau_f != 1.0
    n, limit = 20_000, float(chi2.isf(1e-6, 3))
    logits = torch.tensor([1.5, -0.5, 0.0, 2.0], dtype=torch.float64)
    q, tempered = torch.softmax(logits, -1), torch.softmax(logits / tau_f, -1)
    decoupled, st = _hard_counts("gumbel-decoupled", logits, n), _hard_counts("gumbel-st", logits, n)
    assert _chi_square(decoupled, tempered) < limit
    assert _chi_square(st, q) < limit
    assert _chi_square(decoupled, q) > limit  # the estimators differ: decoupled does not sample q


def test_decoupled_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="only with straight_through='decoupled'"):
        rp.GumbelSoftmax(0.5, straight_through=True, backward_temperature=0.3)
    with pytest.raises(ValueError, match="backward_temperature must be > 0"):
        rp.GumbelSoftmax(straight_through="decoupled", backward_temperature=0.0)
    with pytest.raises(ValueError, match="straight_through must be False, True or 'decoupled'"):
        rp.GumbelSoftmax(straight_through="yes")  # type: ignore[arg-type]


# -- generalised Gumbel-softmax for count latents (Joo et al. 2020) ---------------------------

K = 14  # Poisson(1.5), Poisson(2.5): the dropped tail P(X >= 14) is below 1e-7


def _count_cost(c: torch.Tensor) -> torch.Tensor:
    c = c.to(torch.float64)
    return (c[..., 0] - 1.0) * (c[..., 1] - 2.0) + 0.3 * c[..., 0] ** 2  # an interaction


def _exact_counts(q: torch.distributions.Distribution, params: torch.Tensor) -> tuple[float, torch.Tensor]:
    from reparam.estimators.truncated_counts import truncated_logits

    value = rp.Exact()(_count_cost, Categorical(logits=truncated_logits(q, K)), 1)
    (grad,) = torch.autograd.grad(value, params)
    return float(value.detach()), grad


def _count_bias(temperature: float, groups: int = 100, per_group: int = 1500) -> tuple[float, ...]:
    """(value bias, its SE, bias of d/d rate_2, its SE) from ``groups`` independent estimates,
    each the mean over ``per_group`` samples (one rate pair per group, so one graph per group)."""
    rate0 = torch.tensor([1.5, 2.5], dtype=torch.float64)
    r = rate0.clone().requires_grad_()
    exact_value, exact_grad = _exact_counts(Poisson(r), r)
    rates = rate0.expand(groups, 2).clone().requires_grad_()
    values = rp.GumbelSoftmax(temperature, truncation=K)(_count_cost, Poisson(rates), per_group)
    (grads,) = torch.autograd.grad(values.sum(), rates)
    values = values.detach()
    return (
        abs(float(values.mean()) - exact_value),
        float(values.std()) / groups**0.5,
        abs(float(grads[:, 1].mean() - exact_grad[1])),
        float(grads[:, 1].std()) / groups**0.5,
    )


def test_count_relaxation_bias_shrinks_with_temperature() -> None:
    # measured (offset 0, 150,000 samples): value bias 0.107 (t=0.3, SE 0.006), 0.016 (t=0.03,
    # SE 0.0075); bias of the d/d rate_2 estimate 0.174 (t=1, SE 0.0027), 0.004 (t=0.03, SE
    # 0.021). Each comparison with a margin of 5 combined SEs (about 7 s: three runs).
    _, _, g1, sg1 = _count_bias(1.0)
    v3, sv3, _, _ = _count_bias(0.3)
    v03, sv03, g03, sg03 = _count_bias(0.03)
    assert v3 > v03 + 5 * (sv3 + sv03)
    assert g1 - 5 * sg1 > g03 + 5 * sg03


@pytest.mark.parametrize("family", ["poisson", "binomial", "geometric"])
def test_count_straight_through_is_an_exact_truncated_sample(family: str) -> None:
    n = 100_000
    params = {
        "poisson": torch.tensor([1.5, 2.5], dtype=torch.float64),
        "binomial": torch.tensor([0.3, 0.6], dtype=torch.float64),
        "geometric": torch.tensor([0.5, 0.7], dtype=torch.float64),
    }[family].requires_grad_()

    def make(p: torch.Tensor) -> torch.distributions.Distribution:
        if family == "poisson":
            return Poisson(p)
        if family == "binomial":
            return Binomial(torch.tensor([5.0, 9.0], dtype=torch.float64), probs=p)
        return Geometric(probs=p)

    exact_value, _ = _exact_counts(make(params), params)
    seen: list[torch.Tensor] = []

    def f(c: torch.Tensor) -> torch.Tensor:
        seen.append(c.detach())
        return _count_cost(c)

    values = rp.GumbelSoftmax(0.5, straight_through=True, truncation=K)(f, make(params.expand(n, 2)), 1)
    c = seen[0]
    assert torch.equal(c, c.round()) and c.min() >= 0 and c.max() < K
    if family == "binomial":
        assert (c <= torch.tensor([5.0, 9.0], dtype=torch.float64)).all()
    # the forward value is f at exact samples of the truncated q: |z| < 5, false-alarm 5.7e-7
    se = float(values.detach().std()) / n**0.5
    assert abs(float(values.detach().mean()) - exact_value) < 5 * se
    values.sum().backward()
    assert torch.isfinite(params.grad).all()


def test_count_truncation_is_required_and_checked() -> None:
    q = Poisson(torch.tensor([2.0]))
    with pytest.raises(ValueError, match="pass truncation=K"):
        rp.GumbelSoftmax(0.5)(lambda c: c.sum(-1), q, 4)
    with pytest.raises(ValueError, match="truncation applies only to Poisson"):
        rp.GumbelSoftmax(0.5, truncation=5)(lambda b: b.sum(-1), Bernoulli(logits=torch.zeros(2)), 4)
    with pytest.raises(ValueError, match="truncation must be an int >= 2"):
        rp.GumbelSoftmax(0.5, truncation=1)
