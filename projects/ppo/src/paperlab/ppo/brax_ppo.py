"""Brax's own JAX PPO (``brax.training.agents.ppo``), driven by the same config as our torch PPO.

This is the reference point for ``paperlab.ppo.train`` on Brax environments: same environment,
backend, number of parallel envs, steps per update, epochs, minibatches, learning rate, discount,
GAE lambda, entropy bonus, clip range and network sizes. Brax's PPO differs where its design does:
a tanh-squashed Gaussian with a state-dependent scale, reward *scaling* by a constant instead of a
running return normaliser, and GAE over short unrolls of ``brax_unroll_length`` steps.

    python -m paperlab.ppo.brax_ppo --config configs/ppo/brax_ant.yaml total_steps=5000000

logs through ``RunLogger`` like ``train``: ``<run_dir>/config.yaml``, ``metrics.jsonl`` + TensorBoard
events (one row per evaluation: env steps, deterministic evaluation return, wall time),
``<run_dir>/summary.json`` (steps/s with and without compilation). Brax's trainer cannot continue a
run (it restores parameters only, not its optimiser or step count), so ``--resume`` (``RESUME=1``)
is refused with that message, and a run directory that already holds a run is refused rather than
overwritten.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

from paperlab.ppo.config import Config
from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import run_command
from paperlab.shared.config import ConfigError, add_config_args, config_from_args, parse_args
from paperlab.shared.runlog import RunLogger


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
    if (run_dir / "metrics.jsonl").exists():
        raise ConfigError(
            f"{run_dir} already holds a run (metrics.jsonl); Brax's trainer cannot continue it: "
            "give a new run_dir=... (or move the old one away)"
        )
    logger = RunLogger(run_dir, cfg)
    rows: list[dict] = []
    start = time.perf_counter()

    def progress(step, metrics):
        row = {
            "step": int(step),
            "eval_return": float(metrics["eval/episode_reward"]),
            "eval_return_std": float(metrics.get("eval/episode_reward_std", float("nan"))),
            "wall_time": time.perf_counter() - start,
        }
        rows.append(row)
        logger.log(row["step"], **{k: v for k, v in row.items() if k != "step"})
        print(f"step {row['step']:>10d}  eval return {row['eval_return']:9.1f}  t {row['wall_time']:7.1f}s", flush=True)

    try:
        _brax_train(ppo, env, cfg, network_factory, progress, sizes)
    finally:
        logger.close()
    total = time.perf_counter() - start
    # the first evaluation happens before any training; the interval after it holds the compilation
    # of the training step, so steady-state steps/s is measured from the second evaluation on
    steady = None
    if len(rows) >= 3:
        steady = (rows[-1]["step"] - rows[1]["step"]) / (rows[-1]["wall_time"] - rows[1]["wall_time"])
    steps = rows[-1]["step"] if rows else 0
    summary = {
        "steps": steps,
        "wall_time_s": total,
        "finished": steps >= cfg.total_steps,
        "seed": cfg.seed,
        "device": jax_device(),
        "impl": "brax-jax-ppo",
        "env_id": cfg.env_id,
        "backend": cfg.brax_backend,
        "final_eval_return": rows[-1]["eval_return"] if rows else None,
        "best_eval_return": max(r["eval_return"] for r in rows) if rows else None,
        "steps_per_s_total": (steps / total) if rows else None,
        "steps_per_s_steady": steady,
        "note": "steps/s include the periodic evaluations (num_eval_envs x episode_length steps each)",
    }
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def jax_device() -> str:
    import jax

    return str(jax.devices()[0].platform)


def _brax_train(ppo, env, cfg: Config, network_factory, progress, sizes: dict) -> None:
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


def _main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser, resume=True)
    args = parse_args(parser, argv)
    if args.resume:
        raise ValueError(
            "Brax's own PPO cannot resume a run (its trainer restores parameters only, not Adam or "
            "its step count); start a new run_dir=... instead"
        )
    cfg = config_from_args(Config, args)
    if not any(o.startswith("run_dir=") for o in args.overrides or []):
        cfg.run_dir = str(Path(cfg.run_dir).parent / f"brax-ppo-seed{cfg.seed}")
    brax_sizes(cfg)
    summary = run(cfg)
    print(json.dumps(summary, indent=2))
    return summary


def main(argv=None):
    return run_command(_main, argv)


if __name__ == "__main__":
    main()
