"""End to end: a short run learns, a resumed run equals an uninterrupted one, bad input stops with one line."""

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from paperlab.ppo import evaluate as evaluate_cmd
from paperlab.ppo import train as train_cmd
from paperlab.ppo.agent import build_agent
from paperlab.ppo.checkpoint import load_policy
from paperlab.ppo.config import Config
from paperlab.ppo.evaluate import Evaluator
from paperlab.ppo.train import train
from paperlab.shared.config import ConfigError, load_config
from paperlab.shared.runlog import read_metrics

RESULTS = Path(__file__).resolve().parents[1] / "results"
CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "ppo"
FAST = ["env_id=InvertedPendulum-v5", "num_envs=8", "num_steps=128", "num_minibatches=4", "update_epochs=10",
        "eval_every=0", "checkpoint_every=100000"]  # fmt: skip


def _cfg(tmp_path, *overrides, name="run"):
    return load_config(Config, None, [*FAST, f"run_dir={tmp_path / name}", *overrides])


@pytest.mark.parametrize("algo", ["ppo", "ppo-ewma"])
def test_short_run_beats_the_initial_policy(tmp_path, algo):
    cfg = _cfg(tmp_path, f"algo={algo}", "total_steps=12288", "seed=3")
    evaluator = Evaluator(cfg, 10)
    torch.manual_seed(cfg.seed)
    before = evaluator(build_agent(cfg, 4, 1), None, seed=123).mean()  # untrained policy, raw observations
    summary = train(cfg)
    _, agent, rms = load_policy(tmp_path / "run" / "model.pt")
    after = evaluator(agent, rms, seed=123).mean()
    assert summary["steps"] == 12288 and summary["finished"]
    assert after > max(3 * before, 60.0), (before, after)
    rows = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "pg_loss" in r]
    assert len(rows) == 12 and rows[-1]["train_return"] > rows[0]["train_return"]


def _weights(run: Path) -> dict:
    return torch.load(run / "model.pt", weights_only=False)


def _rows(run: Path) -> list[dict]:
    clock = ("time", "sps", "wall_time")
    return [{k: v for k, v in r.items() if k not in clock} for r in read_metrics(run / "metrics.jsonl")]


@pytest.mark.parametrize("algo", ["ppo", "ppo-ewma"])
def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path, capsys, algo):
    """Stopped after 2 of 4 iterations (as Ctrl-C stops it) and resumed, the run ends bit-exactly where an
    uninterrupted run ends: weights, optimiser, normalisers and every logged number, because the
    environments (MuJoCo state, step counters, np_random) continue mid-episode instead of restarting."""
    extra = [f"algo={algo}", "total_steps=4096", "eval_every=2048", "eval_episodes=2"]
    full = train(_cfg(tmp_path, *extra, name="full"))
    split = _cfg(tmp_path, *extra, name="split")
    first = train(split, stop_after_steps=2048)
    assert first["steps"] == 2048 and not first["finished"]
    assert (tmp_path / "split" / "checkpoints" / "last.pt").exists()
    with pytest.raises(ConfigError, match="--resume"):  # a fresh run must not overwrite the history
        train(split)
    resumed = train(split, resume=True)
    assert "resuming from step 2048" in capsys.readouterr().out
    assert resumed["steps"] == full["steps"] == 4096 and resumed["finished"]
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "split")
    for k in a["agent"]:
        assert torch.equal(a["agent"][k], b["agent"][k]), k
    assert torch.equal(a["obs_rms"]["mean"], b["obs_rms"]["mean"])
    assert _rows(tmp_path / "full") == _rows(tmp_path / "split")
    for key in ("episodes", "train_return_last100", "last_eval"):
        assert full[key] == resumed[key], key
    ca = torch.load(tmp_path / "full" / "checkpoints" / "last.pt", weights_only=False)
    cb = torch.load(tmp_path / "split" / "checkpoints" / "last.pt", weights_only=False)
    assert ca["opt"]["state"][0]["step"] == cb["opt"]["state"][0]["step"]


def test_resume_with_nothing_to_resume_and_a_changed_env_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(_cfg(tmp_path, "total_steps=1024"), resume=True)
    train(_cfg(tmp_path, "total_steps=1024"))
    with pytest.raises(ConfigError, match="env_id: 'InvertedPendulum-v5' in checkpoint.*'Reacher-v5' now"):
        train(_cfg(tmp_path, "total_steps=2048", "env_id=Reacher-v5"), resume=True)
    with pytest.raises(ConfigError, match="seed"):
        train(_cfg(tmp_path, "total_steps=2048", "seed=9"), resume=True)


def test_resume_flag_may_stand_before_the_overrides(tmp_path, capsys):
    run = f"run_dir={tmp_path / 'run'}"
    train_cmd.main([*FAST, run, "total_steps=1024"])
    train_cmd.main(["--resume", *FAST, run, "total_steps=2048", "lr=1e-4"])  # a new lr may be applied
    assert "resuming from step 1024" in capsys.readouterr().out
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 2048


