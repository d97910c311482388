"""The stochastic decision process of Kulkarni et al. (transitions, rewards, optimum) and a short run."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from paperlab.toys import hdqn
from paperlab.toys.config import Config

HC = Config(task="hdqn").hdqn


def _steps(s, visited, a, n=20_000):
    keys = jax.random.split(jax.random.key(s * 10 + a), n)
    f = jax.vmap(lambda k: hdqn.env_step(k, jnp.int32(s), jnp.bool_(visited), a, HC))
    return [np.asarray(x) for x in f(keys)]


@pytest.mark.parametrize("s", [1, 3, 5])
def test_right_succeeds_half_of_the_time(s):
    s2, _, _, _ = _steps(s, False, hdqn.RIGHT)
    up = min(s + 1, 5)
    frac = np.mean(s2 == up)
    assert abs(frac - 0.5) < 4 * np.sqrt(0.25 / len(s2)), frac
    assert set(np.unique(s2)) == {up, s - 1}


def test_left_is_deterministic_and_rewards():
    s2, _, r, done = _steps(3, False, hdqn.LEFT, n=100)
    assert (s2 == 2).all() and (r == 0).all() and not done.any()
    s2, v2, r, done = _steps(1, False, hdqn.LEFT, n=100)  # s2 -> s1 without visiting s6: 0.01
    assert (s2 == 0).all() and done.all() and np.allclose(r, 0.01)
    s2, _, r, done = _steps(1, True, hdqn.LEFT, n=100)  # after s6: 1
    assert done.all() and np.allclose(r, 1.0)
    s2, v2, _, _ = _steps(4, False, hdqn.RIGHT, n=2000)  # reaching s6 marks it visited
    assert (v2 == (s2 == 5)).all() and v2.any()


def test_optimum_is_the_gamblers_ruin_value():
    # always right until s6 (P = 1/5 from s2 by gambler's ruin), then left: 0.2 * 1 + 0.8 * 0.01
    assert hdqn.optimal_value(6, 0.5) == pytest.approx(0.2 + 0.8 * 0.01, abs=1e-6)
    assert hdqn.optimal_value(6, 1.0) == pytest.approx(1.0, abs=1e-9)


def test_network_targets_match_a_hand_computation():
    """With W1 = I (one-hot inputs pass through the ReLU) and W2 = a table T, Q(x) = T[active inputs]."""
    hc = Config(task="hdqn").hdqn
    n = hc.n_states
    T_ctrl = np.arange(4 * n, dtype=np.float32).reshape(2 * n, 2) / 10  # rows 0..5 state, 6..11 goal
    p_ctrl = {"w1": jnp.eye(2 * n), "b1": jnp.zeros(2 * n), "w2": jnp.asarray(T_ctrl), "b2": jnp.zeros(2)}
    batch = {
        "s2": jnp.array([3, 5, 2]),
        "g": jnp.array([5, 1, 4]),
        "r": jnp.array([0.0, 1.0, 0.0]),
        "done": jnp.array([False, True, False]),
    }
    y = np.asarray(hdqn.controller_targets(p_ctrl, batch, hc))
    # Q_ctrl([s', g]) = T[s'] + T[6 + g]; target r + 0.9 max_a Q (0 after reaching the goal)
    q = lambda s2, g: max(T_ctrl[s2, 0] + T_ctrl[n + g, 0], T_ctrl[s2, 1] + T_ctrl[n + g, 1])
    expect = [0.0 + 0.9 * q(3, 5), 1.0, 0.0 + 0.9 * q(2, 4)]
    np.testing.assert_allclose(y, expect, rtol=1e-6)

    T_meta = np.array([[0.5, 2.0, 0.1, 0.3, 0.2, 0.4]] * n, np.float32) + np.arange(n)[:, None] / 100
    p_meta = {"w1": jnp.eye(n), "b1": jnp.zeros(n), "w2": jnp.asarray(T_meta), "b2": jnp.zeros(n)}
    batch = {"s2": jnp.array([1, 2, 0]), "R": jnp.array([0.0, 0.01, 1.0]), "done": jnp.array([False, False, True])}
    y = np.asarray(hdqn.meta_targets(p_meta, batch, hc))
    # goals equal to the state s' are not allowed: from s'=s2 (index 1) the best goal is not index 1 (2.0)
    expect = [0.0 + 0.99 * (0.5 + 0.01), 0.01 + 0.99 * (2.0 + 0.02), 1.0]
    np.testing.assert_allclose(y, expect, rtol=1e-6)


def test_replay_memory_ring_and_conditional_writes():
    rb = hdqn._replay(3, s=jnp.int32)
    for v, write in [(1, True), (2, False), (3, True), (4, True), (5, True)]:
        rb = hdqn._store(rb, jnp.bool_(write), s=jnp.int32(v))
    assert int(rb["size"]) == 3 and int(rb["ptr"]) == 1
    assert sorted(np.asarray(rb["data"]["s"]).tolist()) == [3, 4, 5]  # 1 overwritten, 2 never written


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("hdqn") / "run"
    args = [
        "hdqn.train_steps=12000",
        "hdqn.n_seeds=3",
        "hdqn.eps_decay_steps=6000",
        "hdqn.bin_steps=3000",
        "hdqn.target_every=500",
        f"run_dir={run}",
    ]
    return run, args, hdqn.main(args)


@pytest.mark.slow  # the whole command, four agents x 3 seeds (about a minute on one core)
def test_short_run_network_hdqn_beats_flat_and_random(short_run):
    run, _, m = short_run
    assert m["optimal_expected_reward"] == pytest.approx(0.208, abs=1e-6)
    assert m["random_greedy_reward_mean"] < 0.05
    assert m["hdqn_net_greedy_reward_mean"] > 0.18, m["hdqn_net_greedy_reward_per_seed"]
    assert m["hdqn_net_greedy_reward_mean"] > m["flat_net_greedy_reward_mean"] + 0.03
    assert m["hdqn_net_greedy_reward_mean"] > m["random_greedy_reward_mean"] + 0.1


@pytest.mark.slow
def test_short_run_writes_its_files_and_evaluates_again(short_run):
    run, args, m = short_run
    saved = json.loads((run / "eval.json").read_text())
    assert saved["hdqn_net_greedy_reward_mean"] == pytest.approx(m["hdqn_net_greedy_reward_mean"])
    for f in ("hdqn.png", "curves.json", "model.pt", "summary.json", "checkpoints/last.pt", "metrics.jsonl"):
        assert (run / f).is_file(), f
    curves = json.loads((run / "curves.json").read_text())
    assert np.shape(curves["hdqn_net_reward_per_episode"]) == (4, 3)  # bins x seeds
    again = hdqn.main([*args, "eval_only=true"])  # evaluation alone, from model.pt
    for agent in hdqn.AGENTS:
        assert again[f"{agent}_greedy_reward_mean"] == pytest.approx(m[f"{agent}_greedy_reward_mean"])
