"""README tables and loss curves, made only from the files committed under ``projects/ddpm/results/``.

    python -m paperlab.ddpm.report --collect runs/ddpm/mnist --name mnist      # copy a run's small files
    python -m paperlab.ddpm.report --readme projects/ddpm/README.md             # tables + plots

Each ``results/<name>/`` holds a run's config.yaml, metrics.jsonl, summary.json and, when evaluated,
eval*.json (written by ``paperlab.ddpm.evaluate``) plus sample grids and GIFs. The report replaces the
text between ``<!-- report:NAME -->`` and ``<!-- /report:NAME -->`` in the README:
``ddpm-train`` (one row per run) and ``ddpm-eval-<name>`` (the Fréchet-distance table of a run).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

from paperlab.shared.runlog import read_metrics

SMALL = ("config.yaml", "metrics.jsonl", "summary.json")
RESULTS = Path("projects/ddpm/results")


def collect(run: Path, dest: Path) -> list[str]:
    """Copy a run's small files (and its final sample grids, evaluation grids and GIFs) into ``dest``."""
    if not (run / "summary.json").is_file():
        raise FileNotFoundError(f"{run} has no summary.json: the run has not finished")
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in SMALL:
        shutil.copy2(run / name, dest / name)
        copied.append(name)
    for p in sorted(run.glob("eval*.json")) + sorted(run.glob("*.gif")):
        shutil.copy2(p, dest / p.name)
        copied.append(p.name)
    step = json.loads((run / "summary.json").read_text())["steps"]
    for p in sorted((run / "samples").glob(f"step{step:07d}*.png")) + sorted((run / "samples").glob("*.gif")):
        shutil.copy2(p, dest / p.name.replace(f"step{step:07d}", "samples-final"))
        copied.append(p.name)
    for sub in ("eval_samples",):
        if (run / sub).is_dir():
            (dest / sub).mkdir(exist_ok=True)
            for p in sorted((run / sub).glob("*.png")):
                shutil.copy2(p, dest / sub / p.name)
                copied.append(f"{sub}/{p.name}")
    return copied


def loss_plot(folder: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in read_metrics(folder / "metrics.jsonl") if r.get("loss") is not None]
    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    ax[0].plot(steps, [r["loss"] for r in rows], lw=1.2)
    ax[0].set(xlabel="training step", ylabel="L_simple (noise MSE)", yscale="log", title=f"{folder.name}: loss")
    buckets = sorted({k for r in rows for k in r if k.startswith("loss_t")}, key=lambda k: int(k[6:].split("-")[0]))
    for k in buckets:
        ax[1].plot(steps, [r.get(k) for r in rows], lw=1, label=k[5:].replace("t", "t = ", 1))
    ax[1].set(xlabel="training step", yscale="log", title="loss by timestep range")
    ax[1].legend(fontsize=8)
    for a in ax:
        a.grid(alpha=0.3)
    fig.tight_layout()
    out = folder / "loss.png"
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def train_table(results: Path) -> str:
    lines = [
        "| run | images | U-Net parameters | steps × batch | images seen | train time (1 CPU thread, shared) | "
        "final L_simple |",
        "|---|---|---|---|---|---|---|",
    ]
    for s_path in sorted(results.glob("*/summary.json")):
        s = json.loads(s_path.read_text())
        lines.append(
            f"| {s_path.parent.name} | {s['dataset']} {s['image_size']}×{s['image_size']}×{s['channels']} "
            f"({s['train_images']} train) | {s['parameters']:,} | {s['steps']} × {s['batch_size']} | "
            f"{s['images_seen']:,} | {s['train_time_s'] / 60:.0f} min | {s['final_loss']:.4f} |"
        )
    return "\n".join(lines)


def _sampler_name(r: dict) -> str:
    if r["sampler"] == "ddpm":
        return "DDPM ancestral (all T steps, σ² = β)"
    return "DDIM η = 0" if r["eta"] == 0 else f"DDIM η = {r['eta']:g} (DDPM-like, strided)"


def eval_table(path: Path) -> str:
    e = json.loads(path.read_text())
    rows = sorted(e["rows"], key=lambda r: (r["sampler"] == "ddpm", r["eta"], r["steps"], not r["ema"]))
    lines = [
        f"Fréchet distance in the {e['feature']} feature space of a small CNN trained on {e['dataset']} "
        f"(test accuracy {100 * e['classifier_test_accuracy']:.1f}%), **not FID**: {e['n_samples']} samples "
        f"per row against the {e['n_real']} test images; checkpoint step {e['step']}. Lower is better. "
        f"Floor: {e['n_samples']} real training images score **{e['fd_train_subset_vs_test']:.2f}**.",
        "",
        "| sampler | steps (network evaluations) | weights | FD-classifier | sampling time (s) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        fid = f" (FID {r['fid']:.2f})" if "fid" in r else ""
        lines.append(
            f"| {_sampler_name(r)} | {r['steps']} | {'EMA' if r['ema'] else 'raw'} | "
            f"{r['fd_classifier']:.2f}{fid} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines)


def replace_block(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- report:{re.escape(name)} -->).*?(<!-- /report:{re.escape(name)} -->)", re.S)
    return pattern.sub(lambda m: m.group(1) + "\n" + body + "\n" + m.group(2), text)


def report(results: Path, readmes: list[Path]) -> dict[str, str]:
    blocks = {"ddpm-train": train_table(results)}
    for folder in sorted(p for p in results.iterdir() if (p / "metrics.jsonl").is_file()):
        loss_plot(folder)
    for path in sorted(results.glob("*/eval*.json")):
        blocks[f"ddpm-{path.stem}-{path.parent.name}"] = eval_table(path)
    for readme in readmes:
        text = readme.read_text()
        for name, body in blocks.items():
            text = replace_block(text, name, body)
        readme.write_text(text)
    return blocks


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="DDPM results: collect runs, write README tables and plots.")
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--collect", type=Path, default=None, help="a finished run folder to copy into results/<name>")
    p.add_argument("--name", default=None, help="folder name under results/ for --collect")
    p.add_argument("--readme", type=Path, nargs="*", default=[])
    a = p.parse_args(argv)
    if a.collect:
        files = collect(a.collect, a.results / (a.name or a.collect.name))
        print(f"collected {len(files)} files from {a.collect}")
    blocks = report(a.results, a.readme)
    print("blocks: " + ", ".join(blocks))


if __name__ == "__main__":
    main()
