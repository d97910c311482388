"""Two networks on (B, 1, n_mels, T) normalised log-mels with a (B, T) mask of real frames.

- ``cnn``: VGG-style (Simonyan & Zisserman 2015, small): per block two 3x3 conv + BatchNorm + ReLU, then
  2x2 max-pool; the last feature map is averaged over frequency and over the *real* frames (mask), then
  dropout and a linear layer.
- ``crnn``: the same blocks, then a bidirectional GRU over time and attention pooling
  (a = softmax_t(w^T h_t) over real frames, z = sum_t a_t h_t), then a linear layer.
"""

from __future__ import annotations

import torch
from torch import nn


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2, ceil_mode=True),
    )


def pooled_mask(mask: torch.Tensor, times: int) -> torch.Tensor:
    """The mask after ``times`` time-pools of 2 (ceil mode): a pooled frame is real if any input frame was."""
    for _ in range(times):
        if mask.shape[1] % 2:
            mask = torch.cat([mask, mask.new_zeros(mask.shape[0], 1)], dim=1)
        mask = mask.view(mask.shape[0], -1, 2).any(dim=2)
    return mask


class CNN(nn.Module):
    def __init__(self, n_mels: int, n_classes: int, channels=(16, 32, 64, 128), dropout: float = 0.3):
        super().__init__()
        chans = [1, *channels]
        self.blocks = nn.Sequential(*[conv_block(a, b) for a, b in zip(chans[:-1], chans[1:], strict=True)])
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(chans[-1], n_classes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.blocks(x[:, None]).mean(dim=2)  # (B, C, T')
        m = pooled_mask(mask, len(self.blocks)).to(h.dtype)[:, None, :]
        z = (h * m).sum(dim=2) / m.sum(dim=2).clamp(min=1)
        return self.head(self.dropout(z))


class CRNN(nn.Module):
    def __init__(self, n_mels: int, n_classes: int, channels=(16, 32, 64), hidden: int = 64, dropout: float = 0.3):
        super().__init__()
        chans = [1, *channels]
        self.blocks = nn.Sequential(*[conv_block(a, b) for a, b in zip(chans[:-1], chans[1:], strict=True)])
        m_out = n_mels
        for _ in channels:
            m_out = -(-m_out // 2)
        self.rnn = nn.GRU(chans[-1] * m_out, hidden, batch_first=True, bidirectional=True)
        self.attn = nn.Linear(2 * hidden, 1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden, n_classes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.blocks(x[:, None])  # (B, C, M', T')
        h = h.flatten(1, 2).transpose(1, 2)  # (B, T', C*M')
        h, _ = self.rnn(self.dropout(h))
        m = pooled_mask(mask, len(self.blocks))
        score = self.attn(h).squeeze(2).masked_fill(~m, float("-inf"))
        a = torch.softmax(score, dim=1)  # attention over the real frames only
        return self.head(self.dropout((a[:, :, None] * h).sum(dim=1)))


def build_model(cfg, n_classes: int) -> nn.Module:
    if cfg.model == "cnn":
        return CNN(cfg.n_mels, n_classes, cfg.channels, cfg.dropout)
    if cfg.model == "crnn":
        return CRNN(cfg.n_mels, n_classes, cfg.channels[:3], cfg.rnn_hidden, cfg.dropout)
    raise ValueError(f"model {cfg.model!r} is not a network (the svm baseline has no torch model)")
