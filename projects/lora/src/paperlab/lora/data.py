"""The source and target domains as uint8 tensors (N, 1, H, W) in memory, with labels.

    digits    scikit-learn's bundled 8x8 digits 0-8 (offline, no files), resized; labels 0..8
    digits9   the same set's 9s (~180 images): the offline target, a class the base never saw
    mnist     the four IDX .gz files in source_dir; labels 0..9
    olivetti  source_dir/olivettifaces.mat (400 faces of 40 people, 64x64); images 0-7 of each person are
              the 320 training images, 8-9 the 80 test images

The target's images all carry label K = the number of source classes: the base model has K + 1 class
embeddings and never trains the last one. A missing dataset folder raises ``DatasetError`` naming the files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from paperlab.shared.idx import read_idx

MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
SOURCE_CLASSES = {"digits": 9, "mnist": 10}


class DatasetError(FileNotFoundError):
    """A dataset folder that is missing or incomplete; the message names what is missing."""


@dataclass
class Split:
    train: torch.Tensor  # uint8 (N, 1, H, W)
    train_labels: torch.Tensor  # int64 (N,)
    test: torch.Tensor
    test_labels: torch.Tensor


def to_model_range(u8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return u8.float() / 127.5 - 1.0


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> float [0, 1] (clipped)."""
    return ((x + 1) / 2).clamp(0, 1)


def resize_u8(images: torch.Tensor, size: int) -> torch.Tensor:
    """Antialiased bilinear resize of uint8 (N, C, H, W) images to size x size."""
    if images.shape[-2:] == (size, size):
        return images
    out = [
        F.interpolate(c.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        for c in images.split(4096)
    ]
    return torch.cat(out).round().clamp(0, 255).to(torch.uint8)


def _digits(size: int, keep) -> Split:
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = resize_u8(torch.from_numpy(np.round(d.images * 255.0 / 16.0).astype(np.uint8))[:, None], size)
    labels = torch.from_numpy(d.target.astype(np.int64))
    sel = keep(labels)
    imgs, labels = imgs[sel], labels[sel]
    n_test = len(imgs) // 6
    return Split(imgs[n_test:], labels[n_test:], imgs[:n_test], labels[:n_test])


def load_mnist(data_dir: str | Path, size: int) -> Split:
    root = Path(data_dir)
    missing = [n for n in MNIST_FILES if not (root / n).is_file()]
    if missing:
        raise DatasetError(
            f"MNIST: missing in {root}: {', '.join(missing)} (the four IDX .gz files of "
            "http://yann.lecun.com/exdb/mnist/ or any mirror)"
        )
    x_tr, y_tr, x_te, y_te = (read_idx(root / n) for n in MNIST_FILES)
    return Split(
        resize_u8(torch.from_numpy(x_tr.copy())[:, None], size),
        torch.from_numpy(y_tr.astype(np.int64)),
        resize_u8(torch.from_numpy(x_te.copy())[:, None], size),
        torch.from_numpy(y_te.astype(np.int64)),
    )


def load_olivetti(data_dir: str | Path, size: int, label: int) -> Split:
    path = Path(data_dir) / "olivettifaces.mat"
    if not path.is_file():
        raise DatasetError(
            f"Olivetti faces: missing {path} (Sam Roweis' olivettifaces.mat, a 4096 x 400 uint8 "
            "'faces' array; scikit-learn's fetch_olivetti_faces uses the same file)"
        )
    from scipy.io import loadmat

    faces = loadmat(path)["faces"]
    if faces.shape != (4096, 400):
        raise DatasetError(f"{path}: expected a 'faces' array of shape (4096, 400), got {faces.shape}")
    x = resize_u8(torch.from_numpy(faces.T.reshape(400, 64, 64).transpose(0, 2, 1).copy())[:, None], size)
    is_test = (torch.arange(400) % 10) >= 8
    y = torch.full((400,), label, dtype=torch.int64)
    return Split(x[~is_test], y[~is_test], x[is_test], y[is_test])


def load_source(cfg) -> Split:
    if cfg.source == "digits":
        return _digits(cfg.image_size, lambda y: y != 9)
    if cfg.source == "mnist":
        return load_mnist(cfg.source_dir, cfg.image_size)
    raise ValueError(f"unknown source {cfg.source!r}")


def load_target(cfg) -> Split:
    """The target domain; every image carries the label ``num_source_classes(cfg)``."""
    label = num_source_classes(cfg)
    if cfg.target == "digits9":
        s = _digits(cfg.image_size, lambda y: y == 9)
        return Split(s.train, torch.full_like(s.train_labels, label), s.test, torch.full_like(s.test_labels, label))
    if cfg.target == "olivetti":
        return load_olivetti(cfg.target_dir, cfg.image_size, label)
    raise ValueError(f"unknown target {cfg.target!r}")


def num_source_classes(cfg) -> int:
    return SOURCE_CLASSES[cfg.source]
