"""Task 10: scaling laws of a small CNN on MNIST: validation loss against model size and data size.

The model: MNIST averaged down to 14x14 pixels, a 3x3 convolution of w channels, ReLU, 2x2
max-pooling, a 3x3 convolution of 2w channels, ReLU, and a linear layer to the 10 logits
(N = 18 w^2 + 992 w + 10 parameters: 1 020 at w = 1, 50 186 at w = 32). Two sweeps, every point
with ``n_seeds`` seeds, all trained for the same number of Adam steps:

- width: w = 1, 2, 4, ..., 32 on all D_max = ``train_size`` training images;
- data: D = D_max, D_max/2, ..., D_max/64 training images, at the widths ``data_widths``.

All models of one width are trained at once (``vmap`` over seeds and over training-set sizes: a
size is the range the minibatch indices are drawn from), in one jitted ``lax.scan`` per group.
The validation loss (cross-entropy on the last ``n_val`` of MNIST's 60000 training images, never trained on) is
measured every ``eval_every`` steps; a run's loss is the minimum (early stopping), so small
training sets are not charged for overfitting after their best point.

The fits, in :func:`fit_power_law` and :func:`fit_joint` (least squares on log L, as the
functional forms of Kaplan et al. 2020 and Hoffmann et al. 2022 are fitted; Hoffmann et al. use a
Huber loss on the same residuals):

    L(N) = E + A N^-alpha,   L(D) = E + B D^-beta,   L(N, D) = E + A N^-alpha + B D^-beta,

with 95% intervals of the exponents from a bootstrap over seeds (each point's seeds resampled
with replacement, the fit repeated).

    python -m paperlab.toys.scaling_laws --config configs/toys/scaling_laws.yaml
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from paperlab.shared.cli import run_command
from paperlab.toys.common import Trainer, run_task
from paperlab.toys.mnist import conv3x3, cross_entropy, load_mnist, max_pool2

# ----------------------------------------------------------------------------- power-law fits


def power_law(x, E, A, alpha):
    return E + A * np.asarray(x, float) ** (-alpha)


def fit_power_law(x, y) -> dict[str, float]:
    """Least-squares fit of log y = log(E + A x^-alpha) with E >= 0, A > 0.

    Start: a profile over E (for fixed E, log(y - E) = log A - alpha log x is a straight line),
    then all three parameters refined together."""
    from scipy.optimize import least_squares

    x, y = np.asarray(x, float), np.asarray(y, float)
    lx, ly = np.log(x), np.log(y)
    best = None
    for E in np.min(y) * np.linspace(0.0, 0.98, 50):
        slope, icpt = np.polyfit(lx, np.log(y - E), 1)
        r = np.sum((np.log(E + np.exp(icpt) * x**slope) - ly) ** 2)
        if best is None or r < best[0]:
            best = (r, E, icpt, -slope)
    _, E0, logA0, alpha0 = best

    def resid(p):
        E, logA, alpha = p
        return np.log(np.abs(E) + np.exp(logA - alpha * lx)) - ly

    sol = least_squares(resid, [E0, logA0, alpha0], method="lm")
    E, logA, alpha = sol.x
    return {
        "E": float(abs(E)),
        "A": float(np.exp(logA)),
        "alpha": float(alpha),
        "rms_log_residual": float(np.sqrt(np.mean(sol.fun**2))),
    }


def fit_joint(N, D, y, start=None) -> dict[str, float]:
    """Least-squares fit of log y = log(E + A N^-alpha + B D^-beta) (Hoffmann et al. 2022, eq. 2),
    from a grid of starting exponents (or from ``start``, a previous fit)."""
    from scipy.optimize import least_squares

    lN, lD, ly = np.log(np.asarray(N, float)), np.log(np.asarray(D, float)), np.log(np.asarray(y, float))

    def resid(p):
        E, logA, alpha, logB, beta = p
        return np.log(np.abs(E) + np.exp(logA - alpha * lN) + np.exp(logB - beta * lD)) - ly

    starts = (
        [start]
        if start is not None
        else [
            [0.5 * np.exp(ly.min()), a * lN.mean(), a, b * lD.mean(), b]
            for a in (0.2, 0.5, 1.0)
            for b in (0.2, 0.5, 1.0)
        ]
    )
    best = None
    for s0 in starts:
        sol = least_squares(resid, s0, method="lm", max_nfev=4000)
        if best is None or sol.cost < best.cost:
            best = sol
    E, logA, alpha, logB, beta = best.x
    return {
        "E": float(abs(E)),
        "A": float(np.exp(logA)),
        "alpha": float(alpha),
        "B": float(np.exp(logB)),
        "beta": float(beta),
        "rms_log_residual": float(np.sqrt(np.mean(best.fun**2))),
        "_raw": [float(v) for v in best.x],
    }


def bootstrap(points: list[tuple], fit, n: int, seed: int = 0, keys=("alpha",)) -> dict[str, list[float]]:
    """95% percentile intervals of ``fit``'s ``keys``: each point's seed losses resampled with replacement.

    ``points``: (coordinates..., array of per-seed losses); ``fit(*coordinate arrays, losses)``."""
    rng = np.random.default_rng(seed)
    draws = {k: [] for k in keys}
    for _ in range(n):
        cols = [[] for _ in range(len(points[0]))]
        for p in points:
            losses = np.asarray(p[-1])
            sample = rng.choice(losses, len(losses))
            for c, v in enumerate(p[:-1]):
                cols[c] += [v] * len(sample)
            cols[-1] += list(sample)
        f = fit(*[np.asarray(c) for c in cols])
        for k in keys:
            draws[k].append(f[k])
    return {k: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] for k, v in draws.items()}


# ----------------------------------------------------------------------------- the models


def n_params_of(width: int) -> int:
    return 9 * width + width + 18 * width * width + 2 * width + 7 * 7 * 2 * width * 10 + 10


def init(key, width: int) -> list[dict]:
    k1, k2, k3 = jax.random.split(key, 3)
    return [
        {"w": jax.random.normal(k1, (9, width)) * np.sqrt(2 / 9), "b": jnp.zeros(width)},
        {"w": jax.random.normal(k2, (9 * width, 2 * width)) * np.sqrt(2 / (9 * width)), "b": jnp.zeros(2 * width)},
        {"w": jax.random.normal(k3, (98 * width, 10)) / np.sqrt(98 * width), "b": jnp.zeros(10)},
    ]


def apply(params, x_Bx14x14x1):
    h = max_pool2(jax.nn.relu(conv3x3(x_Bx14x14x1, params[0]["w"], params[0]["b"])))
    h = jax.nn.relu(conv3x3(h, params[1]["w"], params[1]["b"]))
    return h.reshape(h.shape[0], -1) @ params[2]["w"] + params[2]["b"]


def downsample(x_u8_Nx28x28) -> np.ndarray:
    """uint8 28x28 -> float32 14x14x1 in [0, 1] (2x2 means)."""
    x = np.asarray(x_u8_Nx28x28, np.float32) / 255.0
    return x.reshape(-1, 14, 2, 14, 2).mean((2, 4))[..., None]


def sizes(sc) -> list[int]:
    return [sc.train_size // 2**k for k in range(sc.data_fracs)]


def groups(sc) -> dict[str, tuple[int, list[int]]]:
    """{group: (width, training-set size of each model in the group, seeds innermost)}."""
    d = sizes(sc)
    out = {f"width{w}": (w, [d[0]] * sc.n_seeds) for w in sc.widths if w not in sc.data_widths}
    for w in sc.data_widths:
        out[f"data_width{w}"] = (w, [s for s in d for _ in range(sc.n_seeds)])
    return out


def make_trainer(cfg, data: dict | None = None) -> Trainer:
    """State {group: (params, Adam state)} with a leading model axis; one chunk = blocks of
    ``eval_every`` steps, each followed by the validation loss of every model."""
    sc = cfg.scaling_laws
    data = data if data is not None else load_mnist(sc.mnist_dir)
    n_train = sc.train_size
    if sc.train_size + sc.n_val > len(data["train_y"]):
        raise ValueError(
            f"{sc.mnist_dir} has {len(data['train_y'])} training images, fewer than "
            f"train_size + n_val = {sc.train_size} + {sc.n_val}"
        )
    x = jnp.asarray(downsample(data["train_x"]))
    y = jnp.asarray(data["train_y"], jnp.int32)
    x_train, y_train, x_val, y_val = x[:n_train], y[:n_train], x[-sc.n_val :], y[-sc.n_val :]  # disjoint
    tx = optax.adam(optax.cosine_decay_schedule(sc.lr, sc.train_steps, alpha=0.05))
    base = jax.random.key(cfg.seed)
    gs = groups(sc)

    def init_all():
        state = {}
        for g, (w, ds) in gs.items():
            # model j of a group is seed j % n_seeds: the same initialisation at every training-set size
            keys = jnp.stack([jax.random.fold_in(jax.random.fold_in(base, w), j % sc.n_seeds) for j in range(len(ds))])
            params = jax.vmap(lambda k, w=w: init(k, w))(keys)
            state[g] = (params, jax.vmap(tx.init)(params))
        return state

    def train_step(p, s, d, j, i):
        idx = jax.random.randint(jax.random.fold_in(jax.random.fold_in(base, 10_000 + j), i), (sc.batch_size,), 0, d)
        loss, grads = jax.value_and_grad(lambda p: cross_entropy(apply(p, x_train[idx]), y_train[idx]))(p)
        u, s = tx.update(grads, s, p)
        return optax.apply_updates(p, u), s, loss

    def val_loss(p):
        return jnp.mean(
            jnp.stack(
                [cross_entropy(apply(p, x_val[k : k + 1000]), y_val[k : k + 1000]) for k in range(0, sc.n_val, 1000)]
            )
        )

    @jax.jit
    def run_block(state, start):
        out, curves = {}, {}
        for g, (_, ds) in gs.items():
            ds_a, js = jnp.asarray(ds), jnp.arange(len(ds)) % sc.n_seeds

            def body(c, i, ds_a=ds_a, js=js):
                p, s, loss = jax.vmap(train_step, in_axes=(0, 0, 0, 0, None))(*c, ds_a, js, i)
                return (p, s), loss.mean()

            out[g], losses = jax.lax.scan(body, state[g], start + jnp.arange(sc.eval_every))
            curves[f"{g}_train_loss"] = losses.mean()
            curves[f"{g}_val_loss"] = jax.vmap(val_loss)(out[g][0])
        return out, curves

    def run(state, start, n):
        rows = []
        for b in range(n // sc.eval_every):
            state, c = run_block(state, start + b * sc.eval_every)
            rows.append(c)
        curves = {k: np.stack([np.asarray(r[k]) for r in rows]) for k in rows[0]}
        curves["step"] = start + (np.arange(len(rows)) + 1) * sc.eval_every
        return state, curves

    return Trainer(jax.jit(init_all), run, lambda state: {g: v[0] for g, v in state.items()}, multiple=sc.eval_every)


# ----------------------------------------------------------------------------- evaluation: the fits and the figure

KAPLAN = "Kaplan et al. 2020 (language models, L = (N_c/N)^alpha_N etc.): alpha_N ≈ 0.076, alpha_D ≈ 0.095"
HOFFMANN = "Hoffmann et al. 2022 (Chinchilla, approach 3): E = 1.69, A = 406.4, B = 410.7, alpha = 0.34, beta = 0.28"


def runs_table(sc, curves: dict) -> list[dict]:
    """One row per trained model: width, N, D, seed, its best validation loss and the step of it."""
    d = sizes(sc)
    rows = []
    for g, (w, ds) in groups(sc).items():
        val = np.asarray(curves[f"{g}_val_loss"])  # (evaluations, models)
        for j, size in enumerate(ds):
            best = int(np.argmin(val[:, j]))
            rows.append(
                {
                    "group": g,
                    "width": w,
                    "N": n_params_of(w),
                    "D": size,
                    "seed": j % sc.n_seeds,
                    "val_loss": float(val[best, j]),
                    "best_eval": best + 1,
                    "final_val_loss": float(val[-1, j]),
                }
            )
    # the width sweep's point at the data widths is the data sweep's D_max point
    return [r for r in rows if r["D"] == d[0] or r["group"].startswith("data")]


def _points(rows, key: str) -> list[tuple]:
    xs = sorted({r[key] for r in rows})
    return [(x, [r["val_loss"] for r in rows if r[key] == x]) for x in xs]


def evaluate(cfg, params) -> dict:
    sc = cfg.scaling_laws
    curves = json.loads((Path(cfg.run_dir) / "curves.json").read_text())
    rows = runs_table(sc, curves)
    d_max = sizes(sc)[0]
    width_rows = [r for r in rows if r["D"] == d_max]
    out = {
        "runs": rows,
        "n_seeds": sc.n_seeds,
        "train_steps": sc.train_steps,
        "batch_size": sc.batch_size,
        "widths": list(sc.widths),
        "data_sizes": sizes(sc),
        "data_widths": list(sc.data_widths),
        "kaplan": KAPLAN,
        "hoffmann": HOFFMANN,
    }
    pts = _points(width_rows, "N")
    fit_n = fit_power_law(*zip(*[(x, v) for x, ls in pts for v in ls]))
    fit_n["alpha_95"] = bootstrap(pts, fit_power_law, sc.n_bootstrap, cfg.seed)["alpha"]
    out["fit_N"] = fit_n
    out["fit_D"] = {}
    for w in sc.data_widths:
        dpts = _points([r for r in rows if r["group"] == f"data_width{w}"], "D")
        f = fit_power_law(*zip(*[(x, v) for x, ls in dpts for v in ls]))
        f["beta_95"] = bootstrap(dpts, fit_power_law, sc.n_bootstrap, cfg.seed, keys=("alpha",))["alpha"]
        f["beta"] = f.pop("alpha")
        out["fit_D"][str(w)] = f
    # joint fit on every (N, D) point
    jpts = sorted({(r["N"], r["D"]) for r in rows})
    jpoints = [(n, dd, [r["val_loss"] for r in rows if (r["N"], r["D"]) == (n, dd)]) for n, dd in jpts]
    cols = [(n, dd, v) for n, dd, ls in jpoints for v in ls]
    joint = fit_joint(*map(np.asarray, zip(*cols)))
    start = joint.pop("_raw")
    ci = bootstrap(jpoints, lambda N, D, y: fit_joint(N, D, y, start), sc.n_bootstrap, cfg.seed, keys=("alpha", "beta"))
    joint["alpha_95"], joint["beta_95"] = ci["alpha"], ci["beta"]
    out["fit_joint"] = joint
    # where the laws break: residuals of the 1-D fits per point (log L - log fit, mean over seeds)
    out["residual_N"] = {
        str(x): float(np.mean(np.log(ls)) - np.log(power_law(x, fit_n["E"], fit_n["A"], fit_n["alpha"])))
        for x, ls in pts
    }
    figure(cfg, rows, out)
    return out


def figure(cfg, rows: list[dict], out: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sc = cfg.scaling_laws
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
    d_max = sizes(sc)[0]
    width_rows = [r for r in rows if r["D"] == d_max]
    pts = _points(width_rows, "N")
    xs = np.array([x for x, _ in pts])
    axes[0].errorbar(xs, [np.mean(v) for _, v in pts], [np.std(v) for _, v in pts], fmt="o", label="mean ± sd of seeds")
    grid = np.geomspace(xs.min(), xs.max(), 100)
    f = out["fit_N"]
    axes[0].plot(
        grid,
        power_law(grid, f["E"], f["A"], f["alpha"]),
        "k--",
        label=f"E + A N^-α: α = {f['alpha']:.2f} [{f['alpha_95'][0]:.2f}, {f['alpha_95'][1]:.2f}], E = {f['E']:.3f}",
    )
    axes[0].axhline(f["E"], color="grey", lw=0.8)
    axes[0].set(
        xscale="log",
        yscale="log",
        xlabel="parameters N",
        ylabel="validation loss (best)",
        title=f"width w = {', '.join(map(str, sc.widths))} at D = {d_max}",
    )
    axes[0].legend(fontsize=7)
    for c, w in enumerate(sc.data_widths):
        dpts = _points([r for r in rows if r["group"] == f"data_width{w}"], "D")
        ds = np.array([x for x, _ in dpts])
        axes[1].errorbar(
            ds,
            [np.mean(v) for _, v in dpts],
            [np.std(v) for _, v in dpts],
            fmt="o",
            color=f"C{c}",
            label=f"w = {w} (N = {n_params_of(w)})",
        )
        g = np.geomspace(ds.min(), ds.max(), 100)
        f = out["fit_D"][str(w)]
        axes[1].plot(
            g,
            power_law(g, f["E"], f["A"], f["beta"]),
            "--",
            color=f"C{c}",
            label=f"β = {f['beta']:.2f} [{f['beta_95'][0]:.2f}, {f['beta_95'][1]:.2f}], E = {f['E']:.3f}",
        )
    axes[1].set(
        xscale="log",
        yscale="log",
        xlabel="training images D",
        ylabel="validation loss (best)",
        title="training-set size",
    )
    axes[1].legend(fontsize=7)
    j = out["fit_joint"]
    pred = [j["E"] + j["A"] * r["N"] ** -j["alpha"] + j["B"] * r["D"] ** -j["beta"] for r in rows]
    axes[2].scatter(pred, [r["val_loss"] for r in rows], s=10)
    lo, hi = min(pred + [r["val_loss"] for r in rows]), max(pred + [r["val_loss"] for r in rows])
    axes[2].plot([lo, hi], [lo, hi], "k--", lw=0.8)
    axes[2].set(
        xscale="log",
        yscale="log",
        xlabel="joint fit E + A N^-α + B D^-β",
        ylabel="measured",
        title=f"joint fit: α = {j['alpha']:.2f}, β = {j['beta']:.2f}, E = {j['E']:.3f}",
    )
    fig.suptitle(
        f"{sc.n_seeds} seeds per point, {sc.train_steps} Adam steps of {sc.batch_size} images each; "
        "a run's loss is its best validation loss",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(f"{cfg.run_dir}/scaling.png", dpi=80)
    plt.close(fig)


def main(argv=None):
    return run_command(lambda a: run_task("scaling_laws", make_trainer, evaluate, a, __doc__), argv)


if __name__ == "__main__":
    main()
