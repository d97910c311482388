"""Frames to an animated GIF: integer upscaling (no blur on pixel-art envs), fps and a frame cap."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np


def to_uint8_rgb(frame: np.ndarray) -> np.ndarray:
    """HxW, HxWx1, HxWx3 or HxWx4 frame, uint8 or float in [0, 1], to HxWx3 uint8."""
    f = np.asarray(frame)
    if f.ndim == 2:
        f = f[..., None]
    if f.ndim != 3 or f.shape[-1] not in (1, 3, 4):
        raise ValueError(f"a frame must be HxW or HxWxC with C in (1, 3, 4), got shape {f.shape}")
    if f.dtype != np.uint8:
        if np.issubdtype(f.dtype, np.floating) or f.dtype == np.bool_:
            f = np.clip(np.nan_to_num(f.astype(np.float32)), 0.0, 1.0) * 255.0 + 0.5
        f = f.astype(np.uint8)
    if f.shape[-1] == 1:
        f = np.repeat(f, 3, axis=-1)
    return f[..., :3]


def save_gif(
    frames: Iterable[np.ndarray],
    path: str | Path,
    fps: float = 20.0,
    scale: int = 1,
    max_frames: int | None = None,
) -> int:
    """Write ``frames`` to ``path`` as a looping GIF and return how many frames were written.

    ``scale`` repeats every pixel ``scale`` times in each direction; ``max_frames`` keeps only the
    first frames so that a GIF stays small enough to commit. GIF stores frame delays in hundredths
    of a second, so the delay is ``1/fps`` rounded to 10 ms (exact for fps 100, 50, 25, 20, 10, ...).
    The encoder (Pillow) stores a run of identical consecutive frames as one frame with their summed
    delay; the count returned is that of the frames given (after the cap).
    """
    import imageio.v3 as iio

    if scale < 1 or int(scale) != scale:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    out = []
    for i, frame in enumerate(frames):
        if max_frames is not None and i >= max_frames:
            break
        f = to_uint8_rgb(frame)
        if scale > 1:
            f = f.repeat(scale, axis=0).repeat(scale, axis=1)
        out.append(f)
    if not out:
        raise ValueError("no frames to write")
    if any(f.shape != out[0].shape for f in out):
        raise ValueError("all frames must have the same shape")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    delay_ms = max(10, 10 * round(100.0 / fps))  # imageio takes milliseconds; GIF keeps centiseconds
    iio.imwrite(path, np.stack(out), extension=".gif", duration=delay_ms, loop=0)
    return len(out)
