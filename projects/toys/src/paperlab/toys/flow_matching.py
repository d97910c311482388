"""Task 4: flow matching (Lipman et al. 2022, arXiv 2210.02747) on two moons.

Noise x0 ~ N(0, I) is carried to data x1 along the conditional optimal-transport path

    x_t = (1 - (1 - sigma_min) t) x0 + t x1,    u_t(x_t | x1) = x1 - (1 - sigma_min) x0,

and a small MLP v_theta(x, t) regresses u_t (the conditional flow-matching loss, whose gradient
equals that of regressing the intractable marginal field). Sampling integrates dx/dt = v_theta(x, t)
from t=0 to 1 with Euler steps. Quality: the energy distance between generated and held-out points,
next to the same distance between two independent draws of real data (the floor for that n).

    python -m paperlab.toys.flow_matching --config configs/toys/flow_matching.yaml
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from paperlab.toys.common import energy_distance, mmd_rbf, run_task

# two moons (sklearn's make_moons, written in JAX so that batches are drawn inside the jitted loop),
# shifted and scaled per axis to roughly zero mean and unit variance
MOONS_CENTER = np.array([0.5, 0.25], np.float32)
MOONS_SCALE = np.array([0.87, 0.5], np.float32)


def sample_moons(key, n: int, noise: float) -> jax.Array:
    k_t, k_side, k_noise = jax.random.split(key, 3)
    t = jax.random.uniform(k_t, (n,), minval=0.0, maxval=jnp.pi)
    upper = jax.random.bernoulli(k_side, 0.5, (n,))
    x = jnp.where(upper, jnp.cos(t), 1.0 - jnp.cos(t))
    y = jnp.where(upper, jnp.sin(t), 0.5 - jnp.sin(t))
    pts = jnp.stack([x, y], -1) + noise * jax.random.normal(k_noise, (n, 2))
    return (pts - MOONS_CENTER) / MOONS_SCALE


class TimeMLP(nn.Module):
    """f(x, t): [x, sin/cos features of t] -> `layers` hidden SiLU layers of width `hidden` -> 2.

    The same network (size and inputs) serves flow matching (t in [0, 1]) and DDPM (t = step / T).
    """

    hidden: int = 128
    layers: int = 3
    n_freq: int = 8

    @nn.compact
    def __call__(self, x_Bx2, t_B):
        freqs = 2.0 ** jnp.arange(self.n_freq) * jnp.pi
        ang_BxF = t_B[:, None] * freqs[None, :]
        h = jnp.concatenate([x_Bx2, jnp.sin(ang_BxF), jnp.cos(ang_BxF)], axis=-1)
        for _ in range(self.layers):
            h = nn.silu(nn.Dense(self.hidden)(h))
        return nn.Dense(x_Bx2.shape[-1])(h)


# ----------------------------------------------------------------------------- the flow-matching objective


def interpolate(x0, x1, t, sigma_min: float = 0.0):
    """psi_t(x0 | x1) = (1 - (1 - sigma_min) t) x0 + t x1: the conditional OT path (Lipman et al., eq. 22)."""
    t = t[:, None]
    return (1.0 - (1.0 - sigma_min) * t) * x0 + t * x1


def target_velocity(x0, x1, sigma_min: float = 0.0):
    """d/dt psi_t(x0 | x1) = x1 - (1 - sigma_min) x0, the regression target of conditional flow matching."""
    return x1 - (1.0 - sigma_min) * x0


def cfm_loss(params, model, key, x1, sigma_min: float):
    k_x0, k_t = jax.random.split(key)
    x0 = jax.random.normal(k_x0, x1.shape)
    t = jax.random.uniform(k_t, (x1.shape[0],))
    xt = interpolate(x0, x1, t, sigma_min)
    v = model.apply({"params": params}, xt, t)
    return ((v - target_velocity(x0, x1, sigma_min)) ** 2).sum(-1).mean()


def make_model(fc) -> TimeMLP:
    return TimeMLP(hidden=fc.hidden, layers=fc.layers)


def init_params(cfg):
    return make_model(cfg.flow_matching).init(jax.random.key(cfg.seed), jnp.zeros((1, 2)), jnp.zeros((1,)))["params"]


def train(cfg):
    fc = cfg.flow_matching
    model = make_model(fc)
    tx = optax.adam(optax.cosine_decay_schedule(fc.lr, fc.train_steps, alpha=0.05))

    @jax.jit
    def train_fn(key):
        init_key, data_key = jax.random.split(key)
        params = model.init(init_key, jnp.zeros((1, 2)), jnp.zeros((1,)))["params"]

        def step(carry, i):
            params, opt_state = carry
            k_data, k_loss = jax.random.split(jax.random.fold_in(data_key, i))
            x1 = sample_moons(k_data, fc.batch_size, fc.moons_noise)
            loss, grads = jax.value_and_grad(cfm_loss)(params, model, k_loss, x1, fc.sigma_min)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), jnp.arange(fc.train_steps))
        return params, losses

    params, losses = train_fn(jax.random.key(cfg.seed))
    return params, {"loss": np.asarray(losses)}


def sample(model, params, key, n: int, steps: int):
    """Euler integration of dx/dt = v(x, t) from t=0 to 1; returns the whole trajectory (steps+1, n, 2)."""
    x0 = jax.random.normal(key, (n, 2))
    dt = 1.0 / steps

    @jax.jit
    def run(x0):
        def step(x, i):
            t = jnp.full((n,), i * dt)
            x = x + dt * model.apply({"params": params}, x, t)
            return x, x

        _, xs = jax.lax.scan(step, x0, jnp.arange(steps))
        return jnp.concatenate([x0[None], xs], 0)

    return np.asarray(run(x0))


# ------------------------------------------------------------ evaluation and figures (shared with diffusion)


def quality(generated: np.ndarray, noise: float, seed: int) -> dict:
    """Energy distance and RBF-MMD^2 to held-out data, and the same for two independent real draws."""
    n = len(generated)
    held_out = np.asarray(sample_moons(jax.random.key(10_000 + seed), n, noise))
    other = np.asarray(sample_moons(jax.random.key(20_000 + seed), n, noise))
    return {
        "energy_distance": energy_distance(generated, held_out),
        "energy_distance_real_vs_real": energy_distance(other, held_out),
        "mmd_rbf": mmd_rbf(generated, held_out),
        "mmd_rbf_real_vs_real": mmd_rbf(other, held_out),
        "n_samples": n,
    }


LIM = 2.6


def _field_frame(ax, grid_xy, field, points, title):
    ax.quiver(
        grid_xy[:, 0],
        grid_xy[:, 1],
        field[:, 0],
        field[:, 1],
        np.linalg.norm(field, axis=1),
        cmap="coolwarm",
        angles="xy",
        scale_units="xy",
        scale=6.0,
        width=0.006,
    )
    ax.scatter(points[:, 0], points[:, 1], s=2, c="k", alpha=0.5)
    ax.set(xlim=(-LIM, LIM), ylim=(-LIM, LIM), xticks=[], yticks=[], aspect="equal")
    ax.set_title(title, fontsize=9)


def figures(
    results_dir: str,
    traj: np.ndarray,
    field_fn,
    times: np.ndarray,
    data: np.ndarray,
    label: str,
    field_name: str,
    losses: list[float] | None,
) -> None:
    """Samples vs data, a panel of snapshots of the field + particles, and the GIF of the whole sampling.

    ``traj[k]`` are the particles after k steps, ``times[k]`` the time label of that frame and
    ``field_fn(x, k)`` the field that moves them at frame k.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from paperlab.shared.gif import save_gif

    g = np.linspace(-LIM, LIM, 17)
    grid_xy = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2).astype(np.float32)
    n_frames = len(traj)

    fig, axes = plt.subplots(1, 3 if losses else 2, figsize=(11 if losses else 7.5, 3.6))
    axes[0].scatter(data[:, 0], data[:, 1], s=2, alpha=0.5)
    axes[0].set_title("held-out data", fontsize=9)
    axes[1].scatter(traj[-1][:, 0], traj[-1][:, 1], s=2, alpha=0.5, c="C1")
    axes[1].set_title(f"{label}: {len(traj[-1])} samples, {n_frames - 1} steps", fontsize=9)
    for ax in axes[:2]:
        ax.set(xlim=(-LIM, LIM), ylim=(-LIM, LIM), aspect="equal")
    if losses:
        axes[2].plot(np.arange(1, len(losses) + 1), losses, lw=0.5)
        axes[2].set(yscale="log", xlabel="step", ylabel="training loss")
    fig.tight_layout()
    fig.savefig(f"{results_dir}/samples.png", dpi=100)
    plt.close(fig)

    picks = np.linspace(0, n_frames - 1, 5).round().astype(int)
    fig, axes = plt.subplots(1, 5, figsize=(15, 3.2))
    for ax, k in zip(axes, picks):
        _field_frame(ax, grid_xy, field_fn(grid_xy, min(k, n_frames - 2)), traj[k], f"{times[k]}")
    fig.suptitle(f"{label}: {field_name} and the particles during sampling", fontsize=10)
    fig.tight_layout()
    fig.savefig(f"{results_dir}/snapshots.png", dpi=90)
    plt.close(fig)

    frames = []
    fig, ax = plt.subplots(figsize=(3.6, 3.6), dpi=70)
    for k in range(0, n_frames, 2):
        ax.clear()
        _field_frame(ax, grid_xy, field_fn(grid_xy, min(k, n_frames - 2)), traj[k], f"{label} {times[k]}")
        fig.canvas.draw()
        frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    plt.close(fig)
    frames += [frames[-1]] * 15  # hold the last frame
    save_gif(frames, f"{results_dir}/sampling.gif", fps=20)


