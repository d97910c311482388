"""Causal masks of both transformers, and the reversal model reaching 100% on a tiny configuration."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from paperlab.toys import rand_transformer, reverse_digits
from paperlab.toys.common import train_all
from paperlab.toys.config import Config


def _check_causal(apply, tokens: np.ndarray, vocab: int):
    out = np.asarray(apply(jnp.asarray(tokens)))
    L = tokens.shape[1]
    for t in range(L - 1):
        changed = tokens.copy()
        changed[:, t + 1] = (changed[:, t + 1] + 1) % vocab  # change token t+1 only
        out2 = np.asarray(apply(jnp.asarray(changed)))
        np.testing.assert_allclose(out2[:, : t + 1], out[:, : t + 1], atol=1e-5, err_msg=f"position <= {t} saw t+1")
        assert np.abs(out2[:, t + 1 :] - out[:, t + 1 :]).max() > 1e-4, "later outputs ignore the changed token"


@pytest.mark.slow  # test_mask_and_attention_rows checks the same model's mask and weights
def test_from_scratch_attention_is_causal():
    cfg = Config(task="reverse_digits")
    cfg.reverse_digits.n_layers = 2
    model = reverse_digits.make_model(cfg.reverse_digits)
    L = 2 * cfg.reverse_digits.length
    params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, L), jnp.int32))["params"]
    tokens = np.random.default_rng(0).integers(0, cfg.reverse_digits.vocab + 1, (3, L))
    _check_causal(jax.jit(lambda x: model.apply({"params": params}, x)), tokens, cfg.reverse_digits.vocab + 1)


def test_mask_and_attention_rows():
    m = np.asarray(reverse_digits.causal_mask(4))
    assert (m == np.tril(np.ones((4, 4), bool))).all()
    cfg = Config(task="reverse_digits")
    cfg.reverse_digits.d_model, cfg.reverse_digits.n_heads = 16, 2
    model = reverse_digits.make_model(cfg.reverse_digits)
    x = jnp.zeros((2, 6), jnp.int32)
    params = model.init(jax.random.key(1), x)["params"]
    _, state = model.apply({"params": params}, x, mutable=["intermediates"])
    att = np.asarray(state["intermediates"]["Block_0"]["CausalSelfAttention_0"]["attention"][0])
    np.testing.assert_allclose(att.sum(-1), 1.0, atol=1e-5)  # softmax rows
    assert np.abs(np.triu(att, k=1)).max() == 0.0  # no weight on the future


def test_library_gpt_is_causal():
    cfg = Config(task="rand_transformer")
    cfg.rand_transformer.n_layers, cfg.rand_transformer.d_model = 1, 32
    model = rand_transformer.make_model(cfg.rand_transformer)
    params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 8), jnp.int32))["params"]
    tokens = np.random.default_rng(1).integers(0, 102, (2, 8))
    _check_causal(jax.jit(lambda x: model.apply({"params": params}, x)), tokens, 102)


def test_heldout_split_is_disjoint():
    x = np.asarray(reverse_digits.sample_sequences(jax.random.key(0), 4096, 3, 4, train=True))
    assert (x.sum(1) % reverse_digits.HOLDOUT_MOD != 0).all()
    assert x.min() >= 0 and x.max() <= 3
    test = reverse_digits.test_sequences(1000, 3, 4, seed=0)
    assert (test.sum(1) % reverse_digits.HOLDOUT_MOD == 0).all()
    assert len({t.tobytes() for t in test}) == len(test)


@pytest.mark.slow  # 200 training steps and a held-out evaluation
def test_tiny_reversal_reaches_100_percent():
    cfg = Config(task="reverse_digits")
    rc = cfg.reverse_digits
    rc.vocab, rc.length, rc.d_model, rc.n_heads, rc.n_layers = 5, 4, 32, 2, 1
    rc.train_steps, rc.batch_size, rc.lr = 200, 64, 1e-2
    params, curves = train_all(reverse_digits.make_trainer(cfg), rc.train_steps)
    model = reverse_digits.make_model(rc)
    test = reverse_digits.test_sequences(1000, rc.length, rc.vocab, seed=0)
    acc, tok = reverse_digits.exact_accuracy(model, params, test, rc.vocab)
    assert acc == 1.0, f"held-out exact accuracy {acc:.3f} (token {tok:.3f}), final loss {curves['loss'][-1]:.4f}"
    assert curves["loss"][-1] < curves["loss"][0] / 10


@pytest.mark.parametrize("bad", ["reverse_digits.d_model=30", "task=nope", "reverse_digits.nope=1"])
def test_bad_config_is_refused(bad):
    from paperlab.shared.config import ConfigError, load_config

    with pytest.raises(ConfigError):
        load_config(Config, None, [bad])
