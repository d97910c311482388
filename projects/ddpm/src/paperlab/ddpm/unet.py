"""The noise-prediction U-Net eps_theta(x_t, t), after the architecture of Ho et al. 2020 (Appendix B).

Wide residual blocks with GroupNorm; the timestep enters every residual block through a sinusoidal
embedding (as in the Transformer) and an MLP, added as a per-channel bias; self-attention at the
feature sizes listed in ``attn_resolutions``; skip connections from every encoder block to the decoder.

Shapes: ``x_BxCxHxW`` images, ``t_B`` integer timesteps, ``emb_BxE`` timestep embeddings.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(t_B: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding: [sin(t w_k), cos(t w_k)] with w_k = max_period^(-k / (dim/2))."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t_B.device, dtype=torch.float32) / half)
    args = t_B.float()[:, None] * freqs[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(min(groups, c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2 = nn.GroupNorm(min(groups, c_out), c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x_BxCxHxW: torch.Tensor, emb_BxE: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x_BxCxHxW)))
        h = h + self.emb(F.silu(emb_BxE))[:, :, None, None]  # the timestep, in every block
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x_BxCxHxW) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over the H*W positions, with a residual connection."""

    def __init__(self, c: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(min(groups, c), c)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.proj = nn.Conv2d(c, c, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x_BxCxHxW: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x_BxCxHxW.shape
        q, k, v = self.qkv(self.norm(x_BxCxHxW)).reshape(B, 3, C, H * W).unbind(1)  # each B x C x N
        att_BxNxN = torch.softmax(torch.einsum("bcn,bcm->bnm", q, k) / math.sqrt(C), dim=-1)
        out_BxCxN = torch.einsum("bnm,bcm->bcn", att_BxNxN, v)
        return x_BxCxHxW + self.proj(out_BxCxN.reshape(B, C, H, W))


class UNet(nn.Module):
    """eps_theta(x_t, t). ``channel_mults[i]`` sets the width of level i; the feature map halves between levels."""

    def __init__(
        self,
        image_size: int,
        in_channels: int,
        base_channels: int = 32,
        channel_mults: tuple[int, ...] | list[int] = (1, 2, 2),
        num_res_blocks: int = 1,
        attn_resolutions: tuple[int, ...] | list[int] = (8,),
        dropout: float = 0.0,
        groups: int = 8,
    ):
        super().__init__()
        factor = 2 ** (len(channel_mults) - 1)
        if image_size % factor:
            raise ValueError(f"image_size {image_size} is not divisible by {factor} ({len(channel_mults)} levels)")
        self.image_size, self.in_channels = image_size, in_channels
        ch = base_channels
        emb_dim = 4 * ch
        self.base_channels = ch
        self.time_mlp = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)

        self.down = nn.ModuleList()
        skip_channels = [ch]
        c, res = ch, image_size
        for level, mult in enumerate(channel_mults):
            for _ in range(num_res_blocks):
                block = nn.ModuleList([ResBlock(c, ch * mult, emb_dim, dropout, groups)])
                c = ch * mult
                if res in attn_resolutions:
                    block.append(AttnBlock(c, groups))
                self.down.append(block)
                skip_channels.append(c)
            if level < len(channel_mults) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(c, c, 3, stride=2, padding=1)]))
                skip_channels.append(c)
                res //= 2

        self.mid = nn.ModuleList(
            [ResBlock(c, c, emb_dim, dropout, groups), AttnBlock(c, groups), ResBlock(c, c, emb_dim, dropout, groups)]
        )

        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mults))):
            for _ in range(num_res_blocks + 1):
                block = nn.ModuleList([ResBlock(c + skip_channels.pop(), ch * mult, emb_dim, dropout, groups)])
                c = ch * mult
                if res in attn_resolutions:
                    block.append(AttnBlock(c, groups))
                self.up.append(block)
            if level > 0:
                self.up.append(
                    nn.ModuleList([nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c, 3, padding=1)])
                )
                res *= 2
        assert not skip_channels
        self.norm_out = nn.GroupNorm(min(groups, c), c)
        self.conv_out = nn.Conv2d(c, in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x_BxCxHxW: torch.Tensor, t_B: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x_BxCxHxW.shape
        if (C, H, W) != (self.in_channels, self.image_size, self.image_size):
            raise ValueError(
                f"this U-Net takes {self.in_channels}x{self.image_size}x{self.image_size} images, got {C}x{H}x{W}"
            )
        if t_B.shape != (B,):
            raise ValueError(f"t must have shape ({B},), got {tuple(t_B.shape)}")
        emb = self.time_mlp(timestep_embedding(t_B, self.base_channels))
        h = self.conv_in(x_BxCxHxW)
        skips = [h]
        for block in self.down:
            if isinstance(block[0], ResBlock):
                h = block[0](h, emb)
                for extra in block[1:]:
                    h = extra(h)
            else:  # downsample
                h = block[0](h)
            skips.append(h)
        h = self.mid[2](self.mid[1](self.mid[0](h, emb)), emb)
        for block in self.up:
            if isinstance(block[0], ResBlock):
                h = block[0](torch.cat([h, skips.pop()], dim=1), emb)
                for extra in block[1:]:
                    h = extra(h)
            else:  # upsample
                h = block[1](block[0](h))
        return self.conv_out(F.silu(self.norm_out(h)))


def build_unet(cfg, in_channels: int) -> UNet:
    return UNet(
        cfg.image_size,
        in_channels,
        cfg.base_channels,
        cfg.channel_mults,
        cfg.num_res_blocks,
        cfg.attn_resolutions,
        cfg.dropout,
        cfg.groups,
    )
