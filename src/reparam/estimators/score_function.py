"""Score-function (REINFORCE, likelihood-ratio) estimator."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Distribution

from reparam.baselines.base import Baseline
from reparam.baselines.delta_method import DeltaMethod
from reparam.baselines.leave_one_out import LeaveOneOut
from reparam.estimators.base import (
    CostFn,
    credit_log_prob,
    draw_without_gradient,
    evaluate,
    log_prob_of_own_samples,
    score_surrogate,
)
from reparam.estimators.sampling import ImportanceSampling, Sampler, draw, weights_for


class ScoreFunction:
    r"""REINFORCE / likelihood-ratio gradient, optionally with a baseline or control variate.

    .. math::
        \nabla_\phi \mathbb{E}_{q_\phi}[f(z)] = \mathbb{E}_{q_\phi}\big[f(z)\,\nabla_\phi \log q_\phi(z)\big]
        \approx \frac1N \sum_n \big(f(z_n) - b_n\big)\, \nabla_\phi \log q_\phi(z_n)
        \;(+\text{correction})

    Unbiased for any ``q`` with ``sample`` and a differentiable ``log_prob`` and any integrable
    ``f`` (which need not be differentiable, nor even continuous) as long as the baseline
    :math:`b_n` does not depend on :math:`z_n` (or its expectation is put back by a correction
    term, as :class:`~reparam.baselines.DeltaMethod` does). Samples are drawn without gradient;
    gradients of ``f``'s own parameters flow as usual. When ``f`` returns one cost per leading
    batch element, each cost is credited only with the log-density of its own batch slice.
    Cost: ``num_samples`` evaluations of ``f``.

    Higher orders: the surrogate is the DiCE form (:func:`~reparam.estimators.base.score_surrogate`)
    :math:`\frac1N\sum_n \big[\boxdot(L_n) f(z_n) + (1 - \boxdot(L_n))\, b_n\big]`
    (+ correction), :math:`\boxdot(L) = e^{L - \bot(L)}`, :math:`L_n = \log q_\phi(z_n)`
    credited per cost element. Its value is exactly the mean cost and its first derivative the
    estimator above, and ``torch.autograd.grad(..., create_graph=True)`` gives unbiased
    Hessians (and higher derivatives) of :math:`\mathbb{E}_q[f]`, the cross terms between
    ``f``'s own parameters and ``q``'s included, with every baseline and every sampler (each
    baseline is independent of the sample it is paired with, and ``DeltaMethod``'s correction
    :math:`\bar\beta\,\mathbb{E}_{q_\phi}[h]` is exact in :math:`\phi` to every order).
    Samples whose log-density is not finite (a draw at a density singularity, a saturated
    ``Bernoulli(logits=inf)``) contribute their cost to the value and no score term, so the
    value stays finite whenever ``f`` is.

    Example:
        >>> from torch.distributions import Normal
        >>> from reparam.baselines import LeaveOneOut
        >>> loc = torch.tensor(0.5, requires_grad=True)
        >>> value = rp.expect(lambda z: z**2, Normal(loc, 1.0), rp.ScoreFunction(LeaveOneOut()), 1000)
        >>> (g,) = torch.autograd.grad(value, loc, create_graph=True)
        >>> (h,) = torch.autograd.grad(g, loc)  # ~ 2 = d^2/dloc^2 (loc^2 + 1)

    Args:
        baseline: ``None`` or a :mod:`reparam.baselines` object
            (``MovingAverage``, ``LeaveOneOut``, ``Learned``, ``DeltaMethod``).
        sampling: ``None`` (i.i.d. ``q.sample``) or a sampler from
            :mod:`reparam.estimators.sampling` (``Antithetic()``, ``Stratified()``, ``QMC()``,
            ``ImportanceSampling(scale)``); each row is still marginally ``q`` (or reweighted to
            it), so ``f(z_n) grad log q(z_n)`` stays unbiased term by term. Samplers whose rows
            are dependent cannot be combined with baselines built from the other rows
            (``LeaveOneOut``, ``DeltaMethod``): the baseline would no longer be independent of
            the sample it is paired with.

    References:
        Williams, "Simple statistical gradient-following algorithms for connectionist
        reinforcement learning", Machine Learning 1992; Glynn, "Likelihood ratio gradient
        estimation for stochastic systems", CACM 1990; Mohamed et al., JMLR 2020, section 4;
        Foerster et al., "DiCE: The Infinitely Differentiable Monte Carlo Estimator", ICML 2018;
        Mao et al., "A Baseline for Any Order Gradient Estimation in Stochastic Computation
        Graphs", ICML 2019.
    """

    def __init__(self, baseline: Baseline | None = None, sampling: Sampler | None = None) -> None:
        for name, value in (("baseline", baseline), ("sampling", sampling)):
            if isinstance(value, type):
                raise TypeError(
                    f"{name} must be an instance: write {value.__name__}() (got the class "
                    f"{value.__name__} itself)."
                )
        if baseline is not None and not isinstance(baseline, Baseline):
            raise TypeError(
                f"baseline must be None or a reparam.baselines object (MovingAverage(), "
                f"LeaveOneOut(), Learned(module), DeltaMethod()), got {type(baseline).__name__}."
            )
        if sampling is not None and not isinstance(sampling, Sampler):
            raise TypeError(
                f"sampling must be None or a sampler such as rp.Antithetic(), rp.QMC(), got "
                f"{type(sampling).__name__}."
            )
        if (
            sampling is not None
            and not isinstance(sampling, ImportanceSampling)
            and isinstance(baseline, (LeaveOneOut, DeltaMethod))
        ):
            raise ValueError(
                f"sampling={sampling!r} draws dependent samples, and baseline={baseline!r} is built "
                "from the other samples of the batch, which makes the estimator biased; use "
                "baseline=MovingAverage() or Learned(...) with this sampler, or sampling=None."
            )
        self.baseline = baseline
        self.sampling = sampling

    @property
    def min_samples(self) -> int:
        return 1 if self.baseline is None else int(self.baseline.min_samples)

    def __call__(self, f: CostFn, q: Distribution, num_samples: int) -> Tensor:
        if num_samples < self.min_samples:
            raise ValueError(
                f"{self!r} needs num_samples >= {self.min_samples}, got num_samples="
                f"{num_samples}; raise num_samples or use baseline=MovingAverage()."
            )
        log_w = None
        if self.sampling is None:
            z = draw_without_gradient(q, num_samples)
        else:
            with torch.no_grad():
                z, log_w = draw(self.sampling, q, num_samples)
        costs = evaluate(f, z, q, num_samples)
        own = self.sampling is None
        log_prob = credit_log_prob(log_prob_of_own_samples(q, z) if own else q.log_prob(z), costs)
        control = None
        correction = None
        if self.baseline is not None:
            cv = self.baseline(costs.detach(), z, q, f)
            control, correction = cv.value, cv.correction
        per_sample = score_surrogate(costs, log_prob, control)
        importance = weights_for(log_w, costs)
        if importance is not None:
            per_sample = importance * per_sample
        surrogate = per_sample.mean(0)
        return surrogate if correction is None else surrogate + correction

    def evaluations(self, q: Distribution, num_samples: int) -> int:
        return num_samples + int(getattr(self.baseline, "extra_evaluations", 0))

    def __repr__(self) -> str:
        if self.sampling is None:
            return f"ScoreFunction(baseline={self.baseline!r})"
        return f"ScoreFunction(baseline={self.baseline!r}, sampling={self.sampling!r})"
