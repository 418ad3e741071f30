"""The IWAE bound and its gradients on a linear-Gaussian model with closed-form answers.

Model: z ~ N(0, I_d), x | z ~ N(W z + b, s^2 I_D). Then
    log p(x) = log N(x; b, W W^T + s^2 I)                     (marginal),
    p(z | x) = N(m, S), S = (I + W^T W / s^2)^-1, m = S W^T (x - b) / s^2   (posterior).
With a diagonal Gaussian q = N(mu, diag(sigma^2)) different from the posterior:
    ELBO = log p(x) - KL(q || p(z | x))                        (closed form, differentiable),
    IWAE-k bound L_k = log p(x) - chi2 / (2k) + O(k^-2), chi2 = E_q[(p(z|x)/q(z))^2] - 1
(delta method on log of the mean of k i.i.d. weights w / p(x), which have mean 1 and variance chi2;
Burda et al. 2016 theorem 1 gives L_1 <= L_k <= L_{k+1} <= log p(x)). chi2 between Gaussians is
closed form: integral of p^2 / q is a Gaussian integral with precision A = 2 S^-1 - D^-1.

Repeated estimates are vectorised: parameters carry a leading "repeat" dim R, each row an
identical copy, so one backward pass yields R independent gradient estimates.
"""

from __future__ import annotations

import math

import pytest
import torch
from seeds import seeded
from torch.distributions import Independent, MultivariateNormal, Normal

from reparam.vi.iwae import iwae_bound, log_weights

D_X, D_Z = 3, 2
DTYPE = torch.float64


def model() -> dict[str, torch.Tensor]:
    # A fixed problem, not a Monte Carlo draw (q below and the chi2 = 0.352 it gives are tuned
    # to it), so it stays the same under every seed offset; W and 0.3 * b were drawn once with
    # torch.randn under manual_seed(1).
    return {
        "W": torch.tensor([[0.6614, 0.2669], [0.0617, 0.6213], [-0.4519, -0.1661]], dtype=DTYPE),
        "b": torch.tensor([-0.4568, 0.1145, -0.3083], dtype=DTYPE),
        "s": torch.tensor(0.8, dtype=DTYPE),
        "x": torch.tensor([0.7, -1.1, 0.4], dtype=DTYPE),
        # q deliberately off the posterior, so every bound is strictly below log p(x).
        "mu": torch.tensor([0.75, -0.8], dtype=DTYPE),
        "log_sigma": torch.tensor([-0.1, -0.05], dtype=DTYPE),
    }


