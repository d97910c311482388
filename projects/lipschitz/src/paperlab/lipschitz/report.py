"""README / REPORT tables and figures of projects/lipschitz from the committed ``results/``.

    python -m paperlab.lipschitz.report --collect runs/lipschitz --results projects/lipschitz/results \
        --readme projects/lipschitz/README.md projects/lipschitz/REPORT.md

``--collect`` first copies the small files of every evaluated run (``runs/lipschitz/cifar10/<model>-seed<k>``,
``runs/lipschitz/sweep/<name>``: config.yaml, summary.json, eval.json, metrics.jsonl), of every finished
pilot (``runs/lipschitz/pilot/<name>``: short runs scored by the end-of-epoch evaluation only) and the
analysis JSONs into ``results/``; without it only the committed files are read.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from paperlab.shared.cli import run_command
from paperlab.shared.report import update_markdown, write_headline

# run names <model>-seed1; the *-ce pair (the long run's loss at 6 epochs) is listed only once it has run
MODELS = ("baseline", "spectral", "bjorck", "torchlip", "bjorck-ce", "torchlip-ce", "bjorck-long", "bjorck-cert")
OPTIONAL = ("bjorck-ce", "torchlip-ce")
LABELS = {
    "bjorck-ce": "Björck (here), offset CE",
    "torchlip-ce": "deel-torchlip (peer), offset CE",
    "bjorck-long": "Björck (here), longer run",
    "bjorck-cert": "Björck (here), long run, offset CE",
    "baseline": "unconstrained CNN (ReLU, CE)",
    "spectral": "spectral norm (here)",
    "bjorck": "Björck (here)",
    "torchlip": "deel-torchlip (peer)",
}
FILES = ("config.yaml", "summary.json", "eval.json", "metrics.jsonl")


def collect(runs: Path, results: Path) -> int:
    n = 0
    for group in ("cifar10", "sweep"):
        for run in sorted((runs / group).glob("*")):
            if not (run / "eval.json").is_file():
                continue
            dest = results / group / run.name
            dest.mkdir(parents=True, exist_ok=True)
            for name in FILES:
                if (run / name).is_file():
                    shutil.copy2(run / name, dest / name)
            n += 1
    for run in sorted((runs / "pilot").glob("*")):
        summary = _load(run / "summary.json")
        if not (summary and summary.get("finished")):
            continue
        dest = results / "pilot" / run.name
        dest.mkdir(parents=True, exist_ok=True)
        for name in ("config.yaml", "summary.json", "metrics.jsonl"):
            shutil.copy2(run / name, dest / name)
        n += 1
    for name in ("step_cost.json", "spectra.json"):
        if (runs / "analysis" / name).is_file():
            (results / "analysis").mkdir(parents=True, exist_ok=True)
            shutil.copy2(runs / "analysis" / name, results / "analysis" / name)
    return n


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def _config(run: Path) -> dict:
    import yaml

    return yaml.safe_load((run / "config.yaml").read_text()) if (run / "config.yaml").is_file() else {}


def loss_label(cfg: dict) -> str:
    """hKR (m 0.5) | CE (τ 10) | CE (τ 10, offset 0.3) | hinge (m 0.5), from a run's config.yaml."""
    if cfg.get("loss") == "ce":
        offset = cfg.get("offset", 0.0)
        return f"CE (τ {cfg['temperature']:g}" + (f", offset {offset:g})" if offset else ")")
    if cfg.get("loss") in ("hkr", "hinge"):
        return f"{'hKR' if cfg['loss'] == 'hkr' else 'hinge'} (m {cfg['margin']:g})"
    return "?"


