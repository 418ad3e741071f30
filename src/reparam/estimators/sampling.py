r"""Variance reduction by better sampling: antithetic pairs, Latin-hypercube stratification,
randomised quasi-Monte Carlo and importance sampling of the base noise.

Every sampler draws the *standard normal base noise* :math:`\epsilon` of a reparameterizable
``q`` (shape ``(num_samples, *noise_shape)``, see :func:`noise_transform`) together with
log-weights, and the transform :math:`z = g_\phi(\epsilon)` turns it into samples that carry
gradients. Each noise row is marginally :math:`\mathcal N(0, I)` (or is importance-weighted
back to it), so for any integrable ``f``

.. math::
    \mathbb E\Big[\frac1N \sum_n w_n f(g_\phi(\epsilon_n))\Big] = \mathbb E_{q_\phi}[f(z)],

and, ``g_\phi`` being differentiable, the same holds for the gradient: every sampler keeps
the pathwise (and the score-function) estimator unbiased; only the dependence *between* rows
changes, which is where the variance goes down. Use them as
``rp.Pathwise(sampling=rp.Antithetic())`` or ``rp.ScoreFunction(sampling=rp.QMC())``.

Supported ``q``: ``Normal``, ``MultivariateNormal``, ``LowRankMultivariateNormal``,
``Independent`` of a supported base, and any univariate distribution with an ``icdf``
(``z = F^{-1}(\Phi(\epsilon))``: Uniform, Exponential, Laplace, Cauchy, ...).

References:
    Owen, "Monte Carlo theory, methods and examples", 2013, chapters 8-10 and 17.
    Buchholz, Wenzel & Mandt, "Quasi-Monte Carlo Variational Inference", ICML 2018.
    Mohamed, Rosca, Figurnov & Mnih, "Monte Carlo Gradient Estimation in Machine Learning",
    JMLR 2020, section 7 (variance reduction).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor
from torch.distributions import (
    Distribution,
    Independent,
    LowRankMultivariateNormal,
    MultivariateNormal,
    Normal,
    TransformedDistribution,
)

Transform = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class NoiseTransform:
    """``z = fn(eps)`` for standard-normal ``eps`` shaped ``(n, *noise_shape)``;
    ``noise_shape`` starts with ``q.batch_shape`` so weights can be credited per batch element."""

    noise_shape: torch.Size
    fn: Transform


def _normal(q: Normal) -> NoiseTransform:
    return NoiseTransform(q.batch_shape, lambda eps: q.loc + q.scale * eps)


def _independent(q: Independent) -> NoiseTransform:
    return noise_transform(q.base_dist)


def _multivariate_normal(q: MultivariateNormal) -> NoiseTransform:
    tril = q._unbroadcasted_scale_tril

    def fn(eps: Tensor) -> Tensor:
        return q.loc + (tril @ eps.unsqueeze(-1)).squeeze(-1)

    return NoiseTransform(q.batch_shape + q.event_shape, fn)


def _low_rank(q: LowRankMultivariateNormal) -> NoiseTransform:
    rank = q.cov_factor.shape[-1]
    dim = q.event_shape[0]

    def fn(eps: Tensor) -> Tensor:
        low, diag = eps[..., :rank], eps[..., rank:]
        # (torch types LowRankMultivariateNormal's parameters as Any)
        z: Tensor = q.loc + (q.cov_factor @ low.unsqueeze(-1)).squeeze(-1) + q.cov_diag.sqrt() * diag
        return z

    return NoiseTransform(q.batch_shape + torch.Size((rank + dim,)), fn)


def _has_icdf(q: Distribution) -> bool:
    """Whether ``q`` is univariate with an ``icdf`` that is implemented all the way down: a
    ``TransformedDistribution`` (``LogNormal``, ``InverseGamma``, ...) inverts through its base,
    so ``InverseGamma`` (a transformed ``Gamma``, which has no ``icdf``) does not qualify."""
    if q.event_shape != torch.Size():
        return False
    if isinstance(q, TransformedDistribution):
        return _has_icdf(q.base_dist)
    return type(q).icdf is not Distribution.icdf


def _inverse_cdf(q: Distribution) -> NoiseTransform:
    def fn(eps: Tensor) -> Tensor:
        u = torch.special.ndtr(eps)
        tiny = torch.finfo(u.dtype).eps
        return q.icdf(u.clamp(tiny, 1.0 - tiny))

    return NoiseTransform(q.batch_shape, fn)


TRANSFORMS: dict[type, Callable[[Distribution], NoiseTransform]] = {
    Normal: _normal,  # type: ignore[dict-item]
    Independent: _independent,  # type: ignore[dict-item]
    MultivariateNormal: _multivariate_normal,  # type: ignore[dict-item]
    LowRankMultivariateNormal: _low_rank,  # type: ignore[dict-item]
}


def _unsupported(q: Distribution, sampler: object | None) -> TypeError:
    """The error for a ``q`` the samplers cannot transform: names the sampler, ``q`` and the
    alternatives."""
    supported = ", ".join(k.__name__ for k in TRANSFORMS if k is not Independent)
    who = "sampling= options need" if sampler is None else f"sampling={sampler!r} needs"
    return TypeError(
        f"{who} a known transform of standard normal noise, and {type(q).__name__} has none "
        f"(supported: {supported}, Independent of them, and univariate distributions whose icdf "
        f"is implemented). Drop sampling= for this q (plain i.i.d. samples), e.g. "
        "rp.Pathwise() or rp.ScoreFunction() without sampling=."
    )


def noise_transform(q: Distribution, sampler: object | None = None) -> NoiseTransform:
    """The standard-normal reparameterization of ``q`` used by the samplers (``sampler`` only
    names the sampler in the error for an unsupported ``q``)."""
    if type(q) is Independent:
        return noise_transform(q.base_dist, sampler)
    builder = TRANSFORMS.get(type(q))
    if builder is not None:
        return builder(q)
    if _has_icdf(q):
        return _inverse_cdf(q)
    raise _unsupported(q, sampler)


def _dtype(q: Distribution) -> torch.dtype:
    mean = q.mean
    return mean.dtype if mean.is_floating_point() else torch.get_default_dtype()


def _device(q: Distribution) -> torch.device:
    return q.mean.device


def _clamped_ndtri(u: Tensor) -> Tensor:
    # u in [0, 1) from Sobol / strata; keep it strictly inside so ndtri stays finite. The
    # clamp moves probability mass of at most 2 * eps: a bias far below Monte Carlo error.
    tiny = torch.finfo(u.dtype).eps
    z: Tensor = torch.special.ndtri(u.clamp(tiny, 1.0 - tiny))  # (typed Any by torch)
    return z


@runtime_checkable
class Sampler(Protocol):
    """``sampler.noise(shape, num_samples, dtype, device) -> (eps, log_weights | None)``;
    ``eps`` shaped ``(num_samples, *shape)``, log-weights shaped like ``eps`` (summed later)."""

    def noise(
        self, shape: torch.Size, num_samples: int, dtype: torch.dtype, device: torch.device
    ) -> tuple[Tensor, Tensor | None]: ...


@dataclass(frozen=True)
class Antithetic:
    r"""Antithetic pairs: draw :math:`N/2` noise rows :math:`\epsilon` and use both
    :math:`\epsilon` and :math:`-\epsilon` (for an ``icdf`` family, :math:`u` and :math:`1-u`).

    Each row is marginally :math:`\mathcal N(0, I)`, so the mean over rows is unbiased; the
    pair is negatively correlated for monotone ``f``, and for ``f`` linear in ``z`` around the
    mean the odd part cancels exactly. Needs an even ``num_samples``. Cost: no extra
    evaluations. Reference: Hammersley & Morton, "A new Monte Carlo technique: antithetic
    variates", 1956; Owen 2013, section 8.2.
    """

    def noise(
        self, shape: torch.Size, num_samples: int, dtype: torch.dtype, device: torch.device
    ) -> tuple[Tensor, Tensor | None]:
        if num_samples % 2:
            raise ValueError(
                f"Antithetic() pairs samples, so num_samples must be even; got {num_samples}. "
                f"Use num_samples={num_samples + 1}."
            )
        half = torch.randn((num_samples // 2, *shape), dtype=dtype, device=device)
        return torch.cat([half, -half]), None


@dataclass(frozen=True)
class Stratified:
    r"""Stratified sampling of every noise coordinate (Latin hypercube sampling).

    For each coordinate :math:`d` independently, the unit interval is cut into :math:`N`
    strata and each sample takes one of them: :math:`u_{n,d} = (\pi_d(n) + v_{n,d}) / N` with
    :math:`\pi_d` a uniform random permutation and :math:`v \sim U(0,1)`; then
    :math:`\epsilon = \Phi^{-1}(u)`. Each row is marginally uniform, so the estimator is
    unbiased; the variance of additive (main-effect) parts of ``f`` drops from :math:`O(1/N)`
    to :math:`o(1/N)` and never exceeds :math:`N/(N-1)` times the i.i.d. variance.
    Cost: no extra evaluations. Reference: McKay, Beckman & Conover, Technometrics 1979;
    Owen 2013, section 10.3.
    """

    def noise(
        self, shape: torch.Size, num_samples: int, dtype: torch.dtype, device: torch.device
    ) -> tuple[Tensor, Tensor | None]:
        work = torch.float64
        coords = (num_samples, *shape)
        ranks = torch.rand(coords, device=device).argsort(0).to(work)
        u = (ranks + torch.rand(coords, dtype=work, device=device)) / num_samples
        return _clamped_ndtri(u).to(dtype), None


_SOBOL_BITS = 30  # binary digits per coordinate, as in torch.quasirandom.SobolEngine
_SOBOL_MAXDIM = torch.quasirandom.SobolEngine.MAXDIM


_DIRECTIONS: dict[tuple[int, torch.device], Tensor] = {}


def _sobol_directions(dim: int, device: torch.device) -> Tensor:
    """The Sobol direction numbers ``(dim, 30)`` (int64; digit 1 of a coordinate is bit 29),
    Joe & Kuo's table as torch initialises it, built once per ``(dim, device)`` and kept on
    ``device``: later calls neither rebuild nor copy it (a constant under ``torch.compile``)."""
    found = _DIRECTIONS.get((dim, device))
    if found is None:
        # a plain tensor even when the first call comes inside a torch.func transform (which
        # would wrap the new tensor, and torch's in-place initialiser cannot fill a wrapper)
        with torch._C._DisableFuncTorch():
            state = torch.zeros(dim, _SOBOL_BITS, dtype=torch.long)
            torch._sobol_engine_initialize_state_(state, dim)
            found = _DIRECTIONS[(dim, device)] = state.to(device)
    return found


# What ``torch.compiler.assume_constant_result`` does, without its import of torch._dynamo at
# ``import reparam`` time (about a second, and it probes every optional package).
_sobol_directions._dynamo_marked_constant = True  # type: ignore[attr-defined]


def scrambled_sobol(num_samples: int, dim: int, device: torch.device) -> Tensor:
    r"""The first ``num_samples`` points of a randomly scrambled Sobol sequence in
    :math:`[0, 1)^{dim}`, float64, drawn on ``device`` from torch's global generator with no
    host sync.

    Point :math:`i` (Gray-code order, as ``SobolEngine``) is :math:`x_i = \bigoplus_l
    g_l(i)\, v_l`, :math:`g(i) = i \oplus \lfloor i/2 \rfloor`. The scrambling is Matousek's
    random linear matrix scramble (each coordinate's digit vector times a random unit
    lower-triangular binary matrix, applied to the direction numbers) plus a random digital
    shift: the shift makes every point marginally uniform on the :math:`2^{-30}` grid, the
    nonsingular matrices keep the net structure (the even cover of the cube).
    Reference: Matousek, "On the L2-discrepancy for anchored boxes", J. Complexity 1998;
    Owen 2013, chapter 17.
    """
    bits = _SOBOL_BITS
    place = (bits - 1) - torch.arange(bits, device=device)  # digit k sits at bit 29 - k
    directions = _sobol_directions(dim, device)  # (dim, bits): direction l, as an int
    digits = ((directions.unsqueeze(-1) >> place) & 1).to(torch.float32)  # (dim, l, k)
    lower = torch.randint(0, 2, (dim, bits, bits), device=device, dtype=torch.float32).tril(-1)
    lower = lower + torch.eye(bits, device=device, dtype=torch.float32)
    # digit sums are at most 30: exact in float32 (integer matmul has no CUDA kernel)
    mixed = torch.einsum("dkj,dlj->dlk", lower, digits).remainder(2).to(torch.long)
    scrambled = (mixed << place).sum(-1)  # (dim, bits)
    shift = (torch.randint(0, 2, (dim, bits), device=device) << place).sum(-1)
    index = torch.arange(num_samples, device=device)
    gray = index ^ (index >> 1)
    points = shift.expand(num_samples, dim).clone()
    for level in range(max(num_samples - 1, 1).bit_length()):  # a Python count: no sync
        points ^= ((gray >> level) & 1).unsqueeze(-1) * scrambled[:, level]
    return points.to(torch.float64) * 2.0**-bits


@dataclass(frozen=True)
class QMC:
    r"""Randomised quasi-Monte Carlo: scrambled Sobol points pushed through :math:`\Phi^{-1}`.

    The :math:`N` rows are the first points of a scrambled Sobol sequence in
    :math:`[0,1)^D` (:func:`scrambled_sobol`: a random linear matrix scramble and digital
    shift, drawn on ``q``'s device from torch's global generator, so ``torch.manual_seed``
    makes it reproducible; no host sync, nothing copied per call); the scrambling makes
    each point marginally uniform, hence the estimator unbiased, while the points jointly
    cover the cube far more evenly than i.i.d. draws. For smooth ``f`` the variance decays
    like :math:`O(N^{-2})` or faster instead of :math:`O(N^{-1})` (Buchholz et al. 2018);
    powers of two for :math:`N` balance best. ``D`` (the noise size of one sample, see
    :func:`noise_transform`) must be at most 21201. Cost: no extra evaluations.
    Reference: Buchholz, Wenzel & Mandt, "Quasi-Monte Carlo Variational Inference",
    ICML 2018; Owen, "Scrambling Sobol' and Niederreiter-Xing points", J. Complexity 1998.
    """

    def noise(
        self, shape: torch.Size, num_samples: int, dtype: torch.dtype, device: torch.device
    ) -> tuple[Tensor, Tensor | None]:
        dim = math.prod(shape)
        if dim == 0:  # an empty batch: no coordinates to draw
            return torch.zeros((num_samples, *shape), dtype=dtype, device=device), None
        if dim > _SOBOL_MAXDIM:
            raise ValueError(
                f"QMC() draws Sobol points of dimension {dim}, above SobolEngine's maximum "
                f"{_SOBOL_MAXDIM}; use Stratified() or Antithetic() for a q this large."
            )
        u = scrambled_sobol(num_samples, dim, device)
        return _clamped_ndtri(u).reshape(num_samples, *shape).to(dtype), None


@dataclass(frozen=True)
class ImportanceSampling:
    r"""Importance sampling of the base noise from a wider Gaussian, :math:`\mathcal N(0, s^2)`.

    Rows are drawn as :math:`\epsilon \sim r = \mathcal N(0, s^2 I)` and weighted by
    :math:`w = p(\epsilon)/r(\epsilon)`, :math:`p = \mathcal N(0, I)`:

    .. math::
        \mathbb E_p[f(g_\phi(\epsilon))] = \mathbb E_r[w(\epsilon) f(g_\phi(\epsilon))],

    and since ``w`` does not depend on :math:`\phi` the pathwise gradient of the weighted
    mean is unbiased too. With :math:`s > 1` the tails of ``q`` are visited more often, which
    helps costs that grow fast in the tails; the weights' variance grows like
    :math:`(s^2/\sqrt{2s^2-1})^D` with the noise size ``D``, so keep ``s`` close to 1 in high
    dimension (the estimator stays unbiased for any :math:`s > 1/\sqrt2`). Weights are
    credited per batch element like log-densities. Cost: no extra evaluations.
    Reference: Owen 2013, chapter 9; Mohamed et al. 2020, section 7.
    """

    scale: float = 1.2

    def __post_init__(self) -> None:
        if not self.scale > math.sqrt(0.5):
            raise ValueError(
                f"ImportanceSampling(scale) needs scale > 1/sqrt(2) ~ 0.707 for finite weight "
                f"variance, got {self.scale}; values in [1, 1.5] are typical."
            )

    def noise(
        self, shape: torch.Size, num_samples: int, dtype: torch.dtype, device: torch.device
    ) -> tuple[Tensor, Tensor | None]:
        eps = self.scale * torch.randn((num_samples, *shape), dtype=dtype, device=device)
        # log N(e; 0, 1) - log N(e; 0, s^2) = log s - e^2 (1 - 1/s^2) / 2
        log_w = math.log(self.scale) - 0.5 * eps.square() * (1.0 - 1.0 / self.scale**2)
        return eps, log_w


def draw(sampler: Sampler, q: Distribution, num_samples: int) -> tuple[Tensor, Tensor | None]:
    """Samples ``z`` of ``q`` (carrying gradients to its parameters) and per-row log-weights
    shaped ``(num_samples, *noise_shape)`` (``None`` when all weights are one)."""
    if not isinstance(sampler, Sampler):
        raise TypeError(
            f"sampling must be None or a sampler such as rp.Antithetic(), rp.Stratified(), "
            f"rp.QMC() or rp.ImportanceSampling(), got {type(sampler).__name__}."
        )
    transform = noise_transform(q, sampler)
    eps, log_w = sampler.noise(transform.noise_shape, num_samples, _dtype(q), _device(q))
    try:
        return transform.fn(eps), log_w
    except NotImplementedError:  # an icdf declared but not implemented further down
        raise _unsupported(q, sampler) from None


def weights_for(log_w: Tensor | None, costs: Tensor) -> Tensor | None:
    """Importance weights summed (in log space) down to the shape of ``costs``."""
    if log_w is None:
        return None
    extra = log_w.dim() - costs.dim()
    if extra > 0:
        log_w = log_w.sum(dim=tuple(range(costs.dim(), log_w.dim())))
    return log_w.exp().to(costs.dtype)


__all__ = [
    "QMC",
    "Antithetic",
    "ImportanceSampling",
    "NoiseTransform",
    "Sampler",
    "Stratified",
    "draw",
    "noise_transform",
    "scrambled_sobol",
    "weights_for",
]
