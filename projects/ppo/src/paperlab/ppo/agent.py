"""Actor-critic for continuous actions: a Gaussian policy with a state-independent log-std.

Separate actor and critic MLPs, orthogonal initialisation (gain sqrt(2) in hidden layers, 0.01 for
the policy mean so the initial policy is close to N(0, exp(init_log_std)^2), 1 for the value head),
as in CleanRL's ``ppo_continuous_action.py``. Actions are sampled unbounded; the environment side
clips them to the action box (the log-probability is that of the unclipped sample).
"""

from __future__ import annotations

import math

import torch
from torch import nn

_ACT = {"tanh": nn.Tanh, "relu": nn.ReLU, "silu": nn.SiLU}


def _layer(n_in: int, n_out: int, gain: float) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def mlp(n_in: int, hidden: list[int], n_out: int, activation: str, out_gain: float) -> nn.Sequential:
    layers, d = [], n_in
    for h in hidden:
        layers += [_layer(d, h, math.sqrt(2)), _ACT[activation]()]
        d = h
    layers.append(_layer(d, n_out, out_gain))
    return nn.Sequential(*layers)


class Actor(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], activation: str, init_log_std: float):
        super().__init__()
        self.mean = mlp(obs_dim, hidden, act_dim, activation, out_gain=0.01)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(init_log_std)))

    def dist(self, obs: torch.Tensor) -> torch.distributions.Normal:
        mean = self.mean(obs)
        return torch.distributions.Normal(mean, self.log_std.expand_as(mean).exp())

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """log pi(action | obs), summed over action dimensions (``dist().log_prob`` without its checks)."""
        return gaussian_log_prob(action, self.mean(obs), self.log_std)

    def entropy(self) -> torch.Tensor:
        """Entropy of the policy (the same for every state: the std does not depend on it)."""
        return (0.5 + 0.5 * math.log(2 * math.pi) + self.log_std).sum()


def gaussian_log_prob(action: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """sum_i log N(action_i; mean_i, exp(log_std_i)^2), the arithmetic of ``torch.distributions.Normal``."""
    scale = log_std.exp()
    return (-((action - mean) ** 2) / (2 * scale**2) - scale.log() - _LOG_SQRT_2PI).sum(-1)


_LOG_SQRT_2PI = math.log(math.sqrt(2 * math.pi))


class ActorCritic(nn.Module):
    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        actor_hidden: list[int],
        critic_hidden: list[int],
        activation: str = "tanh",
        init_log_std: float = 0.0,
    ):
        super().__init__()
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.actor = Actor(obs_dim, act_dim, actor_hidden, activation, init_log_std)
        self.critic = mlp(obs_dim, critic_hidden, 1, activation, out_gain=1.0)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(obs).squeeze(-1)

    @torch.inference_mode()
    def act(self, obs: torch.Tensor, deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Action, its log-probability and the value of ``obs`` in one call (no gradients).

        A sample is ``torch.normal(mean, std)``, the draw ``torch.distributions.Normal.sample`` makes.
        """
        mean = self.actor.mean(obs)
        log_std = self.actor.log_std.expand_as(mean)
        action = mean if deterministic else torch.normal(mean, log_std.exp())
        return action, gaussian_log_prob(action, mean, log_std), self.value(obs)


def fast_forward(net: nn.Sequential):
    """``net(x)`` for an MLP made by :func:`mlp`, as plain ``F.linear`` + activation calls on the same
    parameters: the same arithmetic without ``nn.Module.__call__``'s overhead, which dominates a
    forward pass of a 64-64 network on one observation. For the rollout (no hooks, no gradients)."""
    ops = []
    for layer in net:
        if isinstance(layer, nn.Linear):
            ops.append((torch.nn.functional.linear, layer.weight, layer.bias))
        else:
            ops.append((_FN[type(layer)], None, None))

    def forward(x: torch.Tensor) -> torch.Tensor:
        for fn, w, b in ops:
            x = fn(x, w, b) if w is not None else fn(x)
        return x

    return forward


_FN = {nn.Tanh: torch.tanh, nn.ReLU: torch.relu, nn.SiLU: torch.nn.functional.silu}


def build_agent(cfg, obs_dim: int, act_dim: int) -> ActorCritic:
    """The actor-critic a config describes, on ``cfg.device``."""
    return ActorCritic(obs_dim, act_dim, cfg.actor_hidden, cfg.critic_hidden, cfg.activation, cfg.init_log_std).to(
        cfg.device
    )
