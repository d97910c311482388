"""Train PPO or PPO-EWMA.

    python -m paperlab.ppo.train --config configs/ppo/inverted_pendulum.yaml seed=2
    python -m paperlab.ppo.train --config configs/ppo/brax_ant.yaml algo=ppo-ewma
    python -m paperlab.ppo.train --config ... --resume lr=1e-4   # continue <run_dir>/checkpoints/last.pt

One iteration = :func:`collect_rollout` (``num_steps`` steps in each of ``num_envs`` environments,
then GAE) and :func:`ppo_update` (``update_epochs`` passes over the batch in ``num_minibatches``
minibatches). The run directory gets ``config.yaml``, ``metrics.jsonl`` + TensorBoard events (one
row per iteration, plus evaluations), ``checkpoints/last.pt`` (everything needed to continue,
environments included: a resumed run ends where an uninterrupted one does), ``model.pt`` (policy +
observation statistics, what ``evaluate``/``render`` read) and ``summary.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import deque
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from paperlab.ppo.agent import ActorCritic, build_agent, fast_forward, gaussian_log_prob
from paperlab.ppo.checkpoint import checkpoint_path, load_for_resume, save_checkpoint, save_model
from paperlab.ppo.config import Config, Scaled, scaled_hparams
from paperlab.ppo.core import EwmaModel, EwmaMoments, RewardScaler, RunningMeanStd, gae, policy_loss, value_loss
from paperlab.ppo.envs import make_vec_env
from paperlab.ppo.evaluate import Evaluator
from paperlab.shared.checkpoint import atomic_write_text, guard_run_dir, restore_rng_state, rng_state
from paperlab.shared.cli import StopSignal, check_finite, run_command
from paperlab.shared.config import add_config_args, config_from_args, parse_args
from paperlab.shared.runlog import RunLogger
from paperlab.shared.seeding import seed_everything

RESUME_HINT = "--resume (make train-ppo ... RESUME=1)"
STAT_KEYS = ("loss", "pg_loss", "v_loss", "entropy", "approx_kl", "clip_frac")


@dataclass
class Learner:
    """What the update changes: networks, optimiser, the EWMA policy and the normalisers."""

    agent: ActorCritic
    opt: torch.optim.Optimizer
    sc: Scaled
    ewma: EwmaModel | None
    obs_rms: RunningMeanStd | None
    rew_scaler: RewardScaler | None
    adv_moments: EwmaMoments

    @classmethod
    def create(cls, cfg: Config, obs_dim: int, act_dim: int) -> Learner:
        agent = build_agent(cfg, obs_dim, act_dim)
        sc = scaled_hparams(cfg)
        # fused: one kernel for the whole step instead of ~10 small operations per parameter tensor
        opt = torch.optim.Adam(agent.parameters(), lr=sc.lr, eps=cfg.adam_eps, betas=(sc.adam_beta1, sc.adam_beta2),
                               fused=True)  # fmt: skip
        return cls(
            agent, opt, sc,
            EwmaModel(agent.actor, sc.ewma_decay) if cfg.algo == "ppo-ewma" else None,
            RunningMeanStd((obs_dim,)) if cfg.norm_obs else None,
            RewardScaler(cfg.num_envs, cfg.gamma) if cfg.norm_reward else None,
            EwmaMoments(sc.adv_ewma_decay),
        )  # fmt: skip

    def normalize(self, obs: np.ndarray, clip: float) -> np.ndarray:
        return self.obs_rms.normalize(obs, clip) if self.obs_rms is not None else obs

    def state_dict(self) -> dict:
        sd = lambda x: x.state_dict() if x is not None else None  # noqa: E731
        return {"opt": sd(self.opt), "ewma": sd(self.ewma), "rew_scaler": sd(self.rew_scaler),
                "adv_moments": sd(self.adv_moments)}  # fmt: skip

    def load_state_dict(self, ck: dict) -> None:
        self.agent.load_state_dict(ck["agent"])
        self.opt.load_state_dict(ck["opt"])
        for name in ("ewma", "rew_scaler", "adv_moments"):
            if getattr(self, name) is not None:
                getattr(self, name).load_state_dict(ck[name])
        if self.obs_rms is not None:
            self.obs_rms.load_state_dict(ck["obs_rms"])


@dataclass
class LoopState:
    """The loop's counters and bookkeeping (saved in the checkpoint)."""

    num_envs: int
    global_step: int = 0
    iteration: int = 0
    wall_time: float = 0.0
    episodes: int = 0
    solved_step: int | None = None
    solved_wall_time: float | None = None
    best_eval: float | None = None
    last_eval: float | None = None
    time_rollout: float = 0.0
    time_env_step: float = 0.0
    time_update: float = 0.0
    recent: deque = field(default_factory=lambda: deque(maxlen=100))  # returns of the last training episodes
    ep_ret: np.ndarray = None  # return so far of each env's current episode

    def __post_init__(self):
        self.recent = deque(self.recent, maxlen=100)
        self.ep_ret = np.zeros(self.num_envs) if self.ep_ret is None else np.array(self.ep_ret, dtype=np.float64)

    def state_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**d, "recent": list(self.recent), "ep_ret": self.ep_ret.copy()}


