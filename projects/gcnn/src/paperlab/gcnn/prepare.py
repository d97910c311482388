"""Build the compact or decoded forms of the datasets once (never at training time by surprise).

    python -m paperlab.gcnn.prepare eurosat-jpeg   data/eurosat  runs/gcnn/data --quality 85
    python -m paperlab.gcnn.prepare eurosat-pixels data/eurosat  runs/gcnn/data
    python -m paperlab.gcnn.prepare mnist-rot      data/mnist    runs/gcnn/data --seed 0

``eurosat-jpeg`` re-encodes the 27,000 original JPEGs (quality ~100, 92 MB) as JPEG at ``--quality``
(PIL, 4:2:0 chroma subsampling) into one ``eurosat-jpeg.npz`` (about 38 MB at 85): small enough to
travel to a GPU machine. ``eurosat-pixels`` decodes any form into ``eurosat-pixels.npz`` (uint8,
332 MB, fast to load). ``mnist-rot`` builds rotated MNIST (:func:`paperlab.gcnn.data.build_mnist_rot`)
into ``mnist-rot-seed<seed>.npz``. A folder with these files is a valid ``data_dir``.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np

from paperlab.gcnn.data import _decode_jpegs, build_mnist_rot, load_eurosat_arrays, read_eurosat_jpegs
from paperlab.shared.checkpoint import atomic_path
from paperlab.shared.cli import run_command


def eurosat_jpeg(src: str, out: Path, quality: int) -> Path:
    from PIL import Image

    blobs, labels = read_eurosat_jpegs(src)
    encoded = []
    for b in blobs:
        buf = io.BytesIO()
        Image.open(io.BytesIO(b)).convert("RGB").save(buf, "JPEG", quality=quality)
        encoded.append(np.frombuffer(buf.getvalue(), dtype=np.uint8))
    offsets = np.concatenate([[0], np.cumsum([len(e) for e in encoded])]).astype(np.int64)
    path = out / "eurosat-jpeg.npz"
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(
                f,
                jpeg=np.concatenate(encoded),
                offsets=offsets,
                labels=labels.astype(np.int64),
                quality=np.int64(quality),
            )
    _decode_jpegs(blobs[:1])  # the source decodes
    return path


def eurosat_pixels(src: str, out: Path) -> Path:
    images, labels = load_eurosat_arrays(src)
    path = out / "eurosat-pixels.npz"
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, images=images, labels=labels.astype(np.int64))
    return path


def mnist_rot(src: str, out: Path, seed: int) -> Path:
    up, tr, ty, te, tey = build_mnist_rot(src, seed)
    path = out / f"mnist-rot-seed{seed}.npz"
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, train_upright=up, train_rot=tr, train_y=ty, test_rot=te, test_y=tey)
    return path


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("eurosat-jpeg", "eurosat-pixels", "mnist-rot"))
    parser.add_argument("src", help="folder with the source files")
    parser.add_argument("out", help="output folder (created)")
    parser.add_argument("--quality", type=int, default=85)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.what == "eurosat-jpeg":
        path = eurosat_jpeg(args.src, out, args.quality)
    elif args.what == "eurosat-pixels":
        path = eurosat_pixels(args.src, out)
    else:
        path = mnist_rot(args.src, out, args.seed)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
