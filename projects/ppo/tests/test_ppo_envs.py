"""The vector-env wrappers: shapes, dtypes, auto-reset with the final observation, saved state, bad ids."""

import gymnasium as gym
import numpy as np
import pytest

from paperlab.ppo.config import Config
from paperlab.ppo.envs import BraxVecEnv, GymVecEnv, check_env_id, make_vec_env
from paperlab.shared.config import ConfigError


def test_brax_wrapper_shapes_dtypes_and_auto_reset():
    # inverted_pendulum: 4 observations, 1 action; pushing hard makes the pole fall (termination),
    # and a 6-step limit truncates the envs that survive
    n = 4
    env = BraxVecEnv("inverted_pendulum", n, episode_length=6, backend="positional")
    assert (env.obs_dim, env.act_dim) == (4, 1)
    obs = env.reset(seed=0)
    assert obs.shape == (n, 4) and obs.dtype == np.float32
    action = np.array([[1.0], [-1.0], [0.0], [0.0]], np.float32)
    ended = np.zeros(n, dtype=bool)
    for _t in range(6):
        step = env.step(action)
        assert step.obs.shape == (n, 4) and step.final_obs.shape == (n, 4)
        assert step.reward.shape == (n,) and step.reward.dtype == np.float32
        assert step.terminated.dtype == bool and step.truncated.dtype == bool
        assert not (step.terminated & step.truncated).any()
        done = step.terminated | step.truncated
        # auto-reset: a finished env's next obs is a fresh start, its final obs the true last one
        assert np.array_equal(step.obs[~done], step.final_obs[~done])
        if done.any():
            assert not np.allclose(step.obs[done], step.final_obs[done])
            assert (np.abs(step.obs[done]) < 0.1).all()  # inverted_pendulum starts near upright, at rest
        ended |= done
    assert step.truncated[2:].all()  # the idle envs hit the 6-step limit exactly at step 6
    assert ended.all()
    step = env.step(np.zeros((n, 1), np.float32))  # after the reset the step counter starts again
    assert not step.truncated.any()
    # the saved state (pytree + key) continues the batch exactly, auto-resets included
    saved = env.get_state()
    acts = [np.random.default_rng(0).uniform(-1, 1, (n, 1)).astype(np.float32) for _ in range(8)]
    first = [env.step(a) for a in acts]
    env.reset(seed=123)
    env.set_state(saved)
    again = [env.step(a) for a in acts]
    for s1, s2 in zip(first, again, strict=True):
        assert np.array_equal(s1.obs, s2.obs) and np.array_equal(s1.reward, s2.reward)
        assert np.array_equal(s1.truncated, s2.truncated)


def test_gym_wrapper_reports_final_observation_on_termination():
    env = GymVecEnv("InvertedPendulum-v5", 3)
    obs = env.reset(seed=0)
    assert obs.shape == (3, 4) and env.act_dim == 1
    assert float(env.action_high[0]) == pytest.approx(3.0)
    for _ in range(200):
        step = env.step(np.full((3, 1), 3.0, np.float32))  # full push: the pole falls within a few steps
        if step.terminated.any():
            i = int(np.flatnonzero(step.terminated)[0])
            assert abs(float(step.final_obs[i, 1])) > 0.2  # the pole angle that ended the episode
            assert abs(float(step.obs[i, 1])) < 0.05  # the fresh start
            break
    else:
        pytest.fail("no termination")
    env.close()


def test_gym_state_continues_the_simulation_and_the_episode_resets_exactly():
    """get_state/set_state (MuJoCo mj_getState, TimeLimit counter, np_random) on a fresh env copy
    reproduces the same steps, including the random initial states of the episodes after a reset."""
    rng = np.random.default_rng(0)
    actions = [rng.uniform(-3, 3, (2, 1)).astype(np.float32) for _ in range(60)]
    a = GymVecEnv("InvertedPendulum-v5", 2)
    a.reset(seed=1)
    for act in actions[:7]:
        a.step(act)
    saved = a.get_state()
    b = GymVecEnv("InvertedPendulum-v5", 2)
    b.reset(seed=99)  # another seed: everything must come from the saved state
    b.set_state(saved)
    resets = 0
    for act in actions[7:]:
        sa, sb = a.step(act), b.step(act)
        assert np.array_equal(sa.obs, sb.obs) and np.array_equal(sa.final_obs, sb.final_obs)
        assert np.array_equal(sa.terminated, sb.terminated)
        resets += int(sa.terminated.sum())
    assert resets >= 2  # random pushes: episodes ended and restarted from np_random draws


def test_unknown_and_discrete_envs_are_refused():
    with pytest.raises(ConfigError, match="unknown environment"):
        check_env_id("InvertedPendulum-v99")
    with pytest.raises(ConfigError, match="brax/ant"):
        check_env_id("brax/antt")
    with pytest.raises(ConfigError, match="Discrete"):
        make_vec_env(Config(env_id="CartPole-v1", num_envs=2))
    assert isinstance(gym.make("InvertedPendulum-v5").action_space, gym.spaces.Box)
    assert np.isfinite(0.0)
