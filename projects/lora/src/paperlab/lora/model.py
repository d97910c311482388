"""The diffusion model: a diffusers ``UNet2DModel`` with class embeddings, its noise schedule and sampler.

Epsilon prediction (Ho et al. 2020): x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, and the loss is
|| eps - eps_theta(x_t, t, y) ||^2. Sampling uses DDIM (Song et al. 2021, eta = 0) in few steps.
A base is a folder written by ``save_pretrained`` (``<base run>/unet``); a Stable Diffusion checkpoint
(``UNet2DConditionModel`` under ``unet/``) is recognised and refused with one line: its text-to-image
loop (VAE latents, CLIP text encoder, captions) is diffusers' ``train_text_to_image_lora.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

SD_HINT = (
    "this project's loop trains UNet2DModel bases; a Stable Diffusion UNet is adapted with the same "
    "LoRA layers (inject_lora / inject_peft) inside diffusers' examples/text_to_image/"
    "train_text_to_image_lora.py on a GPU"
)


def build_unet(cfg, num_class_embeds: int):
    from diffusers import UNet2DModel

    down = tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in cfg.attn_levels)
    up = tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(cfg.attn_levels))
    return UNet2DModel(
        sample_size=cfg.image_size,
        in_channels=1,
        out_channels=1,
        layers_per_block=cfg.layers_per_block,
        block_out_channels=tuple(cfg.block_out_channels),
        down_block_types=down,
        up_block_types=up,
        norm_num_groups=cfg.norm_num_groups,
        attention_head_dim=cfg.attention_head_dim,
        num_class_embeds=num_class_embeds,
    )


def unet_dir(base_model: str) -> Path:
    """The folder holding the base's ``config.json``: ``<run>/unet``, ``<dir>/unet`` or ``<dir>`` itself."""
    root = Path(base_model)
    for d in (root / "unet", root):
        if (d / "config.json").is_file():
            return d
    if root.exists():
        raise FileNotFoundError(
            f"base_model {root} holds no unet/config.json: point it at a finished base run "
            "(make train-lora-base) or a diffusers UNet folder"
        )
    raise FileNotFoundError(
        f"base_model {base_model!r} is not a local folder, and nothing is downloaded here (offline); for a hub "
        f"model run `huggingface-cli download {base_model} --include 'unet/*'` and pass base_model=<that folder>"
    )


def load_base_unet(base_model: str):
    """A ``UNet2DModel`` from a base folder (the target label's embedding set by :func:`neutral_target_embedding`);
    a Stable Diffusion ``UNet2DConditionModel`` gives one clear line."""
    d = unet_dir(base_model)
    cls = json.loads((d / "config.json").read_text()).get("_class_name")
    if cls == "UNet2DConditionModel":
        raise ValueError(f"{d} is a text-conditioned UNet2DConditionModel (Stable Diffusion): {SD_HINT}")
    if cls != "UNet2DModel":
        raise ValueError(f"{d}/config.json describes a {cls}, not a UNet2DModel base")
    from diffusers import UNet2DModel

    unet = UNet2DModel.from_pretrained(d)
    neutral_target_embedding(unet)
    return unet


@torch.no_grad()
def neutral_target_embedding(unet) -> None:
    """Set the last class embedding (the target's label, which the base never trained: a random vector that,
    added to the timestep embedding, garbles the noise level the network sees) to the mean of the trained
    source-class embeddings: an in-distribution starting condition, as a frozen text encoder gives
    Stable Diffusion a meaningful embedding for a new prompt. Every adaptation starts from it."""
    emb = getattr(unet, "class_embedding", None)
    if emb is not None and emb.weight.shape[0] > 1:
        emb.weight[-1] = emb.weight[:-1].mean(0)


def noise_scheduler(cfg):
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=cfg.timesteps,
        beta_start=cfg.beta_start,
        beta_end=cfg.beta_end,
        beta_schedule="linear",
        prediction_type="epsilon",
        clip_sample=True,
    )


def diffusion_loss(
    unet, sched, x0: torch.Tensor, labels: torch.Tensor, noise: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """Mean || eps - eps_theta(x_t, t, y) ||^2 over the batch (Ho et al. 2020, Eq. 14)."""
    x_t = sched.add_noise(x0, noise, t)
    return F.mse_loss(unet(x_t, t, class_labels=labels).sample, noise)


@torch.no_grad()
def ddim_sample(unet, cfg, noise: torch.Tensor, labels: torch.Tensor, steps: int, batch: int = 500) -> torch.Tensor:
    """Deterministic DDIM (eta = 0) from ``noise`` in ``steps`` steps; images in [-1, 1]."""
    from diffusers import DDIMScheduler

    sched = DDIMScheduler(
        num_train_timesteps=cfg.timesteps,
        beta_start=cfg.beta_start,
        beta_end=cfg.beta_end,
        beta_schedule="linear",
        prediction_type="epsilon",
        clip_sample=True,
        set_alpha_to_one=True,
        timestep_spacing="leading",
    )
    sched.set_timesteps(steps)
    unet.eval()
    out = []
    for x, y in zip(noise.split(batch), labels.split(batch)):
        for t in sched.timesteps:
            eps = unet(x, t, class_labels=y).sample
            x = sched.step(eps, t, x, eta=0.0).prev_sample
        out.append(x.clamp(-1, 1))
    return torch.cat(out)
