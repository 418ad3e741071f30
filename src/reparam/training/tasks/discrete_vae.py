"""The Bernoulli-latent VAE's task for ``reparam train discrete-vae`` (the ARM/DisARM papers'
models on static binarized MNIST) with any discrete gradient estimator.

The estimator's own state (REBAR/RELAX parameters, moving-average baselines) is saved with the
model, so a resumed run repeats the uninterrupted one exactly.

Example:
    >>> task = DiscreteVAETask(DiscreteVAEOptions(data="binarized_mnist.npz", estimator="disarm"))
    >>> fit(task, RunSettings(out=Path("runs/dvae"), steps=10000))  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from reparam.data import Splits, binarized_mnist
from reparam.estimators.registry import ESTIMATORS, make_estimator
from reparam.models.discrete_vae import ARCHITECTURES, DiscreteVAE, DiscreteVAEConfig
from reparam.training.batches import ShuffledBatches
from reparam.training.data_checks import check_splits
from reparam.training.engine import Context, Task
from reparam.training.errors import DataError, OptionsError


@dataclass(frozen=True)
class DiscreteVAEOptions:
    """The model, estimator and data of a discrete-VAE run (saved in the checkpoint)."""

    data: str
    estimator: str = "disarm"
    arch: str = "linear"
    num_samples: int = 1
    batch_size: int = 50
    lr: float = 1e-3
    eval_k: int = 100
    eval_size: int = 1000
    train_size: int | None = None

    def validate(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise OptionsError(
                f"--estimator: unknown estimator {self.estimator!r}; choose from: "
                f"{', '.join(sorted(ESTIMATORS))}"
            )
        if self.arch not in ARCHITECTURES:
            raise OptionsError(f"--arch must be one of {', '.join(ARCHITECTURES)}, got {self.arch!r}.")
        for name in ("num_samples", "batch_size", "eval_k", "eval_size"):
            if getattr(self, name) < 1:
                raise OptionsError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}.")
        if not self.lr > 0:
            raise OptionsError(f"--lr must be > 0, got {self.lr}.")


class DiscreteVAETask(Task):
    """A :class:`~reparam.models.discrete_vae.DiscreteVAE` and its estimator, trained with Adam."""

    kind = "discrete-vae"
    saved = ("model", "optimizer", "estimator", "order")

    def __init__(self, options: DiscreteVAEOptions, splits: Splits | None = None) -> None:
        options.validate()
        super().__init__(options)
        self.splits = splits

    def setup(self, context: Context) -> None:
        o: DiscreteVAEOptions = self.options
        self.context = context
        splits = self.splits
        if splits is None:
            try:
                splits = binarized_mnist(o.data)
            except (OSError, ValueError) as error:
                raise DataError(f"--data: {error}") from None
        splits, self.notes = check_splits(splits, o.data, values="binary", need=("train", "test"))
        x_train = splits.x_train if o.train_size is None else splits.x_train[: o.train_size]
        self.x_train = x_train.to(context.device)
        self.x_test = splits.x_test[: o.eval_size].to(context.device)
        config = DiscreteVAEConfig(arch=o.arch, data_dim=x_train.shape[1])
        self.model = DiscreteVAE(config, x_train.mean(0)).to(context.device)
        self.estimator = make_estimator(o.estimator)
        self.modules = nn.ModuleDict({"model": self.model})
        if isinstance(self.estimator, nn.Module):  # REBAR/RELAX: their variance gradients
            self.modules["estimator"] = self.estimator.to(context.device)
        self.optimizer = torch.optim.Adam(self.modules.parameters(), lr=o.lr)
        self.order = ShuffledBatches(len(x_train), o.batch_size, context.seed + 104729)
        self.num_samples = max(o.num_samples, int(getattr(self.estimator, "min_samples", 1)))

    def module(self) -> nn.Module:
        return self.modules

    def loss(self, step: int) -> tuple[Tensor, dict[str, float | Tensor]]:
        x = self.x_train[self.context.shard(self.order.next()).to(self.context.device)]
        loss, bound = self.model.loss(x, self.estimator, self.num_samples)
        return loss, {"train_elbo": bound.mean()}

    def evaluate(self) -> dict[str, float]:
        k = self.options.eval_k
        return {
            "test_bound": float(
                self.model.importance_bound(self.x_test, k=k, chunk=max(1, 20000 // k)).mean()
            )
        }

    def status(self, metrics: dict[str, float]) -> str:
        return f"-ELBO {metrics.get('loss', float('nan')):8.2f}"
