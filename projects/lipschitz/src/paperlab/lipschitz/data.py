"""CIFAR-10 (the JPEG copy or torchvision's python batches) decoded once into uint8 tensors, and a
generated offline dataset of the same shape for tests and a fresh clone.

Images stay in [0, 1] without division by the std: the l2 radii (36/255, ...) are in pixel units,
and the networks subtract the mean as their first (1-Lipschitz) layer."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch

from paperlab.shared.checkpoint import atomic_save

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
HOW_TO_GET = (
    "put cifar10-jpg.tar.gz (train/<class>/*.jpg, test/<class>/*.jpg) or torchvision's cifar-10-batches-py/ "
    "(torchvision.datasets.CIFAR10(root, download=True) on a machine with internet) into data_dir"
)


class Split:
    """uint8 images (N, 3, 32, 32) and int64 labels (N,)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        assert images.dtype == torch.uint8 and images.shape[1:] == (3, 32, 32), images.shape
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[idx].float() / 255.0, self.labels[idx]


def synthetic(n_train: int = 2000, n_test: int = 500, seed: int = 0) -> tuple[Split, Split, tuple[float, ...]]:
    """10 classes, each a fixed smooth colour pattern, plus pixel noise: learnable in seconds."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(10, 3, 4, 4, generator=g)
    protos = torch.nn.functional.interpolate(low, size=32, mode="bilinear", align_corners=False)

    def make(n: int) -> Split:
        y = torch.randint(0, 10, (n,), generator=g)
        x = 0.5 * protos[y] + 0.25 + 0.15 * torch.randn(n, 3, 32, 32, generator=g)
        return Split((x.clamp(0, 1) * 255).round().to(torch.uint8), y)

    return make(n_train), make(n_test), (0.5, 0.5, 0.5)


def _decode_jpg_tar(path: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    from PIL import Image

    xs: dict[str, list] = {"train": [], "test": []}
    ys: dict[str, list] = {"train": [], "test": []}
    with tarfile.open(path) as tf:
        for m in tf:
            if not (m.isfile() and m.name.endswith(".jpg")):
                continue
            split, cls, _ = m.name.split("/")[-3:]
            img = Image.open(io.BytesIO(tf.extractfile(m).read())).convert("RGB")
            xs[split].append(np.asarray(img))
            ys[split].append(CLASSES.index(cls))
    out = {}
    for split in ("train", "test"):
        if not xs[split]:
            raise FileNotFoundError(f"{path} holds no {split}/<class>/*.jpg images; {HOW_TO_GET}")
        x = torch.from_numpy(np.stack(xs[split])).permute(0, 3, 1, 2).contiguous()
        out[split] = (x, torch.tensor(ys[split], dtype=torch.int64))
    return out


def _read_python_batches(folder: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    def read(names):
        xs, ys = [], []
        for name in names:
            f = folder / name
            if not f.is_file():
                raise FileNotFoundError(f"missing CIFAR-10 file {f}; {HOW_TO_GET}")
            with open(f, "rb") as fh:
                d = pickle.load(fh, encoding="latin1")
            xs.append(np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.extend(d["labels"])
        return torch.from_numpy(np.concatenate(xs)), torch.tensor(ys, dtype=torch.int64)

    return {"train": read([f"data_batch_{i}" for i in range(1, 6)]), "test": read(["test_batch"])}


def cifar10(data_dir: str, cache_dir: str) -> tuple[Split, Split, tuple[float, ...]]:
    """Decoded once to ``cache_dir/cifar10-<source>.pt`` (uint8, ~180 MB), then loaded in a second."""
    root = Path(data_dir)
    tar, batches = root / "cifar10-jpg.tar.gz", root / "cifar-10-batches-py"
    if tar.is_file():
        source, reader = "jpg", lambda: _decode_jpg_tar(tar)
    elif batches.is_dir():
        source, reader = "python", lambda: _read_python_batches(batches)
    else:
        raise FileNotFoundError(f"no CIFAR-10 in {root} (looked for {tar.name} and {batches.name}/); {HOW_TO_GET}")
    cache = Path(cache_dir) / f"cifar10-{source}.pt"
    if cache.is_file():
        d = torch.load(cache)
    else:
        d = reader()
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_save(d, cache)
    # the files are sorted by class: a fixed shuffle makes "the first n test images" a uniform sample
    order = torch.randperm(len(d["test"][1]), generator=torch.Generator().manual_seed(0))
    test = Split(d["test"][0][order], d["test"][1][order])
    return Split(*d["train"]), test, CIFAR_MEAN


def load(cfg) -> tuple[Split, Split, tuple[float, ...]]:
    if cfg.dataset == "synthetic":
        train, test, mean = synthetic()
    else:
        train, test, mean = cifar10(cfg.data_dir, cfg.cache_dir)
    if cfg.train_subset:
        train = Split(train.images[: cfg.train_subset], train.labels[: cfg.train_subset])
    return train, test, mean
