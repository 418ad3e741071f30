"""Delta-method (second-order Taylor) control variate."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution

from reparam.baselines.base import ControlVariate, CostFn


def _leave_one_out_coefficient(costs: Tensor, control: Tensor, eps: float = 1e-12) -> Tensor:
    """``beta_i = Cov(f, h) / Var(h)`` estimated from every sample but ``i``."""
    n = costs.shape[0]
    if n < 3:
        return torch.ones_like(costs)
    m = n - 1
    s_f, s_h = costs.sum(), control.sum()
    s_fh, s_hh = (costs * control).sum(), (control * control).sum()
    mean_f = (s_f - costs) / m
    mean_h = (s_h - control) / m
    cov = (s_fh - costs * control) / m - mean_f * mean_h
    var = (s_hh - control * control) / m - mean_h * mean_h
    return torch.where(var > eps, cov / var.clamp_min(eps), torch.ones_like(var))


@dataclass(frozen=True)
class DeltaMethod:
    r"""Control variate from the second-order Taylor expansion of ``f`` at the mean of ``q``.

    With :math:`m = \mathbb{E}_q[z]` (held fixed), gradient :math:`g` and Hessian :math:`H` of
    ``f`` at ``m``,

    .. math::
        h(z) = f(m) + g^\top (z - m) + \tfrac12 (z - m)^\top H (z - m), \qquad
        \mathbb{E}_q[h] = f(m) + g^\top(\mu_\phi - m)
            + \tfrac12\big(\operatorname{tr}(H\Sigma_\phi) + (\mu_\phi - m)^\top H (\mu_\phi - m)\big),

    and the estimator is
    :math:`\frac1N\sum_i (f(z_i) - \beta_i h(z_i))\nabla\log q(z_i) + \bar\beta\,\nabla\mathbb{E}_q[h]`.
    :math:`\mathbb{E}_q[h]` needs only the mean and covariance of ``q`` (``covariance_matrix``
    when ``q`` has one, else ``variance`` as a diagonal), so any ``q`` with a differentiable mean
    and variance works. The coefficient :math:`\beta_i = \mathrm{Cov}(f, h)/\mathrm{Var}(h)` is
    estimated from the other samples of the batch (leave-one-out), which keeps the estimator
    unbiased; with fewer than 3 samples :math:`\beta = 1`.

    Needs ``f`` to return one cost per sample (shape ``(num_samples,)``) and to be twice
    differentiable. Cost: ``num_samples + 1`` evaluations of ``f`` plus one Hessian at the mean
    (``torch.func.hessian``; dimension ``D`` costs ``O(D)`` extra passes).

    Reference: Mohamed, Rosca, Figurnov & Mnih, "Monte Carlo Gradient Estimation in Machine
    Learning", JMLR 2020, section 7.2 (delta method control variates); Paisley, Blei & Jordan,
    "Variational Bayesian inference with stochastic search", ICML 2012.
    """

    min_samples: int = 1
    extra_evaluations: int = 1

    def __call__(self, costs: Tensor, z: Tensor, q: Distribution, f: CostFn) -> ControlVariate:
        if costs.dim() != 1:
            raise ValueError(
                f"DeltaMethod() needs one cost per sample (f returning shape (num_samples,)), got "
                f"costs of shape {tuple(costs.shape)}; sum the costs inside f."
            )
        mean = q.mean
        m = mean.detach()
        shape = m.shape

        def f_flat(x: Tensor) -> Tensor:
            return f(x.reshape(1, *shape))[0]

        m_flat = m.reshape(-1)
        f_m = f_flat(m_flat).detach()
        grad = torch.func.grad(f_flat)(m_flat).detach()
        hess = torch.func.hessian(f_flat)(m_flat).detach()

        dz = (z.detach().reshape(z.shape[0], -1) - m_flat).to(hess.dtype)
        control = f_m + dz @ grad + 0.5 * ((dz @ hess) * dz).sum(-1)

        dmu = (mean.reshape(-1) - m_flat).to(hess.dtype)
        covariance = getattr(q, "covariance_matrix", None) if hasattr(q, "scale_tril") else None
        if covariance is not None and covariance.shape[-1] * covariance.shape[-2] == hess.numel():
            trace = (hess * covariance.reshape(hess.shape)).sum()
        else:
            trace = (torch.diagonal(hess) * q.variance.expand(shape).reshape(-1)).sum()
        expected = f_m + dmu @ grad + 0.5 * (trace + dmu @ hess @ dmu)

        beta = _leave_one_out_coefficient(costs.detach(), control)
        correction = beta.mean() * (expected - expected.detach())
        return ControlVariate((beta * control).to(costs.dtype), correction.to(costs.dtype))
