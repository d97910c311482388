"""Task 3: a decoder-only transformer, every component written out, that learns to reverse sequences.

A training example is ``x_1 .. x_n SEP x_n .. x_1`` with ``x_i`` uniform in ``0..vocab-1``; the model
is trained with next-token cross-entropy on the reversed half only, and evaluated by greedy decoding
on held-out sequences: a sequence counts only if all n tokens are right (exact-sequence accuracy).

Held out by construction: test sequences have ``sum(x) % 7 == 0``; training sequences never do (their
first token is moved by one when they would), so no test sequence is ever seen in training.

    python -m paperlab.toys.reverse_digits --config configs/toys/reverse_digits.yaml
"""

from __future__ import annotations

from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from paperlab.shared.cli import run_command
from paperlab.toys.common import Trainer, run_task, scan_trainer

HOLDOUT_MOD = 7

# ----------------------------------------------------------------------------- the model, from scratch


class Linear(nn.Module):
    features: int

    @nn.compact
    def __call__(self, x_BxLxI):
        w_IxO = self.param("w", nn.initializers.lecun_normal(), (x_BxLxI.shape[-1], self.features))
        b_O = self.param("b", nn.initializers.zeros, (self.features,))
        return x_BxLxI @ w_IxO + b_O


class LayerNorm(nn.Module):
    """(x - mean) / sqrt(var + eps) over the feature axis, then a learned scale and shift."""

    eps: float = 1e-5

    @nn.compact
    def __call__(self, x_BxLxD):
        d = x_BxLxD.shape[-1]
        scale_D = self.param("scale", nn.initializers.ones, (d,))
        shift_D = self.param("shift", nn.initializers.zeros, (d,))
        mean = x_BxLxD.mean(-1, keepdims=True)
        var = ((x_BxLxD - mean) ** 2).mean(-1, keepdims=True)
        return (x_BxLxD - mean) / jnp.sqrt(var + self.eps) * scale_D + shift_D


def causal_mask(length: int) -> jax.Array:
    """mask[t, s] is True where position t may attend to position s, i.e. s <= t."""
    return jnp.tril(jnp.ones((length, length), dtype=bool))


class CausalSelfAttention(nn.Module):
    """softmax(Q K^T / sqrt(d_head) + mask) V for each head, heads concatenated and projected."""

    n_heads: int

    @nn.compact
    def __call__(self, x_BxLxD):
        B, L, D = x_BxLxD.shape
        H, K = self.n_heads, D // self.n_heads
        qkv_BxLx3xHxK = Linear(3 * D, name="qkv")(x_BxLxD).reshape(B, L, 3, H, K)
        q_BxLxHxK, k_BxLxHxK, v_BxLxHxK = (qkv_BxLx3xHxK[:, :, i] for i in range(3))
        logits_BxHxLxL = jnp.einsum("blhk,bmhk->bhlm", q_BxLxHxK, k_BxLxHxK) / jnp.sqrt(K)
        logits_BxHxLxL = jnp.where(causal_mask(L), logits_BxHxLxL, -1e30)
        att_BxHxLxL = jax.nn.softmax(logits_BxHxLxL, axis=-1)
        self.sow("intermediates", "attention", att_BxHxLxL)
        out_BxLxHxK = jnp.einsum("bhlm,bmhk->blhk", att_BxHxLxL, v_BxLxHxK)
        return Linear(D, name="out")(out_BxLxHxK.reshape(B, L, D))


class Block(nn.Module):
    n_heads: int

    @nn.compact
    def __call__(self, x_BxLxD):
        D = x_BxLxD.shape[-1]
        x_BxLxD = x_BxLxD + CausalSelfAttention(self.n_heads)(LayerNorm()(x_BxLxD))
        h_BxLx4D = jax.nn.gelu(Linear(4 * D)(LayerNorm()(x_BxLxD)))
        return x_BxLxD + Linear(D)(h_BxLx4D)


