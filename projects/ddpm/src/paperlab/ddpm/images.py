"""Image grids (PNG) and reverse-process GIFs from tensors in [-1, 1]."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from paperlab.ddpm.data import to_unit_range


def grid(x_BxCxHxW: torch.Tensor, nrow: int | None = None, pad: int = 1) -> np.ndarray:
    """A (rows*H, cols*W, 3) uint8 grid of images in [-1, 1], with ``pad`` white pixels between them."""
    x = to_unit_range(x_BxCxHxW.detach().float().cpu())
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    B, _, H, W = x.shape
    nrow = nrow or math.ceil(math.sqrt(B))
    rows = math.ceil(B / nrow)
    out = np.ones((rows * (H + pad) + pad, nrow * (W + pad) + pad, 3), dtype=np.float32)
    for i in range(B):
        r, c = divmod(i, nrow)
        out[pad + r * (H + pad) : pad + r * (H + pad) + H, pad + c * (W + pad) : pad + c * (W + pad) + W] = (
            x[i].permute(1, 2, 0).numpy()
        )
    return (out * 255 + 0.5).astype(np.uint8)


def save_grid(x_BxCxHxW: torch.Tensor, path: str | Path, nrow: int | None = None, scale: int = 1) -> None:
    from PIL import Image

    g = grid(x_BxCxHxW, nrow)
    if scale > 1:
        g = g.repeat(scale, 0).repeat(scale, 1)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(g).save(path)


def save_reverse_gif(
    frames: list[torch.Tensor],
    path: str | Path,
    nrow: int | None = None,
    scale: int = 2,
    fps: float = 10.0,
    hold: int = 10,
) -> int:
    """A GIF of snapshots x_T .. x_0 (each a batch), the last frame held for ``hold`` extra frames."""
    from paperlab.shared.gif import save_gif

    imgs = [grid(f, nrow) for f in frames]
    imgs += [imgs[-1]] * hold
    return save_gif(imgs, path, fps=fps, scale=scale)
