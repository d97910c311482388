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


def test_short_run_end_to_end(tmp_path):
    args = [
        "hdqn.train_steps=5000",
        "hdqn.n_seeds=2",
        "hdqn.eps_decay_steps=2500",
        "hdqn.bin_steps=1000",
        f"run_dir={tmp_path}/run",
        f"results_dir={tmp_path}/res",
    ]
    m = hdqn.main(args)
    saved = json.loads((tmp_path / "res" / "metrics.json").read_text())
    assert saved["optimal_expected_reward"] == pytest.approx(0.208, abs=1e-6)
    assert (tmp_path / "res" / "hdqn.png").is_file() and (tmp_path / "run" / "params.msgpack").is_file()
    for agent in ("flat", "hdqn"):
        assert 0.0 <= m[f"{agent}_greedy_reward_mean"] <= 1.0
    # evaluation alone, from the saved tables
    again = hdqn.main([*args, "eval_only=true"])
    assert again["hdqn_greedy_reward_mean"] == pytest.approx(m["hdqn_greedy_reward_mean"])
