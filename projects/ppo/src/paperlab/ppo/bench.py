"""Training throughput (env steps per second, rollout + update) and where the time goes.

    python -m paperlab.ppo.bench --out projects/ppo/results/bench [--cases ip ip-cleanrl ant]

Cases (each a short real training run with evaluation off):

- ``ip``: the InvertedPendulum-v5 preset (8 parallel envs, 8 minibatches of 256);
- ``ip-cleanrl``: the same code with CleanRL's layout (1 env x 2048 steps, 32 minibatches of 64),
  the layout of CleanRL's ``ppo_continuous_action.py``, for a comparison at equal work;
- ``ant``: our torch PPO on Brax Ant with the ``brax_ant`` preset (256 envs), the first iteration
  (JAX compilation) excluded.

Each case writes ``<out>/<case>.json``: steps/s overall and in steady state, and the split of the
time between simulation (``envs.step``), the rest of the rollout (policy forward, normalisation,
bookkeeping) and the PPO update, with the machine: CPU model, cores, and the load average before
and after the case (other jobs on the machine slow every number down: compare only runs made at
the same load, or on an idle machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch

from paperlab.ppo.config import Config
from paperlab.ppo.train import train
from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import run_command
from paperlab.shared.config import load_config
from paperlab.shared.runlog import cpu_model, read_metrics

NO_EVAL = ["eval_every=0", "stop_return=null", "checkpoint_every=100000000"]
CASES = {
    "ip": ("configs/ppo/inverted_pendulum.yaml", ["total_steps=40960", *NO_EVAL]),
    "ip-cleanrl": (
        "configs/ppo/inverted_pendulum.yaml",
        ["total_steps=20480", "num_envs=1", "num_steps=2048", "num_minibatches=32", *NO_EVAL],
    ),
    "ant": ("configs/ppo/brax_ant.yaml", ["total_steps=61440", *NO_EVAL]),
}


def bench_case(name: str, out: Path) -> dict:
    preset, overrides = CASES[name]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(Config, preset, [*overrides, f"run_dir={tmp}/run"])
        summary = train(cfg)
        rows = [r for r in read_metrics(Path(tmp) / "run" / "metrics.jsonl") if "sps" in r]
    first = rows[0]
    steady = (rows[-1]["step"] - first["step"]) / max(rows[-1]["wall_time"] - first["wall_time"], 1e-9)
    total = summary["time_rollout"] + summary["time_update"]
    result = {
        "case": name,
        "env_id": cfg.env_id,
        "num_envs": cfg.num_envs,
        "batch_size": cfg.batch_size,
        "minibatch_size": cfg.minibatch_size,
        "update_epochs": cfg.update_epochs,
        "steps": summary["steps"],
        "steps_per_s": summary["steps_per_s"],
        "steps_per_s_steady": steady,
        "fraction_env_step": summary["time_env_step"] / total,
        "fraction_rollout_other": (summary["time_rollout"] - summary["time_env_step"]) / total,
        "fraction_update": summary["time_update"] / total,
        "machine": f"{cpu_model()}, {os.cpu_count()} cores",
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average_before": list(load_before),  # 1, 5, 15 minutes
        "load_average_after": list(os.getloadavg()),
        "load_average_1min": os.getloadavg()[0],
        "torch_threads": cfg.threads,
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
    }
    atomic_write_text(out / f"{name}.json", json.dumps(result, indent=2) + "\n")
    return result


def _main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="projects/ppo/results/bench")
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.cases:
        r = bench_case(name, out)
        print(
            f"{name:12s} {r['steps_per_s']:8.0f} steps/s ({r['steps_per_s_steady']:.0f} steady)  "
            f"env {r['fraction_env_step']:.0%}  rollout other {r['fraction_rollout_other']:.0%}  "
            f"update {r['fraction_update']:.0%}  load {r['load_average_before'][0]:.1f} -> "
            f"{r['load_average_after'][0]:.1f}"
        )


def main(argv=None):
    return run_command(_main, argv)


if __name__ == "__main__":
    main()
