"""Von Mises distribution with implicit-reparameterization ``rsample`` and a CDF."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.distributions import VonMises as _TorchVonMises
from torch.special import i0e, i1e, ndtr

from reparam.distributions._checks import check_finite, check_positive_finite, validation_enabled
from reparam.distributions._surrogate import PathwiseSample, PathwiseSpec, refuse_further

_Shape = torch.Size | Sequence[int]

SERIES_MAX_CONCENTRATION = 50.0
MAX_REJECTION_ROUNDS = 64


def _wrap(x: Tensor) -> Tensor:
    """Angle in ``[-pi, pi)``."""
    return torch.remainder(x + math.pi, 2.0 * math.pi) - math.pi


def _series_terms(kappa_max: float) -> int:
    """Terms for Hill's series. ``I_n/I_0`` falls like ``(kappa/2)^n/n!`` for small ``kappa`` (2 terms
    past the point where that is below 1e-18) and like ``exp(-n^2/(2 kappa))`` for large (below
    1e-17 after ``9 sqrt(kappa) + 12`` terms); the fewer of the two. Checked against 300 terms:
    F and dF/dkappa agree to 6e-17 over 1e-3 <= kappa <= 50 (tests/distributions/test_von_mises.py).
    """
    kappa_max = max(kappa_max, 1e-300)
    n, log_bound = 0, 0.0
    while n < 2 or log_bound > math.log(1e-18):
        n += 1
        log_bound += math.log(kappa_max / 2.0) - math.log(n)
    return min(n + 2, 12 + math.ceil(9.0 * math.sqrt(kappa_max)))


def _series_coefficients(kappa: Tensor, terms: int) -> Tensor:
    r"""``c_n = (I_n/I_0)(kappa) / n`` and ``dc_n/dkappa`` for ``n = 1..terms``, stacked as
    ``(terms, 2, *kappa.shape)``.

    The Bessel ratios ``r_n = I_n/I_{n-1} = 1/(2n/kappa + r_{n+1})`` come from a backward
    recurrence started at ``r_{N+1} = 0`` and are differentiated alongside
    (``dr_n = r_n^2 (2n/kappa^2 - dr_{n+1})``); ``I_n/I_0 = r_1 \cdots r_n``. They depend on
    ``kappa`` alone, so a shared concentration costs a few scalar operations, not per-sample work.
    """
    if kappa.numel() == 1:  # plain floats: no tensor dispatch per term
        coefs = _scalar_series_coefficients(float(kappa), terms)
        return torch.tensor(coefs, dtype=kappa.dtype, device=kappa.device).reshape(terms, 2, *kappa.shape)
    ratio, d_ratio = torch.zeros_like(kappa), torch.zeros_like(kappa)
    ratios: list[tuple[Tensor, Tensor]] = []
    for n in range(terms, 0, -1):
        ratio = 1.0 / (2.0 * n / kappa + ratio)
        d_ratio = ratio * ratio * (2.0 * n / (kappa * kappa) - d_ratio)
        ratios.append((ratio, d_ratio))
    out, prod, d_prod = [], torch.ones_like(kappa), torch.zeros_like(kappa)
    for n, (r, dr) in enumerate(reversed(ratios), start=1):
        prod, d_prod = prod * r, d_prod * r + prod * dr
        out.append(torch.stack([prod / n, d_prod / n]))
    return torch.stack(out)


def _scalar_series_coefficients(k: float, terms: int) -> list[tuple[float, float]]:
    """``(c_n, dc_n/dkappa)`` for ``n = 1..terms`` at the Python float ``k``: the recurrence of
    :func:`_series_coefficients` in plain floats."""
    ratios, d_ratios, r, dr = [0.0] * (terms + 1), [0.0] * (terms + 1), 0.0, 0.0
    for n in range(terms, 0, -1):
        r = 1.0 / (2.0 * n / k + r)
        dr = r * r * (2.0 * n / (k * k) - dr)
        ratios[n], d_ratios[n] = r, dr
    coefs, prod, d_prod = [], 1.0, 0.0
    for n in range(1, terms + 1):
        prod, d_prod = prod * ratios[n], d_prod * ratios[n] + prod * d_ratios[n]
        coefs.append((prod / n, d_prod / n))
    return coefs


def _cdf_series(x: Tensor, kappa: Tensor, terms: int | None = None) -> tuple[Tensor, Tensor]:
    r"""Hill's series ``F(x) = 1/2 + x/(2 pi) + (1/pi) sum_n (I_n/I_0)(kappa) sin(n x)/n`` and
    ``dF/dkappa``, ``kappa`` 0-d or shaped like ``x``.

    Both sine sums ``sum_n c_n sin(n x)`` are evaluated at once by Clenshaw's recurrence
    ``b_n = c_n + 2 cos(x) b_{n+1} - b_{n+2}``, sum ``= b_1 sin x`` (three elementwise operations
    per term, no per-term ``sin``). Truncation: ``terms``, by default :func:`_series_terms`.
    """
    if terms is None:
        terms = _series_terms(float(kappa.max()) if kappa.numel() else 0.0)
    sums = _sine_sums(x, _series_coefficients(kappa, terms).reshape(terms, 2, -1))
    return 0.5 + x / (2.0 * math.pi) + sums[0] / math.pi, sums[1] / math.pi


def _cdf_series_grad(x: Tensor, kappa: Tensor) -> Tensor:
    """``dF/dkappa`` alone from Hill's series (half the work of :func:`_cdf_series`)."""
    terms = _series_terms(float(kappa.max()) if kappa.numel() else 0.0)
    coefs = _series_coefficients(kappa, terms).reshape(terms, 2, -1)[:, 1:]
    return _sine_sums(x, coefs)[0] / math.pi


