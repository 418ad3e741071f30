"""Every sampler in ``reparam.distributions`` ends on any input, and invalid parameters give NaN.

For each family and each of its arguments, a batch ``[valid, invalid]`` (and a scalar invalid
value) is sampled under a wall-clock alarm: the valid entry must still be finite, inside the
support and centred where it should be; the invalid entry must be NaN. With validation on,
construction raises a ``ValueError`` naming the argument. Before the bounded samplers, a NaN,
infinite or negative concentration made the gamma and von Mises rejection loops spin forever.
"""

from __future__ import annotations

import math
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import torch
from torch.distributions import Categorical, Distribution, Normal

from reparam.distributions import (
    Beta,
    Chi2,
    Dirichlet,
    Gamma,
    Implicit,
    InverseCDF,
    InverseGamma,
    MixtureSameFamily,
    StudentT,
    TruncatedNormal,
    VonMises,
)

NAN, INF = math.nan, math.inf
NOT_POSITIVE = (NAN, INF, -INF, -1.0, 0.0)
NOT_FINITE = (NAN, INF, -INF)
N = 2000
TIME_LIMIT_S = 30  # a sampler call takes milliseconds; a hang is caught, not waited for


@pytest.fixture(autouse=True)
def _alarm() -> Iterator[None]:
    def _timeout(signum: int, frame: object) -> None:
        raise TimeoutError(f"sampler did not finish within {TIME_LIMIT_S} s")

    previous = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(TIME_LIMIT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True)
class Case:
    family: str
    arg: str
    build: Callable[..., Distribution]  # build(value, validate_args=...) with ``arg`` = value
    valid: float
    invalid: tuple[float, ...]
    circular: bool = False  # the von Mises: check E[cos(z - loc)] instead of the mean

    @property
    def id(self) -> str:
        return f"{self.family}-{self.arg}"


def _tn(arg: str) -> Callable[..., Distribution]:
    def build(v: torch.Tensor, validate_args: bool | None = None) -> Distribution:
        p = {"loc": 0.3, "scale": 1.2, "low": -1.0, "high": 2.0, arg: v}
        return TruncatedNormal(p["loc"], p["scale"], p["low"], p["high"], validate_args=validate_args)

    return build


def _mixture(v: torch.Tensor, validate_args: bool | None = None) -> Distribution:
    logits = torch.stack([v, torch.zeros_like(v)], -1)
    locs = torch.tensor([-1.0, 2.0], dtype=v.dtype).expand(logits.shape)
    mix = Categorical(logits=logits, validate_args=validate_args)
    return MixtureSameFamily(mix, Normal(locs, 0.7), validate_args=validate_args)


CASES = [
    Case("gamma", "concentration", lambda v, **k: Gamma(v, 1.5, **k), 2.0, NOT_POSITIVE),
    Case("gamma-small", "concentration", lambda v, **k: Gamma(v, 1.5, **k), 0.3, NOT_POSITIVE),
    Case("gamma", "rate", lambda v, **k: Gamma(2.0, v, **k), 1.5, NOT_POSITIVE),
    Case("chi2", "df", lambda v, **k: Chi2(v, **k), 3.0, NOT_POSITIVE),
    Case("inverse-gamma", "concentration", lambda v, **k: InverseGamma(v, 2.0, **k), 3.0, NOT_POSITIVE),
    Case("inverse-gamma", "rate", lambda v, **k: InverseGamma(3.0, v, **k), 2.0, NOT_POSITIVE),
    Case("student-t", "df", lambda v, **k: StudentT(v, 0.2, 1.3, **k), 5.0, NOT_POSITIVE),
    Case("student-t", "loc", lambda v, **k: StudentT(5.0, v, 1.3, **k), 0.2, NOT_FINITE),
    Case("student-t", "scale", lambda v, **k: StudentT(5.0, 0.2, v, **k), 1.3, NOT_POSITIVE),
    Case("beta", "concentration1", lambda v, **k: Beta(v, 3.0, **k), 2.0, NOT_POSITIVE),
    Case("beta", "concentration0", lambda v, **k: Beta(2.0, v, **k), 3.0, NOT_POSITIVE),
    Case(
        "dirichlet",
        "concentration",
        lambda v, **k: Dirichlet(torch.stack([torch.ones_like(v), v, 3 * torch.ones_like(v)], -1), **k),
        2.0,
        NOT_POSITIVE,
    ),
    # concentration 0 is the uniform distribution (the limit), not invalid, for sampling.
    Case(
        "von-mises", "concentration", lambda v, **k: VonMises(0.5, v, **k), 2.0, (NAN, INF, -INF, -1.0), True
    ),
    Case("von-mises", "loc", lambda v, **k: VonMises(v, 2.0, **k), 0.5, NOT_FINITE, True),
    Case("truncated-normal", "loc", _tn("loc"), 0.3, NOT_FINITE),
    Case("truncated-normal", "scale", _tn("scale"), 1.2, NOT_POSITIVE),
    Case("truncated-normal", "low", _tn("low"), -1.0, (NAN, INF, 2.0, 5.0)),
    Case("truncated-normal", "high", _tn("high"), 2.0, (NAN, -INF, -1.0, -5.0)),
    Case("mixture", "logits", _mixture, 0.3, (NAN, INF)),
    # The wrappers inherit the base's sampler: a NaN parameter gives NaN, and they end.
    Case("implicit", "loc", lambda v, **k: Implicit(Normal(v, 1.0, **k)), 0.4, (NAN,)),
    Case("inverse-cdf", "scale", lambda v, **k: InverseCDF(Normal(0.4, v, **k)), 1.1, (NAN,)),
]
IDS = [c.id for c in CASES]


