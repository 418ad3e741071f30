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

Two evaluations of the same ``N``-th convergent:

* **host path** (CPU, values readable; :func:`implicit_logit_grad`): ``g_n = 1 + d_n/g_{n+1}``
  from the last term to the first (:func:`fraction_backward`, one operation per term) and the
  derivatives as a reverse-mode sum over a term axis; the concentration-only tables (both
  orders of the coefficients, the digammas) are built once on the concentrations' shape.
  ``N`` from :func:`plan` (one or two host reads). Memory ``N x chunk``.
* **sync-free path** (accelerators, compile, vmap; :func:`beta_continued_fraction`): the
  forward recurrences with their derivatives, streaming (memory ``O(n)``), at the fixed
  worst-case :data:`SYNC_FREE_TERMS`, float64.

Precision (issue 14, point 3: float32 wherever the per-sample derivative stays within 1e-4 of
float64). A float32 caller on the host path gets float32 arithmetic throughout, with
:func:`float32_terms` (3/4 of the float64 count), for ``a, b >= 0.1``, ``a <= 300``,
``b <= 30``: measured worst 4e-5 relative to the float64 evaluation at the same float32 sample
(at (0.1, 30); quantiles 1e-9..1 - 1e-9). Everything else stays float64: concentrations
below 0.1 (2e-5..8e-5 already at (1e-3, 1..3), 2e-4 at (30, 1e-3)), large ``b`` with a small
or moderate ``a`` (2e-4 at (3, 100), 1e-3 at (0.1, 100), 0.3 at (3, 1e3): the first partial
numerators approach -1, ``g`` approaches 0 and its derivatives cancel against the digammas),
``a`` beyond 300 (5e-5 at (1e3, 0.1..30), 2e-4 at 1e4), and the sync-free path (its fixed term
count must serve every concentration up to 1e4). The parameter-only quantities are always
computed in float64 and rounded once.

Example::

    >>> import torch
    >>> f, f_p, f_q = beta_continued_fraction(torch.tensor(2.0, dtype=torch.float64),
    ...     torch.tensor(3.0, dtype=torch.float64), torch.tensor([0.2], dtype=torch.float64), 30)
    >>> round(float(f), 6)  # I_0.2(2, 3) = 0.1808 = 0.2^2 0.8^3 / (2 B(2, 3)) F = 0.12288 F
    1.471354
"""

from __future__ import annotations

import bisect
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
# float32 evaluation (a float32 caller, host path) for a, b >= 0.1, a <= 300, b <= 30: see plan()
FLOAT32_FROM = 0.1
FLOAT32_UP_TO = 30.0  # the second concentration b (the one whose large values cost float32 digits)
FLOAT32_FIRST_UP_TO = 300.0  # the first concentration a
FLOAT32_TERMS_FRACTION = 0.75  # float32 aims at ~2e-6 truncation, not 1e-7: see float32_terms()
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
    """``(terms_for(p, q), float32 suffices)`` from one host read of one number: a float32
    caller may evaluate in float32 (:func:`implicit_logit_grad`, with :func:`float32_terms`)
    where ``p, q >= FLOAT32_FROM``, ``p <= FLOAT32_FIRST_UP_TO`` and ``q <= FLOAT32_UP_TO``
    (``p`` the first concentration ``a``). There the implicit derivative at a float32 sample
    stays within 4e-5 relative of its float64 evaluation (measured over quantiles 1e-9..1 - 1e-9
    of 88 pairs of that region, worst at (0.1, 30); ``tests/distributions/test_incomplete_beta.py``
    holds it to 5e-5). Outside, float32 loses digits: 2e-4 at (3, 100) or (1e4, 1), 1e-3 at
    (0.1, 100), 0.3 at (3, 1e3) (large ``b`` with small ``a``: the fraction's first partial
    numerators approach -1 and its derivatives cancel against the digammas), so float64 is kept.

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
    if p.numel() <= PYTHON_PLAN_UP_TO and q.numel() <= PYTHON_PLAN_UP_TO:
        terms, in_range, _ = _plan_values(p.detach().reshape(-1).tolist(), q.detach().reshape(-1).tolist())
        return terms, in_range
    need, small, _ = _need(p, q)
    fits = (small.min() >= FLOAT32_FROM) & (p.max() <= FLOAT32_FIRST_UP_TO) & (q.max() <= FLOAT32_UP_TO)
    # one read: the term count, plus 1e6 when float32 does not suffice (needs stay below 1e3)
    code = float(need.max() + torch.where(fits, 0.0, 1e6))
    return _round_terms(code % 1e6), code < 1e6


