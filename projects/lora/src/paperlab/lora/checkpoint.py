"""Save, resume and reload runs, on the shared checkpoint helpers.

``checkpoints/last.pt`` holds what a resume needs: the trainable tensors only (a LoRA run stores its
adapter, not the frozen base it points to), the optimizer, lr schedule, EMA, the batch generator and every
RNG. The finished model lives beside it: ``adapter.safetensors`` (LoRA) or ``unet/`` (base, full FT).
"""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from paperlab.lora.config import Config, module_patterns
from paperlab.lora.lora import inject_peft, load_adapter
from paperlab.lora.model import load_base_unet
from paperlab.shared.checkpoint import atomic_save, check_resumable, load_checkpoint
from paperlab.shared.config import config_from_dict, to_dict

ADAPTER = "adapter.safetensors"
# What a resumed run may not change (a changed rank, module set or base would silently train another model).
RESUME_KEYS = (
    "mode",
    "seed",
    "source",
    "target",
    "image_size",
    "base_model",
    "rank",
    "alpha",
    "modules",
    "lora_backend",
    "lora_init",
    "block_out_channels",
    "attn_levels",
    "layers_per_block",
    "batch_size",
    "timesteps",
)
REQUIRED = ("config", "step", "trainable", "optimizer", "lr_scheduler", "generator", "rng")


def save_run(
    path: Path,
    cfg: Config,
    step: int,
    trainable: dict[str, torch.Tensor],
    optimizer,
    lr_scheduler,
    generator: torch.Generator,
    rng: dict,
    ema=None,
) -> None:
    atomic_save(
        {
            "config": to_dict(cfg),
            "step": step,
            "trainable": trainable,
            "optimizer": optimizer.state_dict(),
            "lr_scheduler": lr_scheduler.state_dict(),
            "generator": generator.get_state(),
            "rng": rng,
            "ema": None if ema is None else ema.state_dict(),
        },
        path,
    )


def load_run(path: Path, cfg: Config) -> dict:
    """The checkpoint at ``path``, refused if ``cfg`` changed any of :data:`RESUME_KEYS`."""
    state = load_checkpoint(path, required=REQUIRED, kind="LoRA-project")
    check_resumable(state["config"], cfg, RESUME_KEYS)
    return state


def run_config(run_dir: str | Path) -> Config:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory of this project (no config.yaml)")
    return config_from_dict(Config, yaml.safe_load(path.read_text()), source=str(path))


def load_model(run_dir: str | Path):
    """The finished model of a run, unmerged: base or full FT from ``unet/``, LoRA as base + adapter."""
    from diffusers import UNet2DModel

    run_dir = Path(run_dir)
    cfg = run_config(run_dir)
    if cfg.mode in ("base", "full"):
        if not (run_dir / "unet" / "config.json").is_file():
            raise FileNotFoundError(f"{run_dir}/unet is missing: the run has not finished (continue it with --resume)")
        if cfg.mode == "base":  # as every adaptation starts from it
            return load_base_unet(str(run_dir)), cfg
        return UNet2DModel.from_pretrained(run_dir / "unet"), cfg
    if not (run_dir / ADAPTER).is_file():
        raise FileNotFoundError(f"{run_dir / ADAPTER} is missing: the run has not finished (continue it with --resume)")
    unet = load_base_unet(cfg.base_model)
    if cfg.lora_backend == "peft":
        from safetensors.torch import load_file

        unet = inject_peft(unet, module_patterns(cfg.modules), cfg.rank, cfg.alpha)
        tensors = load_file(str(run_dir / ADAPTER))
        state = {
            k.replace(".lora_A.weight", ".lora_A.default.weight").replace(".lora_B.weight", ".lora_B.default.weight"): v
            for k, v in tensors.items()
        }
        missing = set(state) - set(unet.state_dict())
        if missing:
            raise ValueError(f"{run_dir / ADAPTER} does not fit its base: {sorted(missing)[:3]}")
        unet.load_state_dict(state, strict=False)
    else:
        load_adapter(unet, run_dir / ADAPTER)
    return unet, cfg
