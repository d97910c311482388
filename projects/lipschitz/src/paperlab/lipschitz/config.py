"""The typed hyperparameters of one run. Presets live in ``configs/lipschitz/*.yaml``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MODELS = ("baseline", "spectral", "bjorck", "torchlip")  # torchlip: deel-torchlip's layers (the peer)
DATASETS = ("synthetic", "cifar10")  # synthetic: generated offline images (tests, a fresh clone)
LOSSES = ("ce", "hinge", "hkr")
POOLS = ("l2", "avg")


@dataclass
class Config:
    # --- experiment ---
    model: str = "bjorck"
    dataset: str = "synthetic"
    data_dir: str = ""  # cifar10: a folder with cifar10-jpg.tar.gz, or torchvision's cifar-10-batches-py/
    cache_dir: str = "runs/lipschitz/cache"  # decoded uint8 tensors of the dataset (made once)
    seed: int = 1
    run_dir: str = "runs/lipschitz/${dataset}/${model}-seed${seed}"
    threads: int = 1

    # --- network (the same layout for every model): per width a 3x3 conv, activation, 2x2 pool;
    #     then flatten, one hidden dense layer, activation, the 10-way head ---
    widths: list[int] = field(default_factory=lambda: [16, 32, 64])
    dense: int = 128
    group_size: int = 2  # GroupSort group (2 = MaxMin; 0 = FullSort); the baseline uses ReLU
    pool: str = "l2"  # l2: l2-norm pooling | avg: scaled average pooling (2 * avgpool)
    n_power: int = 1  # power iterations per training step (persistent vector)
    n_bjorck: int = 15  # Björck iterations per training step (back-propagated through)

    # --- loss: ce (temperature, offset) | hinge (margin) | hkr (alpha * hinge - (1 - alpha) * KR) ---
    loss: str = "hkr"
    temperature: float = 10.0
    offset: float = 0.0  # ce only: CE(temperature * (f - offset * onehot(y)), y); 0 = plain CE
    margin: float = 0.5
    alpha: float = 0.98

    # --- optimisation ---
    epochs: int = 10
    batch_size: int = 256
    lr: float = 2e-3
    augment: bool = True  # random horizontal flips (an isometry: keeps the radius units)
    train_subset: int = 0  # train images used (0: all)
    time_limit_s: float = 0.0  # > 0: checkpoint and stop after the epoch that crosses it (resume later)

    # --- logging / evaluation during training ---
    log_every: int = 50
    eval_images: int = 2000  # test images for the end-of-epoch clean / certified accuracy (0: all)

    # --- final evaluation (evaluate.py) ---
    evaluate_after: bool = False  # train.py runs the evaluation when the run finishes
    radii_255: list[int] = field(default_factory=lambda: [36, 72, 108, 255])  # l2 radii in units of 1/255
    pgd_steps: int = 10
    pgd_images: int = 1000
    lower_bound_images: int = 200

    def __post_init__(self):
        self.run_dir = re.sub(r"\$\{(\w+)\}", lambda m: str(getattr(self, m.group(1))), self.run_dir)
        for name, allowed in (("model", MODELS), ("dataset", DATASETS), ("loss", LOSSES), ("pool", POOLS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.dataset == "cifar10" and not self.data_dir:
            raise ValueError("dataset=cifar10 needs data_dir=<folder with cifar10-jpg.tar.gz or cifar-10-batches-py/>")
        for name in ("epochs", "batch_size", "threads", "dense", "n_power", "n_bjorck", "log_every", "pgd_steps"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("train_subset", "eval_images", "pgd_images", "lower_bound_images", "time_limit_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("lr", "temperature", "margin"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.offset < 0:
            raise ValueError(f"offset must be >= 0, got {self.offset}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if not self.widths or any(w <= 0 for w in self.widths) or len(self.widths) > 5:
            raise ValueError(f"widths must be 1..5 positive channel counts, got {self.widths}")
        if any(r <= 0 for r in self.radii_255):
            raise ValueError(f"radii_255 must be > 0 (radius r/255 in l2), got {self.radii_255}")
        g = self.group_size
        if g < 0 or (g > 0 and (any(w % g for w in self.widths) or self.dense % g)):
            raise ValueError(f"group_size={g} must divide every width {self.widths} and dense={self.dense}")
