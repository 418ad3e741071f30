"""``bayesianize``: turn the linear and convolutional layers of a model into Bayesian ones."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import cast

from torch import Tensor, nn
from torch.distributions import Distribution

from reparam.nn.base import BayesLayer, EstimatorName, check_estimator
from reparam.nn.conv import BayesConv1d, BayesConv2d
from reparam.nn.linear import BayesLinear
from reparam.nn.priors import Prior

DEFAULT_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d)


def _convert(
    layer: nn.Module, estimator: EstimatorName, prior: Prior | Distribution | None, init_scale: float | None
) -> BayesLayer:
    has_bias = getattr(layer, "bias", None) is not None
    own_prior = copy.deepcopy(prior) if prior is not None else None
    weight = cast(Tensor, layer.weight)
    if isinstance(layer, nn.Linear):
        new: BayesLayer = BayesLinear(
            layer.in_features, layer.out_features, has_bias, estimator, own_prior, init_scale,
            device=weight.device, dtype=weight.dtype,
        )
    elif isinstance(layer, (nn.Conv1d, nn.Conv2d)):
        if isinstance(layer, nn.Conv1d):
            cls: type[BayesConv1d] | type[BayesConv2d] = BayesConv1d
        else:
            cls = BayesConv2d
        new = cls(
            layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
            layer.dilation, layer.groups, has_bias, layer.padding_mode, estimator, own_prior, init_scale,
            device=weight.device, dtype=weight.dtype,
        )  # fmt: skip
    else:  # pragma: no cover - guarded by the type check in bayesianize
        raise TypeError(type(layer).__name__)
    return new


def bayesianize(
    model: nn.Module,
    estimator: EstimatorName = "flipout",
    prior: Prior | Distribution | None = None,
    init_from_weights: bool = True,
    init_scale: float | None = None,
    layer_types: Iterable[type[nn.Module]] = DEFAULT_TYPES,
    exclude: Iterable[str] = (),
    inplace: bool = False,
) -> nn.Module:
    """Replace every ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` (matched with ``isinstance``, so
    subclasses count) by :class:`BayesLinear` / :class:`BayesConv1d` / :class:`BayesConv2d` with the
    same shape, stride, padding, dilation, groups and bias. Every other module is left as it is
    (same object, same parameters and buffers).

    Args:
        model: the network to convert.
        estimator: estimator of the new layers (``"reparam"``, ``"local"`` or ``"flipout"``).
        prior: prior for every new layer (each gets its own deep copy): a
            :class:`~reparam.nn.Prior` or an elementwise ``torch.distributions`` object; default
            ``N(0, 1)``. The new layers are created on the device and in the dtype of the layers
            they replace.
        init_from_weights: start the posterior means at the model's current (e.g. trained) weights
            and biases; otherwise the means get the layers' default random initialisation.
        init_scale: initial posterior standard deviation (default ``0.1 / sqrt(fan_in)``).
        layer_types: which of ``nn.Linear``, ``nn.Conv1d``, ``nn.Conv2d`` to convert.
        exclude: qualified names (as in ``model.named_modules()``) of layers to keep deterministic,
            e.g. ``["classifier"]``.
        inplace: modify ``model`` itself instead of a deep copy.

    Layers inside ``nn.MultiheadAttention`` are never converted: it reads its projection weights
    directly instead of calling the submodule.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}.")
    check_estimator(estimator)
    if prior is not None and not isinstance(prior, (Prior, Distribution)):
        raise TypeError(
            f"prior must be a reparam.nn.Prior or a torch.distributions object, got {type(prior).__name__}."
        )
    types = tuple(layer_types)
    unsupported = [t for t in types if not (isinstance(t, type) and issubclass(t, DEFAULT_TYPES))]
    if not types or unsupported:
        raise ValueError(
            f"layer_types must be a non-empty selection of nn.Linear, nn.Conv1d, nn.Conv2d (types, not "
            f"names); got {list(types)!r}."
        )
    excluded = set(exclude)
    names = {name for name, _ in model.named_modules()}
    unknown = excluded - names
    if unknown:
        raise ValueError(
            f"exclude names {sorted(unknown)} are not modules of the model; see model.named_modules()."
        )
    if isinstance(model, types):
        raise ValueError(
            "model is itself a single layer; wrap it (e.g. nn.Sequential(layer)) or build a BayesLinear/"
            "BayesConv directly."
        )
    if not inplace:
        model = copy.deepcopy(model)

    converted: dict[int, BayesLayer] = {}  # a layer shared under two names stays shared

    def visit(module: nn.Module, prefix: str) -> None:
        if isinstance(module, nn.MultiheadAttention):
            return
        # module._modules, not named_children(): the latter skips a child shared under two names
        for name, child in list(module._modules.items()):
            if child is None:
                continue
            qualified = f"{prefix}.{name}" if prefix else name
            if isinstance(child, types) and qualified not in excluded:
                if id(child) not in converted:
                    new = _convert(child, estimator, prior, init_scale)
                    if init_from_weights:
                        layer = cast("nn.Linear | nn.Conv1d | nn.Conv2d", child)  # types <= DEFAULT_TYPES
                        bias = None if layer.bias is None else layer.bias.detach()
                        new.load_means(layer.weight.detach(), bias)
                    converted[id(child)] = new
                setattr(module, name, converted[id(child)])
            else:
                visit(child, qualified)

    visit(model, "")
    return model
