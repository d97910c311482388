"""Train one classifier (plain CNN, C4/C8/C16 G-CNN or steerable SO(2) CNN), then evaluate it.

    python -m paperlab.gcnn.train --config configs/gcnn/eurosat.yaml model=c8 seed=2
    python -m paperlab.gcnn.train --config configs/gcnn/eurosat.yaml model=c8 seed=2 --resume

The run directory holds ``config.yaml``, ``metrics.jsonl`` (loss every 20 steps; per epoch the
validation accuracy and the epoch's wall time), ``checkpoints/last.pt`` (every ``checkpoint_every``
steps, at every epoch end and on Ctrl-C/SIGTERM), ``model.pt``, ``eval.json`` (see
:mod:`paperlab.gcnn.evaluate`) and ``summary.json``. No data augmentation: the only source of rotation
robustness is the architecture. The last epoch's model is the one evaluated (no selection on test).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from paperlab.gcnn.checkpoint import make_meta, resume_training, save_model, save_training
from paperlab.gcnn.config import Config
from paperlab.gcnn.data import Splits, load_data, to_input
from paperlab.gcnn.evaluate import accuracy, evaluate_model
from paperlab.gcnn.model import build_model
from paperlab.shared.checkpoint import LAST, atomic_write_text, guard_run_dir
from paperlab.shared.cli import StopSignal, check_finite, run_command
from paperlab.shared.config import add_config_args, config_from_args, parse_args
from paperlab.shared.runlog import RunLogger
from paperlab.shared.seeding import seed_everything

RESUME_HINT = "--resume (make train-gcnn ... RESUME=1)"


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device=cuda but no CUDA device is visible; use device=cpu or auto")
    return torch.device(name)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def train(cfg: Config, resume: bool = False, stop_after_steps: int | None = None, data: Splits | None = None) -> dict:
    """Train for ``cfg.epochs`` epochs; returns the summary (also written to ``summary.json``)."""
    torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    amp = cfg.amp and device.type == "cuda"
    run_dir = Path(cfg.run_dir)
    resume_from = guard_run_dir(run_dir, resume, RESUME_HINT)
    ckpt_path = run_dir / LAST

    seed_everything(cfg.seed)
    data = (data or load_data(cfg)).to(device)
    n_classes = len(data.classes)
    model = build_model(cfg, data.in_channels, n_classes).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = len(data.train_y) // cfg.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size {cfg.batch_size} exceeds the {len(data.train_y)} training images")
    total_steps = cfg.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    gen = torch.Generator().manual_seed(cfg.seed)  # the order of the training images (on the CPU)
    meta = make_meta(cfg, model, data.in_channels, data.size, n_classes)
    step, elapsed, epoch_times = 0, 0.0, []
    perm = torch.randperm(len(data.train_y), generator=gen)
    if resume_from is not None:
        loop = resume_training(resume_from, cfg, model, optimizer, scheduler, gen)
        step, elapsed, epoch_times, perm = loop["step"], loop["elapsed"], loop["epoch_times"], loop["perm"]
        print(f"resuming {run_dir} from step {step}", flush=True)

    logger = RunLogger(run_dir, cfg, resume_step=step if resume_from is not None else None, tensorboard=cfg.tensorboard)
    bar = logger.progress(total_steps, initial=step, desc=f"{cfg.model} {cfg.dataset}")
    end_step = total_steps if stop_after_steps is None else min(total_steps, step + stop_after_steps)
    t_start = time.time()
    epoch_start, epoch_elapsed0 = time.time(), 0.0

    def save_checkpoint() -> None:
        loop = {"step": step, "elapsed": elapsed + time.time() - t_start, "epoch_times": epoch_times, "perm": perm}
        save_training(ckpt_path, meta, model, optimizer, scheduler, loop, gen)

    saved_at = step if resume_from is not None else -1
    with StopSignal() as stop:
        try:
            while step < end_step and not stop.requested:
                pos = (step % steps_per_epoch) * cfg.batch_size
                if pos == 0 and step > 0:  # a new epoch: a new order (the incomplete last batch is dropped)
                    perm = torch.randperm(len(data.train_y), generator=gen)
                idx = perm[pos : pos + cfg.batch_size].to(device)
                model.train()
                x = to_input(data.train_x[idx], data.mean, data.std)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    loss = F.cross_entropy(model(x), data.train_y[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                step += 1
                if step % 20 == 0 or step == end_step:
                    value = loss.item()
                    try:
                        check_finite(step, loss=value)
                    except FloatingPointError as e:
                        where = (
                            f"the last good checkpoint is {ckpt_path}" if ckpt_path.exists() else "no checkpoint yet"
                        )
                        raise FloatingPointError(f"{e}; {where} (lower lr)") from None
                    logger.log(step, loss=value, lr=scheduler.get_last_lr()[0])
                    bar.set_postfix(loss=f"{value:.3f}")
                bar.update(1)
                if step % steps_per_epoch == 0:
                    _sync(device)
                    epoch_times.append(round(time.time() - epoch_start - epoch_elapsed0, 3))
                    row = {"epoch": step // steps_per_epoch, "epoch_time_s": epoch_times[-1]}
                    if len(data.val_y):
                        row["val_acc"] = accuracy(model, data.val_x, data.val_y, data, amp=amp)
                    logger.log(step, **row)
                    epoch_start, epoch_elapsed0 = time.time(), 0.0
                if step % cfg.checkpoint_every == 0 or step % steps_per_epoch == 0 or step == end_step:
                    t_ckpt = time.time()
                    save_checkpoint()
                    epoch_elapsed0 += time.time() - t_ckpt  # checkpoint time is not training time
                    saved_at = step
        finally:
            bar.close()
    if saved_at != step:  # stopped by a signal between two checkpoints
        save_checkpoint()

    wall = round(elapsed + time.time() - t_start, 1)
    summary = {
        "steps": step,
        "total_steps": total_steps,
        "wall_time_s": wall,
        "finished": step >= total_steps,
        "seed": cfg.seed,
        "device": str(device) + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else ""),
        "model": cfg.model,
        "dataset": cfg.dataset,
        "n_params": meta["n_params"],
        "epochs": cfg.epochs,
        "epoch_times_s": epoch_times,
        "n_train": len(data.train_y),
        "train_fraction": cfg.train_fraction,
    }
    if step < total_steps:
        logger.close()
        atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        print(f"stopped at step {step}; continue with {RESUME_HINT}", file=sys.stderr)
        return summary
    save_model(run_dir / "model.pt", meta, model)
    result = evaluate_model(model, cfg, data, amp=amp)
    result = {"model": cfg.model, "dataset": cfg.dataset, "seed": cfg.seed, "n_params": meta["n_params"], **result}
    atomic_write_text(run_dir / "eval.json", json.dumps(result, indent=2) + "\n")
    logger.log(step, test_acc=result["accuracy"].get("0.0", float("nan")))
    logger.close()
    summary = {**summary, "test_acc": result["accuracy"]}
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser, resume=True)
    args = parse_args(parser, argv)
    cfg = config_from_args(Config, args)
    summary = train(cfg, resume=args.resume)
    if "test_acc" in summary:
        print(json.dumps(summary["test_acc"], indent=2))
    print(f"run: {cfg.run_dir}")


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
