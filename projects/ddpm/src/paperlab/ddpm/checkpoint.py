"""Checkpoints: the model, its EMA, the optimiser, the step, the config and the RNG states, in one file.

Built on :mod:`paperlab.shared.checkpoint` (atomic writes, one clear error for a missing, corrupt or
foreign file, RNG capture, resume checks). ``train.py`` saves and resumes through this module;
``sample.py`` and ``evaluate.py`` load a model through :func:`load_for_sampling` and never import
``train.py``.
"""

from __future__ import annotations

from pathlib import Path

from paperlab.ddpm.config import Config
from paperlab.ddpm.diffusion import GaussianDiffusion
from paperlab.ddpm.unet import UNet, build_unet
from paperlab.shared.checkpoint import atomic_save, check_resumable, load_checkpoint
from paperlab.shared.config import ConfigError, config_from_dict

KIND = "paperlab DDPM"
REQUIRED = ("config", "model", "ema", "step", "channels")

# settings a checkpoint's weights depend on: a resumed or loaded run must share them
SHAPING_KEYS = (
    "dataset",
    "image_size",
    "base_channels",
    "channel_mults",
    "num_res_blocks",
    "attn_resolutions",
    "groups",
    "timesteps",
    "schedule",
    "beta_start",
    "beta_end",
)
# and what a resumed run must keep besides, so that it continues the same run
RESUME_KEYS = (*SHAPING_KEYS, "seed", "batch_size", "random_flip", "max_train_images")


def save_checkpoint(path: str | Path, state: dict) -> None:
    atomic_save(state, path)  # never leaves a half-written checkpoint behind


def read_checkpoint(path: str | Path) -> dict:
    """A DDPM checkpoint; FileNotFoundError / CheckpointError (one line) for a missing, corrupt or foreign file."""
    return load_checkpoint(path, required=REQUIRED, kind=KIND)


def config_of(state: dict, overrides: list[str] | None = None) -> Config:
    """The checkpoint's config, validated again (with ``overrides`` such as ``data_dir=...``)."""
    return config_from_dict(Config, state["config"], overrides or [], source="the checkpoint's config")


def check_compatible(state: dict, cfg: Config, channels: int | None = None, resume: bool = False) -> None:
    """Refuse, with every difference named, a checkpoint whose weights do not fit ``cfg`` (and ``channels``);
    with ``resume``, also one that was another run (seed, batch, data)."""
    size = f"{state['config'].get('image_size')}x{state['config'].get('image_size')}x{state['channels']}"
    if channels is not None and channels != state["channels"]:
        raise ConfigError(
            f"this checkpoint was trained on {size} images and does not fit: "
            f"channels: checkpoint {state['channels']}, data {channels}"
        )
    check_resumable(
        state["config"],
        cfg,
        RESUME_KEYS if resume else SHAPING_KEYS,
        what=f"this checkpoint (trained on {size} images)",
    )


def load_for_sampling(
    path: str | Path, image_size: int | None = None, ema: bool = True
) -> tuple[UNet, GaussianDiffusion, Config, dict]:
    """The (EMA or raw) U-Net and the diffusion of a checkpoint, ready to sample.

    ``image_size``, when given, must be the size the checkpoint was trained on: a U-Net's weights fit
    any size its levels divide, but a model trained at one size does not generate another.
    """
    state = read_checkpoint(path)
    cfg = config_of(state)
    if image_size is not None and image_size != cfg.image_size:
        raise ConfigError(
            f"{path} was trained on {cfg.image_size}x{cfg.image_size} images; "
            f"it cannot sample or be evaluated at {image_size}x{image_size}"
        )
    model = build_unet(cfg, state["channels"])
    model.load_state_dict(state["ema"]["model"] if ema else state["model"])
    model.eval().requires_grad_(False)
    return model, GaussianDiffusion.from_config(cfg), cfg, state
