"""``rp.check_unbiased``: does an estimator agree with an exact gradient?"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution

from reparam.diagnostics import _format
from reparam.diagnostics._engine import QLike
from reparam.diagnostics.compare import coordinate_names
from reparam.diagnostics.gradient_stats import ExactLike, GradientStats, gradient_stats
from reparam.estimators.base import CostFn, Estimator


@dataclass(frozen=True)
class UnbiasedReport:
    """The outcome of :func:`check_unbiased`.

    Attributes:
        z: per-coordinate z-scores ``(mean - exact) / stderr``, one float64 tensor per parameter.
        max_abs_z: the largest ``|z|``.
        threshold: the ``|z|`` above which the check fails.
        passed: ``max_abs_z < threshold``.
        stats: the underlying :class:`GradientStats`.
        names: a label per parameter.
    """

    z: tuple[Tensor, ...]
    max_abs_z: float
    threshold: float
    passed: bool
    stats: GradientStats
    names: tuple[str, ...]

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        s = self.stats
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [
            f"check_unbiased: {verdict}: max |z| = {_format.number(self.max_abs_z, 3)} "
            f"(threshold {self.threshold:g}) for {s.estimator}",
            f"  {s.repeats} estimates with num_samples={s.num_samples}; z = (mean - exact) / stderr",
        ]
        labels = coordinate_names(list(s.mean), list(self.names))
        for i, coords in enumerate(labels):
            flat = [t[i].reshape(-1) for t in (s.mean, s.stderr, self.z)]
            exact = s.exact[i].reshape(-1) if s.exact is not None else None
            for j, label in enumerate(coords):
                z = float(flat[2][j])
                mark = "  <-- disagrees" if abs(z) >= self.threshold else ""
                lines.append(
                    f"  {label}: mean {_format.number(float(flat[0][j]))} ± "
                    f"{_format.number(float(flat[1][j]), 2)}, exact "
                    f"{_format.number(None if exact is None else float(exact[j]))}, "
                    f"z {_format.number(z, 3)}{mark}"
                )
        resolution = max(float(t.max()) for t in s.stderr) * self.threshold
        if self.passed:
            lines.append(
                f"  No bias detected; a bias smaller than about {_format.number(resolution, 2)} "
                "per coordinate would go unseen (raise repeats to look closer)."
            )
        else:
            lines.append(
                "  The estimates do not agree with the exact gradient: the estimator is biased "
                "(or the exact gradient is wrong)."
            )
        return "\n".join(lines)


def _looks_like_q(obj: object) -> bool:
    """A distribution or a zero-argument factory of one (not a tensor, a list or a module)."""
    if isinstance(obj, Distribution):
        return True
    return callable(obj) and not isinstance(obj, (Tensor, torch.nn.Module))


def _legacy(
    estimator: Estimator,
    f: CostFn,
    q: QLike,
    params: Sequence[Tensor] | Tensor,
    exact: ExactLike,
    num_samples: int = 1,
    repeats: int = 4000,
    threshold: float = 5.0,
    param_names: Sequence[str] | None = None,
    vectorize: bool = True,
) -> dict[str, object]:
    """The first order of arguments, ``check_unbiased(estimator, f, q, params, exact, ...)``,
    still accepted: its arguments as keywords of the current signature."""
    return dict(
        f=f, q=q, params=params, estimator=estimator, exact=exact, num_samples=num_samples,
        repeats=repeats, threshold=threshold, param_names=param_names, vectorize=vectorize,
    )  # fmt: skip


def check_unbiased(*args: object, **kwargs: object) -> UnbiasedReport:
    """Dispatch between the current argument order (that of :func:`gradient_stats`) and the
    first one, ``(estimator, f, q, params, exact, ...)``, recognised by a distribution (or a
    factory of one) as the third positional argument."""
    if len(args) >= 3 and _looks_like_q(args[2]):
        return _check_unbiased(**_legacy(*args, **kwargs))  # type: ignore[arg-type]
    return _check_unbiased(*args, **kwargs)  # type: ignore[arg-type]


def _check_unbiased(
    f: CostFn,
    q: QLike,
    params: Sequence[Tensor] | Tensor,
    estimator: Estimator | None = None,
    num_samples: int = 1,
    repeats: int = 4000,
    exact: ExactLike | None = None,
    vectorize: bool = True,
    chunk_size: int | None = None,
    timing_repeats: int = 5,
    threshold: float = 5.0,
    param_names: Sequence[str] | None = None,
) -> UnbiasedReport:
    r"""Test an estimator (anything following the ``Estimator`` protocol, yours too) against an
    exact gradient.

    Draws ``repeats`` estimates with :func:`gradient_stats` and computes, per coordinate,

    .. math::
        z_d = \frac{\bar g_d - g^\star_d}{\hat\sigma_d / \sqrt{R}},

    which for an unbiased estimator is approximately standard normal (central limit theorem).
    The check passes when :math:`\max_d |z_d| <` ``threshold``; with the default 5 a correct
    estimator fails with probability below :math:`6\times 10^{-7}` per coordinate, while a bias
    of ``b`` is flagged once ``|b| > 5`` standard errors (so more repeats detect smaller biases).
    Heavy-tailed estimates make the normal approximation optimistic: use more repeats then.

    The arguments are those of :func:`gradient_stats` (same order, same keywords) plus
    ``threshold`` and ``param_names``; the first order, ``check_unbiased(estimator, f, q,
    params, exact, ...)``, is still accepted.

    Args:
        f, q, params, estimator, num_samples, repeats, vectorize, chunk_size, timing_repeats:
            as for :func:`gradient_stats` (``estimator=None`` tests the one ``rp.expect`` picks).
        exact: the exact gradient (one tensor or float per parameter); required.
        threshold: the ``|z|`` that fails the check.
        param_names: labels for the report.

    Returns:
        An :class:`UnbiasedReport` (truthy when passed; ``print`` it for the details).

    Example:
        >>> from torch.distributions import Normal
        >>> mu = torch.tensor(0.5, requires_grad=True)
        >>> report = rp.check_unbiased(lambda x: x**2, lambda: Normal(mu, 1.0), [mu],
        ...                            rp.ScoreFunction(), exact=[2 * mu.detach()])
        >>> report.passed
        True
    """
    if exact is None:
        raise ValueError(
            "check_unbiased needs exact=(gradient per parameter); without it use gradient_stats."
        )
    if not threshold > 0:
        raise ValueError(f"threshold must be positive, got {threshold}; 5.0 is a good default.")
    stats = gradient_stats(
        f,
        q,
        params,
        estimator,
        num_samples=num_samples,
        repeats=repeats,
        exact=exact,
        vectorize=vectorize,
        chunk_size=chunk_size,
        timing_repeats=timing_repeats,
    )
    assert stats.bias is not None and stats.exact is not None
    param_list = [params] if isinstance(params, Tensor) else list(params)
    if isinstance(params, torch.nn.Module):
        param_list = list(params.parameters())
    z = []
    for bias, stderr, exact_i, mean, p in zip(
        stats.bias, stats.stderr, stats.exact, stats.mean, param_list, strict=True
    ):
        # Floor the standard error at the rounding error of the parameter's dtype, so that a
        # zero-variance estimator (e.g. exact enumeration) is judged up to rounding, not bitwise.
        eps = torch.finfo(p.dtype).eps if p.dtype.is_floating_point else torch.finfo(torch.float32).eps
        rounding = 16.0 * eps * (exact_i.abs() + mean.abs())
        scale = torch.hypot(stderr, rounding)
        ratio = bias / scale.clamp_min(torch.finfo(torch.float64).tiny)
        z.append(torch.where(scale > 0, ratio, torch.where(bias == 0, 0.0, math.inf)))
    max_abs_z = max(float(t.abs().max()) if t.numel() else 0.0 for t in z)
    count = len(stats.mean)
    names = tuple(param_names) if param_names is not None else tuple(f"p{i}" for i in range(count))
    return UnbiasedReport(
        z=tuple(z),
        max_abs_z=max_abs_z,
        threshold=float(threshold),
        passed=max_abs_z < threshold,
        stats=stats,
        names=names,
    )


check_unbiased.__doc__ = _check_unbiased.__doc__
check_unbiased.__signature__ = inspect.signature(_check_unbiased)  # type: ignore[attr-defined]
