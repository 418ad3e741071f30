r"""Gaussian-latent variational autoencoder (Kingma & Welling 2014; Rezende et al. 2014).

Generative model :math:`p(z) = \mathcal N(0, I)`, :math:`p_\theta(x \mid z)` Bernoulli (logits
from the decoder) or Gaussian (decoder mean, one learned log-scale per feature); inference
model :math:`q_\phi(z \mid x) = \mathcal N(\mu_\phi(x), \operatorname{diag}\sigma_\phi^2(x))`.
Encoder and decoder are MLPs; the default is the IWAE paper's one-stochastic-layer MNIST
architecture, 784-200-200-50 with tanh (Burda, Grosse & Salakhutdinov 2016, section 5).

Training objectives, all maximised (:meth:`VAE.objective`):

* ``"elbo"``: :math:`\mathbb{E}_q[\log p_\theta(x \mid z)] - \mathrm{KL}(q_\phi \,\|\, p)` with the
  KL in closed form and the expectation through :func:`reparam.expect` with any estimator
  (``rp.Pathwise()`` by default; ``rp.ScoreFunction(...)`` for comparison).
* ``"iwae"``: :func:`reparam.vi.iwae_bound` with ``k`` samples and ``gradient`` =
  ``"standard"``, ``"stl"`` or ``"dreg"`` (``k = 1`` with ``"stl"`` is the STL ELBO).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Independent, Normal

from reparam.estimators.base import Estimator
from reparam.estimators.pathwise import Pathwise
from reparam.expect import expect
from reparam.vi.iwae import GRADIENTS, iwae_bound, log_weights

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "softplus": nn.Softplus}
LIKELIHOODS = ("bernoulli", "gaussian")
OBJECTIVES = ("elbo", "iwae")
_LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class VAEConfig:
    """Architecture of a :class:`VAE` (stored in checkpoints to rebuild the model)."""

    input_dim: int = 784
    latent_dim: int = 50
    hidden: tuple[int, ...] = (200, 200)
    activation: str = "tanh"
    likelihood: str = "bernoulli"
    min_scale: float = 1e-4

    def __post_init__(self) -> None:
        if self.input_dim < 1 or self.latent_dim < 1:
            raise ValueError(
                f"input_dim and latent_dim must be >= 1, got {self.input_dim}, {self.latent_dim}."
            )
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden sizes must be >= 1, got {self.hidden}.")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}.")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}.")

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["hidden"] = list(self.hidden)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> VAEConfig:
        values = dict(data)
        values["hidden"] = tuple(values.get("hidden", ()))  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]


def mlp(sizes: Sequence[int], activation: str) -> nn.Sequential:
    """Linear layers of ``sizes`` with ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class VAE(nn.Module):
    """Gaussian-latent VAE with an MLP encoder and decoder.

    Args:
        input_dim, latent_dim, hidden, activation, likelihood: see :class:`VAEConfig`; the
            defaults are the IWAE paper's 784-200-200-50 tanh network with a Bernoulli
            likelihood. The decoder mirrors the encoder's hidden sizes.

    Example:
        >>> model = rp.models.VAE(input_dim=64, latent_dim=8, hidden=(64,))
        >>> x = torch.rand(16, 64)  # a batch of 16 inputs in [0, 1]
        >>> loss = -model.objective(x, "iwae", k=5, gradient="dreg").mean()
        >>> loss.backward()
    """

    def __init__(
        self,
        input_dim: int = 784,
        latent_dim: int = 50,
        hidden: Sequence[int] = (200, 200),
        activation: str = "tanh",
        likelihood: str = "bernoulli",
        min_scale: float = 1e-4,
    ) -> None:
        super().__init__()
        self.config = VAEConfig(input_dim, latent_dim, tuple(hidden), activation, likelihood, min_scale)
        self.encoder = mlp([input_dim, *hidden, 2 * latent_dim], activation)
        self.decoder = mlp([latent_dim, *reversed(tuple(hidden)), input_dim], activation)
        self.log_scale = nn.Parameter(torch.zeros(input_dim)) if likelihood == "gaussian" else None

    @classmethod
    def from_config(cls, config: VAEConfig | dict[str, object]) -> VAE:
        if isinstance(config, dict):
            config = VAEConfig.from_dict(config)
        return cls(
            config.input_dim,
            config.latent_dim,
            config.hidden,
            config.activation,
            config.likelihood,
            config.min_scale,
        )

    # -- the two halves -------------------------------------------------------------------

    def posterior(self, x: Tensor) -> Independent:
        r""":math:`q_\phi(z \mid x)`: diagonal Gaussian, batch ``x.shape[:-1]``, event ``(latent_dim,)``."""
        self._check_input(x)
        loc, raw_scale = self.encoder(x).chunk(2, dim=-1)
        scale = F.softplus(raw_scale) + self.config.min_scale
        return Independent(Normal(loc, scale, validate_args=False), 1, validate_args=False)

    def log_likelihood(self, x: Tensor, z: Tensor) -> Tensor:
        r""":math:`\log p_\theta(x \mid z)` summed over features; ``z`` may carry leading sample dims."""
        out: Tensor = self.decoder(z)
        if self.config.likelihood == "bernoulli":
            return -F.binary_cross_entropy_with_logits(out, x.expand_as(out), reduction="none").sum(-1)
        assert self.log_scale is not None
        log_scale = self.log_scale.clamp(min=math.log(self.config.min_scale))
        return (-0.5 * ((x - out) * torch.exp(-log_scale)) ** 2 - log_scale - 0.5 * _LOG_2PI).sum(-1)

    def log_joint(self, x: Tensor, z: Tensor) -> Tensor:
        r""":math:`\log p_\theta(x, z) = \log p_\theta(x \mid z) + \log p(z)`."""
        prior_log_prob = -0.5 * (z**2).sum(-1) - 0.5 * self.config.latent_dim * _LOG_2PI
        return self.log_likelihood(x, z) + prior_log_prob

    def decode_mean(self, z: Tensor) -> Tensor:
        """Mean of :math:`p_\theta(x \\mid z)` (pixel probabilities for Bernoulli)."""
        out = self.decoder(z)
        return torch.sigmoid(out) if self.config.likelihood == "bernoulli" else out

    # -- objectives -----------------------------------------------------------------------

    def elbo(self, x: Tensor, estimator: Estimator | None = None, num_samples: int = 1) -> Tensor:
        r"""Per-example ELBO with the analytic Gaussian KL:
        :math:`\mathbb{E}_q[\log p(x \mid z)] - \mathrm{KL}(q(z \mid x) \,\|\, N(0, I))`.

        The expectation goes through :func:`reparam.expect` with ``estimator`` (default
        ``rp.Pathwise()``); the KL is :math:`\tfrac12 \sum_j (\mu_j^2 + \sigma_j^2 - 1 - 2\log\sigma_j)`.
        """
        q = self.posterior(x)
        expected = expect(lambda z: self.log_likelihood(x, z), q, estimator or Pathwise(), num_samples)
        base = q.base_dist
        kl: Tensor = 0.5 * (base.loc**2 + base.scale**2 - 1.0 - 2.0 * base.scale.log()).sum(-1)
        return expected - kl

    def iwae(self, x: Tensor, k: int = 1, gradient: str = "standard") -> Tensor:
        """Per-example IWAE bound with ``k`` samples (:func:`reparam.vi.iwae_bound`)."""
        return iwae_bound(lambda z: self.log_joint(x, z), self.posterior(x), k, gradient)  # type: ignore[arg-type]

    def objective(
        self,
        x: Tensor,
        objective: str = "elbo",
        k: int = 1,
        gradient: str = "standard",
        estimator: Estimator | None = None,
    ) -> Tensor:
        """The per-example training objective (to maximise): ``"elbo"`` (``k`` samples through
        ``estimator``; ``gradient`` other than ``"standard"`` uses the Monte Carlo ELBO
        :math:`\\frac1k\\sum_i \\log w_i` with STL) or ``"iwae"`` (``k`` importance samples,
        ``gradient`` in ``standard|stl|dreg``)."""
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}.")
        if gradient not in GRADIENTS:
            raise ValueError(f"gradient must be one of {GRADIENTS}, got {gradient!r}.")
        if objective == "iwae":
            if estimator is not None and not isinstance(estimator, Pathwise):
                raise ValueError(
                    "objective='iwae' is reparameterized (pathwise) only; use objective='elbo' to train "
                    f"with {estimator!r}."
                )
            return self.iwae(x, k, gradient)
        if gradient == "standard":
            return self.elbo(x, estimator, k)
        if estimator is not None and not isinstance(estimator, Pathwise):
            raise ValueError(f"gradient={gradient!r} needs the pathwise estimator, got {estimator!r}.")
        # STL / DReG for the ELBO: each sample is its own one-sample bound, where DReG equals STL.
        return log_weights(lambda z: self.log_joint(x, z), self.posterior(x), k, "stl").mean(0)

    # -- evaluation -----------------------------------------------------------------------

    @torch.no_grad()
    def log_marginal(self, x: Tensor, k: int = 5000, chunk: int = 500) -> Tensor:
        r"""Importance-sampling estimate of :math:`\log p_\theta(x)` per row,
        :math:`\log \frac1k \sum_{i=1}^k p(x, z_i) / q(z_i \mid x)` with :math:`z_i \sim q(z \mid x)`
        (the IWAE bound with large ``k``; Burda et al. 2016, section 5). Samples are processed
        ``chunk`` at a time and combined with a running log-sum-exp, so memory is
        :math:`O(\text{chunk} \cdot |x|)` whatever ``k`` is."""
        if k < 1 or chunk < 1:
            raise ValueError(f"k and chunk must be >= 1, got k={k}, chunk={chunk}.")
        q = self.posterior(x)
        total = torch.full(x.shape[:-1], -math.inf, dtype=x.dtype, device=x.device)
        done = 0
        while done < k:
            n = min(chunk, k - done)
            z = q.sample((n,))
            log_w = self.log_joint(x, z) - q.log_prob(z)
            total = torch.logaddexp(total, torch.logsumexp(log_w, dim=0))
            done += n
        return total - math.log(k)

    def _check_input(self, x: Tensor) -> None:
        if x.shape[-1] != self.config.input_dim:
            raise ValueError(
                f"x has {x.shape[-1]} features but the VAE was built with input_dim="
                f"{self.config.input_dim}; build VAE(input_dim={x.shape[-1]}, ...)."
            )
