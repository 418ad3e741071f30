r"""Attach implicit derivatives to samples drawn without gradients, exact at every order.

Implicit differentiation of ``F(z; theta) = u`` gives ``dz/dtheta = g(z, theta) = -F_theta/p``
(Figurnov, Mohamed & Mnih, "Implicit Reparameterization Gradients", NeurIPS 2018, eq. 5). Higher
derivatives need ``z``'s own dependence on ``theta`` inside ``g``:

.. math::
    \frac{d^2 z}{d\theta^2} = \frac{\partial g}{\partial\theta} + \frac{\partial g}{\partial z}\,g
    = -\frac{F_{\theta\theta} + 2 F_{\theta z} z' + F_{zz} z'^2}{F_z}.

Two mechanisms, both keeping the value exactly ``z0``:

* :func:`implicit_surrogate` (generic: :class:`~reparam.distributions.Implicit`, mixtures), the
  root-finding rule of JAX's ``custom_root`` (Blondel et al., "Efficient and Modular Implicit
  Differentiation", NeurIPS 2022): an autograd function :class:`_ImplicitRoot` returns ``z0`` and
  saves its *output* ``z``; a plain backward sends ``grad * (-1/p(z0))`` into the graph of
  ``F(z0; theta)`` built in the forward (one ``cdf`` graph, the cheapest first-order path); a
  backward with ``create_graph`` returns ``grad * g(z, theta)`` as a differentiable function of the
  saved output, so differentiating it again passes through :class:`_ImplicitRoot` once more, and
  every order is exact by recursion (as torch's ``exp`` backward uses its result). The partial
  derivative ``dF/dtheta`` at fixed ``z`` is taken either on a copy of the distribution whose
  parameter tensors are replaced by fresh leaves (:func:`tensor_slots`, :func:`substitute`;
  re-attached to the real inputs by :class:`_Reroot`), or, when the ``cdf`` depends on tensors
  that are not attributes of the distribution, by autograd from ``F(z; theta)`` to the leaves of
  its graph with the path through ``z`` itself cut (slower: it walks the graph upstream again).
* :class:`PathwiseSample` (dedicated classes whose ``g`` is evaluated by series or special
  functions): the output ``z`` is saved and, when a double-backward graph is being built, the
  backward returns ``grad * g(z_out, theta)`` through :class:`_Derivative`, a function of the
  *output*, so differentiating it again reaches ``z``'s dependence on ``theta``.
  :class:`_Derivative`'s own backward supplies ``dg/dz`` and ``dg/dtheta`` from a
  :class:`PathwiseSpec` and refuses a third differentiation with a clear error (:class:`_Refuse`).
  Reusable: a distribution supplies ``first`` (``g``) and ``partials``.

``torch.func``: every Function here is ``setup_context`` style with a generated vmap rule. Under
a transform every backward runs with grad mode on and leaves cannot be made, so
:class:`_ImplicitRoot` takes the partial derivative with ``torch.func.vjp`` in the parameters
(:meth:`_Problem.partial_func`), which the enclosing transforms differentiate and batch at every
order; parameters are found through ``vmap``'s batching wrappers (:func:`requires_grad`), and
copies made for a later backward use live tensors (``jacrev(jacrev(f))``). Forward mode is
refused by the callers (:func:`check_no_forward_mode`; a ``jvp`` staticmethod would make
``torch.compile`` refuse the Function). Tests: ``tests/distributions/test_func.py``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution
from torch.distributions.transforms import Transform

from reparam.distributions._apply import apply

_Ctx = Any
_Path = tuple[str | int, ...]
Family = Callable[[Sequence[Tensor]], tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]]
"""``params -> (cdf, density)``: the distribution's ``F(z)`` and ``p(z)`` with ``params`` in place
of its own parameter tensors (same order as the ``params`` given to :func:`implicit_surrogate`)."""


# ------------------------------------------------------------------ parameter discovery


def _tracked(t: Tensor) -> Tensor:
    """``t``, or under ``torch.func.vmap`` the tensor it wraps that autograd tracks: a batched
    tensor reports ``requires_grad=False`` and no ``grad_fn`` even where the tensor it wraps has
    them (``grad(vmap(f))``, or plain autograd around ``vmap``)."""
    if t.requires_grad or torch.compiler.is_compiling():
        return t
    inner = t
    while torch._C._functorch.is_batchedtensor(inner):
        inner = torch._C._functorch.get_unwrapped(inner)
        if inner.requires_grad:
            return inner
    return t


def requires_grad(t: Tensor) -> bool:
    """``t.requires_grad``, looking through ``vmap``'s batching wrappers (:func:`_tracked`)."""
    return _tracked(t).requires_grad


