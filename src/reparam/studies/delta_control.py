r"""The delta-method control variate for *any* estimator (pathwise, measure-valued, ...).

With :math:`m = \mathbb E_q[z]` held fixed, :math:`h` the second-order Taylor expansion of
``f`` at ``m`` (gradient :math:`g`, Hessian :math:`H`),

.. math::
    h(z) = f(m) + g^\top (z-m) + \tfrac12 (z-m)^\top H (z-m),\qquad
    \mathbb E_q[h] = f(m) + g^\top(\mu_\phi - m)
        + \tfrac12\big(\operatorname{tr}(H\Sigma_\phi) + (\mu_\phi-m)^\top H(\mu_\phi-m)\big),

and the controlled estimate is the base estimator applied to :math:`f - h` plus the exact
:math:`\nabla_\phi \mathbb E_q[h]`: unbiased for any base estimator that is unbiased for
:math:`\nabla \mathbb E_q[f - h]`, because :math:`h` is a fixed function (its coefficients are
computed at the detached mean). The value returned is the control-variate estimate
:math:`\overline{f - h} + \mathbb E_q[h]` of :math:`\mathbb E_q[f]`. Coefficient
:math:`\beta = 1` (as in Mohamed et al.'s experiments that hold the number of samples fixed);
for the score function use :class:`reparam.baselines.DeltaMethod`, which estimates
:math:`\beta` by leave-one-out.

Needs ``f`` to return one cost per sample and to be twice differentiable; ``q`` needs a
differentiable ``mean`` and ``variance`` (diagonal) or ``covariance_matrix``. Cost: one
evaluation of ``f``, its gradient and its Hessian at the mean (one batched double-backward) per
estimate.

Reference: Mohamed, Rosca, Figurnov & Mnih, "Monte Carlo Gradient Estimation in Machine
Learning", JMLR 2020, section 7.4 and 8; Paisley, Blei & Jordan, ICML 2012.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor
from torch.distributions import Distribution

from reparam.baselines.delta_method import taylor_expansion
from reparam.estimators.base import CostFn, Estimator, evaluations


@dataclass(frozen=True)
class DeltaControlled:
    """``DeltaControlled(rp.Pathwise())``: the base estimator with the delta-method control
    variate (see the module docstring)."""

    estimator: Estimator

    def __call__(self, f: CostFn, q: Distribution, num_samples: int) -> Tensor:
        h, expected = taylor_expansion(f, q)
        residual = self.estimator(lambda z: f(z) - h(z), q, num_samples)
        return residual + expected

    def evaluations(self, q: Distribution, num_samples: int) -> int:
        return evaluations(self.estimator, q, num_samples) + 1

    def __repr__(self) -> str:
        return f"DeltaControlled({self.estimator!r})"
