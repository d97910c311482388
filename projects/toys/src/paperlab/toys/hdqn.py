"""Task 6: hierarchical DQN (Kulkarni et al. 2016, h-DQN, arXiv 1604.06057) on the paper's stochastic
decision process, against flat Q-learning.

The MDP (paper, section 4.1): states s1..s6, start in s2, actions left/right. "left" always moves
left; "right" moves right with probability 0.5 and left otherwise. s1 is terminal and pays 1 if s6
was visited during the episode, else 0.01. The reward is delayed and depends on the history, so an
agent that only sees its current state has to commit to the long walk to s6 and back.

h-DQN: a meta-controller Q_meta(s, g) picks a goal state g; a controller Q_ctrl(s, g, a) acts until
it reaches g (intrinsic reward 1) or the episode ends; the meta-controller learns from the
extrinsic reward collected meanwhile (an SMDP Q-learning update). Four agents, same MDP and
epsilon schedules:

- tabular Q-learning and tabular h-DQN (one-hot states make the paper's networks linear in a
  table): the check against value iteration;
- the paper's version: flat DQN and h-DQN with Q-networks (one hidden ReLU layer on one-hot
  states / [state, goal]), replay memories (one per level for h-DQN), target networks copied every
  ``target_every`` steps, Adam, one minibatch update of every network per environment step.

Each agent is one jitted ``lax.scan`` over environment steps, ``vmap``ped over seeds; the run calls
it once per chunk of steps, with a checkpoint (tables, networks, optimisers, replay memories,
environments) after each chunk.

    python -m paperlab.toys.hdqn --config configs/toys/hdqn.yaml
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from paperlab.shared.cli import run_command
from paperlab.toys.common import Trainer, run_task

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


# ----------------------------------------------------------------------------- shared pieces of the agents


def epsilon(step, start, end, decay):
    return jnp.maximum(end, start + (end - start) * step / decay)


def eps_greedy(key, q_row, eps, valid=None):
    k1, k2 = jax.random.split(key)
    n = q_row.shape[0]
    valid = jnp.ones(n, bool) if valid is None else valid
    greedy = jnp.argmax(jnp.where(valid, q_row + 1e-6 * jax.random.uniform(k2, (n,)), -jnp.inf))
    rand = jax.random.choice(k1, n, p=valid / valid.sum())
    return jnp.where(jax.random.uniform(k2) < eps, rand, greedy)


def _reset(end, s2, visited2, t):
    """The episode's next (state, visited, t): back to s2 after the end of an episode."""
    return jnp.where(end, 1, s2), jnp.where(end, False, visited2), jnp.where(end, 0, t + 1)


# ----------------------------------------------------------------------------- tabular agents


def flat_tabular(hc):
    """(initial carry, step(carry, i, key)) of tabular Q-learning on Q(s, a)."""

    def init(key):
        return (jnp.zeros((hc.n_states, 2)), jnp.int32(1), jnp.bool_(False), jnp.int32(0))

    def step(carry, i, key):
        Q, s, visited, t = carry
        k_a, k_env = jax.random.split(jax.random.fold_in(key, i))
        a = eps_greedy(k_a, Q[s], epsilon(i, hc.eps_start, hc.eps_end, hc.eps_decay_steps))
        s2, visited2, r, done = env_step(k_env, s, visited, a, hc)
        cut = t + 1 >= hc.max_episode_steps
        target = r + hc.gamma * jnp.where(done, 0.0, Q[s2].max())
        Q = Q.at[s, a].add(hc.lr * (target - Q[s, a]))
        end = done | cut
        return (Q, *_reset(end, s2, visited2, t)), (s2, end, jnp.where(done, r, 0.0))

    return init, step, lambda carry: {"Q": carry[0]}


def hdqn_tabular(hc):
    """(initial carry, step(carry, i, key)) of tabular h-DQN: Q_meta(s, goal) and Q_ctrl(s, goal, action)."""
    n = hc.n_states

    def init(key):
        return (
            jnp.zeros((n, n)),
            jnp.zeros((n, n, 2)),
            jnp.int32(1),
            jnp.bool_(False),
            jnp.int32(0),
            jnp.int32(0),
            jnp.int32(1),
            jnp.float32(0.0),
            jnp.bool_(True),
        )

    def step(carry, i, key):
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
        s_next, v_next, t_next = _reset(end, s2, visited2, t)
        carry = (Qm, Qc, s_next, v_next, t_next, goal, s_meta, R, goal_over)
        return carry, (s2, end, jnp.where(done, r, 0.0))

    return init, step, lambda carry: {"Q_meta": carry[0], "Q_ctrl": carry[1]}