def table(results: Path) -> str:
    head = (
        "| model | loss | params | epochs | s / epoch | clean | cert. 36 | cert. 72 | cert. 108 | cert. 255 "
        "| PGD 36 | PGD 72 | PGD 108 | PGD 255 | Lip. lower | Lip. upper |"
    )
    rows = [head, "|" + "---|" * 16]
    for m in MODELS:
        ev = _load(results / "cifar10" / f"{m}-seed1" / "eval.json")
        if ev is None and m in OPTIONAL:
            continue
        if ev is None:
            rows.append(f"| {LABELS[m]} | not run yet |" + " |" * 14)
            continue
        if ev.get("epochs") is None:
            ev = {**ev, "epochs": "?"}
        c, p = ev["certified"], ev["pgd"]
        label = loss_label(_config(results / "cifar10" / f"{m}-seed1"))
        rows.append(
            f"| {LABELS[m]} | {label} | {ev.get('n_params', 0) / 1e3:.0f}k | {ev.get('epochs')} "
            f"| {ev.get('epoch_time_s') or 0:.0f} "
            f"| {_pct(ev['clean_acc'])} | "
            + " | ".join(_pct(c.get(r)) for r in ("36", "72", "108", "255"))
            + " | "
            + " | ".join(_pct(p.get(r)) for r in ("36", "72", "108", "255"))
            + f" | {ev['lipschitz_lower']:.3f} | {ev['lipschitz_upper']:.4g} |"
        )
    ev = _load(results / "cifar10" / "bjorck-seed1" / "eval.json")
    note = ""
    if ev:
        note = (
            f"\n\nAccuracies in % on the {ev['n_test']} CIFAR-10 test images (certified: the measured upper bound; "
            f"PGD: l2, {ev['pgd_steps']} steps, first {ev['pgd_images']} test images; radii in units of 1/255). "
            f"Machine: {ev['cpu']}, 1 thread per run; seed 1 only."
        )
    flips = [
        (_load(results / "cifar10" / f"{m}-seed1" / "eval.json") or {}).get("certified_points_flipped_by_pgd")
        for m in MODELS
    ]
    if any(f is not None for f in flips):
        note += f" Certified points flipped by PGD, all models and radii: {sum(f or 0 for f in flips)}."
    return "\n".join(rows) + note


def cost(results: Path) -> str:
    sc = _load(results / "analysis" / "step_cost.json")
    sp = _load(results / "analysis" / "spectra.json")
    out = []
    measured = []
    for m in ("baseline", "spectral", "bjorck", "torchlip"):
        summ = _load(results / "cifar10" / f"{m}-seed1" / "summary.json")
        if summ and summ.get("epoch_times_s"):
            per_epoch = sum(summ["epoch_times_s"]) / len(summ["epoch_times_s"])
            steps = summ["steps"] / summ["epochs_done"]
            measured.append(f"| {LABELS[m]} | {per_epoch:.1f} | {1000 * per_epoch / steps:.0f} |")
    if measured:
        out += [
            "Cost measured during the table's training runs (one core each, batch 256, mean over the 6 epochs, "
            "each with its end-of-epoch evaluation on 2000 test images; "
            "the other core ran other jobs meanwhile):",
            "",
            "| model | s / epoch | ms / step |",
            "|---|---|---|",
            *measured,
            "",
        ]
    if sc:
        out += [
            f"Training step, batch {sc['batch_size']}, {sc['threads']} thread, {sc['cpu']} "
            f"(load {', '.join(f'{v:.1f}' for v in sc['load'])}):",
            "",
            "| model | s / step | of which the weight normalisation (s) |",
            "|---|---|---|",
        ]
        out += [f"| {LABELS[m]} | {v['step_s']:.3f} | {v['normalisation_s']:.3f} |" for m, v in sc["models"].items()]
    if sp:
        out += [
            "",
            "Singular values of the trained layers (convolutions: circular-padding FFT spectrum on the layer's "
            "input size; dense: exact):",
            "",
            "| model | layer | n | max | median | min | share > 0.9 |",
            "|---|---|---|---|---|---|---|",
        ]
        for m, d in sp.items():
            for name, s in d["layers"].items():
                out.append(
                    f"| {m} | {name} | {s['n']} | {s['max']:.3f} | {s['median']:.3f} | {s['min']:.3f} "
                    f"| {100 * s['frac_above_0.9']:.0f}% |"
                )
    return "\n".join(out) if out else "not run yet (`make bench-lipschitz`)"


