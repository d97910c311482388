"""Training throughput on MinAtar Breakout with the paper's hyperparameters, and where the time goes.

    python -m paperlab.dqn.bench --frames 30000 --out projects/dqn/results/bench/breakout.json

The JSON records the machine (CPU model, cores) and its load average before and after the timed
run (``os.getloadavg()``): a number measured beside other work is not the code's speed.

Two runs of the real training loop (``train.train``) after the 5000-frame replay warm-up:
1. timing: frames per second of full training (one update of batch 32 per frame, replay 100k);
2. profile: the same under cProfile, to split the time between acting, the environment, the
   replay buffer and the update; then torch.profiler on the update alone, per operator (the
   matrix multiplications, the convolution, the compiled optimizer step, ...).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import tempfile
import time
from pathlib import Path

import torch

from paperlab.dqn.config import Config
from paperlab.dqn.train import compiled_step, make_optimizer, td_update, train
from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import run_command
from paperlab.shared.config import load_config
from paperlab.shared.runlog import cpu_model, machine_load, read_metrics

# functions whose cumulative time is reported, with a readable name
PARTS = {
    "td_update": "update: total (targets + forward + backward + optimizer)",
    "compute_targets": "update: target-network forward + target",
    "backward": "update: backward pass",
    "epsilon_greedy": "acting: epsilon-greedy (greedy forward pass, batch 1)",
    "sample": "replay: sample a batch",
    "add": "replay: add a transition",
    "act": "environment: MinAtar step",
}


def _profile_parts(stats: pstats.Stats, total: float) -> dict[str, float]:
    out: dict[str, float] = {}
    for (filename, _line, func), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():
        key = None
        if func in ("td_update", "compute_targets", "epsilon_greedy") and "paperlab/dqn" in filename:
            key = func
        elif func in ("sample", "add") and filename.endswith("replay.py"):
            key = func
        elif func == "backward" and filename.endswith("_tensor.py"):
            key = "backward"
        elif func == "act" and "minatar" in filename and filename.endswith("environment.py"):
            key = "act"
        if key is not None:
            out[PARTS[key]] = max(out.get(PARTS[key], 0.0), ct / total)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def op_profile(cfg: Config, updates: int = 200) -> dict[str, float]:
    """Share of the update's CPU time per ATen operator (torch.profiler), on a full replay buffer."""
    import copy

    import numpy as np
    from torch.profiler import ProfilerActivity, profile

    from paperlab.dqn.envs import make_env
    from paperlab.dqn.networks import make_q_network
    from paperlab.dqn.replay import ReplayBuffer

    torch.set_num_threads(cfg.torch_threads)
    env = make_env(cfg.env_id)
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer(10_000, env.obs_shape, env.obs_dtype)
    obs = env.reset(seed=0)
    for _ in range(10_000):
        nxt, r, term, trunc = env.step(int(rng.integers(env.n_actions)))
        buffer.add(obs, 0, r, nxt, term)
        obs = env.reset() if term or trunc else nxt
    q_net = make_q_network(env.obs_shape, env.n_actions, cfg)
    target = copy.deepcopy(q_net)
    opt = make_optimizer(q_net.parameters(), cfg)
    step_fn = compiled_step(opt) if cfg.compile_optimizer else None
    for _ in range(50):
        td_update(cfg, q_net, target, opt, buffer.sample(cfg.batch_size, rng), step_fn)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for _ in range(updates):
            td_update(cfg, q_net, target, opt, buffer.sample(cfg.batch_size, rng), step_fn)
        wall = time.perf_counter() - t0
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events)
    out = {"update_us_under_profiler": round(wall / updates * 1e6, 1)}
    for e in events[:8]:
        name = "compiled optimizer step (fused RMSprop)" if "CompiledFxGraph" in e.key else e.key
        out[name] = round(e.self_cpu_time_total / total, 3)
    return out


def run(preset: str, frames: int, overrides=(), profile: bool = True) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cfg: Config = load_config(
            Config,
            preset,
            [*overrides, f"run_dir={tmp}/timing", "log_every=1000", "checkpoint_every=10000000", "eval_episodes=1"],
        )
        cfg.total_steps = cfg.learning_starts + frames
        load_before = machine_load()
        train(cfg)
        load_after = machine_load()
        rows = [
            r for r in read_metrics(Path(tmp) / "timing" / "metrics.jsonl") if r["step"] > cfg.learning_starts + 1000
        ]  # skip the first interval (compilation)
        fps = sorted(r["fps"] for r in rows)
        result = {
            "env_id": cfg.env_id,
            "agent": cfg.agent,
            "frames_timed": frames,
            "batch_size": cfg.batch_size,
            "buffer_size": cfg.buffer_size,
            "train_freq": cfg.train_freq,
            "optimizer": cfg.optimizer,
            "compile_optimizer": cfg.compile_optimizer,
            "fps_median": fps[len(fps) // 2],
            "fps_min": fps[0],
            "fps_max": fps[-1],
            "torch": torch.__version__,
            "torch_threads": cfg.torch_threads,
            "cpu": platform.processor() or platform.machine(),
            "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "load_before": load_before,
            "load_after": load_after,
            "python": platform.python_version(),
        }
        if profile:
            cfg.run_dir = f"{tmp}/profile"
            cfg.total_steps = cfg.learning_starts + min(frames, 10_000)
            prof = cProfile.Profile()
            t0 = time.perf_counter()
            prof.enable()
            train(cfg)
            prof.disable()
            total = time.perf_counter() - t0
            result["profile_share_of_run"] = {
                k: round(v, 3) for k, v in _profile_parts(pstats.Stats(prof), total).items()
            }
            result["update_op_share"] = op_profile(cfg)
    return result


def _main(argv=None) -> None:
    p = argparse.ArgumentParser(description="DQN training throughput on MinAtar (paper hyperparameters).")
    p.add_argument("--config", default="configs/dqn/minatar.yaml")
    p.add_argument("--frames", type=int, default=30_000, help="frames timed after the replay warm-up")
    p.add_argument("--no-profile", action="store_true")
    p.add_argument("--out", default=None)
    p.add_argument("overrides", nargs="*", help="config overrides, e.g. agent=mdqn compile_optimizer=false")
    args = p.parse_intermixed_args(argv)
    if args.frames < 2000:
        raise ValueError(
            f"--frames must be at least 2000 (the first 1000-frame interval is not timed), got {args.frames}"
        )
    result = run(args.config, args.frames, args.overrides, profile=not args.no_profile)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        atomic_write_text(args.out, text + "\n")


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
