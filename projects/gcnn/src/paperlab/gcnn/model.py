"""The six classifiers compared here, all with the same topology (6 conv layers, k x k filters, 2x2
average pooling after ``pool_after``, a global average and one linear layer):

    cnn     plain conv -> BN -> ReLU                      translation equivariant only
    c4      lifting + C4 group convs, group max pool      exactly invariant to 90-degree rotations
    c8/c16  the same with C8 / C16 (interpolated filter rotations; 90-degree steps stay exact)
    d4      lifting + D4 group convs (90-degree rotations and reflections), exactly invariant to all 8
    so2     steerable SO(2) convs on fields of frequency 0..L, norm nonlinearities, invariant norms

``matched_width`` picks the base width of an equivariant net whose parameter count is closest to the
plain CNN's, so that comparisons are at (about) equal parameter count.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from paperlab.gcnn.config import DIHEDRAL, GROUP_ORDER
from paperlab.gcnn.dihedral import GroupGroupConv, GroupLiftingConv
from paperlab.gcnn.groups import DihedralGroup
from paperlab.gcnn.layers import (
    GroupBatchNorm,
    GroupConv,
    LiftingConv,
    check_square,
    group_max_pool,
    spatial_avg_pool,
)
from paperlab.gcnn.steerable import FieldBatchNorm, NormReLU, SteerableConv, invariant_features


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class PlainCNN(nn.Module):
    def __init__(self, in_channels: int, n_classes: int, widths: list[int], kernel_size: int, pool_after: list[int]):
        super().__init__()
        chans = [in_channels, *widths]
        self.convs = nn.ModuleList(
            nn.Conv2d(a, b, kernel_size, padding=kernel_size // 2) for a, b in zip(chans, widths)
        )
        self.norms = nn.ModuleList(nn.BatchNorm2d(w) for w in widths)
        self.pool_after = set(pool_after)
        self.head = nn.Linear(widths[-1], n_classes)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every layer (after its nonlinearity and pooling)."""
        out = []
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms), start=1):
            x = F.relu(norm(conv(x)))
            if i in self.pool_after:
                x = spatial_avg_pool(x)
            out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)[-1].mean(dim=(-2, -1)))


class GCNN(nn.Module):
    """C_n (or, with ``reflections``, D_n) G-CNN: lifting conv, then group convs; feature maps
    (B, C, |G|, H, W)."""

    def __init__(
        self,
        n: int,
        in_channels: int,
        n_classes: int,
        widths: list[int],
        kernel_size: int,
        pool_after: list[int],
        reflections: bool = False,
    ):
        super().__init__()
        self.n = n
        self.group = DihedralGroup(n) if reflections else None
        if reflections:
            layers = [GroupLiftingConv(self.group, in_channels, widths[0], kernel_size)]
            layers += [GroupGroupConv(self.group, a, b, kernel_size) for a, b in zip(widths[:-1], widths[1:])]
        else:
            layers = [LiftingConv(in_channels, widths[0], kernel_size, n)]
            layers += [GroupConv(a, b, kernel_size, n) for a, b in zip(widths[:-1], widths[1:])]
        self.convs = nn.ModuleList(layers)
        self.norms = nn.ModuleList(GroupBatchNorm(w) for w in widths)
        self.pool_after = set(pool_after)
        self.head = nn.Linear(widths[-1], n_classes)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        check_square(x, f"{'D' if self.group else 'C'}{self.n} G-CNN")
        out = []
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms), start=1):
            x = F.relu(norm(conv(x)))
            if i in self.pool_after:
                x = spatial_avg_pool(x)
            out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # max over the group axis (invariant to its permutation), then mean over the plane (invariant to
        # rotating or flipping a square map): a rotation- (and reflection-) invariant descriptor
        return self.head(group_max_pool(self.features(x)[-1]).mean(dim=(-2, -1)))


