"""Task 11: SGD (heavy-ball and Nesterov momentum), Adam and AdamW written by hand, against optax.

Each optimiser is a pair of pure functions, ``init(params) -> state`` and ``update(grads, state,
params) -> (updates, state)``, the protocol of an ``optax.GradientTransformation``; the new
parameters are ``params + updates``. They follow optax's conventions exactly, because at 1e-6 the
details show (the tests compare 20 steps with optax's and check that each detail matters):

- SGD: trace m <- g + mu m; update -lr m, or for Nesterov -lr (g + mu m) with the new m
  (PyTorch's and optax's form: no dampening, the trace starts at zero);
- Adam (Kingma & Ba 2015): m <- b1 m + (1 - b1) g, v <- b2 v + (1 - b2) g^2, with the step count t
  starting at 1, m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t), update -lr m_hat / (sqrt(v_hat) + eps):
  epsilon outside the square root, added after the bias correction;
- AdamW (Loshchilov & Hutter 2019): Adam's direction plus the decoupled decay wd * params, both
  scaled by lr: -lr (m_hat / (sqrt(v_hat) + eps) + wd * params). The decay never enters m or v
  (that would be Adam with L2 regularisation, a different optimiser).

The run trains the same small CNN on MNIST with every optimiser, by hand and optax's, from the
same initialisation and on the same minibatches, for ``n_seeds`` seeds: all 8 x n_seeds models in
one jitted ``lax.scan``, ``vmap``ped over seeds. It logs the loss curves and the largest parameter
difference between each hand optimiser and its optax twin, then reports test accuracy and the
time of one optimiser update and of one training step, by hand and optax's.

    python -m paperlab.toys.optimizers --config configs/toys/optimizers.yaml
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from paperlab.shared.cli import run_command
from paperlab.toys.common import Trainer, run_task, scan_trainer
from paperlab.toys.mnist import batch, cnn_apply, cnn_init, cross_entropy, load_mnist, n_params, to_float

tree_map = jax.tree_util.tree_map


class Transform(NamedTuple):
    """The optax protocol: ``init(params) -> state``; ``update(grads, state, params) -> (updates, state)``."""

    init: Callable[[Any], Any]
    update: Callable[[Any, Any, Any], tuple[Any, Any]]


def apply_updates(params, updates):
    return tree_map(lambda p, u: p + u, params, updates)


def sgd(lr: float, momentum: float = 0.0, nesterov: bool = False) -> Transform:
    """m <- g + momentum m; update = -lr m (heavy ball) or -lr (g + momentum m) (Nesterov)."""

    def init(params):
        return {"trace": tree_map(jnp.zeros_like, params)}

    def update(grads, state, params=None):
        trace = tree_map(lambda g, m: g + momentum * m, grads, state["trace"])
        direction = tree_map(lambda g, m: g + momentum * m, grads, trace) if nesterov else trace
        return tree_map(lambda d: -lr * d, direction), {"trace": trace}

    return Transform(init, update)


def adam(lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0) -> Transform:
    """Adam with bias correction; ``weight_decay > 0`` adds the decoupled decay of AdamW to the direction."""

    def init(params):
        zeros = tree_map(jnp.zeros_like, params)
        return {"m": zeros, "v": tree_map(jnp.zeros_like, params), "count": jnp.zeros((), jnp.int32)}

    def update(grads, state, params=None):
        t = state["count"] + 1
        m = tree_map(lambda g, m: (1 - b1) * g + b1 * m, grads, state["m"])
        v = tree_map(lambda g, v: (1 - b2) * g * g + b2 * v, grads, state["v"])
        c1, c2 = 1 - b1 ** t.astype(jnp.float32), 1 - b2 ** t.astype(jnp.float32)
        direction = tree_map(lambda m, v: (m / c1) / (jnp.sqrt(v / c2) + eps), m, v)
        if weight_decay:
            direction = tree_map(lambda d, p: d + weight_decay * p, direction, params)
        return tree_map(lambda d: -lr * d, direction), {"m": m, "v": v, "count": t}

    return Transform(init, update)


def adamw(lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, weight_decay: float = 1e-4) -> Transform:
    """AdamW: Adam's bias-corrected direction plus weight_decay * params, the sum scaled by -lr."""
    return adam(lr, b1, b2, eps, weight_decay)


OPTIMISERS = ("sgd_momentum", "sgd_nesterov", "adam", "adamw")
LABELS = {"sgd_momentum": "SGD + momentum", "sgd_nesterov": "SGD + Nesterov", "adam": "Adam", "adamw": "AdamW"}


