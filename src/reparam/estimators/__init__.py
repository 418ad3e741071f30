"""Gradient estimators: one class per estimator, one module per family."""

from reparam.estimators.base import Estimator, evaluations
from reparam.estimators.measure_valued import MeasureValued
from reparam.estimators.pathwise import Pathwise
from reparam.estimators.sampling import QMC, Antithetic, ImportanceSampling, Stratified
from reparam.estimators.score_function import ScoreFunction

__all__ = ["Estimator", "MeasureValued", "Pathwise", "ScoreFunction", "evaluations"]
__all__ += ["QMC", "Antithetic", "ImportanceSampling", "Stratified"]
