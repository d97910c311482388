"""Frames per second of N seeds in one process (``train_batched``) next to the solo trainer, the
FLOPs of one update, and the share of this CPU's measured matrix-product peak they reach.

    python -m paperlab.dqn.bench_seeds --seeds 1 4 8 --frames 3000 --out projects/dqn/results/bench/seeds.json

Every row runs the real training loop with the MinAtar paper's hyperparameters on Breakout (batch 32,
replay 100k, one update per frame, compiled RMSprop), after a 1000-frame replay start, with epsilon
at its final 0.1 from the first frame (the steady state of a long run: nine actions in ten are
greedy forward passes). Frames/s is the median over 500-frame intervals, the first interval (which
compiles the optimizer step) left out. ``agent frames/s`` = N x (frames/s of each agent).

FLOPs per update are counted by ``torch.utils.flop_counter`` on one update of one agent (matrix
products and convolutions, forward and backward: target forward, online forward, backward) and
multiplied by N: the batched update does the same arithmetic per agent (the counter's formula for a
grouped convolution's backward does not count it per group, so it is not used on N > 1); the peak is the rate
of a 2048x2048x2048 float32 matrix product in the same thread setting (one thread), the best of 5.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from paperlab.dqn.config import Config
from paperlab.dqn.envs import make_env
from paperlab.dqn.networks import make_q_network, stack_params
from paperlab.dqn.replay import BatchedReplayBuffer
from paperlab.dqn.train import train
from paperlab.dqn.train_batched import batched_td_update, train_batched
from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import run_command
from paperlab.shared.config import load_config
from paperlab.shared.runlog import cpu_model, machine_load, read_metrics

STEADY = [
    "learning_starts=1000",
    "eps_start=0.1",
    "eps_decay_start=0",
    "log_every=500",
    "checkpoint_every=10000000",
    "eval_episodes=1",
]


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Float32 GFLOP/s of an n x n x n matrix product (the best of ``repeats``), in the current thread setting."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def update_flops(cfg: Config, n_agents: int) -> int:
    """FLOPs of one update of ``n_agents`` agents (torch's FLOP counter: matmuls and convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    env = make_env(cfg.env_id)
    nets = [make_q_network(env.obs_shape, env.n_actions, cfg) for _ in range(n_agents)]
    params = stack_params(nets)
    target = {k: v.detach().clone() for k, v in params.items()}
    opt = torch.optim.SGD(list(params.values()), lr=0.0)
    buffer = BatchedReplayBuffer(n_agents, cfg.batch_size, env.obs_shape, env.obs_dtype)
    obs = np.stack([env.reset(seed=0)] * n_agents)
    for _ in range(cfg.batch_size):
        buffer.add(obs, np.zeros(n_agents), np.zeros(n_agents), obs, np.zeros(n_agents))
    batch = buffer.sample(cfg.batch_size, [np.random.default_rng(k) for k in range(n_agents)])
    with FlopCounterMode(display=False) as counter:
        batched_td_update(cfg, params, target, opt, batch)
    return int(counter.get_total_flops())


def _fps(metrics: Path, skip_until: int) -> float:
    fps = sorted(r["fps"] for r in read_metrics(metrics) if r["step"] > skip_until)
    return float(fps[len(fps) // 2])


def run(preset: str, seeds: list[int], frames: int, overrides=()) -> dict:
    torch.set_num_threads(1)
    peak = matmul_peak_gflops()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = load_config(Config, preset, [*overrides, *STEADY])
        base.total_steps = base.learning_starts + frames
        skip = base.learning_starts + 500
        cases = [("solo trainer (paperlab.dqn.train)", 1, False)] + [(f"batched, N={n}", n, True) for n in seeds]
        for i, (label, n, batched) in enumerate(cases):
            cfg = load_config(
                Config,
                preset,
                [*overrides, *STEADY, f"num_seeds={n}", f"run_dir={tmp}/row{i}", f"total_steps={base.total_steps}"],
            )
            load_before = machine_load()
            t0 = time.perf_counter()
            if batched:
                train_batched(cfg)
            else:
                cfg.num_seeds = 1
                train(cfg)
            wall = time.perf_counter() - t0
            metrics = Path(cfg.run_dir) / ("seed1/metrics.jsonl" if batched else "metrics.jsonl")
            fps = _fps(metrics, skip)
            flops = n * update_flops(cfg, 1)  # the same arithmetic per agent (see the module docstring)
            achieved = flops * fps / 1e9  # one update per frame
            rows.append(
                {
                    "trainer": label,
                    "num_seeds": n,
                    "frames_per_s_per_agent": round(fps, 1),
                    "agent_frames_per_s": round(n * fps, 1),
                    "update_mflop": round(flops / 1e6, 2),
                    "update_mflop_per_agent": round(flops / n / 1e6, 2),
                    "achieved_gflops": round(achieved, 2),
                    "share_of_matmul_peak": round(achieved / peak, 4),
                    "wall_s_with_compile_and_warmup": round(wall, 1),
                    "load_before": load_before,
                    "load_after": machine_load(),
                }
            )
    solo = rows[0]["agent_frames_per_s"]
    for r in rows:
        r["speedup_vs_solo_trainer"] = round(r["agent_frames_per_s"] / solo, 2)
    return {
        "env_id": base.env_id,
        "agent": base.agent,
        "frames_timed": frames,
        "batch_size": base.batch_size,
        "buffer_size": base.buffer_size,
        "train_freq": base.train_freq,
        "optimizer": base.optimizer,
        "compile_optimizer": base.compile_optimizer,
        "epsilon": 0.1,
        "matmul_peak_gflops": round(peak, 1),
        "matmul_peak_shape": "2048x2048x2048 float32, 1 thread",
        "rows": rows,
        "torch": torch.__version__,
        "torch_threads": 1,
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }


def _main(argv=None) -> None:
    p = argparse.ArgumentParser(
        description="Frames/s of N seeds per process vs the solo trainer, FLOPs, share of peak."
    )
    p.add_argument("--config", default="configs/dqn/minatar.yaml")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 4, 8], help="agents per process to time")
    p.add_argument("--frames", type=int, default=3000, help="frames timed per row after the replay start")
    p.add_argument("--out", default=None)
    p.add_argument("overrides", nargs="*", help="config overrides, e.g. agent=mdqn")
    args = p.parse_intermixed_args(argv)
    if args.frames < 1500:
        raise ValueError(
            f"--frames must be at least 1500 (the first 500-frame interval is not timed), got {args.frames}"
        )
    if min(args.seeds) < 1:
        raise ValueError(f"--seeds must be positive, got {args.seeds}")
    result = run(args.config, args.seeds, args.frames, args.overrides)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        atomic_write_text(args.out, text + "\n")


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
