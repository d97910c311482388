"""Save, load and resume VAE / VQ-VAE runs and their code priors, on :mod:`paperlab.shared.checkpoint`.

    run_dir/checkpoints/last.pt          training state: model, optimiser, data order, every RNG (atomic)
    run_dir/model.pt                     the final model: {"meta": ..., "model": state_dict}
    run_dir/prior/checkpoints/last.pt    the code prior's training state
    run_dir/prior.pt                     the final code prior

Every reader goes through :func:`paperlab.shared.checkpoint.load_checkpoint` (one clear line for a
missing, corrupt or foreign file) and validates the saved config with
:func:`paperlab.shared.config.config_from_dict` (an unknown key is an error, never dropped silently).
"""

from __future__ import annotations

from pathlib import Path

import torch

from paperlab.shared.checkpoint import (
    CheckpointError,
    atomic_save,
    check_resumable,
    load_checkpoint,
    restore_rng_state,
    rng_state,
)
from paperlab.shared.config import config_from_dict, to_dict
from paperlab.vae.config import Config
from paperlab.vae.model import CodePrior, build_model, build_prior

VERSION = 1
# settings a resumed run must share with its checkpoint: they shape the networks, the data or the RNG
FIXED_ON_RESUME = (
    "model",
    "dataset",
    "image_size",
    "seed",
    "channels",
    "latent_dim",
    "codebook_size",
    "code_dim",
    "likelihood",
    "learn_sigma",
    "upsample",
    "binarize",
    "batch_size",
)
# the code prior: its shape, its data, its RNG and its cosine schedule (over prior_steps)
PRIOR_FIXED_ON_RESUME = (
    "seed",
    "prior_steps",
    "prior_batch_size",
    "prior_lr",
    "prior_dim",
    "prior_layers",
    "prior_heads",
    "prior_dropout",
    "prior_max_train",
)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def make_meta(cfg: Config, model: torch.nn.Module) -> dict:
    return {
        "version": VERSION,
        "model": cfg.model,
        "dataset": cfg.dataset,
        "image_shape": list(cfg.image_shape),
        "config": to_dict(cfg),
        "n_params": n_params(model),
    }


def check_image_shape(meta: dict, image_shape, what: str = "checkpoint") -> None:
    if tuple(meta["image_shape"]) != tuple(image_shape):
        c, h, w = meta["image_shape"]
        c2, h2, w2 = image_shape
        raise CheckpointError(
            f"{what} was trained on {c}x{h}x{w} images ({meta['dataset']}) and cannot be used on {c2}x{h2}x{w2} "
            "images: use the image_size (and dataset) it was trained with"
        )


def _meta(state: dict, path: Path) -> dict:
    meta = state["meta"]
    if not isinstance(meta, dict) or not {"config", "image_shape", "dataset"} <= set(meta):
        raise CheckpointError(f"{path} is not a VAE checkpoint (its 'meta' has no config or image shape)")
    return meta


def _load_state(module: torch.nn.Module, state_dict, path: Path) -> None:
    try:
        module.load_state_dict(state_dict)
    except RuntimeError as e:  # shapes or names that do not fit the config saved beside them
        raise CheckpointError(f"{path}: the weights do not fit the saved config ({str(e).splitlines()[0]})") from e


# ------------------------------------------------------------------------------------ VAE / VQ-VAE
def save_training(path: Path, meta: dict, model, optimizer, loop: dict, gen: torch.Generator) -> None:
    """``loop``: step, elapsed seconds, the epoch's permutation and the position in it."""
    state = {
        "meta": meta,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "loop": {**loop, "gen": gen.get_state()},
        "rng": rng_state(),
    }
    atomic_save(state, path)


