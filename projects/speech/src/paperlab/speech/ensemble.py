"""Seed ensemble at test time: average the softmax of several finished runs' fold models, fold by fold.

    python -m paperlab.speech.ensemble --out runs/speech/grid/ensemble/aesdd-cnn-x3 \
        runs/speech/grid/models/aesdd-cnn-seed1 runs/speech/grid/models/aesdd-cnn-seed2 ...
    python -m paperlab.speech.ensemble --grid runs/speech/grid    # every ensemble and adapted row of the README
    python -m paperlab.speech.ensemble --out <dir> <run> adapt_bn=true   # one run, test-time BatchNorm adaptation

The members must test the same clips in the same folds (same corpus, classes and fold scheme; their
features and networks may differ). Nothing is trained: each member's ``fold<k>.pt`` classifies the
held-out speakers of fold k, and a clip's ensemble prediction is the argmax of the members' mean
probabilities. key=value arguments apply to every member's config at evaluation (``adapt_bn=true``:
each held-out speaker is classified after the BatchNorm statistics are re-estimated on that speaker's
unlabelled clips; a one-member "ensemble" is then the adapted evaluation of one run). Writes ``eval.json``
(as a run's), ``summary.json`` (the members) and ``config.yaml`` (the first member's config, overrides
applied) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import yaml

from paperlab.shared.config import to_dict
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
    "aesdd-cnn-transfer-e30-x3": [f"stronger/aesdd-cnn-transfer-e30-seed{s}" for s in (1, 2, 3)],
    "aesdd-cnn-spkmean-x3": [f"speakernorm/aesdd-cnn-spkmean-seed{s}" for s in (1, 2, 3)],
}
ADAPT = ["adapt_bn=true"]
# test-time BatchNorm adaptation (seventh session): each run of these rows (group/name, every seed 1-3) is
# re-evaluated with adapt_bn=true into <grid>/adabn/<name>-seed<s>; nothing is trained
ADAPTED_ROWS = [
    "models/aesdd-cnn",
    "models/aesdd-crnn",
    "stronger/aesdd-cnn-transfer",
    "stronger/aesdd-cnn-transfer-e30",
    "stronger/aesdd-cnn-e30",
    "stronger/aesdd-cnn-m32-e30",
    "speakernorm/aesdd-cnn-spkmean",
    "speakernorm/aesdd-cnn-spkmean-e30",
    "cross/ravdess-to-aesdd-cnn",
    "models/ravdess-cnn",
    "models/ravdess-crnn",
    "speakernorm/ravdess-cnn-spkmean",
]
# the control: BatchNorm statistics re-estimated on each fold's TRAINING clips (exact, one batch), into
# <grid>/adabn-control/<name>-seed<s>: what re-estimating alone does, without the held-out speaker
CONTROL = ["adapt_bn=true", "adapt_bn_source=train"]
CONTROL_ROWS = ["models/aesdd-cnn", "stronger/aesdd-cnn-e30", "models/ravdess-cnn"]
# ... and the seed ensembles of adapted members (into <grid>/ensemble/<name>)
ADAPTED_ENSEMBLES = {
    "aesdd-cnn-adabn-x3": ENSEMBLES["aesdd-cnn-x3"],
    "aesdd-cnn-crnn-adabn-x6": ENSEMBLES["aesdd-cnn-crnn-x6"],
    "aesdd-cnn-e30-adabn-x3": ENSEMBLES["aesdd-cnn-e30-x3"],
    "aesdd-cnn-m32-e30-adabn-x3": ENSEMBLES["aesdd-cnn-m32-e30-x3"],
    "aesdd-cnn-transfer-adabn-x3": ENSEMBLES["aesdd-cnn-transfer-x3"],
    "aesdd-cnn-transfer-e30-adabn-x3": ENSEMBLES["aesdd-cnn-transfer-e30-x3"],
    "aesdd-cnn-spkmean-adabn-x3": ENSEMBLES["aesdd-cnn-spkmean-x3"],
}
SAME = ("dataset", "test_dataset", "emotions", "folds", "n_folds", "only_folds")


def ensemble(members: list[Path], out: Path, overrides=()) -> dict:
    if len(members) < 1:
        raise ValueError("an ensemble needs at least one run directory")
    first_cfg, test, folds, total = None, None, None, None
    for run_dir in members:
        cfg, t, f, probs = run_probs(run_dir, overrides)
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
        "overrides": list(overrides),
        "seeds": [json.loads((m / "summary.json").read_text()).get("seed") for m in members],
        **{k: ev[k] for k in ("accuracy_mean", "accuracy_std", "uar_mean", "uar_std")},
        "pooled_accuracy": ev["pooled"]["accuracy"],
    }
    from paperlab.shared.checkpoint import atomic_write_text

    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1))
    atomic_write_text(out / "config.yaml", yaml.safe_dump(to_dict(first_cfg), sort_keys=False))
    return summary


def _finished(run_dir: Path) -> bool:
    """A run whose every fold finished (a stopped run also writes summary.json, with finished false)."""
    path = run_dir / "summary.json"
    return path.is_file() and bool(json.loads(path.read_text()).get("finished"))


def _report(s: dict, out) -> None:
    print(
        f"{len(s['members'])}-member ensemble: accuracy {s['accuracy_mean']:.3f} +- {s['accuracy_std']:.3f} over "
        f"folds, UAR {s['uar_mean']:.3f} -> {out}",
        flush=True,
    )


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="*", help="finished run directories (their fold<k>.pt), then key=value ...")
    parser.add_argument("--out", default="", help="folder for the ensemble's eval.json and summary.json")
    parser.add_argument(
        "--grid", default="", help="build every ENSEMBLES, ADAPTED_ROWS and ADAPTED_ENSEMBLES entry of this grid root"
    )
    parser.add_argument("--force", action="store_true", help="with --grid: rebuild entries that are already there")
    args = parser.parse_args(argv)
    if args.grid:
        root = Path(args.grid)
        todo = [(root / "ensemble" / n, [root / m for m in ms], ()) for n, ms in ENSEMBLES.items()]
        for row in ADAPTED_ROWS:
            for run in sorted(root.glob(f"{row}-seed[0-9]*")):
                todo.append((root / "adabn" / run.name, [run], ADAPT))
        for row in CONTROL_ROWS:
            for run in sorted(root.glob(f"{row}-seed[0-9]*")):
                todo.append((root / "adabn-control" / run.name, [run], CONTROL))
        todo += [(root / "ensemble" / n, [root / m for m in ms], ADAPT) for n, ms in ADAPTED_ENSEMBLES.items()]
        for out, dirs, overrides in todo:
            missing = [str(d) for d in dirs if not _finished(d)]
            if missing:
                print(f"{out.name}: skipped, not finished: {', '.join(missing)}")
            elif args.force or not (out / "summary.json").is_file():
                _report(ensemble(dirs, out, overrides), out)
        return
    runs = [r for r in args.runs if "=" not in r]
    if not runs or not args.out:
        raise ValueError("give run directories and --out, or --grid <root>")
    overrides = [r for r in args.runs if "=" in r]
    _report(ensemble([Path(r) for r in runs], Path(args.out), overrides), args.out)


def main(argv=None):
    from paperlab.shared.cli import run_command

    run_command(_main, argv)


if __name__ == "__main__":
    main()
