"""Black-box variational inference: ELBO, sticking-the-landing, variational families, ``fit``."""

from reparam.vi.detach import detach_parameters, register_detach
from reparam.vi.elbo import elbo
from reparam.vi.families import FullRankGaussian, LowRankGaussian, MeanFieldGaussian, make_family
from reparam.vi.fit import FitResult, fit
from reparam.vi.flows import FlowFamily
from reparam.vi.iwae import iwae_bound, log_weights

__all__ = ["detach_parameters", "iwae_bound", "log_weights", "register_detach"]
__all__ += [
    "FitResult",
    "FlowFamily",
    "FullRankGaussian",
    "LowRankGaussian",
    "MeanFieldGaussian",
    "elbo",
    "fit",
    "make_family",
]
