"""Baselines and control variates for score-function style estimators."""

from reparam.baselines.base import Baseline, ControlVariate
from reparam.baselines.delta_method import DeltaMethod
from reparam.baselines.learned import Learned, distribution_features
from reparam.baselines.leave_one_out import LeaveOneOut
from reparam.baselines.moving_average import MovingAverage

__all__ = [
    "Baseline",
    "ControlVariate",
    "DeltaMethod",
    "Learned",
    "LeaveOneOut",
    "MovingAverage",
    "distribution_features",
]
