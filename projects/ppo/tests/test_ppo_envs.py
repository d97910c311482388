"""The vector-env wrappers: shapes, dtypes, auto-reset with the final observation, bad ids."""

import gymnasium as gym
import numpy as np
import pytest
import torch

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
    assert obs.shape == (n, 4) and obs.dtype == torch.float32
    action = torch.tensor([[1.0], [-1.0], [0.0], [0.0]])
    ended = torch.zeros(n, dtype=torch.bool)
    for _t in range(6):
        step = env.step(action)
        assert step.obs.shape == (n, 4) and step.final_obs.shape == (n, 4)
        assert step.reward.shape == (n,) and step.reward.dtype == torch.float32
        assert step.terminated.dtype == torch.bool and step.truncated.dtype == torch.bool
        assert not (step.terminated & step.truncated).any()
        done = step.terminated | step.truncated
        # auto-reset: a finished env's next obs is a fresh start, its final obs the true last one
        assert torch.equal(step.obs[~done], step.final_obs[~done])
        if done.any():
            assert not torch.allclose(step.obs[done], step.final_obs[done])
            assert (step.obs[done].abs() < 0.1).all()  # inverted_pendulum starts near upright, at rest
        ended |= done
    assert step.truncated[2:].all()  # the idle envs hit the 6-step limit exactly at step 6
    assert ended.all()
    step = env.step(torch.zeros(n, 1))  # after the reset the step counter starts again
    assert not step.truncated.any()


def test_gym_wrapper_reports_final_observation_on_termination():
    env = GymVecEnv("InvertedPendulum-v5", 3)
    obs = env.reset(seed=0)
    assert obs.shape == (3, 4) and env.act_dim == 1
    assert env.action_high.item() == pytest.approx(3.0)
    for _ in range(200):
        step = env.step(torch.full((3, 1), 3.0))  # full push: the pole falls within a few steps
        if step.terminated.any():
            i = int(torch.nonzero(step.terminated)[0])
            assert abs(float(step.final_obs[i, 1])) > 0.2  # the pole angle that ended the episode
            assert abs(float(step.obs[i, 1])) < 0.05  # the fresh start
            break
    else:
        pytest.fail("no termination")
    env.close()


def test_unknown_and_discrete_envs_are_refused():
    with pytest.raises(ConfigError, match="unknown environment"):
        check_env_id("InvertedPendulum-v99")
    with pytest.raises(ConfigError, match="brax/ant"):
        check_env_id("brax/antt")
    with pytest.raises(ConfigError, match="Discrete"):
        make_vec_env(Config(env_id="CartPole-v1", num_envs=2))
    assert isinstance(gym.make("InvertedPendulum-v5").action_space, gym.spaces.Box)
    assert np.isfinite(0.0)
