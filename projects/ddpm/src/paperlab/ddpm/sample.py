"""Samples of a trained checkpoint: an image grid and, optionally, a GIF of the reverse process.

    python -m paperlab.ddpm.sample runs/ddpm/mnist/checkpoints/last.pt --sampler ddim --steps 50 --out grid.png
    python -m paperlab.ddpm.sample runs/ddpm/mnist/checkpoints/last.pt --sampler ddpm --n 16 --gif reverse.gif

The EMA weights are used unless ``--no-ema``. ``--image-size`` (optional) must match the checkpoint's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from paperlab.ddpm.checkpoint import load_for_sampling
from paperlab.ddpm.images import save_grid, save_reverse_gif
from paperlab.shared.config import ConfigError


def main(argv=None) -> None:
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
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    try:
        model, diffusion, cfg, state = load_for_sampling(a.checkpoint, a.image_size, ema=not a.no_ema)
        steps = diffusion.T if a.sampler == "ddpm" else (a.steps or 50)
        if a.sampler == "ddpm" and a.steps not in (None, diffusion.T):
            raise ConfigError(f"the DDPM sampler runs all {diffusion.T} steps; use --sampler ddim for {a.steps} steps")
        shape = (a.n, state["channels"], cfg.image_size, cfg.image_size)
        gen = torch.Generator().manual_seed(a.seed)
        t0 = time.time()
        x, frames = diffusion.sample(
            model, shape, a.sampler, steps, a.eta, generator=gen, frames=a.frames if a.gif else 0
        )
    except (ConfigError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    scale = a.scale or (3 if cfg.image_size <= 32 else 1)
    eta_tag = f"-eta{a.eta:g}" if a.sampler == "ddim" and a.eta else ""
    tag = f"{a.sampler}{steps}{eta_tag}" + ("-raw" if a.no_ema else "")
    out = a.out or a.checkpoint.parent.parent / "samples" / f"{tag}.png"
    save_grid(x, out, scale=scale)
    info = {
        "grid": str(out),
        "sampler": a.sampler,
        "steps": steps,
        "eta": a.eta,
        "ema": not a.no_ema,
        "n": a.n,
        "checkpoint_step": state["step"],
        "seconds": round(time.time() - t0, 1),
    }
    if a.gif:
        info["gif_frames"] = save_reverse_gif(frames, a.gif, scale=max(1, scale - 1))
        info["gif"] = str(a.gif)
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
