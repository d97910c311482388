"""PPO vs PPO-EWMA at several batch sizes, over seeds (Hilton et al. 2021's batch-size question).

    python -m paperlab.ppo.sweep --config configs/ppo/ewma_sweep.yaml --num-envs 8 2 --seeds 1 2 3

Every (algo, num_envs, seed) is one training run (in ``<out>/<algo>-n<num_envs>-seed<seed>``);
the batch-size rule of the preset (``ref_num_envs``) rescales the hyperparameters for each batch
size. ``<out>/sweep.json`` collects each run's evaluation curve and summary; runs already finished
are read back, not redone, so an interrupted sweep continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from paperlab.ppo.checkpoint import checkpoint_path
from paperlab.ppo.config import ALGOS, Config
from paperlab.ppo.train import train
from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import run_command
from paperlab.shared.config import load_config
from paperlab.shared.runlog import read_metrics


def run_sweep(preset: str, out: Path, num_envs: list[int], seeds: list[int], algos=ALGOS, extra=()) -> dict:
    runs = []
    for n in num_envs:
        for algo in algos:
            for seed in seeds:
                run_dir = out / f"{algo}-n{n}-seed{seed}"
                cfg = load_config(
                    Config, preset, [f"algo={algo}", f"num_envs={n}", f"seed={seed}", f"run_dir={run_dir}", *extra]
                )
                if not (run_dir / "summary.json").exists():
                    resume = checkpoint_path(run_dir).exists()
                    print(f"--- {algo} num_envs={n} seed={seed}" + (" (resuming)" if resume else ""), flush=True)
                    train(cfg, resume=resume)
                summary = json.loads((run_dir / "summary.json").read_text())
                curve = [
                    (r["step"], r["eval_return"]) for r in read_metrics(run_dir / "metrics.jsonl") if "eval_return" in r
                ]
                runs.append({"algo": algo, "num_envs": n, "seed": seed, "batch_size": cfg.batch_size,
                             "eval_curve": curve, "summary": summary})  # fmt: skip
    result = {"preset": preset, "runs": runs}
    atomic_write_text(out / "sweep.json", json.dumps(result) + "\n")
    return result


def _main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    p.add_argument("--out", default="runs/ppo/ewma_sweep")
    p.add_argument("--num-envs", type=int, nargs="+", default=[8, 2])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--algos", nargs="+", default=list(ALGOS))
    p.add_argument("overrides", nargs="*", help="extra config overrides for every run")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run_sweep(args.config, out, args.num_envs, args.seeds, args.algos, args.overrides)


def main(argv=None):
    return run_command(_main, argv)


if __name__ == "__main__":
    main()
