"""Variance diagnostics: gradient statistics, estimator comparisons, unbiasedness checks,
a training-time gradient variance monitor and variance-against-cost curves."""

from reparam.diagnostics.compare import CompareRow, CompareTable, compare
from reparam.diagnostics.gradient_stats import GradientStats, gradient_stats

__all__ = ["CompareRow", "CompareTable", "GradientStats", "compare", "gradient_stats"]
