"""Image datasets as uint8 tensors (N, C, H, W) held in memory, with labels when the dataset has them.

    digits    scikit-learn's bundled 8x8 digits (offline, no files), resized to image_size
    mnist     the four IDX .gz files in data_dir (or data_dir/MNIST/raw, torchvision's layout)
    cifar10   data_dir/cifar10-jpg.tar.gz, or its extracted train/<class>/*.jpg and test/<class>/*.jpg
    olivetti  data_dir/olivettifaces.mat (400 faces, 40 people); images 0-7 of each person train, 8-9 test
    celeba    data_dir/img_align_celeba/*.jpg (or data_dir/celeba/img_align_celeba, torchvision's layout),
              centre crop 148, resized to image_size (64 in the usual preprocessing); list_eval_partition.txt
              next to it selects the official splits when present. Or the preprocessed 64x64 copy of
              data/celeba64: data_dir/celeba64/*.jpg or data_dir/celeba64-8k.tar.gz (the last 10% by file
              name are the test split), bicubic-resized to image_size

A missing or incomplete dataset folder raises ``DatasetError`` naming the missing files.
"""

from __future__ import annotations

import io
import tarfile
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
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CELEBA_HELP = (
    "get img_align_celeba.zip (202,599 aligned JPEGs) from the CelebA page "
    "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Google Drive / Baidu links) and unzip it so that "
    "data_dir/img_align_celeba/000001.jpg exists; list_eval_partition.txt next to the folder is optional"
)


class DatasetError(FileNotFoundError):
    """A dataset folder that is missing or incomplete; the message names what is missing."""


@dataclass
class ImageData:
    name: str
    train: torch.Tensor  # uint8 (N, C, H, W)
    train_labels: torch.Tensor | None
    test: torch.Tensor
    test_labels: torch.Tensor | None
    num_classes: int

    @property
    def channels(self) -> int:
        return self.train.shape[1]

    @property
    def image_size(self) -> int:
        return self.train.shape[-1]


