"""Train one of the four models (``model=baseline|spectral|bjorck|torchlip``) on CIFAR-10 or the offline
synthetic set.

    python -m paperlab.lipschitz.train --config configs/lipschitz/cifar10-bjorck.yaml [key=value ...] [--resume]

Epoch e visits the training set in the order ``randperm(seed, e)``; flips come from a generator seeded
by the step, so a run stopped anywhere (Ctrl-C, SIGTERM, ``time_limit_s``) resumes to the same
weights as an uninterrupted one. Evaluation with attacks and bounds is ``evaluate.py``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import torch

from paperlab.lipschitz.checkpoint import make_meta, resume_training, save_model, save_training
from paperlab.lipschitz.config import Config
from paperlab.lipschitz.data import Split, load
from paperlab.lipschitz.evaluate import evaluate_run
from paperlab.lipschitz.losses import certified_accuracy, certified_radius, loss_fn
from paperlab.lipschitz.model import build_model
from paperlab.shared.checkpoint import LAST, atomic_write_text, guard_run_dir
from paperlab.shared.cli import StopSignal, check_finite, run_command
from paperlab.shared.config import add_config_args, config_from_args, parse_args
from paperlab.shared.runlog import RunLogger, cpu_model, machine_load
from paperlab.shared.seeding import seed_everything

RESUME_HINT = "make train-lipschitz RESUME=1 (or --resume)"


def lr_at(cfg: Config, step: int, total: int) -> float:
    """Cosine decay from lr to 0 over the run."""
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))


@torch.no_grad()
def quick_eval(model, test: Split, n: int, lipschitz: bool) -> dict:
    """Clean accuracy and (for the 1-Lipschitz models, whose declared bound is 1) certified accuracy at
    36/255 on the first n test images; the full evaluation with measured bounds is evaluate.py (for
    deel-torchlip, whose head has unit rows but is not 1-Lipschitz as a map, only evaluate.py's
    pairwise certificate is valid)."""
    model.eval()
    n = len(test) if n == 0 else min(n, len(test))
    logits, labels = [], []
    for start in range(0, n, 500):
        x, y = test.batch(torch.arange(start, min(start + 500, n)))
        logits.append(model(x))
        labels.append(y)
    logits, labels = torch.cat(logits), torch.cat(labels)
    correct = logits.argmax(1) == labels
    out = {"test_acc": correct.float().mean().item()}
    if lipschitz:
        out["test_cert36"] = certified_accuracy(certified_radius(logits, labels), correct, 36 / 255)
    return out


def train(cfg: Config, resume: bool = False, stop_after_steps: int | None = None) -> dict:
    """Train for ``cfg.epochs``; returns the summary (also written to ``summary.json``). ``stop_after_steps``
    ends the call early with a checkpoint, as a stop signal would."""
    warnings.filterwarnings("ignore", message="Sequential model contains a layer which is not a Lipschitz layer")
    torch.set_num_threads(cfg.threads)
    run_dir = Path(cfg.run_dir)
    resume_from = guard_run_dir(run_dir, resume, RESUME_HINT)
    ckpt_path = run_dir / LAST
    seed_everything(cfg.seed)
    train_set, test_set, mean = load(cfg)
    model = build_model(cfg, mean)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    meta = make_meta(cfg, model, mean)
    steps_per_epoch = len(train_set) // cfg.batch_size  # the incomplete last batch is dropped
    total = steps_per_epoch * cfg.epochs
    step, elapsed, epoch_times = 0, 0.0, []
    if resume_from is not None:
        loop = resume_training(resume_from, cfg, model, optimizer)
        step, elapsed, epoch_times = loop["step"], loop["elapsed"], loop["epoch_times"]
        print(f"resuming {run_dir} from step {step} (epoch {step / steps_per_epoch:.2f})", flush=True)
        if step >= total and (run_dir / "model.pt").is_file():
            print(f"{run_dir} already finished", flush=True)
            return json.loads((run_dir / "summary.json").read_text())
    t_start = time.time()
    epoch_start = time.time()
    lipschitz = cfg.model != "baseline"

    def save_checkpoint() -> None:
        save_training(
            ckpt_path,
            meta,
            model,
            optimizer,
            {"step": step, "elapsed": elapsed + time.time() - t_start, "epoch_times": epoch_times},
        )

    logger = RunLogger(run_dir, cfg, resume_step=step if resume_from is not None else None)
    bar = logger.progress(total, initial=step, desc=f"{cfg.model} {cfg.dataset}")
    end = total if stop_after_steps is None else min(total, step + stop_after_steps)
    saved_at = step if resume_from is not None else -1
    with StopSignal() as stop:
        try:
            while step < end and not stop.requested:
                epoch, pos = divmod(step, steps_per_epoch)
                perm = torch.randperm(
                    len(train_set), generator=torch.Generator().manual_seed(cfg.seed * 100003 + epoch)
                )
                idx = perm[pos * cfg.batch_size : (pos + 1) * cfg.batch_size]
                x, y = train_set.batch(idx)
                if cfg.augment:
                    flip = torch.rand(len(idx), generator=torch.Generator().manual_seed(cfg.seed * 7919 + step)) < 0.5
                    x = torch.where(flip[:, None, None, None], x.flip(3), x)
                model.train()
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(cfg, step, total)
                logits = model(x)
                loss = loss_fn(cfg.loss, logits, y, cfg.temperature, cfg.margin, cfg.alpha, cfg.offset)
                check_finite(step + 1, loss=loss.item())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                bar.update(1)
                logs = {}
                if step % cfg.log_every == 0:
                    logs = {
                        "loss": loss.item(),
                        "train_acc": (logits.argmax(1) == y).float().mean().item(),
                        "lr": lr_at(cfg, step - 1, total),
                    }
                if step % steps_per_epoch == 0:  # end of an epoch: time it, evaluate, checkpoint
                    epoch_times.append(round(time.time() - epoch_start, 2))
                    logs.update(quick_eval(model, test_set, cfg.eval_images, lipschitz))
                    logs["epoch"] = step // steps_per_epoch
                    bar.set_postfix(**{k: f"{v:.3f}" for k, v in logs.items() if k.startswith("test")})
                    save_checkpoint()
                    saved_at = step
                    epoch_start = time.time()
                if logs:
                    logger.log(step, **logs)
                over_time = cfg.time_limit_s and (elapsed + time.time() - t_start) > cfg.time_limit_s
                if over_time and step % steps_per_epoch == 0:
                    break
        finally:
            bar.close()
    if saved_at != step:
        save_checkpoint()
    summary = {
        "steps": step,
        "wall_time_s": round(elapsed + time.time() - t_start, 1),
        "finished": step >= total,
        "seed": cfg.seed,
        "device": "cpu",
        "model": cfg.model,
        "dataset": cfg.dataset,
        "epochs_done": round(step / steps_per_epoch, 3),
        "epoch_times_s": epoch_times,
        "n_params": meta["n_params"],
        "cpu": cpu_model(),
        "load": machine_load(),
        "threads": cfg.threads,
    }
    logger.close()
    if step < total:
        atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        print(f"stopped at step {step}/{total}; continue with {RESUME_HINT}", file=sys.stderr)
        return summary
    save_model(run_dir / "model.pt", meta, model)
    summary["test"] = quick_eval(model, test_set, 0, lipschitz)
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser, resume=True)
    args = parse_args(parser, argv)
    cfg = config_from_args(Config, args)
    summary = train(cfg, resume=args.resume)
    print(json.dumps(summary.get("test", {}), indent=2))
    if summary["finished"] and cfg.evaluate_after:
        evaluate_run(cfg.run_dir)
    print(f"run: {cfg.run_dir}")


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
