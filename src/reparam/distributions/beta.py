"""Beta with the exact implicit pathwise derivative, stable for tiny concentrations."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.distributions import Beta as _TorchBeta

from reparam.distributions._beta_grad import beta_rsample
from reparam.distributions._checks import check_positive_finite, validation_enabled

_Shape = torch.Size | Sequence[int]


def _as_pair(c1: Tensor | float, c0: Tensor | float, stacked: Tensor) -> tuple[Tensor, Tensor]:
    """``(c1, c0)`` as tensors of the batch shape: a given tensor of that shape as it is (no
    operation), a number as its column of torch's ``stacked`` copy without a graph (numbers
    have no gradient), anything else as its column of ``stacked``."""
    shape = stacked.shape[:-1]

    def column(value: Tensor | float, i: int) -> Tensor:
        if isinstance(value, Tensor):
            return value if value.shape == shape else stacked[..., i]
        return stacked.detach()[..., i]

    return column(c1, 0), column(c0, 1)


class Beta(_TorchBeta):
    r"""``X = G_a / (G_a + G_b)``, ``G_a ~ Gamma(a, 1)``, ``G_b ~ Gamma(b, 1)``, drawn in log space;
    differentiated implicitly through the Beta CDF.

    The sample is ``X = sigmoid(log G_a - log G_b)`` (exact, and concentrations down to 1e-4,
    where ``G_a`` and ``G_b`` both underflow float64, still give samples). Its derivatives are
    the implicit ones, ``dX/da = -(dI_X(a, b)/da) / p(X; a, b)`` (likewise ``b``), from the
    differentiated continued fraction of the incomplete beta function
    (:mod:`reparam.distributions._beta_grad`): the same per-sample derivative as torch's (which
    approximates it), about half the variance of differentiating through the two gammas.
    Reference: Jankowiak & Obermeyer, "Pathwise Derivatives Beyond the Reparameterization
    Trick", ICML 2018. First derivatives only: a double backward raises.

    ``concentration1`` and ``concentration0`` must be positive and finite: with validation on
    (torch's default) anything else raises a ``ValueError`` naming the argument; with
    ``validate_args=False`` those entries give NaN samples.

    Example::

        >>> a = torch.tensor(2.0, requires_grad=True)
        >>> x = Beta(a, torch.tensor(3.0)).rsample((1000,))
        >>> x.mean().backward()  # a.grad estimates d E[X]/da = 3/25
    """

    def __init__(
        self,
        concentration1: Tensor | float,
        concentration0: Tensor | float,
        validate_args: bool | None = None,
    ) -> None:
        validate = validation_enabled(validate_args)
        if validate:
            check_positive_finite(
                type(self).__name__, concentration1=concentration1, concentration0=concentration0
            )
        # torch's own parameter checks (three masks and reads, a subset of the one above) are
        # skipped; samples passed to log_prob are still validated when validation is on
        super().__init__(concentration1, concentration0, validate_args=False)
        self._validate_args = validate
        # the concentrations as given (broadcast against each other): rsample's gradient reaches
        # them directly, not through torch's stacked copy and its two selects
        self._pair = _as_pair(concentration1, concentration0, self._dirichlet.concentration)

    def expand(self, batch_shape: _Shape, _instance: Beta | None = None) -> Beta:
        new = self._get_checked_instance(Beta, _instance)
        expanded: Beta = super().expand(batch_shape, _instance=new)  # torch's expand is unannotated
        c1, c0 = self._pair
        expanded._pair = (c1.expand(batch_shape), c0.expand(batch_shape))
        return expanded

    def rsample(self, sample_shape: _Shape = ()) -> Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        c1, c0 = self._pair
        return beta_rsample(c1, c0, shape, self._dirichlet.concentration)

    def sample(self, sample_shape: _Shape = ()) -> Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)