def _sine_sums(x: Tensor, coefs: Tensor) -> Tensor:
    """``sum_n coefs[n-1, r] sin(n x)`` for each row ``r`` of ``coefs`` (shaped ``(N, R, 1 or m)``)
    by Clenshaw's recurrence; result ``(R, *x.shape)``."""
    two_cos = 2.0 * torch.cos(x)
    b1 = torch.zeros((coefs.shape[1], *x.shape), dtype=x.dtype, device=x.device)
    b2 = torch.zeros_like(b1)
    for n in range(coefs.shape[0] - 1, -1, -1):
        # b_n = c_n + 2 cos(x) b_{n+1} - b_{n+2}, written over b_{n+2}'s buffer.
        b2.neg_().addcmul_(two_cos, b1).add_(coefs[n])
        b1, b2 = b2, b1
    return b1 * torch.sin(x)


def _cdf_normal(x: Tensor, kappa: Tensor) -> Tensor:
    r"""Hill's corrected normal approximation for large ``kappa``.

    ``s = sqrt(2/pi) sin(x/2) / i0e(kappa)`` (which tends to ``sqrt(kappa) x``), corrected by
    ``s - s^3 / ((c - 2 s^2 - 16)/3 - (s^4 + 7 s^2/4 + 167/2)/(c - 56 - s^2 + 3))^2`` with
    ``c = 24 kappa``, then ``Phi``. (Hill, "Algorithm 518: Incomplete Bessel function I0. The
    von Mises distribution", ACM TOMS 3(3), 1977, as arranged in TensorFlow Probability.)
    """
    s = math.sqrt(2.0 / math.pi) * torch.sin(0.5 * x) / i0e(kappa)
    s2 = s * s
    c = 24.0 * kappa
    denom = (c - 2.0 * s2 - 16.0) / 3.0 - (s2 * s2 + 1.75 * s2 + 83.5) / (c - 56.0 - s2 + 3.0)
    p: Tensor = ndtr(s - s * s2 / (denom * denom))  # typed Any by torch
    return p


def _cdf_and_grad(x: Tensor, kappa: Tensor) -> tuple[Tensor, Tensor]:
    """``F`` and ``dF/dkappa`` on flat float64 ``x``, ``kappa`` of one element or shaped like
    ``x``; each regime on its own elements."""
    if kappa.numel() == 1:
        kappa = kappa.reshape(())
        if float(kappa) < SERIES_MAX_CONCENTRATION:
            cdf, d_cdf = _cdf_series(x, kappa)
            return cdf.clamp(0.0, 1.0), d_cdf
        kappa = kappa.expand(x.shape)
    small = kappa < SERIES_MAX_CONCENTRATION
    cdf, d_cdf = torch.zeros_like(x), torch.zeros_like(x)
    if bool(small.any()):
        f, df = _cdf_series(x[small], kappa[small])
        cdf[small], d_cdf[small] = f, df
    if not bool(small.all()):
        large = ~small
        with torch.enable_grad():
            k = kappa[large].detach().clone().requires_grad_(True)
            f = _cdf_normal(x[large], k)
            (df,) = torch.autograd.grad(f.sum(), k)
        cdf[large], d_cdf[large] = f.detach(), df
    return cdf.clamp(0.0, 1.0), d_cdf


def _log_density(x: Tensor, kappa: Tensor) -> Tensor:
    return kappa * (torch.cos(x) - 1.0) - torch.log(2.0 * math.pi * i0e(kappa))