class SteerableCNN(nn.Module):
    """SO(2)-steerable CNN: every hidden layer holds ``width`` fields of each frequency 0..L."""

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        widths: list[int],
        kernel_size: int,
        pool_after: list[int],
        max_frequency: int,
    ):
        super().__init__()
        mults = [[in_channels]] + [[w] * (max_frequency + 1) for w in widths]
        self.mults = mults
        self.convs = nn.ModuleList(SteerableConv(a, b, kernel_size) for a, b in zip(mults[:-1], mults[1:]))
        self.norms = nn.ModuleList(FieldBatchNorm(m) for m in mults[1:])
        self.acts = nn.ModuleList(NormReLU(m) for m in mults[1:])
        self.pool_after = set(pool_after)
        self.head = nn.Linear(widths[-1] * (max_frequency + 1), n_classes)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        check_square(x, "steerable CNN")
        out = []
        for i, (conv, norm, act) in enumerate(zip(self.convs, self.norms, self.acts), start=1):
            x = act(norm(conv(x)))
            if i in self.pool_after:
                x = spatial_avg_pool(x)
            out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inv = invariant_features(self.features(x)[-1], self.mults[-1])
        return self.head(inv.mean(dim=(-2, -1)))


def build(
    model: str,
    in_channels: int,
    n_classes: int,
    base_width: int,
    width_mults: list[int],
    kernel_size: int,
    pool_after: list[int],
    max_frequency: int = 2,
) -> nn.Module:
    widths = [base_width * m for m in width_mults]
    if model == "cnn":
        return PlainCNN(in_channels, n_classes, widths, kernel_size, pool_after)
    if model == "so2":
        return SteerableCNN(in_channels, n_classes, widths, kernel_size, pool_after, max_frequency)
    if model.startswith("e2"):
        from paperlab.gcnn.peer import E2CNN  # the peer library, imported only when asked for

        return E2CNN(GROUP_ORDER[model], in_channels, n_classes, widths, kernel_size, pool_after)
    if model in DIHEDRAL:
        return GCNN(DIHEDRAL[model], in_channels, n_classes, widths, kernel_size, pool_after, reflections=True)
    if model in GROUP_ORDER:
        return GCNN(GROUP_ORDER[model], in_channels, n_classes, widths, kernel_size, pool_after)
    raise ValueError(f"unknown model {model!r}; valid: {tuple(GROUP_ORDER)}")


def matched_width(
    model: str,
    in_channels: int,
    n_classes: int,
    base_width: int,
    width_mults: list[int],
    kernel_size: int,
    pool_after: list[int],
    max_frequency: int = 2,
) -> int:
    """The base width of ``model`` whose parameter count is closest to the plain CNN's at ``base_width``."""
    args = (in_channels, n_classes)
    rest = (width_mults, kernel_size, pool_after, max_frequency)
    target = n_params(build("cnn", *args, base_width, *rest))
    if model == "cnn":
        return base_width
    lo, hi = 1, base_width  # the equivariant nets have at least as many parameters per channel
    while lo < hi:  # smallest width with at least the target
        mid = (lo + hi) // 2
        if n_params(build(model, *args, mid, *rest)) >= target:
            hi = mid
        else:
            lo = mid + 1
    if lo > 1 and abs(n_params(build(model, *args, lo - 1, *rest)) - target) <= abs(
        n_params(build(model, *args, lo, *rest)) - target
    ):
        return lo - 1
    return lo


def build_model(cfg, in_channels: int, n_classes: int) -> nn.Module:
    """The model of a config, at matched parameter count (``match=params``) or matched width."""
    rest = (cfg.width_mults, cfg.kernel_size, cfg.pool_after, cfg.so2_max_frequency)
    width = cfg.base_width
    if cfg.match == "params":
        width = matched_width(cfg.model, in_channels, n_classes, cfg.base_width, *rest)
    return build(cfg.model, in_channels, n_classes, width, *rest)
