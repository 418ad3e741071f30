r"""The continued fraction of the regularised incomplete beta function, with its partials.

For ``0 < z < (p + 1)/(p + q + 2)`` (the side where it converges fast),

.. math::
    I_z(p, q) = \frac{z^p (1 - z)^q}{p\,B(p, q)}\, F, \qquad
    F = \cfrac{1}{1 + \cfrac{d_1}{1 + \cfrac{d_2}{1 + \cdots}}},

    d_{2m+1} = -\frac{(p + m)(p + q + m)}{(p + 2m)(p + 2m + 1)} z, \qquad
    d_{2m} = \frac{m (q - m)}{(p + 2m - 1)(p + 2m)} z

(Abramowitz & Stegun 26.5.8; Numerical Recipes, sec. 6.4). :func:`beta_continued_fraction`
runs the three-term recurrences of the convergents ``F_n = B_n / A_n``,
``A_n = A_{n-1} + d_n A_{n-2}`` (likewise ``B``), together with their derivatives in ``p`` and
``q`` (differentiated term by term, as Boik & Robison-Cox, "Derivatives of the incomplete beta
function", J. Stat. Software 3(1), 1998, do), rescaling all six sequences by one common factor
every step so that nothing overflows. The number of terms is fixed per call and grows like
``sqrt(p + q)`` (:func:`terms_for`): measured against 30-digit mpmath in
``tests/distributions/test_incomplete_beta.py``.

Example::

    >>> import torch
    >>> f, f_p, f_q = beta_continued_fraction(torch.tensor(2.0, dtype=torch.float64),
    ...     torch.tensor(3.0, dtype=torch.float64), torch.tensor([0.2], dtype=torch.float64), 30)
    >>> round(float(f), 6)  # I_0.2(2, 3) = 0.1808 = 0.2^2 0.8^3 / (2 B(2, 3)) F = 0.12288 F
    1.471354
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from reparam.distributions._sync import sync_free

# Terms for an error below ~1e-7 relative in the implicit derivative (measured against 400-term
# float64 values over 2001 quantiles from 1e-6 to 1 - 1e-6, concentrations 1e-3..1e4): needed 10 at
# (1, 1), 14 at (10, 10), 34 at (100, 100), 72 at (1e3, 1e3), i.e. ~1.6 sqrt(p + q); with one
# concentration below ~3 and the other large, more: 32 at (0.1, 30), 42 at (0.1, 100), 52 at
# (0.1, 1e4). The 1e-4 asked of the derivative leaves three orders of margin.
TERMS_BASE = 12.0
TERMS_PER_ROOT = 1.6
SKEW_PER_ROOT = 3.0
SKEW_MAX = 40.0
SKEW_BELOW = 3.0
FLOAT32_FROM = 0.1  # float32 recurrences for concentrations in [0.1, 30]: see plan()
FLOAT32_UP_TO = 30.0
RESCALE_EVERY = 4  # |d_n| < 1 on the fast side: four steps grow A, B by less than 2^4
SYNC_FREE_MAX_CONCENTRATION = 1e4  # the documented range: the sync-free count covers it


def _need(p: Tensor, q: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(terms needed, smaller, larger concentration), elementwise on the parameters' shape."""
    total, small, large = p + q, torch.minimum(p, q), torch.maximum(p, q)
    skew = torch.where(small < SKEW_BELOW, (SKEW_PER_ROOT * large.sqrt()).clamp(max=SKEW_MAX), 0.0)
    return TERMS_BASE + TERMS_PER_ROOT * total.sqrt() + skew, small, large


def _round_terms(need: float) -> int:
    return RESCALE_EVERY * math.ceil(need / RESCALE_EVERY)


def terms_for(p: Tensor, q: Tensor) -> int:
    """Continued-fraction terms enough for every pair of concentrations in ``p``, ``q`` (a
    multiple of :data:`RESCALE_EVERY`; one host read, of a single number computed on the
    parameters' own shape)."""
    if p.numel() == 0 or q.numel() == 0:
        return 0
    return _round_terms(float(_need(p, q)[0].max()))


def _worst_case_terms() -> int:
    """Terms for every pair of concentrations up to :data:`SYNC_FREE_MAX_CONCENTRATION` (the
    need grows with ``p + q``; its skew term with the larger one): 240."""
    top = SYNC_FREE_MAX_CONCENTRATION
    balanced = TERMS_BASE + TERMS_PER_ROOT * math.sqrt(2.0 * top)
    skewed = TERMS_BASE + TERMS_PER_ROOT * math.sqrt(top + SKEW_BELOW) + SKEW_MAX
    return _round_terms(max(balanced, skewed))


SYNC_FREE_TERMS = _worst_case_terms()


