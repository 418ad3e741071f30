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

    The state (``m`` and the step count) is kept as tensors on the costs' device, so a step
    reads nothing back to the host (no GPU stall) and a ``torch.compile``-d step does not
    recompile as the count grows. :attr:`value` and :attr:`steps` read it back as Python
    numbers (one host sync each; for logging, not for the training step). A float ``_average``
    or int ``steps`` restored from an older checkpoint is accepted.

    Example:
        >>> from torch.distributions import Normal
        >>> baseline = MovingAverage(decay=0.5)
        >>> _ = baseline(torch.full((3,), 4.0), torch.zeros(3), Normal(0.0, 1.0), lambda z: z)
        >>> baseline.value, baseline.steps
        (4.0, 1)

    Reference: Williams, "Simple statistical gradient-following algorithms", 1992;
    Mnih & Gregor, "Neural Variational Inference and Learning", ICML 2014 (section 3.3).
    """

    min_samples = 1

    def __init__(self, decay: float = 0.9) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}; 0.9 or 0.99 are typical.")
        self.decay = float(decay)
        self._steps: Tensor | int = 0
        self._average: Tensor | float = 0.0

    @property
    def steps(self) -> int:
        """Calls folded into the average so far (reads the count back: one host sync)."""
        return int(self._steps)

    @steps.setter
    def steps(self, count: int | Tensor) -> None:
        self._steps = count

    def _baseline(self, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """``(b, m, t)`` as tensors on ``device``: the bias-corrected baseline, the raw average
        and the step count (``b = 0`` before the first step)."""
        average = torch.as_tensor(self._average, device=device).to(dtype)
        steps = torch.as_tensor(self._steps, device=device)
        started = steps > 0
        decayed = torch.pow(self.decay, steps).to(dtype)
        correction = torch.where(started, 1.0 - decayed, torch.ones_like(average))
        baseline = torch.where(started, average / correction, torch.zeros_like(average))
        return baseline, average, steps

    @property
    def value(self) -> float:
        """The baseline the next call will use (a Python float: one host sync)."""
        device = self._average.device if isinstance(self._average, Tensor) else None
        dtype = self._average.dtype if isinstance(self._average, Tensor) else torch.float64
        return float(self._baseline(dtype, device or torch.device("cpu"))[0])

    def reset(self) -> None:
        self._steps = 0
        self._average = 0.0

    def __call__(self, costs: Tensor, z: Tensor, q: Distribution, f: CostFn) -> ControlVariate:
        baseline, average, steps = self._baseline(costs.dtype, costs.device)
        if costs.numel() == 0:  # a size-0 batch (a static shape check): nothing to average
            return ControlVariate(baseline)
        mean_cost = costs.detach().mean()
        self._average = self.decay * average + (1.0 - self.decay) * mean_cost
        self._steps = steps + 1
        return ControlVariate(baseline)

    def __repr__(self) -> str:
        return f"MovingAverage(decay={self.decay})"
