"""Attach the implicit derivative ``dz/dtheta = -(dF/dtheta)/p`` to a sample drawn without gradients.

The implicit-reparameterization surrogate ``z = z0 - (F(z0; theta) - stop F) / stop p`` has value
``z0`` and first derivative ``-(dF/dtheta)/p`` (Figurnov, Mohamed & Mnih, "Implicit
Reparameterization Gradients", NeurIPS 2018, eq. 5). :func:`implicit_surrogate` realises it as an
autograd function that returns ``z0`` and whose backward multiplies by ``-1/p``, leaving
``dF/dtheta`` to autograd through the distribution's own ``cdf``. (The dedicated classes, whose
derivatives are known in closed form or by series, use their own deferred autograd functions:
``_gamma_grad.GammaSampleGrad``, ``von_mises._VonMisesSampleGrad``,
``truncated_normal._InversionGrad``.)
"""

from __future__ import annotations

import torch
from torch import Tensor


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
