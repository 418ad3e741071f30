"""The log ratio of two sample variances and its standard error, for variance comparisons."""

from __future__ import annotations

import math

import torch


def log_variance_ratio(ours: torch.Tensor, theirs: torch.Tensor) -> tuple[float, float]:
    """``log(var(ours)/var(theirs))`` for independent samples and its standard error
    ``sqrt((kurt_1 - 1)/n_1 + (kurt_2 - 1)/n_2)`` (delta method: ``Var(s^2) ~ (mu_4 - s^4)/n``).

    Example: ``r, se = log_variance_ratio(a, b); assert r < 5 * se`` fails with probability
    2.9e-7 when the variances are equal (one-sided normal tail).
    """

    def moments(g: torch.Tensor) -> tuple[float, float]:
        c = g.double() - g.double().mean()
        var = float(c.pow(2).mean())
        return var, float(c.pow(4).mean()) / var**2

    (v1, k1), (v2, k2) = moments(ours), moments(theirs)
    return math.log(v1 / v2), math.sqrt((k1 - 1) / len(ours) + (k2 - 1) / len(theirs))
