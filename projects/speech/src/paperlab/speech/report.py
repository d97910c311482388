"""README/REPORT tables and figures from the committed ``results/`` (never from runs/ directly).

    python -m paperlab.speech.report --collect runs/speech/grid --results projects/speech/results \
        --readme projects/speech/README.md projects/speech/REPORT.md [--index README.md]

``--collect`` first copies the small files of every grid run (``eval.json``, ``summary.json``,
``config.yaml``) into ``results/grid/`` (the publish step); outside the ``models`` group the per-clip
lists are dropped from ``eval.json`` to keep the repository small.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np

from paperlab.speech.metrics import scores

GROUP_ORDER = (
    "models",
    "augment",
    "mels",
    "cross",
    "stronger",
    "speakernorm",
    "adapt",
    "adabn",
    "adabn-control",
    "ensemble",
)
ANCHOR_AESDD = 0.69  # Vryzas et al. 2018, as quoted by issue 14 (unverified here, protocol unknown)
STRONGER_ROWS = {  # name in the stronger group -> label (the setting column comes from the run's config)
    "aesdd-cnn-transfer": "transfer from RAVDESS",
    "aesdd-cnn-e30": "64 mels, 30 epochs",
    "aesdd-cnn-transfer-e30": "transfer from RAVDESS, 30 epochs",
    "aesdd-cnn-m32-e30": "32 mels, 30 epochs",
    "aesdd-cnn-m32-e30-transfer": "32 mels, 30 epochs, transfer",
    "aesdd-cnn-wide-m32-e30-c3": "wide, 32 mels, 30 epochs, 3 s crops",
    "aesdd-cnn-clips": "reference, NOT speaker-independent: 6 folds over clips, every speaker in training",
}
ENSEMBLE_ROWS = [
    ("aesdd-cnn-x3", "ensemble of the 3 CNN seeds (models table)"),
    ("aesdd-crnn-x3", "ensemble of the 3 CRNN seeds (models table)"),
    ("aesdd-cnn-crnn-x6", "ensemble of the 3 CNN + 3 CRNN seeds"),
    ("aesdd-cnn-transfer-x3", "ensemble of the 3 transfer seeds"),
    ("aesdd-cnn-m32-e30-x3", "ensemble of the 3 seeds of the 32-mel, 30-epoch row"),
    ("aesdd-cnn-e30-x3", "ensemble of the 3 seeds of the 64-mel, 30-epoch row"),
    ("aesdd-cnn-transfer-e30-x3", "ensemble of the 3 seeds of the 30-epoch transfer row"),
]
# speakernorm group: row -> (the same setting without speaker normalisation: group, name)
SPEAKERNORM_ROWS = {
    "aesdd-cnn-spkmean": ("models", "aesdd-cnn"),
    "aesdd-cnn-spkmeanstd": ("models", "aesdd-cnn"),
    "aesdd-svm-spkmean": ("models", "aesdd-svm"),
    "aesdd-svm-spkmeanstd": ("models", "aesdd-svm"),
    "aesdd-cnn-spkmean-e30": ("stronger", "aesdd-cnn-e30"),
    "ravdess-cnn-spkmean": ("models", "ravdess-cnn"),
}
SPEAKERNORM_ENSEMBLES = [  # (ensemble name, label, the ensemble without speaker normalisation)
    ("aesdd-cnn-spkmean-x3", "ensemble of the 3 seeds of the CNN, mean row", "aesdd-cnn-x3"),
]
AUG_ROWS = [
    ("none", "none (models/aesdd-cnn)"),
    ("specaug", "SpecAugment F=8, T=10, 2+2 masks"),
    ("noise", "white noise, SNR 5-20 dB, p=0.5"),
    ("pitch", "pitch warp +-2 semitones"),
    ("stretch", "time stretch 0.85-1.15"),
    ("mixup", "mixup alpha=0.2"),
    ("all", "all five together"),
    ("best", "best combination: pitch + stretch (the rows above that beat none)"),
]
MEL_ROWS = [
    ("mels32", "32 mels"),
    ("mels128", "128 mels"),
    ("", "64 mels, n_fft 512 (32 ms), hop 320 (20 ms), 50-8000 Hz (default)"),
    ("fft1024", "n_fft 1024 (64 ms)"),
    ("hop640", "hop 640 (40 ms)"),
    ("fmax4000", "fmax 4000 Hz"),
]


def collect(src: Path, results: Path) -> int:
    n = 0
    for summary in sorted(src.glob("*/*/summary.json")):
        run = summary.parent
        if not json.loads(summary.read_text()).get("finished"):
            continue
        dst = results / "grid" / run.parent.name / run.name
        dst.mkdir(parents=True, exist_ok=True)
        s = json.loads(summary.read_text())
        metrics = run / "metrics.jsonl"
        if metrics.is_file():  # the training accuracy (on the training crops) after each fold's first and last epoch
            first, last = {}, {}
            for line in metrics.read_text().splitlines():
                r = json.loads(line)
                if "train_acc" in r:
                    first.setdefault(int(r["fold"]), r["train_acc"])
                    last[int(r["fold"])] = r["train_acc"]
            s["first_epoch_train_acc"] = [round(first[k], 4) for k in sorted(first)]
            s["final_train_acc"] = [round(last[k], 4) for k in sorted(last)]
        (dst / "summary.json").write_text(json.dumps(s, indent=1))
        shutil.copy(run / "config.yaml", dst / "config.yaml")
        ev = json.loads((run / "eval.json").read_text())
        if run.parent.name != "models":
            for f in ev["folds"]:
                for key in ("clips", "p_pred"):
                    f.pop(key, None)
        (dst / "eval.json").write_text(json.dumps(ev, separators=(",", ":")))
        n += 1
    return n


def load_runs(results: Path) -> dict[str, dict[str, list[dict]]]:
    """{group: {name without seed: [eval of each seed]}}"""
    runs: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted((results / "grid").glob("*/*/eval.json")):
        name = path.parent.name.rsplit("-seed", 1)[0]
        ev = json.loads(path.read_text())
        ev["summary"] = json.loads((path.parent / "summary.json").read_text())
        runs[path.parent.parent.name][name].append(ev)
    return runs


def pm(values, pct: bool = True) -> str:
    v = np.asarray(values, dtype=float) * (100 if pct else 1)
    if len(v) == 1:
        return f"{v[0]:.1f}"
    return f"{v.mean():.1f} ± {v.std(ddof=1):.1f}"


def seed_stats(evs: list[dict], key: str) -> list[float]:
    return [e[f"{key}_mean"] for e in evs]


def pooled_confusion(evs: list[dict]) -> np.ndarray:
    return sum(np.array(e["pooled"]["confusion"]) for e in evs)


def models_table(runs) -> str:
    rows = [
        "| corpus (protocol) | model | accuracy % | UAR % | macro-F1 % | speaker spread (fold std) % | seeds |",
        "|---|---|---|---|---|---|---|",
    ]
    proto = {"aesdd": "AESDD, leave-one-speaker-out, 6 folds", "ravdess": "RAVDESS, 8 classes, actor-grouped 6 folds"}
    for d in ("aesdd", "ravdess"):
        for m in ("cnn", "crnn", "svm"):
            evs = runs["models"].get(f"{d}-{m}")
            if not evs:
                continue
            rows.append(
                f"| {proto[d]} | {m} | {pm(seed_stats(evs, 'accuracy'))} | {pm(seed_stats(evs, 'uar'))} | "
                f"{pm(seed_stats(evs, 'macro_f1'))} | {100 * np.mean([e['accuracy_std'] for e in evs]):.1f} | "
                f"{len(evs)} |"
            )
    return "\n".join(rows)


def perclass_table(runs, dataset: str) -> str:
    models = [m for m in ("cnn", "crnn", "svm") if runs["models"].get(f"{dataset}-{m}")]
    if not models:
        return "(no runs)"
    emotions = runs["models"][f"{dataset}-{models[0]}"][0]["emotions"]
    head = "| emotion | " + " | ".join(f"{m} P / R / F1 %" for m in models) + " |"
    rows = [head, "|---|" + "---|" * len(models)]
    per = {}
    for m in models:
        c = pooled_confusion(runs["models"][f"{dataset}-{m}"])
        y_true = np.repeat(np.arange(len(c)), c.sum(axis=1))
        y_pred = np.concatenate([np.repeat(np.arange(len(c)), c[i]) for i in range(len(c))])
        per[m] = scores(y_true, y_pred, len(c))
    for k, e in enumerate(emotions):
        cells = [
            f"{100 * per[m]['precision'][k]:.0f} / {100 * per[m]['recall'][k]:.0f} / {100 * per[m]['f1'][k]:.0f}"
            for m in models
        ]
        rows.append(f"| {e} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def perfold_table(runs, dataset: str) -> str:
    models = [m for m in ("cnn", "crnn", "svm") if runs["models"].get(f"{dataset}-{m}")]
    if not models:
        return "(no runs)"
    first = runs["models"][f"{dataset}-{models[0]}"][0]["folds"]
    label = "speaker" if dataset == "aesdd" else "actors"
    rows = [
        f"| fold (test {label}) | " + " | ".join(f"{m} accuracy %" for m in models) + " |",
        "|---|" + "---|" * len(models),
    ]
    for k, f in enumerate(first):
        cells = [pm([e["folds"][k]["accuracy"] for e in runs["models"][f"{dataset}-{m}"]]) for m in models]
        rows.append(f"| {k} ({', '.join(map(str, f['test_speakers']))}) | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def augment_table(runs) -> str:
    rows = [
        "| corpus | augmentation | accuracy % | UAR % | Δ accuracy vs none (points) | seeds |",
        "|---|---|---|---|---|---|",
    ]
    for d in ("aesdd", "ravdess"):
        base = runs["models"].get(f"{d}-cnn")
        if not base:
            continue
        b = np.mean(seed_stats(base, "accuracy"))
        for key, label in AUG_ROWS:
            evs = base if key == "none" else runs["augment"].get(f"{d}-cnn-{key}")
            if not evs:
                continue
            acc = seed_stats(evs, "accuracy")
            label = label if key != "none" else f"none (models/{d}-cnn)"
            rows.append(
                f"| {d} | {label} | {pm(acc)} | {pm(seed_stats(evs, 'uar'))} | "
                f"{100 * (np.mean(acc) - b):+.1f} | {len(evs)} |"
            )
    return "\n".join(rows)


def mels_table(runs) -> str:
    rows = ["| features (AESDD, CNN, LOSO) | accuracy % | UAR % | seeds |", "|---|---|---|---|"]
    for key, label in MEL_ROWS:
        evs = runs["models"].get("aesdd-cnn") if key == "" else runs["mels"].get(f"aesdd-cnn-{key}")
        if evs:
            rows.append(f"| {label} | {pm(seed_stats(evs, 'accuracy'))} | {pm(seed_stats(evs, 'uar'))} | {len(evs)} |")
    return "\n".join(rows)


def cross_table(runs) -> str:
    rows = ["| train → test (5 shared emotions) | accuracy % | UAR % | seeds |", "|---|---|---|---|"]
    items = [
        ("ravdess-to-aesdd-cnn", "RAVDESS (all 24 actors) → AESDD (all 604 clips)"),
        ("ravdess-to-aesdd-cnn-best", "same, trained with pitch + stretch augmentation"),
        ("aesdd-to-ravdess-cnn", "AESDD (all 6 speakers) → RAVDESS (960 clips)"),
        ("aesdd-to-ravdess-cnn-best", "same, trained with pitch + stretch augmentation"),
        ("ravdess-to-aesdd-cnn-m32-e30", "RAVDESS → AESDD, 32 mels, 30 epochs (the pretraining of a transfer row)"),
        ("ravdess5-cnn", "reference: RAVDESS → RAVDESS, actor-grouped 6 folds, same 5 emotions"),
    ]
    for key, label in items:
        evs = runs["cross"].get(key) or runs["stronger"].get(key)
        if evs:
            rows.append(f"| {label} | {pm(seed_stats(evs, 'accuracy'))} | {pm(seed_stats(evs, 'uar'))} | {len(evs)} |")
    evs = runs["models"].get("aesdd-cnn")
    if evs:
        rows.append(
            f"| reference: AESDD → AESDD, leave-one-speaker-out (models table) | "
            f"{pm(seed_stats(evs, 'accuracy'))} | {pm(seed_stats(evs, 'uar'))} | {len(evs)} |"
        )
    return "\n".join(rows)


def _setting(cfg: dict) -> str:
    """The training setting of a run, from its saved config."""
    chans = "-".join(map(str, cfg["channels"]))
    init = "RAVDESS-pretrained" if cfg.get("init_from") else "scratch"
    folds = {"loso": "LOSO", "clips": "clip folds"}.get(cfg["folds"], cfg["folds"])
    return f"{folds}, {init}, {cfg['n_mels']} mels, {cfg['epochs']} ep, {chans} ch, {cfg['crop_seconds']:g} s crops"


def stronger_table(runs) -> str:
    """AESDD leave-one-speaker-out, every row toward the ~69% anchor, with its distance to it."""
    rows = [
        "| AESDD (CNN) | setting | accuracy % | UAR % | Δ vs CNN (points) | below ~69% (points) | "
        "train acc. at the end % | s / epoch | seeds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    base = runs["models"].get("aesdd-cnn")
    if not base:
        return "(no runs)"
    b = np.mean(seed_stats(base, "accuracy"))
    extra = sorted(k for k in runs["stronger"] if k.startswith("aesdd-") and k not in STRONGER_ROWS)
    items = [("baseline (models table)", base)]
    items += [
        (STRONGER_ROWS.get(k, k), runs["stronger"][k]) for k in [*STRONGER_ROWS, *extra] if runs["stronger"].get(k)
    ]
    for name, evs in items:
        acc = seed_stats(evs, "accuracy")
        t = [e["summary"].get("epoch_time_s") for e in evs if e["summary"].get("epoch_time_s")]
        fit = [np.mean(e["summary"]["final_train_acc"]) for e in evs if e["summary"].get("final_train_acc")]
        rows.append(
            f"| {name} | {_setting(evs[0]['config'])} | {pm(acc)} | {pm(seed_stats(evs, 'uar'))} | "
            f"{100 * (np.mean(acc) - b):+.1f} | {100 * (ANCHOR_AESDD - np.mean(acc)):.1f} | "
            f"{f'{100 * np.mean(fit):.0f}' if fit else '—'} | {np.median(t):.1f} | {len(evs)} |"
        )
    for key, label in ENSEMBLE_ROWS:
        evs = runs["ensemble"].get(key)
        if not evs:
            continue
        acc = evs[0]["accuracy_mean"]
        rows.append(
            f"| {label} | mean softmax of {len(evs[0]['summary']['members'])} runs' fold models | "
            f"{100 * acc:.1f} | {100 * evs[0]['uar_mean']:.1f} | {100 * (acc - b):+.1f} | "
            f"{100 * (ANCHOR_AESDD - acc):.1f} | — | (no training) | ensemble |"
        )
    return "\n".join(rows)


def _worst_fold(evs: list[dict]) -> float:
    """The lowest fold accuracy, each fold's accuracy averaged over the seeds."""
    return min(np.mean([e["folds"][k]["accuracy"] for e in evs]) for k in range(len(evs[0]["folds"])))


