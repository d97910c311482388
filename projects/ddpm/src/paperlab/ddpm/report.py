"""README tables and loss curves, made only from the files committed under ``projects/ddpm/results/``.

    python -m paperlab.ddpm.report --collect runs/ddpm/mnist --name mnist      # copy a run's small files
    python -m paperlab.ddpm.report --readme projects/ddpm/README.md             # tables + plots

Each ``results/<name>/`` holds a run's config.yaml, metrics.jsonl, summary.json and, when evaluated,
eval*.json (written by ``paperlab.ddpm.evaluate``) plus sample grids and GIFs. The report replaces the
text between ``<!-- report:NAME -->`` and ``<!-- /report:NAME -->`` in README.md and REPORT.md:
``ddpm-train`` (one row per run), ``ddpm-facts-<name>`` (the loss and EMA numbers the analysis quotes),
``ddpm-eval-<name>`` (the Fréchet-distance table of a run) and ``ddpm-eval-facts-<name>`` (EMA vs raw,
eta 0 vs 1, mean grey levels). Numbers in the prose come from these blocks, never typed by hand;
``stale_blocks`` (run by the tests) finds a block that no longer matches the committed files.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from paperlab.ddpm.classifier import REQUIRED_ACCURACY
from paperlab.ddpm.evaluate import row_name
from paperlab.shared.cli import run_command
from paperlab.shared.report import has_block, replace_block, update_markdown
from paperlab.shared.runlog import read_metrics

SMALL = ("config.yaml", "metrics.jsonl", "summary.json")
RESULTS = Path("projects/ddpm/results")


def collect(run: Path, dest: Path) -> list[str]:
    """Copy a run's small files (and its final sample grids, evaluation grids and GIFs) into ``dest``."""
    if not (run / "summary.json").is_file():
        raise FileNotFoundError(f"{run} has no summary.json: the run has not finished")
    if not json.loads((run / "summary.json").read_text()).get("finished", True):
        raise ValueError(f"{run} stopped before its total_steps: finish it with --resume before collecting it")
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


def _wall_time_s(s: dict) -> float:
    return s["wall_time_s"] if "wall_time_s" in s else s["train_time_s"]  # results before issue 9: train_time_s


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
            f"{s['images_seen']:,} | {_wall_time_s(s) / 60:.0f} min | {s['final_loss']:.4f} |"
        )
    return "\n".join(lines)


def _sampler_name(r: dict) -> str:
    if r["sampler"] == "ddpm":
        return "DDPM ancestral (all T steps, σ² = β)"
    return "DDIM η = 0" if r["eta"] == 0 else f"DDIM η = {r['eta']:g} (DDPM-like, strided)"