PYTHON_PLAN_UP_TO = 64  # concentrations read as Python numbers (two reads, no tensor operations)


def host_path(first: Tensor, *rest: Tensor) -> bool:
    """Whether the host-path evaluation applies to all these tensors: ``not sync_free`` for the
    first (which also covers the thread-wide conditions: forced, compiling, tracing), and the
    per-tensor conditions (CPU, not wrapped by ``torch.func``) for the others."""
    if sync_free(first):
        return False
    wrapped = torch._C._functorch.is_functorch_wrapped_tensor
    return all(t.device.type == "cpu" and not wrapped(t) for t in rest)


def plan_for(p: Tensor, q: Tensor, float32_caller: bool) -> tuple[int, bool]:
    """``(terms, evaluate in float32)`` for a caller of the given dtype on the host path: the
    float64 count of :func:`plan`, or, where float32 suffices for a float32 caller, the float32
    count (:func:`float32_need` per pair when the concentrations are few enough to be read as
    numbers, else :func:`float32_terms` of the float64 count)."""
    if (
        float32_caller
        and 0 < p.numel() <= PYTHON_PLAN_UP_TO
        and 0 < q.numel() <= PYTHON_PLAN_UP_TO
        and host_path(p, q)
    ):
        ps, qs = p.detach().reshape(-1).tolist(), q.detach().reshape(-1).tolist()
        terms, in_range, terms32 = _plan_values(ps, qs)
        return (terms32, True) if in_range else (terms, False)
    terms, in_range = plan(p, q)
    if float32_caller and in_range:
        return float32_terms(terms), True
    return terms, False


def _plan_values(ps: list[float], qs: list[float]) -> tuple[int, bool, int]:
    """``(*plan(), float32 count)`` from the concentrations as numbers (broadcast against each
    other); the float32 count is meaningful where the second item is True."""
    if len(ps) != len(qs):
        ps, qs = (ps * len(qs), qs) if len(ps) == 1 else (ps, qs * len(ps))
    need, in_range, need32 = 0.0, True, 0
    for p, q in zip(ps, qs, strict=True):
        small, large = min(p, q), max(p, q)
        if not (small > 0 and large < math.inf):  # NaN, inf or <= 0: NaN derivatives, any count
            in_range = False
            continue
        skew = min(SKEW_PER_ROOT * math.sqrt(large), SKEW_MAX) if small < SKEW_BELOW else 0.0
        need = max(need, TERMS_BASE + TERMS_PER_ROOT * math.sqrt(p + q) + skew)
        in_range = in_range and small >= FLOAT32_FROM and p <= FLOAT32_FIRST_UP_TO and q <= FLOAT32_UP_TO
        if in_range:
            need32 = max(need32, float32_need(p, q))
    return _round_terms(need), in_range, need32


# Terms for a truncation error below 2e-6 (float32 evaluations), measured as in float32_need():
# row i is the smaller concentration FLOAT32_GRID[i], column j the larger FLOAT32_GRID[i + j].
FLOAT32_GRID = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 50.0, 100.0, 200.0, 300.0)
FLOAT32_NEED = (
    (8, 8, 8, 10, 12, 16, 20, 24, 26, 28, 32, 34, 36),
    (8, 8, 10, 12, 16, 18, 22, 24, 26, 30, 32, 32),
    (8, 8, 10, 14, 16, 18, 20, 22, 24, 26, 26),
    (8, 10, 10, 12, 14, 14, 16, 16, 18, 18),
    (8, 10, 10, 12, 12, 12, 14, 14, 14),
    (10, 12, 12, 14, 14, 14, 14, 14),
    (14, 14, 16, 16, 16, 18, 18),
    (18, 18, 20, 22, 22, 24),
    (20, 22, 24, 26, 26),
)
FLOAT32_MARGIN = 2  # terms added to the largest need at the corners of a pair's grid cell