class Transformer(nn.Module):
    """Token + learned position embeddings, pre-LN blocks, a final layer norm and a linear read-out."""

    vocab: int
    max_len: int
    d_model: int
    n_heads: int
    n_layers: int

    @nn.compact
    def __call__(self, tokens_BxL):
        L = tokens_BxL.shape[1]
        if L > self.max_len:
            raise ValueError(f"sequence of length {L} longer than max_len={self.max_len}")
        tok_VxD = self.param("tok_emb", nn.initializers.normal(0.02), (self.vocab, self.d_model))
        pos_MxD = self.param("pos_emb", nn.initializers.normal(0.02), (self.max_len, self.d_model))
        x_BxLxD = tok_VxD[tokens_BxL] + pos_MxD[:L]
        for _ in range(self.n_layers):
            x_BxLxD = Block(self.n_heads)(x_BxLxD)
        return Linear(self.vocab, name="head")(LayerNorm()(x_BxLxD))


# ----------------------------------------------------------------------------- data


def make_model(rc) -> Transformer:
    return Transformer(
        vocab=rc.vocab + 1, max_len=2 * rc.length + 1, d_model=rc.d_model, n_heads=rc.n_heads, n_layers=rc.n_layers
    )


def sample_sequences(key, batch: int, length: int, vocab: int, train: bool) -> jax.Array:
    """(batch, length) tokens; training sequences avoid sum % 7 == 0, the held-out set."""
    x_BxN = jax.random.randint(key, (batch, length), 0, vocab)
    if train:
        bad_B = x_BxN.sum(1) % HOLDOUT_MOD == 0  # move x_1 by +-1: the sum moves by 1, out of the held-out class
        x0 = x_BxN[:, 0]
        x_BxN = x_BxN.at[:, 0].set(jnp.where(bad_B, jnp.where(x0 == vocab - 1, x0 - 1, x0 + 1), x0))
    return x_BxN


def test_sequences(n: int, length: int, vocab: int, seed: int) -> np.ndarray:
    """n distinct held-out sequences (sum % 7 == 0), or all of them when there are fewer."""
    rng = np.random.default_rng(seed + 10_000)
    if vocab**length <= 200_000:
        grid = np.stack(np.meshgrid(*[np.arange(vocab)] * length, indexing="ij"), -1).reshape(-1, length)
        pool = grid[grid.sum(1) % HOLDOUT_MOD == 0]
        return pool[rng.permutation(len(pool))[:n]]
    out, seen = [], set()
    while len(out) < n:
        x = rng.integers(0, vocab, length)
        if x.sum() % HOLDOUT_MOD == 0 and x.tobytes() not in seen:
            seen.add(x.tobytes())
            out.append(x)
    return np.stack(out)


def full_sequence(x_BxN: jax.Array, vocab: int) -> jax.Array:
    """x SEP reverse(x); SEP is token id ``vocab``."""
    sep_Bx1 = jnp.full((x_BxN.shape[0], 1), vocab, dtype=x_BxN.dtype)
    return jnp.concatenate([x_BxN, sep_Bx1, x_BxN[:, ::-1]], axis=1)


def loss_fn(params, model, seq_BxT, n: int):
    """Cross-entropy of the n reversed tokens, each predicted from everything before it."""
    logits_BxTxV = model.apply({"params": params}, seq_BxT[:, :-1])
    targets_BxN = seq_BxT[:, n + 1 :]
    logits_BxNxV = logits_BxTxV[:, n:]
    loss = optax.softmax_cross_entropy_with_integer_labels(logits_BxNxV, targets_BxN).mean()
    acc = (logits_BxNxV.argmax(-1) == targets_BxN).all(1).mean()
    return loss, acc


# ----------------------------------------------------------------------------- training: one jitted scan


def make_trainer(cfg) -> Trainer:
    """State (params, AdamW state); a step draws a batch of training sequences from fold_in(key, step)."""
    rc = cfg.reverse_digits
    model = make_model(rc)
    schedule = optax.warmup_cosine_decay_schedule(0.0, rc.lr, min(200, rc.train_steps // 10 + 1), rc.train_steps)
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=0.01))
    init_key, data_key = jax.random.split(jax.random.key(cfg.seed))

    def init():
        params = model.init(init_key, jnp.zeros((1, 2 * rc.length), jnp.int32))["params"]
        return params, tx.init(params)

    def step(carry, i):
        params, opt_state = carry
        x_BxN = sample_sequences(jax.random.fold_in(data_key, i), rc.batch_size, rc.length, rc.vocab, True)
        seq = full_sequence(x_BxN, rc.vocab)
        (loss, acc), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, model, seq, rc.length)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), {"loss": loss, "train_sequence_accuracy": acc}

    return scan_trainer(init, step)


