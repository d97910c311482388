"""N seeds of DQN / Munchausen-DQN trained side by side in one process.

    python -m paperlab.dqn.train_batched --config configs/dqn/minatar.yaml num_seeds=5 total_steps=200000 \\
        env_id=MinAtar/Asterix-v0 agent=mdqn run_dir=runs/dqn/batched/Asterix/mdqn
    python -m paperlab.dqn.train_batched ... --resume          # continue a killed run

Agent k (seed ``seed + k``) has its own network, target network, optimiser state, replay buffer,
environment and random generator, and draws from them exactly as ``paperlab.dqn.train`` does for
that seed. What is shared is the computation: the N networks live as stacked parameters (leading
axis N, ``networks.stack_params``) and every forward and backward pass of the N agents is one
batched computation (``networks.batched_q_values``: ``baddbmm`` for the dense layers, ``unfold``
+ ``baddbmm`` for the convolution). The per-agent losses are summed before the backward pass; no
agent's loss depends on another's parameters, so each agent gets exactly its own gradient, and
the optimisers are elementwise (RMSprop, Adam), so one optimiser over the stacked tensors is N
independent optimisers. Agent k therefore follows the solo run with seed ``seed + k`` up to the
float rounding of the batched products (tested: ``tests/test_batched.py``).

The run directory holds one checkpoint for all agents (``checkpoints/last.pt`` + replay) and the
top-level ``config.yaml``; each agent has the solo run's files in ``seed<k>/``: ``config.yaml``
(its own seed), ``metrics.jsonl``, ``episodes.csv``, TensorBoard events, and at the end
``model.pt``, ``eval.json`` and ``summary.json``, readable by ``evaluate``, ``render`` and ``report``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
import time
from collections import deque
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from paperlab.dqn.checkpoint import load_training, model_meta, save_model, save_training
from paperlab.dqn.config import Config
from paperlab.dqn.envs import make_env
from paperlab.dqn.evaluate import evaluate_agents
from paperlab.dqn.networks import batched_q_values, make_q_network, stack_params, unstack_params
from paperlab.dqn.replay import BatchedReplayBuffer
from paperlab.dqn.targets import dqn_target, linear_epsilon, munchausen_target
from paperlab.dqn.train import RESUME_HINT, _check_loss, _truncate_episodes, compiled_step, final_eval, make_optimizer
from paperlab.shared.checkpoint import LAST, atomic_write_text, guard_run_dir, restore_rng_state, rng_state
from paperlab.shared.cli import StopSignal, run_command
from paperlab.shared.config import add_config_args, config_from_args, parse_args, save_config
from paperlab.shared.runlog import RunLogger
from paperlab.shared.seeding import seed_everything


def check_batched_config(cfg: Config) -> None:
    """What the batched trainer refuses: settings that make one agent's run end before the others'."""
    if cfg.eval_every or cfg.stop_return is not None:
        raise ValueError(
            "train_batched trains every seed for total_steps; set eval_every=0 and stop_return=null "
            "(a stop at an evaluation threshold, as in the CartPole preset, is per run: use "
            "paperlab.dqn.train)"
        )


def agent_seeds(cfg: Config) -> list[int]:
    return [cfg.seed + k for k in range(cfg.num_seeds)]


def agent_config(cfg: Config, seed: int, run_dir: Path) -> Config:
    """The config of agent ``seed``: that of a solo run with this seed, in ``run_dir/seed<seed>``."""
    return dataclasses.replace(cfg, seed=seed, num_seeds=1, run_dir=str(run_dir / f"seed{seed}"))


# --------------------------------------------------------------------------------------------- update
def batched_targets(cfg: Config, params, target_params, batch) -> torch.Tensor:
    """``train.compute_targets`` for N agents: (N, B) regression targets, without gradient. The
    target formulas act row by row, so they run unchanged on the N*B rows."""
    obs, actions, rewards, next_obs, terminated = (
        batch["obs"],
        batch["actions"],
        batch["rewards"],
        batch["next_obs"],
        batch["terminated"],
    )
    n, b = actions.shape
    with torch.no_grad():
        if cfg.agent == "mdqn":
            q_both = batched_q_values(target_params, torch.cat([obs, next_obs], dim=1))  # s and s' at once
            q_t, q_next_t = q_both.split(b, dim=1)
            y = munchausen_target(
                rewards.flatten(),
                terminated.flatten(),
                actions.flatten(),
                cfg.gamma,
                q_t.flatten(0, 1),
                q_next_t.flatten(0, 1),
                cfg.m_alpha,
                cfg.m_tau,
                cfg.m_l0,
            )
        else:
            q_next_t = batched_q_values(target_params, next_obs).flatten(0, 1)
            q_next_online = batched_q_values(params, next_obs).flatten(0, 1) if cfg.double_dqn else None
            y = dqn_target(rewards.flatten(), terminated.flatten(), cfg.gamma, q_next_t, q_next_online)
    return y.reshape(n, b)


def clip_grad_norm_per_agent(params: dict[str, torch.Tensor], max_norm: float) -> None:
    """``clip_grad_norm_`` for each agent separately (agent k's norm over its slices of the grads)."""
    grads = [p.grad for p in params.values() if p.grad is not None]
    norms = torch.stack([g.flatten(1).pow(2).sum(1) for g in grads]).sum(0).sqrt()  # (N,)
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.view(-1, *([1] * (g.dim() - 1))))


