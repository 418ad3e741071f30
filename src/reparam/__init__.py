"""reparam: Monte Carlo gradient estimation for PyTorch.

Every estimator sits behind one primitive, :func:`expect`; :mod:`reparam.diagnostics`
measures their variance, bias and cost.
"""

from reparam import baselines
from reparam.estimators import Estimator, MeasureValued, Pathwise, ScoreFunction, evaluations
from reparam.expect import expect

__version__ = "0.1.0"

__all__ = [
    "Estimator",
    "MeasureValued",
    "Pathwise",
    "ScoreFunction",
    "__version__",
    "baselines",
    "evaluations",
    "expect",
]
