"""Seed ensemble at test time: average the softmax of several finished runs' fold models, fold by fold.

    python -m paperlab.speech.ensemble --out runs/speech/grid/ensemble/aesdd-cnn-x3 \
        runs/speech/grid/models/aesdd-cnn-seed1 runs/speech/grid/models/aesdd-cnn-seed2 ...
    python -m paperlab.speech.ensemble --grid runs/speech/grid    # every ensemble of the README's table

The members must test the same clips in the same folds (same corpus, classes and fold scheme; their
features and networks may differ). Nothing is trained: each member's ``fold<k>.pt`` classifies the
held-out speakers of fold k, and a clip's ensemble prediction is the argmax of the members' mean
probabilities. Writes ``eval.json`` (as a run's), ``summary.json`` (the members) and ``config.yaml``
(the first member's config) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from paperlab.speech.evaluate import fold_result, run_probs, write_eval

# the README's ensembles: name -> members (grid run directories, relative to the grid's root); each
# combines all 3 seeds of a row, never a selection
ENSEMBLES = {
    "aesdd-cnn-x3": [f"models/aesdd-cnn-seed{s}" for s in (1, 2, 3)],
    "aesdd-crnn-x3": [f"models/aesdd-crnn-seed{s}" for s in (1, 2, 3)],
    "aesdd-cnn-crnn-x6": [f"models/aesdd-{m}-seed{s}" for m in ("cnn", "crnn") for s in (1, 2, 3)],
    "aesdd-cnn-transfer-x3": [f"stronger/aesdd-cnn-transfer-seed{s}" for s in (1, 2, 3)],
    "aesdd-cnn-m32-e30-x3": [f"stronger/aesdd-cnn-m32-e30-seed{s}" for s in (1, 2, 3)],
    "aesdd-cnn-e30-x3": [f"stronger/aesdd-cnn-e30-seed{s}" for s in (1, 2, 3)],
    "aesdd-cnn-spkmean-x3": [f"speakernorm/aesdd-cnn-spkmean-seed{s}" for s in (1, 2, 3)],
    "aesdd-cnn-spkmean-e30-x3": [f"speakernorm/aesdd-cnn-spkmean-e30-seed{s}" for s in (1, 2, 3)],
    "aesdd-cnn-spkmean-m32-e30-x3": [f"speakernorm/aesdd-cnn-spkmean-m32-e30-seed{s}" for s in (1, 2, 3)],
}
SAME = ("dataset", "test_dataset", "emotions", "folds", "n_folds", "only_folds")


def ensemble(members: list[Path], out: Path) -> dict:
    if len(members) < 1:
        raise ValueError("an ensemble needs at least one run directory")
    first_cfg, test, folds, total = None, None, None, None
    for run_dir in members:
        cfg, t, f, probs = run_probs(run_dir)
        if first_cfg is None:
            first_cfg, test, folds, total = cfg, t, f, [p.copy() for p in probs]
            continue
        for key in SAME:
            if getattr(cfg, key) != getattr(first_cfg, key):
                raise ValueError(
                    f"{run_dir} is another protocol than {members[0]}: {key}={getattr(cfg, key)} vs "
                    f"{getattr(first_cfg, key)}"
                )
        if t.names != test.names or any(not np.array_equal(a.test, b.test) for a, b in zip(f, folds, strict=True)):
            raise ValueError(f"{run_dir} tests other clips than {members[0]} (another corpus folder?)")
        for acc, p in zip(total, probs, strict=True):
            acc += p
    results = [
        fold_result(fold.name, test, fold.test, p / len(members), fold.test_speakers)
        for fold, p in zip(folds, total, strict=True)
    ]
    out.mkdir(parents=True, exist_ok=True)
    ev = write_eval(out, first_cfg, results, test.emotions)
    summary = {
        "finished": True,
        "members": [str(m) for m in members],
        "seeds": [json.loads((m / "summary.json").read_text()).get("seed") for m in members],
        **{k: ev[k] for k in ("accuracy_mean", "accuracy_std", "uar_mean", "uar_std")},
        "pooled_accuracy": ev["pooled"]["accuracy"],
    }
    from paperlab.shared.checkpoint import atomic_write_text

    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1))
    shutil.copy(members[0] / "config.yaml", out / "config.yaml")
    return summary


def _report(s: dict, out) -> None:
    print(
        f"{len(s['members'])}-member ensemble: accuracy {s['accuracy_mean']:.3f} +- {s['accuracy_std']:.3f} over "
        f"folds, UAR {s['uar_mean']:.3f} -> {out}",
        flush=True,
    )


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="*", help="finished run directories (their fold<k>.pt)")
    parser.add_argument("--out", default="", help="folder for the ensemble's eval.json and summary.json")
    parser.add_argument("--grid", default="", help="build every ENSEMBLES entry of this grid root (into ensemble/)")
    args = parser.parse_args(argv)
    if args.grid:
        root = Path(args.grid)
        for name, members in ENSEMBLES.items():
            dirs = [root / m for m in members]
            missing = [str(d) for d in dirs if not (d / "summary.json").is_file()]
            if missing:
                print(f"{name}: skipped, not finished: {', '.join(missing)}")
                continue
            _report(ensemble(dirs, root / "ensemble" / name), root / "ensemble" / name)
        return
    if not args.runs or not args.out:
        raise ValueError("give run directories and --out, or --grid <root>")
    _report(ensemble([Path(r) for r in args.runs], Path(args.out)), args.out)


def main(argv=None):
    from paperlab.shared.cli import run_command

    run_command(_main, argv)


if __name__ == "__main__":
    main()