def _check_valid_column(case: Case, z: torch.Tensor, reference: Distribution) -> None:
    """Finite, in the support, and centred: ``|mean - exact| < 6 SE`` (two-sided false-alarm
    rate 2e-9 per check under a normal approximation of the mean of 2000 draws)."""
    assert bool(torch.isfinite(z).all()), case.id
    assert bool(reference.support.check(z).all()), case.id
    if z.dim() == 2:  # the Dirichlet: its first coordinate
        z = z[:, 0]
    if case.circular:
        stat = torch.cos(z - reference.loc)
        kappa = reference.concentration
        exact = torch.special.i1e(kappa) / torch.special.i0e(kappa)
    else:
        stat = z
        exact = reference.mean if reference.mean.dim() == 0 else reference.mean[0]
    se = stat.std() / math.sqrt(len(stat))
    assert abs(float(stat.mean() - exact)) < 6 * float(se) + 1e-12, case.id


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_invalid_entries_give_nan_and_valid_entries_stay_right(case: Case) -> None:
    reference = case.build(torch.tensor(case.valid, dtype=torch.float64), validate_args=False)
    for bad in case.invalid:
        v = torch.tensor([case.valid, bad], dtype=torch.float64)
        dist = case.build(v, validate_args=False)
        for z in (dist.sample((N,)), dist.rsample((N,))):
            _check_valid_column(case, z[:, 0], reference)
            assert bool(torch.isnan(z[:, 1]).all()), (case.id, bad)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_scalar_invalid_parameter_gives_nan(case: Case) -> None:
    for bad in case.invalid:
        dist = case.build(torch.tensor(bad), validate_args=False)
        for z in (dist.sample((5,)), dist.rsample((5,))):
            assert bool(torch.isnan(z).all()), (case.id, bad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gamma_family_float32_and_float64_batches_end(dtype: torch.dtype) -> None:
    bad = torch.tensor([0.5, NAN, INF, -1.0, 0.0, 3.0], dtype=dtype)
    for dist in (Gamma(bad, 1.0, validate_args=False), Beta(bad, 2.0, validate_args=False)):
        z = dist.rsample((100,))
        assert z.dtype == dtype
        assert bool(torch.isnan(z[:, 1:5]).all()) and bool(torch.isfinite(z[:, [0, 5]]).all())


VALIDATED = [c for c in CASES if c.family not in ("implicit", "inverse-cdf", "mixture")]


@pytest.mark.parametrize("case", VALIDATED, ids=[c.id for c in VALIDATED])
def test_validation_names_the_argument(case: Case) -> None:
    for bad in case.invalid:
        # the argument's own name as a whole word (Beta names concentration1 / concentration0,
        # not its internal "concentration")
        with pytest.raises(ValueError, match=rf"\b{case.arg}\b"):
            case.build(torch.tensor([case.valid, bad]), validate_args=True)


def test_expand_keeps_the_class_and_its_checks() -> None:
    for dist in (Beta(torch.tensor(2.0), 3.0), Dirichlet(torch.tensor([1.0, 2.0]))):
        wide = dist.expand((4,))
        assert type(wide) is type(dist)
        assert wide.rsample().shape == (4, *dist.event_shape)
