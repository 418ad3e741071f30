r"""Closed-form KL divergences registered with ``torch.distributions.kl.register_kl``.

Importing :mod:`reparam.distributions` registers them, so ``torch.distributions.kl_divergence``
works for:

* ``VonMises || VonMises`` (torch's class and :class:`reparam.distributions.VonMises`), with
  :math:`A(\kappa) = I_1(\kappa)/I_0(\kappa)`:

  .. math::
      KL = \kappa_p A(\kappa_p)\,(1 - \tfrac{\kappa_q}{\kappa_p}\cos(\mu_p - \mu_q))
           + \log I_0(\kappa_q) - \log I_0(\kappa_p)

  (``E_p[cos(x - mu_p)] = A(kappa_p)``); Bessel functions through the scaled ``i0e``/``i1e``, so
  large concentrations do not overflow.
* ``TruncatedNormal || TruncatedNormal`` and ``TruncatedNormal || Normal``: with ``p`` on
  ``[a_p, b_p]`` inside ``q``'s ``[a_q, b_q]`` (a ``Normal`` has the whole line),

  .. math::
      KL = -H(p) + \log\sigma_q + \log Z_q + \tfrac12\log 2\pi
           + \frac{\mathrm{Var}_p + (\mathbb{E}_p - \mu_q)^2}{2\sigma_q^2},

  :math:`Z_q` the mass of ``q``'s parent normal on its interval; :math:`+\infty` where ``p``
  has mass outside ``q``'s interval. Float64 inside.
* ``InvertibleGaussian || InvertibleGaussian`` with the same temperature and delta: the KL of
  the Gaussians (the softmax++ map is invertible, and KL is invariant under a shared
  invertible map); different temperatures raise ``NotImplementedError`` (no closed form).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Normal
from torch.distributions import VonMises as TorchVonMises
from torch.distributions.kl import kl_divergence, register_kl
from torch.special import i0e, i1e

from reparam.distributions._normal_tails import log_diff_ndtr
from reparam.distributions.invertible_gaussian import InvertibleGaussian
from reparam.distributions.truncated_normal import TruncatedNormal


@register_kl(TorchVonMises, TorchVonMises)
def kl_von_mises(p: TorchVonMises, q: TorchVonMises) -> Tensor:
    """KL between von Mises distributions (closed form, module docstring)."""
    kp, kq = p.concentration, q.concentration
    ratio: Tensor = i1e(kp) / i0e(kp)  # A(kappa_p), the scale factors cancel (typed Any by torch)

    def log_i0(k: Tensor) -> Tensor:
        return torch.log(i0e(k)) + k

    return ratio * (kp - kq * torch.cos(p.loc - q.loc)) + log_i0(kq) - log_i0(kp)


def _kl_truncated_to_gaussian(
    p: TruncatedNormal, loc: Tensor, scale: Tensor, low: Tensor, high: Tensor
) -> Tensor:
    loc, scale = loc.double(), scale.double()
    mean, var = p.mean.double(), p.variance.double()
    inf = torch.full_like(loc, math.inf)
    alpha = torch.where(torch.isfinite(low), (low.double() - loc) / scale, -inf)
    beta = torch.where(torch.isfinite(high), (high.double() - loc) / scale, inf)
    log_z = log_diff_ndtr(alpha, beta)
    quadratic = (var + (mean - loc) ** 2) / (2 * scale**2)
    cross = torch.log(scale) + log_z + 0.5 * math.log(2 * math.pi) + quadratic
    kl = cross - p.entropy().double()
    inside = (p.low >= low) & (p.high <= high)
    return torch.where(inside, kl, torch.full_like(kl, math.inf)).to(p.loc.dtype)


@register_kl(TruncatedNormal, TruncatedNormal)
def kl_truncated_normal(p: TruncatedNormal, q: TruncatedNormal) -> Tensor:
    """KL between truncated normals (closed form, module docstring); ``inf`` where ``p``'s
    interval is not inside ``q``'s."""
    return _kl_truncated_to_gaussian(p, q.loc, q.scale, q.low, q.high)


@register_kl(TruncatedNormal, Normal)
def kl_truncated_normal_normal(p: TruncatedNormal, q: Normal) -> Tensor:
    """KL from a truncated normal to a normal (closed form, module docstring)."""
    loc, scale = torch.broadcast_tensors(q.loc, q.scale)
    low, high = torch.full_like(loc, -math.inf), torch.full_like(loc, math.inf)
    return _kl_truncated_to_gaussian(p, loc, scale, low, high)


@register_kl(InvertibleGaussian, InvertibleGaussian)
def kl_invertible_gaussian(p: InvertibleGaussian, q: InvertibleGaussian) -> Tensor:
    """KL of the underlying Gaussians, summed over the ``K - 1`` coordinates (same temperature
    and delta required)."""
    if p.temperature != q.temperature or p.delta != q.delta:
        raise NotImplementedError(
            "kl_divergence(InvertibleGaussian, InvertibleGaussian) has a closed form only for the "
            f"same temperature and delta, got temperatures {p.temperature}, {q.temperature} and "
            f"deltas {p.delta}, {q.delta}; use the same ones, or estimate the KL by Monte Carlo "
            "with p.log_prob(y) - q.log_prob(y) at y = p.rsample()."
        )
    return kl_divergence(p.base, q.base).sum(-1)