def tensor_slots(obj: object, depth: int = 0) -> list[tuple[_Path, Tensor]]:
    """The tensors requiring grad held by ``obj`` (a distribution), with their attribute paths:
    its own attributes, and those of nested distributions and transforms (``base_dist``,
    ``transforms``, ``parts``...) up to three levels down.

    Example:
        >>> from torch.distributions import Normal
        >>> loc, scale = torch.zeros(2, requires_grad=True), torch.ones(2, requires_grad=True)
        >>> [p for p, _ in tensor_slots(Normal(loc, scale))]
        [('loc',), ('scale',)]
    """
    found: list[tuple[_Path, Tensor]] = []
    for key, value in vars(obj).items():
        if isinstance(value, Tensor):
            if requires_grad(value):
                found.append(((key,), value))
        elif depth < 3 and isinstance(value, (Distribution, Transform)):
            found += [((key, *p), t) for p, t in tensor_slots(value, depth + 1)]
        elif depth < 3 and type(value) in (list, tuple):
            for i, item in enumerate(value):
                if isinstance(item, (Distribution, Transform)):
                    found += [((key, i, *p), t) for p, t in tensor_slots(item, depth + 1)]
    return found


def substitute(obj: Any, slots: Sequence[tuple[_Path, Tensor]]) -> Any:
    """A copy of ``obj`` with the tensor at each path replaced (shallow copies along the paths
    only; distributions copied have sample validation off: the points they see were checked)."""
    groups: dict[str | int, list[tuple[_Path, Tensor]]] = {}
    for path, value in slots:
        groups.setdefault(path[0], []).append((path[1:], value))
    if type(obj) in (list, tuple):
        items = list(obj)
        for index, sub in groups.items():
            items[index] = _put(items[index], sub)  # type: ignore[index]
        return type(obj)(items)
    new = copy.copy(obj)
    state = new.__dict__
    if torch._C._are_functorch_transforms_active():
        _revive(state)
    for key, sub in groups.items():
        state[key] = _put(state[key], sub)
    if isinstance(new, Distribution):
        state["_validate_args"] = False
    return new


def _revive(state: dict[str, Any]) -> None:
    """Tensors in ``state`` wrapped by a ``torch.func`` transform that has since exited replaced
    by the tensors they wrap (same values): a copy made for a later backward (e.g. the outer
    pass of ``jacrev(jacrev(f))``) must not use an inner level's dead wrappers."""
    for key, value in state.items():
        if isinstance(value, Tensor):
            state[key] = torch._C._functorch.unwrap_if_dead(value)


def _put(old: Any, sub: list[tuple[_Path, Tensor]]) -> Any:
    return sub[0][1] if sub[0][0] == () else substitute(old, sub)


def distribution_family(dist: Distribution) -> tuple[Family, list[Tensor]]:
    """``(family, params)`` for :func:`implicit_surrogate`: ``dist``'s parameter tensors (those
    requiring grad, found by :func:`tensor_slots`) and ``params -> (cdf, density)`` on a copy of
    ``dist`` holding ``params`` instead. The copy is taken from a snapshot made now, so caches
    that ``dist`` fills later (``lazy_property``) never leak the old parameters into it."""
    slots = tensor_slots(dist)
    paths = [path for path, _ in slots]
    snapshot = substitute(dist, slots)

    def family(params: Sequence[Tensor]) -> tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]:
        d = substitute(snapshot, list(zip(paths, params, strict=True)))
        return d.cdf, lambda z: d.log_prob(z).exp()

    return family, [t for _, t in slots]


