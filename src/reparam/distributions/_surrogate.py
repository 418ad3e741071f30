"""Attach a known derivative ``dz/dtheta`` to a sample without differentiating the sampler.

Every pathwise class in this package draws ``z0`` with gradients off and then returns the
*surrogate*

.. math::
    z = z_0 + \\sum_i (\\theta_i - \\operatorname{stop}(\\theta_i))\\,
        \\operatorname{stop}\\big(\\partial z / \\partial \\theta_i\\big),

whose value is exactly ``z0`` and whose first derivative in ``theta_i`` is the given
``dz/dtheta_i``. The implicit-reparameterization form
``z = z0 - (F(z0; theta) - stop(F(z0; theta))) / stop(p(z0; theta))`` is the same idea with the
derivative left to autograd (Figurnov, Mohamed & Mnih, "Implicit Reparameterization
Gradients", NeurIPS 2018, eq. 5).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor


def attach_gradients(z0: Tensor, pairs: Iterable[tuple[Tensor, Tensor]]) -> Tensor:
    """Return ``z0`` carrying ``dz/dparam = derivative`` for each ``(param, derivative)`` pair.

    ``param`` must broadcast against ``z0``; ``derivative`` is shaped like ``z0`` and must be
    finite (it is detached here). Parameters that do not require grad are skipped.
    """
    out = z0
    for param, derivative in pairs:
        if isinstance(param, Tensor) and param.requires_grad:
            delta = param - param.detach()
            if not bool(torch.isfinite(param.detach()).all()):
                # An infinite parameter (a one-sided bound) would make inf - inf = NaN.
                delta = torch.where(torch.isfinite(param.detach()), delta, torch.zeros_like(delta))
            out = out + delta.to(z0.dtype) * derivative.detach().to(z0.dtype)
    return out


def implicit_surrogate(z0: Tensor, cdf: Tensor, log_density: Tensor) -> Tensor:
    r"""``z0 - (F - stop F) / stop p``: value ``z0``, gradient ``-(dF/dtheta) / p`` (implicit).

    Args:
        z0: detached samples.
        cdf: ``F(z0; theta)``, differentiable in ``theta`` (and in anything ``z0``'s
            conditioning variables depend on).
        log_density: ``log p(z0; theta)``; only its value is used. The density is floored at the
            smallest normal number so the ratio stays finite.
    """
    tiny = torch.finfo(cdf.dtype).tiny
    inv_density = torch.exp(-log_density.detach()).clamp_(max=1.0 / tiny)
    if cdf.dtype == z0.dtype:
        return torch.addcmul(z0, cdf.detach() - cdf, inv_density)
    return z0 + ((cdf.detach() - cdf) * inv_density).to(z0.dtype)
