"""The environments: gymnasium CartPole-v1 and the five MinAtar games, behind one small interface.

Every env here has ``n_actions``, ``obs_shape``, ``obs_dtype``, ``reset(seed=None) -> obs``,
``step(action) -> (obs, reward, terminated, truncated)`` and ``render() -> HxWx3 uint8``.
``terminated`` is a true end of the episode (no bootstrapping); ``truncated`` is a time limit
(the target still bootstraps). MinAtar runs through its raw ``minatar.Environment`` API: the
gymnasium wrapper adds nothing DQN needs and costs a large share of the frame budget.
"""

from __future__ import annotations

import os

import numpy as np

MINATAR_GAMES = {  # env-id name -> minatar module name
    "Asterix": "asterix",
    "Breakout": "breakout",
    "Freeway": "freeway",
    "Seaquest": "seaquest",
    "SpaceInvaders": "space_invaders",
}
GYM_ENVS = ("CartPole-v1",)


def valid_env_ids() -> list[str]:
    ids = list(GYM_ENVS)
    for name in MINATAR_GAMES:
        ids += [f"MinAtar/{name}-v0", f"MinAtar/{name}-v1"]
    return ids


def check_env_id(env_id: str) -> None:
    if env_id not in valid_env_ids():
        raise ValueError(
            f"unknown env_id {env_id!r}; valid ids: {', '.join(valid_env_ids())} "
            "(MinAtar -v0: all 6 actions, -v1: the game's minimal action set)"
        )


class CartPole:
    """gymnasium ``CartPole-v1`` (500-step time limit) with float32 observations."""

    def __init__(self, render: bool = False):
        import gymnasium as gym

        if render:
            # rgb_array rendering draws with pygame off screen. Without these, SDL probes the
            # display (Wayland) and sound servers at pygame.init() and, on a machine without a
            # session, prints "error: XDG_RUNTIME_DIR is invalid or not set in the environment".
            os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
            os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        self.env = gym.make("CartPole-v1", render_mode="rgb_array" if render else None)
        self.n_actions = int(self.env.action_space.n)
        self.obs_shape = tuple(self.env.observation_space.shape)
        self.obs_dtype = np.float32

    def reset(self, seed: int | None = None) -> np.ndarray:
        obs, _ = self.env.reset(seed=seed)
        return obs.astype(np.float32)

    def step(self, action: int):
        obs, reward, terminated, truncated, _ = self.env.step(int(action))
        return obs.astype(np.float32), float(reward), bool(terminated), bool(truncated)

    def render(self) -> np.ndarray:
        return self.env.render()


class MinAtar:
    """A MinAtar game with the paper's settings (sticky actions 0.1, difficulty ramping).

    Observations are ``(C, 10, 10)`` uint8 (0/1) channel images. With ``minimal_actions`` the
    agent picks among the game's minimal action set (gymnasium ``-v1``); otherwise among all six
    (``-v0``, as in the paper).
    """

    def __init__(
        self, game: str, sticky_action_prob: float = 0.1, difficulty_ramping: bool = True, minimal_actions: bool = False
    ):
        from minatar import Environment

        self.game = game
        self.env = Environment(
            MINATAR_GAMES[game], sticky_action_prob=sticky_action_prob, difficulty_ramping=difficulty_ramping
        )
        self.actions = list(self.env.minimal_action_set()) if minimal_actions else list(range(self.env.num_actions()))
        self.n_actions = len(self.actions)
        h, w, c = self.env.state_shape()
        self.obs_shape = (c, h, w)
        self.obs_dtype = np.uint8

    def _obs(self) -> np.ndarray:
        return np.ascontiguousarray(self.env.state().transpose(2, 0, 1), dtype=np.uint8)

    def reset(self, seed: int | None = None) -> np.ndarray:
        if seed is not None:
            self.env.seed(seed)
        self.env.reset()
        return self._obs()

    def step(self, action: int):
        reward, terminal = self.env.act(self.actions[int(action)])
        return self._obs(), float(reward), bool(terminal), False

    def render(self) -> np.ndarray:
        """The state as a 10x10 RGB image in MinAtar's own colours (cubehelix, black background)."""
        import seaborn as sns

        state = self.env.state()
        c = state.shape[2]
        palette = np.array([(0.0, 0.0, 0.0)] + list(sns.color_palette("cubehelix", c)))
        index = np.amax(state * (np.arange(c) + 1)[None, None, :], axis=2)
        return (palette[index] * 255).astype(np.uint8)


def make_env(env_id: str, sticky_action_prob: float = 0.1, difficulty_ramping: bool = True, render: bool = False):
    """Build the env named by ``env_id`` (see :func:`valid_env_ids`)."""
    check_env_id(env_id)
    if env_id == "CartPole-v1":
        return CartPole(render=render)
    name, version = env_id.removeprefix("MinAtar/").rsplit("-", 1)
    return MinAtar(name, sticky_action_prob, difficulty_ramping, minimal_actions=(version == "v1"))
