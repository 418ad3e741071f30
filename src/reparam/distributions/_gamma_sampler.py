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
Every call does bounded, fixed-shape work with no host synchronisation (see
:func:`_cube_root_draws`): a draw still rejected after ``1 + POOL_ROUNDS`` rounds (probability
below 8e-10 per element for valid ``alpha``) is set to the mode of the proposal, ``x = d``, a
deterministic point inside the support. Concentrations that are not positive and
finite (NaN, inf, ``<= 0``) give NaN samples: they are replaced by 1 for the draw and the NaN
enters through the per-concentration factor ``d`` (no extra per-sample work).

Small calls (at most :data:`NATIVE_MAX` samples, float32/float64 on the CPU or CUDA, outside
``torch.func.vmap``) take ``torch._standard_gamma`` instead, for ``Gamma(alpha)`` with
``alpha >= 1`` (the boosted concentration below 1): one fused kernel, no host synchronisation
and fixed shapes, where the vectorised sampler's ~50 tensor operations cost ~100 us per call
whatever its size. The choice depends on the call's size, dtype and device only (Python values
known before the call), so eager calls, ``torch.jit.trace`` replays and ``torch.compile``d
graphs draw the same values. Under ``vmap`` (where torch has no ``randomness="same"`` rule for
``_standard_gamma`` on a batched concentration) the vectorised sampler is used at every size, so
``vmap`` draws equal those of eager calls above :data:`NATIVE_MAX` only.

The acceptance test is written with ``log1p`` (``d (1 - v + log v) = d (3 log1p(w) - 3w - 3w^2 -
w^3)``, ``w = c z``), so in float32 it stays within ``~sqrt(d) * 1e-7`` of the exact test even for
concentrations of 1e4.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

REJECTION_RATE_BOUND = 0.05  # Marsaglia-Tsang rejects below 0.05/alpha of draws (measured: 0.048 at 1)
POOL_ROUNDS = 6  # redraws of the rejected: 7 rejections in a row have probability below 8e-10
NATIVE_MAX = 12288  # torch._standard_gamma up to here (module docstring); measured crossover ~1.1e4
_NATIVE_DTYPES = (torch.float32, torch.float64)
_NATIVE_DEVICES = ("cpu", "cuda")


def _vmap_active() -> bool:
    """Whether a ``torch.func.vmap`` transform is active (random draws are then batched by
    torch's randomness rules, which ``_standard_gamma`` lacks for ``randomness="same"``)."""
    if torch.compiler.is_compiling() or not torch._C._are_functorch_transforms_active():
        return False
    interpreters = torch._functorch.pyfunctorch.retrieve_all_functorch_interpreters()
    return any(i.key() == torch._C._functorch.TransformType.Vmap for i in interpreters)


def native(like: Tensor, n: int) -> bool:
    """Whether a call of ``n`` samples in ``like``'s dtype and device draws with
    ``torch._standard_gamma`` (module docstring); decided from Python values only."""
    return (
        n <= NATIVE_MAX
        and like.dtype in _NATIVE_DTYPES
        and like.device.type in _NATIVE_DEVICES
        and not _vmap_active()
    )


def boosted_gamma(alpha: Tensor, shape: torch.Size) -> Tensor:
    """``x ~ Gamma(alpha, 1)`` for finite ``alpha >= 1`` broadcast to ``shape``: one
    ``torch._standard_gamma`` kernel for small calls (:func:`native`), else the vectorised
    sampler (:func:`_cube_root_draws`)."""
    if native(alpha, shape.numel()):
        out: Tensor = torch._standard_gamma(alpha.expand(shape))
        return out
    root = _cube_root_draws(alpha, shape)
    # clamped like torch's kernel, so a sample is never below the smallest normal number
    return (root * root).mul_(root).mul_(alpha - 1.0 / 3.0).clamp_(min=torch.finfo(alpha.dtype).tiny)


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


def _pool_budget(n: int) -> int:
    """Slots for the redraws: the expected rejections ``0.05 n`` plus eight standard deviations
    plus 16 (exceeded with probability below 1e-15 per call)."""
    expected = REJECTION_RATE_BOUND * n
    return min(n, math.ceil(expected + 8.0 * math.sqrt(expected) + 16.0))


