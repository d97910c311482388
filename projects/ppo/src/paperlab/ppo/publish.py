"""Publish a run: copy its small files into the committed ``projects/ppo/results/`` (the only way
results change; training writes only under ``runs/``).

    make publish-ppo RUN=runs/ppo/brax/ant/ppo-seed1 DEST=brax/ant/ppo-seed1
    python -m paperlab.ppo.publish runs/ppo/brax/ant/ppo-seed1 projects/ppo/results/brax/ant/ppo-seed1

Copies ``config.yaml``, ``metrics.jsonl``, ``summary.json``, ``evaluate.json`` and ``model.pt``
(so that GIFs and evaluations can be regenerated from the committed files; refused above 5 MB).
An existing destination is refused unless ``--force``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from paperlab.shared.cli import run_command

FILES = ("config.yaml", "metrics.jsonl", "summary.json", "evaluate.json", "model.pt")
REQUIRED = ("config.yaml", "metrics.jsonl", "summary.json")
MAX_BYTES = 5 * 2**20


def publish(run: str | Path, dest: str | Path, force: bool = False) -> list[str]:
    run, dest = Path(run), Path(dest)
    missing = [f for f in REQUIRED if not (run / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{run} is not a finished run (no {', '.join(missing)})")
    if dest.exists() and any(dest.iterdir()) and not force:
        raise ValueError(f"{dest} already holds published results; pass --force to replace them")
    big = [f for f in FILES if (run / f).is_file() and (run / f).stat().st_size > MAX_BYTES]
    if big:
        raise ValueError(f"{', '.join(big)} in {run} is over {MAX_BYTES >> 20} MB: too large to commit")
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for f in FILES:
        if (run / f).is_file():
            shutil.copy2(run / f, dest / f)
            copied.append(f)
    return copied


def _main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="the run directory (runs/ppo/...)")
    p.add_argument("dest", help="the results directory to write (projects/ppo/results/...)")
    p.add_argument("--force", action="store_true", help="replace an existing published run")
    args = p.parse_args(argv)
    copied = publish(args.run, args.dest, args.force)
    print(f"published {', '.join(copied)} from {args.run} to {args.dest}")


def main(argv=None):
    return run_command(_main, argv)


if __name__ == "__main__":
    main()
