"""Gumbel-softmax / concrete relaxation (biased), optionally straight-through (plain or with
decoupled temperatures), also for count latents over a truncated support."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor
from torch.distributions import Distribution

from reparam.estimators.base import CostFn, evaluate
from reparam.estimators.discrete_support import (
    Kind,
    batch_shape,
    discrete_kind,
    gumbel_noise,
    logistic_noise,
    logits_of,
    one_hot,
    relaxed_input,
    unwrap,
)
from reparam.estimators.truncated_counts import is_count, truncated_logits


def relaxed_bernoulli(logits: Tensor, noise: Tensor, temperature: Tensor | float) -> tuple[Tensor, Tensor]:
    """Soft sample ``sigmoid((alpha + L) / tau)`` and the hard sample ``1[alpha + L > 0]``.

    Finite at any ``tau > 0``: ``sigmoid`` saturates to exactly 0 or 1 with zero gradient. A
    saturated logit (``alpha + L = +-inf``) gives the soft sample exactly equal to the hard one
    with zero gradient in ``alpha`` and ``tau`` (``sigmoid(inf / tau)`` would be 1 in value but
    ``0 * inf = nan`` in its ``tau`` derivative)."""
    z = logits + noise
    hard = (z > 0).to(z.dtype)
    finite = torch.isfinite(z.detach())
    safe = torch.where(finite, z, torch.zeros_like(z))
    return torch.where(finite, torch.sigmoid(safe / temperature), hard), hard


def relaxed_onehot(logits: Tensor, noise: Tensor, temperature: Tensor | float) -> tuple[Tensor, Tensor]:
    """Soft sample ``softmax((alpha + G) / tau)`` and the hard one-hot ``argmax``.

    The running maximum is subtracted before dividing by ``tau``, so every scaled logit is
    ``<= 0``: small temperatures give exact 0/1 entries, never ``inf - inf`` or NaN. Masked
    categories (``alpha = -inf``) get exactly 0 with zero gradient in ``alpha`` and ``tau``:
    they are left out of the exponentials instead of entering as ``exp(-inf / tau)``."""
    z = logits + noise
    hard = one_hot(z.argmax(-1), z.shape[-1], z.dtype)
    finite = torch.isfinite(z.detach())
    top = z.detach().max(-1, keepdim=True).values
    shifted = torch.where(finite, z, top) - top  # <= 0; exactly 0 at masked entries
    weights = torch.where(finite, torch.exp(shifted / temperature), torch.zeros_like(z))
    return weights / weights.sum(-1, keepdim=True), hard


def relaxed_sample(
    kind: Kind, logits: Tensor, sample_shape: tuple[int, ...], temperature: Tensor | float
) -> tuple[Tensor, Tensor]:
    """``(soft, hard)`` for ``sample_shape`` draws: per-variable values for Bernoulli, one-hot
    rows for the categorical families."""
    noise_shape = (*sample_shape, *logits.shape)
    if kind == "bernoulli":
        return relaxed_bernoulli(logits, logistic_noise(noise_shape, logits), temperature)
    return relaxed_onehot(logits, gumbel_noise(noise_shape, logits), temperature)


def _check_temperature(name: str, value: object) -> None:
    if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value)):
        raise TypeError(f"{name} must be a finite float > 0, got {value!r}.")
    if value <= 0:
        raise ValueError(
            f"{name} must be > 0, got {value}; typical values are 0.1 to 1 "
            "(use straight_through=True for exactly discrete forward values)."
        )


@dataclass(frozen=True)
class GumbelSoftmax:
    r"""Pathwise gradient through the Gumbel-softmax (concrete) relaxation.

    Categorical: :math:`y = \mathrm{softmax}((\alpha + G)/\tau)`, :math:`G` i.i.d. Gumbel;
    Bernoulli: :math:`y = \sigma((\alpha + L)/\tau)`, :math:`L` logistic. ``f`` receives ``y``
    (``OneHotCategorical``: the relaxed one-hot; ``Categorical``: the relaxed category number
    :math:`\sum_k k\,y_k`, so ``f`` must accept float categories), and the estimator is
    :math:`\nabla_\phi f(y)`. With ``straight_through=True`` ``f`` receives the exactly discrete
    sample :math:`h = \mathrm{onehot}(\arg\max(\alpha + G))` (a true sample of ``q``) and the
    gradient is taken through :math:`h + y - \mathrm{sg}(y)`.

    **Biased**: the value is the mean of ``f`` at the relaxed points (an estimate of
    :math:`\mathbb{E}[f(y)]`, not :math:`\mathbb{E}[f(b)]`) unless ``straight_through`` is set,
    and the gradient is biased in both modes. As :math:`\tau \to 0` the relaxed value tends to
    the discrete one (the bias of the value vanishes) while the gradient's variance grows like
    :math:`1/\tau`; a large :math:`\tau` gives low variance and a large bias. Needs ``f``
    differentiable in its input. Cost: ``num_samples`` evaluations of ``f``. Numerically safe
    at small temperatures (noise kept strictly inside (0, 1), max-shifted softmax): no NaN.

    **Decoupled straight-through** (``straight_through="decoupled"``, Shah et al. 2024): the
    forward and backward passes get their own temperatures :math:`\tau_f`
    (``forward_temperature``, default 1) and :math:`\tau_b` (``backward_temperature``, default
    ``temperature``). With :math:`z = \alpha/\tau_f + G`, ``f`` receives the hard sample
    :math:`h = \mathrm{onehot}(\arg\max z)`, a draw from the tempered categorical
    :math:`\mathrm{softmax}(\alpha/\tau_f)` (:math:`\tau_f > 1` explores more, :math:`< 1`
    less; :math:`\tau_f = 1` samples ``q`` itself), and the gradient is taken through
    :math:`h + y_b - \mathrm{sg}(y_b)`, :math:`y_b = \mathrm{softmax}(z/\tau_b)`. With
    :math:`\tau_f = 1` it is plain straight-through Gumbel-softmax at :math:`\tau_b`. Bernoulli:
    the same with logistic noise and ``sigmoid``. Biased in the gradient, and in the value too
    unless :math:`\tau_f = 1`: with :math:`\tau_f \ne 1` both target
    :math:`\mathbb{E}_{\mathrm{softmax}(\alpha/\tau_f)}[f]`, not :math:`\mathbb{E}_q[f]`. The
    registry's ``gumbel-decoupled`` uses :math:`\tau_f = 0.75, \tau_b = 0.5` (chosen on the
    discrete-VAE benchmark, ``docs/studies/discrete-vae-benchmark.md``).

    **Count latents** (Joo et al. 2020): for ``q`` a ``Poisson``, ``Binomial`` or ``Geometric``
    pass ``truncation=K``; the count is treated as a categorical over :math:`\{0, \dots, K-1\}`
    with log-probabilities ``q.log_prob(k)`` renormalised over the truncated support
    (:func:`reparam.estimators.truncated_counts.truncated_logits`; the tail mass
    :math:`P(X \ge K)` is dropped: choose ``K`` past the counts that matter, e.g. a Poisson's
    mean plus 10 standard deviations, or ``total_count + 1`` for a Binomial, which is exact).
    ``f`` receives the relaxed count :math:`\sum_k k\, y_k` (the hard count with
    straight-through), so the estimator targets :math:`\mathbb{E}[f]` under the truncated,
    renormalised ``q``; its bias vanishes as :math:`\tau \to 0` like the categorical one's.

    Args:
        temperature: :math:`\tau > 0`.
        straight_through: ``False`` (relaxed forward), ``True`` (hard forward, gradient
            through the soft sample) or ``"decoupled"``.
        forward_temperature, backward_temperature: :math:`\tau_f, \tau_b > 0`, only with
            ``straight_through="decoupled"``.
        truncation: support size ``K >= 2`` for count ``q`` (required for them, refused
            otherwise).

    References: Jang, Gu & Poole, "Categorical Reparameterization with Gumbel-Softmax", ICLR
    2017; Maddison, Mnih & Teh, "The Concrete Distribution", ICLR 2017; Shah, Yan, Mozer & Liu,
    "Improving Discrete Optimisation Via Decoupled Straight-Through Gumbel-Softmax", 2024
    (arXiv:2410.13331); Joo, Kim, Lee & Moon, "Generalized Gumbel-Softmax Gradient Estimator
    for Generic Discrete Random Variables", 2020 (arXiv:2003.01847).

    Example::

        >>> logits = torch.zeros(3, 4, requires_grad=True)
        >>> q = torch.distributions.OneHotCategorical(logits=logits)
        >>> est = rp.GumbelSoftmax(straight_through="decoupled", forward_temperature=1.0,
        ...                        backward_temperature=0.5)
        >>> rp.expect(lambda z: (z * torch.arange(4.0)).sum((-1, -2)), q, est, 8).backward()
        >>> rate = torch.tensor([2.0], requires_grad=True)
        >>> est = rp.GumbelSoftmax(0.3, truncation=20)
        >>> rp.expect(lambda c: c.pow(2).sum(-1), torch.distributions.Poisson(rate), est, 64).backward()
        >>> bool(torch.isfinite(rate.grad).all())
        True
    """

    temperature: float = 1.0
    straight_through: bool | Literal["decoupled"] = False
    forward_temperature: float | None = None
    backward_temperature: float | None = None
    truncation: int | None = None

    def __post_init__(self) -> None:
        _check_temperature("temperature", self.temperature)
        if self.straight_through not in (False, True, "decoupled"):
            raise ValueError(
                f"straight_through must be False, True or 'decoupled', got {self.straight_through!r}."
            )
        for name in ("forward_temperature", "backward_temperature"):
            value = getattr(self, name)
            if value is None:
                continue
            if self.straight_through != "decoupled":
                raise ValueError(
                    f"{name} is used only with straight_through='decoupled', got "
                    f"straight_through={self.straight_through!r}; pass straight_through='decoupled' "
                    "or drop it (temperature sets both passes otherwise)."
                )
            _check_temperature(name, value)
        if self.truncation is not None and (
            isinstance(self.truncation, bool) or not isinstance(self.truncation, int) or self.truncation < 2
        ):
            raise ValueError(
                f"truncation must be an int >= 2 (the number of support points 0..K-1 kept for a "
                f"Poisson, Binomial or Geometric q), got {self.truncation!r}."
            )

    def _name(self) -> str:
        # built from the fields, not repr(self): dataclass repr is guarded against recursion
        # with a thread-id lookup that torch.compile cannot trace (a graph break)
        extra = ""
        if self.straight_through == "decoupled":
            extra = (
                f", forward_temperature={self.forward_temperature}, "
                f"backward_temperature={self.backward_temperature}"
            )
        if self.truncation is not None:
            extra += f", truncation={self.truncation}"
        fields = f"temperature={self.temperature}, straight_through={self.straight_through}{extra}"
        return f"GumbelSoftmax({fields})"

    def __call__(self, f: CostFn, q: Distribution, num_samples: int) -> Tensor:
        name = self._name()
        base = unwrap(q)
        counts = is_count(base)
        if counts:
            if self.truncation is None:
                raise ValueError(
                    f"estimator={name}: q is a {type(base).__name__} (unbounded or large count support); "
                    "pass truncation=K to relax it over the counts 0..K-1 (e.g. mean + 10 std, or "
                    "total_count + 1 for a Binomial)."
                )
            kind: Kind = "onehot"
            logits = truncated_logits(base, self.truncation)
        else:
            if self.truncation is not None:
                raise ValueError(
                    f"estimator={name}: truncation applies only to Poisson, Binomial or Geometric q, got "
                    f"{type(base).__name__}; drop truncation."
                )
            kind = discrete_kind(q, name)
            logits = logits_of(q)
            if kind != "bernoulli" and logits.shape[:-1] != batch_shape(q):
                logits = logits.expand(*batch_shape(q), logits.shape[-1])
        temperature = self.temperature
        if self.straight_through == "decoupled":
            forward = 1.0 if self.forward_temperature is None else self.forward_temperature
            if forward != 1.0:
                logits = logits / forward
            if self.backward_temperature is not None:
                temperature = self.backward_temperature
        soft, hard = relaxed_sample(kind, logits, (num_samples,), temperature)
        if self.straight_through:
            soft = hard.detach() + (soft - soft.detach())
        if counts:
            values = torch.arange(soft.shape[-1], dtype=soft.dtype, device=soft.device)
            return evaluate(f, (soft * values).sum(-1), q, num_samples).mean(0)
        return evaluate(f, relaxed_input(kind, soft), q, num_samples).mean(0)

    def evaluations(self, q: Distribution, num_samples: int) -> int:
        return num_samples