def make_pair(name: str, oc) -> tuple[Transform, optax.GradientTransformation]:
    """(by hand, optax) with the same hyperparameters."""
    if name in ("sgd_momentum", "sgd_nesterov"):
        nesterov = name == "sgd_nesterov"
        return (sgd(oc.sgd_lr, oc.momentum, nesterov), optax.sgd(oc.sgd_lr, momentum=oc.momentum, nesterov=nesterov))
    if name == "adam":
        return adam(oc.adam_lr, oc.b1, oc.b2, oc.eps), optax.adam(oc.adam_lr, oc.b1, oc.b2, oc.eps)
    if name == "adamw":
        return (
            adamw(oc.adam_lr, oc.b1, oc.b2, oc.eps, oc.weight_decay),
            optax.adamw(oc.adam_lr, oc.b1, oc.b2, oc.eps, weight_decay=oc.weight_decay),
        )
    raise ValueError(f"unknown optimiser {name!r}")


# ----------------------------------------------------------------------------- training: 4 pairs x seeds in one scan


def _features(oc) -> tuple[int, int]:
    return (oc.width, 2 * oc.width)


def loss_fn(params, x, y):
    return cross_entropy(cnn_apply(params, x, 2), y)


def make_trainer(cfg, data: dict | None = None) -> Trainer:
    """State {optimiser/impl: (params, opt state)} with a leading seed axis. Seed s starts every
    optimiser from the same parameters, and step i of seed s draws the same minibatch for all of them."""
    oc = cfg.optimizers
    data = data if data is not None else load_mnist(oc.mnist_dir)
    x_all, y_all = jnp.asarray(data["train_x"]), jnp.asarray(data["train_y"])
    txs = {}
    for name in OPTIMISERS:
        txs[f"{name}/hand"], txs[f"{name}/optax"] = make_pair(name, oc)
    seeds = jnp.arange(oc.n_seeds)
    base = jax.random.key(cfg.seed)

    def init():
        params = jax.vmap(lambda s: cnn_init(jax.random.fold_in(base, s), _features(oc)))(seeds)
        return {k: (params, jax.vmap(tx.init)(params)) for k, tx in txs.items()}

    def one_seed(state, s, i):
        x, y = batch(
            jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(base, 1), s), i), x_all, y_all, oc.batch_size
        )
        new, losses = {}, {}
        for k, tx in txs.items():
            params, opt_state = state[k]
            loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
            updates, opt_state = tx.update(grads, opt_state, params)
            new[k], losses[k] = (apply_updates(params, updates), opt_state), loss
        return new, losses

    def step(state, i):
        state, losses = jax.vmap(one_seed, in_axes=(0, 0, None))(state, seeds, i)
        curves = {f"{k.replace('/', '_')}_loss": v.mean() for k, v in losses.items()}
        for name in OPTIMISERS:
            gap = tree_map(lambda a, b: jnp.abs(a - b).max(), state[f"{name}/hand"][0], state[f"{name}/optax"][0])
            curves[f"{name}_max_param_gap"] = jnp.max(jnp.stack(jax.tree_util.tree_leaves(gap)))
        return state, curves

    return scan_trainer(init, step, params=lambda state: {k: v[0] for k, v in state.items()})


# ----------------------------------------------------------------------------- evaluation


