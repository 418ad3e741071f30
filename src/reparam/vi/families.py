r"""Gaussian variational families as small modules: ``family()`` builds the distribution.

Each family owns unconstrained parameters and returns a fresh ``torch.distributions`` object on
every call (built with ``validate_args=False``: the constraints hold by construction), so it
composes with any optimizer, with :func:`reparam.vi.elbo` and with
:func:`reparam.vi.detach_parameters`:

* :class:`MeanFieldGaussian`: :math:`q = \prod_d \mathcal N(\mu_d, \sigma_d^2)`,
  :math:`\sigma = \exp(\rho)`; ``2 D`` parameters.
* :class:`FullRankGaussian`: :math:`q = \mathcal N(\mu, LL^\top)`, ``L`` lower triangular
  with a positive diagonal :math:`\exp(\cdot)`; ``D + D(D+1)/2`` parameters.
* :class:`LowRankGaussian`: :math:`q = \mathcal N(\mu, WW^\top + \operatorname{diag}(\sigma^2))`,
  ``W`` of shape ``(D, rank)``; ``D (rank + 2)`` parameters.

Reference: Kucukelbir, Tran, Ranganath, Gelman & Blei, "Automatic differentiation variational
inference", JMLR 2017 (mean-field and full-rank); Ong, Nott & Smith, "Gaussian variational
approximation with a factor covariance structure", JCGS 2018 (low rank plus diagonal).

Every family takes ``dtype=`` and ``device=`` (as torch's factory functions; by default those of
a tensor ``init_loc``) and creates its parameters there.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.distributions import (
    Distribution,
    Independent,
    LowRankMultivariateNormal,
    MultivariateNormal,
    Normal,
)


def _check_dim(dim: object) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be an int >= 1 (the number of latent variables), got {dim!r}.")
    return dim


def _check_scale(init_scale: float) -> float:
    if not (math.isfinite(init_scale) and init_scale > 0):
        raise ValueError(f"init_scale must be finite and > 0, got {init_scale}; 1.0 or 0.1 are typical.")
    return float(init_scale)


Device = torch.device | str | None


def _initial_loc(dim: int, init_loc: Tensor | None, dtype: torch.dtype | None, device: Device) -> Tensor:
    if init_loc is None:
        return torch.zeros(dim, dtype=dtype, device=device)
    loc = torch.as_tensor(init_loc, dtype=dtype, device=device).detach().clone()
    if loc.shape != (dim,):
        raise ValueError(f"init_loc must have shape ({dim},), got {tuple(loc.shape)}.")
    return loc


def _placement(
    init_loc: Tensor | None, dtype: torch.dtype | None, device: Device
) -> tuple[torch.dtype | None, Device]:
    """``dtype`` and ``device`` of the family's parameters: as given, else those of a tensor
    ``init_loc`` (so ``MeanFieldGaussian(d, init_loc=x.new_zeros(d))`` lives with ``x``)."""
    if isinstance(init_loc, Tensor):
        dtype = init_loc.dtype if dtype is None and init_loc.is_floating_point() else dtype
        device = init_loc.device if device is None else device
    return dtype, device


class MeanFieldGaussian(nn.Module):
    r"""Diagonal Gaussian :math:`\mathcal N(\mu, \operatorname{diag}(e^{2\rho}))`.

    ``family()`` returns ``Independent(Normal(loc, log_scale.exp()), 1)`` (event shape ``(D,)``).
    """

    def __init__(
        self,
        dim: int,
        init_scale: float = 1.0,
        init_loc: Tensor | None = None,
        dtype: torch.dtype | None = None,
        device: Device = None,
    ) -> None:
        super().__init__()
        dim = _check_dim(dim)
        dtype, device = _placement(init_loc, dtype, device)
        self.loc = nn.Parameter(_initial_loc(dim, init_loc, dtype, device))
        log_scale = math.log(_check_scale(init_scale))
        self.log_scale = nn.Parameter(torch.full((dim,), log_scale, dtype=dtype, device=device))

    def forward(self) -> Distribution:
        # positivity holds by construction; skipping argument validation saves several tensor
        # ops per step (non-finite values still surface as a non-finite loss)
        base = Normal(self.loc, self.log_scale.exp(), validate_args=False)
        return Independent(base, 1, validate_args=False)


class FullRankGaussian(nn.Module):
    r"""Gaussian with a full covariance :math:`LL^\top`; ``L`` has free entries below the
    diagonal and :math:`\exp(\cdot)` of a free vector on it.

    ``family()`` returns ``MultivariateNormal(loc, scale_tril=L)``.
    """

    def __init__(
        self,
        dim: int,
        init_scale: float = 1.0,
        init_loc: Tensor | None = None,
        dtype: torch.dtype | None = None,
        device: Device = None,
    ) -> None:
        super().__init__()
        dim = _check_dim(dim)
        dtype, device = _placement(init_loc, dtype, device)
        self.loc = nn.Parameter(_initial_loc(dim, init_loc, dtype, device))
        log_scale = math.log(_check_scale(init_scale))
        self.log_diag = nn.Parameter(torch.full((dim,), log_scale, dtype=dtype, device=device))
        self.off_diag = nn.Parameter(torch.zeros(dim, dim, dtype=dtype, device=device))

    def scale_tril(self) -> Tensor:
        return torch.tril(self.off_diag, diagonal=-1) + torch.diag_embed(self.log_diag.exp())

    def forward(self) -> Distribution:
        return MultivariateNormal(self.loc, scale_tril=self.scale_tril(), validate_args=False)


class LowRankGaussian(nn.Module):
    r"""Gaussian with covariance :math:`WW^\top + \operatorname{diag}(e^{2\rho})`, ``W`` of
    shape ``(D, rank)`` (initialised small and random so that its gradient is not zero).

    ``family()`` returns ``LowRankMultivariateNormal(loc, W, exp(2 rho))``.
    """

    def __init__(
        self,
        dim: int,
        rank: int = 1,
        init_scale: float = 1.0,
        init_loc: Tensor | None = None,
        dtype: torch.dtype | None = None,
        device: Device = None,
    ) -> None:
        super().__init__()
        dim = _check_dim(dim)
        if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= dim:
            raise ValueError(f"rank must be an int in [1, dim={dim}], got {rank!r}.")
        scale = _check_scale(init_scale)
        dtype, device = _placement(init_loc, dtype, device)
        self.loc = nn.Parameter(_initial_loc(dim, init_loc, dtype, device))
        self.cov_factor = nn.Parameter(0.01 * scale * torch.randn(dim, rank, dtype=dtype, device=device))
        self.log_diag_scale = nn.Parameter(torch.full((dim,), math.log(scale), dtype=dtype, device=device))

    def forward(self) -> Distribution:
        return LowRankMultivariateNormal(
            self.loc, self.cov_factor, (2.0 * self.log_diag_scale).exp(), validate_args=False
        )


FAMILIES: dict[str, type[nn.Module]] = {
    "mean-field": MeanFieldGaussian,
    "full-rank": FullRankGaussian,
    "low-rank": LowRankGaussian,
}


def make_family(name: str, dim: int, **options: object) -> nn.Module:
    """A family by name: ``"mean-field"``, ``"full-rank"`` or ``"low-rank"`` (``rank=``)."""
    if name not in FAMILIES:
        raise ValueError(f"unknown family {name!r}; choose one of {sorted(FAMILIES)}.")
    return FAMILIES[name](dim, **options)
