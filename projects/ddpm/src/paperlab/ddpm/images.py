"""The DDPM glue around :mod:`paperlab.shared.images`: tensors in [-1, 1] to grids, and reverse-process GIFs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from paperlab.ddpm.data import to_unit_range
from paperlab.shared import images


def _unit(x_BxCxHxW: torch.Tensor) -> np.ndarray:
    return to_unit_range(x_BxCxHxW.detach().float().cpu()).numpy()


def grid(x_BxCxHxW: torch.Tensor, nrow: int | None = None, pad: int = 1) -> np.ndarray:
    """A (rows*H, cols*W, 3) uint8 grid of images in [-1, 1], with ``pad`` white pixels between them."""
    return images.grid(_unit(x_BxCxHxW), nrow, pad)


def save_grid(x_BxCxHxW: torch.Tensor, path: str | Path, nrow: int | None = None, scale: int = 1) -> None:
    images.save_grid(_unit(x_BxCxHxW), path, nrow, scale=scale)


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
