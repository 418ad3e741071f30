"""reparam: Monte Carlo gradient estimation for PyTorch.

Every estimator sits behind one primitive, :func:`expect`; :mod:`reparam.diagnostics`
measures their variance, bias and cost. Estimators and diagnostics are re-exported here
(``rp.Pathwise``, ``rp.gradient_stats``); the application packages are subpackages
(``rp.distributions``, ``rp.vi``, ``rp.nn``, ``rp.models``).
"""

from reparam import baselines, distributions, models, nn, problems, vi
from reparam.compiling import compile
from reparam.diagnostics import *  # noqa: F403
from reparam.diagnostics import __all__ as _diagnostics_all
from reparam.estimators import *  # noqa: F403
from reparam.estimators import __all__ as _estimators_all
from reparam.expect import expect

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "baselines",
    "compile",
    "distributions",
    "expect",
    "models",
    "nn",
    "problems",
    "vi",
    *_estimators_all,
    *_diagnostics_all,
]
