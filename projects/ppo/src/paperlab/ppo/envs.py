"""Vectorised environments behind one small numpy interface.

``make_vec_env(cfg)`` returns an object with ``num_envs``, ``obs_dim``, ``act_dim``,
``action_low``/``action_high``, ``reset(seed) -> obs``, ``step(action) -> Step(obs, reward,
terminated, truncated, final_obs)`` and ``get_state()``/``set_state(state)``; every array is a numpy
array with a leading ``num_envs`` axis (float32 observations and rewards, bool flags). Finished
environments reset themselves inside ``step``: ``obs`` is then the first observation of the next
episode and ``final_obs`` the last one of the finished episode (needed to bootstrap a time-limit
truncation); elsewhere the two are equal. ``get_state`` captures everything a resumed run needs to
continue the same episodes: the simulator state and each environment's random generator.

Two implementations:

- :class:`GymVecEnv`: gymnasium's synchronous vector env (``autoreset_mode=SAME_STEP``), e.g.
  MuJoCo ``InvertedPendulum-v5``, stepped env by env (the same semantics, less overhead); its
  state is ``mj_getState(mjSTATE_INTEGRATION)`` (time, positions, velocities, actuator state,
  solver warm start, ...) of each environment, its step counter and its ``np_random``.
- :class:`BraxVecEnv`: one batched Brax environment, stepped by a jitted JAX function on the whole
  batch; its state is the Brax state pytree and the JAX key. Unlike Brax's ``AutoResetWrapper``
  (which returns every env to the *same* first state it had) a finished env here starts a fresh
  episode from a new random initial state.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass

import numpy as np

from paperlab.ppo.config import BRAX_PREFIX, Config
from paperlab.shared.config import ConfigError


@dataclass
class Step:
    obs: np.ndarray  # (N, obs_dim) float32, after auto-reset
    reward: np.ndarray  # (N,) float32
    terminated: np.ndarray  # (N,) bool: a terminal state (no bootstrap)
    truncated: np.ndarray  # (N,) bool: cut by the time limit (bootstrap from final_obs)
    final_obs: np.ndarray  # (N, obs_dim): last observation of an episode that ended, else = obs


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


def make_vec_env(cfg: Config, num_envs: int | None = None):
    check_env_id(cfg.env_id)
    n = num_envs or cfg.num_envs
    if cfg.is_brax:
        return BraxVecEnv(cfg.env_id[len(BRAX_PREFIX) :], n, cfg.episode_length, cfg.brax_backend)
    return GymVecEnv(cfg.env_id, n)


def _time_limit(env):
    """The TimeLimit wrapper around one of gymnasium's envs (None if it has none)."""
    import gymnasium as gym

    while isinstance(env, gym.Wrapper):
        if isinstance(env, gym.wrappers.TimeLimit):
            return env
        env = env.env
    return None


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
        self.action_low = space.low.astype(np.float32)
        self.action_high = space.high.astype(np.float32)

    def reset(self, seed: int) -> np.ndarray:
        obs, _ = self.env.reset(seed=seed)
        self.env.action_space.seed(seed)
        return obs.astype(np.float32).reshape(self.num_envs, -1)

    def step(self, action: np.ndarray) -> Step:
        """Step every env; a finished one is reset at once (what ``SyncVectorEnv``'s SAME_STEP
        autoreset does, without its per-step info merging and observation deep copy)."""
        a = np.clip(action, self.action_low, self.action_high)
        n = self.num_envs
        obs = np.empty((n, self.obs_dim), np.float32)
        reward = np.empty(n, np.float32)
        term, trunc = np.zeros(n, bool), np.zeros(n, bool)
        final = obs
        for i, env in enumerate(self.env.envs):
            o, r, te, tr, _ = env.step(a[i])
            reward[i], term[i], trunc[i] = r, te, tr
            if te or tr:
                if final is obs:
                    final = np.empty_like(obs)
                final[i] = np.asarray(o, dtype=np.float32).reshape(-1)
                o, _ = env.reset()
            obs[i] = np.asarray(o, dtype=np.float32).reshape(-1)
        if final is not obs:
            done = term | trunc
            final[~done] = obs[~done]
        return Step(obs, reward, term, trunc, final)

    def get_state(self) -> list[dict]:
        """Per environment: simulator state (MuJoCo) or a pickle of the env, step counter, ``np_random``."""
        states = []
        for env in self.env.envs:
            u, limit = env.unwrapped, _time_limit(env)
            st = {"np_random": u.np_random.bit_generator.state,
                  "elapsed_steps": limit._elapsed_steps if limit is not None else None}  # fmt: skip
            if hasattr(u, "model") and hasattr(u, "data"):  # MuJoCo
                import mujoco

                spec = mujoco.mjtState.mjSTATE_INTEGRATION
                st["mujoco"] = np.empty(mujoco.mj_stateSize(u.model, spec))
                mujoco.mj_getState(u.model, u.data, st["mujoco"], spec)
            else:
                st["pickle"] = pickle.dumps({k: v for k, v in vars(u).items() if not k.startswith("_np_random")})
            states.append(st)
        return states

    def set_state(self, states: list[dict]) -> None:
        if len(states) != self.num_envs:
            raise ValueError(f"the saved environment state has {len(states)} envs, this run {self.num_envs}")
        for env, st in zip(self.env.envs, states, strict=True):
            u, limit = env.unwrapped, _time_limit(env)
            u.np_random.bit_generator.state = st["np_random"]
            if limit is not None:
                limit._elapsed_steps = st["elapsed_steps"]
            if "mujoco" in st:
                import mujoco

                mujoco.mj_setState(u.model, u.data, st["mujoco"], mujoco.mjtState.mjSTATE_INTEGRATION)
            else:
                vars(u).update(pickle.loads(st["pickle"]))

    def render(self) -> np.ndarray:
        return self.env.render()

    def close(self) -> None:
        self.env.close()


class BraxVecEnv:
    def __init__(self, name: str, num_envs: int, episode_length: int, backend: str):
        import jax
        import jax.numpy as jnp
        from brax import envs
        from brax.envs.wrappers.training import EpisodeWrapper

        self.name, self.num_envs = name, num_envs
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
        self.action_low = -np.ones(self.act_dim, dtype=np.float32)
        self.action_high = np.ones(self.act_dim, dtype=np.float32)

    def reset(self, seed: int) -> np.ndarray:
        self._key, sub = self._jax.random.split(self._jax.random.PRNGKey(seed))
        self._state = self._reset(sub)
        return np.array(self._state.obs, dtype=np.float32)

    def step(self, action: np.ndarray) -> Step:
        a = self._jax.numpy.asarray(np.clip(action, -1.0, 1.0), dtype=self._jax.numpy.float32)
        self._key, sub = self._jax.random.split(self._key)
        self._state, obs, reward, term, trunc, final = self._step(self._state, a, sub)
        f32 = lambda x: np.array(x, dtype=np.float32)  # noqa: E731  (a writable copy on the host)
        return Step(f32(obs), f32(reward), np.array(term, dtype=bool), np.array(trunc, dtype=bool), f32(final))

    def get_state(self) -> dict:
        """The Brax state pytree (as numpy arrays) and the JAX key: the whole batch, mid-episode."""
        return {"state": self._jax.device_get(self._state), "key": np.asarray(self._key)}

    def set_state(self, st: dict) -> None:
        jnp = self._jax.numpy
        self._state = self._jax.tree.map(jnp.asarray, st["state"])
        self._key = jnp.asarray(st["key"])

    def close(self) -> None:
        self._state = None
