"""The three estimators of a Bayesian layer: same pre-activation law for one input, unbiased
gradients of the expected loss, and the gradient-variance scaling that tells them apart.

All statistical thresholds are 5 standard errors of the Monte Carlo estimate being checked
(two-sided false-alarm probability ~6e-7 per check), with fixed seeds.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from seeds import seeded
from torch import Tensor
from torch.func import functional_call, grad, vmap

from reparam.nn import ESTIMATORS, BayesConv1d, BayesConv2d, BayesLinear
from reparam.nn.base import BayesLayer, inverse_softplus, random_sign


def _randomise(layer: BayesLayer, seed: int) -> BayesLayer:
    """Means N(0, 0.5^2) and scales U(0.2, 0.8), so noise and means are of similar size."""
    g = torch.Generator().manual_seed(seeded(seed))
    with torch.no_grad():
        layer.weight_mu.copy_(0.5 * torch.randn(layer.weight_mu.shape, generator=g))
        sigma = 0.2 + 0.6 * torch.rand(layer.weight_rho.shape, generator=g)
        layer.weight_rho.copy_(torch.log(torch.expm1(sigma)))
        if layer.bias_mu is not None:
            layer.bias_mu.copy_(0.5 * torch.randn(layer.bias_mu.shape, generator=g))
            layer.bias_rho.copy_(
                torch.log(torch.expm1(0.2 + 0.6 * torch.rand(layer.bias_rho.shape, generator=g)))
            )
    return layer


def _patches(layer: BayesLayer, x: Tensor) -> Tensor:
    """Inputs arranged so that ``out[:, j, p] = sum_k W[j, k] * patches[:, k, p] (+ b_j)``, computed
    by unfolding (im2col), independently of the layer's own ``F.linear``/``F.conv``."""
    if isinstance(layer, BayesLinear):
        return x.unsqueeze(-1)  # (N, in, 1)
    if isinstance(layer, BayesConv1d):
        pad = layer.padding[0]
        unfolded = F.unfold(
            x.unsqueeze(-2), (1, layer.kernel_size[0]), padding=(0, pad), stride=(1, layer.stride[0])
        )
        return unfolded
    return F.unfold(x, layer.kernel_size, padding=layer.padding, stride=layer.stride)


def closed_form(layer: BayesLayer, x: Tensor) -> tuple[Tensor, Tensor]:
    """Exact mean and variance of every pre-activation, flattened to (N, out, positions):
    ``mean = sum_k mu_jk x_k + mu_b``, ``var = sum_k sigma_jk^2 x_k^2 + sigma_b^2``
    (a sum of independent Gaussians ``W_jk x_k``)."""
    patches = _patches(layer, x)
    mu = layer.weight_mu.reshape(layer.weight_mu.shape[0], -1)
    sigma = layer.weight_sigma.reshape(mu.shape)
    mean = torch.einsum("jk,nkp->njp", mu, patches)
    var = torch.einsum("jk,nkp->njp", sigma**2, patches**2)
    if layer.bias_mu is not None:
        mean = mean + layer.bias_mu[None, :, None]
        var = var + layer.bias_sigma[None, :, None] ** 2
    return mean, var


LAYERS = {
    "linear": (lambda: BayesLinear(5, 3), (1, 5)),
    "conv1d": (lambda: BayesConv1d(2, 3, 3, padding=1), (1, 2, 6)),
    "conv2d": (lambda: BayesConv2d(2, 3, 3, stride=2, padding=1), (1, 2, 5, 5)),
}


def _flat(y: Tensor) -> Tensor:
    return y.reshape(y.shape[0], y.shape[1], -1)


def repeat(fn: Callable[[], Tensor], repeats: int) -> Tensor:
    """``repeats`` independent evaluations of the random ``fn()``, stacked along a new dim 0
    (``vmap`` with fresh randomness per repeat: each repeat is its own forward pass)."""
    return vmap(lambda _: fn(), randomness="different")(torch.arange(repeats))


