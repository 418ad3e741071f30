"""Mixtures with implicit-reparameterization ``rsample``: univariate and diagonal multivariate."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torch.distributions import Categorical, Distribution, Independent, constraints
from torch.distributions import MixtureSameFamily as _TorchMixtureSameFamily

from reparam.distributions._checks import overrides, samples_trusted
from reparam.distributions._surrogate import implicit_surrogate, substitute, tensor_slots

_Shape = torch.Size | Sequence[int]
_Fn = Callable[[Tensor], Tensor]
_Sub = Callable[[Sequence[Tensor]], Distribution]


def _weighted_sum(values: Tensor, weights: Tensor) -> Tensor:
    """``sum_k weights_k values_k`` over the last dimension; a matrix-vector product when the
    weights are shared (a reduction over a short inner dimension is several times slower)."""
    if weights.dim() == 1:
        dtype = torch.promote_types(values.dtype, weights.dtype)
        return torch.matmul(values.to(dtype), weights.to(dtype))
    return (weights * values).sum(-1)


def _parameter_free(constraint: constraints.Constraint) -> bool:
    """Whether ``constraint`` (and the one it wraps, for ``independent``) holds no tensors."""
    base = getattr(constraint, "base_constraint", None)
    own = [v for k, v in vars(constraint).items() if k != "base_constraint"]
    return not any(isinstance(v, Tensor) for v in own) and (base is None or _parameter_free(base))


class MixtureSameFamily(_TorchMixtureSameFamily):
    r"""``torch.distributions.MixtureSameFamily`` with pathwise gradients (Graves 2016).

    *Univariate* components (``event_shape == ()``): the mixture CDF
    ``F(z) = sum_k w_k F_k(z)`` gives the implicit derivative
    ``dz/dtheta = -(dF/dtheta) / p(z)`` with respect to the weights' logits and every component
    parameter (Figurnov, Mohamed & Mnih, NeurIPS 2018).

    *Diagonal multivariate* components (``Independent(univariate, 1)``, event ``(D,)``): the
    sample is transported one coordinate at a time through the conditional CDFs

    .. math::
        F_d(z_d \mid z_{<d}) = \sum_k w_k^{(d)} F_{kd}(z_d), \qquad
        w_k^{(d)} \propto w_k \prod_{j<d} p_{kj}(z_j),

    so ``z_d`` depends on ``theta`` directly and through ``z_{<d}`` (Graves, "Stochastic
    Backpropagation through Mixture Density Distributions", arXiv:1607.05690, 2016). Cost: ``D``
    passes over the components' CDFs and ``O(D^2)`` log-density evaluations.

    Components must implement ``cdf`` differentiably (Normal, Logistic-type, our
    ``TruncatedNormal``, ``VonMises``...). ``has_rsample`` is ``False`` otherwise.

    Higher derivatives: each coordinate is :func:`reparam.distributions._surrogate.implicit_surrogate`
    on its conditional CDF, exact at every order to which the components' ``cdf`` and
    ``log_prob`` are differentiable in the value and the parameters (Normal: all).
    """

    def _base(self) -> Distribution:
        comp = self.component_distribution
        if isinstance(comp, Independent) and comp.reinterpreted_batch_ndims == 1:
            base: Distribution = comp.base_dist  # unannotated in torch
            return base
        return comp

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        comp = self.component_distribution
        diagonal = isinstance(comp, Independent) and comp.reinterpreted_batch_ndims == 1
        univariate = comp.event_shape == ()
        base = self._base()  # comp.base_dist if diagonal else comp
        return (univariate or (diagonal and base.event_shape == ())) and overrides(base, "cdf")

    @constraints.dependent_property
    def support(self) -> constraints.Constraint:
        """The components' support itself where it is the same for every component (``real``,
        ``positive``, ``independent(real, 1)``...: no tensor bounds), so ``biject_to`` and Pyro's
        autoguides work; else torch's per-component constraint (which has no bijection)."""
        comp = self.component_distribution.support
        if comp is not None and _parameter_free(comp):
            return comp
        per_component: constraints.Constraint = super().support  # torch's is unannotated
        return per_component

    def sample(self, sample_shape: _Shape = ()) -> Tensor:
        """Component index from the weights, then that component's draw (as torch), except that
        a batch entry whose weights are invalid (a NaN or ``+inf`` logit, all ``-inf``, a
        negative probability) gives NaN instead of an error from ``torch.multinomial``."""
        with torch.no_grad():
            sample_shape = torch.Size(sample_shape)
            logits = self.mixture_distribution.logits  # normalised: NaN in an invalid row
            bad = torch.isnan(logits).any(-1)
            safe = torch.where(bad.unsqueeze(-1), torch.zeros_like(logits), logits)
            index = Categorical(logits=safe, validate_args=False).sample(sample_shape)
            draws = self.component_distribution.sample(sample_shape)  # (*S, *B, K, *E)
            events = self.event_shape
            dim = index.dim()
            index = index.reshape(index.shape + (1,) * (1 + len(events)))
            x = torch.gather(draws, dim, index.expand(index.shape[: dim + 1] + events)).squeeze(dim)
            bad = bad.reshape(bad.shape + (1,) * len(events))
            return torch.where(bad, torch.full_like(x, math.nan), x)

    def rsample(self, sample_shape: _Shape = ()) -> Tensor:
        if not self.has_rsample:
            raise NotImplementedError(
                "MixtureSameFamily.rsample needs univariate components or Independent(univariate, 1) "
                f"components with a cdf; {type(self._base()).__name__} components do not qualify. Use "
                "estimator=rp.ScoreFunction() or components with a differentiable cdf (e.g. Normal)."
            )
        with torch.no_grad():
            z0 = self.sample(torch.Size(sample_shape))
        # z0 came from the components themselves: their cdf/log_prob need not re-check support.
        with samples_trusted(self._base()):
            if self.component_distribution.event_shape == ():
                return self._rsample_univariate(z0)
            return self._rsample_diagonal(z0)

    def _components(self) -> tuple[list[Tensor], _Sub]:
        """The component distribution's parameter tensors and ``params -> copy holding them``
        (:func:`implicit_surrogate` checks that they cover the ``cdf``'s dependence)."""
        base = self._base()
        slots = tensor_slots(base)
        paths = [path for path, _ in slots]
        snapshot = substitute(base, slots)  # before any cache of base's is filled

        def at(params: Sequence[Tensor]) -> Distribution:
            copy: Distribution = substitute(snapshot, list(zip(paths, params, strict=True)))
            return copy

        return [t for _, t in slots], at

    def _rsample_univariate(self, z0: Tensor) -> Tensor:
        w = torch.softmax(self.mixture_distribution.logits, -1)
        comp = self.component_distribution

        def cdf(z: Tensor) -> Tensor:
            return _weighted_sum(comp.cdf(z.unsqueeze(-1)), w)

        def density(z: Tensor) -> Tensor:
            # p = sum_k w_k p_k directly: where every p_k underflows, p is below the smallest
            # normal number and the surrogate's floor (1/p capped) applies either way.
            return _weighted_sum(comp.log_prob(z.unsqueeze(-1)).exp(), w)

        params, at = self._components()

        def family(theta: Sequence[Tensor]) -> tuple[_Fn, _Fn]:
            weights, c = theta[0], at(theta[1:])
            return (
                lambda z: _weighted_sum(c.cdf(z.unsqueeze(-1)), weights),
                lambda z: _weighted_sum(c.log_prob(z.unsqueeze(-1)).exp(), weights),
            )

        return implicit_surrogate(z0, cdf, density=density, family=family, params=[w, *params])

    def _rsample_diagonal(self, z0: Tensor) -> Tensor:
        base = self._base()  # batch (..., K, D)
        params, sub = self._components()
        log_w = torch.log_softmax(self.mixture_distribution.logits, -1)  # (..., K)
        cdf_all = base.cdf(z0.unsqueeze(-2))  # (S, ..., K, D), differentiable in the parameters
        coords: list[Tensor] = []
        log_cond = log_w.expand(cdf_all.shape[:-1])  # log w_k + sum_{j<d} log p_kj(z_j)
        for d in range(z0.shape[-1]):
            z0_d = z0[..., d]
            cdf_d, density_d = _conditional(base, log_cond, z0, d, (z0_d, cdf_all[..., d]))

            def family(theta: Sequence[Tensor], d: int = d) -> tuple[_Fn, _Fn]:
                return _conditional(sub(theta[1:]), theta[0], z0, d, None)

            theta = [log_cond, *params]
            z_d = implicit_surrogate(z0_d, cdf_d, density=density_d, family=family, params=theta)
            coords.append(z_d)
            if d + 1 < z0.shape[-1]:
                current = torch.cat([torch.stack(coords, -1), z0[..., d + 1 :]], -1)
                log_cond = log_cond + base.log_prob(current.unsqueeze(-2))[..., d]
        return torch.stack(coords, -1)


def _conditional(
    base: Distribution, log_cond: Tensor, z0: Tensor, d: int, known: tuple[Tensor, Tensor] | None
) -> tuple[_Fn, _Fn]:
    """``F_d(z | z_<d) = sum_k w_k^(d) F_kd(z)`` and its density for components ``base`` (batch
    ``(..., K, D)``) and log weights ``log_cond``; ``known = (z0_d, F_kd(z0_d))`` when computed."""

    def at(z: Tensor) -> Tensor:
        """``z0`` with coordinate ``d`` replaced by ``z``, as ``(S, ..., 1, D)``."""
        return torch.cat([z0[..., :d], z.unsqueeze(-1), z0[..., d + 1 :]], -1).unsqueeze(-2)

    def cdf(z: Tensor) -> Tensor:
        cdf_k = known[1] if (known is not None and z is known[0]) else base.cdf(at(z))[..., d]
        return (torch.softmax(log_cond, -1) * cdf_k).sum(-1)

    def density(z: Tensor) -> Tensor:
        log_p = base.log_prob(at(z))[..., d]
        return torch.logsumexp(torch.log_softmax(log_cond, -1) + log_p, -1).exp()

    return cdf, density
