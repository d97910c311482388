"""Seconds per training epoch on this machine's CPU: each network on AESDD fold 0 (about 500 clips).

    python -m paperlab.speech.bench --out projects/speech/results/bench-cpu.json [--epochs 2 --threads 1]

Writes the CPU model, thread count, load averages before and after, torch version, and per model the
median epoch time and where it goes (forward+backward+step vs. batch assembly and augmentation).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from paperlab.speech.config import Config
from paperlab.speech.model import build_model
from paperlab.speech.protocol import fold_plan, load_corpora


def bench_model(cfg: Config, epochs: int) -> dict:
    from paperlab.speech.train import class_weights, norm_stats, train_batch

    feats, test = load_corpora(cfg)
    fold = fold_plan(cfg, feats, test)[0]
    frames = torch.as_tensor(feats.frames, dtype=torch.float32)
    mu, sd = norm_stats(frames, feats, fold.train)
    weights = class_weights(feats.labels[fold.train], len(feats.emotions))
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = build_model(cfg, len(feats.emotions))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    times, batch_s, step_s = [], 0.0, 0.0
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = rng.permutation(fold.train)
        for a in range(0, len(order), cfg.batch_size):
            t1 = time.perf_counter()
            x, mask, y = train_batch(cfg, feats, frames, order[a : a + cfg.batch_size], mu, sd, rng)
            t2 = time.perf_counter()
            loss = torch.nn.functional.cross_entropy(model(x, mask), y, weight=weights)
            opt.zero_grad()
            loss.backward()
            opt.step()
            batch_s += t2 - t1
            step_s += time.perf_counter() - t2
        times.append(time.perf_counter() - t0)
    return {
        "model": cfg.model,
        "dataset": cfg.dataset,
        "clips": len(fold.train),
        "epoch_s": float(np.median(times)),
        "share_batch_assembly": batch_s / (batch_s + step_s),
        "share_forward_backward_step": step_s / (batch_s + step_s),
        "params": sum(p.numel() for p in model.parameters()),
    }


def _main(argv=None) -> None:
    from paperlab.shared.checkpoint import atomic_write_text
    from paperlab.shared.config import load_config
    from paperlab.shared.runlog import cpu_model, machine_load

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="projects/speech/results/bench-cpu.json")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--config", default="configs/speech/aesdd.yaml")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = machine_load()
    rows = [bench_model(load_config(Config, args.config, [f"model={m}"]), args.epochs) for m in ("cnn", "crnn")]
    out = {
        "cpu": cpu_model(),
        "threads": args.threads,
        "torch": torch.__version__,
        "load_before": load_before,
        "load_after": machine_load(),
        "epochs": args.epochs,
        "rows": rows,
    }
    atomic_write_text(Path(args.out), json.dumps(out, indent=1))
    for r in rows:
        print(f"{r['model']}: {r['epoch_s']:.2f} s/epoch ({r['clips']} clips, {r['params']} parameters)")


def main(argv=None):
    from paperlab.shared.cli import run_command

    run_command(_main, argv)


if __name__ == "__main__":
    main()