def sweep(results: Path) -> str:
    runs = sorted((results / "sweep").glob("*")) if (results / "sweep").is_dir() else []
    if not runs:
        return "not run yet (`make sweep-lipschitz`)"
    rows = [
        "| run | loss | margin | temperature | epochs | clean | cert. 36 | cert. 72 | cert. 108 | PGD 36 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    import yaml

    for run in runs:
        ev, cfg = _load(run / "eval.json"), yaml.safe_load((run / "config.yaml").read_text())
        margin = cfg["margin"] if cfg["loss"] != "ce" else "–"
        temp = cfg["temperature"] if cfg["loss"] == "ce" else "–"
        rows.append(
            f"| {run.name} | {cfg['loss']} | {margin} | {temp} | {ev.get('epochs')} | {_pct(ev['clean_acc'])} "
            f"| {_pct(ev['certified']['36'])} | {_pct(ev['certified']['72'])} | {_pct(ev['certified']['108'])} "
            f"| {_pct(ev['pgd']['36'])} |"
        )
    return "\n".join(rows)


def _long_runs(results: Path) -> list[Path]:
    """The long run's result folders ``bjorck-cert-seed<k>``, in seed order."""
    return sorted((results / "cifar10").glob("bjorck-cert-seed*"), key=lambda r: int(r.name.rsplit("seed", 1)[1]))


def long_seeds(results: Path) -> str:
    """Every seed of the long run (``bjorck-cert-seed<k>``), and their mean and spread once there are two."""
    import numpy as np

    keys = ("clean", "cert. 36", "cert. 72", "cert. 108", "PGD 36")
    head = "| seed | epochs | s / epoch | " + " | ".join(keys) + " | PGD flips of certified points |"
    rows = [head, "|" + "---|" * 9]
    vals = []
    runs = _long_runs(results)
    for run in runs:
        ev = _load(run / "eval.json")
        if ev is None:
            continue
        c = ev["certified"]
        v = [ev["clean_acc"], c.get("36"), c.get("72"), c.get("108"), ev["pgd"].get("36")]
        vals.append(v)
        rows.append(
            f"| {run.name.rsplit('seed', 1)[1]} | {ev.get('epochs'):g} | {ev.get('epoch_time_s') or 0:.0f} | "
            + " | ".join(_pct(x) for x in v)
            + f" | {ev.get('certified_points_flipped_by_pgd')} |"
        )
    if len(vals) >= 2:
        a = 100 * np.array(vals, dtype=float)
        cells = " | ".join(f"{m:.1f} ± {sd:.1f}" for m, sd in zip(a.mean(0), a.std(0, ddof=1)))
        rows.append(f"| mean ± std ({len(vals)} seeds) | | | {cells} | |")
    return "\n".join(rows) if vals else "No long run collected yet (`make train-lipschitz-long`)."


def pilots(results: Path) -> str:
    """The short pilots that chose the long run's loss: end-of-epoch clean / certified (36/255) accuracy on
    the first ``eval_images`` test images (the end-of-epoch evaluation of train.py; a 1-Lipschitz head,
    so the plain certificate margin / sqrt(2) is valid)."""
    runs = sorted((results / "pilot").glob("*")) if (results / "pilot").is_dir() else []
    if not runs:
        return "not run yet"
    rows = [
        "| pilot | model | loss | epochs | train images | test images | clean | cert. 36 | train s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        cfg, summ = _config(run), _load(run / "summary.json")
        last = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"epoch"' in line][-1]
        test = {"test_acc": last["test_acc"], "test_cert36": last.get("test_cert36")}
        rows.append(
            f"| {run.name} | {cfg['model']} | {loss_label(cfg)} | {summ['epochs_done']:g} "
            f"| {cfg.get('train_subset') or 50000} | {cfg['eval_images']} | {_pct(test['test_acc'])} "
            f"| {_pct(test['test_cert36'])} | {summ['wall_time_s']:.0f} |"
        )
    return "\n".join(rows)


def figures(results: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    evs = {m: _load(results / "cifar10" / f"{m}-seed1" / "eval.json") for m in MODELS}
    if any(evs.values()):
        fig, ax = plt.subplots(figsize=(6, 4))
        for m, ev in evs.items():
            if ev is None:
                continue
            (line,) = ax.plot(ev["curve"]["radius_255"], [100 * v for v in ev["curve"]["certified"]], label=LABELS[m])
            radii = [int(r) for r in ev["pgd"]]
            ax.plot(radii, [100 * ev["pgd"][str(r)] for r in radii], "o--", color=line.get_color(), alpha=0.6)
        ax.set_xlabel("l2 radius (x 1/255)")
        ax.set_ylabel("accuracy (%)")
        ax.set_title("CIFAR-10: certified (lines) and under PGD (dots)")
        ax.set_xlim(0, 260)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(results / "certified_vs_radius.png", dpi=110)
        plt.close(fig)
    sp = _load(results / "analysis" / "spectra.json")
    if sp:
        fig, axes = plt.subplots(1, len(sp), figsize=(4.5 * len(sp), 3.6), squeeze=False)
        for ax, (m, d) in zip(axes[0], sp.items(), strict=True):
            centers = [(a + b) / 2 for a, b in zip(d["bins"][:-1], d["bins"][1:], strict=True)]
            width = d["bins"][1] - d["bins"][0]
            for name, s in d["layers"].items():
                if "reshaped" in name:
                    continue
                total = sum(s["hist"])
                ax.bar(centers, [h / total for h in s["hist"]], width=width, alpha=0.45, label=name)
            ax.set_title(LABELS.get(m, m))
            ax.set_xlabel("singular value")
            ax.legend(fontsize=6)
        axes[0][0].set_ylabel("share of the layer's singular values")
        fig.tight_layout()
        fig.savefig(results / "singular_values.png", dpi=100)
        plt.close(fig)


def headline(results: Path) -> str | None:
    evs = {m: _load(results / "cifar10" / f"{m}-seed1" / "eval.json") for m in MODELS}
    if not all(evs[m] for m in ("spectral", "bjorck", "torchlip")):
        return None

    def cell(m):
        ev = evs[m]
        return f"{_pct(ev['certified']['36'])}% ({_pct(ev['clean_acc'])}% clean)"

    epochs = evs["bjorck"].get("epochs")
    line = (
        f"CIFAR-10, {epochs:g} CPU epochs, 156k-param CNN, 1 seed; certified accuracy at l2 36/255: "
        f"Björck {cell('bjorck')}, spectral norm {cell('spectral')}, deel-torchlip {cell('torchlip')}"
    )
    if evs["bjorck-long"]:
        line += f"; Björck {evs['bjorck-long'].get('epochs'):g} epochs {cell('bjorck-long')}"
    if evs["bjorck-cert"]:
        label = loss_label(_config(results / "cifar10" / "bjorck-cert-seed1"))
        line += f"; Björck {evs['bjorck-cert'].get('epochs'):g} epochs, {label}: {cell('bjorck-cert')}"
    runs = _long_runs(results)
    certs = [ev["certified"]["36"] for ev in (_load(r / "eval.json") for r in runs) if ev]
    if len(certs) >= 2:  # the long run's seeds: seed 1 above, every seed here
        line += f" (seeds 1-{len(certs)}: " + ", ".join(f"{_pct(c)}%" for c in certs) + ")"
    if certs:
        line += f"; goal 45% met by {sum(c >= 0.45 for c in certs)} of {len(certs)} seeds of the long run"
    else:
        best = max(ev["certified"]["36"] for m, ev in evs.items() if ev and m != "baseline")
        line += f"; goal 45% {'met' if best >= 0.45 else 'not met'}"
    flips = sum((ev or {}).get("certified_points_flipped_by_pgd", 0) for ev in evs.values())
    return line + f"; PGD flipped {flips} certified points"


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collect", default=None, help="copy the small files of runs/lipschitz first")
    parser.add_argument("--results", default="projects/lipschitz/results")
    parser.add_argument("--readme", nargs="+", default=["projects/lipschitz/README.md", "projects/lipschitz/REPORT.md"])
    parser.add_argument("--index", default=None, help="top-level README whose headline:lipschitz cell to set")
    args = parser.parse_args(argv)
    results = Path(args.results)
    if args.collect:
        print(f"collected {collect(Path(args.collect), results)} runs")
    figures(results)
    written = update_markdown(
        args.readme,
        {
            "lipschitz-table": table(results),
            "lipschitz-cost": cost(results),
            "lipschitz-sweep": sweep(results),
            "lipschitz-pilot": pilots(results),
            "lipschitz-long-seeds": long_seeds(results),
        },
    )
    print(json.dumps(written))
    line = headline(results)
    if line:
        print(line)
        if args.index:
            write_headline(args.index, "lipschitz", line)


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
