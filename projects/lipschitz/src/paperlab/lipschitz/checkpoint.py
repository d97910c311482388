"""Save, load and resume runs, on :mod:`paperlab.shared.checkpoint`.

run_dir/checkpoints/last.pt   training state: model (with the power-iteration vectors), optimiser, position, RNG
run_dir/model.pt              the final model: {"meta": ..., "model": state_dict}
"""

from __future__ import annotations

from pathlib import Path

import torch

from paperlab.lipschitz.config import Config
from paperlab.lipschitz.model import build_model
from paperlab.shared.checkpoint import atomic_save, check_resumable, load_checkpoint, restore_rng_state, rng_state
from paperlab.shared.config import config_from_dict, to_dict

VERSION = 1
# settings a resumed run must share with its checkpoint: they shape the network, the data or the schedule
FIXED_ON_RESUME = (
    "model",
    "dataset",
    "seed",
    "widths",
    "dense",
    "group_size",
    "pool",
    "batch_size",
    "epochs",
    "lr",
    "loss",
    "temperature",
    "offset",
    "margin",
    "alpha",
    "augment",
    "train_subset",
    "n_bjorck",
    "n_power",
)


def make_meta(cfg: Config, model: torch.nn.Module, mean) -> dict:
    return {
        "version": VERSION,
        "config": to_dict(cfg),
        "mean": list(mean),
        "n_params": sum(p.numel() for p in model.parameters()),
    }


def save_training(path: Path, meta: dict, model, optimizer, loop: dict) -> None:
    atomic_save(
        {
            "meta": meta,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "loop": loop,
            "rng": rng_state(),
        },
        path,
    )


def resume_training(path: Path, cfg: Config, model, optimizer) -> dict:
    ckpt = load_checkpoint(path, required=("meta", "model", "optimizer", "loop", "rng"), kind="lipschitz training")
    saved = config_from_dict(Config, ckpt["meta"]["config"], source=str(path))
    check_resumable(to_dict(saved), cfg, FIXED_ON_RESUME)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    restore_rng_state(ckpt["rng"])
    return ckpt["loop"]


def save_model(path: Path, meta: dict, model) -> None:
    atomic_save({"meta": meta, "model": model.state_dict()}, path)


def load_model(path: str | Path) -> tuple[torch.nn.Module, Config, dict]:
    ckpt = load_checkpoint(path, required=("meta", "model"), kind="lipschitz model")
    cfg = config_from_dict(Config, ckpt["meta"]["config"], source=str(path))
    model = build_model(cfg, tuple(ckpt["meta"]["mean"]))
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, cfg, ckpt["meta"]
