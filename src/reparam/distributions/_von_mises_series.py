r"""The von Mises CDF and its concentration derivatives: Hill's series and his normal approximation.

For the mean-zero von Mises on ``[-pi, pi]`` with concentration ``kappa``:

* **series** (``kappa < 50``): ``F(x) = 1/2 + x/(2 pi) + (1/pi) sum_n (I_n/I_0)(kappa) sin(n x)/n``,
  differentiated term by term in ``kappa`` (:func:`_cdf_series`);
* **corrected normal approximation** (above): ``F = Phi(y(s))``, ``s = sqrt(2/pi) sin(x/2) /
  i0e(kappa)`` (:func:`_cdf_normal`, with its ``kappa`` derivative in closed form in
  :func:`normal_cdf_and_grad`).

Reference: G. W. Hill, "Algorithm 518: Incomplete Bessel function I0. The von Mises
distribution", ACM TOMS 3(3), 1977. Both regimes take ``x`` and ``kappa`` in any float dtype
(``kappa`` 0-d or shaped like ``x``) and evaluate in it; the term count of the series is a
Python integer (:func:`_series_terms` of a known bound, or read from the values by the host
path in :mod:`reparam.distributions.von_mises`).

Example::

    >>> import torch
    >>> x = torch.tensor([0.0, 1.0], dtype=torch.float64)
    >>> f, df = _cdf_series(x, torch.tensor(2.0, dtype=torch.float64), _series_terms(2.0))
    >>> round(float(f[0]), 12), round(float(df[0]), 12)   # F(0) = 1/2 for every kappa
    (0.5, 0.0)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.special import i0e, i1e, ndtr

from reparam.distributions._sync import sync_free

SERIES_MAX_CONCENTRATION = 50.0


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


# Every kappa the series evaluates (below 50, and 50 + 2h for the second derivative's
# differences, h = 0.01 sqrt(50)) is covered by this count: the sync-free path uses it throughout.
SYNC_FREE_TERMS = _series_terms(SERIES_MAX_CONCENTRATION + 0.02 * math.sqrt(SERIES_MAX_CONCENTRATION))


def _series_coefficients(kappa: Tensor, terms: int) -> Tensor:
    r"""``c_n = (I_n/I_0)(kappa) / n`` and ``dc_n/dkappa`` for ``n = 1..terms``, stacked as
    ``(terms, 2, *kappa.shape)``.

    The Bessel ratios ``r_n = I_n/I_{n-1} = 1/(2n/kappa + r_{n+1})`` come from a backward
    recurrence started at ``r_{N+1} = 0`` and are differentiated alongside
    (``dr_n = r_n^2 (2n/kappa^2 - dr_{n+1})``); ``I_n/I_0 = r_1 \cdots r_n``. They depend on
    ``kappa`` alone, so a shared concentration costs a few scalar operations, not per-sample work.
    """
    if kappa.numel() == 1:
        if sync_free(kappa):  # a few kernels, not two per term of the recurrence
            return _quadrature_coefficients(kappa.reshape(()), terms).reshape(terms, 2, *kappa.shape)
        coefs = _scalar_series_coefficients(float(kappa), terms)  # plain floats: no tensor dispatch per term
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


QUADRATURE_POINTS = 256


def _quadrature_coefficients(kappa: Tensor, terms: int) -> Tensor:
    r"""``(c_n, dc_n/dkappa)`` for ``n = 1..terms`` at a 0-d ``kappa``, shaped ``(terms, 2)``, from
    the trapezoidal rule on ``I_n(kappa) = (1/2 pi) \int_0^{2 pi} e^{kappa cos t} cos(n t) dt``
    with :data:`QUADRATURE_POINTS` points ``t_j = 2 pi j / M`` (weights ``e^{kappa (cos t_j - 1)}``,
    the ``e^{-kappa}`` scaling of ``i0e``), and ``I_n' = (1/2 pi) \int cos t e^{kappa cos t} cos(n t)
    dt``: ``d(I_n/I_0)/dkappa = (I_n' - (I_n/I_0) I_1)/I_0``. The rule is exact up to aliasing by
    ``I_{M-n}/I_0``, below 1e-40 for ``n <= 80``, ``kappa <= 51``; rounding: ~1e-16 absolute (the
    recurrence's is relative to each coefficient; they agree to 7e-16 for ``1e-6 <= kappa <= 50``,
    tested). In the tails, where ``dF/dkappa`` is small, that absolute error shows: ``dz/dkappa``
    differs from the recurrence's by up to 5e-8 relative at the 1e-8 quantiles (``kappa`` 30-50),
    4e-9 at ``kappa = 10``. Two matrix-vector products of fixed shape: what the sync-free path runs
    for a shared concentration instead of the recurrence's ~14 scalar kernels per term.
    """
    theta = torch.arange(QUADRATURE_POINTS, dtype=kappa.dtype, device=kappa.device) * (
        2.0 * math.pi / QUADRATURE_POINTS
    )
    cos_t = torch.cos(theta)
    n = torch.arange(terms + 1, dtype=kappa.dtype, device=kappa.device)
    table = torch.cos(n.unsqueeze(-1) * theta)  # (terms + 1, M)
    weight = torch.exp(kappa * (cos_t - 1.0))
    scaled = table @ weight  # M i_n e^{-kappa}, n = 0..terms
    d_scaled = table @ (weight * cos_t)
    ratio = scaled[1:] / scaled[0]
    d_ratio = (d_scaled[1:] - ratio * d_scaled[0]) / scaled[0]
    return torch.stack([ratio / n[1:], d_ratio / n[1:]], -1)


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


def _host_terms(kappa: Tensor) -> int:
    """:func:`_series_terms` of the largest ``kappa`` (a host read; :data:`SYNC_FREE_TERMS`
    where :func:`reparam.distributions._sync.sync_free` holds)."""
    if sync_free(kappa):
        return SYNC_FREE_TERMS
    return _series_terms(float(kappa.max()) if kappa.numel() else 0.0)


def _cdf_series(x: Tensor, kappa: Tensor, terms: int | None = None) -> tuple[Tensor, Tensor]:
    r"""Hill's series ``F(x) = 1/2 + x/(2 pi) + (1/pi) sum_n (I_n/I_0)(kappa) sin(n x)/n`` and
    ``dF/dkappa``, ``kappa`` 0-d or shaped like ``x``.

    Both sine sums ``sum_n c_n sin(n x)`` are evaluated at once by Clenshaw's recurrence
    ``b_n = c_n + 2 cos(x) b_{n+1} - b_{n+2}``, sum ``= b_1 sin x`` (three elementwise operations
    per term, no per-term ``sin``). Truncation: ``terms``, by default :func:`_series_terms`.
    """
    if terms is None:
        terms = _host_terms(kappa)
    sums = _sine_sums(x, _series_coefficients(kappa, terms).reshape(terms, 2, -1))
    return 0.5 + x / (2.0 * math.pi) + sums[0] / math.pi, sums[1] / math.pi


def _cdf_series_grad(x: Tensor, kappa: Tensor, terms: int | None = None) -> Tensor:
    """``dF/dkappa`` alone from Hill's series (half the work of :func:`_cdf_series`)."""
    if terms is None:
        terms = _host_terms(kappa)
    coefs = _series_coefficients(kappa, terms).reshape(terms, 2, -1)[:, 1:]
    return _sine_sums(x, coefs)[0] / math.pi


def _sine_sums(x: Tensor, coefs: Tensor) -> Tensor:
    """``sum_n coefs[n-1, r] sin(n x)`` for each row ``r`` of ``coefs`` (shaped ``(N, R, 1 or m)``)
    by Clenshaw's recurrence; result ``(R, *x.shape)``."""
    two_cos = 2.0 * torch.cos(x)
    b1 = torch.zeros((coefs.shape[1], *x.shape), dtype=x.dtype, device=x.device)
    b2 = torch.zeros_like(b1)
    in_place = not (sync_free(x) or sync_free(coefs))  # torch.func: batched operands, out of place
    for n in range(coefs.shape[0] - 1, -1, -1):
        # b_n = c_n + 2 cos(x) b_{n+1} - b_{n+2}, on the host path written over b_{n+2}'s buffer.
        if in_place:
            b2.neg_().addcmul_(two_cos, b1).add_(coefs[n])
            b1, b2 = b2, b1
        else:
            b1, b2 = torch.addcmul(coefs[n] - b2, two_cos, b1), b1
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


def normal_cdf_and_grad(x: Tensor, kappa: Tensor) -> tuple[Tensor, Tensor]:
    r""":func:`_cdf_normal` and its ``kappa`` derivative in closed form (no autograd, so it runs
    inside ``torch.func`` transforms and backward passes alike).

    With ``q = I1/I0``: ``ds/dkappa = s (1 - q)`` (as ``d i0e/dkappa = i1e - i0e``); with
    ``D = A - B/C``, ``A = (24 kappa - 2 s^2 - 16)/3``, ``B = s^4 + 1.75 s^2 + 83.5``,
    ``C = 24 kappa - 53 - s^2`` and ``y = s - s^3/D^2``:

    .. math::
        \frac{dy}{d\kappa} = s'\Big(1 - \frac{3 s^2}{D^2}\Big) + \frac{2 s^3}{D^3} D', \qquad
        D' = \frac{24 - 4 s s'}{3} - \frac{(2 s^2 + 1.75)\, 2 s s'\, C - B\,(24 - 2 s s')}{C^2},

    and ``dF/dkappa = phi(y) dy/dkappa``.
    """
    q = i1e(kappa) / i0e(kappa)
    s = math.sqrt(2.0 / math.pi) * torch.sin(0.5 * x) / i0e(kappa)
    ds = s * (1.0 - q)
    s2 = s * s
    ds2 = 2.0 * s * ds
    c = 24.0 * kappa
    b = s2 * s2 + 1.75 * s2 + 83.5
    cc = c - 53.0 - s2
    denom = (c - 2.0 * s2 - 16.0) / 3.0 - b / cc
    d_denom = (24.0 - 2.0 * ds2) / 3.0 - ((2.0 * s2 + 1.75) * ds2 * cc - b * (24.0 - ds2)) / (cc * cc)
    inv = 1.0 / denom
    y = s - s * s2 * inv * inv
    dy = ds * (1.0 - 3.0 * s2 * inv * inv) + 2.0 * s * s2 * inv * inv * inv * d_denom
    density = torch.exp(-0.5 * y * y) / math.sqrt(2.0 * math.pi)
    cdf: Tensor = ndtr(y)  # typed Any by torch
    return cdf, density * dy


def normal_sample_grad(x: Tensor, kappa: Tensor) -> Tensor:
    r"""``g = dx/dkappa = -(dF/dkappa)/p`` of the normal approximation, with the quantities of
    ``kappa`` alone (``1 - I1/I0``, ``i0e``) in ``kappa``'s dtype and the per-sample arithmetic
    in ``x``'s: with ``phi(y) = exp(-y^2/2)/sqrt(2 pi)`` and ``1/p = 2 pi i0e(kappa)
    exp(2 kappa sin^2(x/2))``,

    .. math::
        g = -\frac{dy}{d\kappa}\,
        \exp\!\Big(2\kappa \sin^2\frac{x}{2} - \frac{y^2}{2} + \log\big(\sqrt{2\pi}\, i0e(\kappa)\big)\Big),

    one exponential of a difference that stays small (no overflow of ``1/p`` alone), and
    ``1 - I1/I0 ~ 1/(2 kappa)`` taken where it does not cancel (float64). In float32 this keeps
    ``g`` within 4e-6 relative of float64 for ``kappa`` from 50 to 1e4, tails of 1e-8 included
    (``tests/distributions/test_von_mises.py``); ``dy/dkappa`` as in :func:`normal_cdf_and_grad`.
    """
    dtype = x.dtype
    one_minus_q = (1.0 - i1e(kappa) / i0e(kappa)).to(dtype)
    scale = (math.sqrt(2.0 / math.pi) / i0e(kappa)).to(dtype)
    log_norm = (0.5 * math.log(2.0 * math.pi) + torch.log(i0e(kappa))).to(dtype)
    k = kappa.to(dtype)
    half_sin = torch.sin(0.5 * x)
    s = scale * half_sin
    ds = s * one_minus_q
    s2 = s * s
    ds2 = 2.0 * s * ds
    c = 24.0 * k
    b = s2 * s2 + 1.75 * s2 + 83.5
    cc = c - 53.0 - s2
    inv = 1.0 / ((c - 2.0 * s2 - 16.0) / 3.0 - b / cc)
    d_denom = (24.0 - 2.0 * ds2) / 3.0 - ((2.0 * s2 + 1.75) * ds2 * cc - b * (24.0 - ds2)) / (cc * cc)
    y = s - s * s2 * inv * inv
    dy = ds * (1.0 - 3.0 * s2 * inv * inv) + 2.0 * s * s2 * inv * inv * inv * d_denom
    out: Tensor = -dy * torch.exp(2.0 * k * half_sin * half_sin - 0.5 * y * y + log_norm)
    return out


def _log_density(x: Tensor, kappa: Tensor) -> Tensor:
    return kappa * (torch.cos(x) - 1.0) - torch.log(2.0 * math.pi * i0e(kappa))


def _score_kappa(x: Tensor, kappa: Tensor) -> Tensor:
    """``d log p(x; kappa)/d kappa = cos x - I1(kappa)/I0(kappa)``."""
    ratio: Tensor = i1e(kappa) / i0e(kappa)  # typed Any by torch
    return torch.cos(x) - ratio


def _series_second(x: Tensor, kappa: Tensor, terms: int | None = None) -> Tensor:
    """``d^2F/dkappa^2`` from Hill's series by Richardson-extrapolated central differences of the
    differentiated series (step ``h = 0.01 min(kappa, sqrt(kappa))``, the scale on which ``F``
    varies in ``kappa``; truncation ~1e-8 relative, rounding ~1e-14/h)."""
    h = 0.01 * torch.minimum(kappa, kappa.sqrt())
    if terms is None:
        terms = _host_terms(kappa + 2.0 * h)

    def d_cdf(k: Tensor) -> Tensor:
        return _cdf_series_grad(x, k, terms)

    near, far = d_cdf(kappa + h) - d_cdf(kappa - h), d_cdf(kappa + 2.0 * h) - d_cdf(kappa - 2.0 * h)
    return (8.0 * near - far) / (12.0 * h)


def _normal_second(x: Tensor, kappa: Tensor) -> Tensor:
    """``d^2F/dkappa^2`` of the normal approximation (``kappa`` 0-d or shaped like ``x``) by
    Richardson-extrapolated central differences of its closed-form ``dF/dkappa``
    (:func:`normal_cdf_and_grad`), step ``h = 0.01 sqrt(kappa)``; no autograd, so it runs under
    ``torch.func`` transforms. Against autograd through :func:`_cdf_normal` twice (relative to the
    largest value over ``|x| <= 6/sqrt(kappa)``): 2e-11 from 50 to 300, 5e-8 at 1e4, where both
    carry ``1 - I1/I0``'s cancellation (``tests/distributions/test_von_mises.py``)."""
    h = 0.01 * kappa.sqrt()

    def d_cdf(k: Tensor) -> Tensor:
        return normal_cdf_and_grad(x, k)[1]

    near, far = d_cdf(kappa + h) - d_cdf(kappa - h), d_cdf(kappa + 2.0 * h) - d_cdf(kappa - 2.0 * h)
    return (8.0 * near - far) / (12.0 * h)