def float32_need(p: float, q: float) -> int:
    """Terms for a float32 evaluation at concentrations ``(p, q)`` of the float32 region
    (:func:`plan`): the largest measured need at the four corners of the grid cell holding
    ``(min(p, q), max(p, q))``, plus :data:`FLOAT32_MARGIN` (the need grows monotonically with
    either concentration, so the corners bound the cell). Measured: the fewest even terms whose
    implicit derivative is within 2e-6 relative of a 400-term float64 evaluation at quantiles
    1e-9..1 - 1e-9 and the switching point, for both ``(p, q)`` and ``(q, p)``; e.g. 10 at
    (2, 3), 26 at (0.1, 30) and (30, 300), against 24, 40 and 60 for float64's 1e-7."""
    small, large = min(p, q), max(p, q)
    grid = FLOAT32_GRID
    i = min(max(bisect.bisect_right(grid, small) - 1, 0), len(grid) - 2)
    j = min(max(bisect.bisect_right(grid, large) - 1, 0), len(grid) - 2)
    corners = [
        FLOAT32_NEED[min(r, c, len(FLOAT32_NEED) - 1)][max(r, c) - min(r, c, len(FLOAT32_NEED) - 1)]
        for r in (i, i + 1)
        for c in (j, j + 1)
    ]
    return max(corners) + FLOAT32_MARGIN


def float32_terms(terms: int) -> int:
    """Terms for a float32 evaluation given the float64 count ``terms`` (for ~1e-7): three
    quarters of it, even. Measured need for a truncation error below 2e-6 over quantiles
    1e-9..1 - 1e-9 and the switching point, a in [0.1, 300], b in [0.1, 30]: at most 0.75 of the
    float64 count everywhere (e.g. 24 of 32 at (100, 30), 22 of 40 at (0.1, 30), 10 of 24 at
    (2, 3)); float32 rounding itself costs up to 4e-5 (:func:`plan`)."""
    return 2 * math.ceil(FLOAT32_TERMS_FRACTION * terms / 2)


def coefficients(p: Tensor, q: Tensor, terms: int) -> Tensor:
    """``(d_n, dd_n/dp, dd_n/dq) / z`` for ``n = 1..terms``, shaped ``(terms, 3, *p.shape)``
    (``p``, ``q`` of one shape; ``terms`` even), all terms at once."""
    half = terms // 2
    m = torch.arange(half, dtype=p.dtype, device=p.device).reshape((half,) + (1,) * p.dim())
    # odd n = 2m + 1, m = 0..half-1: c = -r s/(t u), r = p + m, s = p + q + m, t = p + 2m,
    # u = t + 1; dc/dq = c/s, dc/dp = c (1/r + 1/s - 1/t - 1/u) = -((r + s) + c (t + u))/(t u)
    r = p + m
    s = (p + q) + m
    t = r + m
    u = t + 1
    tu = t * u
    c = (r * s).div_(tu).neg_()
    odd = torch.stack([c, ((r + s) + c * (t + u)).div_(tu).neg_(), c / s], 1)
    # even n = 2m', m' = m + 1 = 1..half: t' = p + 2m' - 1 = u, u' = u + 1, w = m'/(t' u'),
    # c = w (q - m'); dc/dq = w, dc/dp = -c (1/t' + 1/u') = -c (t' + u')/(t' u')
    m = m + 1
    u_even = u + 1
    tu = u * u_even
    w = m / tu
    c = w * (q - m)
    even = torch.stack([c, (c * (u + u_even)).div_(tu).neg_(), w.expand_as(c)], 1)
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


