"""Two moons and the time-conditioned MLP: what flow matching (task 4) and DDPM (task 5) share.

The data (sklearn's ``make_moons``, written in JAX so that batches are drawn inside the jitted
training loop), the network f(x, t) both models train, the quality metrics (energy distance and
RBF-MMD^2 to held-out points, next to the same numbers for two independent real draws), and the
figures (samples, snapshots of the field and the particles, the sampling GIF).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from paperlab.toys.common import Trainer, energy_distance, mmd_rbf, scan_trainer

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


def moons_trainer(seed: int, section, model: nn.Module, tx, loss_fn) -> Trainer:
    """State (params, optimiser state); step i draws a batch of moons and the loss's own noise from
    fold_in(key(seed), i) and takes one step on ``loss_fn(params, key, x_batch)``."""
    init_key, data_key = jax.random.split(jax.random.key(seed))

    def init():
        params = model.init(init_key, jnp.zeros((1, 2)), jnp.zeros((1,)))["params"]
        return params, tx.init(params)

    def step(carry, i):
        params, opt_state = carry
        k_data, k_loss = jax.random.split(jax.random.fold_in(data_key, i))
        x = sample_moons(k_data, section.batch_size, section.moons_noise)
        loss, grads = jax.value_and_grad(loss_fn)(params, k_loss, x)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), {"loss": loss}

    return scan_trainer(init, step)


# ----------------------------------------------------------------------------- quality and figures


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
    out_dir: str,
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
    fig.savefig(f"{out_dir}/samples.png", dpi=100)
    plt.close(fig)

    picks = np.linspace(0, n_frames - 1, 5).round().astype(int)
    fig, axes = plt.subplots(1, 5, figsize=(15, 3.2))
    for ax, k in zip(axes, picks):
        _field_frame(ax, grid_xy, field_fn(grid_xy, min(k, n_frames - 2)), traj[k], f"{times[k]}")
    fig.suptitle(f"{label}: {field_name} and the particles during sampling", fontsize=10)
    fig.tight_layout()
    fig.savefig(f"{out_dir}/snapshots.png", dpi=90)
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
    save_gif(frames, f"{out_dir}/sampling.gif", fps=20)
