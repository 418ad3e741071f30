r"""Normalizing flows as variational families (zuko flows, the optional ``[flows]`` extra).

A normalizing flow writes :math:`z = T_\phi^{-1}(\epsilon)`, :math:`\epsilon \sim p_0`, with
:math:`T_\phi` invertible and its Jacobian cheap, so

.. math::
    \log q_\phi(z) = \log p_0(T_\phi(z)) + \log\left|\det \frac{\partial T_\phi(z)}{\partial z}\right| .

Sampling is a differentiable function of :math:`\phi` and the noise, so the pathwise estimator
applies and the ELBO :math:`\mathbb E_{q_\phi}[\log p(x, z) - \log q_\phi(z)]` is estimated as
with a Gaussian family (its entropy has no closed form: the ELBO takes ``-log q`` inside the
expectation).

A zuko flow is an ``nn.Module`` whose call returns a ``torch.distributions.Distribution``
(``flow()`` without context, ``flow(c)`` conditioned on ``c``), so it already satisfies the
family protocol of :func:`reparam.vi.fit` and ``rp.expect(f, flow(), rp.Pathwise())`` works
on its distribution. :class:`FlowFamily` adds what a generic module cannot give:

* a fixed context (``FlowFamily(flow, context=c)``), for amortised posteriors;
* sticking-the-landing and DReG gradients: ``detach_parameters(q)`` of a ``q`` built by a
  :class:`FlowFamily` rebuilds the flow from a copy whose parameters are detached views of
  the flow's (and with the context detached), so :math:`\log q_{\text{sg}(\phi)}(z)` passes gradients
  only through ``z``.

:func:`reparam.vi.fit` wraps a zuko flow passed as ``family`` in :class:`FlowFamily` itself;
:func:`zuko_flow` builds one by name (``"maf"``, ``"nsf"``, ``"realnvp"``) with zuko imported
lazily (``pip install 'reparam[flows]'``).

References:
    Rezende & Mohamed, "Variational inference with normalizing flows", ICML 2015;
    Kingma et al., "Improved variational inference with inverse autoregressive flow",
    NeurIPS 2016; Papamakarios et al., "Normalizing flows for probabilistic modeling and
    inference", JMLR 2021; Rozet et al., zuko (https://github.com/probabilists/zuko).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from torch import Tensor, nn
from torch.distributions import Distribution

from reparam._optional import require
from reparam.vi.detach import DETACHERS

#: attribute set on the distributions a :class:`FlowFamily` returns: ``(module, args)``.
_SOURCE = "_reparam_flow_source"


def is_zuko_flow(module: object) -> bool:
    """Whether ``module`` is a zuko flow or lazy distribution (checked without importing zuko)."""
    if not isinstance(module, nn.Module):
        return False
    return any(cls.__module__.split(".")[0] == "zuko" for cls in type(module).__mro__)


class FlowFamily(nn.Module):
    r"""A normalizing flow (any module ``flow(*context) -> Distribution``, e.g. a zuko flow)
    as a variational family: ``FlowFamily(flow)()`` is the flow's distribution :math:`q_\phi`.

    Args:
        flow: e.g. ``zuko.flows.MAF(features=2, transforms=3)``; its parameters are the
            family's parameters.
        context: the conditioning tensor passed as ``flow(context)`` (``None``: ``flow()``).

    The returned distribution remembers the flow that built it, so
    :func:`reparam.vi.detach_parameters` (sticking the landing, DReG) supports it.

    Example:
        Any module returning a reparameterizable distribution works; here a one-layer affine
        flow written with ``torch.distributions`` (with zuko: ``zuko.flows.MAF(features=2)``):

        >>> from torch.distributions import AffineTransform, Independent, Normal, TransformedDistribution
        >>> class Affine(torch.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.shift = torch.nn.Parameter(torch.zeros(2))
        ...         self.log_scale = torch.nn.Parameter(torch.zeros(2))
        ...     def forward(self):
        ...         base = Independent(Normal(torch.zeros(2), torch.ones(2)), 1)
        ...         move = AffineTransform(self.shift, self.log_scale.exp(), event_dim=1)
        ...         return TransformedDistribution(base, [move])
        >>> family = rp.vi.FlowFamily(Affine())
        >>> target = lambda z: -0.5 * (z - 3.0).square().sum(-1)
        >>> result = rp.vi.fit(target, family, steps=200, num_samples=8, stl=True, lr=0.05, progress=False)
        >>> bool((result.q.sample((4096,)).mean(0) - 3.0).abs().max() < 0.2)
        True
    """

    def __init__(self, flow: nn.Module, context: Tensor | None = None) -> None:
        super().__init__()
        if not isinstance(flow, nn.Module) or not callable(flow):
            raise TypeError(
                f"flow must be an nn.Module returning a Distribution when called (e.g. "
                f"zuko.flows.MAF(features=2)), got {type(flow).__name__}."
            )
        if context is not None and not isinstance(context, Tensor):
            raise TypeError(f"context must be None or a Tensor, got {type(context).__name__}.")
        self.flow = flow
        self.context = context

    def _args(self) -> tuple[Tensor, ...]:
        return () if self.context is None else (self.context,)

    def forward(self) -> Distribution:
        return _build(self.flow, self._args(), self._detached_flow)

    def _detached_flow(self) -> nn.Module:
        """A copy of the flow whose parameters and buffers are ``.detach()``-ed views of the
        flow's own (same storage, so optimizer steps show through without copying), built
        once. zuko's distributions run the flow's networks lazily, inside ``log_prob``, so
        the copy must outlive the call that builds ``q``."""
        shadow = self.__dict__.get("_shadow")
        if shadow is None or shadow[0] != _versions_key(self.flow):
            copy_ = copy.deepcopy(self.flow)
            for name, tensor in [*self.flow.named_parameters(), *self.flow.named_buffers()]:
                owner_name, _, leaf = name.rpartition(".")
                owner = copy_.get_submodule(owner_name) if owner_name else copy_
                if leaf in owner._parameters:
                    del owner._parameters[leaf]
                    setattr(owner, leaf, tensor.detach())
                else:
                    owner._buffers[leaf] = tensor.detach()
            shadow = (_versions_key(self.flow), copy_)
            self.__dict__["_shadow"] = shadow  # not a submodule: its tensors are the flow's
        return shadow[1]


def _versions_key(flow: nn.Module) -> tuple[int, ...]:
    """Identity of the flow's tensors (a new tensor object, e.g. after ``.to()``, rebuilds the copy)."""
    return tuple(id(t) for t in [*flow.parameters(), *flow.buffers()])


def _build(flow: nn.Module, args: tuple[Tensor, ...], detached: Callable[[], nn.Module]) -> Distribution:
    q = flow(*args)
    if not isinstance(q, Distribution):
        raise TypeError(
            f"the flow must return a torch.distributions.Distribution when called, got "
            f"{type(q).__name__}; with zuko, pass the flow module itself (zuko.flows.MAF(...)), "
            "not a transform."
        )
    if not q.has_rsample:
        raise TypeError(
            f"the flow's distribution {type(q).__name__} has no rsample, so pathwise gradients "
            "cannot flow through its samples; use an invertible flow with a sampling pass "
            "(zuko's MAF, NSF, RealNVP, ...)."
        )
    object.__setattr__(q, _SOURCE, (detached, args))
    if type(q) not in DETACHERS:
        DETACHERS[type(q)] = _detach_flow
    return q


def _detach_flow(q: Distribution) -> Distribution:
    """``q`` rebuilt by the detached copy of its flow, with the context detached too."""
    source: Any = q.__dict__.get(_SOURCE)
    if source is None:
        raise TypeError(
            f"detach_parameters cannot detach this {type(q).__name__}: it was not built by "
            "rp.vi.FlowFamily; wrap the flow, q = rp.vi.FlowFamily(flow)(), to get "
            "sticking-the-landing / DReG gradients."
        )
    detached, args = source
    q_detached = detached()(*(a.detach() for a in args))
    if not isinstance(q_detached, Distribution):  # pragma: no cover - _build checked the type
        raise TypeError(f"the flow returned {type(q_detached).__name__}, not a Distribution.")
    return q_detached


#: zuko flow classes by name, for :func:`zuko_flow`.
ZUKO_FLOWS = {"maf": "MAF", "nsf": "NSF", "realnvp": "RealNVP", "naf": "NAF"}


def zuko_flow(name: str, features: int, **options: Any) -> FlowFamily:
    """A zuko flow by name as a :class:`FlowFamily` (zuko imported here, lazily).

    Args:
        name: ``"maf"`` (affine masked autoregressive; fast in 2-D), ``"nsf"`` (rational-quadratic
            splines, more flexible and slower to sample), ``"realnvp"`` or ``"naf"``.
        features: the dimension of ``z``.
        **options: passed to the zuko class, e.g. ``transforms=3, hidden_features=(64, 64)``.

    Raises:
        reparam._optional.MissingExtraError: zuko is not installed (``pip install 'reparam[flows]'``).

    Example:
        >>> family = rp.vi.flows.zuko_flow("maf", 2, transforms=2)  # doctest: +SKIP
    """
    if name not in ZUKO_FLOWS:
        raise ValueError(f"unknown flow {name!r}; choose one of {sorted(ZUKO_FLOWS)}.")
    if isinstance(features, bool) or not isinstance(features, int) or features < 1:
        raise ValueError(f"features must be an int >= 1 (the dimension of z), got {features!r}.")
    zuko = require("zuko", extra="flows", feature="normalizing-flow variational families")
    flow = getattr(zuko.flows, ZUKO_FLOWS[name])(features=features, **options)
    return FlowFamily(flow)
