"""End to end: a short run learns, checkpoints resume, bad input stops with a clear message."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from paperlab.ppo.config import Config
from paperlab.ppo.train import Evaluator, NonFiniteError, build_agent, train
from paperlab.shared.config import ConfigError, load_config
from paperlab.shared.runlog import read_metrics

FAST = ["env_id=InvertedPendulum-v5", "num_envs=8", "num_steps=128", "num_minibatches=4", "update_epochs=10",
        "eval_every=0", "checkpoint_every=100000"]  # fmt: skip


def _cfg(tmp_path, *overrides):
    return load_config(Config, None, [*FAST, f"run_dir={tmp_path / 'run'}", *overrides])


@pytest.mark.parametrize("algo", ["ppo", "ppo-ewma"])
def test_short_run_beats_the_initial_policy(tmp_path, algo):
    cfg = _cfg(tmp_path, f"algo={algo}", "total_steps=12288", "seed=3")
    evaluator = Evaluator(cfg, 10)
    torch.manual_seed(cfg.seed)
    before = evaluator(build_agent(cfg, 4, 1), None, seed=123).mean()  # untrained policy, raw observations
    summary = train(cfg)
    model = torch.load(tmp_path / "run" / "model.pt", weights_only=False)
    agent = build_agent(cfg, 4, 1)
    agent.load_state_dict(model["agent"])
    from paperlab.ppo.core import RunningMeanStd

    rms = RunningMeanStd((4,))
    rms.load_state_dict(model["obs_rms"])
    after = evaluator(agent, rms, seed=123).mean()
    assert summary["steps"] == 12288
    assert after > max(3 * before, 60.0), (before, after)
    rows = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "pg_loss" in r]
    assert len(rows) == 12 and rows[-1]["train_return"] > rows[0]["train_return"]


def test_resume_continues_from_the_checkpoint(tmp_path):
    cfg = _cfg(tmp_path, "total_steps=2048", "algo=ppo-ewma")
    train(cfg)
    ck1 = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    with pytest.raises(ConfigError, match="--resume"):  # a fresh run must not overwrite a checkpoint
        train(cfg)
    cfg2 = _cfg(tmp_path, "total_steps=4096", "algo=ppo-ewma")
    summary = train(cfg2, resume=True)
    ck2 = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert ck1["state"]["iteration"] == 2 and ck2["state"]["iteration"] == 4 and summary["steps"] == 4096
    assert ck2["ewma"]["total_weight"] > ck1["ewma"]["total_weight"]  # the EWMA kept its history
    assert ck2["obs_rms"]["count"] > ck1["obs_rms"]["count"]
    steps = [r["step"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "pg_loss" in r]
    assert steps == [1024, 2048, 3072, 4096]
    # the optimizer state came back: Adam's step count went on from the first run's
    assert ck2["opt"]["state"][0]["step"] == 2 * ck1["opt"]["state"][0]["step"]
    with pytest.raises(ConfigError, match="no checkpoint"):
        train(_cfg(tmp_path, "run_dir=" + str(tmp_path / "none")), resume=True)


def test_resume_refuses_a_checkpoint_of_another_action_space(tmp_path):
    train(_cfg(tmp_path, "total_steps=1024"))
    other = _cfg(tmp_path, "total_steps=2048", "env_id=Reacher-v5")  # 2 actions instead of 1
    with pytest.raises(ConfigError, match="actions 1.*actions 2"):
        train(other, resume=True)


class _NaNRewardEnv(gym.Env):
    observation_space = gym.spaces.Box(-1, 1, (2,), np.float32)
    action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    def __init__(self, render_mode=None):
        self.render_mode = render_mode

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        reward = float("nan") if self.t == 5 else 0.0
        return np.zeros(2, np.float32), reward, False, False, {}


def test_nan_reward_stops_with_the_step_and_the_quantity(tmp_path):
    gym.register("paperlab-test/NaNReward-v0", entry_point=_NaNRewardEnv, max_episode_steps=50)
    cfg = _cfg(tmp_path, "env_id=paperlab-test/NaNReward-v0", "num_envs=2", "total_steps=1024")
    with pytest.raises(NonFiniteError, match=r"non-finite reward at env step 10 \(iteration 0\)"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_summary_is_written(tmp_path):
    train(_cfg(tmp_path, "total_steps=1024", "eval_every=1024", "eval_episodes=2"))
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 1024 and summary["last_eval"] is not None
