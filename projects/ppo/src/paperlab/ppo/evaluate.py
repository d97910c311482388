"""Evaluate a trained policy (deterministic: the Gaussian's mean) on fresh episodes.

python -m paperlab.ppo.evaluate runs/ppo/InvertedPendulum-v5/ppo-seed1/model.pt --episodes 10
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from paperlab.ppo.agent import ActorCritic
from paperlab.ppo.checkpoint import load_policy
from paperlab.ppo.config import Config
from paperlab.ppo.core import RunningMeanStd
from paperlab.ppo.envs import make_vec_env
from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import run_command


class Evaluator:
    """Deterministic-policy evaluation: ``episodes`` parallel envs, each played to its first episode end."""

    _cache: dict = {}

    def __init__(self, cfg: Config, episodes: int):
        if episodes < 1:
            raise ValueError(f"the number of evaluation episodes must be >= 1, got {episodes}")
        key = (cfg.env_id, cfg.brax_backend, cfg.episode_length, episodes)
        if key not in Evaluator._cache:  # a Brax env compiles once per process
            Evaluator._cache[key] = make_vec_env(cfg, num_envs=episodes)
        self.env, self.episodes = Evaluator._cache[key], episodes

    @torch.inference_mode()
    def __call__(self, agent: ActorCritic, obs_rms: RunningMeanStd | None, seed: int, clip: float = 10.0) -> np.ndarray:
        device = next(agent.parameters()).device
        obs = self.env.reset(seed)
        returns = np.zeros(self.episodes)
        running = np.ones(self.episodes, dtype=bool)
        while running.any():
            x = obs_rms.normalize(obs, clip) if obs_rms is not None else obs
            action = agent.actor.mean(torch.from_numpy(x).to(device)).cpu().numpy()
            step = self.env.step(action)
            returns += step.reward * running
            running &= ~(step.terminated | step.truncated)
            obs = step.obs
        return returns


def evaluate(path: str | Path, episodes: int = 10, seed: int = 12345) -> dict:
    cfg, agent, rms = load_policy(path)
    returns = Evaluator(cfg, episodes)(agent, rms, seed=seed, clip=cfg.obs_clip)
    return {
        "model": str(path),
        "env_id": cfg.env_id,
        "algo": cfg.algo,
        "episodes": episodes,
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "returns": [float(r) for r in returns],
    }


def _main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model.pt of a run (or its checkpoints/last.pt)")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--out", default=None, help="write the result as JSON here")
    args = p.parse_args(argv)
    if args.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {args.episodes}")
    result = evaluate(args.model, args.episodes, args.seed)
    if args.out:
        atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(
        f"{result['env_id']} {result['algo']}: mean return {result['mean_return']:.1f} "
        f"± {result['std_return']:.1f} over {episodes_text(result)}" + (f" -> {args.out}" if args.out else "")
    )
    return result


def episodes_text(result: dict) -> str:
    return f"{result['episodes']} episode{'s' if result['episodes'] != 1 else ''}"


def main(argv=None):
    return run_command(_main, argv)


if __name__ == "__main__":
    main()
