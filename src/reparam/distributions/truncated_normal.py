"""Truncated normal with explicit pathwise gradients, stable far in either tail."""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Number
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints
from torch.distributions.utils import broadcast_all
from torch.special import log_ndtr, ndtri

from reparam.distributions._apply import apply, distinct
from reparam.distributions._checks import check_finite, check_positive_finite
from reparam.distributions._normal_tails import (
    LOG_SQRT_2PI,
    finite_or_zero,
    inv_log_ndtr,
    log_diff_ndtr,
    log_normal_pdf,
)
from reparam.distributions._support import bound_kind, bounded_support, strictly_inside
from reparam.distributions._surrogate import check_no_forward_mode
from reparam.distributions.inverse_cdf import open_uniform

_Shape = torch.Size | Sequence[int]


def _log_space_quantile(u: Tensor, alpha: Tensor, beta: Tensor, log_z: Tensor) -> Tensor:
    """``xi`` with ``(Phi(xi) - Phi(alpha)) / Z = u`` in log space, float64; on the side of zero
    away from the bulk (mirrored where the whole interval is above 0). Exact to rounding however
    far in a tail the interval lies."""
    flip = alpha > 0
    log_lo = log_ndtr(torch.where(flip, -beta, alpha))
    log_u = torch.where(flip, torch.log1p(-u), torch.log(u))
    xi = inv_log_ndtr(torch.logaddexp(log_lo, log_u + log_z))
    return torch.where(flip, -xi, xi)


LINEAR_FLOOR = 1e-280
# Intervals holding less normal mass than exp(-40) (e.g. [30, 30.5]) keep the log-space path:
# there ndtri's own relative error, amplified by xi^2 in the derivatives, would reach 1e-8.
LINEAR_MIN_LOG_MASS = -40.0


def _linear_quantile(u: Tensor, alpha: Tensor, beta: Tensor, log_z: Tensor) -> Tensor:
    """The same quantile without logarithms, for intervals whose mass ``Z`` is representable:
    ``Phi(xi) = Phi(alpha) + u Z`` below the median and ``Phi(-xi) = Phi(-beta) + (1 - u) Z``
    above, sums of positive terms, so both are accurate to rounding; one ``ndtri``. Elements
    where either sum comes near underflow are NaN: the caller takes
    :func:`_log_space_quantile`'s value there (both evaluated everywhere and picked by mask, no
    host read)."""
    z = torch.exp(log_z)
    # exp(log_ndtr): torch 2.x float64 ndtr loses relative accuracy below -5 (2e-2 at -8, 0 at -10).
    lower = torch.addcmul(torch.exp(log_ndtr(alpha)), u, z)
    upper = torch.addcmul(torch.exp(log_ndtr(-beta)), 1.0 - u, z)
    below = lower < 0.5
    xi = ndtri(torch.where(below, lower, upper))
    xi = torch.where(below, xi, -xi)
    # where the sums near underflow, NaN: the caller takes the log-space value there
    bad = torch.minimum(lower, upper) < LINEAR_FLOOR
    return torch.where(bad, math.nan, xi)


def _standard_quantile(
    u: Tensor, alpha: Tensor, beta: Tensor, log_z: Tensor, interior: bool = False
) -> Tensor:
    """``xi = (F^{-1}(u) - loc)/scale``, float64, inside ``[alpha, beta]``. ``interior``: ``u``
    is known to lie in (0, 1) (fresh uniforms), so the end-point cases are skipped."""
    # both evaluations everywhere, picked per element (no host read of the parameters' values)
    linear = _linear_quantile(u, alpha, beta, log_z)
    use_linear = (log_z > LINEAR_MIN_LOG_MASS) & ~torch.isnan(linear)
    xi = torch.where(use_linear, linear, _log_space_quantile(u, alpha, beta, log_z))
    xi = torch.minimum(torch.maximum(xi, alpha), beta)
    if interior:
        return xi
    return torch.where(u <= 0, alpha, torch.where(u >= 1, beta, xi))


