"""IDX files, the format of MNIST: read and write arrays of unsigned bytes, gzip or plain.

An IDX file is a 4-byte magic number ``0x00 0x00 <type> <ndim>`` (type 0x08 = unsigned byte), then
``ndim`` big-endian uint32 sizes, then the values in C order. MNIST's images are ``0x00000803``
(N, 28, 28) and its labels ``0x00000801`` (N,).
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np


def read_idx(path: str | Path) -> np.ndarray:
    """The uint8 array in an IDX file (``.gz`` is decompressed); a bad or truncated file is refused."""
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    if raw[2] != 0x08:
        raise ValueError(f"{path}: IDX type {raw[2]:#04x} is not unsigned bytes (0x08)")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path} is truncated inside its header")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: the header says shape {tuple(dims)}, the file holds {data.size} values")
    return data.reshape(dims)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write integer values in [0, 255] as an IDX file, gzip-compressed when ``path`` ends in ``.gz``."""
    a = np.asarray(array)
    if a.size and (a.min() < 0 or a.max() > 255):
        raise ValueError(f"IDX (unsigned bytes) holds values 0-255, got [{a.min()}, {a.max()}]")
    a = np.ascontiguousarray(a, dtype=np.uint8)
    raw = bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()
    Path(path).write_bytes(gzip.compress(raw) if str(path).endswith(".gz") else raw)
