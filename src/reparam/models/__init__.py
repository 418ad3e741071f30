"""reparam.models (see DESIGN.md)."""

from reparam.models.logistic_regression import BayesianLogisticRegression
from reparam.models.vae import VAE, VAEConfig

__all__ = ["VAE", "VAEConfig"]
__all__ += ["BayesianLogisticRegression"]
