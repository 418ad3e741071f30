r"""Vectorised exact sampler for standard gamma variables (Marsaglia & Tsang, 2000).

For ``alpha >= 1``, with ``d = alpha - 1/3`` and ``c = 1/sqrt(9 d)``: draw ``z ~ N(0, 1)``,
``u ~ U(0, 1)``, set ``v = (1 + c z)^3`` and accept ``x = d v`` when ``1 + c z > 0`` and

.. math::
    \log u < \tfrac12 z^2 + d\,(1 - v + \log v);

rejected elements are drawn again (acceptance is above 95% for every ``alpha``). For
``alpha < 1``, ``Gamma(alpha) = Gamma(alpha + 1) U^{1/alpha}`` (sec. 6 of the paper), kept in log
space so that tiny concentrations do not underflow. Reference: G. Marsaglia and W. W. Tsang, "A
simple method for generating gamma variables", ACM TOMS 26(3), 2000.

torch's own ``_standard_gamma`` runs the same algorithm one element at a time (~55 ns per sample
on one core); evaluating all elements at once with torch's vectorised kernels takes ~16 ns.
Every call does bounded work: a draw still rejected after :data:`MAX_ROUNDS` rounds (probability
below ``0.05^MAX_ROUNDS`` per element for valid ``alpha``) is set to the mode of the proposal,
``x = d``, a deterministic point inside the support. Concentrations that are not positive and
finite (NaN, inf, ``<= 0``) give NaN samples: they are replaced by 1 for the draw and the NaN
enters through the per-concentration factor ``d`` (no extra per-sample work).

The acceptance test is written with ``log1p`` (``d (1 - v + log v) = d (3 log1p(w) - 3w - 3w^2 -
w^3)``, ``w = c z``), so in float32 it stays within ``~sqrt(d) * 1e-7`` of the exact test even for
concentrations of 1e4.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

REJECTION_RATE_BOUND = 0.05  # Marsaglia-Tsang rejects below 0.05/alpha of draws (measured: 0.048 at 1)
MAX_ROUNDS = 16  # a valid draw survives 16 rejections with probability below 0.05^16 = 1.5e-21


def valid_concentration(alpha: Tensor) -> Tensor:
    """``alpha > 0`` and finite (False for NaN)."""
    return (alpha > 0) & (alpha < math.inf)


def _safe(alpha: Tensor) -> tuple[Tensor, Tensor]:
    """``(alpha with invalid entries replaced by 1, NaN where invalid else 0)``, both alpha-shaped:
    the sampler runs on the first and adds the second to ``d`` so invalid entries come out NaN."""
    valid = valid_concentration(alpha)
    nan_or_zero = torch.where(valid, torch.zeros_like(alpha), torch.full_like(alpha, math.nan))
    return torch.where(valid, alpha, torch.ones_like(alpha)), nan_or_zero


def _round(alpha: Tensor | float, shape: torch.Size, like: Tensor) -> tuple[Tensor, Tensor]:
    """One Marsaglia-Tsang round for ``alpha >= 1`` (a float, or a tensor broadcasting to
    ``shape``): ``(v^{1/3} = 1 + c z, rejected)``; the sample is ``d v``."""
    d = alpha - 1.0 / 3.0
    c = torch.rsqrt(9.0 * d) if isinstance(d, Tensor) else (9.0 * d) ** -0.5
    z = torch.randn(shape, dtype=like.dtype, device=like.device)
    u = torch.rand(shape, dtype=like.dtype, device=like.device)
    w = z * c
    log_1pw = torch.log1p(w)
    bound = (3.0 + w * (3.0 + w)).mul_(w).sub_(log_1pw, alpha=3.0).mul_(d).sub_(0.5 * z * z)
    # -bound = z^2/2 + d (3 log1p(w) - 3w - 3w^2 - w^3); False (rejected) where log1p gives nan.
    rejected = ~(torch.log(u) < -bound)
    return w.add_(1.0), rejected


def _cube_root_draws(alpha: Tensor, shape: torch.Size) -> Tensor:
    """``v^{1/3}`` of accepted Marsaglia-Tsang draws for ``alpha >= 1`` broadcast to ``shape``.

    ``alpha`` must be finite (see :func:`_safe`). One shared ``alpha``: a few more candidates
    than needed (the rejection rate is below ``0.05/alpha``; five standard deviations plus five
    more), the first accepted ones kept, so a call is one round in all but ~1e-7 of cases.
    Per-element ``alpha``: rejected elements are drawn again in place. At most
    :data:`MAX_ROUNDS` rounds either way; what is left then gets ``v^{1/3} = 1`` (``x = d``).
    """
    if shape.numel() == 0:
        return torch.empty(shape, dtype=alpha.dtype, device=alpha.device)
    if alpha.numel() == 1:
        a, n = float(alpha), shape.numel()
        expected = n * REJECTION_RATE_BOUND / a
        kept: list[Tensor] = []
        for _ in range(MAX_ROUNDS):
            root, rejected = _round(
                a, torch.Size([n + int(expected + 5.0 * math.sqrt(expected) + 5.0)]), alpha
            )
            accepted = root[~rejected][:n]
            kept.append(accepted)
            n -= len(accepted)
            if n == 0:
                break
        else:
            kept.append(torch.ones(n, dtype=alpha.dtype, device=alpha.device))
        return (kept[0] if len(kept) == 1 else torch.cat(kept)).reshape(shape)
    root, rejected = _round(alpha, shape, alpha)
    redo = rejected.nonzero(as_tuple=True)
    for _ in range(MAX_ROUNDS - 1):
        if not len(redo[0]):
            return root
        again, still = _round(alpha.expand(shape)[redo], torch.Size([len(redo[0])]), alpha)
        root[redo] = again
        redo = tuple(i[still] for i in redo)
    root[redo] = 1.0
    return root


def log_standard_gamma(alpha: Tensor, shape: torch.Size | None = None) -> Tensor:
    r"""``log x`` with ``x ~ Gamma(alpha, 1)``, ``alpha`` broadcast to ``shape`` (its own shape by
    default), in ``alpha``'s dtype; finite for any ``alpha > 0`` (``log x = log Gamma(alpha + 1)
    + log(U) / alpha`` below 1); NaN where ``alpha`` is not positive and finite."""
    alpha, nan_or_zero = _safe(alpha.detach())
    shape = alpha.shape if shape is None else torch.Size(shape)
    small = alpha < 1.0
    boosted = torch.where(small, alpha + 1.0, alpha)
    log_d = torch.log(boosted - 1.0 / 3.0) + nan_or_zero
    log_x = torch.log(_cube_root_draws(boosted, shape)).mul_(3.0).add_(log_d)
    if not bool(small.any()):
        return log_x
    tiny = torch.finfo(alpha.dtype).tiny
    log_u = torch.log(torch.rand(shape, dtype=alpha.dtype, device=alpha.device).clamp_(min=tiny))
    return log_x + torch.where(small, log_u / alpha, torch.zeros_like(log_u))


def needs_log_space(alpha: Tensor) -> bool:
    """Whether some concentration is below 1 (then draws go through :func:`log_standard_gamma`)."""
    return bool((alpha < 1.0).any())


def standard_gamma(alpha: Tensor, shape: torch.Size | None = None, log_space: bool | None = None) -> Tensor:
    """``x ~ Gamma(alpha, 1)``, ``alpha`` broadcast to ``shape``, in ``alpha``'s dtype (clamped to
    its smallest normal number where ``x`` underflows, so ``log x`` stays finite); NaN where
    ``alpha`` is not positive and finite. ``log_space``: :func:`needs_log_space` if known."""
    alpha = alpha.detach()
    shape = alpha.shape if shape is None else torch.Size(shape)
    if needs_log_space(alpha) if log_space is None else log_space:
        return torch.exp(log_standard_gamma(alpha, shape)).clamp_(min=torch.finfo(alpha.dtype).tiny)
    alpha, nan_or_zero = _safe(alpha)
    root = _cube_root_draws(alpha, shape)
    return (root * root).mul_(root).mul_(alpha - 1.0 / 3.0 + nan_or_zero)
