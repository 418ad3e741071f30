"""``ELBOLoss``: the negative ELBO of a Bayesian network, scaled for minibatches."""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import Tensor, nn

from reparam.nn.kl import kl_divergence
from reparam.nn.likelihoods import LIKELIHOODS

NLL = Callable[[Tensor, Tensor], Tensor]


class ELBOLoss(nn.Module):
    """Minibatch estimate of the negative ELBO per training example.

    With ``N = dataset_size`` examples, the negative ELBO is

        -ELBO = sum_{n=1}^{N} E_q[-log p(y_n | x_n, w)] + KL(q(w) || p(w)).

    A minibatch ``B`` of ``|B|`` examples drawn uniformly gives the unbiased estimate
    ``(N / |B|) sum_{n in B} nll_n + KL``. Dividing by ``N`` (so the loss is on the scale of one
    example's NLL, and learning rates carry over from deterministic training) gives what this
    loss returns with ``reduction="mean"``:

        loss = (1 / |B|) sum_{n in B} nll_n + kl_weight * KL / N.

    The KL is divided by the dataset size ``N``, not by the batch size ``|B|`` nor by the number
    of batches: e.g. ``N = 1000``, ``|B| = 100``, ``KL = 50``, mean batch NLL ``0.3``
    gives ``0.3 + 50 / 1000 = 0.35``; a last, partial batch of ``|B| = 37`` is scaled the same
    way, and the estimate stays unbiased for ``-ELBO / N`` whatever ``|B|`` is. (Dividing by the
    number of batches ``M`` instead is equivalent only when every batch has ``N / M`` examples.)
    ``reduction="sum"`` returns ``N`` times that, i.e. the estimate of ``-ELBO`` itself.

    Args:
        dataset_size: ``N``, the number of training examples.
        likelihood: ``"categorical"`` (logits ``(B, C)``, labels ``(B,)``), ``"gaussian"``
            (heteroscedastic: outputs ``(B, 2)`` = mean and raw scale), ``"bernoulli"`` (logits),
            or a callable ``(output, target) -> per-example NLL (B,)``.
        kl_weight: multiplies the KL (``1`` is the ELBO; ``< 1`` a tempered posterior).
        reduction: ``"mean"`` (per example, default) or ``"sum"``.

    Call: ``loss = criterion(output, target, kl)`` where ``kl`` is a KL tensor or the model
    (whose :func:`~reparam.nn.kl_divergence` is taken).
    """

    def __init__(
        self,
        dataset_size: int,
        likelihood: str | NLL = "categorical",
        kl_weight: float = 1.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if not isinstance(dataset_size, int) or isinstance(dataset_size, bool) or dataset_size < 1:
            raise ValueError(
                f"dataset_size must be the number of training examples (a positive int), "
                f"got {dataset_size!r}."
            )
        if isinstance(likelihood, str):
            if likelihood not in LIKELIHOODS:
                raise ValueError(
                    f"likelihood must be one of {sorted(LIKELIHOODS)} or a callable, got {likelihood!r}."
                )
            self.nll: NLL = LIKELIHOODS[likelihood]
        elif callable(likelihood):
            self.nll = likelihood
        else:
            raise TypeError(f"likelihood must be a name or a callable, got {type(likelihood).__name__}.")
        if not (math.isfinite(kl_weight) and kl_weight >= 0):
            raise ValueError(f"kl_weight must be a finite number >= 0, got {kl_weight!r}.")
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}.")
        self.dataset_size = dataset_size
        self.kl_weight = float(kl_weight)
        self.reduction = reduction

    def forward(self, output: Tensor, target: Tensor, kl: Tensor | nn.Module) -> Tensor:
        if isinstance(kl, nn.Module):
            kl = kl_divergence(kl)
        nll = self.nll(output, target)
        if nll.dim() != 1 or nll.shape[0] != output.shape[0]:
            raise ValueError(
                f"the likelihood must return one NLL per example, shape ({output.shape[0]},), got "
                f"{tuple(nll.shape)}."
            )
        loss = nll.mean() + self.kl_weight * kl / self.dataset_size
        return loss * self.dataset_size if self.reduction == "sum" else loss

    def extra_repr(self) -> str:
        return f"dataset_size={self.dataset_size}, kl_weight={self.kl_weight:g}, reduction={self.reduction!r}"
