"""C_n lifting and group convolutions (Cohen & Welling 2016), group pooling, equivariant pooling.

Feature maps of a C_n G-CNN have shape (B, C, n, H, W): C channels, each a function on
C_n x Z^2 (one value per rotation r and pixel p). The group acts on such a map by

    (g . f)(r, p) = f(r - g, R_g^-1 p)            # rotate every plane, shift the rotation axis

Lifting convolution (image -> group), for a filter psi on Z^2 (cross-correlation, as conv2d):

    [f * psi](r, p) = sum_q f(q) psi(R_r^-1 (q - p))      = conv2d(f, R_r psi)(p)

Group convolution (group -> group), for a filter psi on C_n x Z^2:

    [f * psi](r, p) = sum_s sum_q f(s, q) psi(s - r, R_r^-1 (q - p))
                    = conv2d over (s, q) with the filter  R_r psi(s - r, .)

so the filter bank of output rotation r is the base filter shifted by r along its rotation axis and
rotated spatially by r. Both satisfy [g . f] * psi = g . [f * psi] (tested): for n = 4 exactly, for
n = 8, 16 the non-90-degree filter rotations are interpolated (see :mod:`paperlab.gcnn.rotate`) and
equivariance holds up to that interpolation error (measured by :mod:`paperlab.gcnn.evaluate`).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from paperlab.gcnn.rotate import disk_mask, rotate_image


def check_square(x: torch.Tensor, what: str) -> None:
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(
            f"{what} needs square inputs for rotation equivariance, got {x.shape[-2]}x{x.shape[-1]} "
            "(crop or pad the images to a square)"
        )


def rotated_filters(weight: torch.Tensor, n: int) -> torch.Tensor:
    """Stack of the n rotations of ``weight`` (..., k, k) by 2*pi*r/n: (n, ..., k, k)."""
    return torch.stack([rotate_image(weight, 2 * math.pi * r / n) for r in range(n)])


class LiftingConv(nn.Module):
    """Image (B, C_in, H, W) -> group feature map (B, C_out, n, H, W); 'same' zero padding, stride 1."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, n: int, bias: bool = True):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (a centred filter rotates about a pixel), got {kernel_size}")
        self.in_channels, self.out_channels, self.kernel_size, self.n = in_channels, out_channels, kernel_size, n
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        # n not a divisor of 4: filter rotations are interpolated; mask the corners that rotation would lose
        self.register_buffer("mask", disk_mask(kernel_size) if 4 % n else torch.ones(kernel_size, kernel_size))

    def filter_bank(self) -> torch.Tensor:
        """(C_out * n, C_in, k, k), output channel index o * n + r."""
        bank = rotated_filters(self.weight * self.mask, self.n)  # (n, C_out, C_in, k, k)
        return bank.transpose(0, 1).reshape(self.out_channels * self.n, self.in_channels, *self.weight.shape[-2:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_square(x, "LiftingConv")
        bias = None if self.bias is None else self.bias.repeat_interleave(self.n)
        out = F.conv2d(x, self.filter_bank(), bias, padding=self.kernel_size // 2)
        return out.view(x.shape[0], self.out_channels, self.n, *out.shape[-2:])


class GroupConv(nn.Module):
    """Group feature map (B, C_in, n, H, W) -> (B, C_out, n, H, W); 'same' zero padding, stride 1."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, n: int, bias: bool = True):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (a centred filter rotates about a pixel), got {kernel_size}")
        self.in_channels, self.out_channels, self.kernel_size, self.n = in_channels, out_channels, kernel_size, n
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, n, kernel_size, kernel_size))
        fan_in = in_channels * n * kernel_size**2
        nn.init.uniform_(self.weight, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.register_buffer("mask", disk_mask(kernel_size) if 4 % n else torch.ones(kernel_size, kernel_size))

    def filter_bank(self) -> torch.Tensor:
        """(C_out * n, C_in * n, k, k): for output rotation r, R_r applied to the base filter rolled by r."""
        w = self.weight * self.mask
        rolled = torch.stack([torch.roll(w, shifts=r, dims=2) for r in range(self.n)])  # (n, O, I, n, k, k)
        bank = torch.stack([rotate_image(rolled[r], 2 * math.pi * r / self.n) for r in range(self.n)])
        k = self.kernel_size
        return bank.transpose(0, 1).reshape(self.out_channels * self.n, self.in_channels * self.n, k, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_square(x, "GroupConv")
        if x.dim() != 5 or x.shape[1:3] != (self.in_channels, self.n):
            raise ValueError(f"GroupConv expects (B, {self.in_channels}, {self.n}, H, W), got {tuple(x.shape)}")
        b = x.shape[0]
        bias = None if self.bias is None else self.bias.repeat_interleave(self.n)
        out = F.conv2d(
            x.reshape(b, self.in_channels * self.n, *x.shape[-2:]),
            self.filter_bank(),
            bias,
            padding=self.kernel_size // 2,
        )
        return out.view(b, self.out_channels, self.n, *out.shape[-2:])


class GroupBatchNorm(nn.BatchNorm3d):
    """Batch norm of (B, C, n, H, W) with statistics and affine parameters shared over the n
    rotations of a channel (so it commutes with the group action)."""


def group_max_pool(x: torch.Tensor) -> torch.Tensor:
    """(B, C, n, H, W) -> (B, C, H, W): max over the rotation axis; invariant to its cyclic shifts."""
    return x.amax(dim=2)


def spatial_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """2x2 average pooling, stride 2, on the last two dims. On an even side the 2x2 blocks are mapped
    onto each other by a 90-degree rotation, so pooling commutes with it; an odd side is refused,
    since its last row/column would be dropped on one side of the image only."""
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        raise ValueError(
            f"2x2 pooling of a {h}x{w} map breaks exact rotation equivariance (odd side: the dropped row/column "
            "is not rotation-symmetric); choose an input size divisible by 2**(number of pooling layers)"
        )
    shape = x.shape
    out = F.avg_pool2d(x.reshape(-1, 1, h, w) if x.dim() != 4 else x, 2)
    return out.reshape(*shape[:-2], h // 2, w // 2)
