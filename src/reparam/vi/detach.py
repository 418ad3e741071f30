r"""Copies of a distribution with detached parameters, for sticking-the-landing and DReG.

Sticking the landing (Roeder, Wu & Duvenaud 2017) and doubly-reparameterized gradients
(Tucker, Lawson, Gu & Maddison 2018) evaluate :math:`\log q_{\text{sg}(\phi)}(z)` at a
reparameterized sample :math:`z = g_\phi(\epsilon)`: the gradient reaches :math:`\phi` only
through the sample path, never through the density's parameters directly. The score term
:math:`\nabla_\phi \log q_\phi(z)|_{z \text{ fixed}}`, whose expectation is zero, is dropped.

:func:`detach_parameters` builds that :math:`q_{\text{sg}(\phi)}`: a distribution of the same
family whose parameter tensors are ``.detach()``-ed. New families register with
:func:`register_detach`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from torch.distributions import (
    Distribution,
    Independent,
    LowRankMultivariateNormal,
    MultivariateNormal,
    Normal,
)

D = TypeVar("D", bound=Distribution)
Detacher = Callable[[Distribution], Distribution]

DETACHERS: dict[type, Detacher] = {}


def register_detach(kind: type[D]) -> Callable[[Callable[[D], Distribution]], Callable[[D], Distribution]]:
    """Decorator: register ``fn(q) -> q_detached`` for distributions of exactly type ``kind``."""

    def decorate(fn: Callable[[D], Distribution]) -> Callable[[D], Distribution]:
        DETACHERS[kind] = fn  # type: ignore[assignment]
        return fn

    return decorate


@register_detach(Normal)
def _normal(q: Normal) -> Distribution:
    return Normal(q.loc.detach(), q.scale.detach(), validate_args=False)


@register_detach(Independent)
def _independent(q: Independent) -> Distribution:
    return Independent(detach_parameters(q.base_dist), q.reinterpreted_batch_ndims, validate_args=False)


@register_detach(MultivariateNormal)
def _multivariate_normal(q: MultivariateNormal) -> Distribution:
    # The unbroadcasted Cholesky factor is what every constructor form (covariance, precision,
    # scale_tril) stores; reusing it skips a second factorisation.
    scale_tril = q._unbroadcasted_scale_tril.detach()
    return MultivariateNormal(q.loc.detach(), scale_tril=scale_tril, validate_args=False)


@register_detach(LowRankMultivariateNormal)
def _low_rank(q: LowRankMultivariateNormal) -> Distribution:
    return LowRankMultivariateNormal(
        q.loc.detach(), q.cov_factor.detach(), q.cov_diag.detach(), validate_args=False
    )


def detach_parameters(q: Distribution) -> Distribution:
    r"""A copy of ``q``, same family and shapes, whose parameters are detached from autograd.

    ``detach_parameters(q).log_prob(z)`` has the value of ``q.log_prob(z)`` but its gradient
    flows only through ``z``: the path-derivative term of Roeder et al. (2017).

    Supported: ``Normal``, ``Independent`` (of any supported base), ``MultivariateNormal``,
    ``LowRankMultivariateNormal`` (the families of :mod:`reparam.vi.families` build these);
    others register with :func:`register_detach`.

    Raises:
        TypeError: for an unsupported family, naming it and the fix.

    Example:
        >>> loc, log_scale = torch.zeros(3, requires_grad=True), torch.zeros(3, requires_grad=True)
        >>> q = torch.distributions.Normal(loc, log_scale.exp())
        >>> z = q.rsample((8,))
        >>> entropy_path = -rp.vi.detach_parameters(q).log_prob(z)  # gradient only via z
        >>> entropy_path.sum().backward()
    """
    if not isinstance(q, Distribution):
        raise TypeError(f"q must be a torch.distributions.Distribution, got {type(q).__name__}.")
    detacher = DETACHERS.get(type(q))
    if detacher is None:
        supported = ", ".join(sorted(k.__name__ for k in DETACHERS))
        raise TypeError(
            f"detach_parameters does not know how to detach {type(q).__name__}; supported: "
            f"{supported}. Register one with @reparam.vi.register_detach({type(q).__name__}) "
            "returning the same family built from .detach()-ed parameters."
        )
    return detacher(q)
