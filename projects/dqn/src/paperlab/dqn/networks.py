"""Q-networks: an MLP for vector observations, and the MinAtar paper's network for 10x10xC images."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class MLPQNetwork(nn.Module):
    """obs (B, D) -> Q (B, A) through ReLU hidden layers."""

    def __init__(self, obs_dim: int, n_actions: int, hidden_sizes=(128, 128)):
        super().__init__()
        layers, last = [], obs_dim
        for h in hidden_sizes:
            layers += [nn.Linear(last, h), nn.ReLU()]
            last = h
        layers.append(nn.Linear(last, n_actions))
        self.net = nn.Sequential(*layers)

    def forward(self, obs_BxD: torch.Tensor) -> torch.Tensor:
        return self.net(obs_BxD.float())


class MinAtarQNetwork(nn.Module):
    """The network of Young & Tian (2019): one 16-filter 3x3 conv (stride 1, no padding), one
    fully connected hidden layer of 128 units, ReLUs, a linear output per action.

    obs (B, C, 10, 10) of 0/1 -> Q (B, A).
    """

    def __init__(self, in_channels: int, n_actions: int, channels: int = 16, hidden: int = 128,
                 size: int = 10):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, channels, kernel_size=3, stride=1)
        flat = channels * (size - 2) * (size - 2)
        self.fc = nn.Linear(flat, hidden)
        self.out = nn.Linear(hidden, n_actions)

    def forward(self, obs_BxCxHxW: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(obs_BxCxHxW.float()))
        x = torch.relu(self.fc(x.flatten(1)))
        return self.out(x)


def make_q_network(obs_shape: tuple[int, ...], n_actions: int, cfg) -> nn.Module:
    if len(obs_shape) == 1:
        return MLPQNetwork(obs_shape[0], n_actions, tuple(cfg.hidden_sizes))
    if len(obs_shape) == 3:
        return MinAtarQNetwork(obs_shape[0], n_actions, cfg.conv_channels, cfg.conv_hidden, obs_shape[1])
    raise ValueError(f"no Q-network for observations of shape {obs_shape}")


def epsilon_greedy(q_net: nn.Module, obs: np.ndarray, epsilon: float, rng: np.random.Generator,
                   n_actions: int) -> int:
    """A uniformly random action with probability ``epsilon``, else argmax_a Q(obs, a).

    The generator is consumed the same way every call (one draw, plus one more when exploring), so
    that a run that replays the same draws takes the same actions."""
    if rng.random() < epsilon:
        return int(rng.integers(n_actions))
    with torch.inference_mode():
        return int(q_net(torch.from_numpy(obs).unsqueeze(0)).argmax(dim=1))