def _series_second(x: Tensor, kappa: Tensor) -> Tensor:
    """``d^2F/dkappa^2`` from Hill's series by Richardson-extrapolated central differences of the
    differentiated series (step ``h = 0.01 min(kappa, sqrt(kappa))``, the scale on which ``F``
    varies in ``kappa``; truncation ~1e-8 relative, rounding ~1e-14/h)."""
    h = 0.01 * torch.minimum(kappa, kappa.sqrt())
    terms = _series_terms(float((kappa + 2.0 * h).max()) if kappa.numel() else 0.0)

    def d_cdf(k: Tensor) -> Tensor:
        return _cdf_series(x, k, terms)[1]

    near, far = d_cdf(kappa + h) - d_cdf(kappa - h), d_cdf(kappa + 2.0 * h) - d_cdf(kappa - 2.0 * h)
    return (8.0 * near - far) / (12.0 * h)


def _normal_second(x: Tensor, kappa: Tensor) -> Tensor:
    """``d^2F/dkappa^2`` of the normal approximation, by autograd twice (``kappa`` shaped like ``x``)."""
    with torch.enable_grad():
        k = kappa.detach().clone().requires_grad_(True)
        (d1,) = torch.autograd.grad(_cdf_normal(x, k).sum(), k, create_graph=True)
        (d2,) = torch.autograd.grad(d1.sum(), k)
    return d2


def _cdf_second(x: Tensor, kappa: Tensor) -> Tensor:
    """``d^2F/dkappa^2`` on flat float64 ``x``, ``kappa`` 0-d or shaped like ``x``, each element by
    the regime :func:`_cdf_and_grad` uses for it."""
    if kappa.numel() == 1:
        kappa = kappa.reshape(())
        if float(kappa) < SERIES_MAX_CONCENTRATION:
            return _series_second(x, kappa)
        kappa = kappa.expand(x.shape)
    small = kappa < SERIES_MAX_CONCENTRATION
    out = torch.zeros_like(x)
    if bool(small.any()):
        out[small] = _series_second(x[small], kappa[small])
    if not bool(small.all()):
        out[~small] = _normal_second(x[~small], kappa[~small])
    return out


def _score_kappa(x: Tensor, kappa: Tensor) -> Tensor:
    """``d log p(x; kappa)/d kappa = cos x - I1(kappa)/I0(kappa)``."""
    ratio: Tensor = i1e(kappa) / i0e(kappa)  # typed Any by torch
    return torch.cos(x) - ratio


class _CDFKappa(torch.autograd.Function):
    """``dF/dkappa`` (given, ``d_cdf``) as a function of ``(x, kappa)``, differentiable once:
    ``d/dx = dp/dkappa = p (cos x - I1/I0)``, ``d/dkappa = d^2F/dkappa^2`` (:func:`_cdf_second`)."""

    @staticmethod
    def forward(x: Tensor, kappa: Tensor, d_cdf: Tensor) -> Tensor:
        return d_cdf.view_as(d_cdf)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Tensor, Tensor], output: Tensor) -> None:
        x, kappa, _ = inputs
        ctx.save_for_backward(x, kappa)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, None]:
        x, kappa = ctx.saved_tensors
        with torch.no_grad():
            d_x = grad * torch.exp(_log_density(x, kappa)) * _score_kappa(x, kappa)
            second = _cdf_second(x.reshape(-1), kappa.reshape(-1) if kappa.dim() else kappa)
            d_kappa = (grad * second.reshape(x.shape)).sum_to_size(kappa.shape)
        name = "VonMises.cdf"
        return refuse_further(d_x, name, x, kappa, grad), refuse_further(d_kappa, name, x, kappa, grad), None


class _VonMisesCDF(torch.autograd.Function):
    """``F(x; kappa)`` with ``dF/dx = p(x; kappa)`` and ``dF/dkappa`` from the same recurrences;
    second derivatives exact (through :class:`_CDFKappa`), third ones raise."""

    @staticmethod
    def forward(x: Tensor, kappa: Tensor) -> tuple[Tensor, Tensor]:
        cdf, d_cdf = _cdf_and_grad(x.reshape(-1), kappa.reshape(-1))
        return cdf.reshape(x.shape), d_cdf.reshape(x.shape)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Tensor], output: tuple[Tensor, Tensor]) -> None:
        x, kappa = inputs
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(x, kappa, output[1])

    @staticmethod
    def backward(ctx: Any, grad: Tensor, _: Tensor) -> tuple[Tensor, Tensor]:
        x, kappa, d_cdf = ctx.saved_tensors
        if torch.is_grad_enabled():
            d_cdf = _CDFKappa.apply(x, kappa, d_cdf)
        return grad * torch.exp(_log_density(x, kappa)), (grad * d_cdf).sum_to_size(kappa.shape)


