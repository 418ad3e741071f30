"""``rp.expect``: the one primitive."""

from __future__ import annotations

from torch import Tensor
from torch.distributions import Distribution

from reparam.baselines import LeaveOneOut, MovingAverage
from reparam.estimators.base import CostFn, Estimator
from reparam.estimators.pathwise import Pathwise
from reparam.estimators.score_function import ScoreFunction


def default_estimator(q: Distribution, num_samples: int) -> Estimator:
    """``Pathwise()`` if ``q`` has ``rsample``; else the score function with a leave-one-out
    baseline (``num_samples > 1``) or a moving-average baseline (one sample)."""
    if q.has_rsample:
        return Pathwise()
    if num_samples > 1:
        return ScoreFunction(baseline=LeaveOneOut())
    return ScoreFunction(baseline=MovingAverage())


def validate_arguments(f: object, q: object, estimator: object, num_samples: object) -> None:
    """Raise a clear error, naming the argument and the fix, for bad input to ``expect``."""
    if not callable(f):
        raise TypeError(
            f"f must be a callable taking samples and returning costs, got {type(f).__name__}; "
            "e.g. f=lambda z: (z ** 2).sum(-1)."
        )
    if not isinstance(q, Distribution):
        raise TypeError(
            f"q must be a torch.distributions.Distribution, got {type(q).__name__}; e.g. "
            "q=torch.distributions.Normal(loc, scale)."
        )
    if isinstance(num_samples, bool) or not isinstance(num_samples, int):
        raise TypeError(
            f"num_samples must be an int >= 1, got {num_samples!r} ({type(num_samples).__name__})."
        )
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}; use num_samples=1 or more.")
    if estimator is not None and not callable(estimator):
        raise TypeError(
            f"estimator must be None or an estimator such as rp.Pathwise() or "
            f"rp.ScoreFunction(), got {type(estimator).__name__}."
        )
    if isinstance(estimator, type):
        raise TypeError(
            f"estimator must be an instance, got the class {estimator.__name__}; "
            f"write estimator={estimator.__name__}()."
        )


def check_surrogate(result: object, estimator: object) -> Tensor:
    """``result`` if the estimator returned a tensor; else a ``TypeError`` naming the estimator
    and what it must return."""
    if not isinstance(result, Tensor):
        raise TypeError(
            f"estimator {estimator!r} returned {type(result).__name__}, not a torch.Tensor; an "
            "estimator(f, q, num_samples) must return the surrogate tensor (shaped like the costs "
            "without the sample dim) whose value is the Monte Carlo estimate and whose gradient "
            "is the gradient estimate, e.g. `return f(q.rsample((num_samples,))).mean(0)`."
        )
    return result


def expect(
    f: CostFn,
    q: Distribution,
    estimator: Estimator | None = None,
    num_samples: int = 1,
) -> Tensor:
    r"""Monte Carlo estimate of :math:`\mathbb{E}_{z \sim q}[f(z)]` with the estimator's gradient.

    Args:
        f: callable taking samples shaped ``(num_samples, *q.batch_shape, *q.event_shape)`` and
            returning costs shaped ``(num_samples, *q.batch_shape[:k])`` for some ``k``. It may
            close over modules with parameters; their gradients flow as usual.
        q: any ``torch.distributions.Distribution``; its parameters may hang off any graph.
        estimator: e.g. ``rp.Pathwise()``, ``rp.ScoreFunction(baseline=...)``,
            ``rp.MeasureValued()``. ``None`` picks ``Pathwise()`` when ``q.has_rsample``, else
            ``ScoreFunction(LeaveOneOut())`` for ``num_samples > 1``, else
            ``ScoreFunction(MovingAverage())``.
        num_samples: Monte Carlo samples per estimate (antithetic pairs for ARM-type estimators).

    Returns:
        A tensor shaped ``q.batch_shape[:k]`` whose value is the mean cost over samples and
        whose gradient is the estimator's gradient estimate.

    Example:
        >>> loc = torch.zeros(3, requires_grad=True)
        >>> q = torch.distributions.Normal(loc, 1.0)
        >>> rp.expect(lambda z: ((z - 2.0) ** 2).sum(-1), q, num_samples=16).backward()
    """
    validate_arguments(f, q, estimator, num_samples)
    chosen = default_estimator(q, num_samples) if estimator is None else estimator
    return check_surrogate(chosen(f, q, num_samples), chosen)