# ------------------------------------------------------------------ re-rooting


FORWARD_MODE_MESSAGE = (
    "{name}: forward-mode derivatives (torch.func.jvp, jacfwd, hessian, torch.autograd.forward_ad) "
    "are not implemented. Use reverse mode: torch.func.grad, vjp or jacrev (jacrev(jacrev(f)) for "
    "a Hessian)."
)


def check_no_forward_mode(name: str) -> None:
    """Raise :data:`FORWARD_MODE_MESSAGE` for ``name`` when a forward-mode dual level is open
    (``torch.func.jvp``/``jacfwd``/``hessian``, ``torch.autograd.forward_ad``). The custom
    Functions here implement reverse mode only; they carry no ``jvp`` staticmethod, which would
    make ``torch.compile`` refuse them, so their callers check here, before ``apply``."""
    if torch.autograd.forward_ad._current_level >= 0:
        raise NotImplementedError(FORWARD_MODE_MESSAGE.format(name=name))


def _leaf(x: Tensor) -> Tensor:
    return x if x.requires_grad else x.detach().requires_grad_()


def _vjp(
    outputs: Sequence[Tensor], inputs: Sequence[Tensor], grads: Sequence[Tensor], create_graph: bool
) -> tuple[Tensor, ...]:
    """``sum_i grads_i . d outputs_i / d inputs`` with zeros where nothing depends on an input."""
    pairs = [(o, g) for o, g in zip(outputs, grads, strict=True) if o.requires_grad]
    if not pairs:
        return tuple(torch.zeros_like(x) for x in inputs)
    got = torch.autograd.grad(
        [o for o, _ in pairs], inputs, [g for _, g in pairs], create_graph=create_graph, allow_unused=True
    )
    return tuple(torch.zeros_like(x) if d is None else d for x, d in zip(inputs, got, strict=True))


_Fn = Callable[..., tuple[Tensor, ...]]