@partial(jax.jit, static_argnums=(0, 3))
def greedy_reverse(model, params, x_BxN, vocab: int):
    """Feed x SEP, then append the argmax token n times; returns the n generated tokens."""
    B, n = x_BxN.shape
    sep = jnp.full((B, 1), vocab, dtype=x_BxN.dtype)
    buf_BxT = jnp.concatenate([x_BxN, sep, jnp.zeros((B, n), x_BxN.dtype)], axis=1)

    def body(i, buf_BxT):
        logits_BxTxV = model.apply({"params": params}, buf_BxT[:, :-1])
        nxt_B = logits_BxTxV[:, n + i].argmax(-1).astype(buf_BxT.dtype)
        return buf_BxT.at[:, n + 1 + i].set(nxt_B)

    return jax.lax.fori_loop(0, n, body, buf_BxT)[:, n + 1 :]


def exact_accuracy(model, params, x_BxN: np.ndarray, vocab: int) -> tuple[float, float]:
    """(exact-sequence accuracy, per-token accuracy) of greedy decoding."""
    out = np.asarray(greedy_reverse(model, params, jnp.asarray(x_BxN), vocab))
    hit = out == np.asarray(x_BxN)[:, ::-1]
    return float(hit.all(1).mean()), float(hit.mean())


# ----------------------------------------------------------------------------- evaluation and figures


def evaluate(cfg, params) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from paperlab.shared.runlog import read_metrics

    rc = cfg.reverse_digits
    model = make_model(rc)
    x_test = test_sequences(rc.n_test, rc.length, rc.vocab, cfg.seed)
    seq_acc, tok_acc = exact_accuracy(model, params, x_test, rc.vocab)

    # attention maps of one held-out example, every layer and head
    seq = np.asarray(full_sequence(jnp.asarray(x_test[:1]), rc.vocab))[0]
    _, state = model.apply({"params": params}, jnp.asarray(seq[None, :-1]), mutable=["intermediates"])
    blocks = sorted(k for k in state["intermediates"] if k.startswith("Block"))
    maps = [np.asarray(state["intermediates"][k]["CausalSelfAttention_0"]["attention"][0][0]) for k in blocks]
    labels = [str(t) if t < rc.vocab else "|" for t in seq[:-1]]
    fig, axes = plt.subplots(rc.n_layers, rc.n_heads, figsize=(2.6 * rc.n_heads, 2.6 * rc.n_layers), squeeze=False)
    for layer, att_HxLxL in enumerate(maps):
        for h in range(rc.n_heads):
            ax = axes[layer, h]
            ax.imshow(att_HxLxL[h], cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks(range(len(labels)), labels, fontsize=6)
            ax.set_yticks(range(len(labels)), labels, fontsize=6)
            ax.set_title(f"layer {layer + 1}, head {h + 1}", fontsize=8)
    fig.suptitle("attention (row: query position, column: key) on a held-out sequence", fontsize=9)
    fig.tight_layout()
    fig.savefig(f"{cfg.run_dir}/attention.png", dpi=110)
    plt.close(fig)

    metrics_path = f"{cfg.run_dir}/metrics.jsonl"
    rows = read_metrics(metrics_path)
    fig, ax = plt.subplots(1, 2, figsize=(8, 3))
    ax[0].semilogy([r["step"] for r in rows], [r["loss"] for r in rows])
    ax[0].set(xlabel="step", ylabel="cross-entropy (reversed half)")
    ax[1].plot([r["step"] for r in rows], [r["train_sequence_accuracy"] for r in rows])
    ax[1].set(xlabel="step", ylabel="exact-seq. accuracy (train batch)")
    fig.tight_layout()
    fig.savefig(f"{cfg.run_dir}/training.png", dpi=110)
    plt.close(fig)
    n_params = sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(params))
    return {
        "test_exact_sequence_accuracy": seq_acc,
        "test_token_accuracy": tok_acc,
        "n_test": len(x_test),
        "final_train_loss": float(rows[-1]["loss"]),
        "n_params": n_params,
        "length": rc.length,
        "vocab": rc.vocab,
        "train_steps": rc.train_steps,
    }


def main(argv=None):
    return run_command(lambda a: run_task("reverse_digits", make_trainer, evaluate, a, __doc__), argv)


if __name__ == "__main__":
    main()
