"""``BayesConv1d`` and ``BayesConv2d``: convolutions with mean-field Gaussian kernels."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Distribution
from torch.nn.modules.utils import _pair, _reverse_repeat_tuple, _single

from reparam.nn.base import BayesLayer, EstimatorName
from reparam.nn.priors import Prior

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _BayesConvNd(BayesLayer):
    """Shared by the 1-d and 2-d layers: arguments as ``nn.ConvNd``; the kernel and bias are
    Gaussian. ``padding_mode`` other than ``"zeros"`` pads the input first (as ``nn.ConvNd``
    does), so local reparameterization's ``conv(x^2, sigma^2)`` sees the padded values too."""

    _spatial_dims: int = 0

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...],
        padding: int | tuple[int, ...] | str,
        dilation: int | tuple[int, ...],
        groups: int,
        bias: bool,
        padding_mode: str,
        estimator: EstimatorName,
        prior: Prior | Distribution | None,
        init_scale: float | None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"in_channels ({in_channels}) and out_channels ({out_channels}) must both be divisible "
                f"by groups ({groups})."
            )
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}.")
        tuple_of = _single if self._spatial_dims == 1 else _pair
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = tuple_of(kernel_size)
        self.stride = tuple_of(stride)
        self.dilation = tuple_of(dilation)
        self.groups = groups
        self.padding_mode = padding_mode
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"padding must be an int, a tuple, 'valid' or 'same', got {padding!r}.")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' needs stride=1 (as in nn.Conv); pass explicit padding.")
            self.padding: tuple[int, ...] | str = padding
        else:
            self.padding = tuple_of(padding)
        if padding_mode != "zeros" and isinstance(self.padding, str):
            raise ValueError(f"padding_mode={padding_mode!r} needs integer padding, got {padding!r}.")
        self._reversed_padding = (
            _reverse_repeat_tuple(self.padding, 2) if not isinstance(self.padding, str) else ()
        )
        fan_in = (in_channels // groups) * math.prod(self.kernel_size)
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        super().__init__(shape, fan_in, bias, estimator, prior, init_scale, device, dtype)

    def _conv(self, x: Tensor, weight: Tensor, bias: Tensor | None, padding: tuple[int, ...] | str) -> Tensor:
        raise NotImplementedError

    def _op(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if self.padding_mode != "zeros":
            x = F.pad(x, self._reversed_padding, mode=self.padding_mode)
            return self._conv(x, weight, bias, (0,) * self._spatial_dims)
        return self._conv(x, weight, bias, self.padding)

    def _check_input(self, x: Tensor) -> None:
        dims = self._spatial_dims
        if x.dim() not in (dims + 1, dims + 2) or x.shape[-dims - 1] != self.in_channels:
            layout = "(N, C, L) or (C, L)" if dims == 1 else "(N, C, H, W) or (C, H, W)"
            raise ValueError(
                f"{type(self).__name__} with in_channels={self.in_channels} expects input {layout} "
                f"with C={self.in_channels}, got shape {tuple(x.shape)}."
            )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
            f"bias={self.bias_mu is not None}, padding_mode={self.padding_mode!r}, "
            f"estimator={self.estimator!r}"
        )


class BayesConv1d(_BayesConvNd):
    """``nn.Conv1d`` with a Gaussian kernel ``N(weight_mu, softplus(weight_rho)^2)``; input
    ``(N, C_in, L)``, output ``(N, C_out, L_out)``. ``estimator`` as in :class:`BayesLinear`."""

    _spatial_dims = 1

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] = 1,
        padding: int | tuple[int, ...] | str = 0,
        dilation: int | tuple[int, ...] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        estimator: EstimatorName = "flipout",
        prior: Prior | Distribution | None = None,
        init_scale: float | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
            estimator, prior, init_scale, device, dtype,
        )  # fmt: skip

    def _conv(self, x: Tensor, weight: Tensor, bias: Tensor | None, padding: tuple[int, ...] | str) -> Tensor:
        return F.conv1d(x, weight, bias, self.stride, padding, self.dilation, self.groups)


class BayesConv2d(_BayesConvNd):
    """``nn.Conv2d`` with a Gaussian kernel ``N(weight_mu, softplus(weight_rho)^2)``; input
    ``(N, C_in, H, W)``, output ``(N, C_out, H_out, W_out)``. ``estimator`` as in
    :class:`BayesLinear`."""

    _spatial_dims = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] = 1,
        padding: int | tuple[int, ...] | str = 0,
        dilation: int | tuple[int, ...] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        estimator: EstimatorName = "flipout",
        prior: Prior | Distribution | None = None,
        init_scale: float | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
            estimator, prior, init_scale, device, dtype,
        )  # fmt: skip

    def _conv(self, x: Tensor, weight: Tensor, bias: Tensor | None, padding: tuple[int, ...] | str) -> Tensor:
        return F.conv2d(x, weight, bias, self.stride, padding, self.dilation, self.groups)
