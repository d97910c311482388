"""Task 6: hierarchical Q-learning (Kulkarni et al. 2016, h-DQN, arXiv 1604.06057) on the paper's
stochastic decision process, against flat Q-learning.

The MDP (paper, section 4.1): states s1..s6, start in s2, actions left/right. "left" always moves
left; "right" moves right with probability 0.5 and left otherwise. s1 is terminal and pays 1 if s6
was visited during the episode, else 0.01. The reward is delayed and depends on the history, so an
agent that only sees its current state has to commit to the long walk to s6 and back.

h-DQN: a meta-controller Q_meta(s, g) picks a goal state g; a controller Q_ctrl(s, g, a) acts until
it reaches g (intrinsic reward 1) or the episode ends; the meta-controller learns from the
extrinsic reward collected meanwhile (an SMDP Q-learning update). With one-hot states, the paper's
networks are linear in a table, so both levels are tables here (the "DQN" is tabular Q-learning, no
replay or target network). Flat Q-learning learns Q(s, a) from the extrinsic reward.

Training is one jitted scan over environment steps, vmapped over seeds (and over the two agents).

    python -m paperlab.toys.hdqn --config configs/toys/hdqn.yaml
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from paperlab.toys.common import run_task, write_json

LEFT, RIGHT = 0, 1

# ----------------------------------------------------------------------------- the environment


def env_step(key, s, visited, a, hc):
    """One transition from state index s (0 = s1, ..., n-1 = s_n); returns (s', visited', reward, done)."""
    moves_right = (a == RIGHT) & jax.random.bernoulli(key, hc.p_right)
    s2 = jnp.where(moves_right, jnp.minimum(s + 1, hc.n_states - 1), s - 1)
    visited2 = visited | (s2 == hc.n_states - 1)
    done = s2 == 0
    reward = jnp.where(done, jnp.where(visited2, 1.0, 0.01), 0.0)
    return s2, visited2, reward, done


def optimal_value(n_states: int = 6, p_right: float = 0.5, start: int = 1, iters: int = 5000) -> float:
    """Expected extrinsic reward of the best (history-aware) policy from `start`, by value iteration on
    (state, visited s_n); undiscounted, as the paper reports reward per episode."""
    V = np.zeros((n_states, 2))  # V[s, visited]; s = 0 is terminal (value 0, its reward is paid on entry)
    for _ in range(iters):
        new = np.zeros_like(V)
        for s in range(1, n_states):
            for v in (0, 1):
                q = []
                for p in (0.0, p_right):  # left, right
                    total = 0.0
                    for s2, prob in ((min(s + 1, n_states - 1), p), (s - 1, 1.0 - p)):
                        if prob == 0:
                            continue
                        v2 = int(v or s2 == n_states - 1)
                        r = (1.0 if v2 else 0.01) if s2 == 0 else 0.0
                        total += prob * (r + (V[s2, v2] if s2 else 0.0))
                    q.append(total)
                new[s, v] = max(q)
        if np.abs(new - V).max() < 1e-12:
            break
        V = new
    return float(V[start, 0])


# ----------------------------------------------------------------------------- the agents, one jitted scan each


def epsilon(step, start, end, decay):
    return jnp.maximum(end, start + (end - start) * step / decay)


def eps_greedy(key, q_row, eps, valid=None):
    k1, k2 = jax.random.split(key)
    n = q_row.shape[0]
    valid = jnp.ones(n, bool) if valid is None else valid
    greedy = jnp.argmax(jnp.where(valid, q_row + 1e-6 * jax.random.uniform(k2, (n,)), -jnp.inf))
    rand = jax.random.choice(k1, n, p=valid / valid.sum())
    return jnp.where(jax.random.uniform(k2) < eps, rand, greedy)


def make_flat(hc):
    def train(key):
        Q = jnp.zeros((hc.n_states, 2))

        def step(carry, i):
            Q, s, visited, t = carry
            k_a, k_env = jax.random.split(jax.random.fold_in(key, i))
            a = eps_greedy(k_a, Q[s], epsilon(i, hc.eps_start, hc.eps_end, hc.eps_decay_steps))
            s2, visited2, r, done = env_step(k_env, s, visited, a, hc)
            cut = t + 1 >= hc.max_episode_steps
            target = r + hc.gamma * jnp.where(done, 0.0, Q[s2].max())
            Q = Q.at[s, a].add(hc.lr * (target - Q[s, a]))
            end = done | cut
            out = (s2, end, jnp.where(done, r, 0.0))
            return (Q, jnp.where(end, 1, s2), jnp.where(end, False, visited2), jnp.where(end, 0, t + 1)), out

        carry = (Q, jnp.int32(1), jnp.bool_(False), jnp.int32(0))
        (Q, *_), trace = jax.lax.scan(step, carry, jnp.arange(hc.train_steps))
        return {"Q": Q}, trace

    return train


def make_hdqn(hc):
    n = hc.n_states

    def train(key):
        Qm = jnp.zeros((n, n))  # meta-controller: Q(s, goal)
        Qc = jnp.zeros((n, n, 2))  # controller: Q(s, goal, action)

        def step(carry, i):
            Qm, Qc, s, visited, t, goal, s_meta, R, need_goal = carry
            k_g, k_a, k_env = jax.random.split(jax.random.fold_in(key, i), 3)
            eps_m = epsilon(i, hc.eps_start, hc.eps_end, hc.eps_decay_steps)
            eps_c = epsilon(i, hc.eps_start, hc.controller_eps_end, hc.eps_decay_steps)
            # the meta-controller picks a goal other than the current state when the last one is over
            new_goal = eps_greedy(k_g, Qm[s], eps_m, valid=jnp.arange(n) != s)
            goal = jnp.where(need_goal, new_goal, goal)
            s_meta = jnp.where(need_goal, s, s_meta)
            R = jnp.where(need_goal, 0.0, R)
            a = eps_greedy(k_a, Qc[s, goal], eps_c)
            s2, visited2, r, done = env_step(k_env, s, visited, a, hc)
            cut = t + 1 >= hc.max_episode_steps
            reached = s2 == goal
            # controller: intrinsic reward 1 for reaching its goal; the goal's episode ends there or at termination
            r_in = reached.astype(jnp.float32)
            tgt_c = r_in + hc.gamma_controller * jnp.where(reached | done, 0.0, Qc[s2, goal].max())
            Qc = Qc.at[s, goal, a].add(hc.lr * (tgt_c - Qc[s, goal, a]))
            # meta-controller: SMDP update with the extrinsic reward gathered while pursuing the goal
            R = R + r
            goal_over = reached | done | cut
            next_best = jnp.where(jnp.arange(n) != s2, Qm[s2], -jnp.inf).max()
            tgt_m = R + hc.gamma * jnp.where(done, 0.0, next_best)
            Qm = jnp.where(goal_over, Qm.at[s_meta, goal].add(hc.lr * (tgt_m - Qm[s_meta, goal])), Qm)
            end = done | cut
            out = (s2, end, jnp.where(done, r, 0.0))
            carry = (
                Qm,
                Qc,
                jnp.where(end, 1, s2),
                jnp.where(end, False, visited2),
                jnp.where(end, 0, t + 1),
                goal,
                s_meta,
                R,
                goal_over,
            )
            return carry, out

        carry = (
            Qm,
            Qc,
            jnp.int32(1),
            jnp.bool_(False),
            jnp.int32(0),
            jnp.int32(0),
            jnp.int32(1),
            jnp.float32(0.0),
            jnp.bool_(True),
        )
        (Qm, Qc, *_), trace = jax.lax.scan(step, carry, jnp.arange(hc.train_steps))
        return {"Q_meta": Qm, "Q_ctrl": Qc}, trace

    return train


def init_params(cfg):
    hc = cfg.hdqn
    n, k = hc.n_states, hc.n_seeds
    return {
        "flat": {"Q": jnp.zeros((k, n, 2))},
        "hdqn": {"Q_meta": jnp.zeros((k, n, n)), "Q_ctrl": jnp.zeros((k, n, n, 2))},
    }


def bin_trace(trace, hc) -> dict[str, np.ndarray]:
    """Per bin of `bin_steps` steps and per seed: mean extrinsic reward per finished episode and visits per episode."""
    states, ends, rewards = (np.asarray(x) for x in trace)  # (seeds, steps)
    seeds, steps = states.shape
    nb = steps // hc.bin_steps
    shape = (seeds, nb, hc.bin_steps)
    episodes = ends[:, : nb * hc.bin_steps].reshape(shape).sum(-1)
    reward = rewards[:, : nb * hc.bin_steps].reshape(shape).sum(-1) / np.maximum(episodes, 1)
    onehot = states[:, : nb * hc.bin_steps, None] == np.arange(hc.n_states)
    visits = onehot.reshape(*shape, hc.n_states).sum(2) / np.maximum(episodes, 1)[..., None]
    return {"reward_per_episode": reward, "visits_per_episode": visits, "episodes": episodes}


_TRACES: dict = {}


def train(cfg):
    hc = cfg.hdqn
    keys = jax.random.split(jax.random.key(cfg.seed), 2 * hc.n_seeds).reshape(2, hc.n_seeds)
    flat_params, flat_trace = jax.jit(jax.vmap(make_flat(hc)))(keys[0])
    h_params, h_trace = jax.jit(jax.vmap(make_hdqn(hc)))(keys[1])
    _TRACES["flat"], _TRACES["hdqn"] = bin_trace(flat_trace, hc), bin_trace(h_trace, hc)
    curves = {f"{agent}_reward_per_episode_mean": _TRACES[agent]["reward_per_episode"].mean(0) for agent in _TRACES}
    return {"flat": flat_params, "hdqn": h_params}, curves


def greedy_return(cfg, params, agent: str, episodes: int = 2000) -> np.ndarray:
    """Mean extrinsic reward of each seed's greedy policy (epsilon 0.0 for flat, 0 / 0 for h-DQN)."""
    hc = cfg.hdqn
    n = hc.n_states

    def episode(key, p):
        def step(carry, k):
            s, visited, goal, need_goal, alive, ret = carry
            k_env = jax.random.fold_in(k, 1)
            if agent == "flat":
                a = jnp.argmax(p["Q"][s])
            else:
                g = jnp.argmax(jnp.where(jnp.arange(n) != s, p["Q_meta"][s], -jnp.inf))
                goal = jnp.where(need_goal, g, goal)
                a = jnp.argmax(p["Q_ctrl"][s, goal])
            s2, visited2, r, done = env_step(k_env, s, visited, a, hc)
            ret = ret + jnp.where(alive, r, 0.0)
            alive = alive & ~done
            return (s2, visited2, goal, (s2 == goal) | done, alive, ret), None

        carry = (jnp.int32(1), jnp.bool_(False), jnp.int32(0), jnp.bool_(True), jnp.bool_(True), jnp.float32(0.0))
        (_, _, _, _, _, ret), _ = jax.lax.scan(step, carry, jax.random.split(key, hc.max_episode_steps))
        return ret

    def per_seed(key, p):
        return jax.vmap(episode, in_axes=(0, None))(jax.random.split(key, episodes), p).mean()

    keys = jax.random.split(jax.random.key(cfg.seed + 7), hc.n_seeds)
    return np.asarray(jax.jit(jax.vmap(per_seed))(keys, params[agent]))


