"""End-to-end behaviour of the training loop: learning, exact resume, seeding, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from paperlab.dqn import train as train_mod
from paperlab.dqn.checkpoint import load_model
from paperlab.dqn.config import Config
from paperlab.dqn.envs import CartPole
from paperlab.dqn.evaluate import evaluate_policy, evaluate_vectorized
from paperlab.dqn.render import main as render_main
from paperlab.dqn.render import rollout_frames
from paperlab.dqn.train import train
from paperlab.shared.checkpoint import CheckpointError

TINY = dict(
    env_id="CartPole-v1",
    total_steps=2000,
    buffer_size=5000,
    batch_size=32,
    learning_starts=300,
    train_freq=2,
    lr=1e-3,
    target_update_period=1,
    target_tau=0.01,
    eps_decay_steps=1000,
    hidden_sizes=[32, 32],
    log_every=250,
    checkpoint_every=500,
    eval_episodes=3,
)


def _cfg(tmp_path, name="run", **kw) -> Config:
    return Config(**{**TINY, "run_dir": str(tmp_path / name), **kw})


def _weights(run_dir) -> dict[str, torch.Tensor]:
    return torch.load(f"{run_dir}/model.pt", weights_only=False)["q_net"]


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_short_cartpole_run_clearly_beats_a_random_policy(tmp_path):
    cfg = Config(
        **{
            **TINY,
            "run_dir": str(tmp_path / "learn"),
            "total_steps": 15_000,
            "train_freq": 4,
            "batch_size": 64,
            "hidden_sizes": [128, 128],
            "target_tau": 0.005,
            "eps_end": 0.01,
            "eps_decay_steps": 5000,
            "learning_starts": 1000,
            "eval_episodes": 20,
        }
    )
    summary = train(cfg)
    q_net, _ = load_model(tmp_path / "learn" / "model.pt")
    env = CartPole()
    rng = np.random.default_rng(0)
    random_returns = []
    for ep in range(50):  # a uniformly random policy: about 22
        env.reset(seed=ep)
        total, done = 0.0, False
        while not done:
            _, r, term, trunc = env.step(int(rng.integers(2)))
            total, done = total + r, term or trunc
        random_returns.append(total)
    assert np.mean(random_returns) < 30
    assert summary["eval"]["return_mean"] > 4 * np.mean(random_returns), summary["eval"]
    assert evaluate_vectorized(q_net, "CartPole-v1", 20, seed=3)["return_mean"] > 100


@pytest.mark.parametrize(
    "env_id, extra",
    [
        ("CartPole-v1", {}),
        (
            "MinAtar/Breakout-v0",
            dict(
                total_steps=1200,
                learning_starts=200,
                buffer_size=600,
                optimizer="rmsprop",
                lr=2.5e-4,
                checkpoint_every=400,
                target_update_period=100,
                target_tau=1.0,
                agent="mdqn",
                compile_optimizer=True,
            ),
        ),
    ],
)
def test_a_run_stopped_midway_resumes_to_exactly_the_uninterrupted_result(tmp_path, capfd, env_id, extra):
    full = _cfg(tmp_path, "full", env_id=env_id, **extra)
    train(full)
    split = _cfg(tmp_path, "split", env_id=env_id, **extra)
    first = train(split, stop_after_steps=split.total_steps // 2 + 37)  # dies between checkpoints
    assert first["steps"] == split.total_steps // 2 + 37 and first["finished"] is False
    assert json.loads((tmp_path / "split" / "summary.json").read_text())["finished"] is False
    assert (tmp_path / "split" / "checkpoints" / "last.pt").exists()
    # a clean stop (like Ctrl-C) saves where it stopped, between two periodic checkpoints
    ckpt = torch.load(tmp_path / "split" / "checkpoints" / "last.pt", weights_only=False)
    assert ckpt["loop"]["step"] == split.total_steps // 2 + 37
    assert [p.name for p in (tmp_path / "split" / "checkpoints").glob("replay-*.npz")] == [
        f"replay-{ckpt['loop']['step']}.npz"
    ]  # one replay file, the one last.pt names
    summary = train(split, resume=True)
    assert summary["steps"] == full.total_steps
    console = capfd.readouterr()
    assert f"from step {split.total_steps // 2 + 37} " in console.out
    assert _same(_weights(tmp_path / "full"), _weights(tmp_path / "split"))
    assert (tmp_path / "full" / "episodes.csv").read_text() == (tmp_path / "split" / "episodes.csv").read_text()
    steps = lambda d: [json.loads(x)["step"] for x in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]
    assert steps("full") == steps("split")


def test_resume_from_an_older_checkpoint_redoes_and_relogs_the_later_steps(tmp_path):
    import shutil

    train(_cfg(tmp_path, "full"))
    cfg = _cfg(tmp_path)
    train(cfg, stop_after_steps=500)
    shutil.copytree(tmp_path / "run" / "checkpoints", tmp_path / "ckpt500")
    train(cfg, resume=True, stop_after_steps=700)  # logs and checkpoints up to step 1200, then "dies"
    shutil.rmtree(tmp_path / "run" / "checkpoints")  # ... and only the step-500 checkpoint survived
    shutil.copytree(tmp_path / "ckpt500", tmp_path / "run" / "checkpoints")
    summary = train(cfg, resume=True)
    assert summary["finished"] and summary["steps"] == 2000
    for name in ("episodes.csv", "metrics.jsonl"):
        full = (tmp_path / "full" / name).read_text().splitlines()
        resumed = (tmp_path / "run" / name).read_text().splitlines()
        if name == "metrics.jsonl":  # wall-clock fields differ; steps and values must not
            full = [{k: v for k, v in json.loads(x).items() if k not in ("time", "fps")} for x in full]
            resumed = [{k: v for k, v in json.loads(x).items() if k not in ("time", "fps")} for x in resumed]
        assert full == resumed, name


def test_same_seed_reproduces_a_run_exactly_and_another_seed_does_not(tmp_path):
    train(_cfg(tmp_path, "a", seed=7))
    train(_cfg(tmp_path, "b", seed=7))
    train(_cfg(tmp_path, "c", seed=8))
    assert _same(_weights(tmp_path / "a"), _weights(tmp_path / "b"))
    assert (tmp_path / "a" / "episodes.csv").read_text() == (tmp_path / "b" / "episodes.csv").read_text()
    assert not _same(_weights(tmp_path / "a"), _weights(tmp_path / "c"))


def test_nan_loss_stops_the_run_naming_the_step(tmp_path, monkeypatch):
    class PoisonedCartPole(CartPole):
        """Rewards become NaN from the 400th step on."""

        steps = 0

        def step(self, action):
            obs, r, term, trunc = super().step(action)
            PoisonedCartPole.steps += 1
            return obs, (float("nan") if PoisonedCartPole.steps >= 400 else r), term, trunc

    monkeypatch.setattr(train_mod, "make_env", lambda *a, **k: PoisonedCartPole())
    with pytest.raises(FloatingPointError, match=r"non-finite td_loss=nan at step (\d+)") as err:
        train(_cfg(tmp_path))
    step = int(err.value.args[0].split("at step ")[1].split(";")[0])
    assert 400 <= step < 2000
    if step < 500:  # before the first checkpoint the message must not point to one
        assert "no checkpoint was written yet" in err.value.args[0]
    else:
        assert "last good checkpoint" in err.value.args[0]
    assert (tmp_path / "run" / "metrics.jsonl").exists()


def test_checkpoints_of_another_env_or_agent_are_refused(tmp_path):
    cfg = _cfg(tmp_path, total_steps=600, checkpoint_every=300)
    train(cfg)
    with pytest.raises(CheckpointError, match="trained on 'CartPole-v1'.*MinAtar/Breakout-v0"):
        load_model(tmp_path / "run" / "model.pt", env_id="MinAtar/Breakout-v0")
    with pytest.raises(ValueError, match="agent: 'dqn' in checkpoint .*'mdqn' now"):
        train(_cfg(tmp_path, total_steps=900, agent="mdqn"), resume=True)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_model(tmp_path / "missing.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a paperlab DQN checkpoint"):
        load_model(tmp_path / "other.pt")


def test_evaluation_json_and_gif_of_a_trained_agent(tmp_path):
    train(_cfg(tmp_path, total_steps=600))
    q_net, meta = load_model(tmp_path / "run" / "model.pt", env_id="CartPole-v1")
    result = evaluate_policy(q_net, meta["env_id"], episodes=4, epsilon=0.05, seed=1)
    assert len(result["returns"]) == 4
    assert result["return_mean"] == pytest.approx(np.mean(result["returns"]))
    assert result["return_min"] <= result["return_mean"] <= result["return_max"]
    frames, _ = rollout_frames(q_net, "CartPole-v1", max_frames=25)
    assert len(frames) == 25 and frames[0].shape == (400, 600, 3)
    render_main([str(tmp_path / "run" / "model.pt"), "--out", str(tmp_path / "a.gif"), "--frames", "25", "--fps", "10"])
    gif = Image.open(tmp_path / "a.gif")
    assert gif.size == (300, 200)
    # the encoder merges identical consecutive frames into one longer frame: count playing time
    durations = []
    for i in range(gif.n_frames):
        gif.seek(i)
        durations.append(gif.info["duration"])
    assert sum(durations) == 25 * 100


def test_resume_with_a_missing_replay_file_says_which_file(tmp_path):
    cfg = _cfg(tmp_path, total_steps=1000)
    train(cfg, stop_after_steps=600)
    for f in (tmp_path / "run" / "checkpoints").glob("replay-*.npz"):
        f.unlink()
    with pytest.raises(FileNotFoundError, match=r"needs its replay buffer .*replay-600\.npz"):
        train(cfg, resume=True)


def test_a_run_killed_with_sigkill_resumes_from_its_last_checkpoint(tmp_path):
    """A real crash: the training process is killed (SIGKILL) once it has written a checkpoint; the
    resumed run redoes the steps after that checkpoint and ends exactly where an uninterrupted run does."""
    import os
    import signal
    import subprocess
    import sys
    import time

    overrides = [f"{k}={json.dumps(v)}" if isinstance(v, list) else f"{k}={v}" for k, v in TINY.items()]
    overrides = [o for o in overrides if not o.startswith("hidden_sizes")] + ["hidden_sizes=[32,32]"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "paperlab.dqn.train", *overrides, f"run_dir={tmp_path / 'killed'}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    ckpt = tmp_path / "killed" / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert ckpt.exists(), proc.stderr.read().decode()[-2000:] if proc.poll() is not None else "no checkpoint"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "model.pt").exists()  # it really died before the end
    train(_cfg(tmp_path, "killed"), resume=True)
    train(_cfg(tmp_path, "full"))
    assert _same(_weights(tmp_path / "full"), _weights(tmp_path / "killed"))
    assert (tmp_path / "full" / "episodes.csv").read_text() == (tmp_path / "killed" / "episodes.csv").read_text()


def test_resuming_a_finished_run_that_died_before_its_evaluation_only_evaluates(tmp_path):
    cfg = _cfg(tmp_path, total_steps=800)
    first = train(cfg)
    weights = _weights(tmp_path / "run")
    for name in ("summary.json", "eval.json", "model.pt"):
        (tmp_path / "run" / name).unlink()
    again = train(cfg, resume=True)
    assert again["steps"] == 800 and again["eval"] == first["eval"]
    assert _same(weights, _weights(tmp_path / "run"))


def test_a_solved_run_stops_at_the_evaluation_that_reached_the_threshold(tmp_path):
    cfg = _cfg(tmp_path, total_steps=6000, eval_every=500, stop_return=15.0, eval_episodes=10)
    summary = train(cfg)
    evals = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in evals if "eval_return_mean" in r]
    assert summary["solved"]["step"] == summary["steps"] == evals[-1]["step"] < 6000
    assert evals[-1]["eval_return_mean"] >= 15.0 > max(r["eval_return_mean"] for r in evals[:-1])
    # resuming a solved run that died in its final evaluation takes no further step
    for name in ("summary.json", "eval.json", "model.pt"):
        (tmp_path / "run" / name).unlink()
    again = train(cfg, resume=True)
    assert again["steps"] == summary["steps"] and again["eval"] == summary["eval"]


def test_resume_refuses_changed_seed_and_applies_a_new_learning_rate(tmp_path):
    train(_cfg(tmp_path, total_steps=1000), stop_after_steps=600)
    with pytest.raises(ValueError, match="seed: 1 in checkpoint .*, 2 now"):
        train(_cfg(tmp_path, total_steps=1000, seed=2), resume=True)
    with pytest.raises(FileNotFoundError, match="nothing to resume: no .*elsewhere/checkpoints/last.pt"):
        train(_cfg(tmp_path, "elsewhere"), resume=True)
    calls = []
    original = train_mod.td_update

    def spy(cfg, q_net, target_net, optimizer, batch, optimizer_step=None):
        calls.append(optimizer.param_groups[0]["lr"])
        return original(cfg, q_net, target_net, optimizer, batch, optimizer_step)

    import unittest.mock

    with unittest.mock.patch.object(train_mod, "td_update", spy):
        train(_cfg(tmp_path, total_steps=1000, lr=1e-5), resume=True)
    assert calls and set(calls) == {1e-5}