# ----------------------------------------------------------------------------- the paper's networks


def mlp_init(key, n_in: int, hidden: int, n_out: int) -> dict:
    """One hidden ReLU layer: Q(x) = relu(x W1 + b1) W2 + b2 (LeCun-normal weights, zero biases)."""
    k1, k2 = jax.random.split(key)
    return {
        "w1": jax.random.normal(k1, (n_in, hidden)) / jnp.sqrt(n_in),
        "b1": jnp.zeros(hidden),
        "w2": jax.random.normal(k2, (hidden, n_out)) / jnp.sqrt(hidden),
        "b2": jnp.zeros(n_out),
    }


def mlp(p: dict, x):
    return jax.nn.relu(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]


def meta_input(s, n: int):
    return jax.nn.one_hot(s, n)


def ctrl_input(s, goal, n: int):
    return jnp.concatenate([jax.nn.one_hot(s, n), jax.nn.one_hot(goal, n)], -1)


def dqn_targets(r, q_next, done, gamma: float, valid=None):
    """y = r + gamma * (1 - done) * max over valid a' of q_next[a'] (q_next from the target network)."""
    if valid is not None:
        q_next = jnp.where(valid, q_next, -jnp.inf)
    return r + gamma * jnp.where(done, 0.0, q_next.max(-1))


def controller_targets(p_target, batch, hc):
    """Intrinsic-reward targets of a controller minibatch: r_in + gamma_c max_a Q_ctrl^-([s', g], a),
    0 after the goal is reached or the episode ends."""
    q_next = mlp(p_target, ctrl_input(batch["s2"], batch["g"], hc.n_states))
    return dqn_targets(batch["r"], q_next, batch["done"], hc.gamma_controller)


def meta_targets(p_target, batch, hc):
    """SMDP targets of a meta-controller minibatch: R + gamma max_{g' != s'} Q_meta^-(s', g'), 0 at termination."""
    n = hc.n_states
    q_next = mlp(p_target, meta_input(batch["s2"], n))
    return dqn_targets(batch["R"], q_next, batch["done"], hc.gamma, valid=jnp.arange(n) != batch["s2"][:, None])


def flat_targets(p_target, batch, hc):
    q_next = mlp(p_target, meta_input(batch["s2"], hc.n_states))
    return dqn_targets(batch["r"], q_next, batch["done"], hc.gamma)


def _replay(capacity: int, **fields) -> dict:
    """A ring buffer: one array per field (fields give the dtypes), a write pointer and the fill level."""
    buf = {k: jnp.zeros(capacity, dtype) for k, dtype in fields.items()}
    return {"data": buf, "ptr": jnp.int32(0), "size": jnp.int32(0)}


def _store(rb: dict, write, **values) -> dict:
    """Append ``values`` where ``write`` is true (otherwise leave the buffer as it was)."""
    cap = next(iter(rb["data"].values())).shape[0]
    data = {k: v.at[rb["ptr"]].set(jnp.where(write, values[k], v[rb["ptr"]])) for k, v in rb["data"].items()}
    return {"data": data, "ptr": (rb["ptr"] + write) % cap, "size": jnp.minimum(rb["size"] + write, cap)}


def _sample(rb: dict, key, batch: int) -> dict:
    idx = jax.random.randint(key, (batch,), 0, jnp.maximum(rb["size"], 1))
    return {k: v[idx] for k, v in rb["data"].items()}


def _learner(key, n_in: int, n_out: int, hc, tx) -> dict:
    p = mlp_init(key, n_in, hc.net_hidden, n_out)
    return {"online": p, "target": p, "opt": tx.init(p)}


def _update(net: dict, x, a, y, ready, i, hc, tx) -> dict:
    """One Adam step on the mean squared TD error of Q(x)[a] against y (skipped until the memory holds a
    minibatch); the target network is copied from the online one every target_every steps."""

    def loss(p):
        q = jnp.take_along_axis(mlp(p, x), a[:, None], 1)[:, 0]
        return ((q - jax.lax.stop_gradient(y)) ** 2).mean()

    grads = jax.grad(loss)(net["online"])
    updates, opt = tx.update(grads, net["opt"], net["online"])
    online = optax.apply_updates(net["online"], updates)
    keep = lambda new, old: jax.tree_util.tree_map(lambda u, v: jnp.where(ready, u, v), new, old)
    online, opt = keep(online, net["online"]), keep(opt, net["opt"])
    copy = (i + 1) % hc.target_every == 0
    target = jax.tree_util.tree_map(lambda u, v: jnp.where(copy, u, v), online, net["target"])
    return {"online": online, "target": target, "opt": opt}


