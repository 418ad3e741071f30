"""ARMS: antithetic REINFORCE with n negatively correlated Bernoulli samples."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution

from reparam.estimators.base import CostFn, evaluate, first_order_only
from reparam.estimators.discrete_support import (
    batch_shape,
    costs_per_variable,
    credit_logits,
    discrete_kind,
    logits_of,
    sum_to_cost,
    uniform,
)


def dirichlet_copula_uniforms(n: int, like: Tensor) -> Tensor:
    r"""``n`` negatively correlated ``U(0, 1)`` variables per entry of ``like``, shaped
    ``(n, *like.shape)``, drawn by the Dirichlet copula.

    With :math:`d \sim \mathrm{Dirichlet}(1, \dots, 1)` over the ``n`` draws (normalised
    exponentials), each :math:`d_i \sim \mathrm{Beta}(1, n - 1)`, whose survival function is
    :math:`(1 - x)^{n-1}`, so :math:`u_i = (1 - d_i)^{n-1}` is exactly uniform and the
    :math:`u_i` are negatively correlated (they share the constraint :math:`\sum_i d_i = 1`).
    For ``n = 2``, :math:`u_2 = 1 - u_1`: the antithetic pair.
    """
    e = -torch.log(uniform((n, *like.shape), like))
    d = e / e.sum(0, keepdim=True)
    u = torch.exp((n - 1) * torch.log1p(-d))
    return u.clamp(torch.finfo(like.dtype).tiny, 1.0 - torch.finfo(like.dtype).eps)


def dirichlet_copula_joint(m: Tensor, n: int) -> Tensor:
    r""":math:`P(u_i < m, u_j < m)` for two of the ``n`` Dirichlet-copula uniforms (``i != j``):
    :math:`C(m, m) = \max(2 m^{1/(n-1)} - 1, 0)^{n-1}`.

    Derivation: :math:`u_i < m \iff d_i > a` with :math:`a = 1 - m^{1/(n-1)}`, and for uniform
    spacings :math:`P(d_i > a, d_j > a) = \max(1 - 2a, 0)^{n-1}`."""
    term = (2.0 * m.pow(1.0 / (n - 1)) - 1.0).clamp_min(0.0)
    return term.pow(n - 1)


@dataclass(frozen=True)
class ARMS:
    r"""ARMS gradient for ``b ~ Bernoulli(sigmoid(alpha))`` (independent dims) from ``n >= 2``
    negatively correlated samples.

    Per dimension, ``n`` uniforms :math:`u_1..u_n` from the Dirichlet copula
    (:func:`dirichlet_copula_uniforms`: each exactly ``U(0, 1)``, jointly antithetic) give
    :math:`b_k = \mathbb{1}[u_k < p]` when :math:`p = \sigma(\alpha) < 1/2` and
    :math:`b_k = \mathbb{1}[1 - u_k < p]` otherwise (each marginally ``Bernoulli(p)``,
    independent across dimensions). RLOO on these correlated samples is biased by the
    correlation :math:`\rho` between two of them; ARMS divides it out:

    .. math::
        \hat g_{\alpha_i} = \frac{1}{n - 1} \sum_{k=1}^n \big(f(b_k) - \bar f\big)(b_{k,i} - p_i)
            \cdot \frac{1}{1 - \rho_i}, \qquad
        \frac{1}{1 - \rho_i} = \frac{m_i (1 - m_i)}{m_i - C(m_i, m_i)},

    with :math:`\bar f` the mean of the ``n`` costs, :math:`m_i = \min(p_i, 1 - p_i)` and
    :math:`C(m, m) = P(b_{k,i} = b_{l,i} = \text{rare value})` the copula's joint probability
    (:func:`dirichlet_copula_joint`).

    **Unbiased for any f**: with :math:`h(x) = \mathbb{E}[f(b_l) \mid b_{l,i} = x]`,
    :math:`\mathbb{E}[f(b_k)(b_{k,i} - p)] = p(1-p)(h(1) - h(0))` and, for :math:`l \ne k`,
    :math:`\mathbb{E}[f(b_l)(b_{k,i} - p)] = \mathrm{Cov}(b_{k,i}, b_{l,i})(h(1) - h(0))`
    (the other dimensions are independent of :math:`b_{k,i}`), so the leave-one-out sum has mean
    :math:`(1 - \rho_i)\, p(1-p)(h(1) - h(0)) = (1 - \rho_i)\, \partial_{\alpha_i}
    \mathbb{E}[f]`. For ``n = 2`` it is exactly :class:`DisARM` with one pair.

    **Cost:** ``num_samples`` evaluations of ``f`` (``n``, not ``2 n``: at equal evaluations
    compare ``ARMS`` at ``n`` with ``DisARM`` at ``n / 2`` pairs), in ONE call of ``n`` stacked
    samples. The surrogate's value is the mean of the ``n`` costs (each ``b_k`` is marginally
    exact); batched costs ``(n, *batch_shape[:k])`` are credited to their own batch slice.
    First derivatives only.

    Bernoulli only (its categorical counterpart is CARMS, Dimitriev & Zhou, NeurIPS 2021).

    Reference: Dimitriev & Zhou, "ARMS: Antithetic-REINFORCE-Multi-Sample Gradient for Binary
    Variables", ICML 2021.

    Example:
        >>> logits = torch.zeros(3, requires_grad=True)
        >>> q = torch.distributions.Bernoulli(logits=logits)
        >>> loss = rp.expect(lambda b: (b - 0.4).pow(2).sum(-1), q, rp.ARMS(), num_samples=4)
        >>> loss.backward()
        >>> logits.grad.shape
        torch.Size([3])
        >>> rp.ARMS().evaluations(q, 4)
        4
    """

    def __call__(self, f: CostFn, q: Distribution, num_samples: int) -> Tensor:
        discrete_kind(q, "ARMS()", ("bernoulli",))
        if num_samples < 2:
            raise ValueError(
                f"ARMS() needs num_samples >= 2 correlated samples, got {num_samples}; pass "
                "num_samples=2 or more (ARMS with 2 samples is DisARM with one pair)."
            )
        logits = logits_of(q)
        n = num_samples
        with torch.no_grad():
            alpha = logits.detach().expand(batch_shape(q))
            u = dirichlet_copula_uniforms(n, alpha)
            p = torch.sigmoid(alpha)
            rare_is_one = alpha < 0  # p < 1/2: b = 1[u < p]; else b = 1[1 - u < p]
            b = torch.where(rare_is_one, u < p, 1.0 - u < p).to(alpha.dtype)
            m = torch.sigmoid(-alpha.abs())  # min(p, 1 - p), accurate in the tails
            gap = m - dirichlet_copula_joint(m, n)  # m (1 - m) (1 - rho) > 0 unless m == 0
            debias = torch.where(gap > 0, m * (1.0 - m) / torch.where(gap > 0, gap, 1.0), 1.0)
        costs = evaluate(f, b, q, n)
        detached = costs.detach()
        centred = costs_per_variable(detached - detached.mean(0), b.dim())
        grad = (centred * (b - p)).sum(0) * (debias / (n - 1))
        logits = first_order_only(logits, "ARMS()")
        return costs.mean(0) + sum_to_cost(credit_logits(logits, grad), costs, leading=0)

    def evaluations(self, q: Distribution, num_samples: int) -> int:
        return num_samples
