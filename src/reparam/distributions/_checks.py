"""Argument checks shared by the wrappers: clear errors that name the argument and the fix."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch.distributions import Distribution


def overrides(dist: Distribution, method: str) -> bool:
    """Whether ``type(dist)`` implements ``method`` (not just ``Distribution``'s stub)."""
    return getattr(type(dist), method, None) is not getattr(Distribution, method, None)


def check_univariate_continuous(dist: object, wrapper: str, needs: str) -> Distribution:
    """Raise unless ``dist`` is a univariate continuous ``Distribution`` implementing ``needs``."""
    if not isinstance(dist, Distribution):
        raise TypeError(
            f"{wrapper}(dist): dist must be a torch.distributions.Distribution, got "
            f"{type(dist).__name__}; e.g. {wrapper}(torch.distributions.Gamma(a, b))."
        )
    if dist.event_shape != ():
        raise ValueError(
            f"{wrapper}(dist): dist must be univariate (event_shape == ()), got event_shape "
            f"{tuple(dist.event_shape)}; wrap the univariate base instead, e.g. "
            f"Independent({wrapper}(base), 1), or use rp.distributions.MixtureSameFamily for mixtures."
        )
    support = dist.support
    if support is not None and getattr(support, "is_discrete", False):
        raise ValueError(
            f"{wrapper}(dist): dist must be continuous, but {type(dist).__name__} has a discrete "
            "support; use estimator=rp.ScoreFunction() or a relaxation for discrete variables."
        )
    if not overrides(dist, needs):
        raise NotImplementedError(
            f"{wrapper}(dist): {type(dist).__name__} does not implement {needs}(), which {wrapper} "
            f"needs; implement {needs}(value) on your class"
            + (
                " or use rp.distributions.Implicit(dist) (needs cdf)."
                if needs == "icdf"
                else " or use rp.distributions.InverseCDF(dist) (needs icdf), or rp.ScoreFunction()."
            )
        )
    return dist


@contextmanager
def samples_trusted(dist: Distribution) -> Iterator[Distribution]:
    """Turn off ``dist``'s sample validation while evaluating ``log_prob``/``cdf`` at points it
    drew itself: they lie in its support by construction, and the check (an elementwise
    comparison and a reduction per call) is a large share of a cheap distribution's cost."""
    saved = dist._validate_args
    dist._validate_args = False
    try:
        yield dist
    finally:
        dist._validate_args = saved