def order_table(a: Tensor, b: Tensor, terms: int) -> Tensor:
    """``(c_n, dc_n/da, dc_n/db)`` for ``n = 1..terms`` (``d_n = c_n z``) in both orders of the
    concentrations, shaped ``(terms, 3, 2, *a.shape)``: index 0 of the third axis is the plain
    order ``(p, q) = (a, b)``, index 1 the exchanged one ``(p, q) = (b, a)`` (whose partials in
    ``p`` and ``q`` are the ones in ``b`` and ``a``). ``a``, ``b`` of one shape; ``terms`` even."""
    pair = torch.stack([a, b])
    both = coefficients(pair, pair.flip(0), terms)
    plain, exchanged = both[:, :, 0], both[:, :, 1]
    return torch.stack([plain, torch.stack([exchanged[:, 0], exchanged[:, 2], exchanged[:, 1]], 1)], 2)


def fraction_backward(d: Tensor, d_prime: Tensor) -> tuple[Tensor, Tensor]:
    r"""``(g_1, dg_1/dtheta)`` of ``g_n = 1 + d_n/g_{n+1}``, ``g_{N+1} = 1`` (so ``F = 1/g_1``,
    the module's fraction after ``N`` terms), evaluated from the last term to the first.

    ``d`` is ``(N, n)`` (the partial numerators with ``z`` included), ``d_prime`` ``(N, k, n)``
    their derivatives in ``k`` parameters. The values take one operation per term; the
    derivatives are then a reverse-mode sum over the term axis, whatever ``N``:

    .. math::
        \frac{dg_1}{d\theta} = \sum_{n=1}^{N} \frac{d_n'}{g_{n+1}}
            \prod_{k=1}^{n-1} \Big(-\frac{d_k}{g_{k+1}^2}\Big), \qquad
        -\frac{d_k}{g_{k+1}^2} = \frac{1 - g_k}{g_{k+1}}.

    Every step divides by a ``g`` on the fast side of the fraction, where ``|d_1| < 1`` and the
    tails stay near 1 (no rescaling needed, unlike the forward recurrence). Memory is ``N n``.
    """
    g1, weight = _fraction_weights(d.clone())
    return g1, (weight.unsqueeze(1) * d_prime).sum(0)


