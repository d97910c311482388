"""Samples of a trained checkpoint: an image grid and, optionally, a GIF of the reverse process.

    python -m paperlab.ddpm.sample runs/ddpm/mnist/checkpoints/last.pt --sampler ddim --steps 50 --out grid.png
    python -m paperlab.ddpm.sample runs/ddpm/mnist/checkpoints/last.pt --sampler ddpm --n 16 --gif reverse.gif

The EMA weights are used unless ``--no-ema``. ``--image-size`` (optional) must match the checkpoint's.
``--clip`` chooses how the predicted x_0 is clipped (see ``diffusion.DDIM_CLIPS``; ``off``: not at all).
The printed summary counts the noise-like samples (see :func:`noise_like`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from paperlab.ddpm.checkpoint import load_for_sampling
from paperlab.ddpm.diffusion import DDIM_CLIPS
from paperlab.ddpm.images import save_grid, save_reverse_gif
from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import run_command
from paperlab.shared.config import ConfigError

ROUGH = 0.2  # mean |difference of horizontal neighbours| (images in [-1, 1]) above which a sample is noise


def noise_like(x: torch.Tensor, threshold: float = ROUGH) -> int:
    """How many samples (B, C, H, W in [-1, 1]) are noise rather than images: neighbouring pixels of a face or
    a digit differ by ~0.05-0.1 on average, those of uniform noise by ~0.67; the threshold sits between."""
    x = x.clamp(-1, 1)
    return int(((x[..., 1:] - x[..., :-1]).abs().mean(dim=(1, 2, 3)) > threshold).sum())


def _main(argv=None) -> dict:
    p = argparse.ArgumentParser(description="Sample from a trained DDPM checkpoint.")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--sampler", choices=("ddpm", "ddim"), default="ddim")
    p.add_argument("--steps", type=int, default=None, help="DDIM steps (default 50); DDPM always runs all T")
    p.add_argument("--eta", type=float, default=0.0, help="DDIM eta: 0 deterministic, 1 DDPM-like")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-ema", action="store_true", help="sample with the raw weights instead of the EMA")
    p.add_argument("--image-size", type=int, default=None, help="refused unless it is the checkpoint's size")
    p.add_argument("--out", type=Path, default=None, help="grid PNG (default: <run_dir>/samples/<sampler>.png)")
    p.add_argument("--gif", type=Path, default=None, help="also write a GIF of x_T -> x_0")
    p.add_argument("--frames", type=int, default=40, help="snapshots in the GIF")
    p.add_argument("--scale", type=int, default=0, help="pixel upscaling of the outputs (0: automatic)")
    p.add_argument(
        "--clip",
        choices=(*DDIM_CLIPS, "off"),
        default=None,
        help="clipping of the predicted x_0 (default: the checkpoint's clip_denoised, DDIM 'consistent')",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None, help="also write the printed summary to this file")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.n < 1:
        raise ValueError(f"--n must be at least 1, got {a.n}")
    model, diffusion, cfg, state = load_for_sampling(a.checkpoint, a.image_size, ema=not a.no_ema)
    if a.clip is not None:
        diffusion.clip_denoised = a.clip != "off"
        diffusion.ddim_clip = a.clip if a.clip != "off" else "consistent"
    steps = diffusion.T if a.sampler == "ddpm" else (a.steps or 50)
    if a.sampler == "ddpm" and a.steps not in (None, diffusion.T):
        raise ConfigError(f"the DDPM sampler runs all {diffusion.T} steps; use --sampler ddim for {a.steps} steps")
    shape = (a.n, state["channels"], cfg.image_size, cfg.image_size)
    gen = torch.Generator().manual_seed(a.seed)
    t0 = time.time()
    x, frames = diffusion.sample(model, shape, a.sampler, steps, a.eta, generator=gen, frames=a.frames if a.gif else 0)
    scale = a.scale or (3 if cfg.image_size <= 32 else 1)
    eta_tag = f"-eta{a.eta:g}" if a.sampler == "ddim" and a.eta else ""
    clip_tag = "" if a.clip in (None, "consistent") else f"-clip-{a.clip}"
    tag = f"{a.sampler}{steps}{eta_tag}{clip_tag}" + ("-raw" if a.no_ema else "")
    out = a.out or a.checkpoint.parent.parent / "samples" / f"{tag}.png"
    save_grid(x, out, scale=scale)
    info = {
        "grid": str(out),
        "sampler": a.sampler,
        "steps": steps,
        "eta": a.eta,
        "ema": not a.no_ema,
        "n": a.n,
        "clip": a.clip or ("consistent" if diffusion.clip_denoised else "off"),
        "noise_like_samples": noise_like(x),
        "checkpoint_step": state["step"],
        "seconds": round(time.time() - t0, 1),
    }
    if a.gif:
        info["gif_frames"] = save_reverse_gif(frames, a.gif, scale=max(1, scale - 1))
        info["gif"] = str(a.gif)
    print(json.dumps(info, indent=2))
    if a.json:
        atomic_write_text(a.json, json.dumps(info, indent=2) + "\n")
    return info


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
