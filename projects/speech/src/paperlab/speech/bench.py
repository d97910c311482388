"""Seconds per training epoch on this machine's CPU: each network on AESDD fold 0 (about 500 clips), and
the feature extraction's cost per clip (reading, preprocessing, log-mel).

    python -m paperlab.speech.bench --out projects/speech/results/bench-cpu.json [--epochs 2 --threads 1]

Writes the CPU model, thread count, load averages before and after, torch version, per model the
median epoch time and where it goes (forward+backward+step vs. batch assembly and augmentation), and
the feature extraction time of the first ``--feature-clips`` clips of the corpus (no cache involved).
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


def bench_features(cfg: Config, n_clips: int) -> dict:
    """Seconds spent per clip reading the file, preprocessing it (resample, trim, RMS) and computing its
    log-mels, over ``n_clips`` clips of the corpus read from disk, never from the cache (after one
    untimed warm-up clip). The copies under data/ are already at 16 kHz: no resampling is timed."""
    from paperlab.speech.data import list_clips, preprocess, read_audio
    from paperlab.speech.features import logmel

    params = cfg.feature_params()
    paths = list_clips(cfg.dataset, cfg.data_dir).paths[: n_clips + 1]
    warm = read_audio(paths[0])  # the first call compiles librosa's numba kernels: not timed
    if warm is not None:
        logmel(preprocess(warm[0], warm[1], params["sample_rate"], params["top_db"], params["target_rms_db"]), params)
    paths = paths[1:]
    read_s = prep_s = mel_s = audio_s = 0.0
    n = 0
    for p in paths:
        t0 = time.perf_counter()
        audio = read_audio(p)
        t1 = time.perf_counter()
        if audio is None:
            continue
        y = preprocess(audio[0], audio[1], params["sample_rate"], params["top_db"], params["target_rms_db"])
        t2 = time.perf_counter()
        logmel(y, params)
        t3 = time.perf_counter()
        read_s, prep_s, mel_s = read_s + t1 - t0, prep_s + t2 - t1, mel_s + t3 - t2
        audio_s += len(audio[0]) / audio[1]
        n += 1
    total = read_s + prep_s + mel_s
    return {
        "dataset": cfg.dataset,
        "clips": n,
        "audio_s": audio_s,
        "ms_per_clip": 1000 * total / n,
        "ms_read": 1000 * read_s / n,
        "ms_preprocess": 1000 * prep_s / n,
        "ms_logmel": 1000 * mel_s / n,
        "real_time_factor": total / audio_s,  # seconds of compute per second of audio
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
    parser.add_argument("--feature-clips", type=int, default=100, help="clips timed for feature extraction (0: skip)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = machine_load()
    cfg = load_config(Config, args.config)
    feats = bench_features(cfg, args.feature_clips) if args.feature_clips > 0 else None
    rows = [bench_model(load_config(Config, args.config, [f"model={m}"]), args.epochs) for m in ("cnn", "crnn")]
    out = {
        "cpu": cpu_model(),
        "threads": args.threads,
        "torch": torch.__version__,
        "load_before": load_before,
        "load_after": machine_load(),
        "epochs": args.epochs,
        "rows": rows,
        "features": feats,
    }
    atomic_write_text(Path(args.out), json.dumps(out, indent=1))
    for r in rows:
        print(f"{r['model']}: {r['epoch_s']:.2f} s/epoch ({r['clips']} clips, {r['params']} parameters)")
    if feats:
        print(
            f"features: {feats['ms_per_clip']:.1f} ms/clip over {feats['clips']} clips "
            f"(read {feats['ms_read']:.1f}, preprocess {feats['ms_preprocess']:.1f}, log-mel {feats['ms_logmel']:.1f}; "
            f"{feats['real_time_factor']:.4f} s per s of audio)"
        )


def main(argv=None):
    from paperlab.shared.cli import run_command

    run_command(_main, argv)


if __name__ == "__main__":
    main()
