"""Task 2: chain of thought for the random-number generator, and its ablation.

The task: "write a random number between 0 and a + b", for a prompt of two numbers a, b in
0..max_addend (so a + b <= 100). The target is uniform on 0..a+b. Two formats, the same model
(task 1's GPT: same size, same number of parameters), the same steps and batch size:

    direct:            BOS a b x          the model must find the bound a+b inside one forward pass
    chain of thought:  BOS a b s x        it first writes s = a + b (supervised), then x given s

Why reasoning can matter here: each direct example shows one draw of x ~ U{0..a+b}, which says
little about the bound a+b; the model must both add and shape a uniform distribution in one
pass. With the thought, s is taught exactly (one clean label per example) and x | s is an easy
lookup from the previous token. At test time the CoT model samples its own s, so an addition
error moves the whole distribution: both formats are judged on the distribution of x alone,
p(x | a, b) = sum_s p(s | a, b) p(x | a, b, s), computed exactly by enumerating s.

    python -m paperlab.toys.cot --config configs/toys/cot.yaml
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from paperlab.shared.cli import run_command
from paperlab.toys.common import Trainer, run_task, scan_trainer
from paperlab.toys.rand_transformer import BOS, GPT, N_VALUES

FORMATS = ("direct", "cot")
MAX_LEN = 5  # BOS a b s x: both formats use the same position table, hence the same parameters


def make_model(cc) -> GPT:
    return GPT(vocab=N_VALUES + 1, max_len=MAX_LEN, d_model=cc.d_model, n_heads=cc.n_heads, n_layers=cc.n_layers)


def target(a, b) -> np.ndarray:
    """Uniform on 0..a+b, as a (…, 101) array."""
    s = np.asarray(a) + np.asarray(b)
    return (np.arange(N_VALUES) <= s[..., None]) / (s[..., None] + 1.0)


def make_batch(key, cc, fmt: str):
    """Token sequences (B, 4 or 5) and a mask of the positions that are trained on (the outputs)."""
    k_a, k_b, k_x = jax.random.split(key, 3)
    a = jax.random.randint(k_a, (cc.batch_size,), 0, cc.max_addend + 1)
    b = jax.random.randint(k_b, (cc.batch_size,), 0, cc.max_addend + 1)
    s = a + b
    x = jnp.floor(jax.random.uniform(k_x, (cc.batch_size,)) * (s + 1)).astype(jnp.int32)
    bos = jnp.full_like(a, BOS)
    if fmt == "cot":
        return jnp.stack([bos, a, b, s, x], 1), jnp.array([0, 0, 1, 1], bool)
    return jnp.stack([bos, a, b, x], 1), jnp.array([0, 0, 1], bool)


def make_trainer(cfg) -> Trainer:
    """Both formats side by side in one state {"direct": (params, opt), "cot": (params, opt)}, from the same
    initialisation and the same data key; a step trains each on its own batch of fold_in(key, step)."""
    cc = cfg.cot
    model = make_model(cc)
    tx = optax.adamw(
        optax.warmup_cosine_decay_schedule(0.0, cc.lr, min(100, cc.train_steps // 10 + 1), cc.train_steps + 1),
        weight_decay=0.01,
    )
    init_key, data_key = jax.random.split(jax.random.key(cfg.seed))  # the same init for both formats
    entropy = float(np.mean([np.log(a + b + 1) for a in range(cc.max_addend + 1) for b in range(cc.max_addend + 1)]))

    def loss_fn(params, seq, mask):
        logits = model.apply({"params": params}, seq[:, :-1])
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, seq[:, 1:])
        # the x token's cross-entropy: its minimum is the target entropy E log(a+b+1)
        return (ce * mask).sum(1).mean() / mask.sum(), ce[:, -1].mean()

    def init():
        params = model.init(init_key, jnp.zeros((1, MAX_LEN - 1), jnp.int32))["params"]
        return {fmt: (params, tx.init(params)) for fmt in FORMATS}

    def step(state, i):
        new, curves = {}, {}
        for fmt in FORMATS:
            params, opt_state = state[fmt]
            seq, mask = make_batch(jax.random.fold_in(data_key, i), cc, fmt)
            (loss, ce_x), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, seq, mask)
            updates, opt_state = tx.update(grads, opt_state, params)
            new[fmt] = (optax.apply_updates(params, updates), opt_state)
            curves[f"{fmt}_loss"], curves[f"{fmt}_x_excess_ce"] = loss, ce_x - entropy
        return new, curves

    return scan_trainer(init, step, params=lambda state: {fmt: state[fmt][0] for fmt in FORMATS})


def x_distribution(model, params, a: np.ndarray, b: np.ndarray, fmt: str, top_k: int = 8):
    """p_model(x | a, b) over 0..100, shape (P, 101), and the probability mass it leaves out, shape (P,).

    Direct: exact (nothing left out). CoT: sum over the model's own thought s of p(s | a, b) p(x | a, b, s),
    for the top_k most likely s of each prompt; the mass of the other s is returned so that a TV computed
    from this partial sum can be bounded: TV <= 1/2 sum |p - q_partial| + 1/2 left_out.
    """
    P = len(a)
    bos = np.full(P, BOS)
    apply = jax.jit(lambda seq: model.apply({"params": params}, seq))
    logits = np.asarray(apply(jnp.asarray(np.stack([bos, a, b], 1))))
    first = np.asarray(jax.nn.softmax(jnp.asarray(logits[:, -1, :N_VALUES]), -1))  # (P, 101)
    if fmt == "direct":
        return first, np.zeros(P)
    s_top = np.argsort(-first, axis=1)[:, :top_k]  # (P, k) the thoughts worth enumerating
    p_s = np.take_along_axis(first, s_top, 1)  # (P, k)
    seq = np.stack([np.repeat(bos, top_k), np.repeat(a, top_k), np.repeat(b, top_k), s_top.ravel()], 1)
    p_x = np.asarray(jax.nn.softmax(apply(jnp.asarray(seq))[:, -1, :N_VALUES], -1)).reshape(P, top_k, N_VALUES)
    return (p_s[..., None] * p_x).sum(1), 1.0 - p_s.sum(1)


def tv_bound(p_true: np.ndarray, q: np.ndarray, left_out: np.ndarray) -> np.ndarray:
    """Per prompt: 1/2 sum |p - q| + 1/2 left_out (exact when nothing is left out)."""
    return 0.5 * np.abs(p_true - q).sum(1) + 0.5 * left_out


def evaluate(cfg, params) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from paperlab.shared.runlog import read_metrics

    cc = cfg.cot
    model = make_model(cc)
    grid = np.array([(a, b) for a in range(cc.max_addend + 1) for b in range(cc.max_addend + 1)])
    a, b = grid[:, 0], grid[:, 1]
    p_true = target(a, b)
    out = {
        "max_addend": cc.max_addend,
        "n_prompts": len(grid),
        "train_steps": cc.train_steps,
        "n_params": sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(params["direct"])),
    }
    dists, tvs = {}, {}
    for fmt in FORMATS:
        q, left_out = x_distribution(model, params[fmt], a, b, fmt)
        dists[fmt] = q
        tv = tvs[fmt] = tv_bound(p_true, q, left_out)
        out[f"{fmt}_left_out_mass_mean"] = float(left_out.mean())
        out[f"{fmt}_tv_mean"] = float(tv.mean())
        out[f"{fmt}_tv_median"] = float(np.median(tv))
        out[f"{fmt}_tv_max"] = float(tv.max())
        # mass the model puts above the bound a+b: numbers the task forbids
        out[f"{fmt}_mass_out_of_range"] = float(np.mean([qq[s + 1 :].sum() for qq, s in zip(q, a + b)]))
    logits = model.apply({"params": params["cot"]}, jnp.asarray(np.stack([np.full(len(a), BOS), a, b], 1)))
    out["cot_sum_accuracy_greedy"] = float((np.asarray(logits[:, -1, :N_VALUES]).argmax(-1) == a + b).mean())

    shows = [(3, 4), (20, 17), (45, 50)]
    shows = [(min(x, cc.max_addend), min(y, cc.max_addend)) for x, y in shows]
    fig, axes = plt.subplots(1, len(shows) + 1, figsize=(5 * (len(shows) + 1), 3.6))
    for ax, (pa, pb) in zip(axes, shows):
        i = pa * (cc.max_addend + 1) + pb
        ax.plot(np.arange(N_VALUES), p_true[i], "k", lw=1.5, label="target U{0..a+b}")
        for fmt, c in zip(FORMATS, ("C0", "C1")):
            ax.plot(np.arange(N_VALUES), dists[fmt][i], c, lw=1, label=f"{fmt}: TV {tvs[fmt][i]:.3f}")
        ax.set(title=f"a={pa}, b={pb}", xlabel="x", ylabel="p(x | a, b)")
        ax.legend(fontsize=7)
    rows = read_metrics(f"{cfg.run_dir}/metrics.jsonl")
    steps = [r["step"] for r in rows]
    for fmt, c in zip(FORMATS, ("C0", "C1")):
        axes[-1].plot(steps, np.maximum([r[f"{fmt}_x_excess_ce"] for r in rows], 1e-3), c, lw=0.4, label=fmt)
    axes[-1].set(
        yscale="log", xlabel="step", ylabel="CE of x - E log(a+b+1) (nats)", title="training (CoT: x given the true s)"
    )
    axes[-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{cfg.run_dir}/cot.png", dpi=100)
    plt.close(fig)

    tv_by_sum = {fmt: [float(tvs[fmt][(a + b) == s].mean()) for s in range(2 * cc.max_addend + 1)] for fmt in FORMATS}
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for fmt, c in zip(FORMATS, ("C0", "C1")):
        ax.plot(range(2 * cc.max_addend + 1), tv_by_sum[fmt], c, label=fmt)
    ax.set(xlabel="a + b", ylabel="exact TV, mean over prompts", title="distribution error by the bound a+b")
    ax.legend()
    fig.tight_layout()
    fig.savefig(f"{cfg.run_dir}/tv_by_sum.png", dpi=100)
    plt.close(fig)
    for fmt in FORMATS:  # the mean exact TV for each bound a+b (the figure's curves), for the report
        out[f"{fmt}_tv_by_sum"] = [round(v, 5) for v in tv_by_sum[fmt]]
    return out


def main(argv=None):
    return run_command(lambda a: run_task("cot", make_trainer, evaluate, a, __doc__), argv)


if __name__ == "__main__":
    main()
