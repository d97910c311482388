"""Task 5: a toy DDPM (Ho et al. 2020, arXiv 2006.11239) on two moons, side by side with flow matching.

Forward process with a linear schedule beta_1..beta_T (T small, here 100):

    q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)   =>   q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I),

abar_t = prod_{s<=t} (1 - beta_s); or the cosine schedule of Nichol & Dhariwal (2021, arXiv 2102.09672),
abar_t = f(t) / f(0) with f(t) = cos^2((t/T + 0.008) / 1.008 * pi/2), betas clipped at 0.999. The
network eps_theta(x_t, t) (the same MLP as flow matching) is
trained on || eps - eps_theta(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t) ||^2 and sampling runs the
T ancestral steps x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps_theta) / sqrt(alpha_t) + sigma_t z
with sigma_t^2 the posterior variance beta_t (1 - abar_{t-1}) / (1 - abar_t).

    python -m paperlab.toys.diffusion --config configs/toys/diffusion.yaml
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from paperlab.shared.cli import run_command
from paperlab.toys.common import Trainer, run_task
from paperlab.toys.moons import TimeMLP, figures, moons_trainer, quality, sample_moons


def schedule(dc) -> dict[str, np.ndarray]:
    """betas, alphas, abar and the posterior variances, indexed t = 0..T-1 (step t+1 of the paper)."""
    if dc.schedule == "cosine":
        f = np.cos((np.arange(dc.n_timesteps + 1) / dc.n_timesteps + 0.008) / 1.008 * np.pi / 2) ** 2
        betas = np.minimum(1.0 - f[1:] / f[:-1], 0.999).astype(np.float32)
    else:
        betas = np.linspace(dc.beta_start, dc.beta_end, dc.n_timesteps).astype(np.float32)
    alphas = 1.0 - betas
    abar = np.cumprod(alphas)
    abar_prev = np.concatenate([np.ones(1, np.float32), abar[:-1]])
    post_var = betas * (1.0 - abar_prev) / (1.0 - abar)
    return {"betas": betas, "alphas": alphas, "abar": abar, "post_var": post_var}


def q_sample(x0, t, eps, abar):
    """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps: q(x_t | x_0) in closed form (numpy or jax arrays)."""
    a = abar[t][:, None]
    return a**0.5 * x0 + (1.0 - a) ** 0.5 * eps


def forward_step(x_prev, t, eps, betas):
    """One step of the forward chain, x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps."""
    b = betas[t]
    return (1.0 - b) ** 0.5 * x_prev + b**0.5 * eps


def make_model(dc) -> TimeMLP:
    return TimeMLP(hidden=dc.hidden, layers=dc.layers)


def time_input(t, T: int):
    return (t + 1).astype(jnp.float32) / T


def make_trainer(cfg) -> Trainer:
    """State (params, Adam state); a step draws moons, t and eps from fold_in(key, step)."""
    dc = cfg.diffusion
    model = make_model(dc)
    sch = {k: jnp.asarray(v) for k, v in schedule(dc).items()}
    tx = optax.adam(optax.cosine_decay_schedule(dc.lr, dc.train_steps, alpha=dc.lr_end))

    def loss_fn(params, key, x0):
        k_t, k_eps = jax.random.split(key)
        t = jax.random.randint(k_t, (x0.shape[0],), 0, dc.n_timesteps)
        eps = jax.random.normal(k_eps, x0.shape)
        pred = model.apply({"params": params}, q_sample(x0, t, eps, sch["abar"]), time_input(t, dc.n_timesteps))
        return ((pred - eps) ** 2).sum(-1).mean()

    return moons_trainer(cfg.seed, dc, model, tx, loss_fn)


def posterior_mean(model, params, sch, x, t_idx: int, T: int):
    """mu_theta(x_t, t) = (x_t - beta_t / sqrt(1 - abar_t) eps_theta(x_t, t)) / sqrt(alpha_t)."""
    eps = model.apply({"params": params}, x, jnp.full((x.shape[0],), (t_idx + 1) / T, jnp.float32))
    return (x - sch["betas"][t_idx] / jnp.sqrt(1.0 - sch["abar"][t_idx]) * eps) / jnp.sqrt(sch["alphas"][t_idx])


def sample(model, params, dc, key, n: int):
    """Ancestral sampling from x_T ~ N(0, I); returns the trajectory (T+1, n, 2), x_T first."""
    sch = {k: jnp.asarray(v) for k, v in schedule(dc).items()}
    T = dc.n_timesteps
    k0, k_steps = jax.random.split(key)

    @jax.jit
    def run(xT):
        def step(x, k):
            t_idx = T - 1 - k
            mean = posterior_mean(model, params, sch, x, t_idx, T)
            z = jax.random.normal(jax.random.fold_in(k_steps, k), x.shape)
            x = mean + jnp.sqrt(sch["post_var"][t_idx]) * z
            return x, x

        _, xs = jax.lax.scan(step, xT, jnp.arange(T))
        return jnp.concatenate([xT[None], xs], 0)

    return np.asarray(run(jax.random.normal(k0, (n, 2))))


def evaluate(cfg, params) -> dict:
    from paperlab.shared.runlog import read_metrics

    dc = cfg.diffusion
    model = make_model(dc)
    sch = {k: jnp.asarray(v) for k, v in schedule(dc).items()}
    T = dc.n_timesteps
    traj = sample(model, params, dc, jax.random.key(cfg.seed + 1), dc.n_samples)
    metrics = quality(traj[-1], dc.moons_noise, cfg.seed)
    mean_fn = jax.jit(lambda x, t_idx: posterior_mean(model, params, sch, x, t_idx, T))
    # the drift of a reverse step, per unit of "time" 1/T, to compare with flow matching's velocity
    field_fn = lambda x, k: np.asarray(mean_fn(jnp.asarray(x), T - 1 - k) - x) * T
    times = [f"step {k}/{T} (t = {T - k})" for k in range(T + 1)]
    losses = [r["loss"] for r in read_metrics(f"{cfg.run_dir}/metrics.jsonl")]
    data = np.asarray(sample_moons(jax.random.key(10_000 + cfg.seed), dc.n_samples, dc.moons_noise))
    figures(cfg.run_dir, traj, field_fn, times, data, "DDPM", "reverse-step drift T (mu_theta(x, t) - x)", losses)
    n_params = sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(params))
    return {
        **metrics,
        "sample_steps": T,
        "n_params": n_params,
        "train_steps": dc.train_steps,
        "schedule": dc.schedule,
        "abar_T": float(sch["abar"][-1]),
        "final_loss_mean_last_100": float(np.mean(losses[-100:])),
    }


def main(argv=None):
    return run_command(lambda a: run_task("diffusion", make_trainer, evaluate, a, __doc__), argv)


if __name__ == "__main__":
    main()
