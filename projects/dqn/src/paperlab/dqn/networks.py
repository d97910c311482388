"""Q-networks: an MLP for vector observations, and the MinAtar paper's network for 10x10xC images."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


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

    def __init__(self, in_channels: int, n_actions: int, channels: int = 16, hidden: int = 128, size: int = 10):
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


def epsilon_greedy(q_net: nn.Module, obs: np.ndarray, epsilon: float, rng: np.random.Generator, n_actions: int) -> int:
    """A uniformly random action with probability ``epsilon``, else argmax_a Q(obs, a).

    The generator is consumed the same way every call (one draw, plus one more when exploring), so
    that a run that replays the same draws takes the same actions."""
    if rng.random() < epsilon:
        return int(rng.integers(n_actions))
    with torch.inference_mode():
        return int(q_net(torch.from_numpy(obs).unsqueeze(0)).argmax(dim=1))


# ------------------------------------------------------------------ N networks as one computation
def stack_params(nets: list[nn.Module]) -> dict[str, torch.Tensor]:
    """The parameters of N networks of one architecture, stacked on a new leading axis:
    ``{name: (N, *shape)}``, leaf tensors that require grad. Agent k's slice is ``p[name][k]``."""
    states = [net.state_dict() for net in nets]
    return {name: torch.stack([s[name] for s in states]).detach().requires_grad_(True) for name in states[0]}


def unstack_params(params: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
    """Agent k's state dict, loadable into the solo network (``make_q_network``)."""
    return {name: p[k].detach().clone() for name, p in params.items()}


def _linear(params, name: str, x_NxBxD: torch.Tensor) -> torch.Tensor:
    """N independent linear layers: ``x[k] @ W[k].T + b[k]`` as one batched matrix product."""
    w, b = params[f"{name}.weight"], params[f"{name}.bias"]
    return torch.baddbmm(b.unsqueeze(1), x_NxBxD, w.transpose(1, 2))


def batched_q_values(params: dict[str, torch.Tensor], obs: torch.Tensor) -> torch.Tensor:
    """Q-values of N networks (stacked ``params``, see :func:`stack_params`) on their own batches:
    obs (N, B, *obs_shape) -> Q (N, B, A). Network k sees only ``obs[k]``; its output equals the solo
    network's ``make_q_network(...)(obs[k])`` up to float rounding (the products are summed in
    another order in ``baddbmm``; the grouped convolution matches the solo one bit for bit). One call
    per layer for all N networks: the MinAtar 3x3 convolution is one grouped convolution, the
    dense layers are ``baddbmm``.
    """
    n, b = obs.shape[:2]
    x = obs.float()
    if "conv.weight" in params:  # MinAtarQNetwork: conv -> relu -> fc -> relu -> out
        conv_w = params["conv.weight"]  # (N, O, C, k, k)
        # N convolutions as one grouped convolution: the N agents' channels side by side, group k
        # seeing only agent k's input channels and weights
        x = x.transpose(0, 1).reshape(b, -1, *x.shape[-2:])  # (B, N*C, H, W)
        h = F.conv2d(x, conv_w.flatten(0, 1), params["conv.bias"].flatten(), groups=n)  # (B, N*O, H', W')
        h = torch.relu(h).reshape(b, n, -1).transpose(0, 1)  # (N, B, O*H'*W'): the solo flatten order
        h = torch.relu(_linear(params, "fc", h))
        return _linear(params, "out", h)
    layers = sorted({int(name.split(".")[1]) for name in params if name.startswith("net.")})  # MLPQNetwork
    h = x
    for i, layer in enumerate(layers):
        h = _linear(params, f"net.{layer}", h)
        if i < len(layers) - 1:
            h = torch.relu(h)
    return h