def flat_network(hc):
    """(init, step, params) of flat DQN: Q(one-hot s) -> 2 actions, replay memory, target network."""
    n, tx = hc.n_states, optax.adam(hc.net_lr)

    def init(key):
        rb = _replay(hc.replay_controller, s=jnp.int32, a=jnp.int32, r=jnp.float32, s2=jnp.int32, done=jnp.bool_)
        return {"q": _learner(key, n, 2, hc, tx), "rb": rb, "env": (jnp.int32(1), jnp.bool_(False), jnp.int32(0))}

    def step(c, i, key):
        k_a, k_env, k_b = jax.random.split(jax.random.fold_in(key, i), 3)
        s, visited, t = c["env"]
        q_s = mlp(c["q"]["online"], meta_input(s, n))
        a = eps_greedy(k_a, q_s, epsilon(i, hc.eps_start, hc.eps_end, hc.eps_decay_steps))
        s2, visited2, r, done = env_step(k_env, s, visited, a, hc)
        rb = _store(c["rb"], True, s=s, a=a, r=r, s2=s2, done=done)
        b = _sample(rb, k_b, hc.batch_size)
        y = flat_targets(c["q"]["target"], b, hc)
        q = _update(c["q"], meta_input(b["s"], n), b["a"], y, rb["size"] >= hc.batch_size, i, hc, tx)
        end = done | (t + 1 >= hc.max_episode_steps)
        return {"q": q, "rb": rb, "env": _reset(end, s2, visited2, t)}, (s2, end, jnp.where(done, r, 0.0))

    return init, step, lambda c: {"Q": c["q"]["online"]}


def hdqn_network(hc):
    """(init, step, params) of h-DQN with networks (Kulkarni et al., Algorithm 1): meta-controller
    Q_meta(one-hot s) -> goals with memory D2 of (s0, g, R, s', done); controller Q_ctrl([one-hot s,
    one-hot g]) -> actions with memory D1 of (s, g, a, r_in, s', goal over); both updated every step."""
    n, tx = hc.n_states, optax.adam(hc.net_lr)

    def init(key):
        k_m, k_c = jax.random.split(key)
        d1 = _replay(
            hc.replay_controller, s=jnp.int32, g=jnp.int32, a=jnp.int32, r=jnp.float32, s2=jnp.int32, done=jnp.bool_
        )
        d2 = _replay(hc.replay_meta, s=jnp.int32, g=jnp.int32, R=jnp.float32, s2=jnp.int32, done=jnp.bool_)
        env = (
            jnp.int32(1),
            jnp.bool_(False),
            jnp.int32(0),
            jnp.int32(0),
            jnp.int32(1),
            jnp.float32(0.0),
            jnp.bool_(True),
        )
        return {
            "meta": _learner(k_m, n, n, hc, tx),
            "ctrl": _learner(k_c, 2 * n, 2, hc, tx),
            "d1": d1,
            "d2": d2,
            "env": env,
        }

    def step(c, i, key):
        k_g, k_a, k_env, k_b1, k_b2 = jax.random.split(jax.random.fold_in(key, i), 5)
        s, visited, t, goal, s_meta, R, need_goal = c["env"]
        eps_m = epsilon(i, hc.eps_start, hc.eps_end, hc.eps_decay_steps)
        eps_c = epsilon(i, hc.eps_start, hc.controller_eps_end, hc.eps_decay_steps)
        new_goal = eps_greedy(k_g, mlp(c["meta"]["online"], meta_input(s, n)), eps_m, valid=jnp.arange(n) != s)
        goal = jnp.where(need_goal, new_goal, goal)
        s_meta = jnp.where(need_goal, s, s_meta)
        R = jnp.where(need_goal, 0.0, R)
        a = eps_greedy(k_a, mlp(c["ctrl"]["online"], ctrl_input(s, goal, n)), eps_c)
        s2, visited2, r, done = env_step(k_env, s, visited, a, hc)
        reached = s2 == goal
        R = R + r
        goal_over = reached | done | (t + 1 >= hc.max_episode_steps)
        d1 = _store(c["d1"], True, s=s, g=goal, a=a, r=reached.astype(jnp.float32), s2=s2, done=reached | done)
        d2 = _store(c["d2"], goal_over, s=s_meta, g=goal, R=R, s2=s2, done=done)
        b1, b2 = _sample(d1, k_b1, hc.batch_size), _sample(d2, k_b2, hc.batch_size)
        y1, y2 = controller_targets(c["ctrl"]["target"], b1, hc), meta_targets(c["meta"]["target"], b2, hc)
        ctrl = _update(c["ctrl"], ctrl_input(b1["s"], b1["g"], n), b1["a"], y1, d1["size"] >= hc.batch_size, i, hc, tx)
        meta = _update(c["meta"], meta_input(b2["s"], n), b2["g"], y2, d2["size"] >= hc.batch_size, i, hc, tx)
        end = done | (t + 1 >= hc.max_episode_steps)
        s_next, v_next, t_next = _reset(end, s2, visited2, t)
        env = (s_next, v_next, t_next, goal, s_meta, R, goal_over)
        return {"meta": meta, "ctrl": ctrl, "d1": d1, "d2": d2, "env": env}, (s2, end, jnp.where(done, r, 0.0))

    return init, step, lambda c: {"Q_meta": c["meta"]["online"], "Q_ctrl": c["ctrl"]["online"]}


