"""A softmax policy over discrete actions."""

from __future__ import annotations

from torch import Tensor, nn
from torch.distributions import Categorical

from reparam.models.policy.gaussian_policy import mlp


class CategoricalPolicy(nn.Module):
    r"""``pi_theta(a | s) = softmax(g_theta(s))_a`` with ``g_theta`` a tanh MLP.

    Discrete actions have no reparameterisation, so this policy is trained with the score
    function (:func:`~reparam.models.policy.reinforce.reinforce_surrogate`).
    """

    def __init__(self, obs_dim: int, num_actions: int, hidden: int = 64) -> None:
        super().__init__()
        self.logits = mlp(obs_dim, num_actions, hidden)

    def forward(self, obs: Tensor) -> Categorical:
        return Categorical(logits=self.logits(obs), validate_args=False)