def _fraction_weights(d: Tensor, work: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``(g_1, w)`` with ``w_n = prod_{k<n} (-d_k/g_{k+1}^2) / g_{n+1}`` (shaped like ``d``), so
    that ``dg_1/dtheta = sum_n w_n d_n'`` (:func:`fraction_backward`). ``work``: a buffer shaped
    ``(3 N + 1, *d.shape[1:])`` to evaluate in (reused across passes, so that its pages are
    touched once per call rather than once per pass: a first write costs ~10x an operation).
    ``d`` is overwritten by the weights."""
    terms = d.shape[0]
    if work is None or work.shape[1:] != d.shape[1:]:
        work = torch.empty((3 * terms + 1, *d.shape[1:]), dtype=d.dtype, device=d.device)
    g, inverse, ratio = work[: terms + 1], work[terms + 1 : 2 * terms + 1], work[2 * terms + 1 :]
    g[terms] = 1.0
    one = torch.ones((), dtype=d.dtype, device=d.device)
    rows, numerators = g.unbind(0), d.unbind(0)
    for k in range(terms - 1, -1, -1):
        torch.addcdiv(one, numerators[k], rows[k + 1], out=rows[k])
    torch.reciprocal(g[1:], out=inverse)  # 1/g_{n+1}
    torch.neg(g[:-1], out=ratio).add_(1.0).mul_(inverse)  # (1 - g_n)/g_{n+1} = -d_n/g_{n+1}^2
    weight = d  # the weights overwrite d (no longer needed): w_1 = 1, w_{n+1} = w_n ratio_n
    weight[0] = 1.0
    if d[0].numel() < 1024 or terms < 2:  # cumprod along the leading axis is slow for long rows
        torch.cumprod(ratio[:-1], 0, out=weight[1:])
    else:
        w_rows, r_rows = weight.unbind(0), ratio.unbind(0)
        for k in range(1, terms):
            torch.mul(w_rows[k - 1], r_rows[k - 1], out=w_rows[k])
    weight.mul_(inverse)
    return g[0], weight


def _broadcast(*shapes: torch.Size) -> torch.Size:
    """``torch.broadcast_shapes`` in plain Python (torch's goes through its reference
    implementation, ~10 us a call); shapes that do not broadcast raise."""
    rank = max(len(s) for s in shapes)
    out = [1] * rank
    for s in shapes:
        for i, n in enumerate(s, rank - len(s)):
            if n != 1:
                if out[i] not in (1, n):
                    raise RuntimeError(f"shapes {[tuple(s) for s in shapes]} do not broadcast")
                out[i] = n
    return torch.Size(out)


TRANSPOSE_FROM = 8192  # elements from which the (trailing, leading) layout pays for its copies


def _chunk(terms: int) -> int:
    """Elements per pass of :func:`implicit_logit_grad`: about 2^18 stored values (cache-sized)."""
    return max(1024, (1 << 18) // max(terms, 1))


def implicit_logit_grad(
    x: Tensor, y: Tensor, log_x: Tensor, log_y: Tensor, a: Tensor, b: Tensor, terms: int
) -> tuple[Tensor, Tensor]:
    r"""``(d logit(x)/da, d logit(x)/db)`` for ``x ~ Beta(a, b)``, given ``x``, ``y = 1 - x`` and
    their logarithms (all of one dtype, which the evaluation keeps), from the fraction after
    ``terms`` terms evaluated by :func:`fraction_backward`.

    With ``s`` the side (``s = 1`` where ``x > (a + 1)/(a + b + 2)``, the fraction then taken
    at ``z = y`` with the concentrations exchanged) and ``g_1 = 1/F``,

    .. math::
        \frac{d\,\mathrm{logit}\,x}{da} = \frac{k}{g_1}\Big(\log x + \psi(a + b) - \psi(a)
            - \frac{1 - s}{a} - \frac{1}{g_1}\frac{\partial g_1}{\partial a}\Big), \qquad
        \frac{d\,\mathrm{logit}\,x}{db} = \frac{k}{g_1}\Big(\log y + \psi(a + b) - \psi(b)
            - \frac{s}{b} - \frac{1}{g_1}\frac{\partial g_1}{\partial b}\Big),

    ``k = -1/a`` (``s = 0``) or ``1/b`` (``s = 1``): the formula of
    :mod:`reparam.distributions._beta_grad` with ``F_p = -g_{1,p}/g_1^2``. Everything that
    depends on the concentrations only (the coefficients of both orders, the digammas, ``k``)
    is evaluated once on the concentrations' shape in float64 and blended per element as
    ``plain + s (exchanged - plain)``; the per-element work is ``terms`` divisions and a fixed
    number of operations, in passes over the leading dimension that keep ``terms x chunk``
    values in cache.
    """
    out_shape = _broadcast(x.shape, a.shape, b.shape)
    if out_shape.numel() == 0 or terms == 0:  # nothing to evaluate (plan gives 0 terms then)
        empty = x.new_zeros(out_shape)
        return empty, empty.clone()
    shape = out_shape if out_shape else torch.Size((1,))
    dtype, rank = x.dtype, len(shape)
    a, b = torch.broadcast_tensors(a.detach().double(), b.detach().double())
    params = (1,) * (rank - a.dim()) + a.shape
    lead = next((i for i, n in enumerate(params) if n != 1), rank)
    if 0 < lead < rank and params[lead:] == shape[lead:] and shape.numel() >= TRANSPOSE_FROM:
        # shared along the leading dimensions, varying along the trailing ones (a Dirichlet's
        # concentration): evaluated as (trailing, leading) so that every broadcast runs along
        # long contiguous rows rather than rows of a few concentrations
        width = math.prod(shape[lead:])
        flat = torch.stack(torch.broadcast_tensors(x, y, log_x, log_y)).expand(4, *shape)
        cols = flat.reshape(4, -1, width).transpose(1, 2).contiguous()
        x_c, y_c, log_x_c, log_y_c = cols.unbind(0)
        a_c, b_c = a.reshape(width, 1), b.reshape(width, 1)
        grads = implicit_logit_grad(x_c, y_c, log_x_c, log_y_c, a_c, b_c, terms)
        both = torch.stack(grads).transpose(1, 2).reshape(2, *out_shape)
        return both[0], both[1]
    a, b = a.reshape(params), b.reshape(params)
    table = order_table(a, b, terms).to(dtype)  # (terms, 3, 2, *params)
    psi_total = torch.digamma(a + b)
    shift_a, shift_b = psi_total - torch.digamma(a), psi_total - torch.digamma(b)
    inv_a, inv_b = a.reciprocal(), b.reciprocal()
    # rows: the constant of d/da, of d/db, the factor k; plain order, then exchanged
    plain_constants = torch.stack([shift_a - inv_a, shift_b, -inv_a]).to(dtype)
    exchanged_constants = torch.stack([shift_a, shift_b - inv_b, inv_b]).to(dtype)
    table_plain, table_delta = table[:, :, 0], table[:, :, 1] - table[:, :, 0]
    constants_delta = exchanged_constants - plain_constants
    x, y, log_x, log_y = (v.reshape((1,) * (rank - v.dim()) + v.shape) for v in (x, y, log_x, log_y))
    swap = x > ((a + 1) / (a + b + 2)).to(dtype)
    side = swap.to(dtype).expand(shape)
    z = torch.where(swap, y, x).expand(shape)
    logs = torch.stack(torch.broadcast_tensors(log_x, log_y)).expand(2, *shape)
    rows = shape[0]
    per_row = max(math.prod(shape[1:]), 1)
    step = max(1, _chunk(terms) // per_row)
    outs = []
    work: Tensor | None = None  # buffers reused across passes (single-pair passes)
    for start in range(0, max(rows, 1), step):
        part = slice(start, start + step)
        own = params[0] > 1  # concentrations that vary along the leading dimension
        t_plain = table_plain[:, :, part] if own else table_plain
        t_delta = table_delta[:, :, part] if own else table_delta
        c_plain = plain_constants[:, part] if own else plain_constants
        c_delta = constants_delta[:, part] if own else constants_delta
        s = side[part]
        zp = z[part].reshape(-1)
        if t_plain[:, 0].numel() == terms:  # one pair of concentrations for the whole pass
            # d_n = (c_n + s dc_n) z; sum_n w_n (c_n' + s dc_n') = (c'^T w) + s (dc'^T w): a
            # matrix product instead of a (terms, 3, elements) table
            plain, delta = t_plain.reshape(terms, 3), t_delta.reshape(terms, 3)
            s = s.reshape(-1)
            if work is None or work.shape[1] != s.numel():
                work = s.new_empty((4 * terms + 1, s.numel()))
            d = torch.mul(delta[:, :1], s, out=work[3 * terms + 1 :]).add_(plain[:, :1]).mul_(zp)
            g1, weight = _fraction_weights(d, work[: 3 * terms + 1])
            sums = torch.cat([plain[:, 1:], delta[:, 1:]], 1).T @ weight  # (4, elements)
            dg1 = sums[2:].mul_(s).add_(sums[:2])
        else:
            coef = (t_delta * s).add_(t_plain).flatten(2)  # (terms, 3, elements)
            g1, dg1 = fraction_backward(coef[:, 0] * zp, coef[:, 1:])
        inverse = g1.reciprocal()
        const = (c_delta * s).add_(c_plain).flatten(1)
        out = logs[:, part].reshape(2, -1) + const[:2]
        out.addcmul_(dg1, zp * inverse, value=-1.0).mul_(const[2] * inverse)
        outs.append(out)
    both = outs[0] if len(outs) == 1 else torch.cat(outs, 1)
    grad_a, grad_b = both.reshape(2, *out_shape).unbind(0)
    return grad_a, grad_b
