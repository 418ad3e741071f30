"""Argument checks shared by the wrappers: clear errors that name the argument and the fix."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor
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


def validation_enabled(validate_args: bool | None) -> bool:
    """Whether a distribution built with ``validate_args`` checks its arguments (torch's rule:
    the class default, ``Distribution._validate_args``, unless given)."""
    return Distribution._validate_args if validate_args is None else bool(validate_args)


def restore_validation(dist: Distribution, validate_args: bool | None) -> None:
    """After ``super().__init__(..., validate_args=False)`` in a class whose own checks (run
    before it) are stricter than torch's argument constraints: validation of later samples as
    ``validate_args`` asked (the class default when None), without torch's second pass over the
    arguments (a mask and a reduction per argument)."""
    if validate_args is None:
        vars(dist).pop("_validate_args", None)
    else:
        dist._validate_args = bool(validate_args)


def _first_violation(value: Tensor | float, ok: Callable[[Tensor], Tensor]) -> str | None:
    """``"<value>"`` or ``"<value> at index (i, j)"`` for the first entry where ``ok`` fails."""
    t = torch.as_tensor(value).detach()
    bad = ~ok(t)
    if not bool(bad.any()):
        return None
    if t.dim() == 0:
        return str(t.item())
    index = tuple(int(i) for i in bad.nonzero()[0])
    return f"{t[index].item()} at index {index}"


def _shared_value_in(value: Tensor | float, low: float, high: float) -> bool:
    """Whether ``value`` is a Python number or a one-element real tensor strictly between ``low``
    and ``high`` (False for NaN), read with one call instead of a mask and a reduction; anything
    else (and any failure) is left to :func:`_first_violation`."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return low < value < high
    if isinstance(value, Tensor) and value.numel() == 1 and value.dtype.is_floating_point:
        return low < value.item() < high
    return False


def check_positive_finite(owner: str, **params: Tensor | float) -> None:
    """Raise a ``ValueError`` naming the first of ``params`` with an entry that is not positive
    and finite (NaN, inf, ``<= 0``), with the fix."""
    for name, value in params.items():
        if _shared_value_in(value, 0.0, math.inf):
            continue
        found = _first_violation(value, lambda t: (t > 0) & (t < math.inf))
        if found is not None:
            raise ValueError(
                f"{owner}: {name} must be positive and finite, got {found}; pass a positive finite "
                f"{name} (e.g. softplus(raw) + 1e-6 for a learned one), or validate_args=False to get "
                f"NaN samples where it is invalid."
            )


def check_finite(owner: str, **params: Tensor | float) -> None:
    """Raise a ``ValueError`` naming the first of ``params`` with an entry that is NaN or infinite."""
    for name, value in params.items():
        if _shared_value_in(value, -math.inf, math.inf):
            continue
        found = _first_violation(value, torch.isfinite)
        if found is not None:
            raise ValueError(
                f"{owner}: {name} must be finite, got {found}; pass a finite {name}, or "
                f"validate_args=False to get NaN samples where it is invalid."
            )
