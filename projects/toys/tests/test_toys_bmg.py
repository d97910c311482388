"""Task 14: the grid world, A2C's returns, BMG's matching loss and target (a constant: the meta-gradient
flows only through theta_K), and the standard meta-gradient through an inner step against finite differences."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from paperlab.toys import bmg
from paperlab.toys.config import Config

BC = Config(task="bmg").bmg


def test_collecting_objects_pays_by_colour_and_respawns_elsewhere():
    # agent at (0, 0) = cell 0, object 0 right of it (cell 1), object 1 below it (cell 5)
    state = jnp.array([0, 1, 5])
    env_step = jax.jit(bmg.env_step)  # one compilation for the 81 steps below
    for good in (0, 1):
        for action, obj in ((3, 0), (1, 1)):  # right hits object 0, down hits object 1
            for k in range(20):
                s2, r = env_step(jax.random.key(k), state, action, good)
                assert float(r) == (1.0 if obj == good else -1.0)
                assert int(s2[0]) == (1 if obj == 0 else 5)
                assert len(set(np.asarray(s2).tolist())) == 3  # the object reappeared on a free cell
    s2, r = env_step(jax.random.key(0), state, 0, 0)  # up: a wall, nothing collected
    assert float(r) == 0.0 and int(s2[0]) == 0
    obs = bmg.observe(state)
    assert obs.shape == (bmg.N_OBS,) and float(obs.sum()) == 4.0


def test_returns_by_hand():
    r = jnp.array([[1.0], [0.0], [-1.0]])
    g = bmg.returns(r, jnp.array([2.0]), 0.5)
    # G_2 = -1 + 0.5*2 = 0; G_1 = 0 + 0.5*0 = 0; G_0 = 1 + 0 = 1
    np.testing.assert_allclose(np.asarray(g)[:, 0], [1.0, 0.0, 0.0])


_ROLLOUT = jax.jit(lambda p, envs, key: bmg.rollout(p, envs, key, 0, BC))  # compiled once for every test


def _batch(seed=0):
    p = bmg.net_init(jax.random.key(seed), 8)
    envs = jax.vmap(bmg.env_reset)(jax.random.split(jax.random.key(seed + 1), 4))
    b, _ = _ROLLOUT(p, envs, jax.random.key(seed + 2))
    return p, b


def test_matching_loss_is_the_kl_between_the_policies():
    p, b = _batch()
    q = jax.tree_util.tree_map(lambda a: a + 0.3 * jnp.ones_like(a) * jnp.arange(a.size).reshape(a.shape) % 0.7, p)
    lp, _ = bmg.net(p, b["obs"])
    lq, _ = bmg.net(q, b["obs"])
    P, Q = np.exp(np.asarray(lp, np.float64)), np.exp(np.asarray(lq, np.float64))
    by_hand = (Q * (np.log(Q) - np.log(P))).sum(-1).mean()  # KL(target q || p)
    assert float(bmg.matching_loss(q, p, b["obs"])) == pytest.approx(by_hand, rel=1e-4)
    assert float(bmg.matching_loss(p, p, b["obs"])) == pytest.approx(0.0, abs=1e-7)
    assert by_hand > 1e-4


def test_the_target_is_a_constant_and_the_gradient_flows_through_theta_K():
    p, b1 = _batch(0)
    _, b2 = _batch(5)

    def theta_K(eta):
        return bmg.sgd_step(p, jax.grad(bmg.a2c_loss)(p, b1, jnp.exp(eta), BC), BC.lr)

    def bmg_loss(eta):
        tk = theta_K(eta)
        return bmg.matching_loss(bmg.bootstrap_target(tk, b2, jnp.exp(eta), BC), tk, b2["obs"])

    # without the stop-gradient the target would move with eta and the gradient would differ
    def no_stop(eta):
        tk = theta_K(eta)
        tgt = bmg.sgd_step(tk, jax.grad(bmg.a2c_loss)(tk, b2, jnp.exp(eta), BC), BC.lr)
        tgt = bmg.sgd_step(tgt, jax.grad(bmg.pg_loss)(tgt, b2, BC), BC.lr)
        return bmg.matching_loss(tgt, tk, b2["obs"])

    @jax.jit  # everything in one compilation
    def all_of_them(eta):
        const = bmg.bootstrap_target(theta_K(eta), b2, jnp.exp(eta), BC)  # computed outside the gradient
        g_const = jax.grad(lambda e: bmg.matching_loss(const, theta_K(e), b2["obs"]))(eta)
        return jax.value_and_grad(bmg_loss)(eta), g_const, jax.value_and_grad(no_stop)(eta)

    (value, g), g_const, (value_no_stop, g_no_stop) = all_of_them(jnp.log(0.05))
    assert float(g) == pytest.approx(float(g_const), rel=1e-5) and abs(float(g)) > 0
    assert float(value_no_stop) == pytest.approx(float(value), rel=1e-4)  # same value (a float32 KL near 1e-4) ...
    assert abs(float(g_no_stop) - float(g)) > 1e-3 * abs(float(g))  # ... other gradient


@pytest.mark.slow  # float64 compilation of the inner step and its gradient
def test_meta_gradient_through_the_inner_step_matches_finite_differences():
    with jax.enable_x64(True):
        p, b1 = _batch(0)
        _, b2 = _batch(5)
        # float64 throughout, and a policy far from uniform so that the entropy term has a real gradient
        p = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), p)
        p = {**p, "wp": 300.0 * p["wp"]}
        b1, b2 = (
            jax.tree_util.tree_map(lambda a: a.astype(jnp.float64) if a.dtype == jnp.float32 else a, b)
            for b in (b1, b2)
        )

        # the meta-objective's advantages are constants (stop-gradient), so finite differences must see
        # them fixed too: here they are the advantages at the start
        logp0, v0 = bmg.net(p, b2["obs"])
        adv = bmg.returns(b2["r"], bmg.net(p, b2["last_obs"])[1], BC.gamma) - v0

        def mg(eta):
            tk = bmg.sgd_step(p, jax.grad(bmg.a2c_loss)(p, b1, jnp.exp(eta), BC), BC.lr)
            logp, _ = bmg.net(tk, b2["obs"])
            return -(jnp.take_along_axis(logp, b2["a"][..., None], -1)[..., 0] * adv).mean()

        eta, h = jnp.float64(np.log(0.5)), 1e-5
        fd = (mg(eta + h) - mg(eta - h)) / (2 * h)
        assert float(jax.grad(mg)(eta)) == pytest.approx(float(fd), rel=1e-4)
        assert abs(float(fd)) > 1e-4


@pytest.mark.slow
def test_short_run(tmp_path):
    """The whole command, 4 agents x 2 seeds for 40 meta-steps (slow: it compiles every agent's meta-step)."""
    m = bmg.main(
        [
            "bmg.train_steps=40",
            "bmg.log_every=20",
            "bmg.n_seeds=2",
            "bmg.flip_every=20",
            "bmg.fixed_eps=[0.0,0.1]",
            "bmg.n_envs=4",
            f"run_dir={tmp_path / 'r'}",
        ]
    )
    assert m["agents"] == ["fixed_0", "fixed_0.1", "mg", "bmg"] and m["best_fixed"] in ("fixed_0", "fixed_0.1")
    assert len(m["bmg_final_eps_per_seed"]) == 2 and m["fixed_0.1_final_eps_per_seed"] == pytest.approx([0.1, 0.1])
    assert m["mg_final_eps_per_seed"] != pytest.approx([BC.eps_init] * 2)  # the meta-learners moved eps
    assert (tmp_path / "r" / "bmg.png").is_file()
