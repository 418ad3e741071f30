"""Gradient estimators: one class per estimator, one module per family."""

from reparam.estimators.arm import ARM
from reparam.estimators.arms import ARMS
from reparam.estimators.arsm import ARSM
from reparam.estimators.base import Estimator, evaluations
from reparam.estimators.carms import CARMS
from reparam.estimators.disarm import DisARM
from reparam.estimators.double_cv import DoubleCV
from reparam.estimators.exact import Exact
from reparam.estimators.gumbel_softmax import GumbelSoftmax
from reparam.estimators.indecater import IndeCateR
from reparam.estimators.measure_valued import MeasureValued
from reparam.estimators.pathwise import Pathwise
from reparam.estimators.rebar import REBAR
from reparam.estimators.relax import RELAX
from reparam.estimators.sampling import QMC, Antithetic, ImportanceSampling, Stratified
from reparam.estimators.score_function import ScoreFunction
from reparam.estimators.straight_through import StraightThrough
from reparam.estimators.unordered_set import UnorderedSet
from reparam.estimators.vimco import VIMCO

__all__ = ["Estimator", "MeasureValued", "Pathwise", "ScoreFunction", "evaluations"]
__all__ += ["QMC", "Antithetic", "ImportanceSampling", "Stratified"]
__all__ += ["ARM", "REBAR", "RELAX", "VIMCO", "DisARM", "Exact", "GumbelSoftmax", "IndeCateR"]
__all__ += ["StraightThrough"]
__all__ += ["ARSM", "CARMS", "UnorderedSet"]
__all__ += ["ARMS", "DoubleCV"]
