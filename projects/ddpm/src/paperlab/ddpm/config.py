"""The typed hyperparameters of a DDPM run. Presets live in ``configs/ddpm/*.yaml``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

DATASETS = ("digits", "mnist", "cifar10", "olivetti", "celeba")
SCHEDULES = ("linear", "cosine")
SIGMAS = ("beta", "posterior")  # reverse-process variance: sigma_t^2 = beta_t or the posterior's beta~_t


@dataclass
class Config:
    # --- experiment ---
    seed: int = 1
    run_dir: str = "runs/ddpm/${dataset}-seed${seed}"  # OmegaConf fills in the ${...}
    threads: int = 1  # small U-Nets on a shared CPU: one thread
    device: str = "cpu"  # "cpu", "cuda" or "auto"

    # --- data ---
    dataset: str = "digits"  # digits (sklearn, offline), mnist, cifar10, olivetti, celeba
    data_dir: str = ""  # folder holding the dataset files (not needed for digits)
    image_size: int = 16  # images are resized to image_size x image_size
    max_train_images: int = 0  # 0: the whole training split
    random_flip: bool = False  # horizontal flips (faces, CIFAR); never for digits

    # --- diffusion (Ho et al. 2020, Sec. 4: T = 1000, beta 1e-4 .. 0.02 linear) ---
    timesteps: int = 1000
    schedule: str = "linear"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    sigma: str = "beta"  # the paper found beta and beta~ to give similar samples
    clip_denoised: bool = True  # clip the predicted x_0 to [-1, 1] while sampling (as the paper's code)

    # --- U-Net ---
    base_channels: int = 32
    channel_mults: list[int] = field(default_factory=lambda: [1, 2, 2])  # one level per entry; halve between
    num_res_blocks: int = 1
    attn_resolutions: list[int] = field(default_factory=lambda: [8])  # self-attention at these feature sizes
    dropout: float = 0.0
    groups: int = 8  # GroupNorm groups

    # --- optimisation ---
    total_steps: int = 2000
    batch_size: int = 64
    lr: float = 2e-4
    warmup_steps: int = 200  # linear lr warm-up (the paper: 5000 on CIFAR-10)
    grad_clip: float = 1.0  # 0 disables
    ema_decay: float = 0.999  # the paper: 0.9999 over 800k steps; short runs need a shorter horizon
    ema_warmup: bool = True  # decay min(ema_decay, (1 + n) / (10 + n)) so early averages are not all init

    # --- logging, checkpoints, samples ---
    log_every: int = 50
    checkpoint_every: int = 500
    sample_every: int = 0  # steps between DDIM sample grids during training (0: only at the end)
    sample_steps: int = 50  # DDIM steps of those grids
    num_samples: int = 64  # images in a sample grid

    def __post_init__(self):
        self.run_dir = re.sub(r"\$\{(\w+)\}", lambda m: str(getattr(self, m.group(1))), self.run_dir)
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.sigma not in SIGMAS:
            raise ValueError(f"sigma must be one of {SIGMAS}, got {self.sigma!r}")
        if self.dataset != "digits" and not self.data_dir:
            raise ValueError(f"dataset={self.dataset} needs data_dir=<folder with its files>")
        positive = (
            "timesteps",
            "base_channels",
            "num_res_blocks",
            "total_steps",
            "batch_size",
            "log_every",
            "checkpoint_every",
            "sample_steps",
            "num_samples",
            "threads",
            "image_size",
            "groups",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.0 < self.beta_start < self.beta_end < 1.0:
            raise ValueError(f"need 0 < beta_start < beta_end < 1, got {self.beta_start}, {self.beta_end}")
        if not self.channel_mults or any(m <= 0 for m in self.channel_mults):
            raise ValueError(f"channel_mults must be a non-empty list of positive ints, got {self.channel_mults}")
        factor = 2 ** (len(self.channel_mults) - 1)
        if self.image_size % factor:
            raise ValueError(f"image_size {self.image_size} is not divisible by 2^(len(channel_mults)-1) = {factor}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.sample_steps > self.timesteps:
            raise ValueError(f"sample_steps ({self.sample_steps}) cannot exceed timesteps ({self.timesteps})")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"device must be cpu, cuda or auto, got {self.device!r}")