class _Reroot(torch.autograd.Function):
    """``fn(*inputs)`` evaluated on detached copies, differentiable at every order in the real
    ``inputs``: its backward is the vector-Jacobian product of ``fn`` taken on fresh leaves and,
    under ``create_graph``, itself applied through :class:`_Reroot` (so its derivatives reach the
    real inputs too). ``fn`` maps tensors to a tuple of tensors, differentiably in those inputs
    that require grad (and evaluates with grad enabled inside itself if it needs autograd).

    ``setup_context`` style with a generated vmap rule, so ``torch.func`` transforms run through
    it (under ``vmap`` ``fn`` sees batched tensors: it must use only torch operations that vmap
    supports, as :meth:`_Problem.partial` does)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(fn: _Fn, *inputs: Tensor) -> tuple[Tensor, ...]:
        return tuple(fn(*(x.detach() for x in inputs)))

    @staticmethod
    def setup_context(ctx: _Ctx, inputs: tuple[Any, ...], output: tuple[Tensor, ...]) -> None:
        fn, *tensors = inputs
        ctx.fn = fn
        ctx.save_for_backward(*tensors)

    @staticmethod
    def backward(ctx: _Ctx, *grads: Tensor) -> tuple[Tensor | None, ...]:
        inputs = ctx.saved_tensors
        fn: _Fn = ctx.fn
        n = len(inputs)

        def vjp(*args: Tensor) -> tuple[Tensor, ...]:
            create_graph = any(a.requires_grad for a in args)
            with torch.enable_grad():
                leaves = [_leaf(x) for x in args[:n]]
                return _vjp(fn(*leaves), leaves, args[n:], create_graph)

        if torch.is_grad_enabled():
            return (None, *_Reroot.apply(vjp, *inputs, *grads))
        return (None, *vjp(*(x.detach() for x in (*inputs, *grads))))


# ------------------------------------------------------------------ the implicit root


class _Problem:
    """What :class:`_ImplicitRoot`'s higher-order backward needs: the closures on the real
    parameters (graph-walk mode) and, when known, the family to substitute them (re-root mode)."""

    def __init__(
        self, cdf: Callable[[Tensor], Tensor], density: Callable[[Tensor], Tensor], family: Family | None
    ) -> None:
        self.cdf, self.density, self.family = cdf, density, family
        self.busy = False

    def partial(self, z: Tensor, grad: Tensor, *params: Tensor) -> tuple[Tensor, ...]:
        """``grad . (-dF/dparams) / p`` at fixed ``z`` (re-root mode; see :class:`_Reroot`)."""
        assert self.family is not None
        create_graph = z.requires_grad or grad.requires_grad or any(t.requires_grad for t in params)
        with torch.enable_grad():
            leaves = [_leaf(t) for t in params]
            cdf, density = self.family(leaves)
            value = cdf(z)
            weight = _neg_reciprocal(density(z), value.dtype)
            return _vjp([value], leaves, [_as(grad, weight, value.shape, value.dtype)], create_graph)

    def partial_func(self, z: Tensor, grad: Tensor, *params: Tensor) -> tuple[Tensor, ...]:
        """:meth:`partial` under ``torch.func`` transforms: ``torch.func.vjp`` in the parameters
        alone (``z`` closed over, hence held fixed), so the enclosing transforms differentiate
        and batch the result directly, at every order (no leaves, no :class:`_Reroot`)."""
        assert self.family is not None
        family = self.family
        found: tuple[Any, ...] = torch.func.vjp(lambda *ps: family(ps)[0](z), *params)  # (value, pullback)
        value, pullback = found
        weight = _neg_reciprocal(family(params)[1](z), value.dtype)
        got: tuple[Tensor, ...] = pullback(_as(grad, weight, value.shape, value.dtype))
        return got


def _under_torch_func() -> bool:
    """Whether a ``torch.func`` transform (``grad``, ``vjp``, ``jacrev``, ``vmap``...) is active:
    there every backward runs with grad mode on and tensors are wrapped, so leaves cannot be made
    (``requires_grad_``); :meth:`_Problem.partial_func` is used instead."""
    if torch.compiler.is_compiling():
        return False
    return bool(torch._C._functorch.get_interpreter_stack())


def _neg_reciprocal(density: Tensor, dtype: torch.dtype) -> Tensor:
    """``-1/p``, ``p`` floored at the smallest normal number so the ratio stays finite."""
    return density.to(dtype).clamp(min=torch.finfo(dtype).tiny).reciprocal().neg()


def _as(grad: Tensor, weight: Tensor, shape: torch.Size, dtype: torch.dtype) -> Tensor:
    """``grad * weight`` with the cdf output's ``shape`` and ``dtype``."""
    v = grad.to(dtype) * weight
    return v if v.shape == shape else v.sum_to_size(shape)


def _graph_leaves(root: Tensor, stop: Sequence[Tensor] = ()) -> list[Tensor]:
    """The leaf tensors requiring grad that ``root``'s graph reaches without passing through one
    of the tensors ``stop`` (matched by node and output index, or as leaves, by identity)."""
    stop_nodes = {(id(t.grad_fn), t.output_nr) for t in stop if t.grad_fn is not None}
    stop_leaves = {id(t) for t in stop if t.grad_fn is None}
    found: dict[int, Tensor] = {}
    seen: set[tuple[int, int]] = set()
    stack = [(root.grad_fn, root.output_nr)]
    while stack:
        node, nr = stack.pop()
        key = (id(node), nr)
        if node is None or key in seen or key in stop_nodes:
            continue
        seen.add(key)
        variable = getattr(node, "variable", None)
        if isinstance(variable, Tensor):
            if id(variable) not in stop_leaves:
                found[id(variable)] = variable
            continue
        stack.extend(node.next_functions)
    return list(found.values())


