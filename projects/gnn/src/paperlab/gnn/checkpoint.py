"""Save, load and resume GNN runs on :mod:`paperlab.shared.checkpoint`.

run_dir/checkpoints/last.pt   model, optimiser, epoch order and position, every RNG (atomic)
run_dir/model.pt              the final model: {"meta": ..., "model": state_dict}
"""

from __future__ import annotations

from pathlib import Path

import torch

from paperlab.gnn.config import Config
from paperlab.gnn.model import build_model, n_params
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
# settings a resumed run must share with its checkpoint: they shape the network, the data or the RNG
FIXED_ON_RESUME = (
    "model",
    "dataset",
    "seed",
    "hidden",
    "layers",
    "pool",
    "norm",
    "heads",
    "pe",
    "pe_dim",
    "gtn_channels",
    "gtn_layers",
    "gtn_gcn_layers",
    "batch_size",
    "max_train",
    "epochs",
    "lr",
    "min_lr",
    "synthetic_graphs",
)


def make_meta(cfg: Config, model: torch.nn.Module) -> dict:
    return {
        "version": VERSION,
        "kind": "paperlab.gnn",
        "model": cfg.model,
        "config": to_dict(cfg),
        "n_params": n_params(model),
    }


def save_training(path: Path, meta: dict, model, optimizer, loop: dict, gen: torch.Generator) -> None:
    atomic_save(
        {
            "meta": meta,
            "config": meta["config"],
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "loop": loop,
            "gen": gen.get_state(),
            "rng": rng_state(),
        },
        path,
    )


def resume_training(path: Path, cfg: Config, model, optimizer, gen: torch.Generator) -> dict:
    state = load_checkpoint(
        path, required=("meta", "config", "model", "optimizer", "loop", "gen", "rng"), kind="GNN training"
    )
    check_resumable(state["config"], cfg, FIXED_ON_RESUME)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    gen.set_state(state["gen"])
    restore_rng_state(state["rng"])
    return state["loop"]


def save_model(path: Path, meta: dict, model) -> None:
    atomic_save({"meta": meta, "model": model.state_dict()}, path)


def load_model(path: str | Path) -> tuple[torch.nn.Module, Config]:
    """The final model of a run (``model.pt``) and its config; a file of another kind is refused."""
    state = load_checkpoint(path, required=("meta", "model"), kind="GNN model")
    if state["meta"].get("kind") != "paperlab.gnn":
        raise CheckpointError(f"{path} is not a paperlab.gnn model (kind {state['meta'].get('kind')!r})")
    cfg = config_from_dict(Config, state["meta"]["config"], source=str(path))
    model = build_model(cfg)
    model.load_state_dict(state["model"])
    model.eval()
    return model, cfg