def exact(m: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    W, b, s, x = m["W"], m["b"], m["s"], m["x"]
    cov_x = W @ W.T + s**2 * torch.eye(D_X, dtype=DTYPE)
    log_px = MultivariateNormal(b, cov_x).log_prob(x)
    S = torch.linalg.inv(torch.eye(D_Z, dtype=DTYPE) + W.T @ W / s**2)
    post_mean = S @ W.T @ (x - b) / s**2
    return {"log_px": log_px, "post_mean": post_mean, "post_cov": S}


def closed_form_elbo(m: dict[str, torch.Tensor]) -> torch.Tensor:
    e = exact(m)
    q = MultivariateNormal(m["mu"], torch.diag(torch.exp(2 * m["log_sigma"])))
    posterior = MultivariateNormal(e["post_mean"], e["post_cov"])
    return e["log_px"] - torch.distributions.kl_divergence(q, posterior)


def chi_square(m: dict[str, torch.Tensor]) -> torch.Tensor:
    """E_q[(p/q)^2] - 1 for p = posterior, q = diagonal Gaussian (Gaussian integral)."""
    e = exact(m)
    S_inv = torch.linalg.inv(e["post_cov"])
    D_inv = torch.diag(torch.exp(-2 * m["log_sigma"]))
    A = 2 * S_inv - D_inv
    assert torch.linalg.eigvalsh(A).min() > 0, "chi2 is infinite for this q"
    bvec = 2 * S_inv @ e["post_mean"] - D_inv @ m["mu"]
    c = (
        -0.5 * D_Z * math.log(2 * math.pi)
        - torch.logdet(e["post_cov"])
        + 0.5 * torch.logdet(torch.diag(torch.exp(2 * m["log_sigma"])))
        - e["post_mean"] @ S_inv @ e["post_mean"]
        + 0.5 * m["mu"] @ D_inv @ m["mu"]
    )
    log_integral = (
        c
        + 0.5 * D_Z * math.log(2 * math.pi)
        - 0.5 * torch.logdet(A)
        + 0.5 * bvec @ torch.linalg.solve(A, bvec)
    )
    return torch.exp(log_integral) - 1


def repeated(m: dict[str, torch.Tensor], repeats: int) -> dict[str, torch.Tensor]:
    """Per-repeat leaf copies of the encoder (mu, log_sigma) and decoder (W) parameters."""
    return {
        "mu": m["mu"].expand(repeats, D_Z).clone().requires_grad_(),
        "log_sigma": m["log_sigma"].expand(repeats, D_Z).clone().requires_grad_(),
        "W": m["W"].expand(repeats, D_X, D_Z).clone().requires_grad_(),
    }


def bound_and_grads(
    m: dict[str, torch.Tensor], repeats: int, k: int, gradient: str
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    p = repeated(m, repeats)
    q = Independent(Normal(p["mu"], p["log_sigma"].exp()), 1)  # batch (R,), event (D_Z,)

    def log_joint(z: torch.Tensor) -> torch.Tensor:  # z: (k, R, D_Z) -> (k, R)
        mean = torch.einsum("rxz,krz->krx", p["W"], z) + m["b"]
        lik = Normal(mean, m["s"]).log_prob(m["x"]).sum(-1)
        return lik + Normal(0.0, 1.0).log_prob(z).sum(-1)

    bound = iwae_bound(log_joint, q, k, gradient)
    bound.sum().backward()
    return bound.detach(), {name: t.grad for name, t in p.items()}


def test_elbo_estimate_matches_closed_form_and_lies_below_log_evidence() -> None:
    # iwae_bound with k=1 is an unbiased estimate of the ELBO; 5 standard errors.
    m = model()
    values, _ = bound_and_grads(m, 20000, 1, "standard")
    elbo, log_px = closed_form_elbo(m), exact(m)["log_px"]
    se = values.std() / math.sqrt(len(values))
    assert abs(values.mean() - elbo) < 5 * se
    assert elbo < log_px - 0.05  # q is off the posterior: a visible gap


def test_iwae_bound_increases_with_k_and_converges_at_the_delta_method_rate() -> None:
    # L_k = log p(x) - chi2/(2k) + O(k^-2). Check each mean against this expansion within
    # 5 standard errors plus the next-order term (bounded by chi2^2/k^2 for these weights),
    # and that the means increase with k and stay below log p(x). Here chi2 = 0.352 and
    # log p(x) - ELBO = KL(q || p(z|x)) = 0.276.
    m = model()
    log_px, chi2 = exact(m)["log_px"], chi_square(m)
    assert 0.05 < chi2 < 2.0
    means, errors = [], []
    for k, repeats in ((1, 20000), (5, 20000), (50, 10000), (500, 1000)):
        values, _ = bound_and_grads(m, repeats, k, "standard")
        mean, se = values.mean(), values.std() / math.sqrt(len(values))
        means.append(mean)
        errors.append(se)
        assert mean < log_px + 5 * se
        if k >= 50:
            predicted = log_px - chi2 / (2 * k)
            assert abs(mean - predicted) < 5 * se + chi2**2 / k**2
    # Increasing in k: each step up by more than 5 standard errors of the difference, except the
    # last, where L_500 - L_50 = 0.0032 is ~3 standard errors: there only "not lower".
    for i in range(2):
        assert means[i + 1] - means[i] > 5 * math.hypot(errors[i], errors[i + 1])
    assert means[3] - means[2] > -5 * math.hypot(errors[2], errors[3])
    assert log_px - means[-1] < 0.02 * (log_px - means[0])


def _z(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-coordinate z-score of the difference of two independent sample means."""
    se = (a.var(0) / len(a) + b.var(0) / len(b)).sqrt()
    return (a.mean(0) - b.mean(0)) / se


@pytest.mark.parametrize("gradient", ["standard", "stl", "dreg"])
def test_k1_gradients_are_unbiased_for_the_elbo(gradient: str) -> None:
    # For k = 1 all three estimate grad ELBO (STL drops a zero-mean score term; DReG = STL).
    # Exact gradient: autograd of the closed-form ELBO. |mean - exact| < 5 standard errors.
    m = model()
    leaf = {n: m[n].clone().requires_grad_() for n in ("mu", "log_sigma", "W")}
    closed_form_elbo({**m, **leaf}).backward()
    _, grads = bound_and_grads(m, 20000, 1, gradient)
    for name in ("mu", "log_sigma", "W"):
        g = grads[name]
        se = g.std(0) / math.sqrt(len(g))
        assert ((g.mean(0) - leaf[name].grad).abs() < 5 * se).all(), name


def test_dreg_is_unbiased_for_the_iwae_gradient_and_stl_is_not() -> None:
    # DReG (Tucker et al. 2018) and the standard estimator have the same expectation,
    # grad L_k, for encoder (mu, log_sigma) and decoder (W): every z-score of the difference of
    # means is below 5 (independent runs). STL for k > 1 drops sum_i w~_i d log q / d phi, whose
    # mean is not zero: on this q its encoder mean differs by far more than 5 standard errors,
    # which also shows this comparison has the power to detect a bias of that size.
    m = model()
    k, repeats = 5, 40000
    _, standard = bound_and_grads(m, repeats, k, "standard")
    _, dreg = bound_and_grads(m, repeats, k, "dreg")
    _, stl = bound_and_grads(m, repeats, k, "stl")
    for name in ("mu", "log_sigma", "W"):
        assert (_z(dreg[name], standard[name]).abs() < 5).all(), name
    assert _z(stl["log_sigma"], standard["log_sigma"]).abs().max() > 5
    # Decoder gradients are the same estimator under STL: unbiased.
    assert (_z(stl["W"], standard["W"]).abs() < 5).all()
    # DReG's point: lower encoder variance than the standard IWAE gradient.
    assert (dreg["log_sigma"].var(0) < standard["log_sigma"].var(0)).all()


def test_value_is_the_same_for_every_gradient_and_bad_input_is_named() -> None:
    m = model()
    values = []
    for gradient in ("standard", "stl", "dreg"):
        torch.manual_seed(seeded(3))
        values.append(bound_and_grads(m, 10, 4, gradient)[0])
    assert torch.equal(values[0], values[1]) and torch.equal(values[0], values[2])
    q = Normal(torch.zeros(2), torch.ones(2))
    with pytest.raises(ValueError, match="gradient"):
        iwae_bound(lambda z: z.sum(-1), q, 2, "fancy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_samples"):
        iwae_bound(lambda z: z.sum(-1), q, 0)
    with pytest.raises(ValueError, match="sample dim"):
        iwae_bound(lambda z: z.sum(), q, 3)
    with pytest.raises(TypeError, match="rsample"):
        iwae_bound(lambda z: z.sum(-1), torch.distributions.Bernoulli(torch.tensor(0.3)), 3)
    with pytest.raises(ValueError, match="iwae_bound"):
        log_weights(lambda z: z.sum(-1), q, 3, "dreg")  # type: ignore[arg-type]
