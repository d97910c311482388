"""D_n lifting and group convolutions: rotations *and* reflections (Cohen & Welling 2016's p4m for n = 4).

The layers work for any finite group G of plane isometries given as an object with ``elements()``,
``compose``, ``inverse`` and ``act_on_image`` (:mod:`paperlab.gcnn.groups`); they are used here with
D4 = {r^k s^f}, k = 0..3, f = 0, 1 (element index f*4 + k; s reflects x -> -x). Every element of D4 maps
the pixel grid onto itself (``torch.rot90`` and ``torch.flip``), so D4 equivariance is exact.

Feature maps have shape (B, C, |G|, H, W). G acts on them by

    (g . f)(h, p) = f(g^-1 h, g^-1 p)            # move every plane, permute the group axis

Lifting convolution:  [f * psi](h, p) = sum_q f(q) psi(h^-1 (q - p)) = conv2d(f, h . psi)(p)
Group convolution:    [f * psi](h, p) = sum_{s, q} f(s, q) psi(h^-1 s, h^-1 (q - p))

so the filter of output element h is h . psi: the base filter with its group axis permuted by the
regular representation (index s takes psi[h^-1 s]) and its plane transformed by h. Substituting
s = g s', q = g q' shows [g . f] * psi = g . [f * psi] (tested for every element of D4). With
n = 4 and the rotation-only part this is exactly :class:`paperlab.gcnn.layers.GroupConv`'s roll.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from paperlab.gcnn.layers import check_square
from paperlab.gcnn.rotate import disk_mask


def _check_kernel(kernel_size: int) -> None:
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd (a centred filter rotates about a pixel), got {kernel_size}")


def _mask(group, kernel_size: int) -> torch.Tensor:
    # a group with rotations that are not quarter turns interpolates its filters: mask their corners
    n = getattr(group, "n", 4)
    return disk_mask(kernel_size) if 4 % n else torch.ones(kernel_size, kernel_size)


def regular_permutations(group) -> torch.Tensor:
    """(|G|, |G|) index table P with P[h, s] = index of h^-1 s: (h . f)[s] = f[P[h, s]] for a signal f on G."""
    els = group.elements()
    return torch.tensor([[group.compose(group.inverse(h), s) for s in els] for h in els], dtype=torch.long)


def act_on_group_map(group, g: int, f: torch.Tensor, dim: int = 2) -> torch.Tensor:
    """(g . f)(h, p) = f(g^-1 h, g^-1 p) for a map f with the group axis at ``dim`` and the plane last."""
    return group.act_on_image(g, torch.index_select(f, dim, regular_permutations(group)[g].to(f.device)))


class GroupLiftingConv(nn.Module):
    """Image (B, C_in, H, W) -> (B, C_out, |G|, H, W); 'same' zero padding, stride 1."""

    def __init__(self, group, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True):
        super().__init__()
        _check_kernel(kernel_size)
        self.group, self.order = group, group.order
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.register_buffer("mask", _mask(group, kernel_size))

    def filter_bank(self) -> torch.Tensor:
        """(C_out * |G|, C_in, k, k), output channel index o * |G| + h."""
        w = self.weight * self.mask
        bank = torch.stack([self.group.act_on_image(h, w) for h in self.group.elements()])  # (|G|, O, I, k, k)
        return bank.transpose(0, 1).reshape(self.out_channels * self.order, self.in_channels, *w.shape[-2:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_square(x, f"{self.group} lifting conv")
        bias = None if self.bias is None else self.bias.repeat_interleave(self.order)
        out = F.conv2d(x, self.filter_bank(), bias, padding=self.kernel_size // 2)
        return out.view(x.shape[0], self.out_channels, self.order, *out.shape[-2:])


class GroupGroupConv(nn.Module):
    """(B, C_in, |G|, H, W) -> (B, C_out, |G|, H, W); 'same' zero padding, stride 1."""

    def __init__(self, group, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True):
        super().__init__()
        _check_kernel(kernel_size)
        self.group, self.order = group, group.order
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, group.order, kernel_size, kernel_size))
        fan_in = in_channels * group.order * kernel_size**2
        nn.init.uniform_(self.weight, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.register_buffer("mask", _mask(group, kernel_size))
        self.register_buffer("perm", regular_permutations(group), persistent=False)

    def filter_bank(self) -> torch.Tensor:
        """(C_out * |G|, C_in * |G|, k, k): for output element h, h acting on the base filter."""
        w = self.weight * self.mask
        bank = torch.stack(
            [self.group.act_on_image(h, w[:, :, self.perm[h]]) for h in self.group.elements()]
        )  # (|G|, O, I, |G|, k, k)
        k, g = self.kernel_size, self.order
        return bank.transpose(0, 1).reshape(self.out_channels * g, self.in_channels * g, k, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_square(x, f"{self.group} group conv")
        if x.dim() != 5 or x.shape[1:3] != (self.in_channels, self.order):
            raise ValueError(
                f"{self.group} group conv expects (B, {self.in_channels}, {self.order}, H, W), got {tuple(x.shape)}"
            )
        b = x.shape[0]
        bias = None if self.bias is None else self.bias.repeat_interleave(self.order)
        out = F.conv2d(
            x.reshape(b, self.in_channels * self.order, *x.shape[-2:]),
            self.filter_bank(),
            bias,
            padding=self.kernel_size // 2,
        )
        return out.view(b, self.out_channels, self.order, *out.shape[-2:])
