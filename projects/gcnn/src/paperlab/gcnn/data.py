"""Datasets: EuroSAT RGB, rotated MNIST (built as Larochelle et al. 2007 did), and generated shapes.

All three end as :class:`Splits`: uint8 images (N, C, H, W) and int64 labels for train / val / test,
the class names and the per-channel mean/std of the training images.

* ``eurosat``: all 27,000 64x64 images of Helber et al. (2019), 10 classes, one fixed stratified split
  80/10/10 (per class, a permutation drawn with ``split_seed``). ``data_dir`` may hold, in this order
  of preference: ``eurosat-pixels.npz`` (decoded by :mod:`paperlab.gcnn.prepare`),
  ``eurosat-jpeg.npz`` (re-encoded JPEG bytes, the compact form carried to the GPU machine), the
  official folder ``2750/<Class>/*.jpg``, or ``eurosat-rgb.tar.gz`` holding that folder.
* ``mnist_rot``: the 70,000 MNIST digits (train + test IDX files) are shuffled with ``split_seed``;
  the first 12,000 are the training set, the next 50,000 the test set (Larochelle et al.'s sizes;
  their 12k include a 2k validation part, here no validation is used), each digit rotated by its own
  uniform angle in [0, 360) degrees drawn from the same generator, bilinear interpolation, zero
  fill, rounded back to uint8. ``train_upright`` keeps the training digits upright.
* ``shapes``: the offline default: the 7 tetrominoes (I O T S Z J L; S/Z and J/L are mirror
  images, so rotations alone cannot map one onto the other), drawn at a random angle and offset,
  with noise. Small, generated from ``split_seed``; what the tests and ``make train-gcnn`` use.

``image_size`` (config) downsamples any of them after loading by mean pooling over whole k x k blocks
(:func:`downsample`; EuroSAT 64 -> 32 for the CPU-scale grid), which keeps 90-degree rotations and
reflections exact; a size that is not a whole fraction of the side is refused.
"""

from __future__ import annotations

import io
import math
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from paperlab.gcnn.rotate import rotate_image
from paperlab.shared.idx import read_idx

EUROSAT_CLASSES = (
    "AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial",
    "Pasture", "PermanentCrop", "Residential", "River", "SeaLake",
)  # fmt: skip
EUROSAT_HINT = (
    "EuroSAT RGB from https://github.com/phelber/EuroSAT (EuroSAT.zip, folder 2750/<Class>/*.jpg), "
    "or the repository's data/eurosat/eurosat-rgb.tar.gz"
)
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
TETROMINOES = {
    "I": ["####"],
    "O": ["##", "##"],
    "T": ["###", ".#."],
    "S": [".##", "##."],
    "Z": ["##.", ".##"],
    "J": ["#..", "###"],
    "L": ["..#", "###"],
}


@dataclass
class Splits:
    train_x: torch.Tensor  # uint8 (N, C, H, W)
    train_y: torch.Tensor  # int64 (N,)
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...]
    mean: torch.Tensor  # (C,) of the training images, on the [0, 1] scale
    std: torch.Tensor

    @property
    def in_channels(self) -> int:
        return self.train_x.shape[1]

    @property
    def size(self) -> int:
        return self.train_x.shape[-1]

    def to(self, device) -> Splits:
        moved = {
            k: getattr(self, k).to(device)
            for k in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y", "mean", "std")
        }
        return Splits(**moved, classes=self.classes)


