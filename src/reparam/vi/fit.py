r"""``fit``: black-box variational inference for a model given as a log-joint function.

Each step builds ``q`` from the family, estimates the ELBO (:func:`reparam.vi.elbo`) with the
chosen gradient estimator, and takes one optimizer step on ``-ELBO``; with ``data`` it draws a
minibatch per step and scales the likelihood by ``dataset_size / batch_size``.

Reference: Ranganath, Gerrish & Blei, "Black box variational inference", AISTATS 2014;
Kucukelbir et al., "Automatic differentiation variational inference", JMLR 2017.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from reparam.estimators.base import Estimator
from reparam.training.guards import check_finite
from reparam.training.progress import training_progress
from reparam.vi.detach import detach_parameters
from reparam.vi.elbo import KL, elbo
from reparam.vi.flows import FlowFamily, is_zuko_flow

OptimizerFactory = Callable[[Iterable[Tensor]], torch.optim.Optimizer]


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        history: the loss (``-ELBO`` estimate, one Monte Carlo estimate per step) at every step.
        q: the fitted distribution, with detached parameters.
        family: the family module (its parameters are the fitted ones), or ``None`` when a
            plain callable was fitted.
    """

    history: list[float] = field(default_factory=list)
    q: Distribution | None = None
    family: nn.Module | None = None


def _as_data(data: Tensor | Sequence[Tensor] | None) -> tuple[Tensor, ...] | None:
    if data is None:
        return None
    tensors = (data,) if isinstance(data, Tensor) else tuple(data)
    if not tensors or not all(isinstance(t, Tensor) for t in tensors):
        raise TypeError("data must be a Tensor or a sequence of Tensors sharing their first dim.")
    n = tensors[0].shape[0]
    if any(t.dim() == 0 or t.shape[0] != n for t in tensors):
        shapes = [tuple(t.shape) for t in tensors]
        raise ValueError(f"data tensors must share their first (row) dim, got shapes {shapes}.")
    if n == 0:
        raise ValueError("data has no rows.")
    return tensors


def _parameters(family: object, params: Iterable[Tensor] | None) -> list[Tensor]:
    if params is not None:
        found = list(params)
    elif isinstance(family, nn.Module):
        found = list(family.parameters())
    else:
        raise TypeError(
            "family is a plain callable, so fit cannot find its parameters: pass params=[...] "
            "(the leaf tensors q is built from), or use a family module such as "
            "rp.vi.MeanFieldGaussian(dim)."
        )
    if not found:
        raise ValueError("no parameters to fit: params (or the family module's parameters) is empty.")
    return found


def _batches(
    data: tuple[Tensor, ...], batch_size: int, generator: torch.Generator | None
) -> Iterator[tuple[Tensor, ...]]:
    n = data[0].shape[0]
    device = data[0].device
    while True:
        # drawn where the generator lives (CPU by default), moved once per epoch
        order = torch.randperm(n, generator=generator, device=generator.device if generator else device)
        order = order.to(device)
        for start in range(0, n - batch_size + 1, batch_size):
            rows = order[start : start + batch_size]
            yield tuple(t[rows] for t in data)


