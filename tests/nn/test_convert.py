"""bayesianize: converts by type, keeps everything else untouched, initialises from weights."""

from __future__ import annotations

import pytest
import torch
from seeds import seeded
from torch import nn

from reparam.nn import BayesConv1d, BayesConv2d, BayesLinear, NormalPrior, bayesianize


class MyLinear(nn.Linear):
    """A subclass: converted, because matching is by isinstance."""


class Linear(nn.Module):
    """Named like nn.Linear but unrelated: must NOT be converted (no class-name matching)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight


def _model() -> nn.Sequential:
    torch.manual_seed(seeded(0))
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, padding_mode="reflect"),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(1, 2),  # (N, 4*8, 8) -> treat as 32 channels of length 8
        nn.Conv1d(32, 3, 3, stride=2, bias=False),
        nn.Flatten(),
        MyLinear(9, 3),
        Linear(),
        nn.LayerNorm(3),
        nn.Linear(3, 2),
    )


def test_targets_converted_by_type_and_others_untouched() -> None:
    model = _model()
    model[1].running_mean.add_(1.0)  # non-default state that must survive
    before = {k: v.clone() for k, v in model.state_dict().items()}
    converted = bayesianize(model, estimator="local", prior=NormalPrior(0.0, 0.3))
    assert isinstance(converted[0], BayesConv2d) and converted[0].padding_mode == "reflect"
    assert isinstance(converted[4], BayesConv1d) and converted[4].bias_mu is None
    assert converted[4].stride == (2,)
    assert isinstance(converted[6], BayesLinear) and isinstance(converted[9], BayesLinear)
    assert type(converted[7]) is Linear  # same name, not a subclass: untouched
    for index in (1, 2, 3, 5, 7, 8):
        assert type(converted[index]) is type(model[index])
        for key, value in model[index].state_dict().items():
            torch.testing.assert_close(converted[index].state_dict()[key], value)
    # not inplace: the original model is unchanged and still deterministic
    assert isinstance(model[0], nn.Conv2d)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key])
    # each new layer has its own copy of the prior and the chosen estimator
    assert converted[0].prior is not converted[9].prior
    assert all(
        layer.estimator == "local" for layer in (converted[0], converted[4], converted[6], converted[9])
    )


def test_means_initialised_from_weights_reproduce_the_network() -> None:
    # With init_from_weights and a negligible posterior scale, every estimator's output equals the
    # deterministic network's output (up to the 1e-6 noise scale).
    model = _model().eval()
    x = torch.randn(5, 1, 8, 8)
    expected = model(x)
    for estimator in ("reparam", "local", "flipout"):
        converted = bayesianize(model, estimator=estimator, init_scale=1e-7).eval()
        torch.testing.assert_close(converted(x), expected, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(converted[0].weight_mu, model[0].weight)
    fresh = bayesianize(model, init_from_weights=False)
    assert not torch.allclose(fresh[9].weight_mu, model[9].weight)


def test_inplace_exclude_layer_types_and_sharing() -> None:
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.ReLU(), shared, nn.Conv1d(1, 1, 1), nn.Sequential(nn.Linear(4, 2)))
    result = bayesianize(model, inplace=True, exclude=["4.0"], layer_types=(nn.Linear,))
    assert result is model
    assert isinstance(model[0], BayesLinear) and model[0] is model[2]  # still one shared layer
    assert isinstance(model[3], nn.Conv1d)  # not in layer_types
    assert type(model[4][0]) is nn.Linear  # excluded by name


def test_multihead_attention_left_alone() -> None:
    model = nn.Sequential(nn.MultiheadAttention(4, 2))
    converted = bayesianize(nn.ModuleDict({"attn": model, "head": nn.Linear(4, 1)}))
    assert type(converted["attn"][0].out_proj) is type(model[0].out_proj)
    assert isinstance(converted["head"], BayesLinear)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"estimator": "mcdropout"}, ValueError, "estimator"),
        ({"layer_types": ("Linear",)}, ValueError, "layer_types"),
        ({"layer_types": (nn.Conv3d,)}, ValueError, "layer_types"),
        ({"exclude": ["nope"]}, ValueError, "exclude"),
        ({"prior": 1.0}, TypeError, "prior"),
        ({"init_scale": 0.0}, ValueError, "init_scale"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        bayesianize(nn.Sequential(nn.Linear(2, 2)), **kwargs)


def test_bad_models() -> None:
    with pytest.raises(TypeError, match="nn.Module"):
        bayesianize("model")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="single layer"):
        bayesianize(nn.Linear(2, 2))