class Rollout:
    """Preallocated (T, N, ...) numpy buffers; the update reads them through ``torch.from_numpy``."""

    def __init__(self, T: int, N: int, obs_dim: int, act_dim: int):
        self.obs = np.zeros((T, N, obs_dim), np.float32)  # normalised observations, as the policy saw them
        self.act = np.zeros((T, N, act_dim), np.float32)
        self.logp, self.val, self.rew, self.raw_rew = (np.zeros((T, N), np.float32) for _ in range(4))
        self.done = np.zeros((T, N), bool)
        self.adv = self.ret = None


def collect_rollout(cfg: Config, envs, learner: Learner, buf: Rollout, loop: LoopState, obs: np.ndarray) -> np.ndarray:
    """``num_steps`` steps of every env into ``buf``, then GAE; returns the observation after the rollout.

    Per step: one policy forward (mean, a sample, its log-probability and the value), one env step,
    a few numpy operations for the normalisers and the episode bookkeeping. Non-finite observations
    or rewards are found once per rollout and reported with the env step that produced them.
    """
    agent, device, N = learner.agent, next(learner.agent.parameters()).device, cfg.num_envs
    mean_net, critic = fast_forward(agent.actor.mean), fast_forward(agent.critic)
    rms, scaler = learner.obs_rms, learner.rew_scaler
    on_cpu = device.type == "cpu"
    start_step, t_sim = loop.global_step, 0.0

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x) if on_cpu else torch.from_numpy(x).to(device)

    def host(x: torch.Tensor) -> np.ndarray:
        return x.numpy() if on_cpu else x.cpu().numpy()

    with torch.inference_mode():
        std = agent.actor.log_std.exp().expand(N, -1)  # the policy is fixed during the rollout: its std too
        # log N(a; mean, std) as torch.distributions.Normal computes it, in numpy on the host
        two_var, log_scale, c = host(2 * std**2), host(std.log()), math.log(math.sqrt(2 * math.pi))
        for t in range(cfg.num_steps):
            if rms is not None:
                rms.update(obs)
                obs = rms.normalize(obs, cfg.obs_clip)
            x = tensor(obs)
            mean = mean_net(x)
            action = host(torch.normal(mean, std))  # = Normal(mean, std).sample()
            diff = action - host(mean)
            buf.logp[t] = (-(diff * diff) / two_var - log_scale - c).sum(-1)
            buf.obs[t] = obs
            buf.act[t] = action
            buf.val[t] = host(critic(x)).reshape(-1)
            ts = time.perf_counter()
            step = envs.step(buf.act[t])
            t_sim += time.perf_counter() - ts
            done = step.terminated | step.truncated
            buf.raw_rew[t] = step.reward
            reward = scaler(step.reward, done, cfg.reward_clip) if scaler is not None else step.reward
            if step.truncated.any():  # time limit: the episode would have gone on, bootstrap from V(s_T)
                v_final = host(critic(tensor(learner.normalize(step.final_obs, cfg.obs_clip)))).reshape(-1)
                reward = reward + cfg.gamma * v_final * step.truncated
            buf.rew[t], buf.done[t] = reward, done
            loop.ep_ret += step.reward
            if done.any():
                for i in np.flatnonzero(done):
                    loop.recent.append(float(loop.ep_ret[i]))
                    loop.episodes += 1
                loop.ep_ret[done] = 0.0
            obs = step.obs
        loop.global_step += N * cfg.num_steps
        for name, arr, offset in (("observation", buf.obs, 0), ("reward", buf.raw_rew, 1), ("reward", buf.rew, 1)):
            bad = ~np.isfinite(arr.reshape(cfg.num_steps, -1)).all(1)
            if bad.any():
                t = int(np.argmax(bad))
                check_finite(start_step + (t + offset) * N, **{name: float(arr[t][~np.isfinite(arr[t])][0])})
        last_value = host(critic(tensor(learner.normalize(obs, cfg.obs_clip)))).reshape(-1)
    buf.adv, buf.ret = gae(buf.rew, buf.val, buf.done, last_value, cfg.gamma, cfg.gae_lambda)
    loop.time_env_step += t_sim
    return obs