def _exit(fn, argv, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        fn(argv)
    err = capsys.readouterr().err.strip()
    return e.value.code, err


def test_bad_inputs_give_one_line_and_exit_2(tmp_path, capsys):
    dqn_like = tmp_path / "dqn.pt"  # what a DQN model.pt holds: a config and a Q-network, no policy
    torch.save({"config": {"env_id": "CartPole-v1"}, "q_net": {}}, dqn_like)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint at all")
    model = RESULTS / "ip" / "ppo-seed1" / "model.pt"
    cases = [
        (evaluate_cmd.main, [str(dqn_like)], "not a PPO model checkpoint"),
        (evaluate_cmd.main, [str(corrupt)], "not a readable checkpoint"),
        (evaluate_cmd.main, [str(tmp_path / "missing.pt")], "no checkpoint at"),
        (evaluate_cmd.main, [str(model), "--episodes", "0"], "--episodes must be >= 1"),
        (train_cmd.main, [*FAST, f"run_dir={tmp_path / 'r'}", "total_steps=0"], "total_steps must be >= 1"),
        (train_cmd.main, [*FAST, f"run_dir={tmp_path / 'r'}", "no_such_key=1"], "unknown config key"),
    ]
    from paperlab.ppo import brax_ppo
    from paperlab.ppo import render as render_cmd

    cases += [
        (render_cmd.main, [str(dqn_like), "--out", str(tmp_path / "x.gif")], "not a PPO model checkpoint"),
        (brax_ppo.main, ["--config", str(CONFIGS / "brax_ant.yaml"), "--resume"], "cannot resume"),
        (brax_ppo.main, [*FAST, f"run_dir={tmp_path / 'b'}"], "needs a brax/<name> env_id"),
    ]
    for fn, argv, message in cases:
        code, err = _exit(fn, argv, capsys)
        assert code == 2 and err.startswith("error: ") and message in err and "\n" not in err, (argv, err)


def test_committed_models_load_and_evaluate():
    """The committed InvertedPendulum models (saved before checkpoint.py) still load, through config_from_dict."""
    cfg, agent, rms = load_policy(RESULTS / "ip" / "ppo-seed1" / "model.pt")
    assert cfg.env_id == "InvertedPendulum-v5" and rms is not None
    assert Evaluator(cfg, 2)(agent, rms, seed=1).min() == 1000.0


def test_evaluate_and_render_do_not_import_train():
    code = (
        "import sys, paperlab.ppo.evaluate, paperlab.ppo.render, paperlab.ppo.report;"
        "assert 'paperlab.ppo.train' not in sys.modules, 'train imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_default_run_checkpoints_before_it_can_stop():
    """The InvertedPendulum preset stops at its first evaluation of 1000 (20480 steps for the committed
    seeds at the earliest): its checkpoint schedule must come before that."""
    cfg = load_config(Config, CONFIGS / "inverted_pendulum.yaml")
    solved = [json.loads(p.read_text())["solved_step"] for p in (RESULTS / "ip").glob("*/summary.json")]
    assert solved and cfg.checkpoint_every < min(solved)
    for preset in CONFIGS.glob("*.yaml"):
        c = load_config(Config, preset)
        assert c.checkpoint_every < c.total_steps or c.checkpoint_minutes > 0, preset.name


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
    with pytest.raises(FloatingPointError, match=r"non-finite reward=nan at step 10$"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()


def test_summary_has_the_common_keys(tmp_path):
    train(_cfg(tmp_path, "total_steps=1024", "eval_every=1024", "eval_episodes=2"))
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert {"steps", "wall_time_s", "finished", "seed", "device"} <= set(summary)
    assert summary["steps"] == 1024 and summary["finished"] is True and summary["last_eval"] is not None


def test_sigterm_saves_a_checkpoint_and_exits_130_then_resume_finishes(tmp_path):
    """SIGTERM (like Ctrl-C) finishes the iteration, writes checkpoints/last.pt and the summary, exits 130."""
    import os
    import signal
    import time

    run = tmp_path / "run"
    argv = [sys.executable, "-m", "paperlab.ppo.train", *FAST, f"run_dir={run}", "total_steps=10000000"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    metrics = run / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["finished"] is False and summary["steps"] >= 2048
    assert (run / "checkpoints" / "last.pt").exists() and "continue with --resume" in err
    resumed = train(_cfg(tmp_path, f"total_steps={summary['steps'] + 1024}"), resume=True)
    assert resumed["finished"] and resumed["steps"] == summary["steps"] + 1024


def test_clip_grad_norm_matches_torch():
    from paperlab.ppo.train import clip_grad_norm_

    torch.manual_seed(0)
    ps = [torch.nn.Parameter(torch.randn(64, 4)), torch.nn.Parameter(torch.randn(64))]
    qs = [torch.nn.Parameter(p.detach().clone()) for p in ps]
    for p, q in zip(ps, qs, strict=True):
        p.grad = torch.randn_like(p) * 3
        q.grad = p.grad.clone()
    clip_grad_norm_(ps, 0.5)
    torch.nn.utils.clip_grad_norm_(qs, 0.5)
    assert all(torch.equal(p.grad, q.grad) for p, q in zip(ps, qs, strict=True))