def eval_table(path: Path) -> str:
    e = json.loads(path.read_text())
    rows = sorted(e["rows"], key=lambda r: (r["sampler"] == "ddpm", r["eta"], r["steps"], not r["ema"]))
    need = e.get("classifier_required_accuracy", REQUIRED_ACCURACY.get(e["dataset"]))  # older files lack it
    weak = (
        f" **This classifier is below the {100 * need:.0f}% test accuracy its features need**: the "
        "distances are coarse."
        if need is not None and e["classifier_test_accuracy"] < need
        else ""
    )
    halves = (
        f" Sampling error: two disjoint sets of {e['n_real_halves']} real training images score "
        f"**{e['fd_real_halves']:.2f}** against each other."
        if "fd_real_halves" in e
        else ""
    )
    if e["feature"].startswith("rotation"):
        space = (
            f"Fréchet distance in the 64-d feature space of a small CNN trained here to tell the rotation (0, 90, "
            f"180, 270°) of the {e['dataset']} training images (self-supervised; rotation test accuracy "
            f"{100 * e['classifier_test_accuracy']:.1f}%)"
        )
    else:
        space = (
            f"Fréchet distance in the {e['feature']} feature space of a small CNN trained on {e['dataset']} "
            f"(test accuracy {100 * e['classifier_test_accuracy']:.1f}%)"
        )
    lines = [
        f"{space}, **not FID**: {e['n_samples']} samples "
        f"per row against the {e['n_real']} test images; checkpoint step {e['step']}. Lower is better. "
        f"Floor: {e.get('n_floor', e['n_samples'])} real training images score "
        f"**{e['fd_train_subset_vs_test']:.2f}**.{halves}{weak}",
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


# ---------------------------------------------------------------------------------------- numbers quoted in prose
def _row_at(rows: list[dict], step: int) -> dict:
    """The first logged row at or after ``step``."""
    return next((r for r in rows if r["step"] >= step), rows[0])


def training_facts(folder: Path, early_step: int = 500) -> str:
    """The loss and EMA numbers the analysis quotes, computed from a run's metrics.jsonl and config.yaml."""
    import yaml

    cfg = yaml.safe_load((folder / "config.yaml").read_text())
    rows = [r for r in read_metrics(folder / "metrics.jsonl") if r.get("loss") is not None]
    buckets = sorted({k for r in rows for k in r if k.startswith("loss_t")}, key=lambda k: int(k[6:].split("-")[0]))
    last, early = rows[-1], _row_at(rows, early_step)
    tail = rows[-max(1, len(rows) // 10) :]
    mean = {k: sum(r[k] for r in tail) / len(tail) for k in buckets}

    def label(k: str) -> str:
        lo, hi = (int(v) + 1 for v in k[6:].split("-"))  # the code's 0-based t is the paper's t - 1
        return f"{lo - 1} < t ≤ {hi}" if lo > 1 else f"t ≤ {hi}"

    small, second, large = buckets[0], buckets[1], buckets[-1]
    d_end, d_early = last["ema_decay"], early["ema_decay"]
    reach = max(0, round((10 * cfg["ema_decay"] - 1) / (1 - cfg["ema_decay"])))  # (1+n)/(10+n) = decay
    ema = (
        f"with warm-up, d = min({cfg['ema_decay']}, (1+n)/(10+n)), which reaches {cfg['ema_decay']} only after "
        f"{reach:,} updates"
        if cfg.get("ema_warmup", True)
        else f"constant {cfg['ema_decay']}"
    )
    lines = [
        f"- Noise-prediction loss by timestep range, mean of the last {len(tail)} logged rows (steps "
        f"{tail[0]['step']}–{last['step']}): " + ", ".join(f"{label(k)}: {mean[k]:.4f}" for k in buckets) + ".",
        f"- The small-t range ({label(small)}) has **{mean[small] / mean[second]:.1f}×** the loss of "
        f"{label(second)} ({last[small] / last[second]:.2f}× at the last logged step, {last['step']}) and "
        f"**{mean[small] / mean[large]:.0f}×** that of {label(large)}.",
        f"- From step {early['step']} to step {last['step']} the loss of {label(small)} fell by "
        f"{100 * (1 - last[small] / early[small]):.0f}%, that of {label(large)} by "
        f"{100 * (1 - last[large] / early[large]):.0f}%; the mean L_simple went from {early['loss']:.4f} "
        f"(logged at step {early['step']}) to {last['loss']:.4f} (step {last['step']}).",
        f"- EMA decay actually used ({ema}): {d_early:.4f} at step {early['step']}, **{d_end:.4f}** at step "
        f"{last['step']}, an averaging horizon 1/(1 − d) of about **{1 / (1 - d_end):.0f} steps** at the end.",
    ]
    return "\n".join(lines)


def _tile_mean_grey(png: Path, size: int, cols: int = 8, pad: int = 1) -> float:
    """Mean grey level (0-255) of the images in a grid PNG of ``cols`` columns written by ``images.save_grid``
    (any pixel scale), the padding left out."""
    import numpy as np
    from PIL import Image

    g = np.asarray(Image.open(png).convert("L"), dtype=np.float64)
    scale, rest = divmod(g.shape[1], cols * (size + pad) + pad)
    if rest or scale < 1:
        raise ValueError(f"{png} is not a {cols}-column grid of {size}px images")
    rows = (g.shape[0] // scale - pad) // (size + pad)
    tiles = [
        g[
            scale * (pad + r * (size + pad)) : scale * (pad + r * (size + pad) + size),
            scale * (pad + c * (size + pad)) : scale * (pad + c * (size + pad) + size),
        ]
        for r in range(rows)
        for c in range(cols)
    ]
    return float(np.mean([t.mean() for t in tiles]))


def eval_facts(path: Path) -> str:
    """EMA vs raw and η = 0 vs η = 1, row by row, with the mean grey level of each row's sample grid."""
    e = json.loads(path.read_text())
    rows = {(r["sampler"], r["steps"], r["eta"], r["ema"]): r for r in e["rows"]}
    grids = path.parent / "eval_samples"

    def grey(key) -> str:
        r = rows[key]
        if "mean_grey" in r:
            return f"{r['mean_grey']:.0f}"
        png = grids / f"{row_name(*key)}.png"
        return f"{_tile_mean_grey(png, e['image_size']):.0f}" if png.is_file() else "–"

    real = f"Mean grey level of the real test images: {e['real_mean_grey']:.0f}.\n\n" if "real_mean_grey" in e else ""
    unpaired = [r for k, r in sorted(rows.items()) if "mean_grey" in r and (k[0], k[1], k[2], not k[3]) not in rows]
    if unpaired:  # rows with no EMA/raw partner: their grey level is not in the table below
        real += (
            "Mean grey level of the samples of the rows evaluated with one kind of weights only: "
            + "; ".join(
                f"{_sampler_name(r)}, {r['steps']} steps, {'EMA' if r['ema'] else 'raw'}: {r['mean_grey']:.0f}"
                for r in unpaired
            )
            + ".\n\n"
        )
    lines = [
        f"{real}| sampler | steps | FD EMA | FD raw | better | mean grey EMA / raw (0–255) |",
        "|---|---|---|---|---|---|",
    ]
    for (sampler, steps, eta, use_ema), r in sorted(
        rows.items(), key=lambda kv: (kv[0][0] == "ddpm", kv[0][2], kv[0][1])
    ):
        if not use_ema or (sampler, steps, eta, False) not in rows:
            continue
        fe, fr = r["fd_classifier"], rows[(sampler, steps, eta, False)]["fd_classifier"]
        lines.append(
            f"| {_sampler_name(r)} | {steps} | {fe:.2f} | {fr:.2f} | {'EMA' if fe < fr else 'raw'} "
            f"({max(fe, fr) / min(fe, fr):.1f}×) | {grey((sampler, steps, eta, True))} / "
            f"{grey((sampler, steps, eta, False))} |"
        )
    eta_lines = []
    for (sampler, steps, eta, use_ema), r in sorted(rows.items(), key=lambda kv: (kv[0][1], not kv[0][3])):
        if sampler != "ddim" or eta != 0 or ("ddim", steps, 1.0, use_ema) not in rows:
            continue
        f0, f1 = r["fd_classifier"], rows[("ddim", steps, 1.0, use_ema)]["fd_classifier"]
        eta_lines.append(
            f"| {steps} | {'EMA' if use_ema else 'raw'} | {f0:.2f} | {f1:.2f} | "
            f"η = {0 if f0 < f1 else 1} ({max(f0, f1) / min(f0, f1):.1f}×) |"
        )
    if eta_lines:
        lines += ["", "| DDIM steps | weights | FD η = 0 | FD η = 1 | better |", "|---|---|---|---|---|", *eta_lines]
    return "\n".join(lines)


CLIP_NAMES = {
    "consistent": "clip x̂_0, ε recomputed from it (default)",
    "model-eps": "clip x̂_0, keep the network's ε",
    "off": "no clipping",
}


def clipping_table(folder: Path) -> str:
    """Noise-like samples per clipping convention, from the ``sample --json`` files in ``folder``."""
    rows = [json.loads(p.read_text()) | {"file": p} for p in sorted(folder.glob("*.json"))]
    rows.sort(key=lambda r: (r["checkpoint_step"], not r["ema"], list(CLIP_NAMES).index(r["clip"])))
    lines = [
        "| checkpoint step | weights | sampler | x̂_0 clipping | noise-like samples | grid |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        png = r["file"].with_suffix(".png")
        final = folder.parent / "samples-final.png"  # the run's own grid: the same sampler, seed and weights
        if (
            not png.is_file()
            and (r["clip"], r["ema"], r["steps"], r["eta"]) == ("consistent", True, 50, 0.0)
            and json.loads((folder.parent / "summary.json").read_text())["steps"] == r["checkpoint_step"]
        ):
            png = final
        grid = f"[{png.name}]({png.relative_to(folder.parents[2])})" if png.is_file() else "–"
        sampler = f"DDIM {r['steps']}, η = {r['eta']:g}" if r["sampler"] == "ddim" else f"DDPM {r['steps']}"
        lines.append(
            f"| {r['checkpoint_step']} | {'EMA' if r['ema'] else 'raw'} | {sampler} | "
            f"{CLIP_NAMES[r['clip']]} | {r['noise_like_samples']} of {r['n']} | {grid} |"
        )
    return "\n".join(lines)


def classifier_table(folder: Path) -> str:
    """The committed feature classifiers (``classifier.py`` writes a JSON beside each weights file)."""
    lines = [
        "| classifier | test accuracy | needed | test images | epochs | train time (1 thread) | command |",
        "|---|---|---|---|---|---|---|",
    ]
    for path in sorted(folder.glob("*.json")):
        c = json.loads(path.read_text())
        need = c.get("required_accuracy")
        lines.append(
            f"| `{path.with_suffix('.pt').name}` | **{100 * c['test_accuracy']:.2f}%** | "
            f"{'–' if need is None else f'{100 * need:.0f}%'} | {c['test_images']:,} | {c['epochs']} | "
            f"{c['train_time_s'] / 60:.1f} min | `{c['command']}` |"
        )
    return "\n".join(lines)


def report_blocks(results: Path) -> dict[str, str]:
    """Every generated block, from the committed files only."""
    blocks = {"ddpm-train": train_table(results)}
    if (results.parent / "classifiers").is_dir():
        blocks["ddpm-classifiers"] = classifier_table(results.parent / "classifiers")
    for folder in sorted(results.glob("*/clipping")):
        blocks[f"ddpm-clipping-{folder.parent.name}"] = clipping_table(folder)
    for folder in sorted(p for p in results.iterdir() if (p / "metrics.jsonl").is_file()):
        blocks[f"ddpm-facts-{folder.name}"] = training_facts(folder)
    for path in sorted(results.glob("*/eval*.json")):
        blocks[f"ddpm-{path.stem}-{path.parent.name}"] = eval_table(path)
        blocks[f"ddpm-{path.stem}-facts-{path.parent.name}"] = eval_facts(path)
    return blocks


def stale_blocks(results: Path, readmes: list[Path]) -> list[str]:
    """Blocks whose text in ``readmes`` differs from what the committed results generate (a drift check)."""
    blocks = report_blocks(results)
    stale = []
    for readme in readmes:
        text = readme.read_text()
        for name, body in blocks.items():
            if has_block(text, name) and replace_block(text, name, body) != text:
                stale.append(f"{readme.name}:{name}")
    return stale


def report(results: Path, readmes: list[Path], plots: bool = True) -> dict[str, str]:
    blocks = report_blocks(results)
    if plots:
        for folder in sorted(p for p in results.iterdir() if (p / "metrics.jsonl").is_file()):
            loss_plot(folder)
    if readmes:
        update_markdown(readmes, blocks)  # a block with no markers anywhere is an error
    return blocks


def _main(argv=None) -> dict:
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
    return blocks


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
