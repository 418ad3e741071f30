"""ELBOLoss: the minibatch scaling reproduces the full-batch negative ELBO for any batch size."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from seeds import seeded
from torch import nn

from reparam.nn import BayesLinear, ELBOLoss, kl_divergence


def _data(n: int = 11, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seeded(0))
    return torch.randn(n, classes, generator=g, dtype=torch.float64), torch.randint(
        0, classes, (n,), generator=g
    )


def _full_negative_elbo(logits: torch.Tensor, labels: torch.Tensor, kl: torch.Tensor) -> torch.Tensor:
    """-ELBO = sum_n nll_n + KL, written out directly."""
    return -torch.log_softmax(logits, -1).gather(1, labels[:, None]).sum() + kl


@pytest.mark.parametrize("batch_size", [1, 2, 3, 4, 5, 11])
def test_batches_weighted_by_size_give_the_full_batch_loss(batch_size: int) -> None:
    # Partition the N = 11 examples into consecutive batches (the last one partial unless B | N).
    # sum_k (|B_k| / N) * loss_k = sum_k (|B_k|/N) (mean_{B_k} nll + KL/N) = sum nll / N + KL / N,
    # i.e. exactly the full-batch -ELBO / N, whatever the batch sizes are.
    logits, labels = _data()
    kl = torch.tensor(7.5, dtype=torch.float64)
    criterion = ELBOLoss(dataset_size=len(labels))
    total = sum(
        len(chunk) / len(labels) * criterion(logits[chunk], labels[chunk], kl)
        for chunk in torch.arange(len(labels)).split(batch_size)
    )
    torch.testing.assert_close(total, _full_negative_elbo(logits, labels, kl) / len(labels))


@pytest.mark.parametrize("batch_size", [1, 2, 4])
def test_uniform_minibatch_loss_is_unbiased(batch_size: int) -> None:
    # The average over ALL C(N, B) batches of size B (the expectation under uniform sampling without
    # replacement) of the reduction="sum" loss equals -ELBO exactly: E[(N/B) sum_B nll] = sum nll.
    logits, labels = _data(n=7)
    kl = torch.tensor(3.25, dtype=torch.float64)
    criterion = ELBOLoss(dataset_size=7, reduction="sum")
    batches = [list(c) for c in itertools.combinations(range(7), batch_size)]
    mean = sum(criterion(logits[b], labels[b], kl) for b in batches) / len(batches)
    torch.testing.assert_close(mean, _full_negative_elbo(logits, labels, kl))


def test_mean_and_sum_reductions_and_kl_weight() -> None:
    logits, labels = _data()
    kl = torch.tensor(2.0, dtype=torch.float64)
    nll = F.cross_entropy(logits, labels)
    torch.testing.assert_close(ELBOLoss(100)(logits, labels, kl), nll + 2.0 / 100)
    torch.testing.assert_close(ELBOLoss(100, reduction="sum")(logits, labels, kl), 100 * nll + 2.0)
    torch.testing.assert_close(ELBOLoss(100, kl_weight=0.5)(logits, labels, kl), nll + 1.0 / 100)


def test_model_argument_takes_its_kl() -> None:
    model = nn.Sequential(BayesLinear(4, 3))
    x, y = torch.randn(6, 4), torch.randint(0, 3, (6,))
    output = model(x)
    expected = F.cross_entropy(output, y) + kl_divergence(model) / 50
    torch.testing.assert_close(ELBOLoss(50)(output, y, model), expected)


def test_gaussian_and_custom_likelihoods() -> None:
    output = torch.tensor([[0.5, 0.0], [1.0, 2.0]], dtype=torch.float64)
    target = torch.tensor([1.0, -1.0], dtype=torch.float64)
    scale = F.softplus(output[:, 1]) + 1e-3
    nll = -torch.distributions.Normal(output[:, 0], scale).log_prob(target)
    torch.testing.assert_close(
        ELBOLoss(10, likelihood="gaussian")(output, target, torch.tensor(0.0)), nll.mean()
    )
    custom = ELBOLoss(10, likelihood=lambda out, t: (out[:, 0] - t) ** 2)
    torch.testing.assert_close(
        custom(output, target, torch.tensor(1.0)), ((output[:, 0] - target) ** 2).mean() + 0.1
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"dataset_size": 0}, ValueError, "dataset_size"),
        ({"dataset_size": 10.5}, ValueError, "dataset_size"),
        ({"dataset_size": 10, "likelihood": "poisson"}, ValueError, "likelihood"),
        ({"dataset_size": 10, "likelihood": 3}, TypeError, "likelihood"),
        ({"dataset_size": 10, "kl_weight": -1.0}, ValueError, "kl_weight"),
        ({"dataset_size": 10, "kl_weight": math.nan}, ValueError, "kl_weight"),
        ({"dataset_size": 10, "reduction": "none"}, ValueError, "reduction"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        ELBOLoss(**kwargs)


def test_bad_shapes() -> None:
    with pytest.raises(ValueError, match="labels"):
        ELBOLoss(10)(torch.randn(4, 3), torch.randint(0, 3, (5,)), torch.tensor(0.0))
    with pytest.raises(ValueError, match="one NLL per example"):
        ELBOLoss(10, likelihood=lambda o, t: (o - t).sum())(
            torch.randn(4, 1), torch.randn(4, 1), torch.tensor(0.0)
        )
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        ELBOLoss(10, likelihood="gaussian")(torch.randn(4, 3), torch.randn(4), torch.tensor(0.0))
