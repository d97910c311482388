"""Copy the small files of evaluated runs into ``projects/lora/results`` and draw the sample grids.

    python -m paperlab.lora.publish runs/lora/mnist --results projects/lora/results/mnist

For every run directory under the root that has an ``eval.json``: its ``config.yaml``, ``summary.json``,
``eval.json`` and ``metrics.jsonl`` go to ``<results>/<run name>/``. The grids put each model's first images
side by side; every model sampled them from the same noise (``evaluate`` seeds it), so a column compares
models, not luck. Committed results change only through this step, never as a side effect of training.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch

from paperlab.lora.data import to_unit_range
from paperlab.shared.cli import run_command
from paperlab.shared.images import save_grid

FILES = ("config.yaml", "summary.json", "eval.json", "metrics.jsonl", "samples.png")


def row_order(name: str) -> tuple:
    """base, then LoRA by module set and rank, then full fine-tuning; seeds in order."""
    if name == "base":
        return (0, "", 0, name)
    if name.startswith("full"):
        return (3, "", 0, name)
    if name.startswith("lora-r"):
        rank = int(name.split("-")[1][1:])
        modules = name.split("-")[2]
        return (1 if modules == "attn" else 2, modules, rank, name)
    return (4, "", 0, name)


def _real_rows(run: Path, n: int) -> dict[str, torch.Tensor]:
    """The first ``n`` training images of each domain (the source: one per class), for the top grid row."""
    from paperlab.lora.checkpoint import run_config
    from paperlab.lora.data import load_source, load_target, to_model_range

    cfg = run_config(run)
    src, tgt = load_source(cfg), load_target(cfg)
    first = [int((src.train_labels == c).nonzero()[0]) for c in range(int(src.train_labels.max()) + 1)]
    idx = torch.tensor([first[i % len(first)] for i in range(n)])
    return {"target": to_model_range(tgt.train[::8][:n]), "source": to_model_range(src.train[idx])}


def publish(root: Path, results: Path, per_row: int = 10, with_real: bool = True) -> list[str]:
    runs = sorted((d for d in root.iterdir() if (d / "eval.json").is_file()), key=lambda d: row_order(d.name))
    if not runs:
        raise FileNotFoundError(f"no evaluated runs (eval.json) under {root}: run make eval-lora first")
    for run in runs:
        out = results / run.name
        out.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            if (run / name).is_file():
                shutil.copy2(run / name, out / name)
    grids = [r for r in runs if (r / "eval_samples.pt").is_file()]
    real = _real_rows(runs[0], per_row) if with_real else {}
    for domain in ("target", "source"):
        rows = ([real[domain]] if real else []) + [torch.load(r / "eval_samples.pt")[domain][:per_row] for r in grids]
        images = to_unit_range(torch.cat(rows)).numpy()
        save_grid(images, results / f"grid-{domain}.png", nrow=per_row, scale=2)
    names = (["real training images"] if real else []) + [r.name for r in grids]
    (results / "grid-rows.txt").write_text("".join(f"{n}\n" for n in names))
    return [r.name for r in runs]


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", help="a folder of runs, e.g. runs/lora/mnist")
    parser.add_argument("--results", required=True, help="e.g. projects/lora/results/mnist")
    args = parser.parse_args(argv)
    names = publish(Path(args.root), Path(args.results))
    print(f"published {len(names)} runs to {args.results}: {', '.join(names)}")


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
