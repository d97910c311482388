"""The typed hyperparameters of a VAE / VQ-VAE run. Presets live in ``configs/vae/*.yaml``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MODELS = ("vae", "ae", "vqvae")  # ae: the plain (deterministic) autoencoder, for comparison
DATASETS = ("digits", "mnist", "olivetti", "celeba")
LIKELIHOODS = ("bernoulli", "gaussian")
UPSAMPLE = ("resize", "transposed")
NATIVE_SIZE = {"digits": 16, "mnist": 28, "olivetti": 64, "celeba": 64}
NATIVE_CHANNELS = {"digits": 1, "mnist": 1, "olivetti": 1, "celeba": 3}


@dataclass
class Config:
    # --- experiment ---
    model: str = "vae"  # vae | ae (plain autoencoder, no KL) | vqvae
    dataset: str = "digits"  # digits (scikit-learn, bundled: runs offline) | mnist | olivetti | celeba
    data_dir: str = ""  # folder with the dataset's files (mnist, olivetti, celeba); unused for digits
    image_size: int = 0  # 0: the dataset's own size (digits 16 (upsampled from 8), mnist 28, faces 64)
    seed: int = 1
    run_dir: str = "runs/vae/${dataset}/${model}-seed${seed}"  # OmegaConf fills in the ${...}
    threads: int = 1  # torch CPU threads (small nets on a shared machine: 1)
    device: str = "cpu"  # cpu | cuda | auto (cuda when available): where the VAE / VQ-VAE trains

    # --- likelihood p(x|z) ---
    likelihood: str = "bernoulli"  # bernoulli (binarised images) | gaussian (fixed variance, dequantised 8-bit)
    binarize: bool = True  # bernoulli: train on dynamically binarised images, test on one fixed binarisation
    gaussian_sigma: float = 0.1  # gaussian: the standard deviation of p(x|z) on the [0, 1] pixel scale (fixed,
    #                              or the initial value when learn_sigma)
    learn_sigma: bool = False  # gaussian: learn one scalar sigma with the ELBO (its optimum: the RMS residual)

    # --- networks (one stride-2 conv per entry of `channels`; the decoder mirrors the encoder) ---
    channels: list[int] = field(default_factory=lambda: [32, 64])
    upsample: str = "resize"  # decoder x2 steps: resize (nearest + 3x3 conv) | transposed (4x4 stride-2
    #                           transposed conv: the first results; leaves a period-2^n grid, see model.Decoder)
    latent_dim: int = 16  # vae / ae: size of z
    beta: float = 1.0  # weight of the KL term; 1.0 is the plain ELBO (anything else is a beta-VAE, not the ELBO)

    # --- VQ-VAE ---
    codebook_size: int = 64  # K codes
    code_dim: int = 16  # D, size of each code vector
    commitment: float = 0.25  # beta of the commitment loss (paper: 0.25)
    codebook_init: str = "uniform"  # uniform (tiny random codes: the first results) | data (the first batch's
    #                                 encoder outputs: no collapsed start; the CelebA presets)
    dead_code_every: int = 100  # steps between dead-code resets (0: never); codes unused in that window
    #                             are moved onto random encoder outputs of the current batch

    # --- autoregressive prior over the VQ-VAE code grid (a small causal transformer) ---
    prior_steps: int = 2000
    prior_batch_size: int = 64
    prior_lr: float = 1e-3
    prior_dim: int = 64
    prior_layers: int = 2
    prior_heads: int = 4
    prior_dropout: float = 0.1
    prior_max_train: int = 0  # training images encoded for the prior (0: all)

    # --- optimisation ---
    total_steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    grad_clip: float = 0.0  # 0 disables clipping

    # --- logging, checkpoints, evaluation ---
    log_every: int = 1  # every step: the ELBO's two terms are logged at every step
    eval_every: int = 250  # steps between test-set evaluations during training (0: only at the end)
    eval_max_images: int = 2000  # test images used by the evaluations *during* training (0: all)
    checkpoint_every: int = 500

    def __post_init__(self):
        # load_config resolves ${...} through OmegaConf; this covers Config(...) built in Python
        self.run_dir = re.sub(r"\$\{(\w+)\}", lambda m: str(getattr(self, m.group(1))), self.run_dir)
        for name, allowed in (
            ("model", MODELS),
            ("dataset", DATASETS),
            ("likelihood", LIKELIHOODS),
            ("upsample", UPSAMPLE),
            ("codebook_init", ("uniform", "data")),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"device must be cpu, cuda or auto, got {self.device!r}")
        if self.dataset != "digits" and not self.data_dir:
            raise ValueError(f"dataset={self.dataset} needs data_dir=<folder with its files>")
        positive = (
            "total_steps",
            "batch_size",
            "log_every",
            "checkpoint_every",
            "threads",
            "latent_dim",
            "codebook_size",
            "code_dim",
            "prior_steps",
            "prior_batch_size",
            "prior_dim",
            "prior_layers",
            "prior_heads",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("lr", "prior_lr", "gaussian_sigma"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("eval_every", "eval_max_images", "dead_code_every", "image_size", "prior_max_train"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.beta < 0 or self.commitment < 0 or self.grad_clip < 0:
            raise ValueError("beta, commitment and grad_clip must be >= 0")
        if not self.channels or any(c <= 0 for c in self.channels):
            raise ValueError(f"channels must be a non-empty list of positive widths, got {self.channels}")
        if self.prior_dim % self.prior_heads:
            raise ValueError(f"prior_dim ({self.prior_dim}) must be divisible by prior_heads ({self.prior_heads})")
        if not 0.0 <= self.prior_dropout < 1.0:
            raise ValueError(f"prior_dropout must be in [0, 1), got {self.prior_dropout}")
        size = self.size
        if size % (2 ** len(self.channels)):
            raise ValueError(
                f"image_size {size} is not divisible by 2**len(channels) = {2 ** len(self.channels)} "
                f"(one stride-2 conv per entry of channels={self.channels})"
            )

    @property
    def size(self) -> int:
        """The side of the (square) images the networks see."""
        return self.image_size or NATIVE_SIZE[self.dataset]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (NATIVE_CHANNELS[self.dataset], self.size, self.size)

    @property
    def is_plain_elbo(self) -> bool:
        return self.model == "vae" and self.beta == 1.0
