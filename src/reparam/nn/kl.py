"""``kl_divergence(model)``: the KL term of the ELBO, summed over every Bayesian module."""

from __future__ import annotations

from torch import Tensor, nn

from reparam.nn.base import BayesianModule


def bayesian_modules(model: nn.Module) -> list[BayesianModule]:
    """Every :class:`~reparam.nn.base.BayesianModule` in ``model`` (each once, even if shared)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}.")
    return [m for m in model.modules() if isinstance(m, BayesianModule)]


def kl_divergence(model: nn.Module) -> Tensor:
    """``sum_l KL(q(W_l) || p(W_l))`` over the Bayesian layers of ``model`` (nested anywhere,
    wrapped by DDP or not). Analytic for Normal priors, a one-sample Monte Carlo estimate for
    priors without a closed form. Raises if ``model`` holds no Bayesian layer (a deterministic
    model in an ELBO is a mistake; convert it with :func:`reparam.nn.bayesianize`)."""
    layers = bayesian_modules(model)
    if not layers:
        raise ValueError(
            f"{type(model).__name__} has no Bayesian layers, so its KL term is undefined; build it from "
            "BayesLinear/BayesConv*d or convert it with reparam.nn.bayesianize(model)."
        )
    total = layers[0].kl_divergence()
    for layer in layers[1:]:
        total = total + layer.kl_divergence()
    return total
