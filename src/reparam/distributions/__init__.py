"""Pathwise gradients for continuous distributions (see docs/architecture.md and docs/concepts.md).

* :class:`Implicit` and :class:`InverseCDF`: wrap any univariate continuous distribution.
* :class:`TruncatedNormal`, :class:`VonMises`, :class:`MixtureSameFamily`: ``rsample`` where
  torch has none.
* :class:`Gamma`, :class:`Beta`, :class:`Dirichlet`, :class:`Chi2`, :class:`StudentT`,
  :class:`InverseGamma`: torch's classes with gradients accurate for concentrations 1e-4..1e4.
* :class:`HardConcrete`, :class:`GaussianGate`: stochastic gates for L0 regularisation;
  :class:`RelaxedTopK`: relaxed k-subsets; :class:`InvertibleGaussian`: softmax++ relaxation.
* :mod:`reparam.distributions.kl`: closed-form KLs for VonMises, TruncatedNormal, InvertibleGaussian.
* :func:`force_sync_free`: run the sync-free evaluations (what accelerators run) on the CPU too;
  CPU tensors otherwise take faster paths that read a few values (docs/architecture.md).
"""

from reparam.distributions import kl  # noqa: F401  (registers the closed-form KLs)
from reparam.distributions._sync import force_sync_free
from reparam.distributions.beta import Beta
from reparam.distributions.chi2 import Chi2
from reparam.distributions.dirichlet import Dirichlet
from reparam.distributions.gamma import Gamma
from reparam.distributions.gaussian_gate import GaussianGate
from reparam.distributions.hard_concrete import HardConcrete
from reparam.distributions.implicit import Implicit
from reparam.distributions.inverse_cdf import InverseCDF
from reparam.distributions.inverse_gamma import InverseGamma
from reparam.distributions.invertible_gaussian import InvertibleGaussian
from reparam.distributions.mixture import MixtureSameFamily
from reparam.distributions.relaxed_top_k import RelaxedTopK
from reparam.distributions.student_t import StudentT
from reparam.distributions.truncated_normal import TruncatedNormal
from reparam.distributions.von_mises import VonMises

__all__ = [
    "Beta",
    "Chi2",
    "Dirichlet",
    "Gamma",
    "GaussianGate",
    "HardConcrete",
    "Implicit",
    "InverseCDF",
    "InverseGamma",
    "InvertibleGaussian",
    "MixtureSameFamily",
    "RelaxedTopK",
    "StudentT",
    "TruncatedNormal",
    "VonMises",
    "force_sync_free",
]
