"""Small networks for the Bayesian-network experiments: an MLP and a CNN for 8x8 digits, built
deterministic and made Bayesian with :func:`reparam.nn.bayesianize` (one definition for both)."""

from __future__ import annotations

from torch import nn

from reparam.nn import NormalPrior, bayesianize
from reparam.nn.base import EstimatorName

ARCHITECTURES = ("mlp", "cnn")


def mlp(in_features: int, out_features: int, hidden: tuple[int, ...] = (200, 200)) -> nn.Sequential:
    """``in -> hidden... -> out`` with ReLU between the linear layers."""
    layers: list[nn.Module] = []
    width = in_features
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


def digits_cnn(out_features: int = 10, channels: tuple[int, int] = (16, 32)) -> nn.Sequential:
    """For flattened 8x8 images: conv3x3 -> ReLU -> maxpool2 (4x4) -> conv3x3 -> ReLU -> maxpool2
    (2x2) -> linear."""
    c1, c2 = channels
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, c1, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(c2 * 4, out_features),
    )


def build(
    arch: str,
    in_features: int,
    out_features: int,
    estimator: EstimatorName | None,
    prior_scale: float = 1.0,
    hidden: tuple[int, ...] = (200, 200),
    init_scale: float | None = None,
) -> nn.Module:
    """The ``arch`` network; Bayesian with ``estimator`` unless ``estimator is None``."""
    if arch == "mlp":
        model: nn.Module = mlp(in_features, out_features, hidden)
    elif arch == "cnn":
        if in_features != 64:
            raise ValueError(
                f"arch='cnn' is for 8x8 images (64 features), got {in_features}; use arch='mlp'."
            )
        model = digits_cnn(out_features)
    else:
        raise ValueError(f"arch must be one of {ARCHITECTURES}, got {arch!r}.")
    if estimator is None:
        return model
    prior = NormalPrior(0.0, prior_scale)
    return bayesianize(model, estimator=estimator, prior=prior, init_scale=init_scale, inplace=True)
