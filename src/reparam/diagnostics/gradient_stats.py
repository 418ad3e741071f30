"""``rp.gradient_stats``: mean, variance, SNR, bias and cost of a gradient estimator."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from reparam.diagnostics import _engine
from reparam.diagnostics._engine import QLike
from reparam.estimators.base import CostFn, Estimator, evaluations
from reparam.expect import default_estimator, validate_arguments

ExactLike = Sequence[Tensor | float] | Tensor | float


@dataclass(frozen=True)
class GradientStats:
    r"""Statistics of ``repeats`` independent gradient estimates, each made with ``num_samples``.

    Every tensor field is a tuple with one float64 tensor per parameter, shaped like it.

    Attributes:
        mean: :math:`\bar g`, the mean of the estimates.
        variance: per-coordinate variance of ONE estimate (unbiased sample variance over repeats).
        stderr: standard error of ``mean``: :math:`\sqrt{\text{variance}/\text{repeats}}`.
        snr: signal-to-noise ratio :math:`|\bar g| / \sqrt{\text{variance}}` (``inf`` for a
            zero-variance estimator with a non-zero mean, ``0`` where both are zero).
        bias: ``mean - exact`` or ``None`` without ``exact``.
        exact: the exact gradient given, or ``None``.
        seconds: wall time of one estimate (forward and backward; median of a few timed runs).
        evaluations: evaluations of ``f`` per estimate (``reparam.estimators.evaluations``).
        repeats: number of estimates.
        num_samples: samples per estimate.
        method: how the estimates were drawn: ``"batched"``, ``"batched-dense"`` or ``"loop"``.
        note: why the loop was used, when it was.
        estimator: ``repr`` of the estimator.
    """

    mean: tuple[Tensor, ...]
    variance: tuple[Tensor, ...]
    stderr: tuple[Tensor, ...]
    snr: tuple[Tensor, ...]
    bias: tuple[Tensor, ...] | None
    exact: tuple[Tensor, ...] | None
    seconds: float
    evaluations: int
    repeats: int
    num_samples: int
    method: str
    note: str
    estimator: str

    @property
    def total_variance(self) -> float:
        """Sum of the per-coordinate variances over all parameters (trace of the covariance)."""
        return float(sum(v.sum() for v in self.variance))

    @property
    def vectorized(self) -> bool:
        return self.method != "loop"


class _Moments:
    """Running per-coordinate mean and sum of squared deviations (Chan et al.'s merge), float64."""

    def __init__(self, params: Sequence[Tensor]) -> None:
        self.count = 0
        self.mean = [torch.zeros(p.shape, dtype=torch.float64) for p in params]
        self.m2 = [torch.zeros(p.shape, dtype=torch.float64) for p in params]

    def add(self, batch: Sequence[Tensor]) -> None:
        rows = batch[0].shape[0]
        total = self.count + rows
        for i, x in enumerate(batch):
            x = x.detach().to("cpu", torch.float64)
            mean_b = x.mean(0)
            m2_b = (x - mean_b).pow(2).sum(0)
            delta = mean_b - self.mean[i]
            self.mean[i] = self.mean[i] + delta * (rows / total)
            self.m2[i] = self.m2[i] + m2_b + delta.pow(2) * (self.count * rows / total)
        self.count = total


def _params(params: object) -> list[Tensor]:
    if isinstance(params, Tensor):
        params = [params]
    if isinstance(params, torch.nn.Module):
        params = list(params.parameters())
    if not isinstance(params, Sequence) or not params:
        raise TypeError(
            "params must be a non-empty list of tensors that q (or f) depends on, e.g. "
            f"params=[loc, log_scale]; got {type(params).__name__}."
        )
    for i, p in enumerate(params):
        if not isinstance(p, Tensor) or not p.requires_grad:
            raise TypeError(
                f"params[{i}] must be a tensor with requires_grad=True (the gradient is taken with "
                f"respect to it); got {type(p).__name__}. Create it with requires_grad=True."
            )
    return list(params)


def _exact(exact: ExactLike | None, params: Sequence[Tensor]) -> tuple[Tensor, ...] | None:
    if exact is None:
        return None
    if isinstance(exact, (Tensor, float, int)) and len(params) == 1:
        exact = [exact]
    if isinstance(exact, (Tensor, float, int)) or len(exact) != len(params):
        raise ValueError(
            f"exact must hold one gradient per parameter ({len(params)} here), each shaped like "
            "its parameter, e.g. exact=(grad_loc, grad_log_scale)."
        )
    out = []
    for i, (e, p) in enumerate(zip(exact, params, strict=True)):
        t = torch.as_tensor(e, dtype=torch.float64).detach().cpu()
        try:
            t = t.expand(p.shape).clone()
        except RuntimeError:
            raise ValueError(
                f"exact[{i}] has shape {tuple(t.shape)} but params[{i}] has shape {tuple(p.shape)}; "
                "give the exact gradient shaped like its parameter."
            ) from None
        out.append(t)
    return tuple(out)


def _snr(mean: Tensor, variance: Tensor) -> Tensor:
    std = variance.sqrt()
    ratio = mean.abs() / std.clamp_min(torch.finfo(torch.float64).tiny)
    return torch.where(std > 0, ratio, torch.where(mean != 0, math.inf, 0.0))


def _draw_batched(
    estimator: Estimator,
    f: CostFn,
    q: QLike,
    params: list[Tensor],
    num_samples: int,
    repeats: int,
    requested: int | None,
) -> tuple[_Moments, str, list[bool]]:
    moments = _Moments(params)
    reached = [False] * len(params)
    mode = "batched"
    first = _engine.build_q(q)
    size = _engine.chunk_size(estimator, first, num_samples, repeats, False, requested)
    while moments.count < repeats:
        rows = min(size, repeats - moments.count)
        built = first if moments.count == 0 else _engine.build_q(q)
        draws = None
        if mode == "batched":
            draws = _engine.batched_linear(estimator, f, built, params, num_samples, rows)
            if draws is None:
                mode = "batched-dense"
                size = _engine.chunk_size(estimator, first, num_samples, repeats, True, requested)
                rows = min(size, repeats - moments.count)
        if draws is None:
            draws = _engine.batched_dense(estimator, f, built, params, num_samples, rows)
        moments.add(draws.grads)
        reached = [a or b for a, b in zip(reached, draws.reached, strict=True)]
    return moments, mode, reached


def _draw(
    chosen: Estimator,
    f: CostFn,
    q: QLike,
    params: list[Tensor],
    num_samples: int,
    repeats: int,
    vectorize: bool,
    chunk_size: int | None,
    timing_repeats: int,
) -> tuple[_Moments, str, str, list[float], list[bool]]:
    """``repeats`` estimates, batched where possible: their moments, the method, a note on
    why the loop was used, wall times of single estimates, and which params they reached."""
    moments: _Moments | None = None
    method, note = "loop", ""
    times: list[float] = []
    reached: list[bool] = []
    if not vectorize:
        note = "vectorize=False"
    elif _engine.is_stateful(chosen):
        note = f"{chosen!r} keeps state between calls, so it sees one estimate at a time"
    else:
        worker = _engine.try_copy(chosen, params)
        try:
            moments, method, reached = _draw_batched(worker, f, q, params, num_samples, repeats, chunk_size)
        except Exception as error:  # any failure of the batched form: loop instead
            moments, method = None, "loop"
            note = f"batched estimates failed ({type(error).__name__}: {str(error)[:160]}); looped"
        if moments is not None:
            for _ in range(timing_repeats + 1):
                times.append(_engine.timed_estimate(worker, f, q, params, num_samples)[1])
            times = times[1:]
    if moments is None:
        moments = _Moments(params)
        reached = [False] * len(params)
        pending: list[list[Tensor]] = []
        for i in range(repeats):
            draws, seconds = _engine.timed_estimate(chosen, f, q, params, num_samples)
            reached = [a or b for a, b in zip(reached, draws.reached, strict=True)]
            pending.append([g[0] for g in draws.grads])
            times.append(seconds)
            if len(pending) == 256 or i == repeats - 1:  # fold in stacked batches: fewer small ops
                moments.add([torch.stack(column) for column in zip(*pending, strict=True)])
                pending = []

    return moments, method, note, times, reached


def gradient_stats(
    f: CostFn,
    q: QLike,
    params: Sequence[Tensor] | Tensor,
    estimator: Estimator | None = None,
    num_samples: int = 1,
    repeats: int = 2000,
    exact: ExactLike | None = None,
    vectorize: bool = True,
    chunk_size: int | None = None,
    timing_repeats: int = 5,
) -> GradientStats:
    r"""Draw ``repeats`` independent gradient estimates of :math:`\nabla_{\text{params}}
    \mathbb{E}_q[f]` and summarise them.

    Each estimate is what one ``rp.expect(f, q, estimator, num_samples).sum().backward()`` would
    put in ``params[i].grad``. Estimates are batched (``q`` expanded along a new leading batch
    dim, one forward and one backward pass per chunk; see ``reparam.diagnostics._engine``) and
    drawn one at a time only where that is impossible: estimators keeping state between calls
    (``MovingAverage`` baselines, or any object with ``stateful = True`` or a ``reset()``
    method), ``q`` without ``expand``, or an ``f`` / estimator the batched form fails on. The
    batched attempt runs on a copy of the estimator, so it never changes the caller's one.

    Args:
        f: the cost, as for ``rp.expect``; batching assumes it treats samples independently
            (pass ``vectorize=False`` if row ``i`` of its output depends on other rows).
        q: a distribution whose parameters hang off ``params``, or a zero-argument callable
            building one (called once per chunk, or per estimate in the loop).
        params: tensors with ``requires_grad=True`` (or an ``nn.Module``).
        estimator: any object following the ``Estimator`` protocol; ``None`` picks as
            ``rp.expect`` does.
        num_samples: samples per estimate.
        repeats: number of independent estimates (at least 2).
        exact: the exact gradient, one tensor (or float) per parameter, for ``bias``.
        vectorize: try the batched forms first (default); ``False`` always loops.
        chunk_size: estimates per batched call; default keeps intermediates near ``2**22``
            elements.
        timing_repeats: single estimates timed for ``seconds`` (median).

    Returns:
        :class:`GradientStats`. Its ``variance`` is that of ONE estimate; the standard error of
        the mean is ``stderr``. The sample variance has relative standard error about
        :math:`\sqrt{(\kappa - 1)/R}` (kurtosis :math:`\kappa`, ``R = repeats``).

    Example:
        >>> from torch.distributions import Normal
        >>> loc = torch.tensor(1.0, requires_grad=True)
        >>> stats = rp.gradient_stats(lambda x: x**2, lambda: Normal(loc, 1.0), [loc],
        ...                           estimator=rp.Pathwise(), exact=[2.0])
        >>> abs(float(stats.variance[0]) - 4.0) < 1.0  # 4 sigma^2: the pathwise estimate 2x varies
        True

    Reference: Mohamed, Rosca, Figurnov & Mnih, "Monte Carlo Gradient Estimation in Machine
    Learning", JMLR 2020, section 3 (variance, computational cost) and section 8 (comparisons).
    """
    param_list = _params(params)
    first_q = _engine.build_q(q)
    chosen = default_estimator(first_q, num_samples) if estimator is None else estimator
    validate_arguments(f, first_q, chosen, num_samples)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 2:
        raise ValueError(f"repeats must be an int >= 2, got {repeats!r}; e.g. repeats=2000.")
    if isinstance(timing_repeats, bool) or not isinstance(timing_repeats, int) or timing_repeats < 1:
        raise ValueError(
            f"timing_repeats must be an int >= 1 (single estimates timed for `seconds`), got "
            f"{timing_repeats!r}; e.g. timing_repeats=5."
        )
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ValueError(
            f"chunk_size must be None (automatic) or an int >= 1 (estimates per batched call), "
            f"got {chunk_size!r}."
        )
    exact_t = _exact(exact, param_list)
    cost = evaluations(chosen, first_q, num_samples)
    q_source: QLike = first_q if isinstance(q, torch.distributions.Distribution) else q

    try:
        moments, method, note, times, reached = _draw(
            chosen, f, q_source, param_list, num_samples, repeats, vectorize, chunk_size, timing_repeats
        )
    except RuntimeError as error:
        if "backward through the graph a second time" not in str(error):
            raise
        raise RuntimeError(
            "gradient_stats could not differentiate through q: its graph was freed by an earlier "
            "backward() (e.g. `rp.expect(f, q).backward()` before this call). Pass a factory that "
            "rebuilds q on each call, q=lambda: Normal(loc, scale), or rebuild q after backward()."
        ) from error
    unused = [i for i, flag in enumerate(reached) if not flag]
    if unused:
        shapes = ", ".join(f"params[{i}] (shape {tuple(param_list[i].shape)})" for i in unused)
        raise ValueError(
            f"no gradient reaches {shapes}: q (and f) do not depend on them (or the estimate is "
            "constant), so their variance would be a meaningless 0. Pass only tensors q is built "
            "from (e.g. params=[loc, log_scale] for q=Normal(loc, log_scale.exp())), or build q "
            "from these tensors."
        )

    mean = tuple(moments.mean)
    mean = tuple(moments.mean)
    variance = tuple(m2 / (moments.count - 1) for m2 in moments.m2)
    if not all(bool(torch.isfinite(t).all()) for t in (*mean, *variance)):
        raise FloatingPointError(
            f"{chosen!r} produced non-finite gradient estimates (inf or NaN) on this problem; check "
            "f and q for overflow (e.g. exp of large values, log of 0) or use float64 parameters."
        )
    stderr = tuple((v / moments.count).sqrt() for v in variance)
    snr = tuple(_snr(m, v) for m, v in zip(mean, variance, strict=True))
    bias = None if exact_t is None else tuple(m - e for m, e in zip(mean, exact_t, strict=True))
    return GradientStats(
        mean=mean,
        variance=variance,
        stderr=stderr,
        snr=snr,
        bias=bias,
        exact=exact_t,
        seconds=statistics.median(times),
        evaluations=cost,
        repeats=moments.count,
        num_samples=num_samples,
        method=method,
        note=note,
        estimator=repr(chosen),
    )