def _versus(evs: list[dict], base: list[dict] | None) -> tuple[str, str, str]:
    """(accuracy without the change, Δ in points, worst fold without it) of ``evs`` against ``base``, the
    same setting without the change (seed runs or a one-entry ensemble); dashes when there is no base."""
    if not base:
        return "—", "—", "—"
    b = seed_stats(base, "accuracy")
    delta = 100 * (np.mean(seed_stats(evs, "accuracy")) - np.mean(b))
    return pm(b), f"{delta:+.1f}", f"{100 * _worst_fold(base):.1f}"


def speakernorm_table(runs) -> str:
    """Each speakernorm row beside the same setting without speaker normalisation, with the worst speaker's
    (or actor group's) accuracy and, on AESDD, the distance to the ~69% anchor."""
    rows = [
        "| corpus | model | setting | speaker norm | accuracy % | UAR % | without it % | Δ (points) | "
        "worst fold % (without) | below ~69% (points) | seeds |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, (g, ref) in SPEAKERNORM_ROWS.items():
        evs, base = runs["speakernorm"].get(name), runs[g].get(ref)
        if not evs:
            continue
        cfg, acc = evs[0]["config"], np.mean(seed_stats(evs, "accuracy"))
        worst = _worst_fold(evs)
        without, delta, worst_b = _versus(evs, base)
        setting = _setting(cfg) if cfg["model"] != "svm" else "utterance statistics, RBF-SVM"
        below = f"{100 * (ANCHOR_AESDD - acc):.1f}" if cfg["dataset"] == "aesdd" else "—"
        rows.append(
            f"| {cfg['dataset']} | {cfg['model']} | {setting} | {cfg['speaker_norm']} | "
            f"{pm(seed_stats(evs, 'accuracy'))} | {pm(seed_stats(evs, 'uar'))} | {without} | {delta} | "
            f"{100 * worst:.1f} ({worst_b}) | {below} | {len(evs)} |"
        )
    for key, label, ref in SPEAKERNORM_ENSEMBLES:
        evs, base = runs["ensemble"].get(key), runs["ensemble"].get(ref)
        if not evs:
            continue
        acc, worst = evs[0]["accuracy_mean"], _worst_fold(evs)
        without, delta, worst_b = _versus(evs, base)
        rows.append(
            f"| aesdd | cnn | {label} | mean | {100 * acc:.1f} | {100 * evs[0]['uar_mean']:.1f} | {without} | "
            f"{delta} | {100 * worst:.1f} ({worst_b}) | {100 * (ANCHOR_AESDD - acc):.1f} | ensemble |"
        )
    return "\n".join(rows) if len(rows) > 2 else "(no runs)"


def _corpus(cfg: dict) -> str:
    test = cfg.get("test_dataset") or ""
    return f"{cfg['dataset']} → {test}" if test and test != cfg["dataset"] else cfg["dataset"]


def adabn_table(runs) -> str:
    """Test-time BatchNorm adaptation: each adapted row beside the same fold models evaluated without it,
    then the rows trained for it (adapt group) and the seed ensembles of adapted members."""
    from paperlab.speech.ensemble import ADAPTED_ENSEMBLES, ADAPTED_ROWS, ENSEMBLES

    rows = [
        "| corpus | row (its table) | setting | without adaptation % | control: training clips' statistics % | "
        "adapted % | Δ (points) | worst fold adapted (without) % | below ~69% (points) | seeds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def add(label, evs, base, control=None):
        ctrl = pm(seed_stats(control, "accuracy")) if control else "—"
        cfg, acc = evs[0]["config"], np.mean(seed_stats(evs, "accuracy"))
        without, delta, worst_b = _versus(evs, base)
        on_aesdd = (cfg.get("test_dataset") or cfg["dataset"]) == "aesdd"
        below = f"{100 * (ANCHOR_AESDD - acc):.1f}" if on_aesdd else "—"
        setting = _setting(cfg) + (", speaker batches" if cfg.get("speaker_batches") else "")
        rows.append(
            f"| {_corpus(cfg)} | {label} | {setting} | "
            f"{without} | {ctrl} | {pm(seed_stats(evs, 'accuracy'))} | {delta} | "
            f"{100 * _worst_fold(evs):.1f} ({worst_b}) | {below} | {len(evs)} |"
        )

    for row in ADAPTED_ROWS:
        group, name = row.split("/")
        evs = runs["adabn"].get(name)
        if evs:
            add(f"{name} ({group})", evs, runs[group].get(name), runs["adabn-control"].get(name))
    for name, evs in sorted(runs["adapt"].items()):
        add(f"{name} (trained for it)", evs, None)
    for name, members in ADAPTED_ENSEMBLES.items():
        evs = runs["ensemble"].get(name)
        if not evs:
            continue
        plain = next((k for k, m in ENSEMBLES.items() if m == members), None)
        base = runs["ensemble"].get(plain) if plain else None
        acc, worst = evs[0]["accuracy_mean"], _worst_fold(evs)
        without, delta, worst_b = _versus(evs, base)
        rows.append(
            f"| {_corpus(evs[0]['config'])} | {name} (ensemble) | mean softmax of {len(members)} adapted runs | "
            f"{without} | — | {100 * acc:.1f} | {delta} | {100 * worst:.1f} ({worst_b}) | "
            f"{100 * (ANCHOR_AESDD - acc):.1f} | ensemble |"
        )
    return "\n".join(rows) if len(rows) > 2 else "(no runs)"


def timing_table(runs, results: Path) -> str:
    rows = ["| model | corpus | machine | s / epoch (median) | clips / epoch |", "|---|---|---|---|---|"]
    bench = results / "bench-cpu.json"
    if bench.is_file():
        b = json.loads(bench.read_text())
        for r in b["rows"]:
            rows.append(
                f"| {r['model']} | {r['dataset']} (fold 0) | CPU {b['cpu']}, {b['threads']} thread, "
                f"load {b['load_before'][0]} | {r['epoch_s']:.2f} | {r['clips']} |"
            )
    for d in ("aesdd", "ravdess"):
        for m in ("cnn", "crnn"):
            evs = runs["models"].get(f"{d}-{m}")
            if evs and evs[0]["summary"].get("epoch_time_s"):
                s = evs[0]["summary"]
                rows.append(
                    f"| {m} | {d} | {s['device']} (grid run, one core of a shared machine) | "
                    f"{np.median([e['summary']['epoch_time_s'] for e in evs]):.2f} | "
                    f"{round(s['n_train_clips'] * 5 / 6)} |"
                )
    if bench.is_file() and b.get("features"):
        f = b["features"]
        rows += [
            "",
            "| feature extraction (bench) | clips | ms / clip | read | preprocess (trim, RMS) | log-mel | "
            "s compute per s of audio |",
            "|---|---|---|---|---|---|---|",
            f"| {f['dataset']}, CPU {b['cpu']}, {b['threads']} thread, load {b['load_before'][0]} | {f['clips']} | "
            f"{f['ms_per_clip']:.1f} | {f['ms_read']:.1f} | {f['ms_preprocess']:.1f} | {f['ms_logmel']:.1f} | "
            f"{f['real_time_factor']:.4f} |",
        ]
    return "\n".join(rows)


def confusion_figure(runs, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [(d, m) for d in ("aesdd", "ravdess") for m in ("cnn", "crnn", "svm") if runs["models"].get(f"{d}-{m}")]
    if not cells:
        return
    fig, axes = plt.subplots(2, 3, figsize=(15, 9.5))
    for ax in axes.ravel():
        ax.axis("off")
    for (d, m), ax in zip(
        cells, [axes[0 if d == "aesdd" else 1][("cnn", "crnn", "svm").index(m)] for d, m in cells], strict=True
    ):
        evs = runs["models"][f"{d}-{m}"]
        c = pooled_confusion(evs).astype(float)
        c = c / c.sum(axis=1, keepdims=True)
        emotions = evs[0]["emotions"]
        ax.axis("on")
        ax.imshow(c, cmap="Blues", vmin=0, vmax=1)
        for i in range(len(c)):
            for j in range(len(c)):
                ax.text(
                    j,
                    i,
                    f"{100 * c[i, j]:.0f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if c[i, j] > 0.5 else "black",
                )
        ax.set_xticks(range(len(c)), [e[:4] for e in emotions], rotation=45)
        ax.set_yticks(range(len(c)), [e[:4] for e in emotions])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{d} / {m}: recall-normalised %, {len(evs)} seed(s) pooled")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def explore_table(results: Path) -> str:
    rows = [
        "| corpus | emotion | clips | duration s | level dBFS | F0 Hz | F0 range p10-p90 (st) |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in ("aesdd", "ravdess"):
        path = results / "explore" / f"{d}.json"
        if not path.is_file():
            continue
        for e, r in json.loads(path.read_text())["per_emotion"].items():
            rows.append(
                f"| {d} | {e} | {r['clips']} | {r['duration_s']:.2f} | {r['level_dbfs']:.1f} | "
                f"{r['f0_hz']:.0f} | {r['f0_range_st']:.1f} |"
            )
    return "\n".join(rows)


def best_stronger(runs) -> tuple[str, list[dict]] | None:
    """The speaker-independent stronger row with 3 seeds and the highest mean accuracy (name, evals)."""
    rows = [
        (k, evs)
        for k, evs in runs["stronger"].items()
        if k.startswith("aesdd-") and len(evs) == 3 and evs[0]["config"]["folds"] == "loso"
    ]
    return max(rows, key=lambda r: np.mean(seed_stats(r[1], "accuracy"))) if rows else None


def headline(runs) -> str:
    a, r = runs["models"].get("aesdd-cnn"), runs["models"].get("ravdess-cnn")
    if not a or not r:
        return "not run yet"
    best = best_stronger(runs)
    # strict protocol only: no adapted (adabn) or speaker-normalised (spk) ensemble
    ens = [e[0]["accuracy_mean"] for k, e in runs["ensemble"].items() if e and "adabn" not in k and "spk" not in k]
    accs = [np.mean(seed_stats(a, "accuracy")), *ens]
    more = ""
    if best:
        accs.append(np.mean(seed_stats(best[1], "accuracy")))
        more = f"; best 3-seed row {STRONGER_ROWS.get(best[0], best[0])} {pm(seed_stats(best[1], 'accuracy'))}%"
    if ens:
        more += f", best seed ensemble {100 * max(ens):.1f}%"
    top = max(accs)
    adapted = [(k, v) for k, v in runs["adabn"].items() if len(v) == 3 and k.startswith("aesdd-")]
    adapted_ens = [v[0]["accuracy_mean"] for k, v in runs["ensemble"].items() if "adabn" in k and v]
    if adapted:
        k, v = max(adapted, key=lambda kv: np.mean(seed_stats(kv[1], "accuracy")))
        more += (
            f"; with test-time BatchNorm adaptation to the held-out speaker's unlabelled clips: best 3-seed row "
            f"{k} {pm(seed_stats(v, 'accuracy'))}% ({100 * (np.mean(seed_stats(v, 'accuracy')) - ANCHOR_AESDD):+.1f} "
            "points against ~69%)"
        )
        if adapted_ens:
            more += f", best adapted seed ensemble {100 * max(adapted_ens):.1f}%"
    return (
        f"AESDD leave-one-speaker-out: CNN {pm(seed_stats(a, 'accuracy'))}% accuracy ({len(a)} seeds, SVM baseline "
        f"{pm(seed_stats(runs['models']['aesdd-svm'], 'accuracy'))}%{more}); RAVDESS actor-grouped 8-class: CNN "
        f"{pm(seed_stats(r, 'accuracy'))}% ({len(r)} seed{'s' if len(r) > 1 else ''}); "
        f"CPU scale; without adaptation {100 * (ANCHOR_AESDD - top):.0f} points below the ~69% AESDD CNN anchor "
        "(unverified, protocol unknown), human-listener figures not verifiable here"
    )


def _main(argv=None) -> None:
    from paperlab.shared.report import update_markdown, write_headline

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--collect", default="", help="copy finished grid runs from this folder first")
    parser.add_argument("--results", default="projects/speech/results")
    parser.add_argument("--readme", nargs="+", default=["projects/speech/README.md", "projects/speech/REPORT.md"])
    parser.add_argument("--index", default="", help="top-level README whose headline:speech cell to update")
    args = parser.parse_args(argv)
    results = Path(args.results)
    if args.collect:
        print(f"collected {collect(Path(args.collect), results)} finished runs from {args.collect}")
    runs = load_runs(results)
    if not runs:
        raise FileNotFoundError(
            f"no runs under {results / 'grid'} (make grid-speech, then make report-speech COLLECT=1)"
        )
    confusion_figure(runs, results / "confusion.png")
    blocks = {
        "speech-models": models_table(runs),
        "speech-perclass-aesdd": perclass_table(runs, "aesdd"),
        "speech-perclass-ravdess": perclass_table(runs, "ravdess"),
        "speech-perfold-aesdd": perfold_table(runs, "aesdd"),
        "speech-perfold-ravdess": perfold_table(runs, "ravdess"),
        "speech-augment": augment_table(runs),
        "speech-mels": mels_table(runs),
        "speech-cross": cross_table(runs),
        "speech-stronger": stronger_table(runs),
        "speech-speakernorm": speakernorm_table(runs),
        "speech-adabn": adabn_table(runs),
        "speech-timing": timing_table(runs, results),
        "speech-explore": explore_table(results),
    }
    written = update_markdown(args.readme, blocks)
    print("; ".join(f"{p}: {', '.join(n)}" for p, n in written.items()))
    if args.index:
        write_headline(args.index, "speech", headline(runs))


def main(argv=None):
    from paperlab.shared.cli import run_command

    run_command(_main, argv)


if __name__ == "__main__":
    main()