def to_input(
    x_uint8: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, angle_deg: float = 0.0, padding: str = "zeros"
) -> torch.Tensor:
    """uint8 images -> the network's normalised float input, rotated by ``angle_deg`` first (on [0, 1])."""
    x = x_uint8.float() / 255.0
    if angle_deg:
        x = rotate_image(x, math.radians(angle_deg), padding)
    return (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def _stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    xf = x.float() / 255.0
    return xf.mean(dim=(0, 2, 3)), xf.std(dim=(0, 2, 3)).clamp_min(1e-3)


def _fraction(x: torch.Tensor, y: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A stratified subset with ``fraction`` of each class (at least one image per class)."""
    if fraction >= 1.0:
        return x, y
    rng = np.random.default_rng(seed + 1000)
    keep = []
    for c in torch.unique(y).tolist():
        idx = np.flatnonzero(y.numpy() == c)
        keep.append(rng.permutation(idx)[: max(1, round(fraction * len(idx)))])
    keep = np.sort(np.concatenate(keep))
    return x[keep], y[keep]


def make_splits(train, val, test, classes, fraction: float = 1.0, seed: int = 0) -> Splits:
    tx, ty = _fraction(*train, fraction, seed)
    mean, std = _stats(tx)
    return Splits(tx, ty, *val, *test, tuple(classes), mean, std)


# ---------------------------------------------------------------- EuroSAT


def _decode_jpegs(blobs: list[bytes]) -> np.ndarray:
    from PIL import Image

    out = np.empty((len(blobs), 64, 64, 3), dtype=np.uint8)
    for i, b in enumerate(blobs):
        img = np.asarray(Image.open(io.BytesIO(b)).convert("RGB"))
        if img.shape != (64, 64, 3):
            raise ValueError(f"EuroSAT image {i} is {img.shape}, expected 64x64x3")
        out[i] = img
    return out


def read_eurosat_jpegs(data_dir: str | Path) -> tuple[list[bytes], np.ndarray]:
    """The JPEG bytes and labels of the official layout, from ``2750/`` or ``eurosat-rgb.tar.gz``,
    in a fixed order (class, then file name)."""
    root = Path(data_dir)
    folder = root / "2750" if (root / "2750").is_dir() else root
    if all((folder / c).is_dir() for c in EUROSAT_CLASSES):
        items = [(c, p) for c in EUROSAT_CLASSES for p in sorted((folder / c).glob("*.jpg"))]
        return [p.read_bytes() for _, p in items], np.array([EUROSAT_CLASSES.index(c) for c, _ in items])
    tar_path = root / "eurosat-rgb.tar.gz"
    if tar_path.is_file():
        found: dict[str, bytes] = {}
        with tarfile.open(tar_path) as tar:
            for member in tar:
                parts = Path(member.name).parts
                if member.isfile() and len(parts) >= 2 and parts[-2] in EUROSAT_CLASSES and parts[-1].endswith(".jpg"):
                    found[f"{parts[-2]}/{parts[-1]}"] = tar.extractfile(member).read()
        names = sorted(found, key=lambda k: (EUROSAT_CLASSES.index(k.split("/")[0]), k))
        return [found[k] for k in names], np.array([EUROSAT_CLASSES.index(k.split("/")[0]) for k in names])
    raise FileNotFoundError(
        f"no EuroSAT in {root}: expected eurosat-pixels.npz, eurosat-jpeg.npz, 2750/<Class>/*.jpg "
        f"(one folder per class: {', '.join(EUROSAT_CLASSES)}) or eurosat-rgb.tar.gz; get it from {EUROSAT_HINT}"
    )


def load_eurosat_arrays(data_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """All images (N, 64, 64, 3) uint8 and labels (N,), from the best form found in ``data_dir``."""
    root = Path(data_dir)
    if not root.exists():
        raise FileNotFoundError(f"EuroSAT folder {root} does not exist; get the data from {EUROSAT_HINT}")
    if (root / "eurosat-pixels.npz").is_file():
        with np.load(root / "eurosat-pixels.npz") as z:
            return z["images"], z["labels"]
    if (root / "eurosat-jpeg.npz").is_file():
        with np.load(root / "eurosat-jpeg.npz") as z:
            buf, offsets, labels = z["jpeg"], z["offsets"], z["labels"]
        blobs = [buf[offsets[i] : offsets[i + 1]].tobytes() for i in range(len(labels))]
        return _decode_jpegs(blobs), labels
    blobs, labels = read_eurosat_jpegs(root)
    return _decode_jpegs(blobs), labels


def stratified_split(labels: np.ndarray, seed: int, fractions=(0.8, 0.1, 0.1)) -> tuple[np.ndarray, ...]:
    """Per class, a permutation drawn with ``seed`` cut at 80% / 90%: (train, val, test) indices."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        a = round(fractions[0] * len(idx))
        b = a + round(fractions[1] * len(idx))
        for part, sl in zip(parts, (idx[:a], idx[a:b], idx[b:])):
            part.append(sl)
    return tuple(np.sort(np.concatenate(p)) for p in parts)


def load_eurosat(cfg) -> Splits:
    images, labels = load_eurosat_arrays(cfg.data_dir)
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    y = torch.from_numpy(labels.astype(np.int64))
    tr, va, te = stratified_split(labels, cfg.split_seed)
    return make_splits((x[tr], y[tr]), (x[va], y[va]), (x[te], y[te]), EUROSAT_CLASSES, cfg.train_fraction, cfg.seed)


# ---------------------------------------------------------------- rotated MNIST


def _find_mnist(root: Path, name: str) -> Path:
    for cand in (
        root / f"{name}.gz",
        root / name,
        root / "MNIST" / "raw" / f"{name}.gz",
        root / "MNIST" / "raw" / name,
    ):
        if cand.is_file():
            return cand
    raise FileNotFoundError(
        f"MNIST file {name}(.gz) not found in {root} (nor in {root}/MNIST/raw); put the four IDX files "
        "(train/t10k images/labels) there, e.g. from torchvision.datasets.MNIST(download=True) on a machine online"
    )


def rotate_uint8(images: np.ndarray, angles_deg: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Rotate each (H, W) uint8 image by its own angle (bilinear, zero fill), rounded back to uint8.
    Done in float64 on the CPU so that the built dataset is the same on every machine."""
    out = np.empty_like(images)
    for start in range(0, len(images), chunk):
        block = torch.from_numpy(images[start : start + chunk].astype(np.float64))
        for i, a in enumerate(angles_deg[start : start + chunk]):
            block[i] = rotate_image(block[i], math.radians(float(a)))
        out[start : start + chunk] = block.round().clamp(0, 255).to(torch.uint8).numpy()
    return out


def build_mnist_rot(data_dir: str | Path, seed: int, n_train: int = 12000, n_test: int = 50000):
    """(train_upright, train_rot, train_y, test_rot, test_y) as numpy arrays; see the module docstring."""
    root = Path(data_dir)
    if not root.exists():
        raise FileNotFoundError(f"MNIST folder {root} does not exist; it needs the four MNIST IDX files")
    imgs = np.concatenate([read_idx(_find_mnist(root, MNIST_FILES[0])), read_idx(_find_mnist(root, MNIST_FILES[2]))])
    labels = np.concatenate([read_idx(_find_mnist(root, MNIST_FILES[1])), read_idx(_find_mnist(root, MNIST_FILES[3]))])
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(imgs))[: n_train + n_test]
    angles = rng.uniform(0.0, 360.0, size=len(order))
    upright = imgs[order]
    rotated = rotate_uint8(upright, angles)
    y = labels[order].astype(np.int64)
    return upright[:n_train], rotated[:n_train], y[:n_train], rotated[n_train:], y[n_train:]


def load_mnist_rot(cfg) -> Splits:
    root = Path(cfg.data_dir)
    cache = root / f"mnist-rot-seed{cfg.split_seed}.npz"
    if cache.is_file():
        with np.load(cache) as z:
            up, tr, ty, te, tey = (z[k] for k in ("train_upright", "train_rot", "train_y", "test_rot", "test_y"))
    else:
        up, tr, ty, te, tey = build_mnist_rot(root, cfg.split_seed)
    train = torch.from_numpy(up if cfg.train_upright else tr)[:, None]
    test = torch.from_numpy(te)[:, None]
    empty = (test[:0], torch.from_numpy(tey)[:0])
    return make_splits(
        (train, torch.from_numpy(ty)),
        empty,
        (test, torch.from_numpy(tey)),
        [str(d) for d in range(10)],
        cfg.train_fraction,
        cfg.seed,
    )


# ---------------------------------------------------------------- generated shapes (offline default)


def make_shapes(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images of the 7 tetrominoes at uniform random angles and offsets, uint8 (n, 1, size, size)."""
    rng = np.random.default_rng(seed)
    cell = max(2, size // 7)
    canvas = np.zeros((len(TETROMINOES), size, size), dtype=np.float64)
    for c, rows in enumerate(TETROMINOES.values()):
        h, w = len(rows) * cell, len(rows[0]) * cell
        top, left = (size - h) // 2, (size - w) // 2
        for i, row in enumerate(rows):
            for j, ch in enumerate(row):
                if ch == "#":
                    canvas[c, top + i * cell : top + (i + 1) * cell, left + j * cell : left + (j + 1) * cell] = 1.0
    labels = rng.integers(0, len(TETROMINOES), size=n)
    angles = rng.uniform(0, 2 * math.pi, size=n)
    shifts = rng.integers(-2, 3, size=(n, 2))
    imgs = torch.from_numpy(canvas[labels])
    for i in range(n):
        imgs[i] = torch.roll(rotate_image(imgs[i], float(angles[i])), tuple(int(s) for s in shifts[i]), dims=(0, 1))
    imgs = imgs + 0.1 * torch.from_numpy(rng.standard_normal(imgs.shape))
    return (imgs.clamp(0, 1) * 255).round().to(torch.uint8)[:, None], torch.from_numpy(labels.astype(np.int64))


def load_shapes(cfg) -> Splits:
    x, y = make_shapes(cfg.shapes_train + cfg.shapes_train // 2, cfg.shapes_size, cfg.split_seed)
    n = cfg.shapes_train
    return make_splits(
        (x[:n], y[:n]), (x[n:n], y[n:n]), (x[n:], y[n:]), tuple(TETROMINOES), cfg.train_fraction, cfg.seed
    )


def downsample(x_uint8: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    """Mean pooling of (N, C, S, S) uint8 images over k x k blocks (k = S / size), rounded back to uint8.
    The blocks of a square image whose side k divides are mapped onto blocks by a 90-degree rotation
    (and by a reflection), and a block mean ignores the order of its pixels, so this commutes exactly
    with the C4 and D4 actions; sizes that k does not divide are refused."""
    side = x_uint8.shape[-1]
    if x_uint8.shape[-2] != side:
        raise ValueError(f"images must be square to be downsampled, got {tuple(x_uint8.shape[-2:])}")
    if size > side or side % size:
        raise ValueError(
            f"image_size={size} must divide the images' side {side} (mean pooling by a whole factor is what keeps "
            "90-degree rotations exact); e.g. 32 or 16 for 64x64 EuroSAT"
        )
    k = side // size
    if k == 1:
        return x_uint8
    out = torch.empty((*x_uint8.shape[:-2], size, size), dtype=torch.uint8)
    for i in range(0, len(x_uint8), chunk):
        pooled = F.avg_pool2d(x_uint8[i : i + chunk].float(), k)
        out[i : i + chunk] = pooled.round().clamp(0, 255).to(torch.uint8)
    return out


def resize_splits(data: Splits, size: int) -> Splits:
    """The same splits with every image downsampled to ``size`` (:func:`downsample`); new channel statistics."""
    tx, vx, ex = (downsample(x, size) for x in (data.train_x, data.val_x, data.test_x))
    mean, std = _stats(tx)
    return Splits(tx, data.train_y, vx, data.val_y, ex, data.test_y, data.classes, mean, std)


def load_data(cfg) -> Splits:
    loaders = {"eurosat": load_eurosat, "mnist_rot": load_mnist_rot, "shapes": load_shapes}
    data = loaders[cfg.dataset](cfg)
    if cfg.image_size and cfg.image_size != data.size:
        data = resize_splits(data, cfg.image_size)
    if cfg.max_test and len(data.test_y) > cfg.max_test:
        keep = torch.from_numpy(np.random.default_rng(cfg.split_seed + 7).permutation(len(data.test_y))[: cfg.max_test])
        keep = keep.sort().values
        data.test_x, data.test_y = data.test_x[keep], data.test_y[keep]
    return data
