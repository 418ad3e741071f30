"""``torch.func`` through every distribution's ``rsample``: ``grad`` equals the eager gradient,
``vmap`` over a batch of parameters equals a loop, ``grad`` of a ``vmap`` equals the loop's
gradients, ``jacrev`` equals per-sample autograd rows, and ``grad(grad)`` equals the eager second
derivative (Beta and Dirichlet refuse second derivatives, under every nesting, with their message).

Same draws: the generator is reset to the same state before each route (``vmap`` with
``randomness="same"`` gives every batch member the draws one unbatched call makes), and the eager
route runs inside :func:`~reparam.distributions.force_sync_free`, the evaluation ``torch.func``
takes (a wrapped tensor takes the sync-free path, ``reparam/distributions/_sync.py``). Both routes
then evaluate the same float64 formulas on the same draws; they differ only in the order of
floating-point operations inside batched kernels and reductions over a few samples, i.e. by a few
units of 2^-52 relative, amplified at most by the conditioning of the derivative formulas
(cancellations in the gamma/beta series): ``RTOL = 1e-9`` leaves a factor ~1e5 over 2^-52 ~ 2e-16
times the ~10 operations in a chain, and fails on any real disagreement (a wrong batch member, a
missing term, a different draw: all O(1e-2) or more). Parameters are float64 throughout.

The classes that draw gamma variates (:data:`GAMMA_DRAWS`) may take a different sampler under
``vmap`` than in an eager call of the same size (small eager calls can use
``torch._standard_gamma``, which has no same-randomness rule for batched concentrations), so
their loop members are ``vmap`` over a batch of one (the same sampler as the batched call): the
comparison then checks the batching (each member its own parameters, draws and gradients), and
``test_func_grad_equals_eager_gradient`` checks the unbatched transform against eager autograd.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Callable
from typing import ClassVar

import pytest
import torch
from torch import Tensor
from torch.distributions import Categorical, Distribution, Normal, constraints

import reparam as rp

D = rp.distributions
F64 = torch.float64
RTOL = 1e-9  # same formulas, same draws, float64: see the module docstring
NUM = 8  # samples per rsample call


def _t(x: float | list[float]) -> Tensor:
    return torch.tensor(x, dtype=F64)


class _Logistic(Distribution):
    """A user's distribution for Implicit and the mixture components: ``sample``, ``cdf`` and
    ``log_prob`` only. Its noise is ``torch.rand(shape)`` whatever the parameters, so ``vmap``
    with ``randomness="same"`` runs it (torch's Normal draws with ``torch.normal(loc, scale)``,
    which has no same-randomness rule for batched parameters)."""

    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {}
    support = constraints.real

    def __init__(self, loc: Tensor, scale: Tensor) -> None:
        self.loc, self.scale = torch.broadcast_tensors(loc, scale)
        super().__init__(self.loc.shape, validate_args=False)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        with torch.no_grad():
            shape = self._extended_shape(sample_shape)
            u = torch.rand(shape, dtype=self.loc.dtype, device=self.loc.device)
            return self.loc + self.scale * (torch.log(u) - torch.log1p(-u))

    def log_prob(self, value: Tensor) -> Tensor:
        y = (value - self.loc) / self.scale
        return -y - 2 * torch.nn.functional.softplus(-y) - torch.log(self.scale)

    def cdf(self, value: Tensor) -> Tensor:
        return torch.sigmoid((value - self.loc) / self.scale)


Build = Callable[[Tensor], Distribution]

# One scalar parameter ``a`` enters each distribution (in several of its arguments where it can).
BUILDS: dict[str, Build] = {
    "Gamma": lambda a: D.Gamma(a, _t(1.5), validate_args=False),
    "Chi2": lambda a: D.Chi2(a, validate_args=False),
    "InverseGamma": lambda a: D.InverseGamma(a, _t(2.0), validate_args=False),
    "StudentT": lambda a: D.StudentT(a, _t(0.2), _t(1.3), validate_args=False),
    "Beta": lambda a: D.Beta(a, 3.0 - a / 2, validate_args=False),
    "Dirichlet": lambda a: D.Dirichlet(torch.stack([a, a + 1.0, 0.5 * a]), validate_args=False),
    "TruncatedNormal": lambda a: D.TruncatedNormal(0.3 * a, a, _t(-1.0), _t(2.0), validate_args=False),
    "Implicit": lambda a: D.Implicit(_Logistic(0.5 * a, a)),
    "InverseCDF": lambda a: D.InverseCDF(Normal(0.5 * a, a.sqrt())),  # not linear in a
    "MixtureSameFamily": lambda a: D.MixtureSameFamily(
        Categorical(logits=torch.stack([a, -a], -1), validate_args=False),
        Normal(torch.stack([a, 2 * a], -1), _t([1.0, 0.5])),
    ),
    "VonMises": lambda a: D.VonMises(_t(0.3), a, validate_args=False),
    "HardConcrete": lambda a: D.HardConcrete(a - 1.0, 0.5, validate_args=False),
    "GaussianGate": lambda a: D.GaussianGate(a - 1.0, 0.5 * a.sqrt(), validate_args=False),
    "RelaxedTopK": lambda a: D.RelaxedTopK(torch.stack([a, -a, 2 * a, _t(0.1)]), 2, 0.5, validate_args=False),
    "InvertibleGaussian": lambda a: D.InvertibleGaussian(
        torch.stack([a, -a, 2 * a]), 0.5 * a, 0.5, validate_args=False
    ),
}

# Under vmap(randomness="same"): the mixture's weights fixed (torch's Categorical draws with
# torch.multinomial, which has no same-randomness rule for batched probabilities) and its
# components the user's Logistic; test_vmap_with_different_draws covers batched weights.
VMAP_BUILDS: dict[str, Build] = {
    **BUILDS,
    "MixtureSameFamily": lambda a: D.MixtureSameFamily(
        Categorical(logits=_t([0.3, -0.2]), validate_args=False),
        _Logistic(torch.stack([a, 2 * a]), _t([1.0, 0.5])),
    ),
}

# Parameter batches: the gamma family across its regimes (log-space draws, series, Temme's
# expansion), the rest across a range of shapes.
GAMMA_FAMILY = ("Gamma", "Chi2", "InverseGamma", "StudentT")


def _batch(name: str) -> Tensor:
    return _t([0.5, 2.0, 20.0] if name in GAMMA_FAMILY else [0.6, 1.7, 4.0])


def _loss(build: Build) -> Callable[[Tensor], Tensor]:
    def loss(a: Tensor) -> Tensor:
        z = build(a).rsample((NUM,))
        weights = torch.linspace(0.5, 1.5, z.numel(), dtype=z.dtype).reshape(z.shape)
        return (weights * z**2).sum()

    return loss


def _draw(build: Build) -> Callable[[Tensor], Tensor]:
    return lambda a: build(a).rsample((NUM,))


GAMMA_DRAWS = (*GAMMA_FAMILY, "Beta", "Dirichlet")


Fn = Callable[[Tensor], Tensor]


def _loop(name: str, eager: Fn, func: Fn, values: Tensor, state: Tensor) -> Tensor:
    """At each value, each from generator ``state``: ``eager`` (inside ``force_sync_free``), or
    for :data:`GAMMA_DRAWS` its ``torch.func`` version ``func`` under ``vmap`` over a batch of
    one (module docstring)."""
    out = []
    for value in values:
        torch.set_rng_state(state)
        if name in GAMMA_DRAWS:
            out.append(torch.func.vmap(func, randomness="same")(value.unsqueeze(0))[0])
        else:
            with D.force_sync_free():
                out.append(eager(value))
    return torch.stack(out)


def _eager_grad(loss: Callable[[Tensor], Tensor], value: Tensor) -> Tensor:
    """``d loss/da`` at ``value`` by plain autograd on the sync-free evaluation."""
    a = value.clone().requires_grad_()
    with D.force_sync_free():
        (g,) = torch.autograd.grad(loss(a), a)
    return g


def _assert_informative(want: Tensor) -> None:
    # a zero or non-finite reference would let a broken route pass
    assert torch.isfinite(want).all() and (want != 0).any(), want


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_func_grad_equals_eager_gradient(name: str) -> None:
    loss = _loss(BUILDS[name])
    state = torch.get_rng_state()
    want = _eager_grad(loss, _t(1.7))
    _assert_informative(want)
    torch.set_rng_state(state)
    got = torch.func.grad(loss)(_t(1.7))
    torch.testing.assert_close(got, want, rtol=RTOL, atol=0)


@pytest.mark.parametrize("name", sorted(VMAP_BUILDS))
def test_vmap_of_rsample_equals_a_loop(name: str) -> None:
    draw, batch = _draw(VMAP_BUILDS[name]), _batch(name)
    state = torch.get_rng_state()
    got = torch.func.vmap(draw, randomness="same")(batch)
    want = _loop(name, draw, draw, batch, state)
    assert not torch.equal(want[0], want[1])  # the parameters change the draws
    torch.testing.assert_close(got, want, rtol=RTOL, atol=0)


@pytest.mark.parametrize("name", sorted(VMAP_BUILDS))
def test_vmap_of_grad_over_parameters_equals_a_loop(name: str) -> None:
    loss, batch = _loss(VMAP_BUILDS[name]), _batch(name)
    state = torch.get_rng_state()
    want = _loop(name, lambda a: _eager_grad(loss, a), torch.func.grad(loss), batch, state)
    _assert_informative(want)
    torch.set_rng_state(state)
    got = torch.func.vmap(torch.func.grad(loss), randomness="same")(batch)
    torch.testing.assert_close(got, want, rtol=RTOL, atol=0)


@pytest.mark.parametrize("name", sorted(VMAP_BUILDS))
def test_grad_of_vmap_equals_a_loop(name: str) -> None:
    # the backward runs under vmap (each Function's generated vmap rule, not just its forward)
    loss, batch = _loss(VMAP_BUILDS[name]), _batch(name)
    state = torch.get_rng_state()
    want = _loop(name, lambda a: _eager_grad(loss, a), torch.func.grad(loss), batch, state)
    torch.set_rng_state(state)
    got = torch.func.grad(lambda b: torch.func.vmap(loss, randomness="same")(b).sum())(batch)
    torch.testing.assert_close(got, want, rtol=RTOL, atol=0)


LARGE = 2000  # samples per call: above MATRIX_MAX_ELEMENTS (1024), the Horner evaluations


@pytest.mark.parametrize("name", GAMMA_FAMILY)
def test_vmap_of_grad_above_the_matrix_size_equals_a_loop(name: str) -> None:
    # above 1024 samples per call the sync-free gamma derivative switches from one matrix
    # product to Horner's rule (Temme's expansion for concentrations >= 8, the series' bulk
    # below: the batch covers both); its in-place out= form had no batching rule
    build = BUILDS[name]

    def loss(a: Tensor) -> Tensor:
        z = build(a).rsample((LARGE,))
        return (torch.linspace(0.5, 1.5, z.numel(), dtype=z.dtype) * z).sum()

    batch = _batch(name)
    state = torch.get_rng_state()
    got = torch.func.vmap(torch.func.grad(loss), randomness="same")(batch)
    want = _loop(name, loss, torch.func.grad(loss), batch, state)
    _assert_informative(want)
    torch.testing.assert_close(got, want, rtol=RTOL, atol=0)
    torch.set_rng_state(state)  # and the unbatched transform against eager autograd
    single = torch.func.grad(loss)(batch[2])
    torch.set_rng_state(state)
    torch.testing.assert_close(single, _eager_grad(loss, batch[2]), rtol=RTOL, atol=0)


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_jacrev_of_rsample_equals_per_sample_autograd(name: str) -> None:
    draw = _draw(BUILDS[name])
    state = torch.get_rng_state()
    got = torch.func.jacrev(draw)(_t(1.7))
    torch.set_rng_state(state)
    a = _t(1.7).requires_grad_()
    with D.force_sync_free():
        z = draw(a).flatten()
    rows = [torch.autograd.grad(zi, a, retain_graph=True, allow_unused=True)[0] for zi in z]
    want = torch.stack([torch.zeros_like(a) if r is None else r for r in rows]).reshape(got.shape)
    _assert_informative(want)
    torch.testing.assert_close(got, want, rtol=RTOL, atol=0)


SECOND_ORDER_REFUSED = ("Beta", "Dirichlet")
SECOND_ORDER = sorted(set(BUILDS) - set(SECOND_ORDER_REFUSED))


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_grad_of_grad_equals_eager_second_derivative(name: str) -> None:
    loss = _loss(BUILDS[name])
    state = torch.get_rng_state()
    a = _t(1.7).requires_grad_()
    with D.force_sync_free():
        (g,) = torch.autograd.grad(loss(a), a, create_graph=True)
        (want,) = torch.autograd.grad(g, a)
    _assert_informative(want)
    torch.set_rng_state(state)
    got = torch.func.grad(torch.func.grad(loss))(_t(1.7))
    torch.testing.assert_close(got, want, rtol=RTOL, atol=0)


def _vmap2(f: Fn) -> Fn:
    """``f`` over two copies of a scalar, under ``vmap``."""
    return lambda a: torch.func.vmap(f, randomness="same")(a.expand(2))


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_jacrev_of_jacrev_equals_per_sample_second_derivatives(name: str) -> None:
    # the outer pass differentiates the inner backward: copies of the distribution made then
    # must not use tensors wrapped by the (exited) inner transform
    draw = _draw(BUILDS[name])
    state = torch.get_rng_state()
    got = torch.func.jacrev(torch.func.jacrev(draw))(_t(1.7))
    torch.set_rng_state(state)
    a = _t(1.7).requires_grad_()
    with D.force_sync_free():
        z = draw(a).flatten()
        want = []
        for zi in z:
            (first,) = torch.autograd.grad(zi, a, retain_graph=True, create_graph=True, allow_unused=True)
            if first is None or not first.requires_grad:  # z_i linear in a (or constant)
                want.append(torch.zeros_like(a))
            else:
                want.append(torch.autograd.grad(first, a, retain_graph=True)[0])
    want_t = torch.stack(want).reshape(got.shape)
    _assert_informative(want_t)
    torch.testing.assert_close(got, want_t, rtol=RTOL, atol=1e-300)


NESTINGS: dict[str, Callable[[Fn], Fn]] = {
    "grad(grad)": lambda f: torch.func.grad(torch.func.grad(f)),
    "jacrev(grad)": lambda f: torch.func.jacrev(torch.func.grad(f)),
    "jacrev(jacrev)": lambda f: torch.func.jacrev(torch.func.jacrev(f)),
    "vmap(grad(grad))": lambda f: _vmap2(torch.func.grad(torch.func.grad(f))),
    "grad(vmap(grad))": lambda f: torch.func.grad(lambda a: _vmap2(torch.func.grad(f))(a).sum()),
}


@pytest.mark.parametrize("nesting", sorted(NESTINGS))
@pytest.mark.parametrize("name", SECOND_ORDER_REFUSED)
def test_second_derivative_refused_under_every_nesting(name: str, nesting: str) -> None:
    transformed = NESTINGS[nesting](_loss(BUILDS[name]))
    with pytest.raises(RuntimeError, match=f"{name}.rsample: second derivatives in the concentrations"):
        transformed(_t(1.7))


# Batched mixture weights and torch's Normal draw only with randomness="different": each batch
# member then has its own draws, so the reference is the implicit derivative at those draws,
# -(dF(z; a)/da) / p(z; a), by eager autograd through the cdf at fixed z (exact to rounding).
DIFFERENT: dict[str, Build] = {
    "Implicit(Normal)": lambda a: D.Implicit(Normal(0.5 * a, a)),
    "MixtureSameFamily": BUILDS["MixtureSameFamily"],
}


@pytest.mark.parametrize("name", sorted(DIFFERENT))
def test_vmap_with_different_draws_matches_the_implicit_derivative(name: str) -> None:
    build, batch = DIFFERENT[name], _batch(name)

    def draw(a: Tensor) -> tuple[Tensor, Tensor]:
        z = build(a).rsample((NUM,))
        return z, z

    jac, z = torch.func.vmap(torch.func.jacrev(draw, has_aux=True), randomness="different")(batch)
    assert not torch.equal(z[0], z[1])  # the batch members drew differently
    want = []
    for value, zi in zip(batch, z, strict=True):
        a = value.expand(NUM).clone().requires_grad_()  # one copy of the parameter per sample
        dist = build(a)
        (d_cdf,) = torch.autograd.grad(dist.cdf(zi).sum(), a)  # F(z_j) depends on a_j only
        with torch.no_grad():
            want.append(-d_cdf / dist.log_prob(zi).exp())
    torch.testing.assert_close(jac, torch.stack(want), rtol=RTOL, atol=0)


class _ClosureLogistic(_Logistic):
    """A Logistic whose ``cdf`` reads its parameters through a closure on the original object:
    a substituted copy still reads the originals, so the implicit derivative walks the graph."""

    def __init__(self, loc: Tensor, scale: Tensor) -> None:
        super().__init__(loc, scale)
        this = self
        self.cdf = lambda value: torch.sigmoid((value - this.loc) / this.scale)  # type: ignore[method-assign]


def test_graph_walk_under_vmap_in_grad_is_refused_with_the_fix() -> None:
    def loss(a: Tensor) -> Tensor:
        return D.Implicit(_ClosureLogistic(a, a + 1.0)).rsample((4,)).sum()

    def attribute_loss(a: Tensor) -> Tensor:
        return D.Implicit(_Logistic(a, a + 1.0)).rsample((4,)).sum()

    batch = _t([0.6, 1.7])
    state = torch.get_rng_state()
    got = torch.func.vmap(torch.func.grad(loss), randomness="same")(batch)  # vmap outside: supported
    torch.set_rng_state(state)
    want = torch.func.vmap(torch.func.grad(attribute_loss), randomness="same")(batch)
    torch.testing.assert_close(got, want, rtol=RTOL, atol=0)  # graph walk = substitution
    with pytest.raises(RuntimeError, match=r"Store the parameters as attributes.*vmap\(grad\(f\)\)"):
        torch.func.grad(lambda b: torch.func.vmap(loss, randomness="same")(b).sum())(batch)


# Forward mode through the custom Functions is refused loudly by the callers, with the
# distribution and the fix named (a jvp staticmethod would make torch.compile refuse the
# Function), rather than torch's generic "You must implement the jvp function ...".
_NAMED = ": forward-mode derivatives .* Use reverse mode"
_GAMMA_NAMED = re.escape("Gamma rsample (also in Chi2, InverseGamma, StudentT)") + _NAMED
FORWARD_MODE_REFUSAL = {
    "TruncatedNormal": re.escape("TruncatedNormal.rsample/icdf") + _NAMED,
    "Implicit": re.escape("(Implicit and MixtureSameFamily rsample)") + _NAMED,
    "MixtureSameFamily": re.escape("(Implicit and MixtureSameFamily rsample)") + _NAMED,
    "VonMises": re.escape("VonMises.rsample") + _NAMED,
    **{name: _GAMMA_NAMED for name in GAMMA_FAMILY},
    "Beta": re.escape("Beta rsample") + _NAMED,
    "Dirichlet": re.escape("Dirichlet rsample") + _NAMED,
}


@pytest.mark.parametrize("name", sorted(FORWARD_MODE_REFUSAL))
def test_forward_mode_is_refused(name: str) -> None:
    # for Implicit/mixtures the tangent would otherwise reach the sample only through the
    # sampler (0 for a mixture): a silently wrong derivative
    pattern = FORWARD_MODE_REFUSAL[name]
    with pytest.raises(NotImplementedError, match=pattern):
        torch.func.jvp(_draw(BUILDS[name]), (_t(1.7),), (_t(1.0),))
    with pytest.raises(NotImplementedError, match=pattern):  # a Hessian by forward over reverse
        torch.func.jacfwd(torch.func.jacrev(_loss(BUILDS[name])), randomness="same")(_t(1.7))


def _custom_functions() -> dict[str, type[torch.autograd.Function]]:
    """Every ``torch.autograd.Function`` subclass defined in the ``reparam`` package."""
    found = {}
    for info in pkgutil.walk_packages(rp.__path__, "reparam."):
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            is_function = inspect.isclass(obj) and issubclass(obj, torch.autograd.Function)
            if is_function and obj.__module__ == info.name:
                found[f"{info.name}.{obj.__qualname__}"] = obj
    return found


# Functions of VonMises.cdf (not of rsample) without a vmap rule yet: reported, owned elsewhere.
WITHOUT_VMAP_RULE = {f"reparam.distributions.von_mises.{name}" for name in ("_CDFKappa", "_VonMisesCDF")}


def test_every_custom_function_is_torch_func_and_compile_ready() -> None:
    functions = _custom_functions()
    assert len(functions) >= 15, sorted(functions)  # the walk found the package's Functions
    base = torch.autograd.Function
    # setup_context style: what torch.func requires of an autograd.Function
    assert [name for name, f in functions.items() if f.setup_context is base.setup_context] == []
    # a vmap rule (generated or written), so vmap and jacrev batch through it
    no_vmap = {name for name, f in functions.items() if not f.generate_vmap_rule and f.vmap is base.vmap}
    assert no_vmap <= WITHOUT_VMAP_RULE, sorted(no_vmap - WITHOUT_VMAP_RULE)
    # no jvp staticmethod: torch.compile refuses a Function that has one ("Unsupported custom
    # jvp"); forward mode is refused by the callers instead (check_no_forward_mode)
    assert [name for name, f in functions.items() if f.jvp is not base.jvp] == []
