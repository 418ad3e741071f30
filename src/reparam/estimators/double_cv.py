"""Double control variates: RLOO on the residual of a leave-one-out Taylor expansion of f."""

from __future__ import annotations

import math

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


class DoubleCV:
    r"""Double control variates for ``b ~ Bernoulli(sigmoid(alpha))`` (independent dims):
    REINFORCE leave-one-out (RLOO) with a first-order Taylor control variate whose slope is the
    leave-one-out mean of :math:`\nabla f` at the other samples.

    With ``n >= 2`` independent samples :math:`b_k`, :math:`p = \sigma(\alpha)`, the slopes
    :math:`s_k = \frac{1}{n-1}\sum_{j \ne k} \nabla f(b_j)` (``f`` differentiated as a function
    of real-valued inputs, at the binary points) and the linear control variates
    :math:`h_k = s_k^\top (b_k - p)`, the residuals :math:`r_k = f(b_k) - \beta h_k` and

    .. math::
        \hat g_\alpha = \frac1n \sum_{k=1}^n \Big(r_k - \frac{1}{n-1}\sum_{j \ne k} r_j\Big)
            (b_k - p) \;+\; \beta\, p (1 - p) \odot \frac1n \sum_{k=1}^n \nabla f(b_k).

    The baseline of each sample is itself corrected by the control variates of the others (the
    *double* control variate), and the last term is the exact gradient of the linear part
    (:math:`\mathbb{E}[h_k (b_k - p)] = p(1-p) \odot s_k`, as :math:`s_k` does not depend on
    :math:`b_k`). ``coefficient`` :math:`\beta = 0` is RLOO exactly; :math:`\beta = 1` removes
    the whole first-order Taylor term.

    **Unbiased for any fixed** :math:`\beta`: the :math:`k`-th term's extra pieces are
    :math:`\beta[h_k(b_k - p) - p(1-p) \odot s_k]` (mean 0 given :math:`s_k`) and
    :math:`\beta\, s_j^\top(b_j - p)\,(b_k - p)` for :math:`j \ne k` (mean 0 over :math:`b_j`,
    which is independent of :math:`s_j` and :math:`b_k`).

    **Choosing** :math:`\beta`. ``coefficient=None`` (default) picks it from earlier steps:
    writing :math:`\hat g = A + \beta B` (:math:`A` the RLOO estimate, :math:`B` zero-mean), the
    total variance is smallest at :math:`\beta^* = -\mathbb{E}[A^\top B] / \mathbb{E}[B^\top B]`;
    step :math:`t` uses the ratio of exponential moving averages (``decay``) of
    :math:`A^\top B` and :math:`B^\top B` over steps :math:`< t`, so :math:`\beta_t` does not
    depend on the current samples and the estimate stays unbiased (the first call uses
    :math:`\beta = 0`: RLOO). The paper fits the same least-squares objective by SGD on
    :math:`\|\hat g\|^2`; the closed form needs no optimizer and settles within a few dozen
    steps. A float ``coefficient`` fixes :math:`\beta`. When ``f`` is nearly linear in ``b``
    but its derivative at the binary points is not its slope between them (the Bernoulli toy
    :math:`\frac1D\sum_i (b_i - t)^2`), :math:`\beta^* \approx 0` and DoubleCV is RLOO; for
    smooth costs with interactions :math:`\beta^*` is of order 1 and the variance drops.
    :attr:`coefficient_value` reads the next :math:`\beta` (one host sync; for logging).

    **Cost:** ``num_samples`` evaluations of ``f`` (one call on ``n`` stacked samples) plus ONE
    backward pass through ``f`` for :math:`\nabla f(b_k)` (taken with ``torch.func.grad``), no
    extra evaluations. ``f`` must be differentiable in its (real-valued) input; where it is
    not (a lookup table, ``b.long()``), the slopes are 0 and DoubleCV is RLOO. Batched costs
    ``(n, *batch_shape[:k])`` are credited to their own batch slice. First derivatives only.

    Reference: Titsias & Shi, "Double Control Variates for Gradient Estimation in Discrete
    Latent Variable Models", AISTATS 2022.

    Example:
        >>> logits = torch.zeros(3, requires_grad=True)
        >>> q = torch.distributions.Bernoulli(logits=logits)
        >>> est = rp.DoubleCV()  # coefficient chosen from earlier steps (0 on the first: RLOO)
        >>> f = lambda b: (b.sum(-1) - 1.0) ** 2
        >>> for _ in range(3):
        ...     rp.expect(f, q, est, num_samples=4).backward()
        >>> logits.grad.shape, isinstance(est.coefficient_value, float)
        (torch.Size([3]), True)
    """

    def __init__(self, coefficient: float | None = None, decay: float = 0.9) -> None:
        if coefficient is not None and not math.isfinite(float(coefficient)):
            raise ValueError(
                f"coefficient must be a finite float or None (chosen from earlier steps), got "
                f"{coefficient}; 0.0 is RLOO, 1.0 subtracts the whole first-order Taylor term."
            )
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}; 0.9 or 0.99 are typical.")
        self.coefficient = None if coefficient is None else float(coefficient)
        self.decay = float(decay)
        self._cross: Tensor | float = 0.0  # moving average of A^T B
        self._norm: Tensor | float = 0.0  # moving average of B^T B

    @property
    def coefficient_value(self) -> float:
        """The :math:`\\beta` the next call uses (reads the state back: one host sync)."""
        if self.coefficient is not None:
            return self.coefficient
        return float(self._beta(torch.float64, torch.device("cpu")))

    def _beta(self, dtype: torch.dtype, device: torch.device) -> Tensor:
        if self.coefficient is not None:
            return torch.tensor(self.coefficient, dtype=dtype, device=device)
        cross = torch.as_tensor(self._cross, device=device).to(dtype)
        norm = torch.as_tensor(self._norm, device=device).to(dtype)
        positive = norm > 0
        return torch.where(positive, -cross / torch.where(positive, norm, 1.0), 0.0)

    def _fold(self, average: Tensor | float, new: Tensor) -> Tensor:
        old = torch.as_tensor(average, device=new.device).to(new.dtype)
        return self.decay * old + (1.0 - self.decay) * new

    def __call__(self, f: CostFn, q: Distribution, num_samples: int) -> Tensor:
        name = "DoubleCV()"
        discrete_kind(q, name, ("bernoulli",))
        if num_samples < 2:
            raise ValueError(
                f"{name} needs num_samples >= 2 (a leave-one-out baseline and slope), got "
                f"{num_samples}; pass num_samples=2 or more."
            )
        logits = logits_of(q)
        n = num_samples
        alpha = logits.detach().expand(batch_shape(q))
        with torch.no_grad():
            p = torch.sigmoid(alpha)
            b = (uniform((n, *alpha.shape), alpha) < p).to(alpha.dtype)

        def total_cost(x: Tensor) -> tuple[Tensor, Tensor]:
            costs = evaluate(f, x, q, n)
            return costs.sum(), costs

        found: tuple[Tensor, Tensor] = torch.func.grad(total_cost, has_aux=True)(b)  # grad: Any
        slope, costs = found
        with torch.no_grad():
            slope = slope.detach()
            c = costs.detach()
            score = b - p
            loo_slope = (slope.sum(0) - slope) / (n - 1)
            control = sum_to_cost(loo_slope * score, c)  # h_k, shaped like the costs

            def loo_term(values: Tensor) -> Tensor:
                centred = (values - values.mean(0)) * (n / (n - 1))  # v_k - mean_{j != k} v_j
                return (costs_per_variable(centred, b.dim()) * score).mean(0)

            rloo = loo_term(c)
            direction = p * (1.0 - p) * slope.mean(0) - loo_term(control)  # B = d g_hat / d beta
            beta = self._beta(alpha.dtype, alpha.device)
            g_hat = rloo + beta * direction
            if self.coefficient is None:
                finite = torch.isfinite(alpha)  # saturated logits are credited nothing
                zero = torch.zeros_like(rloo)
                cross = torch.where(finite, rloo * direction, zero).sum()
                norm = torch.where(finite, direction * direction, zero).sum()
                self._cross = self._fold(self._cross, cross)
                self._norm = self._fold(self._norm, norm)
        credited = credit_logits(first_order_only(logits, name), g_hat)
        return costs.mean(0) + sum_to_cost(credited, costs, leading=0)

    def evaluations(self, q: Distribution, num_samples: int) -> int:
        return num_samples