def _quantile_derivatives(
    g: Tensor, g_xi: Tensor | None, u: Tensor, xi: Tensor, alpha: Tensor, beta: Tensor, log_z: Tensor,
    scale: Tensor, needs: tuple[bool, ...],
) -> list[Tensor | None]:
    r"""Gradients for ``(loc, scale, low, high, u)`` of ``z = loc + scale xi`` with
    ``xi = xi(alpha, beta, u)``, given ``g = dL/dz`` and ``g_xi = dL/dxi`` (or None), float64.

    ``dxi/dalpha = (1 - u) phi(alpha)/phi(xi)``, ``dxi/dbeta = u phi(beta)/phi(xi)``,
    ``dxi/du = Z/phi(xi)``, chained through ``alpha = (low - loc)/scale``, ``beta = (high -
    loc)/scale``. Plain torch operations: built with a graph (``create_graph``), they
    differentiate again exactly, to every order. Infinite bounds contribute 0 (no ``inf * 0``).
    """
    need_loc, need_scale, need_low, need_high, need_u = needs
    gs = g if g_xi is None else g + g_xi / scale  # dL/dxi / scale
    d: list[Tensor | None] = [None] * 5
    if need_loc or need_scale or need_low or need_high:
        half_xi2 = 0.5 * xi * xi
        sides = []
        for bound, log_mass in ((alpha, torch.log1p(-u)), (beta, torch.log(u))):
            safe, finite = finite_or_zero(bound)
            ratio = torch.exp(log_mass + half_xi2 - 0.5 * safe * safe)
            sides.append((safe, torch.where(finite, ratio, torch.zeros_like(ratio))))
        (a_safe, d_low), (b_safe, d_high) = sides
        d[2], d[3] = gs * d_low, gs * d_high
        if need_loc:
            d[0] = g - gs * (d_low + d_high)
        if need_scale:
            d[1] = g * xi - gs * (a_safe * d_low + b_safe * d_high)
    if need_u:
        d_u = scale * torch.exp(log_z - log_normal_pdf(xi))
        d[4] = gs * torch.nan_to_num(d_u, posinf=torch.finfo(torch.float64).max)
    return d


class _InversionGrad(torch.autograd.Function):
    r"""Returns the detached sample ``z0`` (and ``xi0``, float64); backward applies the
    closed-form derivatives of the quantile in ``loc``, ``scale``, ``low``, ``high`` (and ``u``
    when it requires grad), each computed only if that input needs a gradient (see
    :class:`TruncatedNormal` and :func:`_quantile_derivatives`).

    Inputs ``(z0, xi0, u, alpha, beta, log_z, scale64, loc, scale, low, high, value)``: the
    float64 quantities of the forward evaluation (``u`` .. ``scale64``, reused by a first-order
    backward), then the parameters and the uniforms. All are tensors passed positionally and
    saved with ``save_for_backward`` (none on ``ctx``), so ``torch.func.vmap``'s generated rule
    batches them.

    Higher derivatives: the standardised output ``xi`` is saved; under ``create_graph`` the
    backward rebuilds ``alpha``, ``beta`` from the parameters and the derivatives from the saved
    ``xi`` with differentiable operations, so differentiating again reaches ``xi``'s own
    dependence on the parameters (back through this function): exact at every order.
    """

    generate_vmap_rule = True  # torch.func.vmap: forward and backward are plain torch ops

    @staticmethod
    def forward(
        z0: Tensor,
        xi0: Tensor,
        u: Tensor,
        alpha: Tensor,
        beta: Tensor,
        log_z: Tensor,
        scale64: Tensor,
        loc: Tensor,
        scale: Tensor,
        low: Tensor,
        high: Tensor,
        value: Tensor,
    ) -> tuple[Tensor, Tensor]:
        return z0.view_as(z0), xi0.view_as(xi0)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, ...], output: tuple[Tensor, Tensor]) -> None:
        forward_values, params = inputs[2:7], inputs[7:]
        ctx.params = [(t.shape, t.dtype) for t in params]
        ctx.save_for_backward(*params, output[1], *forward_values)

    @staticmethod
    def backward(ctx: Any, grad: Tensor, grad_xi: Tensor | None) -> tuple[Tensor | None, ...]:
        needs = tuple(ctx.needs_input_grad[7:])
        loc, scale, low, high, value, xi, u, alpha, beta, log_z, scale64 = ctx.saved_tensors
        if torch.is_grad_enabled():  # a graph for higher derivatives: rebuild from the inputs
            loc64, scale64 = loc.double(), scale.double()
            alpha = TruncatedNormal._standardise(low.double(), loc64, scale64)
            beta = TruncatedNormal._standardise(high.double(), loc64, scale64)
            u, log_z = value.double(), log_diff_ndtr(alpha, beta)
        g_xi = None if grad_xi is None else grad_xi.double()
        d = _quantile_derivatives(grad.double(), g_xi, u, xi, alpha, beta, log_z, scale64, needs)
        out: list[Tensor | None] = [None] * 7
        for need, deriv, (shape, dtype) in zip(needs, d, ctx.params, strict=True):
            out.append(deriv.sum_to_size(shape).to(dtype) if need and deriv is not None else None)
        return tuple(out)


