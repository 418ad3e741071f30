"""The engine shared by REBAR and RELAX: a relaxed, reparameterised control variate evaluated
at the sample's noise ``z`` and at conditional noise ``z~ ~ p(z | b)``, and the variance
gradient for the control's own parameters, computed in the same call and delivered in the
user's backward pass."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Distribution
from torch.func import functional_call

from reparam.estimators.base import CostFn, creating_graph, evaluate, first_order_only, refuse_create_graph
from reparam.estimators.discrete_support import (
    Kind,
    batch_shape,
    costs_per_variable,
    credit_logits,
    discrete_kind,
    logits_of,
    relaxed_input,
    score,
    sum_to_cost,
)
from reparam.estimators.gumbel_softmax import relaxed_bernoulli, relaxed_onehot


def _noise(shape: tuple[int, ...], like: Tensor) -> Tensor:
    """Uniform noise in ``[eps, 1 - eps]``: both ``log(v)`` and ``log(1 - v)`` stay finite."""
    eps = torch.finfo(like.dtype).eps
    return torch.rand(shape, dtype=like.dtype, device=like.device).clamp(eps, 1.0 - eps)


def noise_for(kind: Kind, alpha: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """The two uniform noise tensors ``(n, *alpha.shape)`` behind one ``(z, b, z~)`` draw
    (Bernoulli: ``u`` then ``v``; categorical: the exponentials' then the Gumbels')."""
    shape = (n, *alpha.shape)
    return _noise(shape, alpha), _noise(shape, alpha)


def bernoulli_noise_pair(
    alpha: Tensor, n: int, noise: tuple[Tensor, Tensor] | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    r"""``(z, b, z~)`` for ``Bernoulli(sigmoid(alpha))``: :math:`z = \alpha + \mathrm{logit}(u)`,
    :math:`b = \mathbb{1}[z > 0]` and :math:`\tilde z \sim p(z \mid b)`, reparameterised in
    ``alpha`` with fresh noise ``v``: :math:`u' = v\,\sigma(-\alpha)` if ``b = 0`` and
    :math:`u' = \sigma(-\alpha) + v\,\sigma(\alpha)` if ``b = 1``, :math:`\tilde z = \alpha +
    \mathrm{logit}(u')`, written with ``log1p``/``logsigmoid`` so it stays finite.

    A saturated logit :math:`\alpha = \pm\infty` gives :math:`z = \tilde z = \alpha` (``b``
    is certain) with no gradient path: the formulas run on a finite stand-in and are replaced
    by the constant, so no ``inf - inf`` reaches the values or their (higher) derivatives.
    ``noise``: the uniforms ``(u, v)`` (:func:`noise_for`), drawn here when ``None``."""
    u, v = noise if noise is not None else noise_for("bernoulli", alpha, n)
    finite = torch.isfinite(alpha.detach())
    a = torch.where(finite, alpha, torch.zeros_like(alpha))
    z = torch.where(finite, a + torch.log(u) - torch.log1p(-u), alpha.detach())
    b = (z > 0).to(alpha.dtype).detach()
    one = a + torch.log1p(-(1.0 - v) * torch.sigmoid(a)) - F.logsigmoid(a) - torch.log1p(-v)
    zero = a + torch.log(v) + F.logsigmoid(-a) - torch.log1p(-v * torch.sigmoid(-a))
    return z, b, torch.where(finite, torch.where(b > 0, one, zero), alpha.detach())


def categorical_noise_pair(
    alpha: Tensor, n: int, noise: tuple[Tensor, Tensor] | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    r"""``(z, b, z~)`` for categorical logits: :math:`z = \log\theta + G` (Gumbel), ``b`` the
    one-hot argmax and :math:`\tilde z \sim p(z \mid b)`: with exponentials :math:`E_k = -\log v_k`,
    :math:`\tilde z_b = -\log E_b` and :math:`\tilde z_k = -\log(E_k/\theta_k + E_b)`.

    Masked categories (:math:`\theta_k = 0`, logit :math:`-\infty`) get
    :math:`z_k = \tilde z_k = -\infty` as constants (never the argmax, relaxed weight 0), with
    the formulas run on a finite stand-in so that no ``inf - inf`` reaches a gradient.
    ``noise``: the uniforms behind ``E`` and ``G`` (:func:`noise_for`), drawn here when ``None``."""
    e_noise, g_noise = noise if noise is not None else noise_for("onehot", alpha, n)
    log_theta = torch.log_softmax(alpha, -1)
    masked = torch.isneginf(log_theta.detach())
    minus_inf = torch.full_like(log_theta, float("-inf"))
    safe = torch.where(masked, torch.zeros_like(log_theta), log_theta)
    log_e = torch.log(-torch.log(e_noise))  # log of Exp(1) noise
    z = torch.where(masked, minus_inf, safe - torch.log(-torch.log(g_noise)))
    index = z.argmax(-1, keepdim=True)
    b = torch.zeros_like(z).scatter_(-1, index, 1.0).detach()
    log_e_b = log_e.gather(-1, index)
    others = torch.where(masked, minus_inf, -torch.logaddexp(log_e - safe, log_e_b))
    z_tilde = torch.where(b > 0, -log_e_b, others)
    return z, b, z_tilde


class _AttachGradient(torch.autograd.Function):
    """A zero scalar whose backward hands fixed gradients to ``params``, whatever the incoming
    gradient's scale or sign: the control's variance gradient does not depend on how the user
    scales or negates the surrogate. Inputs ``(estimator, count, *params, *grads)``;
    ``setup_context`` style with a generated vmap rule, so ``torch.func`` transforms (``vmap``
    of ``grad`` included) and ``torch.compile`` trace through it."""

    generate_vmap_rule = True

    @staticmethod
    def forward(estimator: str, count: int, *tensors: Tensor) -> Tensor:
        return tensors[0].new_zeros(())

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        estimator, count, *tensors = inputs
        ctx.estimator, ctx.count = estimator, count
        ctx.save_for_backward(*tensors[count:])

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[object, ...]:
        if creating_graph(grad_output):
            refuse_create_graph(ctx.estimator)
        return (None, None, *ctx.saved_tensors, *([None] * ctx.count))


def attach_gradient(params: Sequence[Tensor], grads: Sequence[Tensor], estimator: str) -> Tensor:
    """A zero scalar; backward gives ``params`` exactly ``grads`` (once per backward pass)."""
    out: Tensor = _AttachGradient.apply(estimator, len(params), *params, *grads)  # apply: Any
    return out


def relaxed_control_estimate(
    f: CostFn,
    q: Distribution,
    num_samples: int,
    name: str,
    estimator: nn.Module,
    residual: nn.Module | None,
) -> Tensor:
    r"""The RELAX surrogate with control :math:`c(z) = \eta\, f(\sigma_\lambda(z)) + r(\sigma_\lambda(z))`.

    .. math::
        \hat g_\alpha = \big[f(b) - c(\tilde z)\big] \nabla_\alpha \log q(b)
            + \nabla_\alpha c(z) - \nabla_\alpha c(\tilde z)

    (averaged over ``num_samples``). ``f`` is called once on the ``3 N`` stacked inputs
    :math:`[b, \sigma_\lambda(z), \sigma_\lambda(\tilde z)]`. The control's parameters get
    :math:`\partial \sum_i \hat g_{\alpha_i}^2 / \partial \psi`, the gradient of the estimator's
    total variance w.r.t. the logits (its mean does not depend on :math:`\psi`), through a
    zero-valued term of the surrogate.

    ``estimator`` holds ``log_temperature``, ``eta`` and (as ``control``) the ``residual``
    :math:`r_\psi` (``None``: REBAR). Both derivatives are taken with ``torch.func``
    (:math:`\nabla_\alpha` nested inside :math:`\nabla_\psi`, the parameters passed as
    detached copies through ``functional_call``), not with ``torch.autograd.grad`` on a fresh
    leaf, so the estimator runs under ``torch.func`` transforms and compiles with
    ``torch.compile(fullgraph=True)``. The noise is drawn once, outside the transforms.
    """
    kind: Kind = discrete_kind(q, name)
    logits = logits_of(q)
    if kind != "bernoulli" and logits.shape[:-1] != batch_shape(q):
        logits = logits.expand(*batch_shape(q), logits.shape[-1])
    n = num_samples
    alpha0 = logits.detach()
    noise = noise_for(kind, alpha0, n)
    named = dict(estimator.named_parameters())
    psi0 = {key: p.detach() for key, p in named.items()}

    def relaxed_costs(alpha: Tensor, psi: dict[str, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
        temperature = psi["log_temperature"].to(alpha.dtype).exp()
        eta = psi["eta"].to(alpha.dtype)
        if kind == "bernoulli":
            z, b, z_tilde = bernoulli_noise_pair(alpha, n, noise)
            soft_z, _ = relaxed_bernoulli(z, torch.zeros_like(z), temperature)
            soft_t, _ = relaxed_bernoulli(z_tilde, torch.zeros_like(z), temperature)
        else:
            z, b, z_tilde = categorical_noise_pair(alpha, n, noise)
            soft_z, _ = relaxed_onehot(z, torch.zeros_like(z), temperature)
            soft_t, _ = relaxed_onehot(z_tilde, torch.zeros_like(z), temperature)
        inputs = [relaxed_input(kind, x) for x in (b, soft_z, soft_t)]
        costs = evaluate(f, torch.cat(inputs), q, 3 * n)
        c_b, c_z, c_t = costs[:n], costs[n : 2 * n], costs[2 * n :]

        def control(f_relaxed: Tensor, soft: Tensor) -> Tensor:
            value = eta * f_relaxed
            if residual is not None:
                own = {key[len("control.") :]: p for key, p in psi.items() if key.startswith("control.")}
                value = value + sum_to_cost(functional_call(residual, own, (soft,)), c_b)
            return value

        control_t = control(c_t, soft_t)
        difference = (control(c_z, soft_z) - control_t).sum()
        return difference, (costs, control_t, b)

    def variance(psi: dict[str, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        grad_alpha = torch.func.grad(relaxed_costs, has_aux=True)
        pathwise, (costs, control_t, b) = grad_alpha(alpha0, psi)
        signal = costs[:n] - control_t  # f(b) has no path to alpha or psi
        sc = score("bernoulli" if kind == "bernoulli" else "onehot", b, alpha0)
        reinforce = (costs_per_variable(signal, sc.dim()) * sc).mean(0)
        g_hat = reinforce + pathwise / n
        return g_hat.pow(2).sum(), (g_hat, costs)

    psi_grads, (g_hat, costs) = torch.func.grad(variance, has_aux=True)(psi0)
    c_b = costs[:n]  # keeps its graph to f's own parameters (for their gradient)
    credited = credit_logits(first_order_only(logits, name), g_hat.detach())
    surrogate: Tensor = c_b.mean(0) + sum_to_cost(credited, costs, leading=0)
    trainable = [key for key, p in named.items() if p.requires_grad]
    if trainable:
        params = [named[key] for key in trainable]
        grads = [psi_grads[key].detach() for key in trainable]
        surrogate = surrogate + attach_gradient(params, grads, name).to(surrogate.dtype)
    return surrogate
