"""The training loop shared by DQN and Munchausen-DQN, with checkpoints and resume.

    python -m paperlab.dqn.train --config configs/dqn/cartpole.yaml agent=mdqn seed=2
    python -m paperlab.dqn.train --config configs/dqn/cartpole.yaml --resume   # continue a killed run

A run directory holds ``config.yaml``, ``metrics.jsonl`` (every ``log_every`` steps),
``episodes.csv`` (one row per training episode), TensorBoard events, ``checkpoints/last.pt`` (+
``replay-<step>.npz``), and at the end ``model.pt``, ``eval.json`` and ``summary.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import pickle
import random
import signal
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from paperlab.dqn.config import Config
from paperlab.dqn.envs import make_env
from paperlab.dqn.networks import epsilon_greedy, make_q_network
from paperlab.dqn.replay import ReplayBuffer
from paperlab.dqn.targets import dqn_target, linear_epsilon, munchausen_target
from paperlab.shared.config import add_config_args, config_from_args, to_dict
from paperlab.shared.runlog import RunLogger
from paperlab.shared.seeding import seed_everything

CHECKPOINT_VERSION = 1


class NaNLossError(RuntimeError):
    """The TD loss became NaN or infinite."""


class CheckpointMismatchError(ValueError):
    """A checkpoint was made for another environment or agent than the one asked for."""


# --------------------------------------------------------------------------------------------- update
def make_optimizer(params, cfg: Config) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":  # the fused CPU/GPU kernel is several times faster than the loop
        return torch.optim.Adam(params, lr=cfg.lr, eps=cfg.adam_eps, fused=True)
    return torch.optim.RMSprop(params, lr=cfg.lr, alpha=cfg.rmsprop_alpha, eps=cfg.rmsprop_eps,
                               centered=cfg.rmsprop_centered)


def compute_targets(cfg: Config, q_net, target_net, batch) -> torch.Tensor:
    """The regression target y of the batch, without gradient."""
    obs, actions, rewards, next_obs, terminated = (batch["obs"], batch["actions"], batch["rewards"],
                                                   batch["next_obs"], batch["terminated"])
    with torch.no_grad():
        if cfg.agent == "mdqn":
            q_both = target_net(torch.cat([obs, next_obs]))  # one forward for s and s'
            q_t, q_next_t = q_both.split(obs.shape[0])
            return munchausen_target(rewards, terminated, actions, cfg.gamma, q_t, q_next_t,
                                     cfg.m_alpha, cfg.m_tau, cfg.m_l0)
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
    from paperlab.dqn.evaluate import evaluate_policy, evaluate_vectorized

    if cfg.env_id == "CartPole-v1" and epsilon == 0.0:
        return evaluate_vectorized(q_net, cfg.env_id, cfg.eval_episodes, seed)
    return evaluate_policy(q_net, cfg.env_id, cfg.eval_episodes, epsilon, seed, cfg.sticky_action_prob,
                           cfg.difficulty_ramping)


def final_eval(q_net, cfg: Config) -> dict:
    """The end-of-run evaluation, on episodes (seed) that no evaluation during training used."""
    return periodic_eval(q_net, cfg, seed=cfg.seed + 10_000_000, epsilon=cfg.eval_epsilon)


# ---------------------------------------------------------------------------------------- checkpoints
def _pack_replay(state: dict) -> dict:
    out = dict(state)
    for key in ("obs", "next_obs"):
        x = state[key]
        if x.dtype == np.uint8 and x.size and x.max() <= 1:  # MinAtar 0/1 planes: 8x smaller as bits
            out[key] = np.packbits(x.reshape(len(x), -1) != 0, axis=1)
            out[key + "_shape"] = np.array(x.shape)
    return out


def _unpack_replay(state: dict) -> dict:
    out = {k: v for k, v in state.items() if not k.endswith("_shape")}
    for key in ("obs", "next_obs"):
        if key + "_shape" in state:
            shape = tuple(state[key + "_shape"])
            n_bits = int(np.prod(shape[1:]))
            out[key] = np.unpackbits(state[key], axis=1, count=n_bits).reshape(shape)
    return out


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def check_compatible(meta: dict, env_id: str, agent: str | None = None, what: str = "checkpoint") -> None:
    """Refuse a checkpoint made for another env (or agent)."""
    if meta["env_id"] != env_id:
        raise CheckpointMismatchError(
            f"{what} was trained on {meta['env_id']!r} (agent {meta['agent']!r}) and cannot be used on "
            f"{env_id!r}, another environment")
    if agent is not None and meta["agent"] != agent:
        raise CheckpointMismatchError(
            f"{what} belongs to agent {meta['agent']!r}, but this run is configured for {agent!r}")


# settings a resumed run must share with its checkpoint: they shape the networks, the data or the RNG
FIXED_ON_RESUME = ("seed", "optimizer", "hidden_sizes", "conv_channels", "conv_hidden", "buffer_size",
                   "sticky_action_prob", "difficulty_ramping")


def check_resumable(saved: dict, cfg: Config) -> None:
    changed = [f"{k}: {saved[k]!r} -> {getattr(cfg, k)!r}" for k in FIXED_ON_RESUME
               if k in saved and saved[k] != getattr(cfg, k)]
    if changed:
        raise ValueError("cannot resume with a different " + "; ".join(changed)
                         + " (start a new run_dir instead)")


def load_model(path: str | Path, env_id: str | None = None):
    """Load ``model.pt`` or a training checkpoint as (q_network, meta). Refuses another env."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict) or "meta" not in ckpt or "q_net" not in ckpt:
        raise ValueError(f"{path} is not a paperlab DQN checkpoint")
    meta = ckpt["meta"]
    if env_id is not None:
        check_compatible(meta, env_id)
    cfg = Config(**{k: v for k, v in meta["config"].items() if k in Config.__dataclass_fields__})
    q_net = make_q_network(tuple(meta["obs_shape"]), meta["n_actions"], cfg)
    q_net.load_state_dict(ckpt["q_net"])
    q_net.eval()
    return q_net, meta


