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
    >>> round(float(f), 12)  # I_0.2(2, 3) = 0.1808 = 0.2^2 0.8^3 / (2 B(2, 3)) F
    1.103515625
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

# Terms for an error below ~1e-10 relative (measured in tests/distributions/test_incomplete_beta.py
# over quantiles down to 1e-9): needed 18 at (10, 10), 40 at (100, 100), 90 at (1e3, 1e3), i.e.
# ~2 sqrt(p + q); with one concentration below ~3 and the other large, more: 50 at (0.1, 30), 66
# at (0.1, 100), 86 at (0.1, 1e3), saturating near 90.
TERMS_BASE = 16.0
TERMS_PER_ROOT = 2.5
SKEW_PER_ROOT = 6.0
SKEW_MAX = 70.0
SKEW_BELOW = 3.0
RESCALE_EVERY = 4  # |d_n| < 1 on the fast side: four steps grow A, B by less than 2^4


def terms_for(p: Tensor, q: Tensor) -> int:
    """Continued-fraction terms enough for every pair of concentrations in ``p``, ``q`` (an even
    number; one host synchronisation, on the parameters' own shape)."""
    if p.numel() == 0 or q.numel() == 0:
        return 0
    total, small, large = p + q, torch.minimum(p, q), torch.maximum(p, q)
    skew = torch.where(small < SKEW_BELOW, (SKEW_PER_ROOT * large.sqrt()).clamp(max=SKEW_MAX), 0.0)
    need = float((TERMS_BASE + TERMS_PER_ROOT * total.sqrt() + skew).max())
    return 2 * math.ceil(need / 2)


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

    ``p``, ``q`` broadcast against ``z`` (float64). With ``swap`` (a boolean tensor shaped like
    ``z``) the roles are exchanged element by element: ``(p, q)`` there is ``(q, p)``; the
    coefficients are then evaluated on the parameters' own shape for both orders and picked per
    element, which costs less than evaluating them per element when ``p`` and ``q`` are shared.
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
    table = coefficients(p, q, terms)
    swapped = None if swap is None else coefficients(q, p, terms)
    # state[0] = (A, dA/dp, dA/dq) and state[1] = likewise for B, at steps n-1 (now) and n-2 (old)
    now = torch.zeros((2, 3, *shape), dtype=z.dtype, device=z.device)
    now[:, 0] = 1.0
    old = torch.zeros_like(now)
    old[0, 0] = 1.0
    for n in range(1, terms + 1):
        coef = table[n - 1] if swapped is None else torch.where(swap, swapped[n - 1], table[n - 1])
        coef = coef * z
        new = torch.addcmul(now, coef[0], old)
        new[:, 1:].addcmul_(coef[1:], old[:, :1])
        if n % RESCALE_EVERY == 0:  # one factor for both steps keeps the recurrence intact
            scale = new[0, :1].abs().reciprocal_()
            new.mul_(scale)
            now.mul_(scale)
        old, now = now, new
    a, da_dp, da_dq = now[0].unbind(0)
    b, db_dp, db_dq = now[1].unbind(0)
    f = b / a
    return f, (db_dp - f * da_dp) / a, (db_dq - f * da_dq) / a
