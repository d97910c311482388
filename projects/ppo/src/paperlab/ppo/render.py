"""Render one episode of a trained policy (deterministic) to a GIF.

    MUJOCO_GL=egl python -m paperlab.ppo.render runs/ppo/InvertedPendulum-v5/ppo-seed1/model.pt --out ip.gif

MuJoCo (gymnasium) envs render with ``render_mode="rgb_array"``; Brax envs are rolled out
unbatched and drawn with ``brax.io.image.render_array``. Off-screen rendering needs
``MUJOCO_GL=egl`` (the Makefile sets it).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch

from paperlab.ppo.evaluate import load_policy
from paperlab.shared.config import ConfigError
from paperlab.shared.gif import save_gif


def _policy(agent, rms, clip):
    def act(obs: np.ndarray) -> np.ndarray:
        x = torch.tensor(np.array(obs), dtype=torch.float32)[None]
        if rms is not None:
            x = rms.normalize(x, clip)
        action, _, _ = agent.act(x, deterministic=True)
        return action[0].numpy()

    return act


def gym_frames(cfg, act, max_steps: int, seed: int, every: int) -> tuple[list[np.ndarray], float]:
    import gymnasium as gym

    env = gym.make(cfg.env_id, render_mode="rgb_array")
    obs, _ = env.reset(seed=seed)
    frames, total = [env.render()], 0.0
    for t in range(max_steps):
        a = np.clip(act(obs), env.action_space.low, env.action_space.high)
        obs, r, term, trunc, _ = env.step(a)
        total += float(r)
        if (t + 1) % every == 0:
            frames.append(env.render())
        if term or trunc:
            break
    env.close()
    return frames, total


def brax_frames(cfg, act, max_steps: int, seed: int, every: int) -> tuple[list[np.ndarray], float]:
    import jax
    from brax import envs
    from brax.io import image

    env = envs.get_environment(cfg.env_id[len("brax/") :], backend=cfg.brax_backend)
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    state = reset(jax.random.PRNGKey(seed))
    states, total = [state.pipeline_state], 0.0
    for t in range(max_steps):
        a = np.clip(act(np.asarray(state.obs)), -1.0, 1.0)
        state = step(state, jax.numpy.asarray(a))
        total += float(state.reward)
        if (t + 1) % every == 0:
            states.append(state.pipeline_state)
        if float(state.done) > 0:
            break
    frames = image.render_array(env.sys, states, width=320, height=240)
    return [np.asarray(f) for f in frames], total


def render(model: str | Path, out: str | Path, max_steps: int = 1000, every: int = 4, fps: int = 25, seed: int = 0):
    os.environ.setdefault("MUJOCO_GL", "egl")
    cfg, agent, rms = load_policy(model)
    act = _policy(agent, rms, cfg.obs_clip)
    fn = brax_frames if cfg.is_brax else gym_frames
    frames, total = fn(cfg, act, max_steps, seed, every)
    save_gif(frames, out, fps=fps)
    return len(frames), total


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--out", required=True)
    p.add_argument("--max-steps", type=int, default=1000)
    p.add_argument("--every", type=int, default=4, help="keep one frame in this many env steps")
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        n, total = render(args.model, args.out, args.max_steps, args.every, args.fps, args.seed)
    except ConfigError as e:
        raise SystemExit(f"error: {e}") from None
    print(f"wrote {args.out}: {n} frames, episode return {total:.1f}")


if __name__ == "__main__":
    main()
