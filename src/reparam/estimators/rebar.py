"""REBAR: a relaxation-based control variate with a learned temperature and scale."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from reparam.estimators.base import CostFn
from reparam.estimators.control_variate_support import relaxed_control_estimate


class REBAR(nn.Module):
    r"""REBAR: REINFORCE with the concrete relaxation as a reparameterised control variate.

    With :math:`z = \alpha + \text{noise}` (logistic for Bernoulli, Gumbel for categorical),
    :math:`b = H(z)`, :math:`\tilde z \sim p(z \mid b)` and the relaxation
    :math:`\sigma_\lambda(z)` (sigmoid / softmax at temperature :math:`\lambda`):

    .. math::
        \hat g = \big[f(b) - \eta f(\sigma_\lambda(\tilde z))\big] \nabla \log q(b)
            + \eta \nabla f(\sigma_\lambda(z)) - \eta \nabla f(\sigma_\lambda(\tilde z)).

    Unbiased for any :math:`\eta, \lambda`: the last two terms have equal means and the
    REINFORCE term's control only depends on :math:`b` through :math:`\tilde z`, whose
    correlation is exactly what the conditional-reparameterisation term removes. Needs ``f``
    differentiable in its (relaxed) input; for ``Categorical`` ``f`` receives float category
    numbers (:math:`\sum_k k\,y_k` when relaxed).

    **Adaptation (the variance-gradient trick).** :math:`\log\lambda` and :math:`\eta` are
    ``nn.Parameter`` s. Each call also computes :math:`\partial \sum_i \hat g_{\alpha_i}^2 /
    \partial(\log\lambda, \eta)`; since :math:`\mathbb{E}[\hat g]` does not depend on them this
    is an unbiased gradient of the estimator's variance (w.r.t. ``q``'s logits). It is delivered
    to ``.grad`` in the SAME ``backward()`` that gives the model its gradients, independently of
    how the surrogate is scaled or negated, so one optimizer step minimises the loss *and* the
    variance::

        est = rp.REBAR()
        opt = torch.optim.Adam([*model.parameters(), *est.parameters()], lr=1e-3)
        loss = rp.expect(f, q, est, num_samples=1).mean(); opt.zero_grad(); loss.backward(); opt.step()

    Cost: three evaluations of ``f`` per sample, made in ONE call on ``3 N`` stacked inputs
    :math:`[b, \sigma_\lambda(z), \sigma_\lambda(\tilde z)]`, plus two extra backward passes
    through ``f`` (the pathwise term with ``create_graph`` and the variance gradient).

    Args:
        temperature: initial :math:`\lambda > 0`.
        eta: initial scale of the control variate.

    Reference: Tucker, Mnih, Maddison, Lawson & Sohl-Dickstein, "REBAR: Low-variance, unbiased
    gradient estimates for discrete latent variable models", NeurIPS 2017.
    """

    def __init__(self, temperature: float = 0.5, eta: float = 1.0) -> None:
        super().__init__()
        if not temperature > 0 or not math.isfinite(temperature):
            raise ValueError(f"temperature must be a finite float > 0, got {temperature}; 0.5 is typical.")
        if not math.isfinite(eta):
            raise ValueError(f"eta must be finite, got {eta}.")
        self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))
        self.eta = nn.Parameter(torch.tensor(float(eta)))

    @property
    def temperature(self) -> float:
        return float(self.log_temperature.detach().exp())

    if TYPE_CHECKING:
        # nn.Module types ``__call__`` as ``Callable[..., Any]``, which any signature would
        # match; this states what calling an instance does (it runs ``forward``), so that type
        # checkers hold the class to the ``Estimator`` protocol. No runtime effect.
        def __call__(self, f: CostFn, q: Distribution, num_samples: int) -> Tensor: ...

    def forward(self, f: CostFn, q: Distribution, num_samples: int) -> Tensor:
        return relaxed_control_estimate(f, q, num_samples, "REBAR()", self, None)

    def evaluations(self, q: Distribution, num_samples: int) -> int:
        return 3 * num_samples

    def extra_repr(self) -> str:
        return f"temperature={self.temperature:.3g}, eta={float(self.eta.detach()):.3g}"
