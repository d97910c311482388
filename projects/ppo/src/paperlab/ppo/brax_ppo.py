"""Brax's own JAX PPO (``brax.training.agents.ppo``), driven by the same config as our torch PPO.

This is the reference point for ``paperlab.ppo.train`` on Brax environments: same environment,
backend, number of parallel envs, steps per update, epochs, minibatches, learning rate, discount,
GAE lambda, entropy bonus, clip range and network sizes. Brax's PPO differs where its design does:
a tanh-squashed Gaussian with a state-dependent scale, reward *scaling* by a constant instead of a
running return normaliser, and GAE over short unrolls of ``brax_unroll_length`` steps.

    python -m paperlab.ppo.brax_ppo --config configs/ppo/brax_ant.yaml total_steps=5000000

writes ``<run_dir>/metrics.jsonl`` (one row per evaluation: env steps, deterministic evaluation
return, wall time) and ``<run_dir>/summary.json`` (steps/s with and without compilation).
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

from paperlab.ppo.config import Config
from paperlab.shared.config import ConfigError, add_config_args, config_from_args, save_config


def brax_sizes(cfg: Config) -> dict:
    """Brax's PPO batch arguments that give the same env steps per update as our rollout."""
    if not cfg.is_brax:
        raise ConfigError(f"brax_ppo needs a brax/<name> env_id, got {cfg.env_id!r}")
    unroll = cfg.brax_unroll_length
    if cfg.num_steps % unroll:
        raise ConfigError(f"num_steps ({cfg.num_steps}) must be a multiple of brax_unroll_length ({unroll})")
    trajectories = cfg.batch_size // unroll  # Brax: batch_size * num_minibatches unrolls per update
    if trajectories % cfg.num_minibatches:
        raise ConfigError(f"{trajectories} unrolls per update do not split into {cfg.num_minibatches} minibatches")
    return dict(unroll_length=unroll, batch_size=trajectories // cfg.num_minibatches)


def run(cfg: Config) -> dict:
    from brax import envs
    from brax.training.agents.ppo import networks as ppo_networks
    from brax.training.agents.ppo import train as ppo
    from flax import linen

    sizes = brax_sizes(cfg)
    name = cfg.env_id[len("brax/") :]
    env = envs.get_environment(name, backend=cfg.brax_backend)
    activation = {"tanh": linen.tanh, "relu": linen.relu, "silu": linen.swish}[cfg.activation]
    network_factory = functools.partial(
        ppo_networks.make_ppo_networks,
        policy_hidden_layer_sizes=tuple(cfg.actor_hidden),
        value_hidden_layer_sizes=tuple(cfg.critic_hidden),
        activation=activation,
    )
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    rows: list[dict] = []
    start = time.perf_counter()
    metrics_file = (run_dir / "metrics.jsonl").open("w")

    def progress(step, metrics):
        row = {
            "step": int(step),
            "eval_return": float(metrics["eval/episode_reward"]),
            "eval_return_std": float(metrics.get("eval/episode_reward_std", float("nan"))),
            "wall_time": time.perf_counter() - start,
        }
        rows.append(row)
        metrics_file.write(json.dumps(row) + "\n")
        metrics_file.flush()
        print(f"step {row['step']:>10d}  eval return {row['eval_return']:9.1f}  t {row['wall_time']:7.1f}s", flush=True)

    ppo.train(
        environment=env,
        num_timesteps=cfg.total_steps,
        num_evals=cfg.brax_num_evals,
        episode_length=cfg.episode_length,
        num_envs=cfg.num_envs,
        learning_rate=cfg.lr,
        entropy_cost=cfg.ent_coef,
        discounting=cfg.gamma,
        gae_lambda=cfg.gae_lambda,
        num_minibatches=cfg.num_minibatches,
        num_updates_per_batch=cfg.update_epochs,
        normalize_observations=cfg.norm_obs,
        reward_scaling=cfg.brax_reward_scaling,
        clipping_epsilon=cfg.clip_coef,
        max_grad_norm=cfg.max_grad_norm or None,
        seed=cfg.seed,
        deterministic_eval=True,
        num_eval_envs=cfg.eval_episodes,
        network_factory=network_factory,
        progress_fn=progress,
        **sizes,
    )
    metrics_file.close()
    total = time.perf_counter() - start
    # the first evaluation happens before any training; the interval after it holds the compilation
    # of the training step, so steady-state steps/s is measured from the second evaluation on
    steady = None
    if len(rows) >= 3:
        steady = (rows[-1]["step"] - rows[1]["step"]) / (rows[-1]["wall_time"] - rows[1]["wall_time"])
    summary = {
        "impl": "brax-jax-ppo",
        "env_id": cfg.env_id,
        "backend": cfg.brax_backend,
        "seed": cfg.seed,
        "steps": rows[-1]["step"] if rows else 0,
        "final_eval_return": rows[-1]["eval_return"] if rows else None,
        "best_eval_return": max(r["eval_return"] for r in rows) if rows else None,
        "wall_time": total,
        "steps_per_s_total": (rows[-1]["step"] / total) if rows else None,
        "steps_per_s_steady": steady,
        "note": "steps/s include the periodic evaluations (num_eval_envs x episode_length steps each)",
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser)
    args = parser.parse_args(argv)
    try:
        cfg = config_from_args(Config, args)
        if "run_dir" not in " ".join(args.overrides or []):
            cfg.run_dir = str(Path(cfg.run_dir).parent / f"brax-ppo-seed{cfg.seed}")
        brax_sizes(cfg)
    except ConfigError as e:
        raise SystemExit(f"error: {e}") from None
    print(json.dumps(run(cfg), indent=2))


if __name__ == "__main__":
    main()