def evaluate(cfg, params) -> dict:
    from paperlab.shared.runlog import read_metrics

    fc = cfg.flow_matching
    model = make_model(fc)
    traj = sample(model, params, jax.random.key(cfg.seed + 1), fc.n_samples, fc.sample_steps)
    metrics = quality(traj[-1], fc.moons_noise, cfg.seed)
    apply = jax.jit(lambda x, t: model.apply({"params": params}, x, t))
    field_fn = lambda x, k: np.asarray(apply(x, jnp.full((len(x),), k / fc.sample_steps)))
    times = [f"t = {k / fc.sample_steps:.2f}" for k in range(fc.sample_steps + 1)]
    losses = [r["loss"] for r in read_metrics(f"{cfg.run_dir}/metrics.jsonl")]
    data = np.asarray(sample_moons(jax.random.key(10_000 + cfg.seed), fc.n_samples, fc.moons_noise))
    figures(cfg.results_dir, traj, field_fn, times, data, "flow matching", "learned velocity v(x, t)", losses)
    n_params = sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(params))
    return {
        **metrics,
        "sample_steps": fc.sample_steps,
        "n_params": n_params,
        "train_steps": fc.train_steps,
        "final_loss_mean_last_100": float(np.mean(losses[-100:])),
    }


def main(argv=None):
    return run_task("flow_matching", train, evaluate, init_params, argv, __doc__)


if __name__ == "__main__":
    main()
