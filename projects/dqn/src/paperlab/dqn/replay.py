"""A preallocated circular replay buffer (numpy storage, uniform sampling into torch tensors)."""

from __future__ import annotations

import numpy as np
import torch


class ReplayBuffer:
    """Stores ``capacity`` transitions ``(obs, action, reward, next_obs, terminated)``.

    When full, the oldest transition is overwritten. ``terminated`` marks true episode ends only:
    a time-limit truncation is stored as not terminated, so its target still bootstraps.
    """

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype=np.float32):
        self.capacity = int(capacity)
        self.obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.pos = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs, action: int, reward: float, next_obs, terminated: bool) -> None:
        i = self.pos
        self.obs[i] = obs
        self.next_obs[i] = next_obs
        self.actions[i] = action
        self.rewards[i] = reward
        self.terminated[i] = terminated
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample_indices(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        return rng.integers(0, self.size, size=batch_size)

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        idx = self.sample_indices(batch_size, rng)
        return {
            "obs": torch.from_numpy(self.obs[idx]),
            "actions": torch.from_numpy(self.actions[idx]),
            "rewards": torch.from_numpy(self.rewards[idx]),
            "next_obs": torch.from_numpy(self.next_obs[idx]),
            "terminated": torch.from_numpy(self.terminated[idx]),
        }

    def state_dict(self) -> dict[str, np.ndarray]:
        n = self.size
        return {
            "obs": self.obs[:n],
            "next_obs": self.next_obs[:n],
            "actions": self.actions[:n],
            "rewards": self.rewards[:n],
            "terminated": self.terminated[:n],
            "pos": np.array(self.pos),
            "size": np.array(self.size),
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        n = int(state["size"])
        if state["obs"].shape[1:] != self.obs.shape[1:]:
            raise ValueError(
                f"replay observations of shape {state['obs'].shape[1:]} do not fit a buffer "
                f"of shape {self.obs.shape[1:]}"
            )
        if n > self.capacity:
            raise ValueError(f"saved replay holds {n} transitions, more than the capacity {self.capacity}")
        for key in ("obs", "next_obs", "actions", "rewards", "terminated"):
            getattr(self, key)[:n] = state[key]
        self.size, self.pos = n, int(state["pos"])


class BatchedReplayBuffer:
    """N independent replay buffers that fill in lockstep (one transition per agent per step).

    Storage is ``(N, capacity, ...)``. Agent k samples its own indices with its own generator,
    exactly as :meth:`ReplayBuffer.sample_indices` does, so its batches are those of a solo run.
    """

    def __init__(self, n_agents: int, capacity: int, obs_shape: tuple[int, ...], obs_dtype=np.float32):
        self.n_agents, self.capacity = int(n_agents), int(capacity)
        self.obs = np.zeros((n_agents, capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros((n_agents, capacity, *obs_shape), dtype=obs_dtype)
        self.actions = np.zeros((n_agents, capacity), dtype=np.int64)
        self.rewards = np.zeros((n_agents, capacity), dtype=np.float32)
        self.terminated = np.zeros((n_agents, capacity), dtype=np.float32)
        self.pos = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs_N, actions_N, rewards_N, next_obs_N, terminated_N) -> None:
        """One transition for every agent (arrays with a leading axis of N)."""
        i = self.pos
        self.obs[:, i] = obs_N
        self.next_obs[:, i] = next_obs_N
        self.actions[:, i] = actions_N
        self.rewards[:, i] = rewards_N
        self.terminated[:, i] = terminated_N
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rngs: list[np.random.Generator]) -> dict[str, torch.Tensor]:
        """A batch per agent, ``(N, batch_size, ...)``; agent k's indices come from ``rngs[k]``."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = np.stack([rng.integers(0, self.size, size=batch_size) for rng in rngs])  # (N, B)
        agent = np.arange(self.n_agents)[:, None]
        return {
            "obs": torch.from_numpy(self.obs[agent, idx]),
            "actions": torch.from_numpy(self.actions[agent, idx]),
            "rewards": torch.from_numpy(self.rewards[agent, idx]),
            "next_obs": torch.from_numpy(self.next_obs[agent, idx]),
            "terminated": torch.from_numpy(self.terminated[agent, idx]),
        }

    def state_dict(self) -> dict[str, np.ndarray]:
        n = self.size
        return {
            "obs": self.obs[:, :n],
            "next_obs": self.next_obs[:, :n],
            "actions": self.actions[:, :n],
            "rewards": self.rewards[:, :n],
            "terminated": self.terminated[:, :n],
            "pos": np.array(self.pos),
            "size": np.array(self.size),
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        n = int(state["size"])
        if state["obs"].shape[0] != self.n_agents or state["obs"].shape[2:] != self.obs.shape[2:]:
            raise ValueError(
                f"saved replay of shape {state['obs'].shape} does not fit {self.n_agents} buffers "
                f"of observations {self.obs.shape[2:]}"
            )
        if n > self.capacity:
            raise ValueError(f"saved replay holds {n} transitions, more than the capacity {self.capacity}")
        for key in ("obs", "next_obs", "actions", "rewards", "terminated"):
            getattr(self, key)[:, :n] = state[key]
        self.size, self.pos = n, int(state["pos"])
