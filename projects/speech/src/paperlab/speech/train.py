"""Speaker-independent cross-validation of one model: train a fresh network on each fold's training
speakers, classify the held-out speakers' clips, write per-fold and pooled metrics.

    python -m paperlab.speech.train --config configs/speech/aesdd.yaml model=crnn seed=2
    python -m paperlab.speech.train --config configs/speech/aesdd.yaml --resume   # continue a killed run

Run directory: ``config.yaml``, ``metrics.jsonl`` (per epoch: loss, train accuracy, lr; step = the
epoch counted over all folds), ``checkpoints/last.pt`` (every ``checkpoint_every`` epochs, at each
fold's end, on Ctrl-C/SIGTERM), ``fold<k>.pt``, ``eval.json`` and ``summary.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from paperlab.shared.checkpoint import LAST, atomic_write_text, guard_run_dir
from paperlab.shared.cli import StopSignal, check_finite, run_command
from paperlab.shared.runlog import RunLogger
from paperlab.speech.augment import add_noise, crop_batch, mixup, pitch_warp, spec_augment
from paperlab.speech.baseline import svm_probs
from paperlab.speech.checkpoint import (
    load_init,
    load_training,
    make_meta,
    restore_fold,
    save_fold_model,
    save_training,
)
from paperlab.speech.config import Config
from paperlab.speech.evaluate import fold_result, pick_device, predict_fold, write_eval
from paperlab.speech.features import Features
from paperlab.speech.model import build_model
from paperlab.speech.protocol import fold_plan, load_corpora

RESUME_HINT = "--resume (make train-speech ... RESUME=1)"


def norm_stats(frames: torch.Tensor, feats: Features, idx) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-band mean and std over every frame of the training clips ``idx``."""
    cols = feats.columns(idx)
    x = frames[:, torch.as_tensor(cols, device=frames.device)]
    return x.mean(dim=1), x.std(dim=1).clamp(min=1e-3)


