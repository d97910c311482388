"""Image datasets as uint8 tensors (N, C, H, W), and their conversion to what the likelihood models.

    digits    scikit-learn's bundled 8x8 digits (1797), upsampled to 16x16: runs on any machine, offline
    mnist     the four IDX files (``train-images-idx3-ubyte.gz``, ...) in ``data_dir``
    olivetti  ``olivettifaces.mat`` (400 faces, 64x64) in ``data_dir``; one image per person is held out
    celeba    ``img_align_celeba/*.jpg`` (+ ``list_eval_partition.txt``) in ``data_dir``, or torchvision's
              ``data_dir/celeba/...`` layout; centre crop 148, bicubic resize to 64 (read lazily, image by
              image); or an already preprocessed 64x64 copy: a folder ``celeba64/`` of JPEGs or the archive
              ``celeba64-8k.tar.gz`` holding it (read into memory; the last 10% by file name are the test set)

A batch of uint8 images becomes the model's input in :func:`to_model_input`: binarised (Bernoulli
likelihood) or uniformly dequantised to ``(k + u) / 256`` (Gaussian likelihood, so that a density in
nats converts to a discrete 8-bit likelihood by adding ``D log 256``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from paperlab.shared.idx import read_idx
from paperlab.vae.config import Config

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
OLIVETTI_FILE = "olivettifaces.mat"
CELEBA_HELP = (
    "CelebA cannot be downloaded at run time. Get 'img_align_celeba.zip' and 'list_eval_partition.txt' from "
    "the CelebA authors (https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html, 'Align&Cropped Images'), or run "
    "torchvision.datasets.CelebA(root, download=True) on a machine with network, then unzip so that "
    "<data_dir>/img_align_celeba/000001.jpg exists (torchvision's <root>/celeba/ layout is accepted too)"
)


class DatasetError(FileNotFoundError):
    """A dataset folder that is missing, incomplete or not what it should be."""


@dataclass
class ImageSet:
    """Images of one split: in memory (uint8 tensor) or read lazily from files (CelebA)."""

    images: torch.Tensor | None = None  # uint8 (N, C, H, W)
    files: list[Path] | None = None
    size: int = 64

    def __len__(self) -> int:
        return len(self.images) if self.images is not None else len(self.files)

    def get(self, idx: torch.Tensor) -> torch.Tensor:
        """uint8 images (B, C, H, W) at the indices ``idx``."""
        if self.images is not None:
            return self.images[idx]
        return torch.stack([load_celeba_image(self.files[int(i)], self.size) for i in idx])


@dataclass
class ImageData:
    train: ImageSet
    test: ImageSet
    name: str

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train.get(torch.tensor([0])).shape[1:])


# ---------------------------------------------------------------------------------------- loaders
def _resize_u8(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    y = F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return y.round().clamp(0, 255).to(torch.uint8)


def load_digits_data(size: int = 16) -> ImageData:
    """scikit-learn's 8x8 digits (values 0..16) as 8-bit images; a fixed 1500/297 train/test split."""
    from sklearn.datasets import load_digits

    x = torch.from_numpy(load_digits().images).float().unsqueeze(1) * (255.0 / 16.0)
    x = _resize_u8(x.round().to(torch.uint8), size)
    perm = torch.from_numpy(np.random.default_rng(0).permutation(len(x)))
    x = x[perm]
    return ImageData(ImageSet(x[:1500]), ImageSet(x[1500:]), "digits")


def load_mnist_data(data_dir: str | Path, size: int = 28) -> ImageData:
    """MNIST from its IDX files (``.gz`` or uncompressed) in ``data_dir`` or ``data_dir/MNIST/raw``."""
    root = Path(data_dir)
    candidates = [root, root / "MNIST" / "raw"]
    paths, missing = {}, []
    for key, name in MNIST_FILES.items():
        found = next((d / f for d in candidates for f in (name + ".gz", name) if (d / f).is_file()), None)
        if found is None:
            missing.append(name + ".gz")
        paths[key] = found
    if missing:
        raise DatasetError(
            f"MNIST is incomplete in {root}: missing {', '.join(missing)}. Put the four IDX files "
            f"({', '.join(n + '.gz' for n in MNIST_FILES.values())}) there, e.g. from "
            "torchvision.datasets.MNIST(root, download=True) run on a machine with network (they land in "
            "root/MNIST/raw/)."
        )
    train, test = read_idx(paths["train_images"]), read_idx(paths["test_images"])
    for split, arr in (("train", train), ("test", test)):
        if arr.ndim != 3 or arr.shape[1:] != (28, 28):
            raise DatasetError(f"MNIST {split} images have shape {arr.shape}, expected (N, 28, 28)")
    to_t = lambda a: _resize_u8(torch.from_numpy(a.copy()).unsqueeze(1), size)
    return ImageData(ImageSet(to_t(train)), ImageSet(to_t(test)), "mnist")


