"""Checkpoints: the model, its EMA, the optimiser, the step, the config and the RNG states, in one file."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from paperlab.ddpm.config import Config
from paperlab.ddpm.diffusion import GaussianDiffusion
from paperlab.ddpm.unet import UNet, build_unet
from paperlab.shared.config import ConfigError, load_config, to_dict

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


def save_checkpoint(path: str | Path, state: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # never leaves a half-written checkpoint behind


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    state = torch.load(path, map_location="cpu", weights_only=False)
    for key in ("config", "model", "ema", "step", "channels"):
        if key not in state:
            raise ValueError(f"{path} is not a paperlab DDPM checkpoint (no '{key}')")
    return state


def config_of(state: dict, overrides: list[str] | None = None) -> Config:
    """The checkpoint's config (``Config`` validates it again)."""
    import tempfile

    import yaml

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(state["config"], f)
    try:
        return load_config(Config, f.name, overrides or [])
    finally:
        os.unlink(f.name)


def check_compatible(state: dict, cfg: Config, channels: int | None = None) -> None:
    """Refuse, with the differences named, a checkpoint whose weights do not fit ``cfg`` (and ``channels``)."""
    saved = state["config"]
    now = to_dict(cfg)
    changed = [f"{k}: checkpoint {saved.get(k)!r}, now {now[k]!r}" for k in SHAPING_KEYS if saved.get(k) != now[k]]
    if channels is not None and channels != state["channels"]:
        changed.append(f"channels: checkpoint {state['channels']}, data {channels}")
    if changed:
        size = f"{saved.get('image_size')}x{saved.get('image_size')}x{state['channels']}"
        raise ConfigError(f"this checkpoint was trained on {size} images and does not fit: " + "; ".join(changed))


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
