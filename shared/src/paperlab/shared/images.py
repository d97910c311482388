"""Image grids as PNG files: a batch of images in one picture, beside :mod:`paperlab.shared.gif`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from paperlab.shared.gif import to_uint8_rgb


def grid(images, nrow: int | None = None, pad: int = 1, pad_value: int = 255) -> np.ndarray:
    """A ``(rows*H, cols*W, 3)`` uint8 grid of ``images``: (N,H,W), (N,H,W,C) or (N,C,H,W), C in 1, 3.

    Values are uint8 or floats in [0, 1] (map other ranges first); ``pad`` pixels of ``pad_value``
    separate the tiles and frame the grid.
    """
    x = np.asarray(images)
    if x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[-1] not in (1, 3):
        x = x.transpose(0, 2, 3, 1)  # channels first -> last
    if x.ndim not in (3, 4) or len(x) == 0:
        raise ValueError(f"images must be a non-empty (N,H,W[,C]) or (N,C,H,W) batch, got shape {x.shape}")
    tiles = [to_uint8_rgb(f) for f in x]
    n, (h, w) = len(tiles), tiles[0].shape[:2]
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    out = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, 3), pad_value, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, nrow)
        out[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = tile
    return out


def save_grid(images, path: str | Path, nrow: int | None = None, pad: int = 1, scale: int = 1) -> np.ndarray:
    """Write :func:`grid` to ``path`` (PNG), each pixel repeated ``scale`` times; returns the grid."""
    from PIL import Image

    if scale < 1 or int(scale) != scale:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    g = grid(images, nrow, pad)
    if scale > 1:
        g = g.repeat(scale, axis=0).repeat(scale, axis=1)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(g).save(path)
    return g
