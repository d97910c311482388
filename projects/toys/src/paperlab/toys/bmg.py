"""Task 14: Bootstrapped Meta-Learning (Flennerhag et al. 2022, BMG, arXiv 2109.04504) against the standard
meta-gradient and the best fixed hyperparameter, meta-learning A2C's entropy weight on a non-stationary task.

The task (after the paper's two-colour grid world, section 5.1, made small): a 5x5 grid holds the
agent and two objects, one of each colour. Moving onto an object collects it (reward +1 for the
rewarding colour, -1 for the other) and it reappears at a random free cell. Every ``flip_every``
meta-steps the rewarding colour switches, and the agent is not told: it sees where each object is
relative to itself (one-hot row and column offsets, 36 inputs; the paper's agent sees the grid).
After each switch the learned policy is exactly wrong, so how much the agent explores (the entropy
bonus) matters differently at different times: the reason to meta-learn it online.

The agent: an MLP with a softmax policy over the 4 moves and a value head, trained by A2C
(n-step returns bootstrapped from V, T steps x E environments per batch) with plain SGD:

    L(theta; eps) = -mean(log pi(a|s) sg(A)) + c_v mean((G - V(s))^2) - eps mean(H(pi(.|s))),
    theta' = theta - alpha grad_theta L(theta; eps),      eps = exp(eta).

One meta-step = K inner updates, each on a fresh batch collected with the current parameters
(theta_0 -> theta_K, differentiable in eta), then one more batch B collected with theta_K. The
meta-parameter eta is updated (Adam) by the gradient of

- ``mg`` (standard meta-gradient, Xu et al. 2018): the policy-gradient loss of theta_K on B,
  -mean(log pi_{theta_K}(a|s) sg(A)), back-propagated through the K inner steps;
- ``bmg`` (BMG): the matching loss KL(pi_target(.|s) || pi_{theta_K}(.|s)) over the states of B, with
  the bootstrapped target theta~ = sg(L - 1 steps of the inner update from theta_K, then one step on
  the policy-gradient loss), all on B. The target is a constant (stop-gradient): only theta_K carries
  the gradient to eta.

``fixed`` agents run the same loop with eta frozen; every agent sees the same number of
environment steps per meta-step. All agents and seeds train at once (``vmap``) in one jitted
``lax.scan`` per chunk of meta-steps.

    python -m paperlab.toys.bmg --config configs/toys/bmg.yaml
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from paperlab.shared.cli import run_command
from paperlab.toys.common import Trainer, run_task

SIZE = 5
N_CELLS = SIZE * SIZE
MOVES = jnp.array([[-1, 0], [1, 0], [0, -1], [0, 1]])

# ----------------------------------------------------------------------------- the two-colour grid world


def env_reset(key):
    """(agent, object 0, object 1) cell indices, all different."""
    return jax.random.choice(key, N_CELLS, (3,), replace=False)


N_OBS = 2 * 2 * (2 * SIZE - 1)


def observe(state):
    """Egocentric: for each object, one-hot row offset and one-hot column offset from the agent (36 inputs)."""
    r, c = state // SIZE, state % SIZE
    dr, dc = r[1:] - r[0] + SIZE - 1, c[1:] - c[0] + SIZE - 1
    return jnp.concatenate([jax.nn.one_hot(dr, 2 * SIZE - 1), jax.nn.one_hot(dc, 2 * SIZE - 1)], -1).reshape(-1)


def env_step(key, state, action, good_colour):
    """Move the agent (walls stop it); collecting object c pays +1 if c == good_colour else -1, and
    the object reappears on a random cell not holding the agent or the other object."""
    r, c = state[0] // SIZE, state[0] % SIZE
    r = jnp.clip(r + MOVES[action, 0], 0, SIZE - 1)
    c = jnp.clip(c + MOVES[action, 1], 0, SIZE - 1)
    agent = r * SIZE + c
    hit = jnp.array([agent == state[1], agent == state[2]])
    reward = jnp.sum(jnp.where(hit, jnp.where(jnp.arange(2) == good_colour, 1.0, -1.0), 0.0))
    # respawn: a uniformly random free cell for each collected object
    k0, k1 = jax.random.split(key)

    def respawn(k, other):
        taken = (jnp.arange(N_CELLS) == agent) | (jnp.arange(N_CELLS) == other)
        return jax.random.choice(k, N_CELLS, p=jnp.where(taken, 0.0, 1.0) / (N_CELLS - 2))

    o0 = jnp.where(hit[0], respawn(k0, state[2]), state[1])
    o1 = jnp.where(hit[1], respawn(k1, o0), state[2])
    return jnp.stack([agent, o0, o1]), reward


# ----------------------------------------------------------------------------- the A2C agent


def net_init(key, hidden: int) -> dict:
    k1, k2, k3 = jax.random.split(key, 3)
    n_in = N_OBS
    return {
        "w1": jax.random.normal(k1, (n_in, hidden)) / jnp.sqrt(n_in),
        "b1": jnp.zeros(hidden),
        "wp": jax.random.normal(k2, (hidden, 4)) * 0.01,
        "bp": jnp.zeros(4),
        "wv": jax.random.normal(k3, (hidden, 1)) * 0.01,
        "bv": jnp.zeros(1),
    }


def net(params, obs):
    """(log pi(.|s) (..., 4), V(s) (...))."""
    h = jax.nn.relu(obs @ params["w1"] + params["b1"])
    return jax.nn.log_softmax(h @ params["wp"] + params["bp"]), (h @ params["wv"] + params["bv"])[..., 0]


def rollout(params, env_states, key, t0, bc):
    """T steps in E environments with sg(params); returns the batch and the environments after it.

    The rewarding colour of step t (counted in meta-steps' rollouts) is (t0 // flip) % 2, fixed
    within a batch."""
    params = jax.lax.stop_gradient(params)
    good = (t0 // bc.flip_every) % 2

    def step(states, k):
        obs = jax.vmap(observe)(states)
        logp, _ = net(params, obs)
        ka, ke = jax.random.split(k)
        a = jax.random.categorical(ka, logp)
        states2, r = jax.vmap(env_step, in_axes=(0, 0, 0, None))(jax.random.split(ke, len(a)), states, a, good)
        return states2, (obs, a, r)

    env_states, (obs, a, r) = jax.lax.scan(step, env_states, jax.random.split(key, bc.rollout_steps))
    last_obs = jax.vmap(observe)(env_states)
    return {"obs": obs, "a": a, "r": r, "last_obs": last_obs}, env_states


def returns(r_TxE, v_last_E, gamma: float):
    """n-step discounted returns G_t = r_t + gamma G_{t+1}, bootstrapped with G_T = V(s_T)."""

    def back(g, r):
        g = r + gamma * g
        return g, g

    _, g = jax.lax.scan(back, v_last_E, r_TxE, reverse=True)
    return g


def a2c_terms(params, batch, gamma: float):
    """(policy-gradient loss, value loss, mean entropy) of a batch; advantages are stop-gradient."""
    logp, v = net(params, batch["obs"])  # (T, E, 4), (T, E)
    _, v_last = net(params, batch["last_obs"])
    g = returns(batch["r"], jax.lax.stop_gradient(v_last), gamma)
    adv = jax.lax.stop_gradient(g - v)
    logp_a = jnp.take_along_axis(logp, batch["a"][..., None], -1)[..., 0]
    entropy = -(jnp.exp(logp) * logp).sum(-1).mean()
    return -(logp_a * adv).mean(), ((jax.lax.stop_gradient(g) - v) ** 2).mean(), entropy


def a2c_loss(params, batch, eps, bc):
    pg, vl, ent = a2c_terms(params, batch, bc.gamma)
    return pg + bc.value_coef * vl - eps * ent


def pg_loss(params, batch, bc):
    """The meta-objective: the policy-gradient (and value) loss without the entropy bonus."""
    pg, vl, _ = a2c_terms(params, batch, bc.gamma)
    return pg + bc.value_coef * vl


def sgd_step(params, grads, lr: float):
    return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)


def bootstrap_target(params_K, batch, eps, bc):
    """BMG's target: L - 1 inner updates (the meta-learned rule, eps) from theta_K on the batch, then one
    step on the meta-objective; returned under stop-gradient (the target is a constant)."""
    p = jax.lax.stop_gradient(params_K)
    eps = jax.lax.stop_gradient(eps)
    for _ in range(bc.bmg_L - 1):
        p = sgd_step(p, jax.grad(a2c_loss)(p, batch, eps, bc), bc.lr)
    p = sgd_step(p, jax.grad(pg_loss)(p, batch, bc), bc.lr)
    return jax.lax.stop_gradient(p)


def matching_loss(target_params, params_K, obs):
    """mu(target, theta_K) = mean over states of KL(pi_target(.|s) || pi_theta_K(.|s))."""
    logp_t, _ = net(target_params, obs)
    logp, _ = net(params_K, obs)
    return (jnp.exp(logp_t) * (logp_t - logp)).sum(-1).mean()


def meta_step(params, eta, env_states, key, t, bc, method: str):
    """K differentiable inner steps, one more batch, and the meta-loss of ``method`` (a function of eta).

    Returns (meta-loss, (theta_K, environments, rewards of all K + 1 batches, entropy))."""
    eps = jnp.exp(eta)
    keys = jax.random.split(key, bc.inner_K + 1)
    rewards = []
    for k in range(bc.inner_K):
        batch, env_states = rollout(params, env_states, keys[k], t, bc)
        params = sgd_step(params, jax.grad(a2c_loss)(params, batch, eps, bc), bc.lr)
        rewards.append(batch["r"].mean())
    batch, env_states = rollout(params, env_states, keys[-1], t, bc)
    rewards.append(batch["r"].mean())
    _, _, ent = a2c_terms(params, batch, bc.gamma)
    if method == "mg":
        loss = pg_loss(params, batch, bc)
    elif method == "bmg":
        loss = matching_loss(bootstrap_target(params, batch, eps, bc), params, batch["obs"])
    else:
        loss = 0.0 * eta
    return loss, (params, env_states, jnp.stack(rewards).mean(), ent)


METHODS = ("fixed", "mg", "bmg")


def agents(bc) -> list[tuple[str, float]]:
    """(method, initial eps) of every agent: the fixed sweep, then the two meta-learners."""
    return [("fixed", e) for e in bc.fixed_eps] + [("mg", bc.eps_init), ("bmg", bc.eps_init)]


def agent_name(method: str, eps: float) -> str:
    return f"fixed_{eps:g}" if method == "fixed" else method


def make_trainer(cfg) -> Trainer:
    """State {agent: (params, eta, Adam state of eta, environments)} with a leading seed axis."""
    bc = cfg.bmg
    meta_tx = optax.adam(bc.meta_lr)
    base = jax.random.key(cfg.seed)
    seeds = jnp.arange(bc.n_seeds)
    ags = agents(bc)

    def init():
        state = {}
        for method, e in ags:

            def one(s, e=e):
                k1, k2 = jax.random.split(jax.random.fold_in(base, s))  # the same start for every agent of seed s
                params = net_init(k1, bc.hidden)
                eta = jnp.log(jnp.float32(e if e > 0 else 1e-30))
                envs = jax.vmap(env_reset)(jax.random.split(k2, bc.n_envs))
                return params, eta, meta_tx.init(eta), envs

            state[agent_name(method, e)] = jax.vmap(one)(seeds)
        return state

    def step_agent(method, carry, s, i):
        params, eta, opt, envs = carry
        key = jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(base, 7), s), i)
        if method == "fixed":
            _, (params, envs, r, ent) = meta_step(params, eta, envs, key, i, bc, method)
            return (params, eta, opt, envs), (r, ent)
        grad_fn = jax.grad(lambda e: meta_step(params, e, envs, key, i, bc, method), has_aux=True)
        g, (params, envs, r, ent) = grad_fn(eta)
        u, opt = meta_tx.update(g, opt)
        eta = jnp.clip(optax.apply_updates(eta, u), np.log(1e-5), np.log(1.0))
        return (jax.lax.stop_gradient(params), eta, opt, envs), (r, ent)

    @jax.jit
    def run_block(state, start):
        def body(st, i):
            new, out = {}, {}
            for method, e in ags:
                name = agent_name(method, e)
                new[name], (r, ent) = jax.vmap(lambda c, s, m=method: step_agent(m, c, s, i))(st[name], seeds)
                out[f"{name}_reward"] = r  # (seeds,)
                out[f"{name}_eps"] = jnp.exp(new[name][1])
                out[f"{name}_entropy"] = ent
            return new, out

        state, out = jax.lax.scan(body, state, start + jnp.arange(bc.log_every))
        return state, {k: v.mean(0) for k, v in out.items()}  # mean over the block: (seeds,)

    def run(state, start, n):
        rows = []
        for b in range(n // bc.log_every):
            state, c = run_block(state, start + b * bc.log_every)
            rows.append(c)
        curves = {k: np.stack([np.asarray(r[k]) for r in rows]) for k in rows[0]}  # (blocks, seeds)
        for k in list(curves):
            if k.endswith("_reward"):
                curves[f"{k}_mean"] = curves[k].mean(1)
        curves["step"] = start + (np.arange(len(rows)) + 1) * bc.log_every
        return state, curves

    params = lambda state: {k: {"params": v[0], "eta": v[1]} for k, v in state.items()}
    return Trainer(jax.jit(init), run, params, multiple=bc.log_every)


# ----------------------------------------------------------------------------- evaluation


def evaluate(cfg, params) -> dict:
    import json
    from pathlib import Path

    bc = cfg.bmg
    curves = {k: np.asarray(v) for k, v in json.loads((Path(cfg.run_dir) / "curves.json").read_text()).items()}
    names = [agent_name(m, e) for m, e in agents(bc)]
    steps_per_meta = (bc.inner_K + 1) * bc.rollout_steps
    out = {
        "agents": names,
        "n_seeds": bc.n_seeds,
        "train_steps": bc.train_steps,
        "flip_every": bc.flip_every,
        "env_steps_per_env_per_meta_step": steps_per_meta,
        "n_envs": bc.n_envs,
    }
    n_blocks = len(curves[f"{names[0]}_reward"])
    half = n_blocks // 2
    for n in names:
        r = curves[f"{n}_reward"]  # (blocks, seeds): mean reward per env step
        out[f"{n}_reward_mean_per_seed"] = [round(float(x), 4) for x in r.mean(0)]
        out[f"{n}_reward_second_half_per_seed"] = [round(float(x), 4) for x in r[half:].mean(0)]
        out[f"{n}_final_eps_per_seed"] = [float(x) for x in curves[f"{n}_eps"][-1]]
    # around the switches: blocks in the first / last fifth of every phase after the first
    per_phase = bc.flip_every // bc.log_every
    idx = np.arange(n_blocks) % per_phase if per_phase else np.zeros(n_blocks, int)
    later = np.arange(n_blocks) >= per_phase
    early_blocks = later & (idx < max(per_phase // 5, 1))
    late_blocks = later & (idx >= per_phase - max(per_phase // 5, 1))
    for n in names:
        r, e = curves[f"{n}_reward"], curves[f"{n}_eps"]
        out[f"{n}_reward_after_switch"] = float(r[early_blocks].mean()) if early_blocks.any() else None
        out[f"{n}_reward_before_switch"] = float(r[late_blocks].mean()) if late_blocks.any() else None
        out[f"{n}_eps_after_switch"] = float(e[early_blocks].mean()) if early_blocks.any() else None
        out[f"{n}_eps_before_switch"] = float(e[late_blocks].mean()) if late_blocks.any() else None
    fixed = [n for n in names if n.startswith("fixed")]
    out["best_fixed"] = max(fixed, key=lambda n: np.mean(out[f"{n}_reward_mean_per_seed"]))
    figure(cfg, curves, names, out)
    return out


def figure(cfg, curves, names, out) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bc = cfg.bmg
    x = curves["step"] if "step" in curves else (np.arange(len(curves[f"{names[0]}_reward"])) + 1) * bc.log_every
    fig, axes = plt.subplots(1, 2, figsize=(13, 4))
    shown = [out["best_fixed"], "mg", "bmg"] + [n for n in names if n.startswith("fixed") and n != out["best_fixed"]]
    for c, n in enumerate(shown):
        r = curves[f"{n}_reward"]
        m, sd = r.mean(1), r.std(1)
        style = dict(lw=1.5) if c < 3 else dict(lw=0.6, alpha=0.6)
        label = f"{n} (best fixed)" if n == out["best_fixed"] else n
        axes[0].plot(x, m, color=f"C{c}", label=label, **style)
        if c < 3:
            axes[0].fill_between(x, m - sd, m + sd, color=f"C{c}", alpha=0.15)
        if n in ("mg", "bmg"):
            e = curves[f"{n}_eps"]
            axes[1].plot(x, e.mean(1), color=f"C{c}", label=f"{n} (mean of seeds)")
            axes[1].fill_between(x, e.min(1), e.max(1), color=f"C{c}", alpha=0.2)
    for ax in axes:
        for f in range(bc.flip_every, int(x[-1]) + 1, bc.flip_every):
            ax.axvline(f, color="grey", lw=0.5, ls=":")
    axes[0].set(
        xlabel="meta-step",
        ylabel="reward per environment step",
        title=f"{bc.n_seeds} seeds (band: ± sd); dotted: the rewarding colour switches",
    )
    axes[0].legend(fontsize=7)
    axes[1].set(yscale="log", xlabel="meta-step", ylabel="entropy weight eps", title="meta-learned eps (band: min-max)")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(f"{cfg.run_dir}/bmg.png", dpi=80)
    plt.close(fig)


def main(argv=None):
    return run_command(lambda a: run_task("bmg", make_trainer, evaluate, a, __doc__), argv)


if __name__ == "__main__":
    main()
