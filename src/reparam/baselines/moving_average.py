"""Exponential moving-average baseline."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Distribution

from reparam.baselines.base import ControlVariate, CostFn


class MovingAverage:
    r"""Baseline ``b_t``: a bias-corrected exponential moving average of past mean costs.

    .. math::
        m_t = \text{decay}\, m_{t-1} + (1 - \text{decay})\, \bar f_t, \qquad
        b_t = m_{t-1} / (1 - \text{decay}^{t-1})

    The baseline used at step ``t`` is computed *before* this step's costs are folded in, so it
    is independent of the current samples and the score-function estimator stays unbiased.
    The first call uses ``b = 0``. Cost: no extra evaluations of ``f``.

    Reference: Williams, "Simple statistical gradient-following algorithms", 1992;
    Mnih & Gregor, "Neural Variational Inference and Learning", ICML 2014 (section 3.3).
    """

    min_samples = 1

    def __init__(self, decay: float = 0.9) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}; 0.9 or 0.99 are typical.")
        self.decay = float(decay)
        self.steps = 0
        self._average = 0.0

    @property
    def value(self) -> float:
        """The baseline the next call will use."""
        if self.steps == 0:
            return 0.0
        return self._average / (1.0 - self.decay**self.steps)

    def reset(self) -> None:
        self.steps = 0
        self._average = 0.0

    def __call__(self, costs: Tensor, z: Tensor, q: Distribution, f: CostFn) -> ControlVariate:
        baseline = torch.as_tensor(self.value, dtype=costs.dtype, device=costs.device)
        if costs.numel() == 0:  # a size-0 batch: nothing to average, keep the state
            return ControlVariate(baseline)
        mean_cost = float(costs.detach().mean())
        self._average = self.decay * self._average + (1.0 - self.decay) * mean_cost
        self.steps += 1
        return ControlVariate(baseline)

    def __repr__(self) -> str:
        return f"MovingAverage(decay={self.decay})"
