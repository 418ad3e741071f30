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


class _ImplicitLink(torch.autograd.Function):
    """Returns ``z0``; backward sends ``grad * weight`` to ``cdf`` (``weight = -1/p``).

    The same derivative as ``z0 + (stop(F) - F) / stop(p)`` without that expression's two
    forward ops and its extra backward op (the generic path is a few elementwise ops per
    sample, so they matter). Differentiable backward: higher derivatives flow as before.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, z0: Tensor, cdf: Tensor, weight: Tensor) -> Tensor:
        ctx.save_for_backward(weight)
        ctx.cdf_meta = (cdf.shape, cdf.dtype)  # type: ignore[attr-defined]
        return z0.view_as(z0)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple[None, Tensor, None]:
        (weight,) = ctx.saved_tensors  # type: ignore[attr-defined]
        shape, dtype = ctx.cdf_meta  # type: ignore[attr-defined]
        return None, (grad.to(dtype) * weight).sum_to_size(shape), None


def implicit_surrogate(
    z0: Tensor, cdf: Tensor, log_density: Tensor | None = None, density: Tensor | None = None
) -> Tensor:
    r"""``z0`` carrying the implicit gradient ``-(dF/dtheta) / p`` (value exactly ``z0``).

    Args:
        z0: detached samples.
        cdf: ``F(z0; theta)``, differentiable in ``theta`` (and in anything ``z0``'s
            conditioning variables depend on).
        log_density: ``log p(z0; theta)``; only its value is used.
        density: ``p(z0; theta)`` itself, instead of ``log_density`` (saves a log and an exp
            where ``p`` is a sum, as for mixtures).

    The density is floored at the smallest normal number so the ratio stays finite.
    """
    tiny = torch.finfo(cdf.dtype).tiny
    if density is not None:
        weight = density.detach().clamp(min=tiny).reciprocal_().neg_()
    elif log_density is not None:
        # -1/p, in place on a fresh tensor: exp(-log p) capped at 1/tiny, negated.
        weight = torch.neg(log_density.detach()).exp_().clamp_(max=1.0 / tiny).neg_()
    else:
        raise TypeError("implicit_surrogate: pass log_density= or density=.")
    if not cdf.requires_grad:
        return z0
    return _ImplicitLink.apply(z0.detach(), cdf, weight.to(cdf.dtype))