class TruncatedNormal(Distribution):
    r"""Normal ``N(loc, scale^2)`` restricted to ``[low, high]`` (either end may be infinite).

    With :math:`\alpha = (low - loc)/scale`, :math:`\beta = (high - loc)/scale`,
    :math:`Z = \Phi(\beta) - \Phi(\alpha)` and :math:`\xi = (z - loc)/scale`:

    .. math::
        p(z) = \frac{\phi(\xi)}{scale\, Z}, \qquad F(z) = \frac{\Phi(\xi) - \Phi(\alpha)}{Z}.

    Sampling inverts ``F`` with sums of positive terms and one ``ndtri`` (``Phi(xi) = Phi(alpha)
    + u Z`` below the median, ``Phi(-xi) = Phi(-beta) + (1 - u) Z`` above), and in log space
    (``log Phi`` and its inverse) for intervals holding less than ``exp(-40)`` of the normal's
    mass, so bounds tens of scales from ``loc`` on either side give exact-to-rounding samples
    instead of NaN or a pile-up at the bound. ``rsample`` carries the implicit derivatives in
    closed form (Figurnov et al. 2018), evaluated only in ``backward``:

    .. math::
        \frac{\partial z}{\partial low} = (1 - F)\frac{\phi(\alpha)}{\phi(\xi)}, \quad
        \frac{\partial z}{\partial high} = F\,\frac{\phi(\beta)}{\phi(\xi)}, \quad
        \frac{\partial z}{\partial loc} = 1 - \frac{\partial z}{\partial low}
            - \frac{\partial z}{\partial high}, \quad
        \frac{\partial z}{\partial scale} = \xi - \alpha\frac{\partial z}{\partial low}
            - \beta\frac{\partial z}{\partial high},

    each evaluated in log space; derivatives of every order are exact (``create_graph=True``:
    :class:`_InversionGrad` rebuilds them differentiably from the saved standardised sample).
    Moments follow Johnson, Kotz & Balakrishnan, "Continuous
    Univariate Distributions" vol. 1, ch. 13.10. Internal arithmetic is float64.

    Args:
        loc, scale: the parent normal's mean and standard deviation (``scale > 0``).
        low, high: the truncation bounds, ``low < high``; ``-inf``/``inf`` for one-sided.
    """

    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {
        "loc": constraints.real,
        "scale": constraints.positive,
        "low": constraints.dependent(is_discrete=False, event_dim=0),
        "high": constraints.dependent(is_discrete=False, event_dim=0),
    }
    has_rsample = True

    def __init__(
        self,
        loc: Tensor | float,
        scale: Tensor | float,
        low: Tensor | float = -math.inf,
        high: Tensor | float = math.inf,
        validate_args: bool | None = None,
    ) -> None:
        self.loc, self.scale, self.low, self.high = broadcast_all(loc, scale, low, high)
        if all(isinstance(v, Number) for v in (loc, scale, low, high)):
            batch_shape = torch.Size()
        else:
            batch_shape = self.loc.size()
        if validate_args is not False:
            self._check_bounds()
        super().__init__(batch_shape, validate_args=validate_args)

    def _check_bounds(self) -> None:
        check_finite(type(self).__name__, loc=self.loc)
        check_positive_finite(type(self).__name__, scale=self.scale)
        if bool(torch.isnan(self.low).any() | torch.isnan(self.high).any()):
            raise ValueError("TruncatedNormal: low and high must not be NaN; use -inf/inf for no bound.")
        if not bool((self.low < self.high).all()):
            raise ValueError(
                "TruncatedNormal: low must be < high elementwise (got low >= high somewhere); "
                "swap the bounds or widen the interval."
            )

    def expand(
        self, batch_shape: _Shape, _instance: TruncatedNormal | None = None
    ) -> TruncatedNormal:
        new: TruncatedNormal = self._get_checked_instance(TruncatedNormal, _instance)
        batch_shape = torch.Size(batch_shape)
        new.loc = self.loc.expand(batch_shape)
        new.scale = self.scale.expand(batch_shape)
        new.low = self.low.expand(batch_shape)
        new.high = self.high.expand(batch_shape)
        super(TruncatedNormal, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:
        """``real``, ``greater_than(low)``, ``less_than(high)`` or ``interval(low, high)`` by the
        kind of bounds (torch's constraints, so ``biject_to(support)`` works); a batch mixing
        kinds gets :class:`reparam.distributions._support.MixedBounds`, whose ``biject_to`` is
        registered elementwise. The kind is found once per instance (one host sync)."""
        kind = self.__dict__.get("_bound_kind")
        if kind is None:
            kind = self._bound_kind = bound_kind(self.low, self.high)
        return bounded_support(self.low, self.high, kind)

    # -- standardised quantities, float64 -------------------------------------------------
    def _std(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        loc, scale = self.loc.double(), self.scale.double()
        alpha = self._standardise(self.low.double(), loc, scale)
        beta = self._standardise(self.high.double(), loc, scale)
        return alpha, beta, log_diff_ndtr(alpha, beta), scale

    @staticmethod
    def _standardise(bound: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
        """``(bound - loc)/scale``; an infinite bound stays a constant, so its derivative in
        ``loc`` and ``scale`` is 0 rather than ``inf * 0 = NaN``."""
        safe, finite = finite_or_zero(bound)
        return torch.where(finite, (safe - loc) / scale, bound)

    def _mills(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``phi(alpha)/Z``, ``phi(beta)/Z``, ``alpha phi(alpha)/Z``, ``beta phi(beta)/Z``."""
        alpha, beta, log_z, _ = self._std()
        out = []
        for bound in (alpha, beta):
            safe, finite = finite_or_zero(bound)
            ratio = torch.where(finite, torch.exp(log_normal_pdf(safe) - log_z), torch.zeros_like(safe))
            out += [ratio, safe * ratio]
        return out[0], out[2], out[1], out[3]

    @property
    def mean(self) -> Tensor:
        pa, pb, _, _ = self._mills()
        return (self.loc.double() + self.scale.double() * (pa - pb)).to(self.loc.dtype)

    @property
    def mode(self) -> Tensor:
        return torch.maximum(torch.minimum(self.loc, self.high), self.low)

    @property
    def variance(self) -> Tensor:
        pa, pb, apa, bpb = self._mills()
        var = self.scale.double() ** 2 * (1.0 + apa - bpb - (pa - pb) ** 2)
        return var.to(self.loc.dtype)

    def entropy(self) -> Tensor:
        _, _, apa, bpb = self._mills()
        _, _, log_z, scale = self._std()
        ent = 0.5 + LOG_SQRT_2PI + torch.log(scale) + log_z + 0.5 * (apa - bpb)
        return ent.to(self.loc.dtype)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        _, _, log_z, scale = self._std()
        xi = (value.double() - self.loc.double()) / scale
        lp = log_normal_pdf(xi) - torch.log(scale) - log_z
        outside = (value < self.low) | (value > self.high)
        lp = torch.where(outside, torch.full_like(lp, -math.inf), lp)
        return lp.to(torch.result_type(value, self.loc))

    def cdf(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        alpha, beta, log_z, scale = self._std()
        xi = (value.double() - self.loc.double()) / scale
        xi = torch.minimum(torch.maximum(xi, alpha), beta)
        return torch.exp(log_diff_ndtr(alpha, xi) - log_z).to(torch.result_type(value, self.loc))

    def icdf(self, value: Tensor) -> Tensor:
        r"""``F^{-1}(u)``, differentiable in ``u`` and in all four parameters (closed form)."""
        return self._invert(value, torch.result_type(value, self.loc))

    def _invert(self, value: Tensor, dtype: torch.dtype, interior: bool = False) -> Tensor:
        with torch.no_grad():
            alpha, beta, log_z, scale = self._std()
            # Invalid parameters (loc not finite, scale not positive and finite, low >= high or
            # NaN) give NaN samples: a NaN alpha carries through the quantile (parameter-shaped).
            valid = torch.isfinite(self.loc) & (self.scale > 0) & (self.scale < math.inf)
            alpha = torch.where(valid & (self.low < self.high), alpha, torch.full_like(alpha, math.nan))
            u = value.detach().double()
            xi = _standard_quantile(u, alpha, beta, log_z, interior)
            z0 = (self.loc.double() + scale * xi).to(dtype)
            # Rounding in loc + scale * xi (loc far from the interval) may step past a bound, and
            # the open one-sided supports exclude the bound itself: clamp (parameter-shaped bounds).
            z0 = torch.clamp(z0, *strictly_inside(self.low.to(dtype), self.high.to(dtype)))
        check_no_forward_mode("TruncatedNormal.rsample/icdf")
        # distinct: torch.compile refuses a tensor given twice (a float64 scale is its own
        # .double(); a user may pass one tensor as two parameters)
        params = (self.loc, self.scale, self.low, self.high, value)
        out: Tensor = apply(_InversionGrad, *distinct(z0, xi, u, alpha, beta, log_z, scale, *params))[0]
        return out

    def rsample(self, sample_shape: _Shape = ()) -> Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        return self._invert(open_uniform(shape, self.loc.double()), self.loc.dtype, interior=True)

    def __repr__(self) -> str:
        return (
            f"TruncatedNormal(loc: {self.loc.size()}, scale: {self.scale.size()}, "
            f"low: {self.low.size()}, high: {self.high.size()})"
        )
