r"""Attach implicit derivatives to samples drawn without gradients, to every order we support.

Implicit differentiation of ``F(z; theta) = u`` gives ``dz/dtheta = g(z, theta) = -F_theta/p``
(Figurnov, Mohamed & Mnih, "Implicit Reparameterization Gradients", NeurIPS 2018, eq. 5). Higher
derivatives need ``z``'s own dependence on ``theta`` inside ``g``:

.. math::
    \frac{d^2 z}{d\theta^2} = \frac{\partial g}{\partial\theta} + \frac{\partial g}{\partial z}\,g
    = -\frac{F_{\theta\theta} + 2 F_{\theta z} z' + F_{zz} z'^2}{F_z}.

Two mechanisms, both keeping the value exactly ``z0``:

* :func:`implicit_surrogate` (generic: :class:`~reparam.distributions.Implicit`, mixtures), for a
  ``cdf`` and density differentiable in ``theta`` and ``z``: a first-order link ``z1`` (value
  ``z0``, derivative ``-F_theta/p``) followed by one Newton step
  ``z = z1 - (F(z1; theta) - u)/p(z1; theta)`` with ``u = stop F(z0; theta)``. Newton doubles the
  order of contact, so derivatives of orders 1, 2 and 3 are exact; order 4 and above are not
  (not detectable from inside autograd, so not refused: documented).
* :class:`PathwiseSample` (dedicated classes whose ``g`` is evaluated by series or special
  functions): the output ``z`` is saved and, when a double-backward graph is being built, the
  backward returns ``grad * g(z_out, theta)`` through :class:`_Derivative`, a function of the
  *output*, so differentiating it again reaches ``z``'s dependence on ``theta`` (as torch's
  ``exp`` backward uses its result). :class:`_Derivative`'s own backward supplies ``dg/dz`` and
  ``dg/dtheta`` from a :class:`PathwiseSpec` and refuses a third differentiation with a clear
  error (:class:`_Refuse`). Reusable: a distribution supplies ``first`` (``g``) and ``partials``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

_Ctx = Any


class _ImplicitLink(torch.autograd.Function):
    """Returns ``z0``; backward sends ``grad * weight`` to ``cdf`` (``weight = -1/p``).

    The first-order link of :func:`implicit_surrogate`. Its gradient there is ``grad (1 - F_z/p)``,
    zero to rounding, so in a plain first-order backward (grad mode off and no double-backward
    pass seen on this node) it returns nothing and the ``cdf`` graph behind it is never walked.
    Once a backward with ``create_graph`` has reached it, it always returns the product.
    """

    @staticmethod
    def forward(z0: Tensor, cdf: Tensor, weight: Tensor) -> Tensor:
        return z0.view_as(z0)

    @staticmethod
    def setup_context(ctx: _Ctx, inputs: tuple[Tensor, Tensor, Tensor], output: Tensor) -> None:
        _, cdf, weight = inputs
        ctx.save_for_backward(weight)
        ctx.cdf_meta = (cdf.shape, cdf.dtype)
        ctx.higher = False

    @staticmethod
    def backward(ctx: _Ctx, grad: Tensor) -> tuple[None, Tensor | None, None]:
        if torch.is_grad_enabled():
            ctx.higher = True
        elif not ctx.higher:
            return None, None, None
        (weight,) = ctx.saved_tensors
        shape, dtype = ctx.cdf_meta
        return None, (grad.to(dtype) * weight).sum_to_size(shape), None


def implicit_surrogate(
    z0: Tensor,
    cdf: Callable[[Tensor], Tensor],
    log_density: Callable[[Tensor], Tensor] | None = None,
    density: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    r"""``z0`` carrying the implicit derivative ``-(dF/dtheta)/p``, exact through third order.

    .. math::
        z_1 = \mathrm{link}(z_0), \qquad
        z = z_1 - \frac{F(z_1; \theta) - \mathrm{stop}\,F(z_0; \theta)}{p(z_1; \theta)}

    (value exactly ``z0``; ``z_1`` has the right first derivative, and the Newton step squares the
    error, so ``z`` agrees with the exact inverse through ``theta^3``.) First-order backward walks
    one ``cdf`` and one density graph; the link's ``cdf`` graph only under ``create_graph``.

    Args:
        z0: detached samples.
        cdf: ``z -> F(z; theta)``, differentiable in ``theta`` and ``z``.
        log_density: ``z -> log p(z; theta)``, differentiable in both.
        density: ``z -> p(z; theta)`` instead (saves a log and an exp where ``p`` is a sum).

    The density is floored at the smallest normal number so the ratios stay finite.

    Example:
        >>> d = Normal(loc, scale)
        >>> z = implicit_surrogate(d.sample((8,)), d.cdf, log_density=d.log_prob)
    """
    if (density is None) == (log_density is None):
        raise TypeError("implicit_surrogate: pass exactly one of log_density= or density=.")
    z0 = z0.detach()
    cdf0 = cdf(z0)
    if not cdf0.requires_grad:
        return z0
    tiny = torch.finfo(cdf0.dtype).tiny

    def p(z: Tensor) -> Tensor:
        value = density(z) if density is not None else torch.exp(log_density(z))  # type: ignore[misc]
        return value.to(cdf0.dtype).clamp(min=tiny)

    with torch.no_grad():
        weight = p(z0).reciprocal_().neg_()
    z1 = _ImplicitLink.apply(z0, cdf0, weight)
    step = (cdf(z1) - cdf0.detach()) / p(z1)
    return z1 - step.to(z0.dtype)


# ------------------------------------------------------------------ dedicated classes


class PathwiseSpec:
    """What :class:`PathwiseSample` needs from a distribution: ``g = dz/dtheta`` and its partials.

    ``first(z, theta)`` returns ``g`` (any float dtype, shaped like ``z``); ``partials(z, theta,
    g)`` returns ``(dg/dz, dg/dtheta)`` elementwise (``theta`` broadcast against ``z``), both
    without autograd. ``name`` appears in the error for third derivatives.
    """

    name = "this distribution"

    def first(self, z: Tensor, theta: Tensor) -> Tensor:
        raise NotImplementedError

    def partials(self, z: Tensor, theta: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


class _Refuse(torch.autograd.Function):
    """Identity on ``value``, attached to ``deps``; differentiating it raises (third order)."""

    @staticmethod
    def forward(value: Tensor, name: str, *deps: Tensor) -> Tensor:
        return value.view_as(value)

    @staticmethod
    def setup_context(ctx: _Ctx, inputs: tuple[Any, ...], output: Tensor) -> None:
        ctx.name = inputs[1]

    @staticmethod
    def backward(ctx: _Ctx, *grads: Tensor) -> tuple[None, ...]:
        raise RuntimeError(
            f"{ctx.name}: derivatives of order 3 or higher through rsample are not implemented "
            "(orders 1 and 2 are exact). Use a second-order method, or differentiate an "
            "estimator that needs no third derivative of the samples (e.g. rp.ScoreFunction())."
        )


def refuse_further(value: Tensor, name: str, *deps: Tensor) -> Tensor:
    """``value`` unchanged; when a graph is being built, any derivative through it (in the
    ``deps``, typically the sample and the parameters) raises a clear error naming ``name``."""
    if not torch.is_grad_enabled():
        return value
    return _Refuse.apply(value, name, *deps)


class _Derivative(torch.autograd.Function):
    """``g(z, theta)`` (float64) differentiable once: backward ``(dg/dz, dg/dtheta)`` from the spec."""

    @staticmethod
    def forward(z: Tensor, theta: Tensor, spec: PathwiseSpec) -> Tensor:
        return spec.first(z, theta).double()

    @staticmethod
    def setup_context(ctx: _Ctx, inputs: tuple[Tensor, Tensor, PathwiseSpec], output: Tensor) -> None:
        z, theta, spec = inputs
        ctx.spec = spec
        ctx.save_for_backward(z, theta, output)

    @staticmethod
    def backward(ctx: _Ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        z, theta, g = ctx.saved_tensors
        spec: PathwiseSpec = ctx.spec
        with torch.no_grad():
            d_z, d_theta = spec.partials(z.detach(), theta.detach(), g.detach())
            grad64 = grad.detach().double()
            grad_z = (grad64 * d_z).sum_to_size(z.shape).to(z.dtype)
            grad_theta = (grad64 * d_theta).sum_to_size(theta.shape).to(theta.dtype)
        grad_z = refuse_further(grad_z, spec.name, z, theta, grad)
        grad_theta = refuse_further(grad_theta, spec.name, z, theta, grad)
        return grad_z, grad_theta, None


def pathwise_grad(grad: Tensor, z: Tensor, theta: Tensor, spec: PathwiseSpec) -> Tensor:
    """``sum(grad * g(z, theta))`` reduced to ``theta``'s shape and dtype; differentiable (to
    second order) when grad mode is on, i.e. inside a backward with ``create_graph``."""
    if torch.is_grad_enabled():
        g = _Derivative.apply(z, theta, spec)
    else:
        g = spec.first(z.detach(), theta.detach())
    return (grad.double() * g).sum_to_size(theta.shape).to(theta.dtype)


class PathwiseSample(torch.autograd.Function):
    """``PathwiseSample.apply(theta, z0, spec)``: returns ``z0`` (detached sample); backward
    ``grad * spec.first(z, theta)``, evaluated only when a backward pass reaches it. The output is
    saved, so under ``create_graph`` the derivative is a function of ``z`` itself and second
    derivatives are exact; third ones raise (see module docstring)."""

    @staticmethod
    def forward(theta: Tensor, z0: Tensor, spec: PathwiseSpec) -> Tensor:
        return z0.view_as(z0)

    @staticmethod
    def setup_context(ctx: _Ctx, inputs: tuple[Tensor, Tensor, PathwiseSpec], output: Tensor) -> None:
        theta, _, spec = inputs
        ctx.spec = spec
        ctx.save_for_backward(theta, output)

    @staticmethod
    def backward(ctx: _Ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        theta, z = ctx.saved_tensors
        return pathwise_grad(grad, z, theta, ctx.spec), None, None
