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

import jax
import jax.numpy as jnp
import numpy as np
import optax

from paperlab.shared.cli import run_command
from paperlab.toys.common import Trainer, run_task
from paperlab.toys.moons import TimeMLP, figures, moons_trainer, quality, sample_moons

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


def make_trainer(cfg) -> Trainer:
    """State (params, Adam state); a step draws a batch of moons and of (x0, t) from fold_in(key, step)."""
    fc = cfg.flow_matching
    model = make_model(fc)
    tx = optax.adam(optax.cosine_decay_schedule(fc.lr, fc.train_steps, alpha=0.05))
    return moons_trainer(cfg.seed, fc, model, tx, lambda p, key, x1: cfm_loss(p, model, key, x1, fc.sigma_min))


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


# ----------------------------------------------------------------------------- evaluation


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
    figures(cfg.run_dir, traj, field_fn, times, data, "flow matching", "learned velocity v(x, t)", losses)
    n_params = sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(params))
    return {
        **metrics,
        "sample_steps": fc.sample_steps,
        "n_params": n_params,
        "train_steps": fc.train_steps,
        "final_loss_mean_last_100": float(np.mean(losses[-100:])),
    }


def main(argv=None):
    return run_command(lambda a: run_task("flow_matching", make_trainer, evaluate, a, __doc__), argv)


if __name__ == "__main__":
    main()
