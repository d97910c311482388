"""Evaluate a trained policy (deterministic: the Gaussian's mean) on fresh episodes.

python -m paperlab.ppo.evaluate runs/ppo/InvertedPendulum-v5/ppo-seed1/model.pt --episodes 10
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from paperlab.ppo.config import Config
from paperlab.ppo.core import RunningMeanStd
from paperlab.ppo.train import Evaluator, build_agent
from paperlab.shared.config import ConfigError, load_config


def load_policy(path: str | Path):
    """(config, agent, observation statistics) from a ``model.pt`` written by training."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no model file at {path} (training writes <run_dir>/model.pt)")
    blob = torch.load(path, weights_only=False)
    d = dict(blob["config"])
    cfg = load_config(Config, None, [f"{k}={json.dumps(v)}" for k, v in d.items() if k != "run_dir"])
    cfg.run_dir = d["run_dir"]
    agent = build_agent(cfg, blob["obs_dim"], blob["act_dim"])
    agent.load_state_dict(blob["agent"])
    agent.eval()
    rms = None
    if blob["obs_rms"] is not None:
        rms = RunningMeanStd((blob["obs_dim"],))
        rms.load_state_dict(blob["obs_rms"])
    return cfg, agent, rms


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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model.pt of a run")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--out", default=None, help="write the result as JSON here")
    args = p.parse_args(argv)
    try:
        result = evaluate(args.model, args.episodes, args.seed)
    except ConfigError as e:
        raise SystemExit(f"error: {e}") from None
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