def _flat_args(x: Tensor, concentration: Tensor) -> tuple[Tensor, Tensor]:
    """float64 ``x`` and ``kappa``, broadcast to one shape unless ``kappa`` is a single value."""
    x, kappa = x.double(), concentration.double()
    if kappa.numel() == 1:
        return x.contiguous(), kappa.reshape(())
    x, kappa = torch.broadcast_tensors(x, kappa)
    return x.contiguous(), kappa.contiguous()


def von_mises_cdf(x: Tensor, concentration: Tensor) -> Tensor:
    """CDF of the von Mises with mean 0 at ``x`` in ``[-pi, pi]``, float64, differentiable in both."""
    cdf: Tensor = _VonMisesCDF.apply(*_flat_args(x, concentration))[0]  # apply: Any
    return cdf


def von_mises_sample_grad(x: Tensor, concentration: Tensor) -> Tensor:
    r"""``dx/dkappa = -(dF(x; kappa)/dkappa) / p(x; kappa)`` for mean-0 samples ``x``, float64.

    ``p(x) = exp(kappa (cos x - 1)) / (2 pi i0e(kappa))``; ``dF/dkappa`` from the differentiated
    series, or by autograd through the normal approximation, each where it is accurate.
    """
    x, kappa = _flat_args(x.detach(), concentration.detach())
    if kappa.numel() == 1 and float(kappa) < SERIES_MAX_CONCENTRATION:
        d_cdf = _cdf_series_grad(x, kappa)
    else:
        _, d_cdf = _cdf_and_grad(x.reshape(-1), kappa.reshape(-1))
    return -d_cdf.reshape(x.shape) * torch.exp(-_log_density(x, kappa))