def load_olivetti_data(data_dir: str | Path, size: int = 64) -> ImageData:
    """The 400 Olivetti faces (40 people x 10); the 10th image of each person is the test set (40)."""
    path = Path(data_dir) / OLIVETTI_FILE
    if not path.is_file():
        raise DatasetError(
            f"Olivetti faces: missing {path}. It is Sam Roweis' olivettifaces.mat (a 'faces' array of shape "
            "(4096, 400), uint8), the file scikit-learn's fetch_olivetti_faces is built from."
        )
    from scipy.io import loadmat

    mat = loadmat(path)
    if "faces" not in mat or mat["faces"].shape != (4096, 400):
        raise DatasetError(f"{path}: expected a variable 'faces' of shape (4096, 400)")
    faces = mat["faces"].T.reshape(400, 64, 64).transpose(0, 2, 1)  # column-major MATLAB images -> upright
    x = _resize_u8(torch.from_numpy(np.ascontiguousarray(faces, dtype=np.uint8)).unsqueeze(1), size)
    test = torch.arange(400) % 10 == 9
    return ImageData(ImageSet(x[~test]), ImageSet(x[test]), "olivetti")


def load_celeba_image(path: Path, size: int = 64) -> torch.Tensor:
    """CelebA's usual preprocessing: centre crop 148x148 of the 178x218 aligned image (left 15, top 35),
    bicubic resize to ``size`` (Pillow): the recipe of the 64x64 copy in ``data/celeba64``."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        left, top = (w - 148) // 2, (h - 148) // 2
        im = im.crop((left, top, left + 148, top + 148)).resize((size, size), Image.BICUBIC)
        arr = np.asarray(im, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


CELEBA64_TAR = "celeba64-8k.tar.gz"


def _decode_u8(data: bytes, size: int) -> torch.Tensor:
    """A JPEG/PNG (already cropped to a square) as a uint8 (3, size, size) tensor, bicubic-resized if needed."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.BICUBIC)
        arr = np.asarray(im, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def _split_last_tenth(images: torch.Tensor) -> ImageData:
    n_test = max(1, len(images) // 10)
    return ImageData(ImageSet(images[:-n_test]), ImageSet(images[-n_test:]), "celeba")


def load_celeba64(root: Path, size: int = 64) -> ImageData | None:
    """The preprocessed copy (centre crop 148, resize 64): ``root/celeba64/*.jpg``, ``root/*.jpg`` of square
    images, or ``root/celeba64-8k.tar.gz``; None when ``root`` holds none of these. Sorted by file name; the
    last 10% are the test set (one image per identity in the 8k copy, so train and test people differ)."""
    import tarfile

    folder = next((d for d in (root / "celeba64", root) if any(d.glob("*.jpg"))), None) if root.is_dir() else None
    if folder is not None:
        files = sorted(folder.glob("*.jpg"))
        return _split_last_tenth(torch.stack([_decode_u8(f.read_bytes(), size) for f in files]))
    tar_path = root / CELEBA64_TAR
    if not tar_path.is_file():
        return None
    with tarfile.open(tar_path, "r|gz") as tar:  # one pass in stream order (seeking a .gz is quadratic)
        raw = {m.name: tar.extractfile(m).read() for m in tar if m.isfile() and m.name.endswith(".jpg")}
    if not raw:
        raise DatasetError(f"CelebA: {tar_path} holds no .jpg files")
    images = torch.stack([_decode_u8(raw[name], size) for name in sorted(raw)])
    return _split_last_tenth(images)


def load_celeba_data(data_dir: str | Path, size: int = 64) -> ImageData:
    """CelebA's aligned images (``img_align_celeba/``; the official split when ``list_eval_partition.txt``
    is present (train 0, test 2), otherwise the last 10% of the sorted files are the test set), or the
    preprocessed 64x64 copy (:func:`load_celeba64`)."""
    root = Path(data_dir)
    base = next((d for d in (root, root / "celeba") if (d / "img_align_celeba").is_dir()), None)
    if base is None:
        small = load_celeba64(root, size)
        if small is not None:
            return small
        raise DatasetError(
            f"CelebA: missing {root / 'img_align_celeba'}/ (the folder of aligned JPEGs), and no preprocessed "
            f"64x64 copy ({root / 'celeba64'}/*.jpg or {root / CELEBA64_TAR}) either. " + CELEBA_HELP
        )
    folder = base / "img_align_celeba"
    files = sorted(folder.glob("*.jpg"))
    if not files:
        raise DatasetError(f"CelebA: {folder} holds no .jpg files (is img_align_celeba.zip unzipped?). " + CELEBA_HELP)
    partition = base / "list_eval_partition.txt"
    if partition.is_file():
        split = {}
        for line in partition.read_text().split("\n"):
            parts = line.split()
            if len(parts) == 2:
                split[parts[0]] = int(parts[1])
        missing = [f for f, s in split.items() if s in (0, 2) and not (folder / f).is_file()]
        if missing:
            raise DatasetError(
                f"CelebA: {len(missing)} images named in {partition} are missing from {folder}, "
                f"e.g. {', '.join(missing[:3])}. " + CELEBA_HELP
            )
        train = [folder / f for f, s in split.items() if s == 0]
        test = [folder / f for f, s in split.items() if s == 2]
    else:
        n_test = max(1, len(files) // 10)
        train, test = files[:-n_test], files[-n_test:]
    if not train or not test:
        raise DatasetError(f"CelebA in {base}: the split has {len(train)} train and {len(test)} test images")
    return ImageData(ImageSet(files=train, size=size), ImageSet(files=test, size=size), "celeba")


def load_data(cfg: Config) -> ImageData:
    if cfg.dataset == "digits":
        data = load_digits_data(cfg.size)
    elif cfg.dataset == "mnist":
        data = load_mnist_data(cfg.data_dir, cfg.size)
    elif cfg.dataset == "olivetti":
        data = load_olivetti_data(cfg.data_dir, cfg.size)
    else:
        data = load_celeba_data(cfg.data_dir, cfg.size)
    if data.shape != cfg.image_shape:
        raise DatasetError(f"{cfg.dataset} gave images of shape {data.shape}, expected {cfg.image_shape}")
    return data


# ------------------------------------------------------------------------------- model input
def to_model_input(x_u8: torch.Tensor, cfg: Config, generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 images -> float model input.

    Bernoulli: pixel intensities in [0, 1], binarised by sampling (``binarize``; a fixed ``generator``
    gives a fixed binarisation, used for the test set). Gaussian: ``(k + u) / 256`` with u ~ U[0, 1).
    """
    x = x_u8.float()
    if cfg.likelihood == "bernoulli":
        x = x / 255.0
        if cfg.binarize:
            x = torch.bernoulli(x, generator=generator)
        return x
    return (x + torch.rand(x.shape, generator=generator)) / 256.0


def discrete_offset_nats(cfg: Config, n_dims: int) -> float:
    """What turns a negative log-density of dequantised data into the negative log-probability of the
    8-bit image (upper bound): ``D log 256`` for the Gaussian likelihood, 0 for the Bernoulli one."""
    return n_dims * math.log(256.0) if cfg.likelihood == "gaussian" else 0.0


def fixed_test_inputs(data: ImageData, cfg: Config, max_images: int = 0, seed: int = 12345):
    """Yields (index tensor, model input) over the test set, with a fixed binarisation / dequantisation."""
    n = len(data.test) if max_images <= 0 else min(max_images, len(data.test))
    gen = torch.Generator().manual_seed(seed)
    for start in range(0, n, 500):
        idx = torch.arange(start, min(n, start + 500))
        yield idx, to_model_input(data.test.get(idx), cfg, gen)