class _ImplicitRoot(torch.autograd.Function):
    """``_ImplicitRoot.apply(z0, cdf0, weight, problem, *params)`` returns ``z0``.

    Backward without ``create_graph``: ``grad * weight`` (``weight = -1/p(z0)``) to ``cdf0 =
    F(z0; theta)``, whose own graph carries it to ``theta``. With ``create_graph``: nothing to
    ``cdf0``; ``grad * g(z, theta)`` to ``params`` as a differentiable function of the saved
    output ``z`` (see module docstring), in one of two modes: ``problem.family`` given: the
    ``params`` are the distribution's parameter tensors and the partial derivative is re-rooted
    (:class:`_Reroot`); else the ``params`` are the leaves of ``cdf0``'s graph and the partial is
    autograd from ``F(z)`` to them, with the path back through this node cut (``problem.busy``).
    """

    generate_vmap_rule = True  # torch.func.vmap: no host reads; the closures see batched tensors

    @staticmethod
    def forward(z0: Tensor, cdf0: Tensor, weight: Tensor, problem: _Problem, *params: Tensor) -> Tensor:
        return z0.view_as(z0)

    @staticmethod
    def setup_context(ctx: _Ctx, inputs: tuple[Any, ...], output: Tensor) -> None:
        _, cdf0, weight, problem, *params = inputs
        ctx.problem = problem
        ctx.cdf_meta = (cdf0.shape, cdf0.dtype)
        ctx.save_for_backward(weight, output, *params)

    @staticmethod
    def backward(ctx: _Ctx, grad: Tensor) -> tuple[Tensor | None, ...]:
        problem: _Problem = ctx.problem
        weight, z, *params = ctx.saved_tensors
        nones = (None,) * len(params)
        if not torch.is_grad_enabled():
            return None, _as(grad, weight, *ctx.cdf_meta), None, None, *nones
        if problem.family is not None:
            if _under_torch_func():
                return None, None, None, None, *problem.partial_func(z, grad, *params)
            return None, None, None, None, *_Reroot.apply(problem.partial, z, grad, *params)
        if problem.busy:  # reached through z from the partial below: cut
            return None, None, None, None, *nones
        problem.busy = True
        try:
            value = problem.cdf(z)
            v = _as(grad, _neg_reciprocal(problem.density(z), value.dtype), value.shape, value.dtype)
            got = _vjp([value], params, [v], create_graph=True)
        finally:
            problem.busy = False
        return None, None, None, None, *got


