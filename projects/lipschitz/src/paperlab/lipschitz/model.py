"""The four models, one layout: per width a 3x3 conv, an activation and a 2x2 pool; flatten; a hidden
dense layer; an activation; a 10-way head.

    baseline  nn.Conv2d / nn.Linear, ReLU            (unconstrained; its bound is measured, not enforced)
    spectral  SpectralConv2d / SpectralLinear, GroupSort   (written here)
    bjorck    BjorckConv2d / BjorckLinear, GroupSort       (written here)
    torchlip  deel-torchlip SpectralConv2d / SpectralLinear / FrobeniusLinear, GroupSort2, ScaledL2NormPool2d

A "1-Lipschitz" model is a :class:`LipschitzSequential`: building one with a layer that carries no
bound (BatchNorm, a plain conv, a residual block, ...) is refused, naming the layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from paperlab.lipschitz.config import Config
from paperlab.lipschitz.layers import (
    BjorckConv2d,
    BjorckLinear,
    CenterInput,
    Flatten,
    GroupSort,
    L2NormPool2d,
    LipschitzLayer,
    ScaledAvgPool2d,
    SpectralConv2d,
    SpectralLinear,
)

N_CLASSES = 10
IMAGE_SIZE = 32


class LipschitzSequential(nn.Sequential):
    """A sequence of layers whose Lipschitz constant is the product of the layers' bounds."""

    def __init__(self, *layers: nn.Module):
        for i, layer in enumerate(layers):
            if not isinstance(layer, LipschitzLayer):
                raise ValueError(
                    f"layer {i} ({type(layer).__name__}) has no Lipschitz bound: a 1-Lipschitz model accepts only "
                    "layers with lipschitz_bound() (SpectralConv2d, BjorckLinear, GroupSort, L2NormPool2d, ...); "
                    "BatchNorm and unnormalised residual connections cannot be bounded"
                )
        super().__init__(*layers)

    def lipschitz_bound(self) -> float:
        return math.prod(layer.lipschitz_bound() for layer in self)


def build_model(cfg: Config, mean: tuple[float, ...] = (0.5, 0.5, 0.5)) -> nn.Module:
    if cfg.model == "torchlip":
        return _build_torchlip(cfg, mean)
    layers: list[nn.Module] = [CenterInput(mean)]
    c_in, size = 3, IMAGE_SIZE
    for width in cfg.widths:
        if cfg.model == "baseline":
            layers += [nn.Conv2d(c_in, width, 3, padding=1), nn.ReLU()]
        elif cfg.model == "spectral":
            layers += [SpectralConv2d(c_in, width, size, n_power=cfg.n_power), GroupSort(cfg.group_size)]
        else:
            layers += [BjorckConv2d(c_in, width, size, n_bjorck=cfg.n_bjorck), GroupSort(cfg.group_size)]
        layers.append(L2NormPool2d(2) if cfg.pool == "l2" else ScaledAvgPool2d(2))
        c_in, size = width, size // 2
    flat = c_in * size * size
    layers.append(Flatten())
    if cfg.model == "baseline":
        layers += [nn.Linear(flat, cfg.dense), nn.ReLU(), nn.Linear(cfg.dense, N_CLASSES)]
        return nn.Sequential(*layers)
    if cfg.model == "spectral":
        layers += [
            SpectralLinear(flat, cfg.dense, n_power=cfg.n_power),
            GroupSort(cfg.group_size),
            SpectralLinear(cfg.dense, N_CLASSES, n_power=cfg.n_power),
        ]
    else:
        layers += [
            BjorckLinear(flat, cfg.dense, n_bjorck=cfg.n_bjorck),
            GroupSort(cfg.group_size),
            BjorckLinear(cfg.dense, N_CLASSES, n_bjorck=cfg.n_bjorck),
        ]
    return LipschitzSequential(*layers)


class _Center(nn.Module):
    def __init__(self, mean):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))

    def forward(self, x):
        return x - self.mean


def _build_torchlip(cfg: Config, mean) -> nn.Module:
    try:
        from deel import torchlip
    except ImportError as e:  # the peer is optional
        raise ImportError("model=torchlip needs deel-torchlip: pip install 'paperlab-lipschitz[peer]'") from e
    layers: list[nn.Module] = [_Center(mean)]
    c_in, size = 3, IMAGE_SIZE
    for width in cfg.widths:
        layers += [torchlip.SpectralConv2d(c_in, width, 3, padding=1), torchlip.GroupSort2()]
        layers.append(torchlip.ScaledL2NormPool2d(2) if cfg.pool == "l2" else torchlip.ScaledAvgPool2d(2))
        c_in, size = width, size // 2
    layers += [
        nn.Flatten(),
        torchlip.SpectralLinear(c_in * size * size, cfg.dense),
        torchlip.GroupSort2(),
        torchlip.FrobeniusLinear(cfg.dense, N_CLASSES),
    ]
    return torchlip.Sequential(*layers)


def head_weight(model: nn.Module) -> torch.Tensor:
    """The effective (normalised) weight of the last linear layer, shape (10, dense)."""
    last = model[-1]
    if hasattr(last, "normalized_weight"):
        return last.normalized_weight().detach()
    return last.weight.detach()
