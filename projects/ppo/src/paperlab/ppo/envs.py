"""Vectorised environments behind one small torch interface.

``make_vec_env(cfg)`` returns an object with ``num_envs``, ``obs_dim``, ``act_dim``,
``action_low``/``action_high`` (tensors), ``reset(seed) -> obs`` and
``step(action) -> Step(obs, reward, terminated, truncated, final_obs)``; every array is a torch
tensor with a leading ``num_envs`` axis. Finished environments reset themselves inside ``step``:
``obs`` is then the first observation of the next episode and ``final_obs`` the last one of the
finished episode (needed to bootstrap a time-limit truncation); elsewhere the two are equal.

Two implementations:

- :class:`GymVecEnv`: gymnasium's synchronous vector env (``autoreset_mode=SAME_STEP``), e.g.
  MuJoCo ``InvertedPendulum-v5``; numpy <-> torch copies are tiny at these sizes.
- :class:`BraxVecEnv`: one batched Brax environment, stepped by a jitted JAX function on the whole
  batch and handed to torch through DLPack (``brax.io.torch``) without copies. Brax's bundled torch
  wrapper needs the legacy ``gym`` package; this one does not. Unlike Brax's ``AutoResetWrapper``
  (which returns every env to the *same* first state it had) a finished env here starts a fresh
  episode from a new random initial state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from paperlab.ppo.config import BRAX_PREFIX, Config
from paperlab.shared.config import ConfigError


@dataclass
class Step:
    obs: torch.Tensor  # (N, obs_dim) float32, after auto-reset
    reward: torch.Tensor  # (N,) float32
    terminated: torch.Tensor  # (N,) bool: a terminal state (no bootstrap)
    truncated: torch.Tensor  # (N,) bool: cut by the time limit (bootstrap from final_obs)
    final_obs: torch.Tensor  # (N, obs_dim): last observation of an episode that ended, else = obs


def brax_env_names() -> list[str]:
    from brax import envs

    return sorted(envs._envs)  # the registry brax.envs.get_environment reads


def check_env_id(env_id: str) -> None:
    """Raise ConfigError for an env id that neither gymnasium nor Brax knows."""
    if env_id.startswith(BRAX_PREFIX):
        names = brax_env_names()
        if env_id[len(BRAX_PREFIX) :] not in names:
            raise ConfigError(
                f"unknown Brax environment {env_id!r}; known: {', '.join(BRAX_PREFIX + n for n in names)}"
            )
        return
    import gymnasium as gym

    if env_id not in gym.registry:
        mujoco = sorted(k for k, s in gym.registry.items() if "mujoco" in str(s.entry_point) and k.endswith("-v5"))
        raise ConfigError(
            f"unknown environment {env_id!r}: use a gymnasium id with continuous actions (MuJoCo: {', '.join(mujoco)}) "
            f"or brax/<name> (brax/ant, brax/humanoid, brax/inverted_pendulum, ...)"
        )


def make_vec_env(cfg: Config, num_envs: int | None = None, device: str | None = None):
    check_env_id(cfg.env_id)
    n = num_envs or cfg.num_envs
    if cfg.is_brax:
        return BraxVecEnv(cfg.env_id[len(BRAX_PREFIX) :], n, cfg.episode_length, cfg.brax_backend, device or cfg.device)
    return GymVecEnv(cfg.env_id, n)


class GymVecEnv:
    def __init__(self, env_id: str, num_envs: int, render_mode: str | None = None):
        import gymnasium as gym

        self.env = gym.make_vec(
            env_id,
            num_envs=num_envs,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
            render_mode=render_mode,
        )
        space = self.env.single_action_space
        if not isinstance(space, gym.spaces.Box):
            self.env.close()
            raise ConfigError(
                f"{env_id} has a {type(space).__name__} action space; this PPO needs continuous (Box) actions"
            )
        self.num_envs = num_envs
        self.obs_dim = int(np.prod(self.env.single_observation_space.shape))
        self.act_dim = int(np.prod(space.shape))
        self.action_low = torch.as_tensor(space.low, dtype=torch.float32)
        self.action_high = torch.as_tensor(space.high, dtype=torch.float32)

    @staticmethod
    def _t(x) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x), dtype=torch.float32)

    def reset(self, seed: int) -> torch.Tensor:
        obs, _ = self.env.reset(seed=seed)
        self.env.action_space.seed(seed)
        return self._t(obs).reshape(self.num_envs, -1)

    def step(self, action: torch.Tensor) -> Step:
        a = torch.clamp(action, self.action_low, self.action_high).numpy()
        obs, reward, term, trunc, info = self.env.step(a)
        obs_t = self._t(obs).reshape(self.num_envs, -1)
        final = obs_t
        if "_final_obs" in info and info["_final_obs"].any():
            final = obs_t.clone()
            for i in np.flatnonzero(info["_final_obs"]):
                final[i] = self._t(info["final_obs"][i]).reshape(-1)
        return Step(obs_t, self._t(reward), torch.as_tensor(term), torch.as_tensor(trunc), final)

    def render(self) -> np.ndarray:
        return self.env.render()

    def close(self) -> None:
        self.env.close()


class BraxVecEnv:
    def __init__(self, name: str, num_envs: int, episode_length: int, backend: str, device: str = "cpu"):
        import jax
        import jax.numpy as jnp
        from brax import envs
        from brax.envs.wrappers.training import EpisodeWrapper

        self.name, self.num_envs, self.device = name, num_envs, device
        base = envs.get_environment(name, backend=backend)
        env = EpisodeWrapper(base, episode_length, action_repeat=1)
        self.sys = base.sys
        v_reset, v_step = jax.vmap(env.reset), jax.vmap(env.step)

        def reset(key):
            return v_reset(jax.random.split(key, num_envs))

        def step(state, action, key):
            nstate = v_step(state, action)
            done = nstate.done > 0
            truncated = nstate.info["truncation"] > 0
            final_obs, reward = nstate.obs, nstate.reward
            fresh = v_reset(jax.random.split(key, num_envs))  # new random starts for the finished envs

            def pick(new, old):
                mask = done.reshape(done.shape + (1,) * (old.ndim - 1))
                return jnp.where(mask, new, old).astype(old.dtype)

            nstate = jax.tree.map(pick, fresh, nstate)
            return nstate, nstate.obs, reward, done & ~truncated, truncated, final_obs

        self._reset, self._step = jax.jit(reset), jax.jit(step)
        self._jax, self._state, self._key = jax, None, None
        self.obs_dim = int(base.observation_size)
        self.act_dim = int(base.action_size)
        self.action_low = -torch.ones(self.act_dim)
        self.action_high = torch.ones(self.act_dim)

    def _to_torch(self, x) -> torch.Tensor:
        from brax.io.torch import jax_to_torch

        return jax_to_torch(x, device=self.device)

    def reset(self, seed: int) -> torch.Tensor:
        self._key, sub = self._jax.random.split(self._jax.random.PRNGKey(seed))
        self._state = self._reset(sub)
        return self._to_torch(self._state.obs).float()

    def step(self, action: torch.Tensor) -> Step:
        from brax.io.torch import torch_to_jax

        a = torch_to_jax(torch.clamp(action, -1.0, 1.0).contiguous())
        self._key, sub = self._jax.random.split(self._key)
        self._state, obs, reward, term, trunc, final = self._step(self._state, a, sub)
        t = self._to_torch
        return Step(t(obs).float(), t(reward).float(), t(term).bool(), t(trunc).bool(), t(final).float())

    def close(self) -> None:
        self._state = None