class _VonMisesSpec(PathwiseSpec):
    r"""``g = dz/dkappa`` at ``x = wrap(z - loc)`` and its partials (for second derivatives).

    With ``d_x log p = -kappa sin x`` and ``d_kappa log p = cos x - I1/I0``:
    ``dg/dz = I1/I0 - cos x + g kappa sin x``,
    ``dg/dkappa = -F_{kappa kappa}/p - g (cos x - I1/I0)`` (:func:`_cdf_second`).
    """

    name = "VonMises"

    def __init__(self, loc: Tensor) -> None:
        self.loc = loc.detach().double()

    def _x(self, z: Tensor) -> Tensor:
        return _wrap(z.double() - self.loc)

    def first(self, z: Tensor, theta: Tensor) -> Tensor:
        return torch.nan_to_num(von_mises_sample_grad(self._x(z), theta))

    def partials(self, z: Tensor, theta: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
        x, kappa = _flat_args(self._x(z), theta)
        score = _score_kappa(x, kappa)
        d_z = g * kappa * torch.sin(x) - score
        second = _cdf_second(x.reshape(-1), kappa.reshape(-1) if kappa.dim() else kappa).reshape(x.shape)
        d_kappa = -second * torch.exp(-_log_density(x, kappa)) - g * score
        return torch.nan_to_num(d_z), torch.nan_to_num(d_kappa)


class VonMises(_TorchVonMises):
    r"""``torch.distributions.VonMises`` plus ``rsample`` (implicit gradients) and ``cdf``.

    Samples come from torch's rejection sampler (Best & Fisher 1979) with gradients off; with
    ``x = wrap(z - loc)`` in ``[-pi, pi)``,

    .. math::
        \frac{\partial z}{\partial loc} = 1, \qquad
        \frac{\partial z}{\partial \kappa} = -\frac{\partial F(x; \kappa)/\partial\kappa}{p(x; \kappa)},

    with ``F`` the CDF of the mean-zero von Mises on ``[-pi, pi]`` (the cut is at the antipode of
    ``loc``), from Hill's series for ``kappa < 50`` and his corrected normal approximation
    above, as in Figurnov, Mohamed & Mnih, "Implicit Reparameterization Gradients" (NeurIPS
    2018), accurate for concentrations from 1e-3 to 1e4 (float64 inside). Second derivatives
    (``create_graph=True`` twice) are exact, with ``d^2F/dkappa^2`` by Richardson differences of
    the differentiated series; third derivatives raise an error.
    """

    has_rsample = True

    def __init__(
        self, loc: Tensor | float, concentration: Tensor | float, validate_args: bool | None = None
    ) -> None:
        if validation_enabled(validate_args):
            check_finite(type(self).__name__, loc=loc)
            check_positive_finite(type(self).__name__, concentration=concentration)
        # torch annotates loc and concentration as Tensor but broadcasts Python numbers too
        super().__init__(loc, concentration, validate_args=validate_args)  # type: ignore[arg-type]

    def expand(self, batch_shape: _Shape, _instance: VonMises | None = None) -> VonMises:
        new = self._get_checked_instance(VonMises, _instance)
        expanded: VonMises = super().expand(batch_shape, _instance=new)  # torch's expand is unannotated
        return expanded

    @torch.no_grad()
    def sample(self, sample_shape: _Shape = ()) -> Tensor:
        """Best & Fisher's rejection sampler ("Efficient simulation of the von Mises
        distribution", Applied Statistics 28, 1979), as torch runs it, with bounded work:
        at most :data:`MAX_REJECTION_ROUNDS` rounds (every round accepts at least 65% of the
        draws, so a draw is left after them with probability below ``0.35^64 = 1e-29``; it is
        set to the mode ``loc``). NaN where ``loc`` is not finite or ``concentration`` is NaN,
        negative or infinite (torch's loop never ended there); ``concentration = 0`` gives the
        uniform distribution, its limit. float64 inside."""
        shape = self._extended_shape(torch.Size(sample_shape))
        loc, kappa = self.loc.double(), self.concentration.double()
        valid = torch.isfinite(loc) & (kappa >= 0) & (kappa < math.inf)
        loc = torch.where(valid, loc, torch.full_like(loc, math.nan))
        # kappa -> 0 is the uniform limit (acceptance 1); 1e-30 reaches it without 1/0.
        kappa = torch.where(valid, kappa.clamp(min=1e-30), torch.ones_like(kappa))
        tau = 1.0 + torch.sqrt(1.0 + 4.0 * kappa * kappa)
        rho = (tau - torch.sqrt(2.0 * tau)) / (2.0 * kappa)
        # Second-order Taylor expansion of the proposal's r for small kappa (as torch).
        r = torch.where(kappa < 1e-5, 1.0 / kappa + kappa, (1.0 + rho * rho) / (2.0 * rho))
        x = torch.zeros(shape, dtype=loc.dtype, device=loc.device)
        done = torch.zeros(shape, dtype=torch.bool, device=loc.device)
        for _ in range(MAX_REJECTION_ROUNDS):
            u1, u2, u3 = torch.rand((3, *shape), dtype=loc.dtype, device=loc.device).unbind()
            z = torch.cos(math.pi * u1)
            f = (1.0 + r * z) / (r + z)
            c = kappa * (r - f)
            accept = ((c * (2.0 - c) - u2) > 0) | ((c / u2).log() + 1.0 - c >= 0)
            x = torch.where(accept & ~done, torch.sign(u3 - 0.5) * torch.acos(f), x)
            done |= accept
            if bool(done.all()):
                break
        return _wrap(x + loc).to(self.loc.dtype)

    def log_prob(self, value: Tensor) -> Tensor:
        """``kappa (cos(z - loc) - 1) - log(2 pi i0e(kappa))``: exact where torch's Bessel
        polynomial is good to about 1e-7."""
        if self._validate_args:
            self._validate_sample(value)
        kappa = self.concentration
        return kappa * (torch.cos(value - self.loc) - 1.0) - torch.log(2.0 * math.pi * i0e(kappa))

    def cdf(self, value: Tensor) -> Tensor:
        """``P(-pi <= Z <= value)`` on ``[-pi, pi)``, the interval torch's samples lie in."""
        if self._validate_args:
            self._validate_sample(value)
        loc, kappa = self.loc.double(), self.concentration.double()
        upto = von_mises_cdf(_wrap(value.double() - loc), kappa)
        start = von_mises_cdf(_wrap(-math.pi - loc), kappa)
        return torch.remainder(upto - start, 1.0).to(torch.result_type(value, self.loc))

    def rsample(self, sample_shape: _Shape = ()) -> Tensor:
        with torch.no_grad():
            z0 = self.sample(torch.Size(sample_shape))
        # dz/dkappa is evaluated lazily in backward (second derivatives exact); dz/dloc = 1.
        z: Tensor = PathwiseSample.apply(self.concentration, z0, _VonMisesSpec(self.loc))  # apply: Any
        if self.loc.requires_grad:
            z = z + (self.loc - self.loc.detach())
        return z
