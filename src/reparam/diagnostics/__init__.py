"""Variance diagnostics: gradient statistics, estimator comparisons, unbiasedness checks,
a training-time gradient variance monitor and variance-against-cost curves."""

from reparam.diagnostics.compare import CompareRow, CompareTable, compare
from reparam.diagnostics.curves import CurvePoint, VarianceCurves, variance_curves
from reparam.diagnostics.gradient_stats import GradientStats, gradient_stats
from reparam.diagnostics.monitor import GradientVarianceMonitor, ParameterGradientSummary
from reparam.diagnostics.unbiased import UnbiasedReport, check_unbiased

__all__ = [
    "CompareRow",
    "CompareTable",
    "CurvePoint",
    "GradientStats",
    "GradientVarianceMonitor",
    "ParameterGradientSummary",
    "UnbiasedReport",
    "VarianceCurves",
    "check_unbiased",
    "compare",
    "gradient_stats",
    "variance_curves",
]
