"""``BayesLinear``: a fully connected layer with mean-field Gaussian weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Distribution

from reparam.nn.base import BayesLayer, EstimatorName
from reparam.nn.priors import Prior


class BayesLinear(BayesLayer):
    """``y = x W^T + b`` with ``W ~ N(weight_mu, softplus(weight_rho)^2)`` elementwise.

    A drop-in for ``nn.Linear``: input ``(*, in_features)``, output ``(*, out_features)``, a plain
    tensor. ``estimator`` picks how the weight noise is sampled (see :mod:`reparam.nn.base`):
    ``"reparam"`` (one weight sample per batch), ``"local"`` (Kingma et al. 2015) or ``"flipout"``
    (Wen et al. 2018); it may be changed at any time on the same parameters.

    ``device``/``dtype`` create the parameters there, as for ``nn.Linear``; ``prior`` may be a
    :class:`~reparam.nn.priors.Prior` or any elementwise ``torch.distributions`` object.
    ``layer.use_mean(True)`` (or :func:`reparam.nn.posterior_mean`) predicts with the mean weights;
    ``eval()`` alone keeps sampling (see :mod:`reparam.nn.base`).

    Example::

        layer = BayesLinear(64, 10, estimator="flipout")
        y = layer(torch.randn(32, 64))        # (32, 10)
        kl = layer.kl_divergence()            # KL(q || prior), summed
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        estimator: EstimatorName = "flipout",
        prior: Prior | Distribution | None = None,
        init_scale: float | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        self.in_features = in_features
        self.out_features = out_features
        super().__init__(
            (out_features, in_features), in_features, bias, estimator, prior, init_scale, device, dtype
        )

    def _op(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return F.linear(x, weight, bias)

    def _check_input(self, x: Tensor) -> None:
        if x.dim() == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"BayesLinear({self.in_features}, {self.out_features}) expects input of shape "
                f"(*, {self.in_features}), got {tuple(x.shape)}; flatten or reshape the input."
            )

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias_mu is not None}, estimator={self.estimator!r}"
        )