def implicit_surrogate(
    z0: Tensor,
    cdf: Callable[[Tensor], Tensor],
    log_density: Callable[[Tensor], Tensor] | None = None,
    density: Callable[[Tensor], Tensor] | None = None,
    family: Family | None = None,
    params: Sequence[Tensor] = (),
) -> Tensor:
    r"""``z0`` carrying the implicit derivative ``-(dF/dtheta)/p``, exact at every order.

    .. math::
        \frac{dz}{d\theta} = g(z, \theta) = -\frac{\partial F(z; \theta)/\partial\theta}{p(z; \theta)},
        \qquad \frac{d^{k+1} z}{d\theta^{k+1}} = \frac{d^k}{d\theta^k}\, g(z(\theta), \theta),

    the second by re-entering the same autograd node (see :class:`_ImplicitRoot`). The forward
    evaluates ``F(z0)`` with its graph and ``p(z0)`` without one; a first-order backward walks that
    one ``cdf`` graph. Higher orders re-evaluate ``F`` and ``p`` at the saved output.

    Args:
        z0: detached samples.
        cdf: ``z -> F(z; theta)``, differentiable in ``theta`` (and in ``z`` for higher orders).
        log_density: ``z -> log p(z; theta)``.
        density: ``z -> p(z; theta)`` instead (saves a log and an exp where ``p`` is a sum).
        family: ``params -> (cdf, density)`` with ``params`` substituted for the parameter tensors;
            higher orders then differentiate locally. Used when ``F(z0)`` evaluated through
            ``family`` on aliases of ``params`` reaches no leaf except through those aliases
            (checked here: a walk over that small graph, no extra evaluation); otherwise,
            and without ``family``, higher orders differentiate ``F`` back to the leaves of its
            graph (as exact, slower where that graph is deep).
        params: the real parameter tensors, in ``family``'s order.

    Example:
        >>> from torch.distributions import Normal
        >>> loc, scale = torch.zeros(2, requires_grad=True), torch.ones(2, requires_grad=True)
        >>> d = Normal(loc, scale)
        >>> family, params = distribution_family(d)
        >>> z = implicit_surrogate(d.sample((8,)), d.cdf, log_density=d.log_prob,
        ...                        family=family, params=params)
        >>> z.sum().backward()  # dz/dloc = 1 for every sample (to rounding)
        >>> torch.allclose(loc.grad, torch.full((2,), 8.0))
        True
    """
    if (density is None) == (log_density is None):
        raise TypeError("implicit_surrogate: pass exactly one of log_density= or density=.")
    # forward mode: tangents would reach z0 only through the sampler (wrong, e.g. 0 for a
    # mixture): refused rather than a silently wrong forward derivative
    check_no_forward_mode("implicit_surrogate (Implicit and MixtureSameFamily rsample)")
    if z0.requires_grad:
        z0 = z0.detach()
    if family is not None:
        # F(z0) through the family on aliases of params: a graph reaching a leaf other than
        # through the aliases means the substituted copy still reads other tensors.
        params = [t.view_as(t) for t in params]
        cdf0 = family(params)[0](z0)
        # (torch.compile cannot walk a graph in Python; there the family is trusted: the
        # first-order backward goes through cdf0's own graph, which reaches every tensor the cdf
        # reads, so it is exact either way, and compiled autograd has no second order)
        tracked = _tracked(cdf0)  # under vmap, the graph is on the tensors it wraps
        if (
            tracked.requires_grad
            and not torch.compiler.is_compiling()
            and _graph_leaves(tracked, stop=[_tracked(t) for t in params])
        ):
            family = None  # differentiate back to the leaves instead (as exact, slower)
    else:
        cdf0 = cdf(z0)
    if not requires_grad(cdf0):
        return z0
    if family is None and not cdf0.requires_grad:  # batched by vmap: no graph to walk here
        raise RuntimeError(
            "implicit_surrogate: under torch.func.vmap inside a differentiating transform (e.g. "
            "grad(vmap(f))), the cdf must depend on the parameters only through tensors held by "
            "the distribution (its attributes, found by tensor_slots) or passed as family=/params=; "
            "this cdf reads other tensors. Store the parameters as attributes of the distribution, "
            "or put vmap outside the differentiating transform (vmap(grad(f)))."
        )
    p = density if density is not None else (lambda z: torch.exp(log_density(z)))  # type: ignore[misc]
    with torch.no_grad():
        weight = _neg_reciprocal(p(z0), cdf0.dtype)
    if family is None:
        params = _graph_leaves(cdf0)
    problem = _Problem(cdf, p, family)
    z: Tensor = apply(_ImplicitRoot, z0, cdf0, weight, problem, *params)
    return z


# ------------------------------------------------------------------ dedicated classes


