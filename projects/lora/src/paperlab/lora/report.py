"""README/REPORT tables and the rank plot, from the committed files in ``projects/lora/results``.

make report-lora        # python -m paperlab.lora.report --results projects/lora/results --readme ...
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from paperlab.shared.cli import run_command
from paperlab.shared.report import update_markdown, write_headline


def _load(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def load_rows(folder: Path) -> list[dict]:
    rows = []
    for run in sorted(folder.iterdir()):
        ev, su = _load(run / "eval.json"), _load(run / "summary.json")
        if ev is None or su is None:
            continue
        rows.append({"name": run.name, **su, **ev})
    return rows


def group_key(r: dict) -> tuple:
    if r["mode"] == "base":
        return (0, "base", "", 0)
    if r["mode"] == "full":
        return (3, "full fine-tuning", "all", 0)
    return (1 if r["modules"] == "attn" else 2, "LoRA", r["modules"], r["rank"])


def groups(rows: list[dict]) -> dict[tuple, list[dict]]:
    out = defaultdict(list)
    for r in rows:
        out[group_key(r)].append(r)
    return {k: sorted(v, key=lambda r: r["seed"]) for k, v in sorted(out.items())}


def _stat(rows: list[dict], key: str, fmt: str = "{:.1f}") -> str:
    vals = [r[key] for r in rows if r.get(key) is not None]
    if not vals:
        return "-"
    if len(vals) == 1:
        return fmt.format(vals[0])
    return f"{fmt.format(np.mean(vals))} ({' / '.join(fmt.format(v) for v in vals)})"


def _bytes(n: float) -> str:
    return f"{n / 2**20:.2f} MB" if n >= 2**20 else f"{n / 1024:.1f} KB"


def sweep_table(rows: list[dict], modules: str | None = "attn") -> str:
    head = (
        "| model | modules | rank | seeds | FD target ↓ | FD source ↓ | eps-loss target test | eps-loss source "
        "test | digits drawn as asked (64) | trainable params | saved file | step time (s) | grad+Adam state | "
        "peak RSS |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = []
    for (_, kind, mods, rank), rs in groups(rows).items():
        if kind == "LoRA" and modules is not None and mods != modules:
            continue
        r0 = rs[0]
        saved = _bytes(r0["saved_bytes"]) if kind != "base" else "-"
        lines.append(
            f"| {kind} | {mods or '-'} | {rank or '-'} | {len(rs)} | {_stat(rs, 'fd_target')} | "
            f"{_stat(rs, 'fd_source')} | {_stat(rs, 'eps_loss_target_test', '{:.4f}')} | "
            f"{_stat(rs, 'eps_loss_source_test', '{:.4f}')} | {_stat(rs, 'source_label_accuracy_64', '{:.2f}')} | "
            f"{r0['trainable_params']:,} ({100 * r0['trainable_params'] / r0['total_params']:.2f}%) | {saved} | "
            f"{_stat(rs, 'step_time_s', '{:.3f}')} | {r0['train_state_mb']:.2f} MB | "
            f"{_stat(rs, 'peak_rss_mb', '{:.0f}')} MB |"
        )
    return head + "\n".join(lines)


def modules_table(rows: list[dict]) -> str:
    gs = groups(rows)
    ranks = {k[3] for k in gs if k[1] == "LoRA" and k[2] != "attn"}
    keep = [r for r in rows if r["mode"] == "lora" and r["rank"] in ranks]
    if not keep:
        return "(no module ablation run yet)"
    return sweep_table(keep, modules=None)


def merge_table(rows: list[dict]) -> str:
    lines = [
        "| run | samples compared | max abs diff merged vs unmerged | ms/image unmerged | ms/image merged |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: group_key(r) + (r["seed"],)):
        if "merged_vs_unmerged_max_abs" in r:
            lines.append(
                f"| {r['name']} | {min(r['n'], 200)} | {r['merged_vs_unmerged_max_abs']:.1e} | "
                f"{r['sample_ms_per_image']:.2f} | {r['merged_sample_ms_per_image']:.2f} |"
            )
    base = [r for r in rows if r["mode"] == "base"]
    if base:
        lines.append(f"| base (no adapter) | {base[0]['n']} | - | {base[0]['sample_ms_per_image']:.2f} | - |")
    return "\n".join(lines)


def merge_bench_table(bench: dict | None) -> str:
    """The clean sampling-cost comparison of ``make bench-lora`` (same noise, batch and thread count)."""
    if not bench:
        return "(run `make bench-lora` to measure)"
    lines = [
        "| run | LoRA layers | ms/image unmerged | ms/image merged | merged / unmerged | max abs diff |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in bench["rows"]:
        if "merged_ms_per_image" in r:
            lines.append(
                f"| {r['run']} | {r['lora_layers']} | {r['ms_per_image']:.2f} | {r['merged_ms_per_image']:.2f} | "
                f"{r['merged_ms_per_image'] / r['ms_per_image']:.2f} | {r['merged_vs_unmerged_max_abs']:.1e} |"
            )
        else:
            lines.append(f"| {r['run']} (no adapter) | 0 | {r['ms_per_image']:.2f} | - | - | - |")
    load = ", ".join(f"{x:.2f}" for x in bench["load_before"])
    lines.append("")
    lines.append(
        f"{bench['n']} images in one batch, DDIM {bench['ddim_steps']} steps, median of {bench['repeats']} timed "
        f"passes after a warm-up; {bench['threads']} torch thread(s); CPU: {bench['cpu']}; load average [{load}] "
        "at the start."
    )
    return "\n".join(lines)


def floors_table(floors: dict | None, clf: dict | None, rows: list[dict]) -> str:
    if floors is None:
        return "(no floors computed yet)"
    n = rows[0]["n"] if rows else "?"
    steps = rows[0]["ddim_steps"] if rows else "?"
    lines = [
        f"Every row: {n} samples per domain, DDIM {steps} steps, the same noise for every model.",
        "",
        "| real vs real (the noise floor) | FD |",
        "|---|---:|",
        f"| target: the {floors['target_test_n']} held-out faces vs the {floors['target_train_n']} training faces | "
        f"{floors['target_test_vs_train']:.1f} |",
        f"| source: {floors['source_n']} MNIST training digits vs the {floors['source_test_n']} test digits | "
        f"{floors['source_train_vs_test']:.1f} |",
    ]
    if clf:
        lines += [
            "",
            f"Feature classifier ({clf['steps']} steps, {clf['train_time_s']:.0f} s): MNIST test accuracy "
            f"{100 * clf['source_test_accuracy']:.1f}%, identity accuracy on the 80 held-out faces "
            f"{100 * clf['target_test_accuracy']:.1f}% (40 people).",
        ]
    return "\n".join(lines)


def ddp_table(ddp: dict | None) -> str:
    if ddp is None:
        return "(not run yet: make check-ddp-lora)"
    return "\n".join(
        [
            "| processes | steps | global batch | adapter tensors | ranks bit-identical | max abs diff vs 1 process | "
            "max abs lora_B value |",
            "|---:|---:|---:|---:|---|---:|---:|",
            f"| {ddp['processes']} | {ddp['steps']} | {ddp['global_batch']} | {ddp['tensors']} | "
            f"{'yes' if ddp['ranks_bit_identical'] else 'NO'} | {ddp['max_abs_diff_2proc_vs_1proc']:.1e} | "
            f"{ddp['max_abs_adapter_value']:.1e} |",
        ]
    )


def rank_plot(rows: list[dict], path: Path) -> None:
    """FD to the faces and the held-out diffusion loss on the faces against the rank, both module sets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gs = groups(rows)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, key, label in (
        (axes[0], "fd_target", "FD to the target faces"),
        (axes[1], "eps_loss_target_test", "eps-loss, held-out faces"),
    ):
        for i, modules in enumerate(("attn", "attn+conv+time")):
            pts = sorted((k[3], [r[key] for r in rs]) for k, rs in gs.items() if k[1] == "LoRA" and k[2] == modules)
            if pts:
                ax.plot(
                    [p[0] for p in pts],
                    [np.mean(p[1]) for p in pts],
                    "o-",
                    color=("C0", "C2")[i],
                    label=f"LoRA, {modules}",
                )
                for rk, v in pts:
                    ax.scatter([rk] * len(v), v, color=("C0", "C2")[i], s=10, alpha=0.5)
        for k, rs in gs.items():
            if k[1] in ("base", "full fine-tuning"):
                ax.axhline(np.mean([r[key] for r in rs]), ls="--", color="C3" if k[1] == "base" else "C1", label=k[1])
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("LoRA rank r")
        ax.set_ylabel(label + " (lower is better)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def facts(rows: list[dict], floors: dict | None) -> str:
    """The numbers the analysis rests on, computed from the tables (so the prose needs none typed in)."""
    gs = groups(rows)
    mean = lambda rs, key: float(np.mean([r[key] for r in rs]))  # noqa: E731
    lora = {k[3]: rs for k, rs in gs.items() if k[1] == "LoRA" and k[2] == "attn"}
    full = next((rs for k, rs in gs.items() if k[1] == "full fine-tuning"), None)
    base = next((rs for k, rs in gs.items() if k[1] == "base"), None)
    if not lora or full is None or base is None:
        return "(pending: needs the base, LoRA and full fine-tuning rows)"
    fd = {r: mean(rs, "fd_target") for r, rs in lora.items()}
    best = min(fd, key=fd.get)
    out = [
        "- FD to the faces by rank (attention LoRA): "
        + ", ".join(f"r{r} {v:.1f}" for r, v in sorted(fd.items()))
        + f"; lowest at r{best}. Base {mean(base, 'fd_target'):.1f}, full fine-tuning {mean(full, 'fd_target'):.1f}"
        + (f", real-vs-real floor {floors['target_test_vs_train']:.1f}." if floors else "."),
        f"- Forgetting (FD to MNIST of the digits 0-9 the same model draws): base {mean(base, 'fd_source'):.1f}, "
        + ", ".join(f"LoRA r{r} {mean(rs, 'fd_source'):.1f}" for r, rs in sorted(lora.items()))
        + f", full fine-tuning {mean(full, 'fd_source'):.1f}"
        + (f" (floor {floors['source_train_vs_test']:.1f})." if floors else "."),
        "- Diffusion loss on the 80 held-out faces (fixed noise and timesteps): base "
        f"{mean(base, 'eps_loss_target_test'):.4f}, "
        + ", ".join(f"LoRA r{r} {mean(rs, 'eps_loss_target_test'):.4f}" for r, rs in sorted(lora.items()))
        + f", full fine-tuning {mean(full, 'eps_loss_target_test'):.4f}; on 2,000 test digits: base "
        f"{mean(base, 'eps_loss_source_test'):.4f}, full fine-tuning {mean(full, 'eps_loss_source_test'):.4f}.",
    ]
    acts = {k[3]: rs for k, rs in gs.items() if k[1] == "LoRA" and k[2] != "attn"}
    if acts:
        out.append(
            "- LoRA on attention + convolutions + time embedding: "
            + ", ".join(
                f"r{r} FD target {mean(rs, 'fd_target'):.1f}, eps-loss faces "
                f"{mean(rs, 'eps_loss_target_test'):.4f}, FD source {mean(rs, 'fd_source'):.1f}, "
                f"{rs[0]['trainable_params']:,} parameters"
                for r, rs in sorted(acts.items())
            )
            + "."
        )
    if all("source_label_accuracy_64" in r for r in rows):
        out.append(
            f"- Digits drawn as asked (the classifier's label = the requested digit, first 64 source samples): "
            f"base {mean(base, 'source_label_accuracy_64'):.2f}, every adapted model at most "
            f"{max(r['source_label_accuracy_64'] for r in rows if r['mode'] != 'base'):.2f}."
        )
    spread = lambda rs: " vs ".join(f"{x['fd_target']:.1f}" for x in rs)  # noqa: E731
    for r, rs in sorted(lora.items()):
        if len(rs) > 1:
            out.append(f"- Seed spread: LoRA r{r} FD target {spread(rs)}.")
    if len(full) > 1:
        out.append(f"- Seed spread: full fine-tuning FD target {spread(full)}.")
    r4s = lora.get(4, lora[best])
    r4 = r4s[0]
    f0 = full[0]
    out += [
        f"- Cost at r{r4['rank']}: {r4['trainable_params']:,} trainable parameters, "
        f"{100 * r4['trainable_params'] / f0['trainable_params']:.2f}% of full fine-tuning's "
        f"{f0['trainable_params']:,}; adapter file {r4['saved_bytes']:,} bytes vs {f0['saved_bytes']:,} for the "
        f"fine-tuned U-Net ({f0['saved_bytes'] / r4['saved_bytes']:.0f}x smaller); gradient + AdamW state "
        f"{r4['train_state_mb']:.2f} MB vs {f0['train_state_mb']:.2f} MB.",
        f"- Step time (batch 32, one thread): LoRA r{r4['rank']} {mean(r4s, 'step_time_s'):.3f} s, "
        f"full fine-tuning {mean(full, 'step_time_s'):.3f} s; peak RSS {mean(r4s, 'peak_rss_mb'):.0f}"
        f" vs {mean(full, 'peak_rss_mb'):.0f} MB.",
    ]
    merged = [r for r in rows if "merged_vs_unmerged_max_abs" in r]
    if merged:
        out.append(
            f"- Merged vs unmerged: largest pixel difference over {len(merged)} LoRA runs "
            f"{max(r['merged_vs_unmerged_max_abs'] for r in merged):.1e} (images in [-1, 1]); sampling "
            f"{np.mean([r['merged_sample_ms_per_image'] for r in merged]):.2f} ms/image merged vs "
            f"{np.mean([r['sample_ms_per_image'] for r in merged]):.2f} unmerged, base "
            f"{mean(base, 'sample_ms_per_image'):.2f}."
        )
    return "\n".join(out)


def headline(rows: list[dict]) -> str:
    gs = groups(rows)
    pick = {k[1] + ":" + k[2] + ":" + str(k[3]): rs for k, rs in gs.items()}
    need = ["base::0", "LoRA:attn:4", "LoRA:attn+conv+time:4", "full fine-tuning:all:0"]
    if not all(n in pick for n in need):
        return "results pending"
    eps = {n: float(np.mean([r["eps_loss_target_test"] for r in pick[n]])) for n in need}
    lora4 = pick["LoRA:attn:4"][0]
    return (
        f"MNIST base -> 320 Olivetti faces (28px, CPU): diffusion loss on held-out faces base {eps[need[0]]:.3f}, "
        f"LoRA r4 on attention {eps[need[1]]:.3f} (no faces drawn), r4 on attention+conv+time "
        f"{eps[need[2]]:.3f} (faces), full fine-tuning {eps[need[3]]:.3f}; r4 adapter "
        f"{lora4['saved_bytes'] / 1024:.0f} KB vs {pick[need[3]][0]['saved_bytes'] / 2**20:.1f} MB; every adapted "
        "model forgets the digits while the adapter is on (1 seed; 2 for attention r4 and full FT)"
    )


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", default="projects/lora/results")
    parser.add_argument("--readme", nargs="+", required=True)
    parser.add_argument("--index", default=None, help="the top-level README (writes the headline cell)")
    args = parser.parse_args(argv)
    res = Path(args.results)
    folder = res / "mnist"
    rows = load_rows(folder) if folder.is_dir() else []
    clf = _load(Path("projects/lora/classifiers/mnist-olivetti-28.json"))
    blocks = {
        "lora-sweep": sweep_table(rows) if rows else "(no runs published yet)",
        "lora-modules": modules_table(rows) if rows else "(no runs published yet)",
        "lora-merge": merge_table(rows) if rows else "(no runs published yet)",
        "lora-merge-bench": merge_bench_table(_load(folder / "merge_bench.json")),
        "lora-floors": floors_table(_load(folder / "floors.json"), clf, rows),
        "lora-ddp": ddp_table(_load(res / "ddp_check.json")),
        "lora-facts": facts(rows, _load(folder / "floors.json")) if rows else "(no runs published yet)",
    }
    update_markdown(args.readme, blocks)
    if rows:
        rank_plot(rows, folder / "fd_vs_rank.png")
    line = headline(rows)
    if args.index:
        write_headline(args.index, "lora", line)
    print(line)


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
