"""Sampling cost of the base model, an adapted model with its LoRA layers unmerged, and the same model merged.

    python -m paperlab.lora.bench runs/lora/mnist/base runs/lora/mnist/lora-r4-attn-seed1 ... \
        --n 200 --steps 10 --repeats 3 --out projects/lora/results/mnist/merge_bench.json

Every model samples the same ``n`` target-label images from the same noise in one batch, with the same DDIM
step count and thread count, after one warm-up pass; the figure is the median of ``repeats`` timed passes
(milliseconds per image). Unmerged, each adapted layer runs ``W0 x + (alpha/r) B(A x)``: two extra small
matmuls (or convolutions). Merged, the layer is a plain base-shaped layer again, so its cost should equal the
base model's; the table checks that, and that merging leaves the images unchanged.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from paperlab.lora.checkpoint import load_model
from paperlab.lora.data import num_source_classes
from paperlab.lora.evaluate import TARGET_SEED, fixed_noise
from paperlab.lora.lora import lora_modules, merge_lora
from paperlab.lora.model import ddim_sample
from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import run_command
from paperlab.shared.runlog import cpu_model, machine_load


@torch.no_grad()
def time_sampling(unet, cfg, n: int, steps: int, repeats: int) -> tuple[float, torch.Tensor]:
    """Median ms per image of ``repeats`` timed passes (after one warm-up) and the images of the last pass."""
    noise = fixed_noise(n, cfg.image_size, TARGET_SEED)
    labels = torch.full((n,), num_source_classes(cfg))
    x = ddim_sample(unet, cfg, noise, labels, steps)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        x = ddim_sample(unet, cfg, noise, labels, steps)
        times.append(1000 * (time.perf_counter() - t0) / n)
    return statistics.median(times), x


def bench_run(run_dir: Path, n: int, steps: int, repeats: int) -> dict:
    unet, cfg = load_model(run_dir)
    unet.eval()
    row = {"run": Path(run_dir).name, "mode": cfg.mode, "lora_layers": len(lora_modules(unet))}
    row["ms_per_image"], x = time_sampling(unet, cfg, n, steps, repeats)
    if lora_modules(unet):
        merge_lora(unet)
        row["merged_ms_per_image"], x_merged = time_sampling(unet, cfg, n, steps, repeats)
        row["merged_vs_unmerged_max_abs"] = float((x_merged - x).abs().max())
    return row


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="run directories (the base run first)")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.n <= 0 or args.steps <= 0 or args.repeats <= 0:
        raise ValueError("--n, --steps and --repeats must be positive")
    load_before = machine_load()
    rows = [bench_run(Path(r), args.n, args.steps, args.repeats) for r in args.runs]
    out = {
        "n": args.n,
        "ddim_steps": args.steps,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "cpu": cpu_model(),
        "load_before": load_before,
        "load_after": machine_load(),
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(args.out), json.dumps(out, indent=2) + "\n")
    for r in rows:
        print(r)


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
