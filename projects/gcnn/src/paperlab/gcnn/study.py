"""Equivariance error of untrained layers vs rotation angle, on smooth inputs (no training, CPU, seconds):

    python -m paperlab.gcnn.study --out projects/gcnn/results/layer-equivariance.json

Two layers (lifting + one group conv for C_n; two steerable convs for SO(2)) with random 5x5
filters, either white noise or blurred by a 3x3 binomial kernel, applied to band-limited images
(sums of Gaussian blobs, 65x65, float64). The error is
    ||Phi(g . x) - g . Phi(x)|| / ||g . Phi(x)||   on the central disc,
at every angle the group contains (C_n: multiples of 360/n up to 90 degrees; SO(2): every 7.5
degrees). Means over ``--seeds`` random layers. It separates the error of the filter rotation
(interpolated for C8/C16, discretised basis for SO(2)) from that of image interpolation, which the
per-layer measurement on trained networks (``evaluate.py``, real images) mixes in.
"""

from __future__ import annotations

import argparse
import json
import math

import torch
import torch.nn.functional as F

from paperlab.gcnn.layers import GroupConv, LiftingConv
from paperlab.gcnn.rotate import rotate_image
from paperlab.gcnn.steerable import SteerableConv, rotate_fields
from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import run_command


def smooth_images(b: int, c: int, size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    out = torch.zeros(b, c, size, size, dtype=torch.float64)
    for i in range(b):
        for j in range(c):
            for _ in range(4):
                cx, cy = (torch.rand(2, generator=g) - 0.5) * 0.8
                out[i, j] += torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.03).double()
    return out


def blur_(layer) -> None:
    k = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64)
    k = (k[:, None] * k[None, :] / 16).view(1, 1, 3, 3)
    with torch.no_grad():
        w = layer.weight
        w.copy_(F.conv2d(w.reshape(-1, 1, *w.shape[-2:]), k.to(w.dtype), padding=1).reshape(w.shape))


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    c = (a.shape[-1] - 1) / 2
    yy, xx = torch.meshgrid(
        torch.arange(a.shape[-1], dtype=a.dtype), torch.arange(a.shape[-1], dtype=a.dtype), indexing="ij"
    )
    m = (((yy - c) ** 2 + (xx - c) ** 2) <= (0.4 * a.shape[-1]) ** 2).to(a.dtype)  # stay off the border
    return ((a - b) * m).norm().item() / (b * m).norm().item()


@torch.no_grad()
def cn_errors(n: int, blurred: bool, seed: int, x: torch.Tensor) -> dict[str, dict[str, float]]:
    torch.manual_seed(seed)
    lift, gconv = LiftingConv(3, 4, 5, n).double(), GroupConv(4, 4, 5, n).double()
    if blurred:
        blur_(lift)
        blur_(gconv)
    out = {"lifting": {}, "lifting+group": {}}
    y1 = lift(x)
    y2 = gconv(y1)
    for k in range(0, n // 4 + 1):
        a = 360.0 * k / n
        rad = math.radians(a)
        xr = rotate_image(x, rad)
        z1 = lift(xr)
        out["lifting"][f"{a:g}"] = rel_err(z1, torch.roll(rotate_image(y1, rad), k, dims=2))
        out["lifting+group"][f"{a:g}"] = rel_err(gconv(z1), torch.roll(rotate_image(y2, rad), k, dims=2))
    return out


@torch.no_grad()
def so2_errors(seed: int, x: torch.Tensor, angles: list[float]) -> dict[str, dict[str, float]]:
    torch.manual_seed(seed)
    mid, last = [2, 2, 2], [2, 2, 2]
    c1, c2 = SteerableConv([3], mid, 5).double(), SteerableConv(mid, last, 5).double()
    y1 = c1(x)
    y2 = c2(y1)
    out = {"layer 1": {}, "layers 1+2": {}}
    for a in angles:
        rad = math.radians(a)
        z1 = c1(rotate_image(x, rad))
        out["layer 1"][f"{a:g}"] = rel_err(z1, rotate_fields(y1, mid, rad))
        out["layers 1+2"][f"{a:g}"] = rel_err(c2(z1), rotate_fields(y2, last, rad))
    return out


def mean_dicts(ds: list[dict]) -> dict:
    if isinstance(ds[0], dict):
        return {k: mean_dicts([d[k] for d in ds]) for k in ds[0]}
    return sum(ds) / len(ds)


def run_study(seeds: int = 3) -> dict:
    x = smooth_images(2, 3, 65, seed=0)
    result = {
        "input": "2 images x 3 channels, 65x65, sums of Gaussian blobs (float64)",
        "seeds": seeds,
        "metric": "relative error on the central disc of radius 0.4 * side",
        "cn": {},
        "so2": {},
    }
    for n in (4, 8, 16):
        result["cn"][f"C{n}"] = {
            kind: mean_dicts([cn_errors(n, kind.startswith("blurred"), s, x) for s in range(seeds)])
            for kind in ("white-noise filters", "blurred filters")
        }
    angles = [7.5 * i for i in range(13)]
    result["so2"] = mean_dicts([so2_errors(s, x, angles) for s in range(seeds)])
    return result


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/gcnn/layer-equivariance.json")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    result = run_study(args.seeds)
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["so2"]["layers 1+2"]))
    print(f"wrote {args.out}")


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
