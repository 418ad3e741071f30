"""A training-time monitor of gradient mean, variance and signal-to-noise ratio."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from reparam.diagnostics import _format


@dataclass(frozen=True)
class ParameterGradientSummary:
    """Exponentially weighted gradient statistics of one parameter.

    Attributes:
        name: the parameter's name.
        steps: updates seen.
        mean, variance: per-coordinate weighted mean and variance of the gradient.
        snr: per-coordinate ``|mean| / sqrt(variance)``.
        total_variance: ``variance.sum()`` (trace of the gradient covariance).
        mean_snr: the average of ``snr`` over coordinates.
        norm_snr: ``||mean|| / sqrt(total_variance)``: signal to noise of the whole gradient.
    """

    name: str
    steps: int
    mean: Tensor
    variance: Tensor
    snr: Tensor
    total_variance: float
    mean_snr: float
    norm_snr: float


class GradientVarianceMonitor:
    r"""Tracks the mean and variance of each parameter's gradient during training.

    Call :meth:`update` after every ``backward()`` (before ``optimizer.zero_grad()``). Each
    coordinate keeps exponentially weighted moments (West 1979):

    .. math::
        \delta = g_t - m_{t-1},\quad m_t = m_{t-1} + \alpha\delta,\quad
        v_t = (1 - \alpha)(v_{t-1} + \alpha\delta^2),\qquad \alpha = \max(1 - \text{decay}, 1/t),

    so the first ``1/(1 - decay)`` steps are plain running averages. While the parameters move,
    the variance also holds the drift of the true gradient over the window: a short window
    (``decay`` near 0.9) follows the estimator's noise, a long one smooths it.

    Args:
        params: an ``nn.Module`` (its named parameters), a dict of name -> tensor, or an
            iterable of tensors (named ``p0, p1, ...``).
        decay: weight of the past, in ``[0, 1)``.

    Example:
        >>> model = torch.nn.Linear(3, 1)
        >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> monitor = rp.GradientVarianceMonitor(model, decay=0.98)
        >>> for _ in range(5):
        ...     loss = model(torch.randn(8, 3)).pow(2).mean()
        ...     loss.backward(); monitor.update(); optimizer.step(); optimizer.zero_grad()
        >>> table = monitor.to_markdown()

    Reference: Welford, "Note on a method for calculating corrected sums of squares and
    products", Technometrics 1962; West, "Updating mean and variance estimates", CACM 1979.
    """

    def __init__(
        self, params: nn.Module | Mapping[str, Tensor] | Iterable[Tensor], decay: float = 0.98
    ) -> None:
        named: dict[str, Tensor]
        if isinstance(params, nn.Module):
            named = dict(params.named_parameters())
        elif isinstance(params, Mapping):
            named = dict(params)
        elif isinstance(params, Tensor):
            named = {"p0": params}
        else:
            named = {f"p{i}": p for i, p in enumerate(params)}
        if not named or not all(isinstance(p, Tensor) for p in named.values()):
            raise TypeError(
                "params must be an nn.Module, a dict of name -> tensor or a non-empty list of tensors; "
                "e.g. GradientVarianceMonitor(model)."
            )
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}; 0.98 averages about 50 steps.")
        self.params = named
        self.decay = float(decay)
        self.steps: dict[str, int] = dict.fromkeys(named, 0)
        self._mean: dict[str, Tensor] = {}
        self._var: dict[str, Tensor] = {}

    def reset(self) -> None:
        self.steps = dict.fromkeys(self.params, 0)
        self._mean.clear()
        self._var.clear()

    @torch.no_grad()
    def update(self) -> None:
        """Fold in the current ``.grad`` of every parameter that has one."""
        for name, p in self.params.items():
            if p.grad is None:
                continue
            g = p.grad.detach().to(torch.float64)
            if not bool(torch.isfinite(g).all()):
                raise FloatingPointError(
                    f"gradient of {name!r} has inf or NaN entries; the monitor skips nothing silently. "
                    "Check the loss for overflow before calling update()."
                )
            t = self.steps[name] + 1
            alpha = max(1.0 - self.decay, 1.0 / t)
            if name not in self._mean:
                self._mean[name] = g.clone()
                self._var[name] = torch.zeros_like(g)
            else:
                delta = g - self._mean[name]
                self._mean[name] += alpha * delta
                self._var[name] = (1.0 - alpha) * (self._var[name] + alpha * delta.pow(2))
            self.steps[name] = t

    def summary(self) -> dict[str, ParameterGradientSummary]:
        """Per-parameter statistics (parameters that never had a gradient are left out)."""
        out = {}
        for name in self._mean:
            mean, var = self._mean[name], self._var[name]
            std = var.sqrt()
            snr = torch.where(
                std > 0, mean.abs() / std.clamp_min(1e-300), torch.where(mean != 0, math.inf, 0.0)
            )
            total = float(var.sum())
            norm = float(mean.norm())
            out[name] = ParameterGradientSummary(
                name=name,
                steps=self.steps[name],
                mean=mean.clone(),
                variance=var.clone(),
                snr=snr,
                total_variance=total,
                mean_snr=float(snr[torch.isfinite(snr)].mean()) if bool(torch.isfinite(snr).any()) else 0.0,
                norm_snr=norm / math.sqrt(total) if total > 0 else (math.inf if norm > 0 else 0.0),
            )
        return out

    def to_markdown(self) -> str:
        """One row per parameter: steps, ``||mean||``, total variance, mean SNR, norm SNR."""
        header = ["parameter", "steps", "||mean||", "total variance", "mean SNR", "norm SNR"]
        rows = [
            [
                s.name,
                str(s.steps),
                _format.number(float(s.mean.norm())),
                _format.number(s.total_variance),
                _format.number(s.mean_snr, 3),
                _format.number(s.norm_snr, 3),
            ]
            for s in self.summary().values()
        ]
        return _format.markdown_table(header, rows)
