"""Exponential moving average of the weights, the model DDPM samples with (Ho et al. 2020: decay 0.9999).

    shadow <- d * shadow + (1 - d) * param,   d = min(decay, (1 + n) / (10 + n)) with warm-up, else decay

where n counts the updates so far. The warm-up keeps the first averages from being mostly the random
initialisation, which matters for runs much shorter than the 1 / (1 - decay) horizon.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float, warmup: bool = True):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay, self.warmup = decay, warmup
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.num_updates = 0

    def current_decay(self) -> float:
        if self.warmup:
            return min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        return self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.current_decay()
        for s, p in zip(self.model.parameters(), model.parameters(), strict=True):
            s.lerp_(p.detach(), 1.0 - d)  # s + (1 - d) (p - s) = d s + (1 - d) p
        for s, b in zip(self.model.buffers(), model.buffers(), strict=True):
            s.copy_(b)
        self.num_updates += 1

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "num_updates": self.num_updates, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.num_updates = int(state["num_updates"])
