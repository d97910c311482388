"""Throughput of each training stage on this machine, at the default model size, for a few steps each.

    python -m paperlab.rlhf.bench --config configs/rlhf/shakespeare.yaml [--out projects/rlhf/results/bench-cpu.json]

Runs the real stage functions in ``runs/rlhf/bench/`` (fresh each time): pre-training for ``BENCH_STEPS["sft"]``
steps, then PPO, RLOO and GRPO for a few iterations each. The RL stages use a stand-in reward (the
fraction of response tokens that are " love") instead of a trained reward model, so no pairs and no RM are
needed; the reward model's forward pass is a small part of an iteration. Writes the wall time, the steps
per second and the tokens per second of each stage, with the CPU model, the load and the versions.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from paperlab.rlhf.config import Config
from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import run_command
from paperlab.shared.config import add_config_args, config_from_args, parse_args
from paperlab.shared.runlog import cpu_model, machine_load

BENCH_STEPS = {"sft": 40, "ppo": 5, "rloo": 5, "grpo": 5}


def bench(cfg: Config, out: Path | None) -> dict:
    import transformers
    import trl

    from paperlab.rlhf.baselines import train_baseline
    from paperlab.rlhf.model import load_tokenizer
    from paperlab.rlhf.ppo import train_ppo
    from paperlab.rlhf.sft import train_sft

    root = Path("runs/rlhf/bench")
    shutil.rmtree(root, ignore_errors=True)
    base = dict(out_dir=str(root), checkpoint_every=1000, snapshot_every=1000)
    load_before = machine_load()
    result = {"cpu": cpu_model(), "load_before": load_before, "threads": cfg.threads, "device": cfg.device,
              "torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
              "stages": {}}  # fmt: skip
    sft_cfg = Config(**{**_fields(cfg), **base, "sft_steps": BENCH_STEPS["sft"]})
    t0 = time.time()
    s = train_sft(sft_cfg)
    result["stages"]["sft"] = {"steps": s["steps"], "wall_s": round(time.time() - t0, 2),
                               "tokens_per_s": s["tokens_per_s"], "tokens": "training tokens"}  # fmt: skip
    tok = load_tokenizer(str(root / "sft" / "model"))
    target = tok(" love", add_special_tokens=False)["input_ids"][0]

    def ids_reward(p_ids, r_ids, r_mask):
        return ((r_ids == target) & r_mask.bool()).float().sum(1) / r_mask.sum(1).clamp_min(1)

    def text_reward(prompts, completions, **kw):
        return [t.count(" love") / max(1, len(t.split())) for t in completions]

    rl_cfg = Config(**{**_fields(cfg), **base, "ppo_steps": BENCH_STEPS["ppo"], "trl_steps": BENCH_STEPS["rloo"]})
    t0 = time.time()
    s = train_ppo(rl_cfg, reward_fn=ids_reward)
    result["stages"]["ppo"] = {"steps": s["steps"], "wall_s": round(time.time() - t0, 2),
                               "tokens_per_s": s["tokens_per_s"], "tokens": "generated tokens"}  # fmt: skip
    for method in ("rloo", "grpo"):
        t0 = time.time()
        s = train_baseline(method, rl_cfg, reward_fn=text_reward)
        result["stages"][method] = {
            "steps": s["steps"],
            "wall_s": round(time.time() - t0, 2),
            "tokens_per_s": s["tokens_per_s"],
            "tokens": "prompt + completion tokens",
        }
    for v in result["stages"].values():
        v["s_per_step"] = round(v["wall_s"] / max(v["steps"], 1), 3)
    result["load_after"] = machine_load()
    if out is not None:
        atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    return result


def _fields(cfg: Config) -> dict:
    from paperlab.shared.config import to_dict

    d = to_dict(cfg)
    d.pop("out_dir")
    return d


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, help="write the JSON here (e.g. projects/rlhf/results/bench-cpu.json)")
    add_config_args(parser)
    args = parse_args(parser, argv)
    cfg = config_from_args(Config, args)
    print(json.dumps(bench(cfg, Path(args.out) if args.out else None), indent=2))


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
