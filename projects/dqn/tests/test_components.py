"""Replay buffer, networks, environments and config validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paperlab.dqn.config import Config
from paperlab.dqn.envs import MINATAR_GAMES, make_env, valid_env_ids
from paperlab.dqn.networks import MinAtarQNetwork, MLPQNetwork, make_q_network
from paperlab.dqn.replay import ReplayBuffer
from paperlab.shared.config import ConfigError, load_config


# ------------------------------------------------------------------------------------------ replay
def test_replay_wraps_around_and_overwrites_the_oldest():
    buf = ReplayBuffer(5, (2,), np.float32)
    for i in range(8):
        buf.add(np.full(2, i), i, float(i), np.full(2, i + 1), i == 7)
    assert len(buf) == 5 and buf.pos == 3
    assert sorted(buf.actions.tolist()) == [3, 4, 5, 6, 7]  # 0, 1, 2 were overwritten
    assert buf.obs[0, 0] == 5 and buf.next_obs[0, 0] == 6 and buf.terminated[2] == 1.0


def test_replay_samples_only_filled_slots_with_consistent_fields():
    buf = ReplayBuffer(100, (3,), np.float32)
    for i in range(10):
        buf.add(np.full(3, i), i % 2, 10.0 * i, np.full(3, i + 0.5), False)
    batch = buf.sample(500, np.random.default_rng(0))
    assert batch["obs"].shape == (500, 3) and batch["actions"].dtype == torch.int64
    idx = batch["obs"][:, 0].long()
    assert idx.max() < 10  # never an empty slot
    assert torch.equal(batch["rewards"], 10.0 * idx.float())
    assert torch.allclose(batch["next_obs"][:, 0], idx.float() + 0.5)
    assert len(set(idx.tolist())) == 10  # uniform over all filled slots


def test_replay_state_dict_round_trip_and_empty_sample():
    buf = ReplayBuffer(4, (2, 2), np.uint8)
    with pytest.raises(ValueError, match="empty"):
        buf.sample(1, np.random.default_rng(0))
    for i in range(6):
        buf.add(np.full((2, 2), i % 2), i, 1.0, np.zeros((2, 2)), False)
    other = ReplayBuffer(4, (2, 2), np.uint8)
    other.load_state_dict(buf.state_dict())
    assert (other.pos, other.size) == (buf.pos, buf.size)
    assert np.array_equal(other.obs, buf.obs) and np.array_equal(other.actions, buf.actions)
    with pytest.raises(ValueError, match="shape"):
        ReplayBuffer(4, (3,), np.uint8).load_state_dict(buf.state_dict())


# ---------------------------------------------------------------------------------------- networks
def test_cartpole_network_shapes():
    env = make_env("CartPole-v1")
    net = make_q_network(env.obs_shape, env.n_actions, Config())
    assert isinstance(net, MLPQNetwork)
    assert net(torch.zeros(7, *env.obs_shape)).shape == (7, 2)


@pytest.mark.parametrize("game", sorted(MINATAR_GAMES))
def test_minatar_network_shapes_for_every_game(game):
    env = make_env(f"MinAtar/{game}-v0")
    obs = env.reset(seed=0)
    assert obs.shape == env.obs_shape and obs.dtype == np.uint8 and env.obs_shape[1:] == (10, 10)
    net = make_q_network(env.obs_shape, env.n_actions, Config(env_id=f"MinAtar/{game}-v0"))
    assert isinstance(net, MinAtarQNetwork)
    assert net(torch.from_numpy(np.stack([obs] * 3))).shape == (3, 6)
    # the paper's network: 16 3x3 filters, 128 hidden units
    assert net.conv.out_channels == 16 and net.conv.kernel_size == (3, 3) and net.fc.out_features == 128
    minimal = make_env(f"MinAtar/{game}-v1")
    assert 1 < minimal.n_actions <= 6


def test_minatar_env_steps_and_renders():
    env = make_env("MinAtar/Breakout-v0")
    env.reset(seed=1)
    total, done, n = 0.0, False, 0
    while not done and n < 10_000:
        _, r, done, trunc = env.step(n % 6)
        total += r
        n += 1
    assert done and not trunc
    frame = env.render()
    assert frame.shape == (10, 10, 3) and frame.dtype == np.uint8


# ------------------------------------------------------------------------------------------ config
def test_unknown_env_id_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown env_id 'Pong-v5'.*CartPole-v1.*MinAtar/Breakout-v0"):
        load_config(Config, None, ["env_id=Pong-v5"])
    with pytest.raises(ValueError, match="MinAtar/Seaquest-v1"):
        make_env("MinAtar/seaquest")
    assert len(valid_env_ids()) == 11


@pytest.mark.parametrize(
    "override, message",
    [
        ("agent=ddqn", "agent must be one of"),
        ("lr=fast", "lr"),
        ("batch_size=0", "batch_size must be positive"),
        ("target_tau=1.5", "target_tau"),
        ("eps_end=2", "eps_end"),
        ("learning_rate=1e-3", "unknown config key 'learning_rate'"),
        ("stop_return=475", "stop_return needs eval_every"),
        ("double_dqn=true agent=mdqn", "double_dqn applies to agent=dqn"),
    ],
)
def test_bad_configs_raise_naming_the_problem(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(Config, None, override.split())


def test_run_dir_follows_env_agent_and_seed():
    assert load_config(Config, None, ["agent=mdqn", "seed=3"]).run_dir == "runs/dqn/CartPole-v1/mdqn-seed3"
    assert Config(env_id="MinAtar/Asterix-v0", seed=2).run_dir == "runs/dqn/MinAtar/Asterix-v0/dqn-seed2"
    assert load_config(Config, None, ["run_dir=somewhere"]).run_dir == "somewhere"


def test_command_line_errors_are_messages_not_tracebacks(tmp_path):
    import subprocess
    import sys

    for args in (["lrr=1"], ["env_id=Pong-v5"]):
        out = subprocess.run(
            [sys.executable, "-m", "paperlab.dqn.train", *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert out.returncode == 2 and out.stderr.startswith("error: ") and len(out.stderr.splitlines()) == 1
    out = subprocess.run(
        [sys.executable, "-m", "paperlab.dqn.evaluate", str(tmp_path / "none.pt")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and out.stderr == f"error: no checkpoint at {tmp_path / 'none.pt'}\n"
