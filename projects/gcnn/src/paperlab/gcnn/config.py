"""The typed hyperparameters of one G-CNN training run. Presets live in ``configs/gcnn/*.yaml``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# plain CNN, C_n G-CNNs, steerable SO(2) CNN; e2c4/e2c8: the peer, the same C_n topology built with e2cnn
# d4: rotations by 90 degrees and reflections (p4m), exact
MODELS = ("cnn", "c4", "c8", "c16", "d4", "so2", "e2c4", "e2c8")
GROUP_ORDER = {"cnn": 1, "c4": 4, "c8": 8, "c16": 16, "d4": 8, "so2": 0, "e2c4": 4, "e2c8": 8}  # |G| (0: SO(2))
DIHEDRAL = {"d4": 4}  # model -> n of D_n
DATASETS = ("shapes", "eurosat", "mnist_rot")
MATCH = ("params", "width")
PADDING = ("zeros", "reflection", "border")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class Config:
    # --- experiment ---
    model: str = "c4"  # cnn | c4 | c8 | c16 | d4 | so2 | e2c4 | e2c8 (e2cnn peer)
    dataset: str = "shapes"  # shapes (generated, offline) | eurosat | mnist_rot
    data_dir: str = (
        ""  # eurosat: folder with 2750/ or eurosat-rgb.tar.gz or a prepared .npz; mnist_rot: MNIST IDX folder
    )
    seed: int = 1
    run_dir: str = "runs/gcnn/${dataset}/${model}-seed${seed}"
    device: str = "auto"  # auto: cuda when available
    threads: int = 1  # torch CPU threads (a shared machine: 1)

    # --- data ---
    split_seed: int = 0  # the fixed stratified train/val/test split (eurosat) / the MNIST-rot build (mnist_rot)
    train_upright: bool = False  # mnist_rot: train on the same digits *upright* (test stays rotated)
    train_fraction: float = 1.0  # use a stratified fraction of the training set (data efficiency)
    max_test: int = 0  # evaluate on at most this many test images (0: all)
    image_size: int = 0  # 0: the dataset's own side; else 2x2 (kxk) mean pooling down to it (64 -> 32 for EuroSAT)
    shapes_train: int = 2000  # shapes: generated training images (test: half as many)
    shapes_size: int = 32

    # --- network: 6 conv layers, widths base_width * width_mults, k x k filters, 2x2 average pooling ---
    base_width: int = 16  # the plain CNN's first-layer channels
    width_mults: list[int] = field(default_factory=lambda: [1, 1, 2, 2, 4, 4])
    match: str = "params"  # params: equivariant nets get the width whose parameter count is closest to the
    #                         plain CNN's at base_width; width: the same number of channels (fields) per layer
    kernel_size: int = 5
    pool_after: list[int] = field(default_factory=lambda: [1, 3, 5])  # 2x2 average pooling after these layers (1-based)
    so2_max_frequency: int = 2  # steerable net: fields of angular frequency 0..L, equal multiplicity

    # --- optimisation (AdamW, cosine schedule over all steps, no augmentation) ---
    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    amp: bool = True  # bf16 autocast on cuda (ignored on cpu)

    # --- evaluation ---
    test_angles: list[float] = field(default_factory=lambda: [0.0, 90.0, 180.0, 270.0, 15.0, 30.0, 45.0])
    rotate_padding: str = "zeros"  # how rotated test images fill their corners: zeros | reflection | border
    checkpoint_every: int = 200  # steps (and at the end of every epoch)
    tensorboard: bool = True

    def __post_init__(self):
        self.run_dir = re.sub(r"\$\{(\w+)\}", lambda m: str(getattr(self, m.group(1))), self.run_dir)
        for name, allowed in (
            ("model", MODELS),
            ("dataset", DATASETS),
            ("match", MATCH),
            ("rotate_padding", PADDING),
            ("device", DEVICES),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.dataset != "shapes" and not self.data_dir:
            raise ValueError(f"dataset={self.dataset} needs data_dir=<folder with its files> (see the README's Data)")
        for name in (
            "epochs",
            "batch_size",
            "base_width",
            "kernel_size",
            "checkpoint_every",
            "threads",
            "shapes_train",
            "shapes_size",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.kernel_size % 2 == 0:
            raise ValueError(
                f"kernel_size must be odd (a filter rotates about its centre pixel), got {self.kernel_size}"
            )
        if not 0.0 < self.train_fraction <= 1.0:
            raise ValueError(f"train_fraction must be in (0, 1], got {self.train_fraction}")
        if self.lr <= 0 or self.weight_decay < 0 or self.max_test < 0 or self.so2_max_frequency < 0:
            raise ValueError("lr must be > 0; weight_decay, max_test and so2_max_frequency >= 0")
        if not self.width_mults or any(w <= 0 for w in self.width_mults):
            raise ValueError(f"width_mults must be positive, got {self.width_mults}")
        if any(not 1 <= p <= len(self.width_mults) for p in self.pool_after):
            raise ValueError(f"pool_after must name layers 1..{len(self.width_mults)}, got {self.pool_after}")
        if self.image_size < 0:
            raise ValueError(f"image_size must be >= 0 (0: the dataset's own size), got {self.image_size}")
        if self.image_size and self.image_size % 2 ** len(self.pool_after):
            raise ValueError(
                f"image_size={self.image_size} breaks exact 90-degree equivariance: each of the "
                f"{len(self.pool_after)} 2x2 poolings needs an even side, so the side must be a multiple of "
                f"{2 ** len(self.pool_after)}"
            )
        if self.train_upright and self.dataset != "mnist_rot":
            raise ValueError("train_upright applies to dataset=mnist_rot only")
