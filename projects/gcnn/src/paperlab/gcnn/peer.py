"""The peer: the same C_n G-CNN topology built from e2cnn (Weiler & Cesa 2019; the 2-D predecessor of
escnn), for the side-by-side runs. e2cnn parametrises each R2Conv with its steerable, band-limited
basis (not pixel-wise filters rotated by interpolation), so at equal width it has fewer parameters;
``peer_width`` matches its parameter count to our plain CNN's like :func:`paperlab.gcnn.model.matched_width`.

For C4 on trivial/regular fields the two parametrisations produce the same filter banks: e2cnn's
expanded filter for rotation r is exactly rot90^r of its filter for r = 0 (tested in
``tests/test_gcnn_peer.py``), so our :class:`~paperlab.gcnn.layers.LiftingConv` and
:class:`~paperlab.gcnn.layers.GroupConv` loaded with those filters give e2cnn's outputs.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def _e2cnn():
    try:
        import warnings

        warnings.filterwarnings("ignore", module="e2cnn")
        from e2cnn import gspaces
        from e2cnn import nn as enn
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the peer needs e2cnn: pip install e2cnn==0.2.3 (the 'peer' extra)") from e
    return gspaces, enn


class E2CNN(nn.Module):
    """C_n regular-field CNN in e2cnn: R2Conv -> InnerBatchNorm -> ReLU, PointwiseAvgPool, GroupPooling."""

    def __init__(
        self, n: int, in_channels: int, n_classes: int, widths: list[int], kernel_size: int, pool_after: list[int]
    ):
        super().__init__()
        gspaces, enn = _e2cnn()
        self.enn = enn
        r2 = gspaces.Rot2dOnR2(N=n)
        self.in_type = enn.FieldType(r2, [r2.trivial_repr] * in_channels)
        blocks, t = [], self.in_type
        for i, w in enumerate(widths, start=1):
            out = enn.FieldType(r2, [r2.regular_repr] * w)
            blocks += [
                enn.R2Conv(t, out, kernel_size, padding=kernel_size // 2),
                enn.InnerBatchNorm(out),
                enn.ReLU(out, inplace=True),
            ]
            if i in pool_after:
                blocks.append(enn.PointwiseAvgPool(out, 2))
            t = out
        blocks.append(enn.GroupPooling(t))
        self.body = enn.SequentialModule(*blocks)
        self.head = nn.Linear(widths[-1], n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(self.enn.GeometricTensor(x, self.in_type)).tensor
        return self.head(y.mean(dim=(-2, -1)))


def peer_width(
    n: int,
    in_channels: int,
    n_classes: int,
    target: int,
    width_mults: list[int],
    kernel_size: int,
    pool_after: list[int],
) -> int:
    """The base width whose e2cnn model's parameter count is closest to ``target``."""

    def count(w):
        net = E2CNN(n, in_channels, n_classes, [w * m for m in width_mults], kernel_size, pool_after)
        return sum(p.numel() for p in net.parameters())

    best, w = None, 1
    while True:
        c = count(w)
        if best is None or abs(c - target) < abs(best[1] - target):
            best = (w, c)
        if c >= target:
            return best[0]
        w += 1
