"""Flow matching's path and target, DDPM's closed-form q(x_t | x_0), and the distribution metrics."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from paperlab.toys import common, diffusion, flow_matching, moons
from paperlab.toys.config import Config


@pytest.mark.parametrize("sigma_min", [0.0, 0.1])
def test_flow_matching_path_and_velocity(sigma_min):
    rng = np.random.default_rng(0)  # the path functions are plain arithmetic: numpy in, numpy out
    x0, x1 = rng.normal(size=(64, 2)), rng.normal(size=(64, 2)) + 3.0
    ones, zeros = np.ones(64), np.zeros(64)
    np.testing.assert_allclose(flow_matching.interpolate(x0, x1, zeros, sigma_min), x0, atol=1e-12)
    np.testing.assert_allclose(flow_matching.interpolate(x0, x1, ones, sigma_min), x1 + sigma_min * x0, atol=1e-12)
    # the target velocity is the time derivative of the path (central finite difference)
    t = rng.uniform(0.1, 0.9, 64)
    h = 1e-5
    path = lambda t: flow_matching.interpolate(x0, x1, t, sigma_min)
    fd = (path(t + h) - path(t - h)) / (2 * h)
    np.testing.assert_allclose(fd, flow_matching.target_velocity(x0, x1, sigma_min), atol=1e-6)
    # and it is constant along the path: Euler with any step count lands exactly on psi_1
    v = flow_matching.target_velocity(x0, x1, sigma_min)
    x = x0
    for _ in range(7):
        x = x + v / 7
    np.testing.assert_allclose(x, path(ones), atol=1e-9)


def test_ddpm_closed_form_matches_repeated_noising():
    dc = Config(task="diffusion").diffusion
    sch = diffusion.schedule(dc)
    n, x0_point = 40_000, np.array([1.5, -0.5])
    x0 = np.tile(x0_point, (n, 1))
    x = x0
    rng = np.random.default_rng(0)
    for t in range(60):
        x = diffusion.forward_step(x, t, rng.normal(size=x.shape), sch["betas"])
        if t in (0, 9, 29, 59):
            closed = diffusion.q_sample(x0, np.full(n, t), rng.normal(size=x.shape), sch["abar"])
            mean_exp = np.sqrt(sch["abar"][t]) * x0_point
            std_exp = np.sqrt(1.0 - sch["abar"][t])
            for sample in (x, closed):
                assert np.abs(sample.mean(0) - mean_exp).max() < 5 * std_exp / np.sqrt(n), (t, sample.mean(0))
                assert np.abs(sample.std(0) - std_exp).max() < 0.02 * std_exp, (t, sample.std(0), std_exp)
    # a wrong closed form (abar replaced by the last alpha) would fail the same check
    wrong = np.sqrt(sch["alphas"][59]) * x0_point
    assert np.abs(x.mean(0) - wrong).max() > 0.1
    assert sch["abar"][-1] < 1e-3  # x_T is (nearly) pure noise for the preset schedule
    assert sch["post_var"][0] == pytest.approx(0.0, abs=1e-8)  # no noise on the last reverse step


def test_moons_match_sklearn():
    from sklearn.datasets import make_moons

    ours = np.asarray(jax.jit(moons.sample_moons, static_argnums=(1, 2))(jax.random.key(0), 1000, 0.05))
    ref, _ = make_moons(1000, noise=0.05, random_state=0)
    ref = (ref - moons.MOONS_CENTER) / moons.MOONS_SCALE
    assert common.energy_distance(ours, ref) < 0.01
    assert common.energy_distance(ours, ref + [0.3, 0.0]) > 0.02  # and the check can see a small shift


def test_distribution_metrics_on_known_cases():
    p = np.array([0.5, 0.5, 0.0])
    assert common.total_variation(p, p) == 0.0
    assert common.total_variation(p, np.array([0.0, 0.0, 1.0])) == pytest.approx(1.0)
    q = np.array([0.25, 0.75, 0.0])
    assert common.total_variation(p, q) == pytest.approx(0.25)
    assert common.kl_divergence(p, q) == pytest.approx(0.5 * np.log(2) + 0.5 * np.log(2 / 3))
    assert common.kl_divergence(p, p) == 0.0
    with pytest.raises(ValueError):
        common.total_variation(p, p[:2])
    # energy distance: 0 for the same cloud, 2|a - b| for two point masses
    x = np.random.default_rng(0).normal(size=(300, 2))
    assert common.energy_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    a, b = np.zeros((5, 2)), np.tile([3.0, 4.0], (5, 1))
    assert common.energy_distance(a, b) == pytest.approx(10.0)
    assert common.mmd_rbf(x, x) == pytest.approx(0.0, abs=1e-12)
    y = np.random.default_rng(1).normal(size=(300, 2))  # another draw of the same distribution
    assert common.mmd_rbf(x, x + 1.0, bandwidth=1.0) > 20 * common.mmd_rbf(x, y, bandwidth=1.0)
    # sampling floor: exact samples of p are ~1/sqrt(n) away, and the floor shrinks with n
    p = np.full(101, 1 / 101)
    small = common.sampling_floor(p, 500, np.random.default_rng(0))
    large = common.sampling_floor(p, 50_000, np.random.default_rng(0))
    assert large["tv_mean"] < small["tv_mean"] / 5
    assert common.sample_distances(p, np.arange(101).repeat(3))["tv"] == pytest.approx(0.0, abs=1e-12)


def test_cosine_schedule_ends_in_noise_and_starts_gently():
    cfg = Config(task="diffusion")
    cfg.diffusion.schedule = "cosine"
    sch = diffusion.schedule(cfg.diffusion)
    assert sch["abar"][-1] < 1e-3 and sch["betas"][0] < 1e-3
    assert np.all(np.diff(sch["abar"]) < 0) and np.all(sch["betas"] <= 0.999)
    # abar_t = f(t) / f(0) with f(t) = cos^2((t/T + s)/(1 + s) pi/2), s = 0.008 (Nichol & Dhariwal, eq. 17)
    f = lambda t: np.cos((t / 100 + 0.008) / 1.008 * np.pi / 2) ** 2
    np.testing.assert_allclose(sch["abar"][49], f(50) / f(0), rtol=1e-5)


def test_flow_matching_and_diffusion_share_one_network_module():
    assert flow_matching.TimeMLP is diffusion.TimeMLP is moons.TimeMLP
    assert flow_matching.sample_moons is diffusion.sample_moons
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(diffusion))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "paperlab.toys.flow_matching" not in imported
