"""Train PPO or PPO-EWMA.

    python -m paperlab.ppo.train --config configs/ppo/inverted_pendulum.yaml seed=2
    python -m paperlab.ppo.train --config configs/ppo/brax_ant.yaml algo=ppo-ewma
    python -m paperlab.ppo.train --config ... --resume          # continue from <run_dir>/checkpoint.pt

One iteration = a rollout of ``num_steps`` steps in each of ``num_envs`` environments, GAE, then
``update_epochs`` passes over the batch in ``num_minibatches`` minibatches. The run directory gets
``config.yaml``, ``metrics.jsonl`` + TensorBoard events (one row per iteration, plus evaluations),
``checkpoint.pt`` (everything needed to continue), ``model.pt`` (policy + observation statistics,
what ``evaluate``/``render`` read) and ``summary.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import time
from collections import deque
from pathlib import Path

import numpy as np
import torch

from paperlab.ppo.agent import ActorCritic
from paperlab.ppo.config import Config, scaled_hparams
from paperlab.ppo.core import EwmaModel, EwmaMoments, RewardScaler, RunningMeanStd, gae, policy_loss, value_loss
from paperlab.ppo.envs import make_vec_env
from paperlab.shared.config import ConfigError, add_config_args, config_from_args, to_dict
from paperlab.shared.runlog import RunLogger
from paperlab.shared.seeding import seed_everything


class NonFiniteError(RuntimeError):
    """A NaN or infinity in the rollout or the loss; the message names the quantity and the step."""


def _check_finite(name: str, x: torch.Tensor, step: int, iteration: int) -> None:
    if not torch.isfinite(x).all():
        raise NonFiniteError(
            f"non-finite {name} at env step {step} (iteration {iteration}); nothing after it was saved"
        )


def build_agent(cfg: Config, obs_dim: int, act_dim: int) -> ActorCritic:
    return ActorCritic(obs_dim, act_dim, cfg.actor_hidden, cfg.critic_hidden, cfg.activation, cfg.init_log_std).to(
        cfg.device
    )


def save_model(path: Path, cfg: Config, agent: ActorCritic, obs_rms: RunningMeanStd | None) -> None:
    torch.save(
        {
            "config": to_dict(cfg),
            "obs_dim": agent.obs_dim,
            "act_dim": agent.act_dim,
            "agent": agent.state_dict(),
            "obs_rms": obs_rms.state_dict() if obs_rms is not None else None,
        },
        path,
    )


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class Evaluator:
    """Deterministic-policy evaluation: ``episodes`` parallel envs, each played to its first episode end."""

    _cache: dict = {}

    def __init__(self, cfg: Config, episodes: int):
        key = (cfg.env_id, cfg.brax_backend, cfg.episode_length, episodes)
        if key not in Evaluator._cache:  # a Brax env compiles once per process
            Evaluator._cache[key] = make_vec_env(cfg, num_envs=episodes)
        self.env, self.episodes = Evaluator._cache[key], episodes

    @torch.no_grad()
    def __call__(self, agent: ActorCritic, obs_rms: RunningMeanStd | None, seed: int, clip: float = 10.0) -> np.ndarray:
        obs = self.env.reset(seed)
        returns = torch.zeros(self.episodes)
        running = torch.ones(self.episodes, dtype=torch.bool)
        while running.any():
            x = obs_rms.normalize(obs, clip) if obs_rms is not None else obs
            action, _, _ = agent.act(x, deterministic=True)
            step = self.env.step(action)
            returns += step.reward * running
            running &= ~(step.terminated | step.truncated)
            obs = step.obs
        return returns.numpy()


def train(cfg: Config, resume: bool = False) -> dict:
    torch.set_num_threads(cfg.threads)
    run_dir = Path(cfg.run_dir)
    ckpt_path = run_dir / "checkpoint.pt"
    if resume and not ckpt_path.exists():
        raise ConfigError(f"--resume: no checkpoint at {ckpt_path}")
    if not resume and ckpt_path.exists():
        raise ConfigError(
            f"{run_dir} already holds a checkpoint: pass --resume to continue it, or choose another run_dir"
        )

    seed_everything(cfg.seed)
    envs = make_vec_env(cfg)
    obs_dim, act_dim, N, T = envs.obs_dim, envs.act_dim, cfg.num_envs, cfg.num_steps
    agent = build_agent(cfg, obs_dim, act_dim)
    sc = scaled_hparams(cfg)
    opt = torch.optim.Adam(agent.parameters(), lr=sc.lr, eps=cfg.adam_eps, betas=(sc.adam_beta1, sc.adam_beta2))
    ewma = EwmaModel(agent.actor, sc.ewma_decay) if cfg.algo == "ppo-ewma" else None
    obs_rms = RunningMeanStd((obs_dim,)) if cfg.norm_obs else None
    rew_scaler = RewardScaler(N, cfg.gamma) if cfg.norm_reward else None
    adv_moments = EwmaMoments(sc.adv_ewma_decay)
    evaluator = Evaluator(cfg, cfg.eval_episodes) if cfg.eval_every else None

    s = {"global_step": 0, "iteration": 0, "wall_time": 0.0, "solved_step": None, "solved_wall_time": None,
         "best_eval": -math.inf, "last_eval": None, "episodes": 0}  # fmt: skip
    recent = deque(maxlen=100)  # returns of the last finished training episodes
    if resume:
        ck = torch.load(ckpt_path, weights_only=False)
        if (ck["obs_dim"], ck["act_dim"]) != (obs_dim, act_dim) or ck["config"]["env_id"] != cfg.env_id:
            raise ConfigError(
                f"checkpoint {ckpt_path} was made for {ck['config']['env_id']} (obs {ck['obs_dim']}, actions "
                f"{ck['act_dim']}); this config's env {cfg.env_id} has obs {obs_dim}, actions {act_dim}"
            )
        for key in ("seed", "algo", "num_envs", "actor_hidden", "critic_hidden"):
            if ck["config"][key] != to_dict(cfg)[key]:
                raise ConfigError(
                    f"cannot resume: the checkpoint has {key}={ck['config'][key]}, the config {to_dict(cfg)[key]}"
                )
        agent.load_state_dict(ck["agent"])
        opt.load_state_dict(ck["opt"])
        if ewma is not None:
            ewma.load_state_dict(ck["ewma"])
        if obs_rms is not None:
            obs_rms.load_state_dict(ck["obs_rms"])
        if rew_scaler is not None:
            rew_scaler.load_state_dict(ck["rew_scaler"])
        adv_moments.load_state_dict(ck["adv_moments"])
        s.update(ck["state"])
        recent.extend(ck["recent"])
        torch.set_rng_state(ck["torch_rng"])
        np.random.set_state(ck["np_rng"])

    def checkpoint():
        _atomic_save(
            {
                "config": to_dict(cfg), "obs_dim": obs_dim, "act_dim": act_dim, "agent": agent.state_dict(),
                "opt": opt.state_dict(), "ewma": ewma.state_dict() if ewma else None,
                "obs_rms": obs_rms.state_dict() if obs_rms else None,
                "rew_scaler": rew_scaler.state_dict() if rew_scaler else None,
                "adv_moments": adv_moments.state_dict(), "state": dict(s), "recent": list(recent),
                "torch_rng": torch.get_rng_state(), "np_rng": np.random.get_state(),
            },
            ckpt_path,
        )  # fmt: skip
        save_model(run_dir / "model.pt", cfg, agent, obs_rms)

    logger = RunLogger(run_dir, cfg, resume_step=s["global_step"] if resume else None)
    # environments restart on resume (their simulator state is not saved); seeds differ per start
    raw_obs = envs.reset(seed=cfg.seed + 7919 * s["iteration"])
    if rew_scaler is not None:
        rew_scaler.ret.zero_()
    ep_ret, ep_len = torch.zeros(N), torch.zeros(N, dtype=torch.long)

    obs_buf = torch.zeros(T, N, obs_dim)
    act_buf = torch.zeros(T, N, act_dim)
    logp_buf, rew_buf, done_buf, val_buf = (torch.zeros(T, N) for _ in range(4))

    stop = {"signal": False}
    old_handler = signal.signal(signal.SIGINT, lambda *_: stop.update(signal=True))
    bar = logger.progress(cfg.total_steps, initial=s["global_step"], desc=f"{cfg.algo} {cfg.env_id}")
    next_eval = (s["global_step"] // cfg.eval_every + 1) * cfg.eval_every if cfg.eval_every else None
    next_ckpt = (s["global_step"] // cfg.checkpoint_every + 1) * cfg.checkpoint_every
    t_start = time.perf_counter() - s["wall_time"]
    t_env = t_learn = t_sim = 0.0

    def norm(x):
        return obs_rms.normalize(x, cfg.obs_clip) if obs_rms is not None else x

    try:
        while s["iteration"] < cfg.num_iterations and not stop["signal"]:
            it = s["iteration"]
            lr = sc.lr * (1.0 - it / cfg.num_iterations) if cfg.anneal_lr else sc.lr
            for group in opt.param_groups:
                group["lr"] = lr

            # ---------------------------------------------------------------- rollout
            t0 = time.perf_counter()
            for t in range(T):
                if obs_rms is not None:
                    obs_rms.update(raw_obs)
                obs = norm(raw_obs)
                action, logp, value = agent.act(obs)
                ts = time.perf_counter()
                step = envs.step(action)
                t_sim += time.perf_counter() - ts
                s["global_step"] += N
                _check_finite("observation", step.obs, s["global_step"], it)
                _check_finite("reward", step.reward, s["global_step"], it)
                done = step.terminated | step.truncated
                reward = rew_scaler(step.reward, done, cfg.reward_clip) if rew_scaler is not None else step.reward
                if step.truncated.any():  # time limit: the episode would have gone on, bootstrap from V(s_T)
                    with torch.no_grad():
                        v_final = agent.value(norm(step.final_obs))
                    reward = reward + cfg.gamma * v_final * step.truncated
                obs_buf[t], act_buf[t], logp_buf[t], val_buf[t] = obs, action, logp, value
                rew_buf[t], done_buf[t] = reward, done
                ep_ret += step.reward
                ep_len += 1
                if done.any():
                    for i in torch.nonzero(done).flatten().tolist():
                        recent.append(float(ep_ret[i]))
                        s["episodes"] += 1
                    ep_ret[done], ep_len[done] = 0.0, 0
                raw_obs = step.obs
            with torch.no_grad():
                last_value = agent.value(norm(raw_obs))
            adv, returns = gae(rew_buf, val_buf, done_buf, last_value, cfg.gamma, cfg.gae_lambda)
            t1 = time.perf_counter()

            # ---------------------------------------------------------------- update
            b_obs, b_act = obs_buf.reshape(-1, obs_dim), act_buf.reshape(-1, act_dim)
            b_logp, b_adv, b_ret, b_val = (x.reshape(-1) for x in (logp_buf, adv, returns, val_buf))
            if cfg.adv_norm == "batch":
                m, v = adv_moments.update(b_adv)
                b_adv = (b_adv - m) / (math.sqrt(v) + 1e-8)
            stats: dict[str, list[float]] = {k: [] for k in ("pg_loss", "v_loss", "entropy", "approx_kl", "clip_frac")}
            mb = cfg.minibatch_size
            for _epoch in range(cfg.update_epochs):
                perm = torch.randperm(cfg.batch_size)
                for start in range(0, cfg.batch_size, mb):
                    idx = perm[start : start + mb]
                    dist = agent.actor.dist(b_obs[idx])
                    logp_new = dist.log_prob(b_act[idx]).sum(-1)
                    if ewma is not None:
                        with torch.no_grad():
                            logp_prox = ewma.model.log_prob(b_obs[idx], b_act[idx])
                    else:
                        logp_prox = b_logp[idx]
                    a = b_adv[idx]
                    if cfg.adv_norm == "minibatch":
                        a = (a - a.mean()) / (a.std() + 1e-8)
                    pg, st = policy_loss(
                        logp_new,
                        b_logp[idx],
                        logp_prox,
                        a,
                        cfg.clip_coef,
                        cfg.imp_samp_max if ewma is not None else 0.0,
                    )
                    entropy = dist.entropy().sum(-1).mean()
                    vl = value_loss(
                        agent.value(b_obs[idx]), b_val[idx], b_ret[idx], cfg.clip_coef if cfg.clip_vloss else None
                    )
                    loss = pg - cfg.ent_coef * entropy + cfg.vf_coef * vl
                    _check_finite("loss", loss.detach(), s["global_step"], it)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if cfg.max_grad_norm > 0:
                        torch.nn.utils.clip_grad_norm_(agent.parameters(), cfg.max_grad_norm)
                    opt.step()
                    if ewma is not None:
                        ewma.update(agent.actor)
                    for k, x in (("pg_loss", pg), ("v_loss", vl), ("entropy", entropy), *st.items()):
                        stats[k].append(float(x.detach()))
                if cfg.target_kl is not None and np.mean(stats["approx_kl"][-cfg.num_minibatches :]) > cfg.target_kl:
                    break
            t2 = time.perf_counter()
            t_env, t_learn = t_env + (t1 - t0), t_learn + (t2 - t1)
            s["iteration"] += 1
            s["wall_time"] = time.perf_counter() - t_start
            bar.update(cfg.batch_size)

            if s["iteration"] % cfg.log_every == 0 or s["iteration"] == cfg.num_iterations:
                var_y = b_ret.var()
                explained = float(1 - (b_ret - b_val).var() / var_y) if var_y > 0 else float("nan")
                row = {k: float(np.mean(v)) for k, v in stats.items()}
                logger.log(
                    s["global_step"], train_return=np.mean(recent) if recent else float("nan"), lr=lr,
                    explained_variance=explained, action_std=float(agent.actor.log_std.detach().exp().mean()),
                    sps=cfg.batch_size / (t2 - t0), wall_time=s["wall_time"], episodes=s["episodes"], **row,
                )  # fmt: skip

            if next_eval is not None and s["global_step"] >= next_eval:
                next_eval += cfg.eval_every
                rets = evaluator(agent, obs_rms, seed=10_000 + s["iteration"], clip=cfg.obs_clip)
                s["last_eval"] = float(rets.mean())
                s["best_eval"] = max(s["best_eval"], s["last_eval"])
                logger.log(
                    s["global_step"], eval_return=rets.mean(), eval_return_std=rets.std(), wall_time=s["wall_time"]
                )
                bar.set_postfix(eval=f"{rets.mean():.1f}")
                if cfg.stop_return is not None and rets.mean() >= cfg.stop_return:
                    s["solved_step"], s["solved_wall_time"] = s["global_step"], s["wall_time"]
                    break
            if s["global_step"] >= next_ckpt:
                next_ckpt += cfg.checkpoint_every
                checkpoint()
        checkpoint()
    finally:
        signal.signal(signal.SIGINT, old_handler)
        bar.close()
        logger.close()
        envs.close()

    steps_done = s["global_step"]
    summary = {
        "env_id": cfg.env_id, "algo": cfg.algo, "seed": cfg.seed, "num_envs": cfg.num_envs,
        "batch_size": cfg.batch_size, "steps": steps_done, "iterations": s["iteration"],
        "wall_time": s["wall_time"], "steps_per_s": steps_done / max(s["wall_time"], 1e-9),
        "time_rollout": t_env, "time_env_step": t_sim, "time_update": t_learn,
        "solved_step": s["solved_step"], "solved_wall_time": s["solved_wall_time"],
        "last_eval": s["last_eval"], "best_eval": None if s["best_eval"] == -math.inf else s["best_eval"],
        "train_return_last100": float(np.mean(recent)) if recent else None,
        "interrupted": bool(stop["signal"]),
    }  # fmt: skip
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser)
    parser.add_argument("--resume", action="store_true", help="continue from <run_dir>/checkpoint.pt")
    args = parser.parse_args(argv)
    try:
        cfg = config_from_args(Config, args)
        summary = train(cfg, resume=args.resume)
    except (ConfigError, NonFiniteError) as e:
        raise SystemExit(f"error: {e}") from None
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
