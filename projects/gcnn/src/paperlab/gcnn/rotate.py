"""Rotating square images and filters by an angle, counter-clockwise as displayed.

Coordinates: x = column - centre (right), y = centre - row (up). A rotation by a multiple of 90
degrees is a pixel permutation (``torch.rot90``: exact); any other angle theta is written as
q * 90 degrees + a residual in [-45, 45) degrees, the residual done by bilinear interpolation
(``grid_sample``) and the quarter turns exactly afterwards. So every rotation group that contains
C4 (C8, C16) inherits exact 90-degree steps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

PADDING = ("zeros", "reflection", "border")


def quarter_turns(angle: float, tol: float = 1e-9) -> tuple[int, float]:
    """(q, residual) with angle = q * pi/2 + residual, residual in [-pi/4, pi/4); residual is
    snapped to 0 within ``tol``."""
    q = math.floor(angle / (math.pi / 2) + 0.5)
    residual = angle - q * math.pi / 2
    if abs(residual) < tol:
        residual = 0.0
    return q % 4, residual


def _interpolate(x: torch.Tensor, angle: float, padding: str) -> torch.Tensor:
    shape = x.shape
    flat = x.reshape(-1, 1, shape[-2], shape[-1])
    c, s = math.cos(angle), math.sin(angle)
    # output pixel p' samples the input at R(-angle) p' (y up), i.e. R(angle) p' in grid_sample's y-down frame
    theta = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta.expand(flat.shape[0], 2, 3), list(flat.shape), align_corners=False)
    out = F.grid_sample(flat, grid, mode="bilinear", padding_mode=padding, align_corners=False)
    return out.reshape(shape)


def rotate_image(x: torch.Tensor, angle: float, padding: str = "zeros") -> torch.Tensor:
    """Rotate the last two dimensions of ``x`` (square) counter-clockwise by ``angle`` radians."""
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"rotations act on square images, got {x.shape[-2]}x{x.shape[-1]}")
    if padding not in PADDING:
        raise ValueError(f"padding must be one of {PADDING}, got {padding!r}")
    q, residual = quarter_turns(angle)
    if residual:
        x = _interpolate(x, residual, padding)
    return torch.rot90(x, q, dims=(-2, -1)) if q else x


def disk_mask(size: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """1 inside the disc inscribed in a size x size grid (radius size/2), 0 outside: filters masked so
    survive rotation by interpolation without losing their corners."""
    c = (size - 1) / 2
    yy, xx = torch.meshgrid(torch.arange(size, dtype=dtype), torch.arange(size, dtype=dtype), indexing="ij")
    return (((yy - c) ** 2 + (xx - c) ** 2) <= (size / 2) ** 2 + 1e-6).to(device=device, dtype=dtype)
