"""README/REPORT tables and figures from the committed results (never from runs/ directly).

    python -m paperlab.gcnn.report --results projects/gcnn/results \
        --readme projects/gcnn/README.md projects/gcnn/REPORT.md [--collect-cpu runs/gcnn/cpu]

Reads ``results/<dataset>/grid.jsonl`` (one line per run: job, overrides, summary, eval; written by
:mod:`paperlab.gcnn.grid`), ``results/<dataset>/bench.json`` and writes the blocks
``<!-- report:gcnn-* -->`` and ``results/*.png``. Means are over the seeds that finished; the number
of seeds is in every row.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections import defaultdict
from pathlib import Path

from paperlab.shared.cli import run_command
from paperlab.shared.report import update_markdown

ORDER = ["cnn", "c4", "c8", "c16", "d4", "so2", "e2c4", "e2c8"]
NAMES = {
    "cnn": "plain CNN",
    "c4": "C4 G-CNN",
    "c8": "C8 G-CNN",
    "c16": "C16 G-CNN",
    "d4": "D4 G-CNN",
    "so2": "steerable SO(2)",
    "e2c4": "e2cnn C4 (peer)",
    "e2c8": "e2cnn C8 (peer)",
}


def read_grid(path: Path, finished: bool = True) -> list[dict]:
    """The finished runs of a grid file (``finished=False``: the ones stopped before their last step)."""
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    done = [r for r in rows if r.get("eval") and (r.get("summary") or {}).get("finished")]
    return done if finished else [r for r in rows if r not in done]


def unfinished_table(paths: list[Path]) -> str:
    lines = ["| grid | run | steps done / planned | epoch wall times (s, shared GPU) | exit |", "|---|---|---|---|---|"]
    for p in paths:
        for r in read_grid(p, finished=False):
            s = r.get("summary") or {}
            steps = f"{s.get('steps', 0)} / {s.get('total_steps', '?')}" if s else "none (still building the model)"
            times = ", ".join(f"{t:.0f}" for t in s.get("epoch_times_s", [])) or "-"
            lines.append(f"| {p.parent.name} | {r['job']} | {steps} | {times} | {r['rc']} |")
    return "\n".join(lines)


def setting(job: str) -> str:
    """'c4-frac0.05-seed2' -> 'frac0.05'; 'c8-seed1' -> 'main'."""
    parts = re.sub(r"-seed\d+$", "", job).split("-", 1)
    return parts[1] if len(parts) > 1 else "main"


def mean_std(values: list[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    s = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return m, s


def fmt(values: list[float], scale: float = 100.0, digits: int = 2) -> str:
    if not values:
        return "-"
    m, s = mean_std([scale * v for v in values])
    return f"{m:.{digits}f} ± {s:.{digits}f}" if len(values) > 1 else f"{m:.{digits}f}"


def grouped(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    out: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        out[(r["eval"]["model"], setting(r["job"]))].append(r)
    return out


def _device(rows: list[dict]) -> str:
    devs = sorted({(r["summary"].get("device") or "?").replace("cuda (", "").rstrip(")") for r in rows})
    return ", ".join(devs)


def accuracy_table(
    rows: list[dict], key: str, arbitrary: list[str], error: bool = False, time_label: str = "s/epoch (shared GPU)"
) -> str:
    """One row per model of setting ``key``: accuracy (or error) upright, at 90 degrees, and the mean over
    the ``arbitrary`` angles."""
    g = grouped(rows)
    head = "error %" if error else "accuracy %"
    arb_names = "/".join(a.split(".")[0] for a in arbitrary)
    lines = [
        f"| model | params | seeds | test {head} | rotated 90° | rotated {arb_names}° "
        f"(mean) | epochs | {time_label} | device |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in ORDER:
        runs = g.get((m, key), [])
        if not runs:
            continue

        def acc(angle, runs=runs):
            return [r["eval"]["accuracy"][angle] for r in runs if angle in r["eval"]["accuracy"]]

        arb = [sum(r["eval"]["accuracy"][a] for a in arbitrary) / len(arbitrary) for r in runs]
        conv = (lambda v: [1 - x for x in v]) if error else (lambda v: v)
        epoch_s = [t for r in runs for t in r["summary"].get("epoch_times_s", [])[1:]] or [
            t for r in runs for t in r["summary"].get("epoch_times_s", [])
        ]
        lines.append(
            f"| {NAMES[m]} | {runs[0]['eval']['n_params']:,} | {len(runs)} | {fmt(conv(acc('0.0')))} | "
            f"{fmt(conv(acc('90.0')))} | {fmt(conv(arb))} | {runs[0]['summary']['epochs']} | "
            f"{(sum(epoch_s) / len(epoch_s)) if epoch_s else float('nan'):.1f} | {_device(runs)} |"
        )
    return "\n".join(lines)


def angle_table(rows: list[dict], angles: list[str]) -> str:
    g = grouped(rows)
    lines = ["| model | " + " | ".join(f"{a.split('.')[0]}°" for a in angles) + " |", "|---|" + "---|" * len(angles)]
    for m in ORDER:
        runs = g.get((m, "main"), [])
        if runs:
            cells = [
                fmt([r["eval"]["accuracy"][a] for r in runs if a in r["eval"]["accuracy"]], digits=1) for a in angles
            ]
            lines.append(f"| {NAMES[m]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def equivariance_table(rows: list[dict]) -> str:
    """Per-layer relative equivariance error of seed 1 of every model (trained weights)."""
    g = grouped(rows)
    lines = ["| model | angle | layer 1 | 2 | 3 | 4 | 5 | 6 |", "|---|---|---|---|---|---|---|---|"]
    for m in ORDER:
        runs = sorted(g.get((m, "main"), []), key=lambda r: r["eval"]["seed"])
        if not runs or not runs[0]["eval"].get("equivariance"):
            continue
        for angle, errs in runs[0]["eval"]["equivariance"].items():
            label = f"{angle.rstrip('0').rstrip('.')}°" if angle[0].isdigit() else angle
            lines.append(f"| {NAMES[m]} | {label} | " + " | ".join(f"{e:.1e}" for e in errs) + " |")
    return "\n".join(lines)


def invariance_table(rows: list[dict], angles=("15.0", "30.0", "45.0", "90.0", "135.0", "180.0")) -> str:
    g = grouped(rows)
    lines = ["| model | " + " | ".join(f"{a.split('.')[0]}°" for a in angles) + " |", "|---|" + "---|" * len(angles)]
    for m in ORDER:
        runs = g.get((m, "main"), [])
        if runs:
            cells = []
            for a in angles:
                v = [r["eval"]["invariance"][a]["logit_rel_err"] for r in runs if a in r["eval"]["invariance"]]
                p = [r["eval"]["invariance"][a]["same_prediction"] for r in runs if a in r["eval"]["invariance"]]
                cells.append(f"{sum(v) / len(v):.3f} ({100 * sum(p) / len(p):.0f}%)" if v else "-")
            lines.append(f"| {NAMES[m]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def efficiency_table(rows: list[dict], error: bool = False, prefix: str = "frac") -> str:
    """Accuracy (or error) % vs the fraction of the training set; settings ``<prefix><fraction>``
    (frac: the same number of epochs; eqsteps: about the same number of steps)."""
    g = grouped(rows)
    fracs = sorted({k[1] for k in g if k[1].startswith(prefix)}, key=lambda s: float(s[len(prefix) :]))
    if not fracs:
        return "(no data-efficiency runs finished)"
    n_full = next((r["summary"]["n_train"] for r in rows if setting(r["job"]) == "main"), None)

    def head(f: float) -> str:
        return f"{100 * f:g}% of train" + (f" ({round(f * n_full):,})" if n_full else "")

    lines = [
        "| model (seeds: fractions; 100%) | "
        + " | ".join(head(float(f[len(prefix) :])) for f in fracs)
        + f" | {head(1.0)} |",
        "|---|" + "---|" * (len(fracs) + 1),
    ]
    for m in ORDER:
        cells = [
            fmt([(1 - a if error else a) for a in (r["eval"]["accuracy"]["0.0"] for r in g.get((m, f), []))], digits=1)
            for f in [*fracs, "main"]
        ]
        if any(c != "-" for c in cells[:-1]):
            n = sorted({len(g.get((m, f), [])) for f in fracs})
            seeds = f"{'/'.join(map(str, n))}; {len(g.get((m, 'main'), []))}"
            lines.append(f"| {NAMES[m]} ({seeds}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def error_table(rows: list[dict], key: str = "main", time_label: str = "s/epoch (1 core, shared)") -> str:
    """Test error % on the (rotated) test set per model of setting ``key``: mean ± sd over seeds, and each seed."""
    g = grouped(rows)
    lines = [
        f"| model | params | seeds | test error % | per seed | epochs | train / test images | {time_label} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in ORDER:
        runs = sorted(g.get((m, key), []), key=lambda r: r["eval"]["seed"])
        if not runs:
            continue
        errs = [1 - r["eval"]["accuracy"]["0.0"] for r in runs]
        epoch_s = [t for r in runs for t in r["summary"].get("epoch_times_s", [])]
        lines.append(
            f"| {NAMES[m]} | {runs[0]['eval']['n_params']:,} | {len(runs)} | {fmt(errs)} | "
            f"{', '.join(f'{100 * e:.2f}' for e in errs)} | {runs[0]['summary']['epochs']} | "
            f"{runs[0]['summary']['n_train']:,} / {runs[0]['eval']['n_test']:,} | {sum(epoch_s) / len(epoch_s):.1f} |"
        )
    return "\n".join(lines)


def seeds_accuracy_table(rows: list[dict], arbitrary: list[str], time_label: str = "s/epoch (1 core, shared)") -> str:
    """Test accuracy % per model (setting "main"): mean ± sd over seeds, each seed, at 90 degrees, and the
    mean over the ``arbitrary`` angles (each seed's mean over them, then mean ± sd)."""
    g = grouped(rows)
    arb_names = "/".join(a.split(".")[0] for a in arbitrary)
    lines = [
        f"| model | params | seeds | test accuracy % | per seed | rotated 90° | rotated {arb_names}° (mean) | "
        f"epochs | train / test images | {time_label} |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in ORDER:
        runs = sorted(g.get((m, "main"), []), key=lambda r: r["eval"]["seed"])
        if not runs:
            continue
        acc = [r["eval"]["accuracy"]["0.0"] for r in runs]
        rot = [r["eval"]["accuracy"]["90.0"] for r in runs]
        arb = [sum(r["eval"]["accuracy"][a] for a in arbitrary) / len(arbitrary) for r in runs]
        epoch_s = [t for r in runs for t in r["summary"].get("epoch_times_s", [])]
        lines.append(
            f"| {NAMES[m]} | {runs[0]['eval']['n_params']:,} | {len(runs)} | {fmt(acc)} | "
            f"{', '.join(f'{100 * a:.2f}' for a in acc)} | {fmt(rot)} | {fmt(arb)} | {runs[0]['summary']['epochs']} | "
            f"{runs[0]['summary']['n_train']:,} / {runs[0]['eval']['n_test']:,} | {sum(epoch_s) / len(epoch_s):.1f} |"
        )
    return "\n".join(lines)


def settings_table(rows: list[dict], picks: list[tuple[str, str, str]], arbitrary: list[str]) -> str:
    """One row per (model, setting, label) of ``picks``: parameters, seeds, epochs, accuracy upright, at 90
    degrees and the mean over the ``arbitrary`` angles (matched width, longer training)."""
    g = grouped(rows)
    arb_names = "/".join(a.split(".")[0] for a in arbitrary)
    lines = [
        f"| model | params | seeds | epochs | test accuracy % | rotated 90° | rotated {arb_names}° (mean) |",
        "|---|---|---|---|---|---|---|",
    ]
    for m, key, label in picks:
        runs = g.get((m, key), [])
        if runs:
            arb = [sum(r["eval"]["accuracy"][a] for a in arbitrary) / len(arbitrary) for r in runs]
            lines.append(
                f"| {label} | {runs[0]['eval']['n_params']:,} | {len(runs)} | {runs[0]['summary']['epochs']} | "
                f"{fmt([r['eval']['accuracy']['0.0'] for r in runs])} | "
                f"{fmt([r['eval']['accuracy']['90.0'] for r in runs])} | {fmt(arb)} |"
            )
    return "\n".join(lines)


def upright_table(rows: list[dict]) -> str:
    """Rotated test error of the models trained on rotated digits vs on the same digits upright."""
    g = grouped(rows)
    lines = [
        "| model | seeds | trained on rotated digits: test error % | trained upright: test error % |",
        "|---|---|---|---|",
    ]
    for m in ORDER:
        up = g.get((m, "upright"), [])
        if up:
            rot = [1 - r["eval"]["accuracy"]["0.0"] for r in g.get((m, "main"), [])]
            lines.append(
                f"| {NAMES[m]} | {len(rot)} / {len(up)} | {fmt(rot)} | "
                f"{fmt([1 - r['eval']['accuracy']['0.0'] for r in up])} |"
            )
    return "\n".join(lines)


def plot_efficiency(
    rows: list[dict], path: Path, title: str, error: bool = True, what: str = "training digits"
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = grouped(rows)
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    for m in ORDER:
        pts = []
        for (model, key), runs in g.items():
            if model == m and (key == "main" or key.startswith("frac")):
                vals = [100 * ((1 - a) if error else a) for a in (r["eval"]["accuracy"]["0.0"] for r in runs)]
                pts.append((runs[0]["summary"]["n_train"], sum(vals) / len(vals)))
        if len(pts) > 1:
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=4, label=NAMES[m])
    ax.set_xscale("log", base=2)
    ax.set_xlabel(f"{what} (same number of epochs)")
    ax.set_ylabel("rotated test error %" if error else "test accuracy %")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def width_table(rows: list[dict], error: bool = False) -> str:
    if error:
        g = grouped(rows)
        lines = ["| model | params | seeds | test error % |", "|---|---|---|---|"]
        for m, key in (("cnn", "main"), ("c4", "main"), ("c4", "width")):
            runs = g.get((m, key), [])
            if runs:
                label = NAMES[m] + (" at the CNN's width" if key == "width" else " (matched params)")
                errs = [1 - r["eval"]["accuracy"]["0.0"] for r in runs]
                lines.append(f"| {label} | {runs[0]['eval']['n_params']:,} | {len(runs)} | {fmt(errs)} |")
        return "\n".join(lines)
    return _width_table_accuracy(rows)


def _width_table_accuracy(rows: list[dict]) -> str:
    g = grouped(rows)
    lines = ["| model | params | seeds | test accuracy % | rotated 90° |", "|---|---|---|---|---|"]
    for m, key in (("cnn", "main"), ("c4", "main"), ("c4", "width")):
        runs = g.get((m, key), [])
        if runs:
            label = NAMES[m] + (" at the CNN's width (4x params)" if key == "width" else " (matched params)")
            lines.append(
                f"| {label} | {runs[0]['eval']['n_params']:,} | {len(runs)} | "
                f"{fmt([r['eval']['accuracy']['0.0'] for r in runs])} | "
                f"{fmt([r['eval']['accuracy']['90.0'] for r in runs])} |"
            )
    return "\n".join(lines)


def confusion_table(path: Path) -> str:
    """The most confused digit pairs of each analysed run, as % of the test digits (either direction)."""
    from paperlab.gcnn.confusion import confused_pairs

    runs = json.loads(path.read_text())
    lines = [
        "| model (seed) | test error % | 6 ↔ 9 | 2 ↔ 5 | the three most confused pairs |",
        "|---|---|---|---|---|",
    ]
    for name in sorted(runs, key=lambda n: ORDER.index(runs[n]["model"])):
        r = runs[name]
        m, n = r["matrix"], r["n_test"]
        err = 100 * (1 - sum(m[i][i] for i in range(len(m))) / n)

        def pair(a: int, b: int, m=m, n=n) -> str:
            return f"{100 * (m[a][b] + m[b][a]) / n:.2f}"

        top = ", ".join(f"{a} ↔ {b}: {100 * c / n:.2f}" for a, b, c in confused_pairs(m))
        lines.append(f"| {NAMES[r['model']]} ({r['seed']}) | {err:.2f} | {pair(6, 9)} | {pair(2, 5)} | {top} |")
    return "\n".join(lines)


def bench_table(paths: list[Path]) -> str:
    lines = [
        "| device | input | model | params | ms/step | images/s | filter expansion ms (forward) |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in paths:
        if not p.is_file():
            continue
        b = json.loads(p.read_text())
        dev = b["device"] if b["device"] != "cpu" else f"CPU ({b['cpu']}, {b['threads']} thread, load {b['load'][0]})"
        for r in b["rows"]:
            lines.append(
                f"| {dev} | {'x'.join(map(str, b['input']))} | {NAMES[r['model']]} | {r['n_params']:,} | "
                f"{r['ms_per_step']:.1f} | {r['images_per_s']:.0f} | {r['filter_expansion_ms_forward']:.2f} |"
            )
    return "\n".join(lines)


def plot_invariance(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = grouped(rows)
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for m in ORDER:
        runs = g.get((m, "main"), [])
        if not runs:
            continue
        angles = sorted(runs[0]["eval"]["invariance"], key=float)
        vals = [sum(r["eval"]["invariance"][a]["logit_rel_err"] for r in runs) / len(runs) for a in angles]
        ax.plot([float(a) for a in angles], vals, marker="o", ms=3, label=NAMES[m])
    ax.set_xlabel("rotation of the (disc-masked) input, degrees")
    ax.set_ylabel("relative change of the logits")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_xticks(range(0, 361, 45))
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_accuracy_vs_angle(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = grouped(rows)
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for m in ORDER:
        runs = g.get((m, "main"), [])
        if not runs:
            continue
        angles = sorted(runs[0]["eval"]["accuracy"], key=float)
        vals = [100 * sum(r["eval"]["accuracy"][a] for r in runs) / len(runs) for a in angles]
        ax.plot([float(a) for a in angles], vals, marker="o", ms=4, label=NAMES[m])
    ax.set_xlabel("rotation of the test images, degrees")
    ax.set_ylabel("test accuracy %")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def layer_study(path: Path, fig: Path) -> str:
    """Tables (and a figure) of ``study.py``'s error-vs-angle of untrained layers on smooth inputs."""
    r = json.loads(path.read_text())
    angles = ["22.5", "45", "67.5", "90"]
    lines = [
        "| group | filters | layers | " + " | ".join(f"{a}°" for a in angles) + " |",
        "|---|---|---|---|---|---|---|",
    ]
    for g, kinds in r["cn"].items():
        for kind, layers in kinds.items():
            for name, errs in layers.items():
                cells = [f"{errs[a]:.3f}" if a in errs else "·" for a in angles]
                lines.append(f"| {g} | {kind} | {name} | " + " | ".join(cells) + " |")
    so2_angles = ["7.5", "15", "22.5", "30", "45", "60", "90"]
    lines += [
        "",
        "| steerable SO(2) | " + " | ".join(f"{a}°" for a in so2_angles) + " |",
        "|---|" + "---|" * len(so2_angles),
    ]
    for name, errs in r["so2"].items():
        lines.append(f"| {name} | " + " | ".join(f"{errs[a]:.3f}" for a in so2_angles) + " |")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f, ax = plt.subplots(figsize=(6.5, 3.4))
    for name, errs in r["so2"].items():
        ax.plot([float(a) for a in errs], list(errs.values()), marker="o", ms=3, label=f"steerable SO(2), {name}")
    for g, marker in (("C8", "s"), ("C16", "^")):
        for kind, ls in (("white-noise filters", "none"), ("blurred filters", "none")):
            errs = r["cn"][g][kind]["lifting+group"]
            ax.plot(
                [float(a) for a in errs],
                list(errs.values()),
                marker=marker,
                ls=ls,
                fillstyle="none" if kind.startswith("white") else "full",
                label=f"{g} lifting+group, {kind}",
            )
    ax.set_xlabel("rotation angle, degrees")
    ax.set_ylabel("relative equivariance error")
    ax.set_title("Untrained layers on smooth inputs (study.py)", fontsize=10)
    ax.set_xticks(range(0, 91, 15))
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    f.tight_layout()
    f.savefig(fig, dpi=110)
    plt.close(f)
    return "\n".join(lines)


def build_blocks(results: Path) -> dict[str, str]:
    blocks: dict[str, str] = {}
    if (results / "layer-equivariance.json").is_file():
        blocks["gcnn-layer-study"] = layer_study(
            results / "layer-equivariance.json", results / "layer-equivariance.png"
        )
    es = read_grid(results / "eurosat" / "grid.jsonl")
    mn = read_grid(results / "mnist_rot" / "grid.jsonl")
    cpu = read_grid(results / "cpu" / "grid.jsonl")
    full = read_grid(results / "cpu_full" / "grid.jsonl")
    if es:
        arb = ["15.0", "30.0", "45.0", "60.0"]
        blocks["gcnn-eurosat"] = accuracy_table(es, "main", arb)
        blocks["gcnn-eurosat-angles"] = angle_table(es, sorted(es[0]["eval"]["accuracy"], key=float))
        settings = {setting(r["job"]) for r in es}
        if "width" in settings:  # blocks of runs that a short lease may not have reached
            blocks["gcnn-eurosat-width"] = width_table(es)
        if any(s.startswith("frac") for s in settings):
            blocks["gcnn-efficiency"] = efficiency_table(es)
        blocks["gcnn-equivariance"] = equivariance_table(es)
        blocks["gcnn-invariance"] = invariance_table(es)
        plot_invariance(
            es, results / "invariance-eurosat.png", "EuroSAT: invariance of the trained nets (seeds averaged)"
        )
        plot_accuracy_vs_angle(es, results / "accuracy-vs-angle-eurosat.png", "EuroSAT test accuracy vs rotation")
    if mn:
        blocks["gcnn-mnist"] = accuracy_table(mn, "main", ["45.0"], error=True)
        if any(setting(r["job"]) == "upright" for r in mn):
            blocks["gcnn-mnist-upright"] = accuracy_table(mn, "upright", ["45.0"], error=True)
    if cpu:
        blocks["gcnn-cpu"] = accuracy_table(cpu, "main", ["45.0"], error=True, time_label="s/epoch (1 core, shared)")
    if full:
        blocks["gcnn-cpu-full"] = error_table(full)
        blocks["gcnn-cpu-full-equivariance"] = equivariance_table(full)
        blocks["gcnn-cpu-full-invariance"] = invariance_table(full)
        settings = {setting(r["job"]) for r in full}
        blocks["gcnn-cpu-upright"] = upright_table(full) if "upright" in settings else "(no upright runs finished)"
        blocks["gcnn-cpu-efficiency"] = efficiency_table(full, error=True)
        if any(s.startswith("eqsteps") for s in settings):
            blocks["gcnn-cpu-efficiency-steps"] = efficiency_table(full, error=True, prefix="eqsteps")
        if any(s.startswith("frac") for s in settings):
            plot_efficiency(full, results / "efficiency-mnist-cpu.png", "Rotated MNIST (CPU scale): error vs data")
        if "width" in settings:
            blocks["gcnn-cpu-width"] = width_table(full, error=True)
    ecpu = read_grid(results / "eurosat_cpu" / "grid.jsonl")
    if ecpu:
        arb = ["15.0", "30.0", "45.0"]
        blocks["gcnn-eurosat-cpu"] = seeds_accuracy_table(ecpu, arb)
        blocks["gcnn-eurosat-cpu-angles"] = angle_table(ecpu, sorted(ecpu[0]["eval"]["accuracy"], key=float))
        blocks["gcnn-eurosat-cpu-equivariance"] = equivariance_table(ecpu)
        blocks["gcnn-eurosat-cpu-invariance"] = invariance_table(ecpu)
        plot_accuracy_vs_angle(
            ecpu, results / "accuracy-vs-angle-eurosat-cpu.png", "EuroSAT 32x32 (CPU scale): test accuracy vs rotation"
        )
        settings = {setting(r["job"]) for r in ecpu}
        blocks["gcnn-eurosat-cpu-efficiency"] = efficiency_table(ecpu)
        if any(s.startswith("frac") for s in settings):
            plot_efficiency(
                ecpu,
                results / "efficiency-eurosat-cpu.png",
                "EuroSAT 32x32 (CPU scale): accuracy vs data",
                error=False,
                what="training images",
            )
        picks = [
            ("cnn", "main", "plain CNN"),
            ("c4", "main", "C4 G-CNN (matched params)"),
            ("c4", "width", "C4 G-CNN at the CNN's width"),
            ("cnn", "e10", "plain CNN, 10 epochs"),
            ("c4", "e10", "C4 G-CNN (matched params), 10 epochs"),
            ("d4", "e10", "D4 G-CNN (matched params), 10 epochs"),
            ("so2", "e10", "steerable SO(2) (matched params), 10 epochs"),
        ]
        blocks["gcnn-eurosat-cpu-width"] = (
            settings_table(ecpu, picks, arb)
            if settings & {"width", "e10"}
            else "(no matched-width or longer run finished)"
        )
    if (results / "cpu_full" / "confusion.json").is_file():
        blocks["gcnn-cpu-confusion"] = confusion_table(results / "cpu_full" / "confusion.json")
    blocks["gcnn-unfinished"] = unfinished_table(
        [results / "eurosat" / "grid.jsonl", results / "mnist_rot" / "grid.jsonl"]
    )
    benches = sorted(results.glob("*/bench.json")) + sorted(results.glob("bench*.json"))
    if benches:
        blocks["gcnn-bench"] = bench_table(benches)
    return blocks


def collect_runs(root: Path, out: Path) -> None:
    """Bundle every finished run under ``root`` (summary.json + eval.json + epoch rows) into ``out``."""
    from paperlab.gcnn.grid import collect

    rows = []
    for summary in sorted(root.glob("*/*/summary.json")):
        run_dir = summary.parent
        row = collect(run_dir, f"{run_dir.name}", [], 0)
        if row["eval"] and row["summary"].get("finished"):
            rows.append(row)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"collected {len(rows)} runs into {out}")


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="projects/gcnn/results")
    parser.add_argument("--readme", nargs="+", default=["projects/gcnn/README.md", "projects/gcnn/REPORT.md"])
    parser.add_argument(
        "--collect-cpu", default=None, help="publish: bundle runs/gcnn/cpu/<grid>/<run>/ into results/cpu"
    )
    args = parser.parse_args(argv)
    results = Path(args.results)
    if args.collect_cpu:
        collect_runs(Path(args.collect_cpu), results / "cpu" / "grid.jsonl")
    if not results.is_dir():
        raise FileNotFoundError(f"no results folder {results}")
    blocks = build_blocks(results)
    written = update_markdown(args.readme, blocks)
    for path, names in written.items():
        print(f"{path}: {', '.join(names) or 'no blocks'}")


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
