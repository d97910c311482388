"""Task 11: the hand-written optimisers equal optax's to 1e-6, and each convention they copy matters;
the MNIST reader and the im2col convolution; a tiny run on generated digits."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from paperlab.toys import mnist, optimizers


def _problem():
    """A fixed, non-quadratic problem with a pytree of parameters: logistic regression with an L4 term."""
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.normal(size=(64, 5)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 2, 64), jnp.float32)
    params = {"w": jnp.asarray(rng.normal(size=(5,)), jnp.float32), "b": jnp.asarray([0.3], jnp.float32)}

    def loss(p):
        z = X @ p["w"] + p["b"][0]
        return jnp.mean(jnp.logaddexp(0.0, z) - y * z) + 0.1 * jnp.sum(p["w"] ** 4)

    return params, loss


def _run(tx, steps: int = 20):
    params, loss = _problem()
    state = tx.init(params)
    for _ in range(steps):
        g = jax.grad(loss)(params)
        updates, state = tx.update(g, state, params)
        params = jax.tree_util.tree_map(lambda p, u: p + u, params, updates)
    return params


def _max_diff(a, b) -> float:
    return max(float(jnp.abs(x - y).max()) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


CASES = [
    ("sgd", lambda: optimizers.sgd(0.1), lambda: optax.sgd(0.1)),
    ("momentum", lambda: optimizers.sgd(0.1, 0.9), lambda: optax.sgd(0.1, momentum=0.9)),
    ("nesterov", lambda: optimizers.sgd(0.1, 0.9, nesterov=True), lambda: optax.sgd(0.1, 0.9, nesterov=True)),
    ("adam", lambda: optimizers.adam(0.05), lambda: optax.adam(0.05)),
    ("adam_eps", lambda: optimizers.adam(0.05, 0.8, 0.99, eps=1e-3), lambda: optax.adam(0.05, 0.8, 0.99, eps=1e-3)),
    ("adamw", lambda: optimizers.adamw(0.05, weight_decay=0.1), lambda: optax.adamw(0.05, weight_decay=0.1)),
]


@pytest.mark.parametrize("name, hand, ref", CASES, ids=[c[0] for c in CASES])
def test_hand_optimisers_equal_optax(name, hand, ref):
    start, _ = _problem()
    ours, theirs = _run(hand()), _run(ref())
    assert _max_diff(ours, theirs) < 1e-6, name
    assert _max_diff(ours, start) > 1e-2  # the parameters did move


def test_each_convention_matters():
    """The 1e-6 test above would catch each of these plausible mistakes (they differ by far more)."""
    adam = _run(optax.adam(0.05, eps=1e-3))
    no_bias_correction = optax.chain(optax.scale_by_adam(eps=1e-3), optax.scale(-0.05))  # same as adam
    assert _max_diff(_run(no_bias_correction), adam) < 1e-6
    # epsilon inside the square root (eps_root) instead of outside
    assert _max_diff(_run(optax.adam(0.05, eps=0.0, eps_root=1e-6)), adam) > 1e-4

    def adam_without_bias_correction(lr, b1=0.9, b2=0.999, eps=1e-3):
        def update(g, s, p=None):
            m = jax.tree_util.tree_map(lambda g, m: (1 - b1) * g + b1 * m, g, s["m"])
            v = jax.tree_util.tree_map(lambda g, v: (1 - b2) * g * g + b2 * v, g, s["v"])
            return jax.tree_util.tree_map(lambda m, v: -lr * m / (jnp.sqrt(v) + eps), m, v), {"m": m, "v": v}

        init = lambda p: {
            "m": jax.tree_util.tree_map(jnp.zeros_like, p),
            "v": jax.tree_util.tree_map(jnp.zeros_like, p),
        }
        return optimizers.Transform(init, update)

    assert _max_diff(_run(adam_without_bias_correction(0.05)), adam) > 1e-3
    # AdamW (decoupled decay) is not Adam with the decay added to the gradient (L2)
    adamw = _run(optimizers.adamw(0.05, eps=1e-3, weight_decay=0.1))
    l2 = _run(optax.chain(optax.add_decayed_weights(0.1), optax.adam(0.05, eps=1e-3)))
    assert _max_diff(adamw, l2) > 1e-3
    # Nesterov is not heavy-ball momentum
    assert _max_diff(_run(optimizers.sgd(0.1, 0.9, True)), _run(optimizers.sgd(0.1, 0.9))) > 1e-3


def test_optimisers_work_under_jit_and_vmap():
    params, loss = _problem()
    tx = optimizers.adamw(0.05, weight_decay=0.1)
    batched = jax.tree_util.tree_map(lambda a: jnp.stack([a, a + 0.1]), params)

    @jax.jit
    def step(p, s):
        g = jax.vmap(jax.grad(loss))(p)
        u, s = jax.vmap(tx.update)(g, s, p)
        return optimizers.apply_updates(p, u), s

    p, s = batched, jax.vmap(tx.init)(batched)
    for _ in range(3):
        p, s = step(p, s)
    assert int(s["count"][0]) == 3
    ref = _run(optax.adamw(0.05, weight_decay=0.1), 3)
    assert _max_diff(jax.tree_util.tree_map(lambda a: a[0], p), ref) < 1e-6


def test_mnist_folder_round_trip_and_missing_or_bad_data(tmp_path):
    x, y = mnist.fake_mnist(50, seed=3)
    d = mnist.write_fake_mnist(tmp_path / "m", 100, 40)
    data = mnist.load_mnist(d)
    assert data["train_x"].shape == (100, 28, 28) and data["test_y"].shape == (40,)
    with pytest.raises(FileNotFoundError, match="MNIST not found"):
        mnist.load_mnist(tmp_path / "nowhere")
    (d / mnist.FILES["test_x"]).write_bytes(b"not gzip")
    with pytest.raises(OSError, match="gzip"):
        mnist.load_mnist(d)


def test_im2col_conv_equals_lax_conv():
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(2, 8, 8, 3)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(3, 3, 3, 5)), jnp.float32)  # HWIO
    ref = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    ours = mnist.conv3x3(x, w.reshape(27, 5), jnp.zeros(5))
    np.testing.assert_allclose(ours, ref, atol=1e-4)


@pytest.mark.slow
def test_tiny_run_hand_and_optax_agree(tmp_path):
    """The whole command on generated digits (slow: it compiles 8 optimisers' timing loops)."""
    d = mnist.write_fake_mnist(tmp_path / "m", 600, 300)
    m = optimizers.main(
        [
            f"optimizers.mnist_dir={d}",
            "optimizers.train_steps=60",
            "optimizers.n_seeds=2",
            "optimizers.batch_size=32",
            "checkpoint_every=30",
            f"run_dir={tmp_path / 'run'}",
        ]
    )
    for name in optimizers.OPTIMISERS:
        hand, ref = m[f"{name}_hand_test_accuracy"], m[f"{name}_optax_test_accuracy"]
        assert len(hand) == 2 and hand == ref, name  # same init, same batches: the same models
        # SGD repeats optax's float operations exactly; Adam's rounding differences grow with the steps
        # (about 1.5e-4 after these 60 steps, 1e-2 after the 800 of the real run) without changing predictions
        tol = 1e-4 if name.startswith("sgd") else 1e-2
        assert m[f"{name}_final_max_param_gap"] < tol and m[f"{name}_prediction_disagreement"] <= 0.01
    assert np.mean(m["adam_hand_test_accuracy"]) > 0.5  # generated digits: learnable
    rows = [json.loads(r) for r in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 60 and all(
        r["sgd_nesterov_hand_loss"] == pytest.approx(r["sgd_nesterov_optax_loss"], 1e-3) for r in rows
    )
    assert (tmp_path / "run" / "optimizers.png").is_file()