def fit(
    log_joint: Callable[..., Tensor],
    family: nn.Module | Callable[[], Distribution],
    steps: int,
    *,
    params: Iterable[Tensor] | None = None,
    prior: Distribution | None = None,
    estimator: Estimator | None = None,
    num_samples: int = 1,
    kl: KL = "analytic",
    stl: bool = False,
    data: Tensor | Sequence[Tensor] | None = None,
    batch_size: int | None = None,
    data_scale: float | None = None,
    lr: float = 1e-2,
    optimizer: OptimizerFactory | None = None,
    schedule: str = "constant",
    progress: bool = True,
    description: str = "vi.fit",
    generator: torch.Generator | None = None,
    callback: Callable[[int, Distribution, float], None] | None = None,
) -> FitResult:
    r"""Maximise the ELBO of ``q = family()`` for ``steps`` optimizer steps.

    Args:
        log_joint: without ``data``, ``z -> log p(x, z)`` (or ``log p(x | z)`` with ``prior``);
            with ``data``, ``(z, *batch) -> log p(x_batch | z)`` (``prior`` then required),
            shaped ``(num_samples, ...)`` like :func:`reparam.vi.elbo` expects.
        family: a module returning ``q`` when called (:class:`MeanFieldGaussian`,
            :class:`FullRankGaussian`, :class:`LowRankGaussian`, :class:`FlowFamily`, a zuko
            flow such as ``zuko.flows.MAF(features=D)`` (wrapped in :class:`FlowFamily`, so
            ``stl=True`` works), or your own), or any callable returning a distribution
            together with ``params``.
        steps: optimizer steps.
        params: the tensors to optimise (default: ``family.parameters()``).
        prior, estimator, num_samples, kl, stl: passed to :func:`reparam.vi.elbo`.
        data: a tensor or tuple of tensors with one row per data point; each step draws
            ``batch_size`` rows without replacement (reshuffled every epoch).
        batch_size: rows per step (default: all rows).
        data_scale: likelihood scale; default ``len(data) / batch_size`` with ``data``, else 1.
        lr: learning rate of the default optimizer (Adam).
        optimizer: ``params -> torch.optim.Optimizer`` (e.g. ``lambda p: torch.optim.SGD(p, 1e-3)``).
        schedule: ``"constant"`` or ``"cosine"`` (learning rate times
            :math:`\cos(\frac{\pi}{2} t / T)`, as in Mohamed et al. 2020's experiments).
        progress: show a rich progress bar with the running ELBO.
        generator: random generator for the minibatch order.
        callback: ``callback(step, q, loss)`` after every step.

    Returns:
        A :class:`FitResult` with the loss history (``-ELBO`` per step) and the fitted ``q``.

    Example:
        >>> target = torch.distributions.MultivariateNormal(
        ...     torch.tensor([1.0, -1.0]), torch.tensor([[1.0, 0.5], [0.5, 1.0]]))
        >>> family = rp.vi.FullRankGaussian(2)
        >>> result = rp.vi.fit(lambda z: target.log_prob(z), family, steps=300,
        ...                    num_samples=8, progress=False)
        >>> result.q.mean  # close to (1, -1)  # doctest: +ELLIPSIS
        tensor([...])
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}.")
    if not callable(family):
        raise TypeError(
            f"family must be a module or callable returning a Distribution, got {type(family).__name__}."
        )
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"schedule must be 'constant' or 'cosine', got {schedule!r}.")
    tensors = _as_data(data)
    if tensors is not None and prior is None:
        raise ValueError(
            "with data=..., log_joint returns the minibatch log-likelihood, so the prior must be "
            "given separately: pass prior=p(z) (the likelihood alone is scaled by N / batch)."
        )
    rows = 0 if tensors is None else tensors[0].shape[0]
    if batch_size is None:
        batch_size = rows
    if tensors is not None and not (isinstance(batch_size, int) and 1 <= batch_size <= rows):
        raise ValueError(f"batch_size must be an int in [1, {rows}] (the rows of data), got {batch_size!r}.")
    if data_scale is None:
        data_scale = rows / batch_size if tensors is not None else 1.0
    trainable = _parameters(family, params)
    opt = optimizer(trainable) if optimizer is not None else torch.optim.Adam(trainable, lr=lr)
    scheduler = None
    if schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda t: math.cos(0.5 * math.pi * min(t, steps) / steps)
        )
    batches = None if tensors is None else _batches(tensors, batch_size, generator)
    # a zuko flow builds its distribution the same way; the wrapper lets stl detach it
    build = FlowFamily(family) if isinstance(family, nn.Module) and is_zuko_flow(family) else family

    result = FitResult(family=family if isinstance(family, nn.Module) else None)
    every = max(1, steps // 200)
    with training_progress(disable=not progress) as bar:
        task = bar.add_task(description, total=steps, status="")
        for step in range(steps):
            q = build()
            if batches is None:
                target = log_joint
            else:
                batch = next(batches)

                def target(z: Tensor, batch: tuple[Tensor, ...] = batch) -> Tensor:
                    return log_joint(z, *batch)

            value = elbo(target, q, estimator, num_samples, prior, kl, float(data_scale), stl)
            if value.dim() != 0:
                value = value.sum()
            loss = -value
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if scheduler is not None:
                scheduler.step()
            loss_value = check_finite(loss.detach(), step)
            result.history.append(loss_value)
            if callback is not None:
                callback(step, q, loss_value)
            if step % every == 0 or step == steps - 1:
                recent = result.history[-every:]
                bar.update(task, completed=step + 1, status=f"ELBO {-sum(recent) / len(recent):.4g}")
    with torch.no_grad():
        final = build()
    try:
        result.q = detach_parameters(final)
    except TypeError:
        result.q = final
    return result
