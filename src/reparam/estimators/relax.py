"""RELAX: a learned, reparameterised control variate (a relaxation plus a neural residual)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from reparam.estimators.base import CostFn
from reparam.estimators.control_variate_support import relaxed_control_estimate


class CoordinateMLP(nn.Module):
    """The default residual control: a small MLP applied to every coordinate of the relaxed
    sample (``1 -> hidden -> 1``), summed over the variables of each cost. Its last layer
    starts at zero, so RELAX starts as REBAR."""

    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        last = nn.Linear(hidden, 1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), last)

    def forward(self, relaxed: Tensor) -> Tensor:
        dtype = next(self.net.parameters()).dtype
        out: Tensor = self.net(relaxed.to(dtype).unsqueeze(-1))  # Module.__call__ is typed Any
        return out.squeeze(-1).to(relaxed.dtype)


class RELAX(nn.Module):
    r"""RELAX: REINFORCE with a learned, reparameterised control variate :math:`c_\psi`.

    .. math::
        \hat g = \big[f(b) - c_\psi(\tilde z)\big] \nabla \log q(b)
            + \nabla c_\psi(z) - \nabla c_\psi(\tilde z), \qquad
        c_\psi(z) = \eta\, f(\sigma_\lambda(z)) + r_\psi(\sigma_\lambda(z)),

    with :math:`z`, :math:`b = H(z)`, :math:`\tilde z \sim p(z \mid b)` and the relaxation
    :math:`\sigma_\lambda` as in :class:`REBAR` (which is the case :math:`r = 0`). Unbiased for
    any :math:`\psi`. ``control`` is the residual :math:`r_\psi`: an ``nn.Module`` mapping the
    relaxed sample (shaped like a sample of ``q``, one-hot relaxed for the categorical families)
    to values shaped like it (or like the costs); trailing dims are summed to the cost shape.
    The default :class:`CoordinateMLP` is a ``1 -> 16 -> 1`` MLP per coordinate.

    **Adaptation (the variance-gradient trick).** :math:`\log\lambda`, :math:`\eta` and the
    control's parameters receive :math:`\partial \sum_i \hat g_{\alpha_i}^2 / \partial \psi`
    (an unbiased gradient of the estimator's variance w.r.t. ``q``'s logits, because
    :math:`\mathbb{E}[\hat g]` does not depend on :math:`\psi`) in the same ``backward()`` as the
    model, whatever the scale or sign of the loss. Put them in an optimizer::

        est = rp.RELAX()
        opt = torch.optim.Adam([*model.parameters(), *est.parameters()], lr=1e-3)

    Cost: three evaluations of ``f`` per sample (one call on ``3 N`` stacked inputs), the
    control network, and two extra backward passes through ``f`` and the control.

    Reference: Grathwohl, Choi, Wu, Roeder & Duvenaud, "Backpropagation through the Void:
    Optimizing control variates for black-box gradient estimation", ICLR 2018.
    """

    def __init__(self, control: nn.Module | None = None, temperature: float = 0.5, eta: float = 1.0) -> None:
        super().__init__()
        if control is not None and not isinstance(control, nn.Module):
            raise TypeError(
                f"control must be None or a torch.nn.Module mapping relaxed samples to values, got "
                f"{type(control).__name__}."
            )
        if not temperature > 0 or not math.isfinite(temperature):
            raise ValueError(f"temperature must be a finite float > 0, got {temperature}; 0.5 is typical.")
        self.control = control if control is not None else CoordinateMLP()
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
        return relaxed_control_estimate(f, q, num_samples, "RELAX()", self, self.control)

    def evaluations(self, q: Distribution, num_samples: int) -> int:
        return 3 * num_samples