def time_per_call(fn, args, reps: int = 3) -> float:
    """Median seconds of one call of a jitted ``fn(*args)`` after compilation."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def timings(cfg, params_one, x, y, n: int = 100) -> dict[str, dict[str, float]]:
    """Microseconds per optimiser update (fixed gradients, n updates in one scan) and milliseconds per
    whole training step (forward, backward, update; n steps on one minibatch) of one model."""
    oc = cfg.optimizers
    grads = jax.grad(loss_fn)(params_one, x, y)
    out = {}
    for name in OPTIMISERS:
        for impl, tx in zip(("hand", "optax"), make_pair(name, oc)):

            @jax.jit
            def updates_only(p, s, tx=tx):
                def body(c, _):
                    p, s = c
                    u, s = tx.update(grads, s, p)
                    return (apply_updates(p, u), s), None

                return jax.lax.scan(body, (p, s), None, length=n)[0]

            @jax.jit
            def train_steps(p, s, tx=tx):
                def body(c, _):
                    p, s = c
                    g = jax.grad(loss_fn)(p, x, y)
                    u, s = tx.update(g, s, p)
                    return (apply_updates(p, u), s), None

                return jax.lax.scan(body, (p, s), None, length=n)[0]

            s0 = tx.init(params_one)
            out[f"{name}/{impl}"] = {
                "update_us": 1e6 * time_per_call(updates_only, (params_one, s0)) / n,
                "train_step_ms": 1e3 * time_per_call(train_steps, (params_one, s0)) / n,
            }
    return out


def evaluate(cfg, params) -> dict:
    from paperlab.shared.runlog import cpu_model, machine_load, read_metrics

    oc = cfg.optimizers
    data = load_mnist(oc.mnist_dir)
    xt, yt = to_float(data["test_x"]), jnp.asarray(data["test_y"], jnp.int32)

    @jax.jit
    def test_metrics(ps, x, y):  # ps: the seeds' models; the data are arguments, not constants to fold
        def one(p):
            logits = cnn_apply(p, x, 2)
            return cross_entropy(logits, y), (logits.argmax(-1) == y).mean(), logits.argmax(-1)

        return jax.lax.map(one, ps)

    out = {
        "n_seeds": oc.n_seeds,
        "train_steps": oc.train_steps,
        "batch_size": oc.batch_size,
        "n_params": n_params(tree_map(lambda a: a[0], params["adam/hand"])),
        "optimisers": list(OPTIMISERS),
    }
    preds = {}
    for k, p in params.items():
        loss, acc, preds[k] = test_metrics(p, xt, yt)
        key = k.replace("/", "_")
        out[f"{key}_test_accuracy"] = [round(float(a), 4) for a in acc]
        out[f"{key}_test_loss"] = [round(float(a), 4) for a in loss]
    for name in OPTIMISERS:
        gap = tree_map(lambda a, b: jnp.abs(a - b).max(), params[f"{name}/hand"], params[f"{name}/optax"])
        out[f"{name}_final_max_param_gap"] = float(max(jax.tree_util.tree_leaves(gap)))
        # test digits (over all seeds) on which the hand and the optax model predict different classes
        out[f"{name}_prediction_disagreement"] = float(jnp.mean(preds[f"{name}/hand"] != preds[f"{name}/optax"]))
    p1 = tree_map(lambda a: a[0], params["adam/hand"])
    out["timing"] = timings(cfg, p1, xt[: oc.batch_size], yt[: oc.batch_size])
    out["timing_machine"] = {"cpu": cpu_model(), "load": machine_load()}
    rows = read_metrics(f"{cfg.run_dir}/metrics.jsonl")
    figure(cfg, rows, out)
    return out


def figure(cfg, rows: list[dict], out: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.array([r["step"] for r in rows])

    def smooth(v, k=25):
        v = np.asarray(v)
        return np.convolve(v, np.ones(k) / k, mode="valid") if len(v) > k else v

    fig, axes = plt.subplots(1, 3, figsize=(16, 4))
    for c, name in enumerate(OPTIMISERS):
        for impl, ls in (("hand", "-"), ("optax", "--")):
            v = smooth([r[f"{name}_{impl}_loss"] for r in rows])
            axes[0].plot(steps[len(steps) - len(v) :], v, ls, color=f"C{c}", label=f"{LABELS[name]} ({impl})", lw=1)
        axes[1].plot(
            steps,
            np.maximum([r[f"{name}_max_param_gap"] for r in rows], 1e-10),
            color=f"C{c}",
            label=LABELS[name],
            lw=1,
        )
        for j, impl in enumerate(("hand", "optax")):
            acc = out[f"{name}_{impl}_test_accuracy"]
            axes[2].scatter(np.full(len(acc), 2 * c + j), acc, color=f"C{c}", marker="o" if impl == "hand" else "x")
    axes[0].set(
        yscale="log",
        xlabel="step",
        ylabel="training loss (moving mean of 25 steps)",
        title=f"mean of {cfg.optimizers.n_seeds} seeds; hand solid, optax dashed",
    )
    axes[0].legend(fontsize=7)
    axes[1].set(
        yscale="log",
        xlabel="step",
        ylabel="max |θ_hand − θ_optax| over parameters and seeds",
        title="hand vs optax, same init and batches",
    )
    axes[1].legend(fontsize=7)
    axes[2].set_xticks(
        range(2 * len(OPTIMISERS)), [f"{LABELS[n]}\n{i}" for n in OPTIMISERS for i in ("hand", "optax")], fontsize=6
    )
    axes[2].set(ylabel="test accuracy", title="test accuracy per seed")
    fig.tight_layout()
    fig.savefig(f"{cfg.run_dir}/optimizers.png", dpi=80)
    plt.close(fig)


def main(argv=None):
    return run_command(lambda a: run_task("optimizers", make_trainer, evaluate, a, __doc__), argv)


if __name__ == "__main__":
    main()