def to_model_range(u8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return u8.float() / 127.5 - 1.0


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> float [0, 1] (clipped)."""
    return ((x + 1) / 2).clamp(0, 1)


def resize_u8(images: torch.Tensor, size: int) -> torch.Tensor:
    """Antialiased bilinear resize of uint8 (N, C, H, W) images to size x size."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = []
    for chunk in images.split(2048):
        x = F.interpolate(chunk.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out.append(x.round().clamp(0, 255).to(torch.uint8))
    return torch.cat(out)


def _missing(folder: Path, names) -> list[str]:
    return [n for n in names if not (folder / n).is_file()]


# ---------------------------------------------------------------------------------------- loaders
def load_digits_data(size: int) -> ImageData:
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = torch.from_numpy(np.round(d.images * 255.0 / 16.0).astype(np.uint8))[:, None]
    imgs = resize_u8(imgs, size)
    labels = torch.from_numpy(d.target.astype(np.int64))
    return ImageData("digits", imgs[:1500], labels[:1500], imgs[1500:], labels[1500:], 10)


def load_mnist(data_dir: str | Path, size: int) -> ImageData:
    root = Path(data_dir)
    folder = next((f for f in (root, root / "MNIST" / "raw") if not _missing(f, MNIST_FILES)), None)
    if folder is None:
        raise DatasetError(
            f"MNIST: missing in {root} (or {root / 'MNIST' / 'raw'}): " + ", ".join(_missing(root, MNIST_FILES))
        )
    x_tr, y_tr, x_te, y_te = (read_idx(folder / n) for n in MNIST_FILES)
    tr = resize_u8(torch.from_numpy(x_tr.copy())[:, None], size)
    te = resize_u8(torch.from_numpy(x_te.copy())[:, None], size)
    return ImageData(
        "mnist", tr, torch.from_numpy(y_tr.astype(np.int64)), te, torch.from_numpy(y_te.astype(np.int64)), 10
    )


def _decode_rgb(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def load_cifar10(data_dir: str | Path, size: int, max_train: int = 0) -> ImageData:
    root = Path(data_dir)
    tar = root / "cifar10-jpg.tar.gz"
    splits: dict[str, tuple[list, list]] = {"train": ([], []), "test": ([], [])}
    if tar.is_file():
        with tarfile.open(tar) as tf:
            for m in tf:
                if m.isfile() and m.name.endswith(".jpg"):
                    split, cls, _ = m.name.split("/")[-3:]
                    splits[split][0].append(_decode_rgb(tf.extractfile(m).read()))
                    splits[split][1].append(CIFAR_CLASSES.index(cls))
    else:
        missing = [f"{s}/{c}/" for s in ("train", "test") for c in CIFAR_CLASSES if not (root / s / c).is_dir()]
        if missing:
            raise DatasetError(
                f"CIFAR-10: {tar} not found, and the extracted folders are incomplete in {root}; "
                f"missing: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
            )
        for s in ("train", "test"):
            for ci, c in enumerate(CIFAR_CLASSES):
                for p in sorted((root / s / c).glob("*.jpg")):
                    splits[s][0].append(_decode_rgb(p.read_bytes()))
                    splits[s][1].append(ci)
    for s, (xs, _) in splits.items():
        if not xs:
            raise DatasetError(f"CIFAR-10: no {s} images found in {tar if tar.is_file() else root}")
    out = {}
    for s, (xs, ys) in splits.items():
        x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).contiguous()
        out[s] = (resize_u8(x, size), torch.tensor(ys, dtype=torch.int64))
    return ImageData("cifar10", *out["train"], *out["test"], 10)


def load_olivetti(data_dir: str | Path, size: int) -> ImageData:
    path = Path(data_dir) / "olivettifaces.mat"
    if not path.is_file():
        raise DatasetError(f"Olivetti faces: missing {path} (Sam Roweis' olivettifaces.mat, 4096 x 400 uint8)")
    from scipy.io import loadmat

    faces = loadmat(path)["faces"]
    if faces.shape != (4096, 400):
        raise DatasetError(f"{path}: expected a 'faces' array of shape (4096, 400), got {faces.shape}")
    x = torch.from_numpy(faces.T.reshape(400, 64, 64).transpose(0, 2, 1).copy())[:, None]  # upright
    x = resize_u8(x, size)
    y = torch.arange(400) // 10
    is_test = (torch.arange(400) % 10) >= 8
    return ImageData("olivetti", x[~is_test], y[~is_test], x[is_test], y[is_test], 40)


def _celeba_folder(root: Path) -> Path:
    for folder in (root / "img_align_celeba", root / "celeba" / "img_align_celeba"):
        if folder.is_dir():
            return folder
    raise DatasetError(
        f"CelebA: missing folder {root / 'img_align_celeba'} (or {root / 'celeba/img_align_celeba'}, or the "
        f"preprocessed copy {root / 'celeba64'}/ or {root / 'celeba64-8k.tar.gz'}); " + CELEBA_HELP
    )


def load_celeba_image(path: Path, size: int, crop: int = 148) -> np.ndarray:
    """The usual CelebA preprocessing: centre crop ``crop`` x ``crop``, then resize to ``size``."""
    from PIL import Image

    img = Image.open(path).convert("RGB")
    w, h = img.size
    left, top = (w - crop) // 2, (h - crop) // 2
    img = img.crop((left, top, left + crop, top + crop)).resize((size, size), Image.BICUBIC)
    return np.asarray(img)


CELEBA64_TAR = "celeba64-8k.tar.gz"


def _square_u8(data: bytes, size: int) -> np.ndarray:
    """An already cropped square image file (bytes), bicubic-resized to ``size`` when it is not that size."""
    from PIL import Image

    img = Image.open(io.BytesIO(data)).convert("RGB")
    if img.size != (size, size):
        img = img.resize((size, size), Image.BICUBIC)
    return np.asarray(img)


def load_celeba64(root: Path, size: int, max_train: int = 0) -> ImageData | None:
    """The preprocessed CelebA copy (centre crop 148, resize 64): ``root/celeba64/*.jpg`` or
    ``root/celeba64-8k.tar.gz``; None when ``root`` holds neither. Sorted by name, last 10% = test."""
    folder = root / "celeba64"
    if folder.is_dir() and any(folder.glob("*.jpg")):
        raw = {p.name: p.read_bytes() for p in folder.glob("*.jpg")}
    elif (root / CELEBA64_TAR).is_file():
        with tarfile.open(root / CELEBA64_TAR, "r|gz") as tar:  # one pass in stream order
            raw = {m.name: tar.extractfile(m).read() for m in tar if m.isfile() and m.name.endswith(".jpg")}
        if not raw:
            raise DatasetError(f"CelebA: {root / CELEBA64_TAR} holds no .jpg files")
    else:
        return None
    x = torch.from_numpy(np.stack([_square_u8(raw[k], size) for k in sorted(raw)])).permute(0, 3, 1, 2)
    n_test = max(1, len(x) // 10)
    train, test = x[:-n_test], x[-n_test:]
    if max_train:
        train = train[:max_train]
    return ImageData("celeba", train.contiguous(), None, test.contiguous(), None, 0)


def load_celeba(data_dir: str | Path, size: int, max_train: int = 0) -> ImageData:
    root = Path(data_dir)
    if not any((root / d).is_dir() for d in ("img_align_celeba", "celeba/img_align_celeba")):
        small = load_celeba64(root, size, max_train)
        if small is not None:
            return small
    folder = _celeba_folder(root)
    files = sorted(folder.glob("*.jpg"))
    if not files:
        raise DatasetError(f"CelebA: {folder} holds no .jpg files; " + CELEBA_HELP)
    part = folder.parent / "list_eval_partition.txt"
    if part.is_file():
        split = dict(line.split() for line in part.read_text().splitlines() if line.strip())
        missing = [n for n in split if not (folder / n).is_file()]
        if missing:
            raise DatasetError(
                f"CelebA: {len(missing)} images of {part.name} are missing from {folder}, e.g. {', '.join(missing[:3])}"
            )
        train = [folder / n for n, s in split.items() if s == "0"]
        test = [folder / n for n, s in split.items() if s == "2"]
    else:  # no partition file: the last 10% (at least one image) as the test split
        n_test = max(1, len(files) // 10)
        train, test = files[:-n_test] or files, files[-n_test:]
    if max_train:
        train = train[:max_train]
    tr = torch.from_numpy(np.stack([load_celeba_image(p, size) for p in train])).permute(0, 3, 1, 2).contiguous()
    te = torch.from_numpy(np.stack([load_celeba_image(p, size) for p in test[:10_000]])).permute(0, 3, 1, 2)
    return ImageData("celeba", tr, None, te.contiguous(), None, 0)


def load_data(cfg) -> ImageData:
    """The dataset of a config, resized to ``cfg.image_size`` and capped at ``cfg.max_train_images``."""
    if cfg.dataset == "digits":
        data = load_digits_data(cfg.image_size)
    elif cfg.dataset == "mnist":
        data = load_mnist(cfg.data_dir, cfg.image_size)
    elif cfg.dataset == "cifar10":
        data = load_cifar10(cfg.data_dir, cfg.image_size)
    elif cfg.dataset == "olivetti":
        data = load_olivetti(cfg.data_dir, cfg.image_size)
    elif cfg.dataset == "celeba":
        data = load_celeba(cfg.data_dir, cfg.image_size, cfg.max_train_images)
    else:
        raise ValueError(f"unknown dataset {cfg.dataset!r}")
    if cfg.max_train_images and len(data.train) > cfg.max_train_images:
        data.train = data.train[: cfg.max_train_images]
        if data.train_labels is not None:
            data.train_labels = data.train_labels[: cfg.max_train_images]
    return data