def gradient_draws(
    layer: torch.nn.Module, loss: Callable[[dict[str, Tensor]], Tensor], repeats: int
) -> dict[str, Tensor]:
    """``repeats`` independent draws of the gradient of ``loss(output)`` w.r.t. every parameter."""
    params = {k: v.detach() for k, v in layer.named_parameters()}

    def objective(p: dict[str, Tensor], _: Tensor) -> Tensor:
        return loss(p)

    return vmap(grad(objective), in_dims=(None, 0), randomness="different")(params, torch.arange(repeats))


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("kind", list(LAYERS))
def test_single_input_preactivation_law(kind: str, estimator: str) -> None:
    # For one input every estimator must produce y ~ N(mean, var) with the closed forms above.
    # With R independent forward passes:
    #   sample mean:     SE = sqrt(var / R)                       -> |mean_hat - mean| < 5 SE
    #   sample variance: SE = var * sqrt(2 / (R - 1)) (Gaussian)  -> |var_hat - var| < 5 SE
    #   kurtosis:        E[(y-m)^4] = 3 var^2; SE of the 4th-moment mean = sqrt((105 - 9) var^4 / R)
    factory, shape = LAYERS[kind]
    layer = _randomise(factory().double(), seed=1)
    layer.estimator = estimator
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seeded(2)), dtype=torch.float64)
    repeats = 4000
    with torch.no_grad():
        draws = repeat(lambda: _flat(layer(x))[0], repeats)  # (R, out, positions)
        mean, var = (t[0] for t in closed_form(layer, x))
    sample_mean = draws.mean(0)
    assert ((sample_mean - mean).abs() / (var / repeats).sqrt()).max() < 5
    sample_var = draws.var(0)
    assert ((sample_var - var).abs() / (var * math.sqrt(2 / (repeats - 1)))).max() < 5
    fourth = ((draws - mean) ** 4).mean(0)
    assert ((fourth - 3 * var**2).abs() / (var**2 * math.sqrt(96 / repeats))).max() < 5


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_examples_correlated_only_with_shared_weights(estimator: str) -> None:
    # Two copies of one input in a batch: "reparam" gives identical outputs (one weight sample);
    # "local" and "flipout" give uncorrelated ones (E[(y1 - m)(y2 - m)] = 0: independent draws,
    # resp. independent random signs r_n s_n). z-test of the mean product against its SE.
    layer = _randomise(BayesLinear(5, 3).double(), seed=3)
    layer.estimator = estimator
    x = torch.randn(1, 5, dtype=torch.float64).expand(2, 5)
    with torch.no_grad():
        mean, _ = closed_form(layer, x[:1])
        draws = repeat(lambda: layer(x), 4000) - mean[0, :, 0]
    if estimator == "reparam":
        torch.testing.assert_close(draws[:, 0], draws[:, 1])
        return
    products = draws[:, 0] * draws[:, 1]
    z = products.mean(0) / (products.std(0) / math.sqrt(len(products)))
    assert z.abs().max() < 5


def _exact_expected_cos(layer: BayesLayer, x: Tensor) -> Tensor:
    """``E[sum cos(y)] = sum cos(mean) exp(-var / 2)`` for Gaussian ``y`` (characteristic function),
    a differentiable function of (mu, rho): autograd of it is the exact gradient."""
    mean, var = closed_form(layer, x)
    return (torch.cos(mean) * torch.exp(-0.5 * var)).sum()


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("kind", ["linear", "conv1d"])
def test_gradient_of_expected_loss_unbiased(kind: str, estimator: str) -> None:
    # The loss sum_n sum_j cos(y_nj) over a batch of 3 distinct inputs depends on each example's
    # marginal only, which all estimators get right, so each one's gradient must average to the
    # exact gradient of E[loss]. Per coordinate: |mean_R(grad) - exact| < 5 * std(grad) / sqrt(R).
    factory, shape = LAYERS[kind]
    layer = _randomise(factory().double(), seed=4)
    layer.estimator = estimator
    x = torch.randn((3, *shape[1:]), generator=torch.Generator().manual_seed(seeded(5)), dtype=torch.float64)
    names = [name for name, _ in layer.named_parameters()]
    exact = torch.autograd.grad(_exact_expected_cos(layer, x), list(layer.parameters()))
    repeats = 4000
    draws = gradient_draws(layer, lambda p: torch.cos(functional_call(layer, p, (x,))).sum(), repeats)
    for name, g_exact in zip(names, exact, strict=True):
        store = draws[name]
        se = store.std(0) / math.sqrt(repeats)
        assert ((store.mean(0) - g_exact).abs() / se).max() < 5, name