def _cube_root_draws(alpha: Tensor, shape: torch.Size) -> Tensor:
    """``v^{1/3}`` of accepted Marsaglia-Tsang draws for ``alpha >= 1`` broadcast to ``shape``,
    with fixed shapes throughout (no host synchronisation).

    ``alpha`` must be finite (see :func:`_safe`). One round for every element; the first
    :func:`_pool_budget` rejected elements (found by a cumulative sum, gathered into a pool of
    fixed size) are redrawn :data:`POOL_ROUNDS` times at once and take their first accepted
    draw. An element rejected ``1 + POOL_ROUNDS`` times (probability below
    ``0.05^(1 + POOL_ROUNDS)`` = 8e-10), or beyond the pool (below 1e-15 per call), gets
    ``v^{1/3} = 1`` (``x = d``, the proposal's mode).
    """
    n = shape.numel()
    if n == 0:
        return torch.empty(shape, dtype=alpha.dtype, device=alpha.device)
    root, rejected = _round(alpha, shape, alpha)
    root, rejected = root.reshape(-1), rejected.reshape(-1)
    budget = _pool_budget(n)
    # pool slot of each rejected element (slot ``budget`` collects the rest and is dropped)
    position = torch.cumsum(rejected, 0) - 1
    slot = torch.where(rejected & (position < budget), position, budget)
    every = torch.arange(n, device=alpha.device)
    # element ``n`` is a spare one: unused pool slots point at it
    index = torch.full((budget + 1,), n, dtype=torch.long, device=alpha.device).scatter(0, slot, every)
    index = index[:budget]
    flat_alpha = alpha.expand(shape).reshape(-1)
    pooled = torch.cat([flat_alpha, flat_alpha.new_ones(1)]).index_select(0, index)
    again, still = _round(pooled, torch.Size([POOL_ROUNDS, budget]), alpha)
    accepted = ~still
    first = accepted.to(torch.uint8).argmax(0, keepdim=True)  # the first accepted round
    redrawn = again.gather(0, first).squeeze(0)
    redrawn = torch.where(accepted.any(0), redrawn, torch.ones_like(redrawn))
    out = torch.cat([torch.where(rejected, torch.ones_like(root), root), root.new_ones(1)])
    out.index_copy_(0, index, redrawn)
    return out[:n].reshape(shape)


def log_standard_gamma(
    alpha: Tensor, shape: torch.Size | None = None, dtype: torch.dtype | None = None, checked: bool = False
) -> Tensor:
    r"""``log x`` with ``x ~ Gamma(alpha, 1)``, ``alpha`` broadcast to ``shape`` (its own shape by
    default); finite for any ``alpha > 0`` (``log x = log Gamma(alpha + 1) + log(U) / alpha``
    below 1); NaN where ``alpha`` is not positive and finite. The draw of ``Gamma(alpha + 1)``
    runs in ``alpha``'s dtype; the result and the term ``log(U)/alpha`` are in ``dtype``
    (``alpha``'s by default): float64 keeps the digits of ``log x`` near ``-1e4`` that float32
    would lose (e.g. at ``alpha = 1e-4``). ``checked``: the caller has read every concentration
    and found it positive and finite (the draws are the same, the NaN bookkeeping is skipped)."""
    alpha = alpha.detach()
    shape = alpha.shape if shape is None else torch.Size(shape)
    if checked:
        nan_or_zero = None
    else:
        alpha, nan_or_zero = _safe(alpha)
    small = alpha < 1.0
    boosted = torch.where(small, alpha + 1.0, alpha)
    if native(boosted, shape.numel()):
        log_x = torch.log(torch._standard_gamma(boosted.expand(shape)))
        if nan_or_zero is not None:
            log_x = log_x + nan_or_zero
    else:
        log_d = torch.log(boosted - 1.0 / 3.0)
        if nan_or_zero is not None:
            log_d = log_d + nan_or_zero
        log_x = torch.log(_cube_root_draws(boosted, shape)).mul_(3.0).add_(log_d)
    dtype = alpha.dtype if dtype is None else dtype
    # log U / alpha below 1 (zero elsewhere), without asking whether any alpha is below 1
    tiny = torch.finfo(dtype).tiny
    log_u = torch.log(torch.rand(shape, dtype=dtype, device=alpha.device).clamp_(min=tiny))
    alpha = alpha.to(dtype)
    return log_x.to(dtype) + torch.where(small, log_u / alpha, torch.zeros_like(log_u))


def needs_log_space(alpha: Tensor) -> bool:
    """Whether some concentration is below 1 (then draws go through :func:`log_standard_gamma`)."""
    return bool((alpha < 1.0).any())


def standard_gamma(
    alpha: Tensor, shape: torch.Size | None = None, log_space: bool | None = None, checked: bool = False
) -> Tensor:
    """``x ~ Gamma(alpha, 1)``, ``alpha`` broadcast to ``shape``, in ``alpha``'s dtype (clamped to
    its smallest normal number where ``x`` underflows, so ``log x`` stays finite); NaN where
    ``alpha`` is not positive and finite. ``log_space``: :func:`needs_log_space` if known;
    ``checked`` as for :func:`log_standard_gamma`."""
    if not torch.is_grad_enabled() and checked:  # no graph to keep away from: no detach needed
        shape = alpha.shape if shape is None else torch.Size(shape)
        if not (needs_log_space(alpha) if log_space is None else log_space):
            return boosted_gamma(alpha, shape)
    alpha = alpha.detach()
    shape = alpha.shape if shape is None else torch.Size(shape)
    if needs_log_space(alpha) if log_space is None else log_space:
        log_x = log_standard_gamma(alpha, shape, checked=checked)
        return torch.exp(log_x).clamp_(min=torch.finfo(alpha.dtype).tiny)
    if checked:
        return boosted_gamma(alpha, shape)
    alpha, nan_or_zero = _safe(alpha)
    if native(alpha, shape.numel()):
        return torch._standard_gamma(alpha.expand(shape)) + nan_or_zero
    root = _cube_root_draws(alpha, shape)
    return (root * root).mul_(root).mul_(alpha - 1.0 / 3.0 + nan_or_zero)
