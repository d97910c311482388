"""Training with L_simple (Ho et al. 2020, Algorithm 1), an EMA of the weights, checkpoints and resume.

    python -m paperlab.ddpm.train --config configs/ddpm/digits.yaml            # offline default
    python -m paperlab.ddpm.train --config configs/ddpm/mnist.yaml              # data_dir=data/mnist
    python -m paperlab.ddpm.train --config configs/ddpm/mnist.yaml --resume     # continue a stopped run

The run folder gets config.yaml, metrics.jsonl (+ TensorBoard), checkpoints/last.pt (every
checkpoint_every steps, at the end, and on Ctrl-C/SIGTERM after the step in progress),
samples/step*.png (DDIM grids of the EMA model) and summary.json. A fresh run into a folder that
holds a checkpoint is refused (continue it with --resume, or give another run_dir).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

from paperlab.ddpm.checkpoint import check_compatible, read_checkpoint, save_checkpoint
from paperlab.ddpm.config import Config
from paperlab.ddpm.data import ImageData, load_data, to_model_range
from paperlab.ddpm.diffusion import GaussianDiffusion
from paperlab.ddpm.ema import EMA
from paperlab.ddpm.images import save_grid
from paperlab.ddpm.unet import build_unet
from paperlab.shared.checkpoint import LAST, atomic_write_text, guard_run_dir, restore_rng_state, rng_state
from paperlab.shared.cli import StopSignal, check_finite, run_command
from paperlab.shared.config import ConfigError, add_config_args, config_from_args, parse_args, to_dict
from paperlab.shared.runlog import RunLogger, read_metrics
from paperlab.shared.seeding import seed_everything

T_BUCKETS = 4  # the loss is also logged per quarter of the timestep range


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda but torch sees no CUDA device (use device=cpu or device=auto)")
    return torch.device(name)


def sample_batch(data: torch.Tensor, batch_size: int, flip: bool, gen: torch.Generator) -> torch.Tensor:
    idx = torch.randint(0, len(data), (batch_size,), generator=gen)
    x = to_model_range(data[idx])
    if flip:
        mask = torch.rand(batch_size, generator=gen) < 0.5
        x[mask] = x[mask].flip(-1)
    return x


def lr_at(cfg: Config, step: int) -> float:
    return cfg.lr * min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else cfg.lr


def write_samples(
    model, diffusion: GaussianDiffusion, cfg: Config, channels: int, path: Path, device: torch.device
) -> None:
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    x, _ = diffusion.sample_ddim(
        model,
        (cfg.num_samples, channels, cfg.image_size, cfg.image_size),
        cfg.sample_steps,
        0.0,
        generator=gen,
        device=device,
    )
    save_grid(x, path, scale=2 if cfg.image_size <= 32 else 1)


def train(
    cfg: Config, resume: bool = False, data: ImageData | None = None, stop_after_steps: int | None = None
) -> dict:
    """Train (or continue) the run of ``cfg``; returns the summary. ``data`` skips loading (tests);
    ``stop_after_steps`` stops (as Ctrl-C would) after that many steps of this call (tests)."""
    torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    run_dir = Path(cfg.run_dir)
    ckpt_path = run_dir / LAST
    resume_from = guard_run_dir(run_dir, resume, "--resume (make train-ddpm ... RESUME=1)")
    data = data if data is not None else load_data(cfg)
    channels = data.channels
    if data.image_size != cfg.image_size:
        raise ConfigError(f"data is {data.image_size}x{data.image_size}, config image_size={cfg.image_size}")

    seed_everything(cfg.seed)
    model = build_unet(cfg, channels).to(device)
    ema = EMA(model, cfg.ema_decay, cfg.ema_warmup)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    diffusion = GaussianDiffusion.from_config(cfg)
    gen = torch.Generator().manual_seed(cfg.seed)  # batches and flips (CPU)
    noise_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)  # t and eps
    step, train_time = 0, 0.0
    if resume_from is not None:
        state = read_checkpoint(resume_from)
        check_compatible(state, cfg, channels, resume=True)
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"])
        noise_gen.set_state(state["noise_gen"])
        if "rng" in state:
            restore_rng_state(state["rng"])
        step, train_time = state["step"], state.get("train_time", 0.0)
        print(f"resuming from step {step} ({resume_from})", file=sys.stderr)

    def checkpoint() -> None:
        save_checkpoint(
            ckpt_path,
            {
                "step": step,
                "model": model.state_dict(),
                "ema": ema.state_dict(),
                "opt": opt.state_dict(),
                "gen": gen.get_state(),
                "noise_gen": noise_gen.get_state(),
                "rng": rng_state(),
                "config": to_dict(cfg),
                "channels": channels,
                "train_time": train_time,
            },
        )

    n_params = sum(p.numel() for p in model.parameters())
    logger = RunLogger(run_dir, cfg, resume_step=step if resume_from is not None else None)
    bar = logger.progress(cfg.total_steps, initial=step, desc=f"ddpm {cfg.dataset}")
    sums = torch.zeros(T_BUCKETS + 1, dtype=torch.float64)
    counts = torch.zeros(T_BUCKETS + 1, dtype=torch.float64)
    end = min(cfg.total_steps, step + stop_after_steps) if stop_after_steps is not None else cfg.total_steps
    tick = time.time()
    try:
        with StopSignal() as stop:
            while step < end and not stop.requested:
                x0 = sample_batch(data.train, cfg.batch_size, cfg.random_flip, gen).to(device)
                t = torch.randint(0, diffusion.T, (cfg.batch_size,), device=device, generator=noise_gen)
                eps = torch.randn(x0.shape, device=device, generator=noise_gen)
                per_sample = (model(diffusion.q_sample(x0, t, eps), t) - eps).pow(2).mean(dim=(1, 2, 3))
                loss = per_sample.mean()
                check_finite(step + 1, loss=loss.item())  # the last checkpoint (step <= this one) stays
                for g in opt.param_groups:
                    g["lr"] = lr_at(cfg, step)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = (
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    if cfg.grad_clip
                    else torch.tensor(0.0)
                )
                opt.step()
                ema.update(model)
                step += 1
                bar.update(1)
                with torch.no_grad():
                    b = (t * T_BUCKETS // diffusion.T).cpu()
                    sums[:T_BUCKETS] += torch.zeros(T_BUCKETS, dtype=torch.float64).index_add_(
                        0, b, per_sample.detach().cpu().double()
                    )
                    counts[:T_BUCKETS] += torch.bincount(b, minlength=T_BUCKETS).double()
                    sums[-1] += loss.item()
                    counts[-1] += 1
                if step % cfg.log_every == 0 or step == cfg.total_steps:
                    now = time.time()
                    train_time += now - tick
                    tick = now
                    row = {
                        "loss": sums[-1].item() / counts[-1].item(),
                        "lr": lr_at(cfg, step - 1),
                        "grad_norm": float(grad_norm),
                        "ema_decay": ema.current_decay(),
                        "train_time": train_time,
                    }
                    for k in range(T_BUCKETS):
                        if counts[k] > 0:
                            lo, hi = k * diffusion.T // T_BUCKETS, (k + 1) * diffusion.T // T_BUCKETS - 1
                            row[f"loss_t{lo}-{hi}"] = sums[k].item() / counts[k].item()
                    logger.log(step, **row)
                    bar.set_postfix(loss=f"{row['loss']:.4f}")
                    sums.zero_()
                    counts.zero_()
                if step % cfg.checkpoint_every == 0:
                    checkpoint()
                if cfg.sample_every and step % cfg.sample_every == 0 and step < cfg.total_steps:
                    write_samples(
                        ema.model, diffusion, cfg, channels, run_dir / "samples" / f"step{step:07d}.png", device
                    )
            train_time += time.time() - tick
            checkpoint()  # also when stopped by Ctrl-C/SIGTERM: the whole last step is in it
    finally:
        bar.close()
        logger.close()
    finished = step >= cfg.total_steps
    if finished:
        write_samples(ema.model, diffusion, cfg, channels, run_dir / "samples" / f"step{step:07d}.png", device)
        write_samples(model, diffusion, cfg, channels, run_dir / "samples" / f"step{step:07d}-no-ema.png", device)
    else:
        print(f"stopped at step {step}: checkpoint saved, continue with --resume", file=sys.stderr)
    rows = [r for r in read_metrics(logger.metrics_path) if r.get("loss") is not None]
    tail = rows[-max(1, len(rows) // 10) :]
    summary = {
        # the keys every paperlab run has
        "steps": step,
        "wall_time_s": round(train_time, 1),  # the training loop's wall time, summed over resumed sessions
        "finished": finished,
        "seed": cfg.seed,
        "device": str(device),
        # this project's
        "dataset": cfg.dataset,
        "image_size": cfg.image_size,
        "channels": channels,
        "batch_size": cfg.batch_size,
        "images_seen": step * cfg.batch_size,
        "train_images": len(data.train),
        "parameters": n_params,
        "final_loss": sum(r["loss"] for r in tail) / len(tail) if tail else math.nan,
        "threads": cfg.threads,
    }
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2))
    return summary


def _main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description="Train a DDPM (Ho et al. 2020).")
    add_config_args(parser, resume=True)
    args = parse_args(parser, argv)
    cfg = config_from_args(Config, args)
    summary = train(cfg, resume=args.resume)
    print(json.dumps(summary, indent=2))
    return summary


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
