"""Task 12: the dream objective's gradient against finite differences, and the ascent raising it.
Task 10: the power-law fits recover known exponents from synthetic losses; bootstrap intervals cover them."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from paperlab.toys import deep_dream, scaling_laws
from paperlab.toys.config import Config
from paperlab.toys.mnist import cnn_init


def _cnn(dtype=jnp.float32):
    dc = Config(task="deep_dream").deep_dream
    dc = dataclasses.replace(dc, width=4, hidden=16)
    params = cnn_init(jax.random.key(0), deep_dream.features(dc), dc.hidden)
    return jax.tree_util.tree_map(lambda a: a.astype(dtype), params), dc


@pytest.mark.parametrize("layer, index", [(0, 1), (1, 3), (2, 5), (3, 7)])
def test_dream_objective_gradient_matches_finite_differences(layer, index):
    """Directional derivatives of J(x) = activation - l2 |x|^2 - tv TV(x) along random directions,
    in float64: autodiff against central differences."""
    with jax.enable_x64(True):
        params, dc = _cnn(jnp.float64)
        rng = np.random.default_rng(layer)
        x = jnp.asarray(rng.uniform(0, 1, (28, 28)))
        f = lambda x: deep_dream.dream_objective(params, x, layer, index, 0.3, 0.7)
        g = jax.grad(f)(x)
        assert g.dtype == jnp.float64 and float(jnp.abs(g).max()) > 0
        for _ in range(3):
            v = jnp.asarray(rng.normal(size=(28, 28)))
            h = 1e-6
            fd = (f(x + h * v) - f(x - h * v)) / (2 * h)
            assert float(jnp.sum(g * v)) == pytest.approx(float(fd), rel=1e-5, abs=1e-9)


def test_regularisers_are_what_they_say():
    x = jnp.zeros((1, 28, 28, 1))
    assert float(deep_dream.total_variation(x)[0]) == 0.0
    stripes = jnp.tile(jnp.arange(28) % 2, (28, 1)).astype(jnp.float32)[None, :, :, None]
    assert float(deep_dream.total_variation(stripes)[0]) == pytest.approx(
        1.0
    )  # every horizontal pair differs by 1, vertical ones by 0
    blurred = deep_dream.gaussian_blur(stripes[0, :, :, 0], 0.8)
    assert float(blurred[5:20, 5:20].std()) < 0.5 * float(stripes[0, 5:20, 5:20, 0].std())
    assert float(blurred[5:20, 5:20].mean()) == pytest.approx(0.5, abs=0.05)  # blur keeps the mean inside
    assert deep_dream.octave_sizes(3) == [7, 14, 28] and deep_dream.octave_sizes(1) == [28]


@pytest.mark.slow  # compiles the octave loop of the dream
def test_dream_raises_its_target_and_stays_an_image():
    params, dc = _cnn()
    dc = dataclasses.replace(dc, dream_steps=12, octaves=2)
    x0 = deep_dream.noise_start(2, 0)
    layer, idx = 3, np.array([2, 6])
    dreams = deep_dream.dream_many(params, x0, layer, idx, dc)
    assert dreams.shape == (2, 28, 28) and dreams.min() >= 0.0 and dreams.max() <= 1.0
    before = deep_dream.activation(params, jnp.asarray(x0)[..., None], layer, jnp.asarray(idx))
    after = deep_dream.activation(params, jnp.asarray(dreams)[..., None], layer, jnp.asarray(idx))
    assert np.all(np.diag(np.asarray(after)) > np.diag(np.asarray(before)) + 0.3)


def test_high_frequency_fraction():
    smooth = np.tile(np.sin(np.linspace(0, np.pi, 28)), (28, 1))[None]
    checker = (np.indices((28, 28)).sum(0) % 2).astype(float)[None]
    hf = deep_dream.high_frequency_fraction(np.concatenate([smooth, checker]))
    assert hf[0] < 0.05 and hf[1] > 0.95


# ----------------------------------------------------------------------------- task 10: the fits


def test_power_law_fit_recovers_known_exponents():
    x = 2.0 ** np.arange(10, 17)
    for E, A, alpha in [(0.05, 30.0, 0.5), (0.0, 5.0, 0.3), (0.2, 300.0, 0.8)]:
        y = scaling_laws.power_law(x, E, A, alpha)
        f = scaling_laws.fit_power_law(x, y)
        assert f["alpha"] == pytest.approx(alpha, abs=1e-3) and f["E"] == pytest.approx(E, abs=1e-3)
        # with multiplicative noise and 3 "seeds" per point: close to the truth, the interval holds the
        # estimate, and it narrows when the noise does
        rng = np.random.default_rng(0)
        widths = []
        for noise in (0.02, 0.005):
            pts = [(xi, yi * np.exp(noise * rng.normal(size=3))) for xi, yi in zip(x, y)]
            est = scaling_laws.fit_power_law(*zip(*[(xi, v) for xi, vs in pts for v in vs]))["alpha"]
            lo, hi = scaling_laws.bootstrap(pts, scaling_laws.fit_power_law, 60)["alpha"]
            assert abs(est - alpha) < 0.1 and lo <= est <= hi, (alpha, est, lo, hi)
            widths.append(hi - lo)
        assert widths[1] < widths[0]


def test_joint_fit_recovers_known_exponents():
    E, A, alpha, B, beta = 0.02, 20.0, 0.45, 80.0, 0.6
    N = np.array([1e3, 2e3, 4e3, 8e3, 16e3, 32e3, 64e3] + [4e3] * 6 + [32e3] * 6)
    D = np.array([55000] * 7 + [55000 / 2**k for k in range(1, 7)] * 2)
    y = E + A * N**-alpha + B * D**-beta
    f = scaling_laws.fit_joint(N, D, y)
    assert f["alpha"] == pytest.approx(alpha, abs=0.01) and f["beta"] == pytest.approx(beta, abs=0.01)
    assert f["E"] == pytest.approx(E, abs=0.005) and f["rms_log_residual"] < 1e-4


def test_the_sweep_layout():
    sc = dataclasses.replace(Config(task="scaling_laws").scaling_laws)
    assert scaling_laws.sizes(sc) == [55000 // 2**k for k in range(7)]
    g = scaling_laws.groups(sc)
    assert set(g) == {"width1", "width4", "width16", "width32", "data_width2", "data_width8"}
    assert g["data_width8"] == (8, [s for s in scaling_laws.sizes(sc) for _ in range(3)])
    params = scaling_laws.init(jax.random.key(0), 4)
    assert sum(p.size for p in jax.tree_util.tree_leaves(params)) == scaling_laws.n_params_of(4)
    assert scaling_laws.apply(params, jnp.zeros((2, 14, 14, 1))).shape == (2, 10)
