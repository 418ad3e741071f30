"""BayesConv1d / BayesConv2d: nn.Conv* geometry, the posterior mean path, bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from reparam.nn import ESTIMATORS, BayesConv1d, BayesConv2d

GEOMETRIES = [
    {"kernel_size": 3},
    {"kernel_size": 3, "stride": 2, "padding": 1},
    {"kernel_size": (2, 3), "dilation": 2, "padding": "same"},
    {"kernel_size": 3, "groups": 2, "bias": False},
    {"kernel_size": 3, "padding": 2, "padding_mode": "reflect"},
    {"kernel_size": 3, "padding": 1, "padding_mode": "circular"},
]


def _tuple_1d(options: dict) -> dict:
    return {k: (v[-1] if isinstance(v, tuple) else v) for k, v in options.items()}


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("options", GEOMETRIES)
@pytest.mark.parametrize("dims", [1, 2])
def test_matches_nn_conv_when_noise_vanishes(dims: int, options: dict, estimator: str) -> None:
    # With sigma = 1e-8 every estimator must reproduce nn.ConvNd with weight = mu (same shapes,
    # strides, paddings, dilations, groups and padding modes).
    options = options if dims == 2 else _tuple_1d(options)
    conv_cls, bayes_cls = (nn.Conv1d, BayesConv1d) if dims == 1 else (nn.Conv2d, BayesConv2d)
    reference = conv_cls(4, 6, **options).double()
    layer = bayes_cls(4, 6, **options, estimator=estimator, init_scale=1e-8).double()
    layer.load_means(reference.weight.detach(), None if reference.bias is None else reference.bias.detach())
    x = torch.randn((2, 4, 9) if dims == 1 else (2, 4, 9, 7), dtype=torch.float64)
    torch.testing.assert_close(layer(x), reference(x), atol=1e-6, rtol=1e-6)
    unbatched = x[0]
    assert layer(unbatched).shape == reference(unbatched).shape


def test_bad_arguments_and_inputs() -> None:
    with pytest.raises(ValueError, match="groups"):
        BayesConv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode"):
        BayesConv2d(2, 2, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="stride=1"):
        BayesConv1d(2, 2, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding"):
        BayesConv1d(2, 2, 3, padding="full")
    with pytest.raises(ValueError, match="in_channels"):
        BayesConv1d(0, 2, 3)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\).*C=3"):
        BayesConv2d(3, 2, 3)(torch.randn(1, 2, 5, 5))
    with pytest.raises(ValueError, match=r"\(N, C, L\)"):
        BayesConv1d(3, 2, 3)(torch.randn(3, 5, 5, 5))
