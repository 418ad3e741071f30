"""The Gaussian VAE's task for ``reparam train vae``: ELBO, IWAE-k, STL, DReG or a
score-function ELBO on digits, a binarized-MNIST ``.npz`` or an IDX folder.

Every random draw comes from torch's global generator (the model's samples) and a dedicated
data generator (epoch shuffles, dynamic binarization), both saved in the checkpoint, so a
resumed run repeats the uninterrupted one exactly.

Example:
    >>> task = VAETask(VAEOptions(data="digits"))
    >>> fit(task, RunSettings(out=Path("runs/vae"), steps=1000))  # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from reparam.data import Splits, dynamic_binarize, load
from reparam.estimators.registry import ESTIMATORS, make_estimator
from reparam.models.vae import OBJECTIVES, VAE
from reparam.training.batches import ShuffledBatches
from reparam.training.data_checks import check_splits
from reparam.training.engine import Context, RunResult, Task
from reparam.training.errors import DataError, OptionsError
from reparam.training.metrics import METRICS_FILE, MetricsLog
from reparam.vi.iwae import GRADIENTS


@dataclass(frozen=True)
class VAEOptions:
    """The model, objective and data of a VAE run (saved in the checkpoint)."""

    data: str = "digits"
    objective: str = "elbo"
    k: int = 1
    gradient: str = "standard"
    estimator: str = "pathwise"
    batch_size: int = 100
    lr: float = 1e-3
    lr_final: float = 1e-3
    hidden: tuple[int, ...] = (200, 200)
    latent: int = 50
    activation: str = "tanh"
    likelihood: str = "bernoulli"
    binarize: str = "dynamic"
    eval_k: int = 50
    eval_size: int = 1000

    def validate(self) -> None:
        choices = {"objective": OBJECTIVES, "gradient": GRADIENTS, "estimator": tuple(sorted(ESTIMATORS))}
        choices.update(likelihood=("bernoulli", "gaussian"), binarize=("none", "static", "dynamic"))
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise OptionsError(
                    f"--{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}."
                )
        if self.objective == "iwae" and self.estimator != "pathwise":
            raise OptionsError("--objective iwae is pathwise only; use --objective elbo with --estimator.")
        if self.estimator != "pathwise" and self.gradient != "standard":
            raise OptionsError("--gradient stl/dreg needs --estimator pathwise.")
        for name in ("k", "batch_size", "eval_k", "eval_size", "latent"):
            if getattr(self, name) < 1:
                raise OptionsError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}.")
        if not (self.lr > 0 and self.lr_final > 0):
            raise OptionsError(f"--lr and --lr-final must be > 0, got {self.lr}, {self.lr_final}.")
        if not self.hidden or min(self.hidden) < 1:
            raise OptionsError(f"--hidden must be positive ints like 200,200, got {self.hidden}.")


def load_vae_data(options: VAEOptions, seed: int) -> tuple[Splits, list[str]]:
    """The checked splits named by ``--data`` (digits binarized for a Bernoulli likelihood; IDX
    folders trained with dynamic binarization load grey levels, binarized per batch)."""
    bernoulli = options.likelihood == "bernoulli"
    try:
        if options.data == "digits":
            splits = load("digits", binarize=bernoulli, seed=seed)
        elif Path(options.data).is_dir():
            keep_grey = not bernoulli or options.binarize == "dynamic"
            splits = load(options.data, binarize="none" if keep_grey else options.binarize, seed=seed)
        else:
            splits = load(options.data)
    except (OSError, ValueError) as error:
        raise DataError(f"--data {options.data}: {error}") from None
    return check_splits(splits, options.data, values="unit" if bernoulli else "real", need=("train",))


class VAETask(Task):
    """A :class:`~reparam.models.vae.VAE` trained with Adam and a log-cosine learning rate."""

    kind = "vae"
    saved = ("model", "optimizer", "order", "estimator")

    def __init__(self, options: VAEOptions, splits: Splits | None = None, plots: bool = False) -> None:
        options.validate()
        super().__init__(options)
        self.splits, self.plots = splits, plots
        self.notes: list[str] = []

    def setup(self, context: Context) -> None:
        o: VAEOptions = self.options
        self.context, self.steps = context, 0
        if self.splits is None:
            self.splits, self.notes = load_vae_data(o, context.seed)
        else:
            self.splits, self.notes = check_splits(self.splits, "(given)", need=("train",))
        self.x_train = self.splits.x_train
        valid = self.splits.x_valid if len(self.splits.x_valid) else self.splits.x_test
        if not len(valid):
            raise DataError(f"data {o.data}: the valid and test splits are both empty; one needs rows.")
        pick = torch.Generator().manual_seed(context.seed)  # a fixed random subset (sets may be sorted)
        valid = valid[torch.randperm(len(valid), generator=pick)[: o.eval_size]]
        self.dynamic = Path(o.data).is_dir() and o.likelihood == "bernoulli" and o.binarize == "dynamic"
        if self.dynamic:  # validate on one fixed binarization
            valid = dynamic_binarize(valid, pick)
        self.x_valid = valid.to(context.device)
        self.model = VAE(self.x_train.shape[1], o.latent, o.hidden, o.activation, o.likelihood).to(
            context.device
        )
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=o.lr, eps=1e-4)
        self.order = ShuffledBatches(len(self.x_train), o.batch_size, context.seed + 7919)
        self.estimator = make_estimator(o.estimator)

    def module(self) -> nn.Module:
        return self.model

    def learning_rate(self, step: int) -> float:
        """Cosine decay (in log space) from ``lr`` to ``lr_final`` over the run's steps."""
        o: VAEOptions = self.options
        t = min(step / self.total_steps, 1.0)
        high, low = math.log(o.lr), math.log(o.lr_final)
        return math.exp(low + 0.5 * (1 + math.cos(math.pi * t)) * (high - low))

    @property
    def total_steps(self) -> int:
        return self.context.steps

    def loss(self, step: int) -> tuple[Tensor, dict[str, float | Tensor]]:
        o: VAEOptions = self.options
        x = self.x_train[self.context.shard(self.order.next())]
        if self.dynamic:
            x = dynamic_binarize(x, self.order.generator)
        x = x.to(self.context.device)
        estimator = None if o.estimator == "pathwise" else self.estimator
        return -self.model.objective(x, o.objective, o.k, o.gradient, estimator).mean(), {}

    def record(self, step: int) -> dict[str, float]:
        return {"lr": self.learning_rate(step - 1)}

    def evaluate(self) -> dict[str, float]:
        k = self.options.eval_k
        with torch.no_grad():
            return {"valid_bound": float(self.model.log_marginal(self.x_valid, k=k, chunk=k).mean())}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "model_config": self.model.config.to_dict()}

    def finish(self, out: Path, result: RunResult) -> list[Path]:
        if not self.plots:
            return []
        from reparam.training.tasks.vae_plots import learning_curves, reconstruction_grid, sample_grid

        model = self.model.cpu().eval()
        generator = torch.Generator().manual_seed(0)
        x_test = self.splits.x_test if len(self.splits.x_test) else self.x_valid.cpu()  # type: ignore[union-attr]
        rows = x_test[
            torch.randperm(len(x_test), generator=generator)[:32]
        ]  # random rows: sets may be sorted
        return [
            sample_grid(model, out / "samples.png", generator),
            reconstruction_grid(model, rows, out / "reconstructions.png"),
            learning_curves(MetricsLog(out / METRICS_FILE).read(), out / "learning_curves.png"),
        ]