def evaluate(cfg, params) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hc = cfg.hdqn
    best = optimal_value(hc.n_states, hc.p_right)
    out = {"optimal_expected_reward": best, "n_seeds": hc.n_seeds, "train_steps": hc.train_steps}
    for agent in ("flat", "hdqn"):
        g = greedy_return(cfg, params, agent)
        out[f"{agent}_greedy_reward_mean"] = float(g.mean())
        out[f"{agent}_greedy_reward_per_seed"] = [round(float(x), 4) for x in g]
    if _TRACES:  # curves exist only right after training
        x = (np.arange(len(_TRACES["flat"]["episodes"][0])) + 1) * hc.bin_steps
        fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
        names = {"flat": "Q-learning", "hdqn": "h-DQN (tabular)"}
        for agent, color in (("flat", "C0"), ("hdqn", "C1")):
            r = _TRACES[agent]["reward_per_episode"]
            m, sd = r.mean(0), r.std(0)
            axes[0].plot(x, m, color=color, label=f"{names[agent]} ({hc.n_seeds} seeds)")
            axes[0].fill_between(x, m - sd, m + sd, color=color, alpha=0.2)
            out[f"{agent}_training_reward_last_bin_mean"] = float(m[-1])
            out[f"{agent}_training_reward_last_bin_std"] = float(sd[-1])
            out[f"{agent}_visits_per_episode_last_bin"] = [
                round(float(v), 3) for v in _TRACES[agent]["visits_per_episode"][:, -1].mean(0)
            ]
        axes[0].axhline(best, color="k", ls="--", lw=1, label=f"optimum {best:.3f}")
        axes[0].set(
            xlabel="environment steps", ylabel="extrinsic reward per episode", title="training (epsilon-greedy)"
        )
        axes[0].legend(fontsize=8)
        for ax, agent in zip(axes[1:], ("hdqn", "flat")):
            v = _TRACES[agent]["visits_per_episode"].mean(0)
            for s in range(2, hc.n_states):
                ax.plot(x, v[:, s], label=f"s{s + 1}")
            ax.set(xlabel="environment steps", ylabel="visits per episode", title=f"state visits: {names[agent]}")
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(f"{cfg.results_dir}/hdqn.png", dpi=100)
        plt.close(fig)
        write_json(
            {
                "steps": x.tolist(),
                **{
                    f"{a}_{k}": _TRACES[a][k].mean(0).round(4).tolist()
                    for a in _TRACES
                    for k in ("reward_per_episode", "visits_per_episode")
                },
            },
            f"{cfg.results_dir}/curves.json",
        )
    return out


def main(argv=None):
    return run_task("hdqn", train, evaluate, init_params, argv, __doc__)


if __name__ == "__main__":
    main()
