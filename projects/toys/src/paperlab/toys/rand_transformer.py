"""Task 1: a shallow causal transformer that generates random numbers between 0 and 100.

Training sequences are ``BOS x_1 .. x_L`` with the x_i drawn i.i.d. from a target distribution p on
0..100 (default: two bumps on a uniform floor). The model, trained with next-token cross-entropy,
should write numbers whose distribution is p at every position. Evaluation: the exact TV and KL of
the model's next-number distribution at each position (no sampling noise), and the TV / KL of
generated samples, next to the TV / KL of as many exact samples of p (the sampling noise floor).

This module's model (flax's own attention and layers) is reused by the chain-of-thought task.

    python -m paperlab.toys.rand_transformer --config configs/toys/rand_transformer.yaml
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from paperlab.shared.cli import run_command
from paperlab.toys.common import (
    Trainer,
    kl_divergence,
    run_task,
    sample_distances,
    sampling_floor,
    scan_trainer,
    total_variation,
)

N_VALUES = 101  # the numbers 0..100 are tokens 0..100
BOS = 101


def target_distribution(name: str) -> np.ndarray:
    """p on 0..100: 'uniform', or 'bimodal' = 0.1 uniform + 0.55 N(25, 6^2) + 0.35 N(70, 10^2), discretised."""
    x = np.arange(N_VALUES)
    if name == "uniform":
        return np.full(N_VALUES, 1.0 / N_VALUES)
    bump = lambda mu, sd: np.exp(-0.5 * ((x - mu) / sd) ** 2) / np.exp(-0.5 * ((x - mu) / sd) ** 2).sum()
    p = 0.1 / N_VALUES + 0.55 * bump(25, 6) + 0.35 * bump(70, 10)
    return p / p.sum()


class GPT(nn.Module):
    """Token + position embeddings, `n_layers` pre-LN blocks (flax's causal self-attention + MLP), read-out."""

    vocab: int
    max_len: int
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2

    @nn.compact
    def __call__(self, tokens_BxL):
        L = tokens_BxL.shape[1]
        x_BxLxD = nn.Embed(self.vocab, self.d_model)(tokens_BxL) + nn.Embed(self.max_len, self.d_model)(jnp.arange(L))
        mask = nn.make_causal_mask(tokens_BxL)
        for _ in range(self.n_layers):
            x_BxLxD = x_BxLxD + nn.SelfAttention(self.n_heads, deterministic=True)(nn.LayerNorm()(x_BxLxD), mask=mask)
            h = nn.gelu(nn.Dense(4 * self.d_model)(nn.LayerNorm()(x_BxLxD)))
            x_BxLxD = x_BxLxD + nn.Dense(self.d_model)(h)
        return nn.Dense(self.vocab)(nn.LayerNorm()(x_BxLxD))


def make_model(rc) -> GPT:
    return GPT(vocab=N_VALUES + 1, max_len=rc.seq_len + 1, d_model=rc.d_model, n_heads=rc.n_heads, n_layers=rc.n_layers)


def make_trainer(cfg) -> Trainer:
    """State (params, AdamW state); a step draws a batch of sequences from fold_in(key, step)."""
    rc = cfg.rand_transformer
    model = make_model(rc)
    logp = jnp.log(jnp.asarray(target_distribution(rc.target)))
    entropy = float(-(np.exp(logp) * logp).sum())
    tx = optax.adamw(
        optax.warmup_cosine_decay_schedule(0.0, rc.lr, min(100, rc.train_steps // 10 + 1), rc.train_steps + 1),
        weight_decay=0.01,
    )
    init_key, data_key = jax.random.split(jax.random.key(cfg.seed))

    def loss_fn(params, x_BxL):
        seq = jnp.concatenate([jnp.full((x_BxL.shape[0], 1), BOS), x_BxL], axis=1)
        logits = model.apply({"params": params}, seq[:, :-1])
        return optax.softmax_cross_entropy_with_integer_labels(logits, x_BxL).mean()

    def init():
        params = model.init(init_key, jnp.zeros((1, rc.seq_len), jnp.int32))["params"]
        return params, tx.init(params)

    def step(carry, i):
        params, opt_state = carry
        x_BxL = jax.random.categorical(jax.random.fold_in(data_key, i), logp, shape=(rc.batch_size, rc.seq_len))
        loss, grads = jax.value_and_grad(loss_fn)(params, x_BxL)
        updates, opt_state = tx.update(grads, opt_state, params)
        # cross-entropy minus the target's entropy = KL(p || model) averaged over positions, up to batch noise
        return (optax.apply_updates(params, updates), opt_state), {"loss": loss, "excess_loss": loss - entropy}

    return scan_trainer(init, step)


def generate(model, params, key, n_seq: int, length: int, prefix=None, allowed: int = N_VALUES):
    """Sample `length` tokens after `prefix` (default: BOS) at temperature 1, only tokens < `allowed`."""
    prefix = jnp.full((n_seq, 1), BOS, jnp.int32) if prefix is None else jnp.asarray(prefix, jnp.int32)
    P = prefix.shape[1]

    @jax.jit
    def run(key):
        buf = jnp.concatenate([prefix, jnp.zeros((n_seq, length), jnp.int32)], axis=1)

        def body(i, carry):
            buf, key = carry
            key, sub = jax.random.split(key)
            logits = model.apply({"params": params}, buf[:, :-1])
            logits_i = jax.lax.dynamic_index_in_dim(logits, P - 1 + i, axis=1, keepdims=False)
            logits_i = jnp.where(jnp.arange(logits_i.shape[-1]) < allowed, logits_i, -jnp.inf)
            tok = jax.random.categorical(sub, logits_i)
            return buf.at[:, P + i].set(tok), key

        buf, _ = jax.lax.fori_loop(0, length, body, (buf, key))
        return buf[:, P:]

    return np.asarray(run(key))


def position_distributions(model, params, sequences: np.ndarray) -> np.ndarray:
    """Model's distribution over 0..100 at every position of BOS + sequences, renormalised: (B, L, 101)."""
    seq = jnp.concatenate([jnp.full((len(sequences), 1), BOS), jnp.asarray(sequences)], axis=1)
    logits = model.apply({"params": params}, seq[:, :-1])
    return np.asarray(jax.nn.softmax(logits[..., :N_VALUES], axis=-1))


def evaluate(cfg, params) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from paperlab.shared.runlog import read_metrics

    rc = cfg.rand_transformer
    model = make_model(rc)
    p = target_distribution(rc.target)
    n_seq = max(1, rc.n_samples // rc.seq_len)
    samples = generate(model, params, jax.random.key(cfg.seed + 1), n_seq, rc.seq_len)
    n = samples.size
    dist = sample_distances(p, samples)
    floor = sampling_floor(p, n, np.random.default_rng(cfg.seed))
    # exact: the model's distribution at each position, in the context of its own generated sequences
    q_BxLxV = position_distributions(model, params, samples)
    tv_pos = [float(np.mean([total_variation(p, q) for q in q_BxLxV[:, t]])) for t in range(rc.seq_len)]
    kl_pos = [float(np.mean([kl_divergence(p, q) for q in q_BxLxV[:, t]])) for t in range(rc.seq_len)]
    # how much the numbers of one sequence depend on each other: correlation of neighbours (target: 0)
    lag1 = float(np.corrcoef(samples[:, :-1].ravel(), samples[:, 1:].ravel())[0, 1])

    rows = read_metrics(f"{cfg.run_dir}/metrics.jsonl")
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))
    axes[0].bar(
        np.arange(N_VALUES),
        np.bincount(samples.ravel(), minlength=N_VALUES) / n,
        width=1.0,
        alpha=0.6,
        label=f"generated ({n} numbers)",
    )
    axes[0].plot(np.arange(N_VALUES), p, "k", lw=1.5, label="target p")
    axes[0].set(
        xlabel="number",
        ylabel="probability",
        title=f"TV {dist['tv']:.3f} (floor {floor['tv_mean']:.3f} ± {floor['tv_std']:.3f})",
    )
    axes[0].legend(fontsize=8)
    axes[1].plot(range(1, rc.seq_len + 1), tv_pos, "o-")
    axes[1].set(
        xlabel="position in the sequence",
        ylabel="exact TV(p, model)",
        ylim=(0, None),
        title="model's next-number distribution vs p",
    )
    axes[2].semilogy([r["step"] for r in rows], np.maximum([r["excess_loss"] for r in rows], 1e-4), lw=0.5)
    axes[2].set(xlabel="step", ylabel="cross-entropy - H(p) (nats)", title="training")
    fig.tight_layout()
    fig.savefig(f"{cfg.run_dir}/distribution.png", dpi=100)
    plt.close(fig)
    return {
        "target": rc.target,
        "n_samples": int(n),
        "sample_tv": dist["tv"],
        "sample_kl": dist["kl"],
        "floor_tv_mean": floor["tv_mean"],
        "floor_tv_std": floor["tv_std"],
        "floor_kl_mean": floor["kl_mean"],
        "floor_kl_std": floor["kl_std"],
        "exact_tv_mean_over_positions": float(np.mean(tv_pos)),
        "exact_kl_mean_over_positions": float(np.mean(kl_pos)),
        "exact_tv_per_position": tv_pos,
        "lag1_correlation": lag1,
        "train_steps": rc.train_steps,
        "n_params": sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(params)),
    }


def main(argv=None):
    return run_command(lambda a: run_task("rand_transformer", make_trainer, evaluate, a, __doc__), argv)


if __name__ == "__main__":
    main()
