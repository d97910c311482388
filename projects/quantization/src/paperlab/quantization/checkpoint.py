"""Save and resume pre-training runs, on :mod:`paperlab.shared.checkpoint`.

run_dir/tokenizer/                the BPE tokenizer (written once, at the start of a fresh run)
run_dir/checkpoints/last.pt       model, optimiser, step, every RNG (atomic; periodic and on Ctrl-C)
run_dir/model/                    the final model + tokenizer (save_pretrained): what `make quantize` reads
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from paperlab.quantization.config import Config
from paperlab.shared.checkpoint import (
    atomic_save,
    check_resumable,
    load_checkpoint,
    restore_rng_state,
    rng_state,
)
from paperlab.shared.config import to_dict

# settings a resumed run must share with its checkpoint: they shape the model, the data or the RNG stream
FIXED_ON_RESUME = (
    "seed",
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_layers",
    "num_heads",
    "num_kv_heads",
    "context",
    "batch_size",
    "val_fraction",
    "total_steps",
    "lr",
    "min_lr",
    "warmup_steps",
)


def save_training(
    path: Path, cfg: Config, step: int, model, optimizer, rng: np.random.Generator, train_time_s: float = 0.0
) -> None:
    atomic_save(
        {
            "kind": "quantization-llama",
            "config": to_dict(cfg),
            "step": step,
            "train_time_s": train_time_s,  # wall time of every session so far (a chunked run adds them up)
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": rng_state(rng),
        },
        path,
    )


def resume_training(path: Path, cfg: Config, model, optimizer, rng: np.random.Generator) -> tuple[int, float]:
    """Load ``path`` into ``model``/``optimizer``/``rng`` (and the global RNGs); return the step it reached and
    the training wall time spent before it."""
    state = load_checkpoint(path, required=("config", "step", "model", "optimizer", "rng"), kind="quantization")
    check_resumable(state["config"], cfg, FIXED_ON_RESUME)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    restore_rng_state(state["rng"], rng)
    return int(state["step"]), float(state.get("train_time_s", 0.0))


def lr_at(step: int, cfg: Config) -> float:
    """Linear warmup, then cosine decay from ``lr`` to ``min_lr`` at ``total_steps``."""
    import math

    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, cfg.total_steps - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(t, 1.0)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
