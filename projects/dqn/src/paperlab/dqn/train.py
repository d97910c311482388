"""The training loop shared by DQN and Munchausen-DQN.

    python -m paperlab.dqn.train --config configs/dqn/cartpole.yaml agent=mdqn seed=2
    python -m paperlab.dqn.train --config configs/dqn/cartpole.yaml agent=mdqn seed=2 --resume  # a killed run

A run directory holds ``config.yaml``, ``metrics.jsonl`` (every ``log_every`` steps),
``episodes.csv`` (one row per training episode), TensorBoard events, ``checkpoints/last.pt`` (+
``replay-<step>.npz``; see ``checkpoint.py``), and at the end ``model.pt``, ``eval.json`` and
``summary.json``.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import pickle
import time
from collections import deque
from pathlib import Path

import torch
import torch.nn.functional as F

from paperlab.dqn.checkpoint import load_training, model_meta, save_model, save_training
from paperlab.dqn.config import Config
from paperlab.dqn.envs import make_env
from paperlab.dqn.evaluate import evaluate_policy, evaluate_vectorized
from paperlab.dqn.networks import epsilon_greedy, make_q_network
from paperlab.dqn.replay import ReplayBuffer
from paperlab.dqn.targets import dqn_target, linear_epsilon, munchausen_target
from paperlab.shared.checkpoint import LAST, atomic_write_text, guard_run_dir, restore_rng_state, rng_state
from paperlab.shared.cli import StopSignal, check_finite, run_command
from paperlab.shared.config import add_config_args, config_from_args, parse_args
from paperlab.shared.runlog import RunLogger
from paperlab.shared.seeding import seed_everything

RESUME_HINT = "--resume (make: RESUME=1)"


# --------------------------------------------------------------------------------------------- update
def make_optimizer(params, cfg: Config) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":  # the fused CPU/GPU kernel is several times faster than the loop
        return torch.optim.Adam(params, lr=cfg.lr, eps=cfg.adam_eps, fused=True)
    return torch.optim.RMSprop(
        params, lr=cfg.lr, alpha=cfg.rmsprop_alpha, eps=cfg.rmsprop_eps, centered=cfg.rmsprop_centered
    )


def compiled_step(optimizer: torch.optim.Optimizer):
    """``optimizer.step`` compiled by ``torch.compile`` (fuses RMSprop: ~3x faster on CPU).

    The step is compiled without the profiler wrapper that ``torch.optim`` puts around it (a
    ``record_function`` that dynamo ignores with a warning on every run); it has no hooks here."""
    step = type(optimizer).step
    return torch.compile(functools.partial(getattr(step, "__wrapped__", step), optimizer))


def compute_targets(cfg: Config, q_net, target_net, batch) -> torch.Tensor:
    """The regression target y of the batch, without gradient."""
    obs, actions, rewards, next_obs, terminated = (
        batch["obs"],
        batch["actions"],
        batch["rewards"],
        batch["next_obs"],
        batch["terminated"],
    )
    with torch.no_grad():
        if cfg.agent == "mdqn":
            q_both = target_net(torch.cat([obs, next_obs]))  # one forward for s and s'
            q_t, q_next_t = q_both.split(obs.shape[0])
            return munchausen_target(
                rewards, terminated, actions, cfg.gamma, q_t, q_next_t, cfg.m_alpha, cfg.m_tau, cfg.m_l0
            )
        q_next_t = target_net(next_obs)
        q_next_online = q_net(next_obs) if cfg.double_dqn else None
        return dqn_target(rewards, terminated, cfg.gamma, q_next_t, q_next_online)


def td_update(cfg: Config, q_net, target_net, optimizer, batch, optimizer_step=None):
    """One gradient step on the TD loss. Returns (loss, mean Q(s, a)) as 0-d tensors.

    ``optimizer_step`` replaces ``optimizer.step`` (e.g. by its ``torch.compile``d version)."""
    y = compute_targets(cfg, q_net, target_net, batch)
    q_sa = q_net(batch["obs"]).gather(1, batch["actions"].unsqueeze(1)).squeeze(1)
    loss = F.smooth_l1_loss(q_sa, y) if cfg.loss == "huber" else F.mse_loss(q_sa, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(q_net.parameters(), cfg.max_grad_norm)
    (optimizer_step or optimizer.step)()
    return loss.detach(), q_sa.detach().mean()


@torch.no_grad()
def update_target(q_net, target_net, tau: float) -> None:
    if tau >= 1.0:
        target_net.load_state_dict(q_net.state_dict())
    else:
        torch._foreach_lerp_(list(target_net.parameters()), list(q_net.parameters()), tau)


def periodic_eval(q_net, cfg: Config, seed: int, epsilon: float = 0.0) -> dict:
    """``cfg.eval_episodes`` evaluation episodes (CartPole: all at once, batched)."""
    if cfg.env_id == "CartPole-v1" and epsilon == 0.0:
        return evaluate_vectorized(q_net, cfg.env_id, cfg.eval_episodes, seed)
    return evaluate_policy(
        q_net,
        cfg.env_id,
        cfg.eval_episodes,
        epsilon,
        seed,
        cfg.sticky_action_prob,
        cfg.difficulty_ramping,
        max_steps_per_episode=cfg.eval_max_steps,
    )


def final_eval(q_net, cfg: Config) -> dict:
    """The end-of-run evaluation, on episodes (seed) that no evaluation during training used."""
    return periodic_eval(q_net, cfg, seed=cfg.seed + 10_000_000, epsilon=cfg.eval_epsilon)


# ------------------------------------------------------------------------------------------- training
def _truncate_episodes(path: Path, step: int) -> None:
    if not path.exists():
        return
    lines = path.read_text().splitlines()
    kept = [lines[0]] + [ln for ln in lines[1:] if ln and int(ln.split(",")[0]) <= step]
    path.write_text("\n".join(kept) + "\n")


def train(cfg: Config, resume: bool = False, stop_after_steps: int | None = None) -> dict:
    """Train until ``cfg.total_steps`` (or ``cfg.stop_return`` is reached). Returns the summary.

    ``resume=True`` continues from ``run_dir/checkpoints/last.pt``; without it, a run directory
    that holds a checkpoint is refused (a fresh run would overwrite its history). A run whose
    training finished but that died before its final evaluation goes straight to the evaluation.
    ``stop_after_steps`` ends the call early after saving a checkpoint, as Ctrl-C/SIGTERM does.
    """
    if cfg.num_seeds != 1:
        raise ValueError(
            f"num_seeds={cfg.num_seeds}: several seeds in one process is paperlab.dqn.train_batched; "
            "paperlab.dqn.train runs one seed"
        )
    run_dir = Path(cfg.run_dir)
    ckpt_path = guard_run_dir(run_dir, resume, RESUME_HINT)  # None: a fresh run
    torch.set_num_threads(cfg.torch_threads)
    torch.set_flush_denormal(True)  # denormal floats in optimizer states are very slow on CPU

    rng = seed_everything(cfg.seed, cfg.deterministic)  # also returns default_rng(seed)
    env = make_env(cfg.env_id, cfg.sticky_action_prob, cfg.difficulty_ramping)
    q_net = make_q_network(env.obs_shape, env.n_actions, cfg)
    target_net = copy.deepcopy(q_net)
    optimizer = make_optimizer(q_net.parameters(), cfg)
    buffer = ReplayBuffer(cfg.buffer_size, env.obs_shape, env.obs_dtype)
    meta = model_meta(cfg, env.obs_shape, env.n_actions)

    step, episode, elapsed = 0, 0, 0.0
    recent = deque(maxlen=cfg.return_window)
    solved = None
    ep_return, ep_length = 0.0, 0
    obs = env.reset(seed=cfg.seed)
    if ckpt_path is not None:
        ckpt, replay = load_training(ckpt_path, cfg)
        q_net.load_state_dict(ckpt["q_net"])
        target_net.load_state_dict(ckpt["target_net"])
        optimizer.load_state_dict(ckpt["optimizer"])
        fresh = make_optimizer(q_net.parameters(), cfg).param_groups[0]
        for group in optimizer.param_groups:  # lr, eps, ... come from this run's config, not the old one
            group.update({k: v for k, v in fresh.items() if k != "params"})
        buffer.load_state_dict(replay)
        s = ckpt["loop"]
        step, episode, elapsed, solved = s["step"], s["episode"], s["elapsed"], s["solved"]
        ep_return, ep_length, obs = s["ep_return"], s["ep_length"], s["obs"]
        recent.extend(s["recent"])
        env = pickle.loads(s["env"])
        restore_rng_state(ckpt["rng"], rng)
        print(f"resuming {run_dir} from step {step} of {cfg.total_steps}", flush=True)

    def save_checkpoint() -> None:
        loop = {
            "step": step,
            "episode": episode,
            "elapsed": elapsed + time.time() - t_start,
            "solved": solved,
            "ep_return": ep_return,
            "ep_length": ep_length,
            "obs": obs,
            "recent": list(recent),
            "env": pickle.dumps(env),
        }
        save_training(
            run_dir,
            {
                "meta": meta,
                "q_net": q_net.state_dict(),
                "target_net": target_net.state_dict(),
                "optimizer": optimizer.state_dict(),
                "loop": loop,
                "rng": rng_state(rng),
            },
            buffer.state_dict(),
        )

    logger = RunLogger(run_dir, cfg, resume_step=step if ckpt_path else None)
    episodes_path = run_dir / "episodes.csv"
    if ckpt_path:
        _truncate_episodes(episodes_path, step)
    else:
        episodes_path.write_text("step,return,length\n")
    episodes_file = open(episodes_path, "a", buffering=1)

    optimizer_step = compiled_step(optimizer) if cfg.compile_optimizer else None
    t_start = time.time()
    t_log, step_log = t_start, step
    loss_sum, q_sum, n_updates = 0.0, 0.0, 0
    end_step = cfg.total_steps if stop_after_steps is None else min(cfg.total_steps, step + stop_after_steps)
    bar = logger.progress(cfg.total_steps, initial=step, desc=f"{cfg.agent} {cfg.env_id}")
    try:
        with StopSignal() as stop:  # Ctrl-C/SIGTERM: finish the step, save below, return
            while step < end_step and solved is None and not stop.requested:
                eps = linear_epsilon(step - cfg.eps_decay_start, cfg.eps_start, cfg.eps_end, cfg.eps_decay_steps)
                action = epsilon_greedy(q_net, obs, eps, rng, env.n_actions)
                next_obs, reward, terminated, truncated = env.step(action)
                buffer.add(obs, action, reward, next_obs, terminated)
                obs = next_obs
                ep_return += reward
                ep_length += 1
                step += 1

                if terminated or truncated:
                    episode += 1
                    recent.append(ep_return)
                    episodes_file.write(f"{step},{ep_return:g},{ep_length}\n")
                    obs = env.reset()
                    ep_return, ep_length = 0.0, 0

                if step > cfg.learning_starts and step % cfg.train_freq == 0:
                    for _ in range(cfg.gradient_steps):
                        loss, q_mean = td_update(
                            cfg, q_net, target_net, optimizer, buffer.sample(cfg.batch_size, rng), optimizer_step
                        )
                        loss_value = loss.item()
                        _check_loss(step, loss_value, run_dir / LAST)
                        loss_sum += loss_value
                        q_sum += q_mean.item()
                        n_updates += 1
                if step % cfg.target_update_period == 0:
                    update_target(q_net, target_net, cfg.target_tau)

                if step % cfg.log_every == 0:
                    now = time.time()
                    row = {"epsilon": eps, "episodes": episode, "fps": (step - step_log) / max(now - t_log, 1e-9)}
                    if recent:
                        row["return_mean"] = sum(recent) / len(recent)
                    if n_updates:
                        row["loss"], row["q_mean"] = loss_sum / n_updates, q_sum / n_updates
                    logger.log(step, **row)
                    bar.update(step - bar.n)
                    if "return_mean" in row:
                        bar.set_postfix(ret=f"{row['return_mean']:.1f}", eps=f"{eps:.2f}")
                    t_log, step_log = now, step
                    loss_sum, q_sum, n_updates = 0.0, 0.0, 0
                if cfg.eval_every and step % cfg.eval_every == 0:
                    result = periodic_eval(q_net, cfg, seed=cfg.seed + step)
                    logger.log(step, eval_return_mean=result["return_mean"], eval_return_std=result["return_std"])
                    if solved is None and cfg.stop_return is not None and result["return_mean"] >= cfg.stop_return:
                        solved = {
                            "step": step,
                            "episode": episode,
                            "time": elapsed + time.time() - t_start,
                            "eval_return_mean": result["return_mean"],
                        }
                if step % cfg.checkpoint_every == 0:
                    save_checkpoint()
    finally:
        bar.close()
        episodes_file.close()
        logger.close()

    save_checkpoint()  # at the end, on a stop and on Ctrl-C/SIGTERM: every run leaves one
    wall = elapsed + time.time() - t_start
    summary = {
        "steps": step,
        "wall_time_s": round(wall, 2),
        "finished": False,
        "seed": cfg.seed,
        "device": "cpu",
        "env_id": cfg.env_id,
        "agent": cfg.agent,
        "episodes": episode,
    }
    if step < cfg.total_steps and solved is None:  # stopped early on purpose: not finished
        atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        return summary

    save_model(run_dir / "model.pt", meta, q_net)
    result = final_eval(q_net, cfg)
    atomic_write_text(run_dir / "eval.json", json.dumps(result, indent=2) + "\n")
    summary.update(
        fps=round(step / max(wall, 1e-9), 1),
        solved=solved,
        final_return_mean=(sum(recent) / len(recent)) if recent else None,
        eval={k: v for k, v in result.items() if k != "returns"},
        finished=True,
    )
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _check_loss(step: int, loss: float, ckpt: Path) -> None:
    """``check_finite`` on the TD loss, naming the last good checkpoint (kept: it is never overwritten
    after a non-finite loss, because the run stops here)."""
    try:
        check_finite(step, td_loss=loss)
    except FloatingPointError as e:
        where = (
            f"the last good checkpoint is {ckpt} (resume from it with {RESUME_HINT} and a lower lr or "
            "max_grad_norm > 0)"
            if ckpt.is_file()
            else "no checkpoint was written yet"
        )
        raise FloatingPointError(f"{e}; {where}") from None


def summary_line(summary: dict) -> str:
    """One line for the console: the run's steps, time, stop and final evaluation (not every return)."""
    line = f"{summary['agent']} on {summary['env_id']}: {summary['steps']} steps in {summary['wall_time_s']:.0f} s"
    if not summary["finished"]:
        return line + f", stopped before total_steps; continue with {RESUME_HINT}"
    if summary.get("solved"):
        line += f", eval ≥ stop_return at step {summary['solved']['step']}"
    ev = summary["eval"]
    return (
        line + f"; final eval {ev['return_mean']:.2f} ± {ev['return_std']:.2f} over {ev['episodes']} "
        f"episodes (epsilon {ev['epsilon']})"
    )


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Train DQN or Munchausen-DQN.")
    add_config_args(parser, resume=True)
    args = parse_args(parser, argv)
    cfg = config_from_args(Config, args)
    summary = train(cfg, resume=args.resume)
    print(summary_line(summary))
    print(f"run: {cfg.run_dir}")


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