def batched_td_update(cfg: Config, params, target_params, optimizer, batch, optimizer_step=None):
    """One gradient step of every agent. Returns (loss, mean Q(s, a)), each (N,), detached."""
    y = batched_targets(cfg, params, target_params, batch)
    q_sa = batched_q_values(params, batch["obs"]).gather(2, batch["actions"].unsqueeze(2)).squeeze(2)  # (N, B)
    loss_fn = F.smooth_l1_loss if cfg.loss == "huber" else F.mse_loss
    loss_N = loss_fn(q_sa, y, reduction="none").mean(dim=1)
    optimizer.zero_grad(set_to_none=True)
    loss_N.sum().backward()  # d(sum_j loss_j)/d(theta_k) = d(loss_k)/d(theta_k): each agent its own gradient
    if cfg.max_grad_norm > 0:
        clip_grad_norm_per_agent(params, cfg.max_grad_norm)
    (optimizer_step or optimizer.step)()
    return loss_N.detach(), q_sa.detach().mean(dim=1)


@torch.no_grad()
def update_targets(params, target_params, tau: float) -> None:
    for name, p in params.items():
        if tau >= 1.0:
            target_params[name].copy_(p)
        else:
            target_params[name].lerp_(p, tau)


# ------------------------------------------------------------------------------------------- training
def train_batched(cfg: Config, resume: bool = False, stop_after_steps: int | None = None) -> list[dict]:
    """Train ``cfg.num_seeds`` agents (seeds ``cfg.seed``, ``cfg.seed + 1``, ...) for ``cfg.total_steps``
    steps each. Returns one summary per agent. ``resume`` and ``stop_after_steps`` as in ``train.train``."""
    check_batched_config(cfg)
    run_dir = Path(cfg.run_dir)
    ckpt_path = guard_run_dir(run_dir, resume, RESUME_HINT)
    torch.set_num_threads(cfg.torch_threads)
    torch.set_flush_denormal(True)
    seeds = agent_seeds(cfg)
    n = len(seeds)

    # agent k's generator, environment and initial network: those of the solo run with seed k
    rngs, envs, nets = [], [], []
    for s in seeds:
        rngs.append(seed_everything(s, cfg.deterministic))
        envs.append(make_env(cfg.env_id, cfg.sticky_action_prob, cfg.difficulty_ramping))
        nets.append(make_q_network(envs[-1].obs_shape, envs[-1].n_actions, cfg))
    obs_shape, n_actions = envs[0].obs_shape, envs[0].n_actions
    params = stack_params(nets)
    target_params = {name: p.detach().clone() for name, p in params.items()}
    optimizer = make_optimizer(list(params.values()), cfg)
    buffer = BatchedReplayBuffer(n, cfg.buffer_size, obs_shape, envs[0].obs_dtype)
    meta = model_meta(cfg, obs_shape, n_actions)

    step, elapsed = 0, 0.0
    episode, ep_return, ep_length = [0] * n, [0.0] * n, [0] * n
    recent = [deque(maxlen=cfg.return_window) for _ in range(n)]
    obs = np.stack([env.reset(seed=s) for env, s in zip(envs, seeds)])
    if ckpt_path is not None:
        ckpt, replay = load_training(ckpt_path, cfg)
        with torch.no_grad():
            for name in params:
                params[name].copy_(ckpt["q_net"][name])
                target_params[name].copy_(ckpt["target_net"][name])
        optimizer.load_state_dict(ckpt["optimizer"])
        fresh = make_optimizer([torch.zeros(1, requires_grad=True)], cfg).param_groups[0]
        for group in optimizer.param_groups:  # lr, eps, ... come from this run's config
            group.update({k: v for k, v in fresh.items() if k != "params"})
        buffer.load_state_dict(replay)
        s = ckpt["loop"]
        step, elapsed, obs = s["step"], s["elapsed"], s["obs"]
        for k, a in enumerate(s["agents"]):
            episode[k], ep_return[k], ep_length[k] = a["episode"], a["ep_return"], a["ep_length"]
            recent[k].extend(a["recent"])
            envs[k] = pickle.loads(a["env"])
        restore_rng_state(ckpt["rng"], *rngs)
        print(f"resuming {run_dir} ({n} seeds) from step {step} of {cfg.total_steps}", flush=True)

    def save_checkpoint() -> None:
        agents = [
            {
                "episode": episode[k],
                "ep_return": ep_return[k],
                "ep_length": ep_length[k],
                "recent": list(recent[k]),
                "env": pickle.dumps(envs[k]),
            }
            for k in range(n)
        ]
        loop = {"step": step, "elapsed": elapsed + time.time() - t_start, "obs": obs, "agents": agents}
        save_training(
            run_dir,
            {
                "meta": meta,
                "q_net": {k: v.detach() for k, v in params.items()},
                "target_net": target_params,
                "optimizer": optimizer.state_dict(),
                "loop": loop,
                "rng": rng_state(*rngs),
            },
            buffer.state_dict(),
        )

    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    agent_cfgs = [agent_config(cfg, s, run_dir) for s in seeds]
    loggers = [RunLogger(c.run_dir, c, resume_step=step if ckpt_path else None) for c in agent_cfgs]
    episode_files = []
    for c in agent_cfgs:
        path = Path(c.run_dir) / "episodes.csv"
        if ckpt_path:
            _truncate_episodes(path, step)
        else:
            path.write_text("step,return,length\n")
        episode_files.append(open(path, "a", buffering=1))

    optimizer_step = compiled_step(optimizer) if cfg.compile_optimizer else None
    t_start = time.time()
    t_log, step_log = t_start, step
    loss_sum, q_sum, n_updates = torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64), 0
    end_step = cfg.total_steps if stop_after_steps is None else min(cfg.total_steps, step + stop_after_steps)
    bar = loggers[0].progress(cfg.total_steps, initial=step, desc=f"{cfg.agent} {cfg.env_id} x{n} seeds")
    try:
        with StopSignal() as stop:
            while step < end_step and not stop.requested:
                eps = linear_epsilon(step - cfg.eps_decay_start, cfg.eps_start, cfg.eps_end, cfg.eps_decay_steps)
                # networks.epsilon_greedy for every agent: the same draws from each agent's generator,
                # and one batched forward pass for the greedy actions
                explore = [rng.random() < eps for rng in rngs]
                actions = [int(rng.integers(n_actions)) if e else -1 for rng, e in zip(rngs, explore)]
                if not all(explore):
                    with torch.no_grad():
                        greedy = batched_q_values(params, torch.from_numpy(obs).unsqueeze(1))[:, 0].argmax(1).tolist()
                    actions = [g if a < 0 else a for a, g in zip(actions, greedy)]
                next_obs = np.empty_like(obs)
                rewards, terminals = np.zeros(n, dtype=np.float32), np.zeros(n, dtype=np.float32)
                resets = []
                for k, env in enumerate(envs):
                    next_obs[k], rewards[k], terminated, truncated = env.step(actions[k])
                    terminals[k] = terminated
                    if terminated or truncated:
                        resets.append(k)
                buffer.add(obs, actions, rewards, next_obs, terminals)
                obs = next_obs
                step += 1
                for k in range(n):
                    ep_return[k] += float(rewards[k])
                    ep_length[k] += 1
                for k in resets:
                    episode[k] += 1
                    recent[k].append(ep_return[k])
                    episode_files[k].write(f"{step},{ep_return[k]:g},{ep_length[k]}\n")
                    obs[k] = envs[k].reset()
                    ep_return[k], ep_length[k] = 0.0, 0

                if step > cfg.learning_starts and step % cfg.train_freq == 0:
                    for _ in range(cfg.gradient_steps):
                        loss_N, q_N = batched_td_update(
                            cfg, params, target_params, optimizer, buffer.sample(cfg.batch_size, rngs), optimizer_step
                        )
                        for k, value in enumerate(loss_N.tolist()):
                            try:
                                _check_loss(step, value, run_dir / LAST)
                            except FloatingPointError as e:
                                raise FloatingPointError(f"agent with seed {seeds[k]}: {e}") from None
                        loss_sum += loss_N
                        q_sum += q_N
                        n_updates += 1
                if step % cfg.target_update_period == 0:
                    update_targets(params, target_params, cfg.target_tau)

                if step % cfg.log_every == 0:
                    now = time.time()
                    fps = (step - step_log) / max(now - t_log, 1e-9)
                    for k, logger in enumerate(loggers):
                        row = {"epsilon": eps, "episodes": episode[k], "fps": fps, "fps_all_agents": n * fps}
                        if recent[k]:
                            row["return_mean"] = sum(recent[k]) / len(recent[k])
                        if n_updates:
                            row["loss"] = float(loss_sum[k]) / n_updates
                            row["q_mean"] = float(q_sum[k]) / n_updates
                        logger.log(step, **row)
                    bar.update(step - bar.n)
                    means = [sum(r) / len(r) for r in recent if r]
                    if means:
                        bar.set_postfix(ret=f"{np.mean(means):.1f}", eps=f"{eps:.2f}")
                    t_log, step_log = now, step
                    loss_sum.zero_()
                    q_sum.zero_()
                    n_updates = 0
                if step % cfg.checkpoint_every == 0:
                    save_checkpoint()
    finally:
        bar.close()
        for f in episode_files:
            f.close()
        for logger in loggers:
            logger.close()

    save_checkpoint()
    wall = elapsed + time.time() - t_start
    summaries = [
        {
            "steps": step,
            "wall_time_s": round(wall, 2),
            "finished": False,
            "seed": s,
            "device": "cpu",
            "env_id": cfg.env_id,
            "agent": cfg.agent,
            "episodes": episode[k],
            "num_seeds": n,
            "batched_run": str(run_dir),
        }
        for k, s in enumerate(seeds)
    ]
    if step < cfg.total_steps:  # stopped early on purpose: not finished
        for c, summary in zip(agent_cfgs, summaries):
            atomic_write_text(Path(c.run_dir) / "summary.json", json.dumps(summary, indent=2) + "\n")
        return summaries

    for k, c in enumerate(agent_cfgs):  # the models first: an evaluation cut short leaves them behind
        nets[k].load_state_dict(unstack_params(params, k))
        save_model(Path(c.run_dir) / "model.pt", model_meta(c, obs_shape, n_actions), nets[k])
    if cfg.env_id == "CartPole-v1":  # the solo run's (vectorized) final evaluation, agent by agent
        results = [final_eval(nets[k], c) for k, c in enumerate(agent_cfgs)]
    else:  # evaluate_policy for all agents at once (one batched forward per step)
        results = evaluate_agents(
            params,
            cfg.env_id,
            [s + 10_000_000 for s in seeds],
            cfg.eval_episodes,
            cfg.eval_epsilon,
            cfg.sticky_action_prob,
            cfg.difficulty_ramping,
            max_steps_per_episode=cfg.eval_max_steps,
        )
    for k, (c, summary, result) in enumerate(zip(agent_cfgs, summaries, results)):
        atomic_write_text(Path(c.run_dir) / "eval.json", json.dumps(result, indent=2) + "\n")
        summary.update(
            fps=round(step / max(wall, 1e-9), 1),
            fps_all_agents=round(n * step / max(wall, 1e-9), 1),
            solved=None,
            final_return_mean=(sum(recent[k]) / len(recent[k])) if recent[k] else None,
            eval={key: v for key, v in result.items() if key != "returns"},
            finished=True,
        )
        atomic_write_text(Path(c.run_dir) / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summaries


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Train num_seeds DQN / M-DQN agents side by side in one process.")
    add_config_args(parser, resume=True)
    args = parse_args(parser, argv)
    cfg = config_from_args(Config, args)
    summaries = train_batched(cfg, resume=args.resume)
    s0 = summaries[0]
    line = f"{cfg.agent} on {cfg.env_id}, {len(summaries)} seeds: {s0['steps']} steps each in {s0['wall_time_s']:.0f} s"
    if not s0["finished"]:
        print(line + f", stopped before total_steps; continue with {RESUME_HINT}")
    else:
        evals = ", ".join(f"seed {s['seed']}: {s['eval']['return_mean']:.2f}" for s in summaries)
        print(line + f"; final eval ({s0['eval']['episodes']} episodes, epsilon {s0['eval']['epsilon']}): {evals}")
    print(f"run: {cfg.run_dir}")


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