def test_two_layer_network_gradients_agree_across_estimators() -> None:
    # No closed form for a tanh network, but each example's expected loss is the same under the
    # three estimators (each example sees weights distributed as q), so their mean gradients must
    # agree: z = (m_a - m_b) / sqrt(se_a^2 + se_b^2), |z| < 5 for every coordinate and pair.
    torch.manual_seed(seeded(6))
    net = torch.nn.Sequential(BayesLinear(4, 6), torch.nn.Tanh(), BayesLinear(6, 2)).double()
    for layer in (net[0], net[2]):
        _randomise(layer, seed=7)
    x = torch.randn(5, 4, dtype=torch.float64)
    target = torch.randn(5, 2, dtype=torch.float64)
    repeats = 4000
    means, errors = {}, {}
    for estimator in ESTIMATORS:
        net[0].estimator = net[2].estimator = estimator
        draws = gradient_draws(net, lambda p: ((functional_call(net, p, (x,)) - target) ** 2).sum(), repeats)
        flat = torch.cat([g.reshape(repeats, -1) for g in draws.values()], dim=1)
        means[estimator], errors[estimator] = flat.mean(0), flat.std(0) / math.sqrt(repeats)
    for a, b in (("reparam", "local"), ("reparam", "flipout"), ("local", "flipout")):
        z = (means[a] - means[b]) / (errors[a] ** 2 + errors[b] ** 2).sqrt()
        assert z.abs().max() < 5, (a, b)


@pytest.mark.parametrize("batch", [1, 16])
def test_gradient_variance_closed_forms(batch: int) -> None:
    # N copies of one input x, loss L = (1/N) sum_n y_n for a 1-output layer without bias.
    # dL/dsigma_i per estimator (eps, zeta ~ N(0,1); r, s uniform signs):
    #   reparam: x_i eps_i                                      -> Var = x_i^2        (no 1/N)
    #   flipout: x_i eps_i (1/N) sum_n r_n s_ni                 -> Var = x_i^2 / N
    #   local:   (x_i^2 sigma_i / sqrt(v)) (1/N) sum_n zeta_n   -> Var = x_i^4 sigma_i^2 / (v N)
    # The chain rule through softplus multiplies by sigmoid(rho_i). The sample variance of R draws
    # has SE sqrt((m4 - s^4) / R), m4 the sample 4th central moment.
    layer = _randomise(BayesLinear(3, 1, bias=False).double(), seed=8)
    x = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    sigma = layer.weight_sigma.detach()[0]
    slope = torch.sigmoid(layer.weight_rho.detach()[0])
    v = (sigma**2 * x[0] ** 2).sum()
    expected = {
        "reparam": x[0] ** 2 * slope**2,
        "flipout": x[0] ** 2 * slope**2 / batch,
        "local": x[0] ** 4 * sigma**2 / v / batch * slope**2,
    }
    repeats = 4000
    for estimator, target in expected.items():
        layer.estimator = estimator
        draws = gradient_draws(
            layer, lambda p: functional_call(layer, p, (x.expand(batch, 3),)).mean(), repeats
        )
        grads = draws["weight_rho"][:, 0]
        centred = grads - grads.mean(0)
        var = centred.pow(2).mean(0)
        se = ((centred.pow(4).mean(0) - var**2) / repeats).sqrt()
        assert ((var - target).abs() / se).max() < 5, estimator


def test_random_sign_is_plus_minus_one_and_balanced() -> None:
    # Mean of n uniform signs has SE 1/sqrt(n).
    signs = random_sign(torch.empty(200_000))
    assert set(signs.unique().tolist()) == {-1.0, 1.0}
    assert abs(float(signs.mean())) < 5 / math.sqrt(len(signs))


def test_inverse_softplus_round_trip() -> None:
    for value in (1e-6, 0.01, 1.0, 30.0):
        rho = torch.tensor(inverse_softplus(value), dtype=torch.float64)
        assert math.isclose(float(F.softplus(rho)), value, rel_tol=1e-9)
