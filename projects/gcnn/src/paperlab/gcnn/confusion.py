"""Which classes a trained classifier confuses, on its whole test set (a check of *what* an invariance
costs: a rotation-invariant net cannot tell a 6 from a rotated 9, a reflection-invariant one cannot
tell a digit from its mirror image, e.g. a 2 from a mirrored, rotated 5).

    python -m paperlab.gcnn.confusion runs/gcnn/cpu_full/mnist_rot_cpu_full/{cnn,c4,d4}-seed1 \
        --out projects/gcnn/results/cpu_full/confusion.json [--data-dir runs/gcnn/data]

writes {run name: {"model", "seed", "n_test", "matrix"}} with matrix[true][predicted] counts.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from paperlab.gcnn.checkpoint import load_model
from paperlab.gcnn.config import Config
from paperlab.gcnn.data import load_data, to_input
from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import run_command
from paperlab.shared.config import config_from_dict, to_dict


@torch.no_grad()
def confusion_matrix(model, x_uint8, y, mean, std, n_classes: int, batch: int = 500) -> torch.Tensor:
    """(n_classes, n_classes) int64 counts, rows = true class, columns = predicted class."""
    model.eval()
    m = torch.zeros(n_classes, n_classes, dtype=torch.int64)
    for i in range(0, len(y), batch):
        pred = model(to_input(x_uint8[i : i + batch], mean, std)).argmax(1)
        m += torch.bincount(y[i : i + batch] * n_classes + pred, minlength=n_classes**2).view(n_classes, n_classes)
    return m


def confused_pairs(matrix: list[list[int]], top: int = 3) -> list[tuple[int, int, int]]:
    """The ``top`` unordered class pairs {a, b} by the number of test images confused either way."""
    n = len(matrix)
    pairs = [(a, b, matrix[a][b] + matrix[b][a]) for a in range(n) for b in range(a + 1, n)]
    return sorted(pairs, key=lambda p: -p[2])[:top]


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run directories with a model.pt")
    parser.add_argument("--out", required=True)
    parser.add_argument("--data-dir", default=None, help="override the runs' data_dir")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    out, data, key = {}, None, None
    for run in map(Path, args.runs):
        model, cfg, meta = load_model(run / "model.pt")
        if args.data_dir:
            cfg = config_from_dict(Config, to_dict(cfg), overrides=[f"data_dir={args.data_dir}"], source=str(run))
        data_key = (cfg.dataset, cfg.data_dir, cfg.split_seed, cfg.max_test)
        if data_key != key:  # the runs of one grid share their test set: load it once
            data, key = load_data(cfg), data_key
        m = confusion_matrix(model, data.test_x, data.test_y, data.mean, data.std, meta["n_classes"])
        out[run.name] = {"model": cfg.model, "seed": cfg.seed, "n_test": len(data.test_y), "matrix": m.tolist()}
        print(f"{run.name}: error {1 - m.diag().sum().item() / m.sum().item():.4f}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(args.out), json.dumps(out) + "\n")


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