def class_weights(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """w_c proportional to 1/n_c, scaled so that the average weight over the training clips is 1."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
    return torch.as_tensor(w * len(labels) / (w * counts).sum(), dtype=torch.float32)


def batches(train_idx, speakers: np.ndarray, size: int, by_speaker: bool, rng: np.random.Generator) -> list:
    """One epoch's batches of clip indices in a random order. ``by_speaker``: every batch holds the clips of
    one speaker only (each speaker's clips shuffled and cut into batches of ``size``; all batches then
    shuffled), so the BatchNorm statistics of training are per speaker, like adapt_bn's at test time."""
    if not by_speaker:
        order = rng.permutation(train_idx)
        return [order[a : a + size] for a in range(0, len(order), size)]
    train_idx = np.asarray(train_idx)
    out = []
    for s in np.unique(speakers[train_idx]):
        mine = rng.permutation(train_idx[speakers[train_idx] == s])
        out += [mine[a : a + size] for a in range(0, len(mine), size)]
    return [out[i] for i in rng.permutation(len(out))]


def train_batch(cfg: Config, feats: Features, frames, idx, mu, sd, rng: np.random.Generator):
    """(x, mask, labels) of one augmented training batch of clips ``idx``."""
    T = cfg.crop_frames
    n = len(idx)
    rates = 1 + rng.uniform(-cfg.stretch, cfg.stretch, n) if cfg.stretch > 0 else np.ones(n)
    need = np.ceil((T - 1) * rates).astype(int) + 1  # source frames a window of T output frames reads
    lengths = feats.lengths[idx]
    starts = np.floor(rng.uniform(0, 1, n) * np.maximum(lengths - need + 1, 1)).astype(np.int64)
    x, mask = crop_batch(frames, feats.offsets[idx], lengths, T, starts, rates)
    if cfg.pitch_semitones > 0:
        x = pitch_warp(x, rng.uniform(-cfg.pitch_semitones, cfg.pitch_semitones, n), feats.mel_freqs)
    if cfg.noise_snr_db:
        noisy = np.flatnonzero(rng.uniform(size=n) < cfg.noise_prob)
        if len(noisy):
            snr = rng.uniform(cfg.noise_snr_db[0], cfg.noise_snr_db[1], len(noisy))
            sel = torch.as_tensor(noisy, device=x.device)
            x[sel] = add_noise(x[sel], snr, cfg.target_rms_db, feats.noise_profile, feats.noise_dof, rng)
    x = ((x - mu[None, :, None]) / sd[None, :, None]) * mask[:, None, :]
    if cfg.specaug_freq > 0 or cfg.specaug_time > 0:
        x = spec_augment(x, cfg.specaug_freq, cfg.specaug_time, cfg.specaug_masks, rng)
    y = torch.as_tensor(feats.labels[idx], device=x.device)
    return x, mask, y


def train_epoch(cfg, model, optimizer, feats, frames, train_idx, mu, sd, weights, rng, step) -> dict:
    model.train()
    K = len(feats.emotions)
    total, correct, seen = 0.0, 0, 0
    for idx in batches(train_idx, feats.speakers, cfg.batch_size, cfg.speaker_batches, rng):
        if len(idx) < 2:  # BatchNorm needs two examples
            continue
        x, mask, y = train_batch(cfg, feats, frames, idx, mu, sd, rng)
        x, mask, target = mixup(x, mask, y, K, cfg.mixup_alpha, rng)
        logits = model(x, mask)
        logp = torch.log_softmax(logits, dim=1)
        loss = -(target * weights[None, :] * logp).sum(dim=1).mean()
        check_finite(step, loss=loss.item())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(idx)
    return {"loss": total / max(seen, 1), "train_acc": correct / max(seen, 1)}


def train(cfg: Config, resume: bool = False, stop_after_epochs: int | None = None) -> dict:
    """Run every fold; returns the summary (also ``summary.json``). ``stop_after_epochs`` ends the call
    after that many epochs of this call, saved as a Ctrl-C would (for tests)."""
    torch.set_num_threads(cfg.threads)
    torch.set_flush_denormal(True)
    run_dir = Path(cfg.run_dir)
    resume_from = guard_run_dir(run_dir, resume, RESUME_HINT)
    device = pick_device(cfg.device)
    feats, test = load_corpora(cfg)
    folds = fold_plan(cfg, feats, test)
    meta = make_meta(cfg, feats.emotions)
    init = load_init(cfg.init_from, cfg, feats.emotions) if cfg.init_from else None  # transfer: every fold's start
    state = load_training(resume_from, cfg) if resume_from else None
    start_fold = state["fold"] if state else 0
    done: list[dict] = state["done"] if state else []
    E = cfg.epochs if cfg.model != "svm" else 1
    logger = RunLogger(
        run_dir, cfg, resume_step=(start_fold * E + state["epoch"]) if state else None, tensorboard=cfg.tensorboard
    )
    frames = torch.as_tensor(feats.frames, dtype=torch.float32, device=device)
    test_frames = frames if test is feats else torch.as_tensor(test.frames, dtype=torch.float32, device=device)
    t0, epochs_run, stopped = time.time(), 0, False
    epoch_times: list[float] = []
    with StopSignal() as stop:
        for k in range(start_fold, len(folds)):
            fold = folds[k]
            if cfg.model == "svm":
                probs = svm_probs(feats, fold.train, test, fold.test, cfg.svm_c)
                done.append(fold_result(fold.name, test, fold.test, probs, fold.test_speakers))
                save_training(run_dir / LAST, meta, k + 1, 0, done)
                continue
            torch.manual_seed(cfg.seed * 1000 + k)
            rng = np.random.default_rng([cfg.seed, k])
            model = build_model(cfg, len(feats.emotions))
            if init is not None:
                model.load_state_dict(init)
            model = model.to(device)
            optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
            start_epoch = 0
            if state is not None and state["fold"] == k and state["model"] is not None:
                restore_fold(state, model, optimizer, rng)
                start_epoch = state["epoch"]
            state = None
            mu, sd = norm_stats(frames, feats, fold.train)
            K = len(feats.emotions)
            weights = (class_weights(feats.labels[fold.train], K) if cfg.class_weights else torch.ones(K)).to(device)
            for epoch in range(start_epoch, E):
                for group in optimizer.param_groups:  # cosine decay over each fold's epochs
                    group["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * epoch / E))
                te = time.time()
                logs = train_epoch(
                    cfg, model, optimizer, feats, frames, fold.train, mu, sd, weights, rng, k * E + epoch
                )
                epoch_times.append(time.time() - te)
                logger.log(k * E + epoch + 1, **logs, lr=optimizer.param_groups[0]["lr"], fold=k)
                epochs_run += 1
                stopped = stop.requested or (stop_after_epochs is not None and epochs_run >= stop_after_epochs)
                if (epoch + 1) % cfg.checkpoint_every == 0 or stopped or epoch + 1 == E:
                    save_training(run_dir / LAST, meta, k, epoch + 1, done, model, optimizer, rng)
                if stopped:
                    break
            if stopped:
                break
            probs = predict_fold(
                model,
                test_frames,
                test,
                fold.test,
                mu,
                sd,
                cfg.crop_frames,
                cfg.adapt_bn,
                cfg.adapt_bn_source,
                (frames, feats, fold.train),
            )
            done.append(fold_result(fold.name, test, fold.test, probs, fold.test_speakers))
            save_fold_model(run_dir / f"fold{k}.pt", meta, model, mu, sd)
            save_training(run_dir / LAST, meta, k + 1, 0, done)
    logger.close()
    finished = not stopped
    summary = {
        "finished": finished,
        "seed": cfg.seed,
        "device": str(device),
        "folds_done": len(done),
        "steps": len(done) * E,
        "wall_time_s": round(time.time() - t0, 2),
        "epoch_time_s": round(float(np.median(epoch_times)), 4) if epoch_times else None,
        "n_train_clips": len(feats),
        "n_test_clips": len(test),
    }
    if finished:
        ev = write_eval(run_dir, cfg, done, feats.emotions)
        summary.update({k: ev[k] for k in ("accuracy_mean", "accuracy_std", "uar_mean", "uar_std")})
        summary["pooled_accuracy"] = ev["pooled"]["accuracy"]
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=1))
    return summary


def _main(argv=None) -> dict:
    from paperlab.shared.config import add_config_args, config_from_args, parse_args

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_config_args(parser, resume=True)
    args = parse_args(parser, argv)
    summary = train(config_from_args(Config, args), resume=args.resume)
    if summary["finished"]:
        print(
            f"accuracy {summary['accuracy_mean']:.3f} +- {summary['accuracy_std']:.3f} over "
            f"{summary['folds_done']} folds, UAR {summary['uar_mean']:.3f} ({summary['wall_time_s']:.0f} s)"
        )
    return summary


def main(argv=None):
    run_command(_main, argv)


if __name__ == "__main__":
    main()
