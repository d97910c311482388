"""The typed hyperparameters of a run: a base model trained here, or an adaptation of one (LoRA or full).

Presets live in ``configs/lora/*.yaml``. One schema serves both stages so that an adaptation run records
the source, the target and the base it started from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MODES = ("base", "lora", "full")  # train a base model on the source; adapt it to the target with LoRA or fully
SOURCES = ("digits", "mnist")  # class-labelled source domains (labels 0..K-1)
TARGETS = ("digits9", "olivetti")  # the few-image target domain, given the extra label K
BACKENDS = ("paperlab", "peft")  # LoRA layers written here, or peft's
INITS = ("kaiming", "gaussian")  # how A is drawn (B is always 0)
# Named module sets (peft-style patterns: a module matches if its name equals the pattern or ends with ".pattern").
MODULE_SETS = {
    "attn": ["to_q", "to_k", "to_v", "to_out.0"],  # the diffusers LoRA recipe
    "attn+conv+time": [
        "to_q",
        "to_k",
        "to_v",
        "to_out.0",
        "conv1",
        "conv2",
        "time_emb_proj",
        "time_embedding.linear_1",
        "time_embedding.linear_2",
    ],
}


@dataclass
class Config:
    # --- experiment ---
    seed: int = 1
    run_dir: str = "runs/lora/${mode}-seed${seed}"  # ${...} filled from this config
    mode: str = "base"
    threads: int = 1  # small U-Nets on a shared CPU: one thread per process
    device: str = "cpu"  # "cpu", "cuda" or "auto" (Accelerate places the model)

    # --- data ---
    source: str = "digits"  # digits (sklearn, offline; class 9 held out) or mnist
    source_dir: str = ""
    target: str = "digits9"  # digits9 (sklearn's 9s, offline) or olivetti (320 training faces)
    target_dir: str = ""
    image_size: int = 16

    # --- base model (mode=base builds it; the others load it) ---
    base_model: str = ""  # a base run directory (holding unet/) or a diffusers UNet directory / hub id
    block_out_channels: list[int] = field(default_factory=lambda: [16, 32, 64])
    attn_levels: list[bool] = field(default_factory=lambda: [False, False, True])  # self-attention per level
    layers_per_block: int = 1
    norm_num_groups: int = 8
    attention_head_dim: int = 32

    # --- diffusion (Ho et al. 2020: T = 1000, linear betas 1e-4 .. 0.02, epsilon prediction) ---
    timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02

    # --- LoRA (mode=lora) ---
    rank: int = 4
    alpha: float = 4.0  # the update is scaled by alpha / rank
    modules: str = "attn"  # a name of MODULE_SETS, or comma-separated patterns (re:<regex> for a regex)
    lora_backend: str = "paperlab"
    lora_init: str = "kaiming"

    # --- optimisation ---
    total_steps: int = 300
    batch_size: int = 32  # the global batch: split evenly over the processes
    lr: float = 1e-3
    warmup_steps: int = 20
    weight_decay: float = 0.0
    grad_clip: float = 1.0  # 0 disables
    ema_decay: float = 0.0  # 0: no EMA; the base uses it (diffusers' EMAModel with warm-up)

    # --- logging, checkpoints, samples ---
    log_every: int = 25
    checkpoint_every: int = 100
    sample_steps: int = 20  # DDIM steps of the end-of-run sample grid
    num_samples: int = 36
    save_rank_adapters: bool = False  # every process writes its adapter (the multi-process check)

    def __post_init__(self):
        self.run_dir = re.sub(r"\$\{(\w+)\}", lambda m: str(getattr(self, m.group(1))), self.run_dir)
        for name, value, allowed in (
            ("mode", self.mode, MODES),
            ("source", self.source, SOURCES),
            ("target", self.target, TARGETS),
            ("lora_backend", self.lora_backend, BACKENDS),
            ("lora_init", self.lora_init, INITS),
            ("device", self.device, ("cpu", "cuda", "auto")),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if self.source != "digits" and not self.source_dir:
            raise ValueError(f"source={self.source} needs source_dir=<folder with its files>")
        if self.target != "digits9" and not self.target_dir:
            raise ValueError(f"target={self.target} needs target_dir=<folder with its files>")
        if self.mode != "base" and not self.base_model:
            raise ValueError(f"mode={self.mode} adapts a base model: give base_model=<base run dir or UNet dir>")
        if self.rank <= 0:
            raise ValueError(f"rank must be a positive integer, got {self.rank}")
        if self.alpha <= 0:
            raise ValueError(f"alpha must be positive, got {self.alpha}")
        for name in (
            "threads",
            "image_size",
            "layers_per_block",
            "norm_num_groups",
            "attention_head_dim",
            "timesteps",
            "total_steps",
            "batch_size",
            "log_every",
            "checkpoint_every",
            "sample_steps",
            "num_samples",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.block_out_channels or any(c <= 0 or c % self.norm_num_groups for c in self.block_out_channels):
            raise ValueError(
                f"block_out_channels must be positive multiples of norm_num_groups "
                f"({self.norm_num_groups}), got {self.block_out_channels}"
            )
        if len(self.attn_levels) != len(self.block_out_channels):
            raise ValueError(
                f"attn_levels needs one entry per level ({len(self.block_out_channels)}), got {self.attn_levels}"
            )
        factor = 2 ** (len(self.block_out_channels) - 1)
        if self.image_size % factor:
            raise ValueError(f"image_size {self.image_size} is not divisible by 2^(levels-1) = {factor}")
        if not 0.0 < self.beta_start < self.beta_end < 1.0:
            raise ValueError(f"need 0 < beta_start < beta_end < 1, got {self.beta_start}, {self.beta_end}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.sample_steps > self.timesteps:
            raise ValueError(f"sample_steps ({self.sample_steps}) cannot exceed timesteps ({self.timesteps})")
        module_patterns(self.modules)  # fails early on an empty pattern list


def module_patterns(modules: str) -> list[str]:
    """The patterns of ``modules``: a named set of :data:`MODULE_SETS` or comma-separated patterns."""
    if modules in MODULE_SETS:
        return list(MODULE_SETS[modules])
    patterns = [p.strip() for p in modules.split(",") if p.strip()]
    if not patterns:
        raise ValueError(f"modules must name a set ({', '.join(MODULE_SETS)}) or list patterns, got {modules!r}")
    return patterns