def resume_training(path: Path, cfg: Config, model, optimizer, gen: torch.Generator) -> dict:
    """Load ``path`` into ``model``, ``optimizer``, ``gen`` and the global RNGs; returns the loop state."""
    state = load_checkpoint(path, required=("meta", "model", "optimizer", "loop", "rng"), kind="VAE training")
    meta = _meta(state, path)
    check_image_shape(meta, cfg.image_shape, what=f"checkpoint {path}")
    check_resumable(meta["config"], cfg, FIXED_ON_RESUME, what=f"checkpoint {path}")
    _load_state(model, state["model"], path)
    optimizer.load_state_dict(state["optimizer"])
    for group in optimizer.param_groups:  # lr may change on resume
        group["lr"] = cfg.lr
    gen.set_state(state["loop"]["gen"])
    restore_rng_state(state["rng"])
    return state["loop"]


def save_model(path: Path, meta: dict, model) -> None:
    atomic_save({"meta": meta, "model": model.state_dict()}, path)


def load_model(path: str | Path, overrides=(), image_shape=None):
    """(model in eval mode, its Config, meta) from ``model.pt`` or a training checkpoint.

    ``overrides`` (key=value) apply to the saved config (e.g. ``data_dir=...``); a checkpoint used on
    images of another shape (``image_shape``, or the one the overrides ask for) is refused."""
    path = Path(path)
    state = load_checkpoint(path, required=("meta", "model"), kind="VAE")
    meta = _meta(state, path)
    cfg = config_from_dict(Config, meta["config"], list(overrides), source=f"checkpoint {path}")
    check_image_shape(meta, image_shape or cfg.image_shape, what=f"checkpoint {path}")
    model = build_model(cfg, meta["image_shape"])
    _load_state(model, state["model"], path)
    model.eval()
    return model, cfg, meta


# ------------------------------------------------------------------------------------ code prior
def save_prior_training(path: Path, cfg: Config, prior, optimizer, scheduler, loop: dict, gen: torch.Generator) -> None:
    state = {
        "config": to_dict(cfg),
        "prior": prior.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "loop": {**loop, "gen": gen.get_state()},
        "rng": rng_state(),
    }
    atomic_save(state, path)


def resume_prior(path: Path, cfg: Config, prior, optimizer, scheduler, gen: torch.Generator) -> dict:
    state = load_checkpoint(
        path, required=("config", "prior", "optimizer", "scheduler", "loop", "rng"), kind="VAE code-prior training"
    )
    check_resumable(state["config"], cfg, PRIOR_FIXED_ON_RESUME, what=f"checkpoint {path}")
    _load_state(prior, state["prior"], path)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    gen.set_state(state["loop"]["gen"])
    restore_rng_state(state["rng"])
    return state["loop"]


def save_prior(path: Path, cfg: Config, prior: CodePrior) -> None:
    atomic_save(
        {
            "prior": prior.state_dict(),
            "config": to_dict(cfg),
            "codebook_size": prior.codebook_size,
            "length": prior.length,
        },
        path,
    )


def load_prior(path: str | Path, model) -> CodePrior:
    path = Path(path)
    state = load_checkpoint(path, required=("prior", "config", "codebook_size", "length"), kind="VAE code prior")
    cfg = config_from_dict(Config, state["config"], source=f"code prior {path}")
    prior = build_prior(cfg, model)
    if prior.codebook_size != state["codebook_size"] or prior.length != state["length"]:
        raise CheckpointError(f"{path} was trained for another codebook or code grid than this VQ-VAE")
    _load_state(prior, state["prior"], path)
    prior.eval()
    return prior


def load_run(run: str | Path, overrides=()):
    """(model, cfg, meta, prior or None) of a finished run directory (or its ``model.pt``)."""
    run = Path(run)
    model_path = run if run.suffix == ".pt" else run / "model.pt"
    if not model_path.is_file():
        raise FileNotFoundError(f"no model at {model_path} (has the run finished? `--resume` continues it)")
    model, cfg, meta = load_model(model_path, overrides)
    prior = None
    if cfg.model == "vqvae" and (model_path.parent / "prior.pt").is_file():
        prior = load_prior(model_path.parent / "prior.pt", model)
    return model, cfg, meta, prior