class PathwiseSpec:
    """What :class:`PathwiseSample` needs from a distribution: ``g = dz/dtheta`` and its partials.

    ``first(z, theta)`` returns ``g`` (any float dtype, shaped like ``z``); ``partials(z, theta,
    g)`` returns ``(dg/dz, dg/dtheta)`` elementwise (``theta`` broadcast against ``z``), both
    without autograd. ``name`` appears in the error for third derivatives.
    """

    name = "this distribution"

    def first(self, z: Tensor, theta: Tensor) -> Tensor:
        raise NotImplementedError

    def partials(self, z: Tensor, theta: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


class _Refuse(torch.autograd.Function):
    """Identity on ``value``, attached to ``deps``; differentiating it raises (third order)."""

    generate_vmap_rule = True  # torch.func.vmap: forward and backward are plain torch ops

    @staticmethod
    def forward(value: Tensor, name: str, *deps: Tensor) -> Tensor:
        return value.view_as(value)

    @staticmethod
    def setup_context(ctx: _Ctx, inputs: tuple[Any, ...], output: Tensor) -> None:
        ctx.name = inputs[1]

    @staticmethod
    def backward(ctx: _Ctx, *grads: Tensor) -> tuple[None, ...]:
        raise RuntimeError(
            f"{ctx.name}: derivatives of order 3 or higher through rsample are not implemented "
            "(orders 1 and 2 are exact). Use a second-order method, or differentiate an "
            "estimator that needs no third derivative of the samples (e.g. rp.ScoreFunction())."
        )


def refuse_further(value: Tensor, name: str, *deps: Tensor) -> Tensor:
    """``value`` unchanged; when a graph is being built, any derivative through it (in the
    ``deps``, typically the sample and the parameters) raises a clear error naming ``name``."""
    if not torch.is_grad_enabled():
        return value
    out: Tensor = _Refuse.apply(value, name, *deps)  # apply: Any
    return out


class _Derivative(torch.autograd.Function):
    """``g(z, theta)`` (float64) differentiable once: backward ``(dg/dz, dg/dtheta)`` from the spec."""

    generate_vmap_rule = True  # torch.func.vmap: forward and backward are plain torch ops

    @staticmethod
    def forward(z: Tensor, theta: Tensor, spec: PathwiseSpec) -> Tensor:
        return spec.first(z, theta).double()

    @staticmethod
    def setup_context(ctx: _Ctx, inputs: tuple[Tensor, Tensor, PathwiseSpec], output: Tensor) -> None:
        z, theta, spec = inputs
        ctx.spec = spec
        ctx.save_for_backward(z, theta, output)

    @staticmethod
    def backward(ctx: _Ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        z, theta, g = ctx.saved_tensors
        spec: PathwiseSpec = ctx.spec
        with torch.no_grad():
            d_z, d_theta = spec.partials(z.detach(), theta.detach(), g.detach())
            grad64 = grad.detach().double()
            grad_z = (grad64 * d_z).sum_to_size(z.shape).to(z.dtype)
            grad_theta = (grad64 * d_theta).sum_to_size(theta.shape).to(theta.dtype)
        grad_z = refuse_further(grad_z, spec.name, z, theta, grad)
        grad_theta = refuse_further(grad_theta, spec.name, z, theta, grad)
        return grad_z, grad_theta, None


def pathwise_grad(grad: Tensor, z: Tensor, theta: Tensor, spec: PathwiseSpec) -> Tensor:
    """``sum(grad * g(z, theta))`` reduced to ``theta``'s shape and dtype; differentiable (to
    second order) when grad mode is on, i.e. inside a backward with ``create_graph``."""
    if torch.is_grad_enabled():
        g: Tensor = _Derivative.apply(z, theta, spec)  # apply: Any
    else:
        g = spec.first(z.detach(), theta.detach())
    return (grad.double() * g).sum_to_size(theta.shape).to(theta.dtype)


class PathwiseSample(torch.autograd.Function):
    """``PathwiseSample.apply(theta, z0, spec)``: returns ``z0`` (detached sample); backward
    ``grad * spec.first(z, theta)``, evaluated only when a backward pass reaches it. The output is
    saved, so under ``create_graph`` the derivative is a function of ``z`` itself and second
    derivatives are exact; third ones raise (see module docstring)."""

    generate_vmap_rule = True  # torch.func.vmap: forward and backward are plain torch ops

    @staticmethod
    def forward(theta: Tensor, z0: Tensor, spec: PathwiseSpec) -> Tensor:
        return z0.view_as(z0)

    @staticmethod
    def setup_context(ctx: _Ctx, inputs: tuple[Tensor, Tensor, PathwiseSpec], output: Tensor) -> None:
        theta, _, spec = inputs
        ctx.spec = spec
        ctx.save_for_backward(theta, output)

    @staticmethod
    def backward(ctx: _Ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        theta, z = ctx.saved_tensors
        return pathwise_grad(grad, z, theta, ctx.spec), None, None

