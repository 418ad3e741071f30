"""reparam.models: VAE, discrete VAE, Bayesian logistic regression and policy-gradient tasks
(see docs/architecture.md)."""

from reparam.models import policy  # noqa: F401  (reparam.models.policy: policy gradients)
from reparam.models.discrete_vae import DiscreteVAE, DiscreteVAEConfig
from reparam.models.logistic_regression import BayesianLogisticRegression
from reparam.models.vae import VAE, VAEConfig

__all__ = ["VAE", "VAEConfig"]
__all__ += ["BayesianLogisticRegression"]
__all__ += ["DiscreteVAE", "DiscreteVAEConfig"]