def plan(p: Tensor, q: Tensor) -> tuple[int, bool]:
    """``(terms_for(p, q), float32 suffices)`` from one host read of one number: the fraction
    may run in float32 where every concentration lies in
    [:data:`FLOAT32_FROM`, :data:`FLOAT32_UP_TO`] (its implicit derivative then stays within
    1e-5 relative of float64's, measured over the quantiles of that square; outside, the
    float32 recurrence loses up to 3e-2 at (0.1, 1e4)).

    Where :func:`reparam.distributions._sync.sync_free` holds (accelerators, compiling,
    ``vmap``, :func:`reparam.distributions.force_sync_free`) nothing is read:
    ``(SYNC_FREE_TERMS, False)``, the count for every concentration up to
    :data:`SYNC_FREE_MAX_CONCENTRATION` in float64 (accuracy beyond that range is not
    guaranteed there; the cost is ~240 recurrence steps against ~16-80 for typical
    concentrations, see docs/architecture.md)."""
    if p.numel() == 0 or q.numel() == 0:
        return 0, True
    if sync_free(p) or sync_free(q):
        return SYNC_FREE_TERMS, False
    need, small, large = _need(p, q)
    in_range = (small.min() >= FLOAT32_FROM) & (large.max() <= FLOAT32_UP_TO)
    # one read: the term count, plus 1e6 when float32 does not suffice (needs stay below 1e3)
    code = float(need.max() + torch.where(in_range, 0.0, 1e6))
    return _round_terms(code % 1e6), code < 1e6


def coefficients(p: Tensor, q: Tensor, terms: int) -> Tensor:
    """``(d_n, dd_n/dp, dd_n/dq) / z`` for ``n = 1..terms``, shaped ``(terms, 3, *p.shape)``
    (``p``, ``q`` of one shape; ``terms`` even), all terms at once."""
    half = terms // 2
    m = torch.arange(half, dtype=p.dtype, device=p.device).reshape((half,) + (1,) * p.dim())
    # odd n = 2m + 1, m = 0..half-1
    r, s, t, u = p + m, p + q + m, p + 2 * m, p + 2 * m + 1
    c = -(r * s) / (t * u)
    odd = torch.stack([c, c * (1 / r + 1 / s - 1 / t - 1 / u), -r / (t * u)], 1)
    # even n = 2m, m = 1..half
    m = m + 1
    t, u = p + (2 * m - 1), p + 2 * m
    w = m / (t * u)
    c = w * (q - m)
    even = torch.stack([c, -c * (1 / t + 1 / u), w.expand_as(c)], 1)
    return torch.stack([odd, even], 1).reshape((terms, 3, *p.shape))


def beta_continued_fraction(
    p: Tensor, q: Tensor, z: Tensor, terms: int, swap: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """``(F, dF/dp, dF/dq)`` of the module's continued fraction after ``terms`` terms.

    ``p``, ``q`` broadcast against ``z`` (all of ``z``'s dtype). With ``swap`` (a boolean tensor
    shaped like ``z``) the roles are exchanged element by element: ``(p, q)`` there is ``(q, p)``;
    with shared parameters the coefficients are evaluated once for each order (on the
    parameters' own shape) and blended per element as ``c z (1 - s) + c' z s``, ``s`` the swap
    as 0/1, a block of :data:`RESCALE_EVERY` terms at a time.
    """
    shape = torch.broadcast_shapes(z.shape, p.shape, q.shape)
    z = z.expand(shape)
    # leading ones, so that (3, *p.shape) coefficient stacks broadcast against z
    p = p.reshape((1,) * (len(shape) - p.dim()) + p.shape)
    q = q.reshape((1,) * (len(shape) - q.dim()) + q.shape)
    per_element = p.numel() * 2 >= z.numel()
    if swap is not None and per_element:
        p, q = torch.where(swap, q, p), torch.where(swap, p, q)
        swap = None
    p, q = torch.broadcast_tensors(p, q)
    if swap is None:
        table, swapped = coefficients(p, q, terms), None
        z_plain, z_swapped = z, None
    else:  # both orders in one evaluation
        both = coefficients(torch.stack([p, q]), torch.stack([q, p]), terms)
        table, swapped = both[:, :, 0], both[:, :, 1]
        z_swapped = torch.where(swap, z, torch.zeros_like(z))
        z_plain = z - z_swapped
    # state[0] = (A, dA/dp, dA/dq) and state[1] = likewise for B, at steps n-1 (now) and n-2 (old)
    now = torch.zeros((2, 3, *shape), dtype=z.dtype, device=z.device)
    now[:, 0] = 1.0
    old = torch.zeros_like(now)
    old[0, 0] = 1.0
    block = RESCALE_EVERY
    for start in range(0, terms, block):
        coef = table[start : start + block] * z_plain
        if swapped is not None and z_swapped is not None:
            coef.addcmul_(swapped[start : start + block], z_swapped)
        # step n: X_n = X_{n-1} + d_n X_{n-2}, dX_n = dX_{n-1} + d_n dX_{n-2} + (dd_n) X_{n-2}
        steps = coef[:, :1].clone().unbind(0)
        coef[:, 0] = 0.0
        for d_n, partials in zip(steps, coef.unbind(0), strict=True):
            new = torch.addcmul(now, d_n, old)
            new.addcmul_(partials, old[:, :1])
            old, now = now, new
        # one factor for the last two steps keeps the recurrence intact
        scale = now[0, :1].abs().reciprocal_()
        now.mul_(scale)
        old.mul_(scale)
    a, da_dp, da_dq = now[0].unbind(0)
    b, db_dp, db_dq = now[1].unbind(0)
    f = b / a
    return f, (db_dp - f * da_dp) / a, (db_dq - f * da_dq) / a