# ----------------------------------------------------------------------------- training: all agents, vmapped over seeds

AGENTS = {
    "flat": "Q-learning (tabular)",
    "hdqn": "h-DQN (tabular)",
    "flat_net": "DQN (network)",
    "hdqn_net": "h-DQN (networks)",
}


def agent_names(hc) -> tuple[str, ...]:
    return tuple(AGENTS) if hc.networks else ("flat", "hdqn")


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


def make_trainer(cfg) -> Trainer:
    """State {agent: carry with a leading seed axis}; each agent's chunk is one jitted scan, vmapped over seeds.

    The tabular agents' keys are those of the first version of this task (its results reproduce); the
    network agents draw from keys of their own."""
    hc = cfg.hdqn
    k = hc.n_seeds
    tab_keys = jax.random.split(jax.random.key(cfg.seed), 2 * k).reshape(2, k)
    net_keys = jax.random.split(jax.random.fold_in(jax.random.key(cfg.seed), 1), 4 * k).reshape(4, k)
    agents = {
        "flat": flat_tabular(hc),
        "hdqn": hdqn_tabular(hc),
        "flat_net": flat_network(hc),
        "hdqn_net": hdqn_network(hc),
    }
    keys = {"flat": tab_keys[0], "hdqn": tab_keys[1], "flat_net": net_keys[0], "hdqn_net": net_keys[1]}
    init_keys = {"flat_net": net_keys[2], "hdqn_net": net_keys[3]}
    names = agent_names(hc)

    def init():
        state = {}
        for a in names:
            state[a] = jax.vmap(agents[a][0])(init_keys.get(a, keys[a]))
        return state

    @partial(jax.jit, static_argnums=(0, 3))
    def run_agent(a, carry, start, n):
        step = agents[a][1]

        def one(c, key):
            return jax.lax.scan(lambda c, i: step(c, i, key), c, start + jnp.arange(n))

        return jax.vmap(one)(carry, keys[a])

    def run(state, start, n):
        new, curves = {}, {"step": start + (np.arange(n // hc.bin_steps) + 1) * hc.bin_steps}
        for a in names:
            new[a], trace = run_agent(a, state[a], start, n)
            b = bin_trace(trace, hc)
            curves[f"{a}_reward_per_episode_mean"] = b["reward_per_episode"].mean(0)
            curves[f"{a}_reward_per_episode"] = b["reward_per_episode"].T  # (bins, seeds)
            curves[f"{a}_visits_per_episode"] = b["visits_per_episode"].mean(0)  # (bins, states)
        return new, curves

    def params(state):
        return {a: agents[a][2](state[a]) for a in names}

    return Trainer(jax.jit(init), run, params, multiple=hc.bin_steps)


# ----------------------------------------------------------------------------- evaluation


def policy(agent: str, p: dict, s, goal, need_goal, n: int):
    """The greedy (goal, action) of an agent's parameters in state s."""
    valid = jnp.arange(n) != s
    if agent == "flat":
        return goal, jnp.argmax(p["Q"][s])
    if agent == "flat_net":
        return goal, jnp.argmax(mlp(p["Q"], meta_input(s, n)))
    if agent == "hdqn":
        goal = jnp.where(need_goal, jnp.argmax(jnp.where(valid, p["Q_meta"][s], -jnp.inf)), goal)
        return goal, jnp.argmax(p["Q_ctrl"][s, goal])
    if agent == "hdqn_net":
        g = jnp.argmax(jnp.where(valid, mlp(p["Q_meta"], meta_input(s, n)), -jnp.inf))
        goal = jnp.where(need_goal, g, goal)
        return goal, jnp.argmax(mlp(p["Q_ctrl"], ctrl_input(s, goal, n)))
    raise ValueError(f"unknown agent {agent!r}")


def greedy_return(cfg, params, agent: str, episodes: int = 2000) -> np.ndarray:
    """Mean extrinsic reward of each seed's greedy policy (epsilon 0 at both levels); "random": uniform actions."""
    hc = cfg.hdqn
    n = hc.n_states

    def episode(key, p):
        def step(carry, k):
            s, visited, goal, need_goal, alive, ret = carry
            k_env = jax.random.fold_in(k, 1)
            if agent == "random":
                a = jax.random.randint(jax.random.fold_in(k, 2), (), 0, 2)
            else:
                goal, a = policy(agent, p, s, goal, need_goal, n)
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
    p = params[agent] if agent != "random" else jnp.zeros(hc.n_seeds)
    return np.asarray(jax.jit(jax.vmap(per_seed))(keys, p))


def evaluate(cfg, params) -> dict:
    """Greedy reward of every agent and seed; with the training curves (run_dir/curves.json), the figure."""
    import json

    hc = cfg.hdqn
    names = agent_names(hc)
    best = optimal_value(hc.n_states, hc.p_right)
    out = {"optimal_expected_reward": best, "n_seeds": hc.n_seeds, "train_steps": hc.train_steps, "agents": list(names)}
    out["random_greedy_reward_mean"] = float(greedy_return(cfg, params, "random").mean())
    for agent in names:
        g = greedy_return(cfg, params, agent)
        out[f"{agent}_greedy_reward_mean"] = float(g.mean())
        out[f"{agent}_greedy_reward_per_seed"] = [round(float(x), 4) for x in g]
        out[f"{agent}_seeds_within_0.02_of_optimum"] = int((g >= best - 0.02).sum())
    curves_path = Path(cfg.run_dir) / "curves.json"
    if curves_path.is_file():
        curves = {k: np.asarray(v) for k, v in json.loads(curves_path.read_text()).items()}
        for agent in names:
            r = curves[f"{agent}_reward_per_episode"][-1]  # last bin, per seed
            out[f"{agent}_training_reward_last_bin_mean"] = float(r.mean())
            out[f"{agent}_training_reward_last_bin_std"] = float(r.std())
            out[f"{agent}_visits_per_episode_last_bin"] = [
                round(float(v), 3) for v in curves[f"{agent}_visits_per_episode"][-1]
            ]
        figure(cfg, curves, names, best)
    return out


def figure(cfg, curves: dict, names, best: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hc = cfg.hdqn
    x = (np.arange(len(curves[f"{names[0]}_reward_per_episode"])) + 1) * hc.bin_steps
    fig, axes = plt.subplots(1, 1 + len(names), figsize=(5 * (1 + len(names)), 3.8))
    for c, agent in enumerate(names):
        r = curves[f"{agent}_reward_per_episode"]
        m, sd = r.mean(1), r.std(1)
        axes[0].plot(x, m, color=f"C{c}", label=f"{AGENTS[agent]} ({hc.n_seeds} seeds)")
        axes[0].fill_between(x, m - sd, m + sd, color=f"C{c}", alpha=0.2)
    axes[0].axhline(best, color="k", ls="--", lw=1, label=f"optimum {best:.3f}")
    axes[0].set(xlabel="environment steps", ylabel="extrinsic reward per episode", title="training (epsilon-greedy)")
    axes[0].legend(fontsize=8)
    for ax, agent in zip(axes[1:], names):
        v = curves[f"{agent}_visits_per_episode"]
        for s in range(2, hc.n_states):
            ax.plot(x, v[:, s], label=f"s{s + 1}")
        ax.set(xlabel="environment steps", ylabel="visits per episode", title=f"state visits: {AGENTS[agent]}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{cfg.run_dir}/hdqn.png", dpi=80)
    plt.close(fig)


def main(argv=None):
    return run_command(lambda a: run_task("hdqn", make_trainer, evaluate, a, __doc__), argv)


if __name__ == "__main__":
    main()
