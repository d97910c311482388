"""Render a trained agent to a GIF.

python -m paperlab.dqn.render runs/dqn/cartpole/dqn-seed1/model.pt --out cartpole.gif
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from paperlab.dqn.checkpoint import load_model
from paperlab.dqn.envs import make_env
from paperlab.dqn.networks import epsilon_greedy
from paperlab.shared.cli import run_command
from paperlab.shared.gif import save_gif


def rollout_frames(
    q_net,
    env_id: str,
    max_frames: int,
    epsilon: float = 0.0,
    seed: int = 0,
    sticky_action_prob: float = 0.1,
    difficulty_ramping: bool = True,
):
    """Frames of greedy (epsilon) play, starting a new episode when one ends, up to ``max_frames``.
    Returns (frames, episode returns finished within them)."""
    env = make_env(env_id, sticky_action_prob, difficulty_ramping, render=True)
    rng = np.random.default_rng(seed)
    obs = env.reset(seed=seed)
    frames, returns, total = [env.render()], [], 0.0
    with torch.inference_mode():
        while len(frames) < max_frames:
            action = epsilon_greedy(q_net, obs, epsilon, rng, env.n_actions)
            obs, reward, terminated, truncated = env.step(action)
            total += reward
            frames.append(env.render())
            if terminated or truncated:
                returns.append(total)
                total = 0.0
                obs = env.reset()
                frames.append(env.render())
    return frames[:max_frames], returns


def _main(argv=None) -> None:
    p = argparse.ArgumentParser(description="GIF of a trained DQN agent.")
    p.add_argument("checkpoint")
    p.add_argument("--out", required=True)
    p.add_argument("--frames", type=int, default=300, help="frame cap (keeps the GIF small)")
    p.add_argument("--fps", type=float, default=None, help="default: 50 for CartPole (real time), 10 for MinAtar")
    p.add_argument("--scale", type=int, default=None, help="integer upscaling; default 1 / 16 (MinAtar)")
    p.add_argument("--epsilon", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.frames < 1:
        raise ValueError(f"--frames must be at least 1, got {args.frames}")
    q_net, meta = load_model(args.checkpoint)
    minatar = meta["env_id"].startswith("MinAtar/")
    frames, returns = rollout_frames(
        q_net,
        meta["env_id"],
        args.frames,
        args.epsilon,
        args.seed,
        meta["config"]["sticky_action_prob"],
        meta["config"]["difficulty_ramping"],
    )
    if not minatar:  # CartPole renders 600x400: halve it to keep the file small
        frames = [f[::2, ::2] for f in frames]
    n = save_gif(frames, args.out, fps=args.fps or (10 if minatar else 50), scale=args.scale or (16 if minatar else 1))
    print(f"wrote {args.out}: {n} frames; episodes finished in it: {returns}")


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