def ppo_update(cfg: Config, learner: Learner, buf: Rollout, lr: float, step: int) -> dict[str, float]:
    """``update_epochs`` passes over the rollout in minibatches; returns the mean losses and statistics."""
    agent, opt, ewma = learner.agent, learner.opt, learner.ewma
    device = next(agent.parameters()).device
    for group in opt.param_groups:
        group["lr"] = lr
    flat = lambda x, *shape: torch.from_numpy(x.reshape(cfg.batch_size, *shape)).to(device)  # noqa: E731
    b_obs, b_act = flat(buf.obs, -1), flat(buf.act, -1)
    b_logp, b_adv, b_ret, b_val = flat(buf.logp), flat(buf.adv), flat(buf.ret), flat(buf.val)
    if cfg.adv_norm == "batch":
        m, v = learner.adv_moments.update(b_adv)
        b_adv = (b_adv - m) / (math.sqrt(v) + 1e-8)
    rows: list[torch.Tensor] = []
    mb = cfg.minibatch_size
    actor_mean, critic = fast_forward(agent.actor.mean), fast_forward(agent.critic)
    params = [p for p in agent.parameters() if p.requires_grad]
    for _epoch in range(cfg.update_epochs):
        perm = torch.randperm(cfg.batch_size).to(device)
        # one gather per epoch, then contiguous minibatch slices (cheaper than indexing each minibatch)
        p_obs, p_act, p_logp, p_adv, p_ret, p_val = (x[perm] for x in (b_obs, b_act, b_logp, b_adv, b_ret, b_val))
        for start in range(0, cfg.batch_size, mb):
            sl = slice(start, start + mb)
            obs, act, logp_old = p_obs[sl], p_act[sl], p_logp[sl]
            logp_new = gaussian_log_prob(act, actor_mean(obs), agent.actor.log_std)
            if ewma is not None:
                with torch.no_grad():
                    logp_prox = ewma.model.log_prob(obs, act)
            else:
                logp_prox = logp_old
            a = p_adv[sl]
            if cfg.adv_norm == "minibatch":
                a = (a - a.mean()) / (a.std() + 1e-8)
            pg, st = policy_loss(logp_new, logp_old, logp_prox, a, cfg.clip_coef,
                                 cfg.imp_samp_max if ewma is not None else 0.0)  # fmt: skip
            entropy = agent.actor.entropy()
            vl = value_loss(critic(obs).squeeze(-1), p_val[sl], p_ret[sl], cfg.clip_coef if cfg.clip_vloss else None)
            loss = pg - cfg.ent_coef * entropy + cfg.vf_coef * vl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.max_grad_norm > 0:
                clip_grad_norm_(params, cfg.max_grad_norm)
            opt.step()
            if ewma is not None:
                ewma.update(agent.actor)
            with torch.no_grad():
                rows.append(torch.stack([loss, pg, vl, entropy, st["approx_kl"], st["clip_frac"]]))
        if cfg.target_kl is not None:
            kl = torch.stack(rows[-cfg.num_minibatches :])[:, STAT_KEYS.index("approx_kl")].mean()
            if float(kl) > cfg.target_kl:
                break
    means = torch.stack(rows).mean(0).tolist()
    stats = dict(zip(STAT_KEYS, means, strict=True))
    check_finite(step, loss=stats["loss"])  # before anything of this update is saved
    var_y = float(b_ret.var())
    stats["explained_variance"] = float(1 - (b_ret - b_val).var() / var_y) if var_y > 0 else float("nan")
    return stats


