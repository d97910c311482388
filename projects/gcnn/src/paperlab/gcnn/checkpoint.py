"""Save, load and resume G-CNN runs, on :mod:`paperlab.shared.checkpoint`.

    run_dir/checkpoints/last.pt   training state: model, optimiser, schedule, data order, RNGs (atomic)
    run_dir/model.pt              the final model: {"meta": ..., "model": state_dict}

``meta`` records the model (and so its group), the data shape and the resolved config; a checkpoint of
another group or image shape is refused with the reason.
"""

from __future__ import annotations

from pathlib import Path

import torch

from paperlab.gcnn.config import Config
from paperlab.gcnn.model import build_model, n_params
from paperlab.shared.checkpoint import (
    CheckpointError,
    atomic_save,
    check_resumable,
    load_checkpoint,
    restore_rng_state,
    rng_state,
)
from paperlab.shared.config import config_from_dict, to_dict

VERSION = 1
KIND = "paperlab-gcnn"
# settings a resumed run must share with its checkpoint: they shape the network, the data or the RNG
FIXED_ON_RESUME = (
    "model",
    "dataset",
    "seed",
    "split_seed",
    "train_upright",
    "train_fraction",
    "base_width",
    "width_mults",
    "match",
    "kernel_size",
    "pool_after",
    "so2_max_frequency",
    "batch_size",
    "epochs",
    "shapes_train",
    "shapes_size",
)


def make_meta(cfg: Config, model: torch.nn.Module, in_channels: int, size: int, n_classes: int) -> dict:
    return {
        "kind": KIND,
        "version": VERSION,
        "model": cfg.model,
        "dataset": cfg.dataset,
        "input_shape": [in_channels, size, size],
        "n_classes": n_classes,
        "config": to_dict(cfg),
        "n_params": n_params(model),
    }


def _check_meta(meta: dict, path: Path, model: str | None, input_shape=None) -> None:
    if meta.get("kind") != KIND:
        raise CheckpointError(f"{path} is not a paperlab-gcnn checkpoint (kind={meta.get('kind')!r})")
    if model is not None and meta["model"] != model:
        raise CheckpointError(
            f"{path} holds a {meta['model']} model (group {meta['model'].upper()}), not {model}: its weights do "
            f"not fit the {model} network; use a run of model={model} or set model={meta['model']}"
        )
    if input_shape is not None and list(input_shape) != list(meta["input_shape"]):
        raise CheckpointError(f"{path} was trained on inputs {meta['input_shape']}, not {list(input_shape)}")


def save_training(path: Path, meta: dict, model, optimizer, scheduler, loop: dict, gen: torch.Generator) -> None:
    atomic_save(
        {
            "meta": meta,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "loop": loop,
            "gen": gen.get_state(),
            "rng": rng_state(),
        },
        path,
    )


def resume_training(path: Path, cfg: Config, model, optimizer, scheduler, gen: torch.Generator) -> dict:
    ckpt = load_checkpoint(path, required=("meta", "model", "optimizer", "scheduler", "loop", "gen", "rng"), kind=KIND)
    _check_meta(ckpt["meta"], path, cfg.model)
    check_resumable(ckpt["meta"]["config"], cfg, FIXED_ON_RESUME)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    gen.set_state(ckpt["gen"])
    restore_rng_state(ckpt["rng"])
    return ckpt["loop"]


def save_model(path: Path, meta: dict, model) -> None:
    atomic_save({"meta": meta, "model": model.state_dict()}, path)


def load_model(path: str | Path, model: str | None = None, device: str = "cpu") -> tuple[torch.nn.Module, Config, dict]:
    """The trained model of ``run_dir/model.pt`` (or a checkpoint), its config and meta; ``model``
    (e.g. "c4") refuses a file of another group."""
    path = Path(path)
    ckpt = load_checkpoint(path, required=("meta", "model"), kind=KIND)
    meta = ckpt["meta"]
    _check_meta(meta, path, model)
    cfg = config_from_dict(Config, meta["config"], source=str(path))
    net = build_model(cfg, meta["input_shape"][0], meta["n_classes"])
    net.load_state_dict(ckpt["model"])
    return net.to(device).eval(), cfg, meta
