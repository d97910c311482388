"""Publish a finished run: copy its small files into ``projects/toys/results/<name>/``.

    make toys-publish TASK=diffusion RUN=runs/toys/diffusion/seed0
    python -m paperlab.toys.publish runs/toys/diffusion/seed0 --task diffusion [--name NAME]

The only way committed results change: training writes under ``runs/`` alone. The run must be of
``--task`` and finished (``summary.json``, ``eval.json``); the destination's old files are replaced by
the run's config.yaml, summary.json, eval.json, curves.json and figures (each under 2 MB). Then
``make toys-report`` rewrites the README tables from ``results/``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import yaml

from paperlab.shared.cli import run_command
from paperlab.shared.config import ConfigError

FILES = ("config.yaml", "summary.json", "eval.json", "curves.json")
FIGURES = ("*.png", "*.gif")
MAX_BYTES = 2_000_000


def publish(
    run: str | Path, task: str, results: str | Path = "projects/toys/results", name: str = "", gif: bool = True
) -> list[Path]:
    run, dest = Path(run), Path(results) / (name or task)
    if not run.is_dir():
        raise FileNotFoundError(f"no run directory {run}")
    for f in ("config.yaml", "summary.json", "eval.json"):
        if not (run / f).is_file():
            raise FileNotFoundError(f"{run} has no {f}: publish a finished, evaluated run")
    run_task = (yaml.safe_load((run / "config.yaml").read_text()) or {}).get("task")
    if run_task != task:
        raise ConfigError(f"{run} is a {run_task} run, not {task}")
    if not json.loads((run / "summary.json").read_text()).get("finished"):
        raise ConfigError(f"{run} did not finish (summary.json); continue it with --resume first")
    figures = [p for g in FIGURES for p in run.glob(g) if gif or p.suffix != ".gif"]
    files = [run / f for f in FILES if (run / f).is_file()] + sorted(figures)
    big = [f"{p.name} ({p.stat().st_size / 1e6:.1f} MB)" for p in files if p.stat().st_size > MAX_BYTES]
    if big:
        raise ValueError(f"files over {MAX_BYTES / 1e6:.0f} MB would be committed: {', '.join(big)}")
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.iterdir():  # the previous publication (including the old layout's metrics.json)
        if old.is_file():
            old.unlink()
    return [Path(shutil.copy2(p, dest / p.name)) for p in files]


def _main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m paperlab.toys.publish", description=__doc__.split("\n")[0])
    p.add_argument("run", help="a finished run directory, e.g. runs/toys/diffusion/seed0")
    p.add_argument("--task", required=True, help="the task the run must be of")
    p.add_argument("--name", default="", help="folder under results/ (default: the task)")
    p.add_argument("--results", default="projects/toys/results")
    p.add_argument("--no-gif", action="store_true", help="leave the GIF out (for runs beside a published one)")
    args = p.parse_args(argv)
    copied = publish(args.run, args.task, args.results, args.name, gif=not args.no_gif)
    print(f"published {args.run} -> {copied[0].parent}: {', '.join(c.name for c in copied)}")


def main(argv=None):
    return run_command(_main, argv)


if __name__ == "__main__":
    main()