# ------------------------------------------------------------------------------------------- training
def _truncate_episodes(path: Path, step: int) -> None:
    if not path.exists():
        return
    lines = path.read_text().splitlines()
    kept = [lines[0]] + [ln for ln in lines[1:] if ln and int(ln.split(",")[0]) <= step]
    path.write_text("\n".join(kept) + "\n")


def train(cfg: Config, resume: bool = False, stop_after_steps: int | None = None) -> dict:
    """Train until ``cfg.total_steps`` (or ``cfg.stop_return`` is reached). Returns the summary.

    ``resume=True`` continues from ``run_dir/checkpoints/last.pt`` when it exists; a run whose
    training finished but that died before its final evaluation goes straight to the evaluation.
    ``stop_after_steps`` ends the call early after saving a checkpoint (as an interrupted run would).
    """
    torch.set_num_threads(cfg.torch_threads)
    torch.set_flush_denormal(True)  # denormal floats in optimizer states are very slow on CPU
    run_dir = Path(cfg.run_dir)
    ckpt_dir = run_dir / "checkpoints"
    ckpt_path = ckpt_dir / "last.pt"
    if resume and not ckpt_path.exists():
        raise FileNotFoundError(f"--resume: no checkpoint at {ckpt_path} (wrong run_dir, or other "
                                "agent/seed overrides than the run you mean?)")
    resuming = resume

    rng = seed_everything(cfg.seed, cfg.deterministic)  # also returns default_rng(seed)
    env = make_env(cfg.env_id, cfg.sticky_action_prob, cfg.difficulty_ramping)
    q_net = make_q_network(env.obs_shape, env.n_actions, cfg)
    target_net = copy.deepcopy(q_net)
    optimizer = make_optimizer(q_net.parameters(), cfg)
    buffer = ReplayBuffer(cfg.buffer_size, env.obs_shape, env.obs_dtype)
    meta = {"version": CHECKPOINT_VERSION, "env_id": cfg.env_id, "agent": cfg.agent,
            "obs_shape": list(env.obs_shape), "n_actions": env.n_actions, "config": to_dict(cfg)}

    step, episode, elapsed = 0, 0, 0.0
    recent = deque(maxlen=cfg.return_window)
    solved = None
    ep_return, ep_length = 0.0, 0
    obs = env.reset(seed=cfg.seed)
    if resuming:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        check_compatible(ckpt["meta"], cfg.env_id, cfg.agent, what=f"checkpoint {ckpt_path}")
        check_resumable(ckpt["meta"]["config"], cfg)
        q_net.load_state_dict(ckpt["q_net"])
        target_net.load_state_dict(ckpt["target_net"])
        optimizer.load_state_dict(ckpt["optimizer"])
        fresh = make_optimizer(q_net.parameters(), cfg).param_groups[0]
        for group in optimizer.param_groups:  # lr, eps, ... come from this run's config, not the old one
            group.update({k: v for k, v in fresh.items() if k != "params"})
        s = ckpt["loop"]
        replay_path = ckpt_dir / s.get("replay_file", "replay.npz")  # the name before replay-<step>.npz
        if not replay_path.exists():
            raise FileNotFoundError(f"{ckpt_path} needs its replay buffer {replay_path}, which is missing")
        with np.load(replay_path) as z:
            buffer.load_state_dict(_unpack_replay(dict(z)))
        step, episode, elapsed, solved = s["step"], s["episode"], s["elapsed"], s["solved"]
        ep_return, ep_length, obs = s["ep_return"], s["ep_length"], s["obs"]
        recent.extend(s["recent"])
        env = pickle.loads(s["env"])
        rng.bit_generator.state = s["rng"]
        torch.set_rng_state(s["torch_rng"])
        random.setstate(s["py_rng"])
        print(f"resuming {run_dir} from step {step}")

    def save_checkpoint() -> None:
        # The replay buffer goes to its own file named by step, written before last.pt points to
        # it: whenever the run dies, last.pt and the replay it names belong together.
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        replay_file = f"replay-{step}.npz"
        np.savez(ckpt_dir / "replay.tmp.npz", **_pack_replay(buffer.state_dict()))
        os.replace(ckpt_dir / "replay.tmp.npz", ckpt_dir / replay_file)
        _atomic_save({
            "meta": meta, "q_net": q_net.state_dict(), "target_net": target_net.state_dict(),
            "optimizer": optimizer.state_dict(),
            "loop": {"step": step, "episode": episode, "elapsed": elapsed + time.time() - t_start,
                     "solved": solved, "ep_return": ep_return, "ep_length": ep_length, "obs": obs,
                     "recent": list(recent), "env": pickle.dumps(env), "rng": rng.bit_generator.state,
                     "torch_rng": torch.get_rng_state(), "py_rng": random.getstate(),
                     "replay_file": replay_file},
        }, ckpt_path)
        for old in ckpt_dir.glob("replay*.npz"):
            if old.name != replay_file:
                old.unlink()

    logger = RunLogger(run_dir, cfg, resume_step=step if resuming else None)
    episodes_path = run_dir / "episodes.csv"
    if resuming:
        _truncate_episodes(episodes_path, step)
    else:
        episodes_path.write_text("step,return,length\n")
    episodes_file = open(episodes_path, "a", buffering=1)

    optimizer_step = torch.compile(optimizer.step) if cfg.compile_optimizer else None
    t_start = time.time()
    t_log, step_log = t_start, step
    loss_sum, q_sum, n_updates = 0.0, 0.0, 0
    end_step = cfg.total_steps if stop_after_steps is None else min(cfg.total_steps, step + stop_after_steps)
    bar = logger.progress(cfg.total_steps, initial=step, desc=f"{cfg.agent} {cfg.env_id}")
    interrupted = []  # Ctrl-C is acted on at the end of a step, so the checkpoint is a whole step
    in_main_thread = threading.current_thread() is threading.main_thread()  # signals need the main thread
    if in_main_thread:
        previous_handler = signal.signal(signal.SIGINT, lambda *_: interrupted.append(True))
    try:
        while step < end_step and solved is None and not interrupted:
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
                    loss, q_mean = td_update(cfg, q_net, target_net, optimizer,
                                             buffer.sample(cfg.batch_size, rng), optimizer_step)
                    loss_value = loss.item()
                    if not math.isfinite(loss_value):
                        where = (f"the last good checkpoint is {ckpt_path} (resume from it with --resume "
                                 "and a lower lr or max_grad_norm > 0)" if ckpt_path.exists()
                                 else "no checkpoint was written yet")
                        raise NaNLossError(f"TD loss is {loss_value} at env step {step}; {where}.")
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
                if (solved is None and cfg.stop_return is not None
                        and result["return_mean"] >= cfg.stop_return):
                    solved = {"step": step, "episode": episode, "time": elapsed + time.time() - t_start,
                              "eval_return_mean": result["return_mean"]}
            if step % cfg.checkpoint_every == 0:
                save_checkpoint()
        if interrupted:
            save_checkpoint()
            print(f"\ninterrupted at step {step}: checkpoint saved, continue with --resume")
            raise KeyboardInterrupt
    finally:
        if in_main_thread:
            signal.signal(signal.SIGINT, previous_handler)
        bar.close()
        episodes_file.close()
        logger.close()

    save_checkpoint()
    wall = elapsed + time.time() - t_start
    if step < cfg.total_steps and solved is None:  # stopped early on purpose: not finished
        return {"step": step, "finished": False}

    _atomic_save({"meta": meta, "q_net": q_net.state_dict()}, run_dir / "model.pt")
    result = final_eval(q_net, cfg)
    (run_dir / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
    summary = {"env_id": cfg.env_id, "agent": cfg.agent, "seed": cfg.seed, "steps": step,
               "episodes": episode, "wall_time_s": round(wall, 2), "fps": round(step / max(wall, 1e-9), 1),
               "solved": solved, "final_return_mean": (sum(recent) / len(recent)) if recent else None,
               "eval": result, "finished": True}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Train DQN or Munchausen-DQN.")
    add_config_args(parser)
    parser.add_argument("--resume", action="store_true", help="continue from run_dir/checkpoints/last.pt")
    args = parser.parse_args(argv)
    try:
        cfg = config_from_args(Config, args)
        summary = train(cfg, resume=args.resume)
    except (ValueError, FileNotFoundError, NaNLossError) as e:  # bad input: a message, not a traceback
        raise SystemExit(f"error: {e}") from None
    print(json.dumps({k: summary[k] for k in ("steps", "wall_time_s", "solved", "eval") if k in summary},
                     indent=2))


if __name__ == "__main__":
    main()
