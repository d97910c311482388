"""Copy the small files of a finished run into ``projects/toys_torch/results/<task>/`` (no models, no checkpoints).

python -m paperlab.toys_torch.publish runs/toys_torch/sonnet_sft/seed1 --task sonnet_sft
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from paperlab.shared.cli import run_command
from paperlab.toys_torch.config import TASKS

FILES = ("config.yaml", "eval.json", "summary.json", "samples.md", "nbest.json", "flagged.md")
STAGE_METRICS = ("pretrain", "lm", "sft_full", "sft_lora4", "sft_lora8", "sft_lora16", "sft_lora32")


def _main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m paperlab.toys_torch.publish", description=__doc__)
    parser.add_argument("run", help="a finished run directory")
    parser.add_argument("--task", required=True, choices=TASKS)
    parser.add_argument("--results", default="projects/toys_torch/results")
    args = parser.parse_args(argv)
    run = Path(args.run)
    if not (run / "summary.json").is_file():
        raise FileNotFoundError(f"{run} has no summary.json: not a finished run (make toy-{args.task} first)")
    out = Path(args.results) / args.task
    out.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in FILES:
        if (run / name).is_file():
            shutil.copyfile(run / name, out / name)
            copied.append(name)
    for stage in STAGE_METRICS:
        if (run / stage / "metrics.jsonl").is_file():
            shutil.copyfile(run / stage / "metrics.jsonl", out / f"{stage}_metrics.jsonl")
            copied.append(f"{stage}_metrics.jsonl")
    print(f"published {run} -> {out}: {', '.join(copied)}")


def main(argv=None):
    run_command(_main, argv)


if __name__ == "__main__":
    main()
