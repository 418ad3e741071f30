"""Shared problems for the categorical estimators of issue 16 (ARSM, CARMS, UnorderedSet):
costs that couple 3 variables with K = 4, the single-variable toy, ``R`` independent estimates in
one call (logits replicated along a leading batch dim, one cost per replicate: each replicate's
gradient row is an independent estimate), exact gradients by ``rp.Exact()`` enumeration, z-scores
and the variance ratio with its standard error."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torch.distributions import Categorical, Distribution

import reparam as rp

COUPLED_LOGITS = torch.tensor(
    [[0.2, -0.4, 0.9, 0.1], [1.0, 0.1, -0.6, 0.3], [0.0, 0.5, -0.2, -1.0]], dtype=torch.float64
)
TOY_TARGET = torch.tensor([0.45, 0.3, 0.15, 0.1], dtype=torch.float64)


def categorical(logits: Tensor) -> Distribution:
    return Categorical(logits=logits)


def coupled_cost(z: Tensor) -> Tensor:
    """Three category numbers with pairwise and cubic interactions."""
    z = z.to(torch.float64)
    z0, z1, z2 = z[..., 0], z[..., 1], z[..., 2]
    return (z0 - 1.2) ** 2 * (z1 + 0.5) - 0.7 * z0 * z2 + z1 * z2**2


BILINEAR = torch.tensor([[0.3, -1.0, 2.0], [1.5, 0.0, -0.5], [-1.0, 2.5, 0.7]], dtype=torch.float64)


def onehot_cost(y: Tensor) -> Tensor:
    """Bilinear cost of two one-hot variables (event dims of an Independent), ``y_0^T B y_1``."""
    y = y.to(torch.float64)
    return torch.einsum("...i,ij,...j->...", y[..., 0, :], BILINEAR, y[..., 1, :])


def toy_cost(z: Tensor) -> Tensor:
    """One variable (trailing dim of size 1): ``sum_k (onehot(z)_k - t_k)^2``."""
    table = ((torch.eye(4, dtype=torch.float64) - TOY_TARGET) ** 2).sum(-1)
    return table[z].sum(-1)


def exact_gradient(
    f: Callable[[Tensor], Tensor], logits: Tensor, make_q: Callable[[Tensor], Distribution] = categorical
) -> Tensor:
    """``grad E[f]`` w.r.t. ``logits`` by ``rp.Exact()`` enumeration (costs summed if batched)."""
    leaf = logits.detach().clone().requires_grad_(True)
    value = rp.Exact()(f, make_q(leaf), 1)
    (grad,) = torch.autograd.grad(value.sum(), leaf)
    return grad


def replicated(
    estimator: object,
    f: Callable[[Tensor], Tensor],
    logits: Tensor,
    num_samples: int,
    replicates: int,
    make_q: Callable[[Tensor], Distribution] = categorical,
) -> Tensor:
    """``replicates`` independent gradient estimates, ``(R, *logits.shape)``."""
    leaf = logits.detach().expand(replicates, *logits.shape).clone().requires_grad_(True)
    value = estimator(f, make_q(leaf), num_samples)  # type: ignore[operator]
    assert value.shape[:1] == (replicates,)
    (grad,) = torch.autograd.grad(value.sum(), leaf)
    return grad


def max_abs_z(estimates: Tensor, exact: Tensor) -> float:
    """``max |mean - exact| / (sd / sqrt(R))`` over the coordinates whose estimates vary; the
    constant ones (e.g. masked logits) must equal the exact value."""
    r = estimates.shape[0]
    stderr = estimates.std(0) / math.sqrt(r)
    noisy = stderr > 1e-12
    assert torch.allclose(estimates.mean(0)[~noisy], exact[~noisy], atol=1e-10)
    return float(((estimates.mean(0) - exact)[noisy] / stderr[noisy]).abs().max())


def log_variance_ratio(ours: Tensor, theirs: Tensor) -> tuple[float, float]:
    """``log`` of the ratio of per-coordinate variances (mean over coordinates of the variance of
    one estimate) of two independent sets of estimates, and its standard error (delta method on
    the per-replicate squared deviations ``||g_r - mean||^2``)."""

    def spread(g: Tensor) -> tuple[float, float]:
        dev = (g - g.mean(0)).flatten(1).pow(2).sum(1)
        return float(dev.mean()), float(dev.std() / dev.mean()) / math.sqrt(len(dev))

    (v1, rel1), (v2, rel2) = spread(ours), spread(theirs)
    return math.log(v1 / v2), math.sqrt(rel1**2 + rel2**2)


MASKED_LOGITS = torch.tensor(
    [[0.3, -math.inf, 1.0, 0.2], [-math.inf, 0.2, -math.inf, 0.0]], dtype=torch.float64
)


def masked_and_limit(estimator: object, seed: int) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """``(value, gradient)`` of ``estimator`` (3 samples, a coupled cost) at
    :data:`MASKED_LOGITS` and at the stand-in ``-800`` for ``-inf`` (``exp(-800) == 0`` in
    float64), both from the same random numbers (``torch.manual_seed(seed)`` before each)."""
    outs = []
    for value in (MASKED_LOGITS, MASKED_LOGITS.nan_to_num(neginf=-800.0)):
        leaf = value.clone().requires_grad_(True)
        torch.manual_seed(seed)
        cost = lambda z: coupled_cost(torch.cat([z, z[..., :1]], -1))  # noqa: E731
        v = estimator(cost, Categorical(logits=leaf), 3)  # type: ignore[operator]
        outs.append((v.detach(), torch.autograd.grad(v, leaf)[0]))
    return outs[0], outs[1]