@torch.no_grad()
def clip_grad_norm_(params: list[torch.Tensor], max_norm: float) -> None:
    """``torch.nn.utils.clip_grad_norm_`` (same arithmetic) without its per-call grouping and checks."""
    grads = [p.grad for p in params if p.grad is not None]
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    torch._foreach_mul_(grads, torch.clamp(max_norm / (total + 1e-6), max=1.0))


def train(cfg: Config, resume: bool = False, stop_after_steps: int | None = None) -> dict:
    """Run (or continue) a training run; ``stop_after_steps`` stops it like Ctrl-C after that many steps."""
    torch.set_num_threads(cfg.threads)
    run_dir = Path(cfg.run_dir)
    ckpt_file = checkpoint_path(run_dir)
    resume_from = guard_run_dir(run_dir, resume, RESUME_HINT)

    seed_everything(cfg.seed)
    envs = make_vec_env(cfg)
    try:
        return _train(cfg, envs, run_dir, ckpt_file, resume_from, stop_after_steps)
    finally:
        envs.close()


def _train(cfg, envs, run_dir, ckpt_file, resume_from, stop_after_steps) -> dict:
    obs_dim, act_dim, N = envs.obs_dim, envs.act_dim, cfg.num_envs
    learner = Learner.create(cfg, obs_dim, act_dim)
    loop = LoopState(N)
    obs = envs.reset(seed=cfg.seed)
    if resume_from is not None:
        ck = load_for_resume(resume_from, cfg, obs_dim, act_dim)
        learner.load_state_dict(ck)
        loop = LoopState(**ck["loop"])
        restore_rng_state(ck["rng"])
        envs.set_state(ck["envs"])
        obs = ck["obs"]
        print(f"resuming from step {loop.global_step} (iteration {loop.iteration}) of {resume_from}", flush=True)
    evaluator = Evaluator(cfg, cfg.eval_episodes) if cfg.eval_every else None
    buf = Rollout(cfg.num_steps, N, obs_dim, act_dim)

    def checkpoint():
        save_checkpoint(ckpt_file, cfg, learner.agent, learner.obs_rms, **learner.state_dict(),
                        loop=loop.state_dict(), rng=rng_state(), envs=envs.get_state(), obs=obs)  # fmt: skip
        save_model(run_dir / "model.pt", cfg, learner.agent, learner.obs_rms)

    logger = RunLogger(run_dir, cfg, resume_step=loop.global_step if resume_from is not None else None)
    bar = logger.progress(cfg.total_steps, initial=loop.global_step, desc=f"{cfg.algo} {cfg.env_id}")
    every = lambda k: (loop.global_step // k + 1) * k if k else None  # noqa: E731  next multiple of k
    next_eval, next_ckpt = every(cfg.eval_every), every(cfg.checkpoint_every)
    last_ckpt_time = time.perf_counter()
    t_start = time.perf_counter() - loop.wall_time
    sc = learner.sc
    stopped = False
    with StopSignal() as stop:
        try:
            while loop.iteration < cfg.num_iterations:
                if stop.requested or (stop_after_steps is not None and loop.global_step >= stop_after_steps):
                    stopped = True
                    break
                it = loop.iteration
                lr = sc.lr * (1.0 - it / cfg.num_iterations) if cfg.anneal_lr else sc.lr
                t0 = time.perf_counter()
                obs = collect_rollout(cfg, envs, learner, buf, loop, obs)
                t1 = time.perf_counter()
                stats = ppo_update(cfg, learner, buf, lr, loop.global_step)
                t2 = time.perf_counter()
                loop.time_rollout += t1 - t0
                loop.time_update += t2 - t1
                loop.iteration += 1
                loop.wall_time = time.perf_counter() - t_start
                bar.update(cfg.batch_size)

                if loop.iteration % cfg.log_every == 0 or loop.iteration == cfg.num_iterations:
                    logger.log(
                        loop.global_step, train_return=np.mean(loop.recent) if loop.recent else float("nan"), lr=lr,
                        action_std=float(learner.agent.actor.log_std.detach().exp().mean()),
                        sps=cfg.batch_size / (t2 - t0), wall_time=loop.wall_time, episodes=loop.episodes,
                        **{k: v for k, v in stats.items() if k != "loss"},
                    )  # fmt: skip

                solved = False
                if next_eval is not None and loop.global_step >= next_eval:
                    next_eval = every(cfg.eval_every)
                    rets = evaluator(learner.agent, learner.obs_rms, seed=10_000 + loop.iteration, clip=cfg.obs_clip)
                    loop.last_eval = float(rets.mean())
                    loop.best_eval = max(loop.best_eval if loop.best_eval is not None else -math.inf, loop.last_eval)
                    logger.log(loop.global_step, eval_return=rets.mean(), eval_return_std=rets.std(),
                               wall_time=loop.wall_time)  # fmt: skip
                    bar.set_postfix(eval=f"{rets.mean():.1f}")
                    if cfg.stop_return is not None and rets.mean() >= cfg.stop_return:
                        loop.solved_step, loop.solved_wall_time = loop.global_step, loop.wall_time
                        solved = True
                if solved:
                    break
                due = next_ckpt is not None and loop.global_step >= next_ckpt
                if due or time.perf_counter() - last_ckpt_time >= 60 * cfg.checkpoint_minutes > 0:
                    if due:
                        next_ckpt = every(cfg.checkpoint_every)
                    checkpoint()
                    last_ckpt_time = time.perf_counter()
            checkpoint()
        finally:
            bar.close()
            logger.close()

    finished = not stopped
    summary = {
        "steps": loop.global_step, "wall_time_s": loop.wall_time, "finished": finished, "seed": cfg.seed,
        "device": str(cfg.device), "env_id": cfg.env_id, "algo": cfg.algo, "num_envs": cfg.num_envs,
        "batch_size": cfg.batch_size, "iterations": loop.iteration, "episodes": loop.episodes,
        "steps_per_s": loop.global_step / max(loop.wall_time, 1e-9),
        "time_rollout": loop.time_rollout, "time_env_step": loop.time_env_step, "time_update": loop.time_update,
        "solved_step": loop.solved_step, "solved_wall_time": loop.solved_wall_time,
        "last_eval": loop.last_eval, "best_eval": loop.best_eval,
        "train_return_last100": float(np.mean(loop.recent)) if loop.recent else None,
    }  # fmt: skip
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser, resume=True)
    args = parse_args(parser, argv)
    cfg = config_from_args(Config, args)
    summary = train(cfg, resume=args.resume)
    print(json.dumps(summary, indent=2))
    return summary


def main(argv=None):
    return run_command(_main, argv)


if __name__ == "__main__":
    main()
