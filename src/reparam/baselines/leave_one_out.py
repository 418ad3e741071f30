"""Leave-one-out (RLOO) baseline."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor
from torch.distributions import Distribution

from reparam.baselines.base import ControlVariate, CostFn


@dataclass(frozen=True)
class LeaveOneOut:
    r"""Each sample's baseline is the mean cost of the *other* samples:

    .. math::
        b_i = \frac{1}{N-1} \sum_{j \ne i} f(z_j), \qquad
        \hat g = \frac{1}{N} \sum_i (f(z_i) - b_i) \nabla \log q(z_i)
               = \frac{1}{N-1} \sum_i (f(z_i) - \bar f) \nabla \log q(z_i).

    Unbiased because ``b_i`` is independent of ``z_i``. Needs ``num_samples >= 2``; cost: no
    extra evaluations of ``f``.

    Reference: Kool, van Hoof & Welling, "Buy 4 REINFORCE samples, get a baseline for free!",
    ICLR DeepRL workshop 2019; Mnih & Rezende, "Variational inference for Monte Carlo
    objectives", ICML 2016.
    """

    min_samples: int = 2

    def __call__(self, costs: Tensor, z: Tensor, q: Distribution, f: CostFn) -> ControlVariate:
        n = costs.shape[0]
        if n < 2:
            raise ValueError(
                f"LeaveOneOut() needs num_samples >= 2, got num_samples={n}; use "
                "num_samples=2 or more, or baseline=rp.baselines.MovingAverage() for one sample."
            )
        costs = costs.detach()
        return ControlVariate((costs.sum(0, keepdim=True) - costs) / (n - 1))
