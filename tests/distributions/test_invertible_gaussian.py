"""InvertibleGaussian: simplex samples, the inverse map, log_prob's normalisation, the KL
(closed form = KL of the Gaussians) against Monte Carlo, validation."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import integrate
from torch.distributions import kl_divergence

from reparam.distributions import InvertibleGaussian

D64 = torch.float64


def _pair(temperature: float = 0.7) -> tuple[InvertibleGaussian, InvertibleGaussian]:
    t = lambda *v: torch.tensor(v, dtype=D64)  # noqa: E731
    p = InvertibleGaussian(t(0.3, -0.5, 1.0), t(0.8, 1.2, 0.5), temperature)
    q = InvertibleGaussian(t(-0.2, 0.4, 0.0), t(1.0, 0.6, 0.9), temperature)
    return p, q


def test_samples_lie_on_the_simplex_and_invert() -> None:
    p, _ = _pair()
    x = p.base.sample((1000,))
    y = p.transform(x)
    assert y.shape == (1000, 4) and (y > 0).all()
    torch.testing.assert_close(y.sum(-1), torch.ones(1000, dtype=D64), rtol=0, atol=1e-14)
    torch.testing.assert_close(p.inverse(y), x, rtol=1e-10, atol=1e-10)
    assert p.rsample((5,)).shape == (5, 4) and p.expand((2,)).rsample((3,)).shape == (3, 2, 4)


def test_log_prob_integrates_to_one_for_two_categories() -> None:
    # K = 2: y = (y1, 1 - y1), a density in y1 on (0, 1); adaptive quadrature to ~1e-10
    dist = InvertibleGaussian(torch.tensor([0.3], dtype=D64), torch.tensor([0.8], dtype=D64), 1.3)

    def density(y1: float) -> float:
        return float(dist.log_prob(torch.tensor([y1, 1 - y1], dtype=D64)).exp())

    total = integrate.quad(density, 0.0, 1.0, limit=200, epsabs=1e-12)[0]
    assert total == pytest.approx(1.0, abs=1e-8)


def test_kl_equals_the_gaussian_kl_and_monte_carlo() -> None:
    p, q = _pair()
    kl = kl_divergence(p, q)
    gaussian = kl_divergence(p.base, q.base).sum(-1)
    torch.testing.assert_close(kl, gaussian, rtol=0, atol=0)
    # Monte Carlo through the simplex densities (the Jacobians cancel only if log_prob is right):
    # |z| < 5, false-alarm rate 5.7e-7
    y = p.sample((200_000,))
    ratio = p.log_prob(y) - q.log_prob(y)
    se = ratio.std() / len(ratio) ** 0.5
    assert abs(float(ratio.mean() - kl)) < 5 * float(se), (float(ratio.mean()), float(kl), float(se))


def test_kl_with_different_temperatures_is_refused() -> None:
    p, _ = _pair(0.7)
    _, q = _pair(0.5)
    with pytest.raises(NotImplementedError, match="same temperature"):
        kl_divergence(p, q)


def test_small_temperature_gives_near_one_hot_argmax() -> None:
    dist = InvertibleGaussian(torch.zeros(4, dtype=D64), torch.ones(4, dtype=D64), 0.01)
    x = dist.base.sample((1000,))
    y = dist.transform(x)
    full = torch.cat([x, torch.zeros(1000, 1, dtype=D64)], -1)  # log delta = 0
    assert torch.equal(y.argmax(-1), full.argmax(-1))
    gap = full.topk(2, -1).values.diff(dim=-1).abs().squeeze(-1)  # margin over the runner-up
    # y_max >= 1 / (1 + 4 exp(-gap / t)): deterministic bound
    assert (y.max(-1).values >= 1 / (1 + 4 * torch.exp(-gap / 0.01)) - 1e-12).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"temperature": 0.0}, "temperature must be a positive finite number"),
        ({"temperature": math.inf}, "temperature must be a positive finite number"),
        ({"delta": -1.0}, "delta must be a positive finite number"),
        ({"scale": torch.zeros(3)}, "scale must be positive"),
        ({"loc": torch.tensor([0.0, math.nan, 0.0])}, "loc must be finite"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"loc": torch.zeros(3), "scale": torch.ones(3), "temperature": 0.5, **kwargs}
    with pytest.raises(ValueError, match=match):
        InvertibleGaussian(validate_args=True, **args)  # type: ignore[arg-type]
