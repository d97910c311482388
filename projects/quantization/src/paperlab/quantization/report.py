"""README/REPORT tables and figures from the committed results in ``projects/quantization/results``.

    python -m paperlab.quantization.report [--collect runs/quantization/shakespeare-seed1 --preset shakespeare] \
        --results projects/quantization/results --readme projects/quantization/README.md projects/quantization/REPORT.md

``--collect RUN`` first copies the run's small files (config, metrics, summary, quantize.json,
outliers.json and ``runs/quantization/attention.json``) into ``results/`` (the ``shakespeare`` preset) or
``results/large/`` (``shakespeare-large``): the documented publish step. Every model's files give its own
blocks: ``quantize`` for the small model, ``quantize-large`` for the large one, and so on.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from paperlab.quantization.config import Config
from paperlab.shared.cli import run_command
from paperlab.shared.config import load_config
from paperlab.shared.report import update_markdown

FILES = {  # results/<name> <- <run>/<path>
    "train/config.yaml": "config.yaml",
    "train/metrics.jsonl": "metrics.jsonl",
    "train/summary.json": "summary.json",
    "quantize.json": "quantize/quantize.json",
    "outliers.json": "outliers/outliers.json",
}
MODELS = {"": "shakespeare", "large": "shakespeare-large"}  # results/<subdir> -> the preset it comes from
ORDER = (
    "fp32",
    "bf16",
    "int8-weight-only",
    "int8-vectorwise",
    "llm-int8",
    "int8-weight-only-whole",
    "llm-int8-whole",
    "bnb-int8",
    "bnb-nf4",
    "torchao-int8-weight-only",
    "torchao-int8-dynamic",
    "torch-ao-dynamic",
)
WRITTEN_HERE = {"int8-weight-only", "int8-vectorwise", "llm-int8", "int8-weight-only-whole", "llm-int8-whole"}


def int8_parts(method: str) -> str:
    """Which weights a method stores in 8 (or 4) bits."""
    if method == "fp32":
        return "none"
    if method == "bf16":
        return "all in bf16"
    return "blocks, head, embeddings" if method.endswith("-whole") else "blocks"


def collect(run: Path, dest: Path, shared: Path) -> None:
    """A run's files into ``dest``; the benchmarks of no particular run (``runs/quantization/*.json``) into
    ``shared``."""
    for dst, src in FILES.items():
        if (run / src).is_file():
            (dest / dst).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run / src, dest / dst)
    for name in ("attention.json", "step_time.json"):
        if (run.parent / name).is_file():
            shutil.copyfile(run.parent / name, shared / name)


def _load(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def seconds_per_step(rows: list[dict]) -> tuple[float, list[float]] | None:
    """Median seconds per training step from metrics.jsonl's logged times (consecutive rows of one session;
    evaluation steps left out), and the range of the 1-minute load average logged next to them."""
    per = []
    for a, b in zip(rows, rows[1:]):
        if "loss" in a and "loss" in b and "val_loss" not in b and b["time"] > a["time"] and b["step"] > a["step"]:
            per.append((b["time"] - a["time"]) / (b["step"] - a["step"]))
    loads = [r["load1"] for r in rows if "load1" in r]
    return (sorted(per)[len(per) // 2], loads) if per else None


def train_block(summaries: dict[str, dict], configs: dict[str, dict], metrics: dict[str, list[dict]]) -> str:
    """One row per trained model (``summaries``: preset -> summary.json, ``configs``: preset -> config,
    ``metrics``: preset -> metrics.jsonl rows)."""
    rows = [
        "| preset | parameters (non-embedding) | layers x d (heads q/kv, SwiGLU) | train tokens seen | forward "
        "| s/step (median) | train time, 1 core | held-out perplexity | unigram perplexity |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    loads = []
    for preset, s in summaries.items():
        c = configs.get(preset, {})
        shape = (
            f"{c['num_layers']} x {c['hidden_size']} ({c['num_heads']}/{c['num_kv_heads']}, {c['intermediate_size']})"
            if c
            else "-"
        )
        secs = s.get("train_time_s", s.get("wall_time_s"))
        sps = seconds_per_step(metrics.get(preset, []))
        if sps and sps[1]:
            loads.append(f"`{preset}` {min(sps[1]):.1f}-{max(sps[1]):.1f}")
        rows.append(
            f"| `{preset}` | {s['n_params'] / 1e6:.2f}M ({s['n_params_non_embedding'] / 1e6:.2f}M) | {shape} | "
            f"{s['tokens_seen'] / 1e6:.2f}M ({s['steps']} steps) | "
            f"{'bf16 autocast' if s.get('autocast_bf16') else 'fp32'} | {f'{sps[0]:.2f}' if sps else '-'} | "
            f"{secs / 60:.0f} min | **{s['val_perplexity']:.1f}** | {s['unigram_perplexity']:.1f} |"
        )
    if loads:
        rows += ["", "1-minute load average logged while training: " + ", ".join(loads) + " (2 cores, shared)."]
    return "\n".join(rows)


def _ratio(r: dict, fp: dict, key: str) -> str:
    return f"{r[key] / fp[key]:.2f}x" if key in r and key in fp else "-"


def quantize_block(q: dict) -> str:
    fp = q["methods"]["fp32"]
    rows = [
        "| method | int8 (or 4-bit) parts | weight bytes | whole model vs fp32 | blocks only vs fp32 | "
        "peak RSS (MiB) | prefill tok/s | decode tok/s | perplexity | Δ ppl vs fp32 | top-1 agreement |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in ORDER:
        if m in q["methods"]:
            r = q["methods"][m]
            name = f"**{m}** (here)" if m in WRITTEN_HERE else m
            rows.append(
                f"| {name} | {int8_parts(m)} | {r['weight_bytes'] / 2**20:.2f} MiB | "
                f"{r['weight_bytes'] / fp['weight_bytes']:.2f}x | "
                f"{_ratio(r, fp, 'block_bytes')} | {r['peak_rss_mb']:.0f} | "
                f"{r['prefill_tokens_per_s']:.0f} | {r['decode_tokens_per_s']:.1f} | "
                f"{r['perplexity']:.3f} | {100 * (r['perplexity'] / fp['perplexity'] - 1):+.2f}% | "
                f"{r['top1_agreement']:.4f} |"
            )
        elif m in q.get("failed", {}):
            rows.append(f"| {m} | failed: `{q['failed'][m]}` | | | | | | | | | |")
    rows.append("")
    rows.append(
        f"CPU: {q['cpu_model']} (torch CPU capability {q['torch_cpu_capability']}; flags: "
        f"{' '.join(q['cpu_flags'])}); {fp['threads']} torch thread(s); "
        f"load average {q['machine_load_start']} at the start, "
        f"{q['machine_load_end']} at the end. Prefill: one forward of {fp['prefill_len']} tokens; decode: "
        f"{fp['decode_tokens']} greedy tokens on the KV cache; median of {fp['repeats']} repeats after a warm-up. "
        f"Perplexity and agreement on {fp['ppl_tokens']} held-out tokens. Versions: "
        + ", ".join(f"{k} {v}" for k, v in q["versions"].items())
        + "."
        + "".join(
            f" Rows {', '.join(ms)} were added by a later run (`keep_previous=true`) at load average {load}: their "
            "timings and peak RSS are not comparable with the other rows'."
            for load, ms in _by_load(q.get("added_later", {})).items()
        )
    )
    return "\n".join(rows)


def _by_load(added: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m, a in added.items():
        out.setdefault(str(a["machine_load"]), []).append(m)
    return out


def profile_block(q: dict) -> str:
    rows = ["| method | top operators of one prefill forward (self CPU ms) |", "|---|---|"]
    for m in ORDER:
        if m in q["methods"]:
            ops = ", ".join(f"`{p['op']}` {p['self_cpu_ms']:.1f}" for p in q["methods"][m]["profile"][:4])
            rows.append(f"| {m} | {ops} |")
    return "\n".join(rows)


def samples_block(q: dict) -> str:
    fp = q["methods"]["fp32"]["samples"]
    same = {m: sum(r["samples"][p]["greedy"] == fp[p]["greedy"] for p in fp) for m, r in q["methods"].items()}
    out = [
        "Greedy continuations identical to fp32's, of "
        + str(len(fp))
        + " prompts: "
        + ", ".join(f"{m} {same[m]}" for m in ORDER if m in same and m != "fp32")
        + " (one different token changes everything after it).",
        "",
    ]
    first = next(iter(q["methods"]["fp32"]["samples"]))
    for m in ORDER:
        if m in q["methods"]:
            s = q["methods"][m]["samples"][first]
            out.append(
                f"**{m}**, greedy:\n```\n{s['greedy'].strip()}\n```\nsampled (T=0.8, top-50, seed 1):\n"
                f"```\n{s['sampled'].strip()}\n```"
            )
    return "\n".join(out)


def _stats_table(stats: dict) -> list[str]:
    rows = [
        "| Linear input | features | median abs | 99.9% abs | max abs | dims with abs >= 6 | tokens with one |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, s in stats["layers"].items():
        rows.append(
            f"| `{key.removeprefix('model.')}` | {s['features']} | {s['q0.5']:.3f} | {s['q0.999']:.2f} | "
            f"{s['max_abs']:.2f} | {s['outlier_dims']} | {100 * s['tokens_with_outlier']:.1f}% |"
        )
    dims = [d["dim"] for d in stats["systematic"]]
    rows.append("")
    rows.append(
        f"Systematic outlier dimensions by the paper's criterion (abs >= 6 in >= 25% of the layers, >= 6% of "
        f"the positions): {dims if dims else 'none'}."
    )
    return rows


def _sweep_table(sweep: list[dict]) -> list[str]:
    rows = ["| method | threshold | columns in fp32 (mean share) | perplexity | Δ vs fp32 |", "|---|---|---|---|---|"]
    fp = sweep[0]["perplexity"]
    for r in sweep:
        t = {"fp32": "-", "int8-weight-only": "- (activations not quantized)", "int8-vectorwise": "none (all int8)"}
        t = t[r["method"]] if r["method"] in t else f"{r['threshold']:g}"
        share = {"fp32": "all (fp32 weights)", "int8-weight-only": "all (int8 weights)"}
        share = share.get(r["method"], f"{100 * r['fp_columns']:.1f}%")
        rows.append(
            f"| {r['method']} | {t} | {share} | {r['perplexity']:.4f} | {100 * (r['perplexity'] / fp - 1):+.3f}% |"
        )
    return rows


def outliers_block(o: dict) -> str:
    return "\n".join(
        _stats_table(o["stats"]) + ["", "Threshold sweep on the trained model:", ""] + _sweep_table(o["sweep"])
    )


def injected_block(o: dict) -> str:
    inj = o["injected"]
    head = [
        f"Dimensions {inj['dims']} of every block's normalised inputs scaled by {inj['factor']:g} (and the "
        "weight columns that read them divided by it): the same function, now with outlier features.",
        "",
    ]
    return "\n".join(head + _stats_table(inj["stats"]) + [""] + _sweep_table(inj["sweep"]))


def attention_block(a: dict) -> str:
    lengths = sorted({r["length"] for r in a["rows"]})
    by = {(r["method"], r["length"]): r for r in a["rows"]}
    rows = [
        "| sequence length | score matrix (analytic) | naive: peak extra MiB | tiled: peak extra MiB | "
        "SDPA: peak extra MiB | naive s | tiled s | SDPA s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in lengths:
        cells = []
        for key in ("peak_extra_mb", "time_s"):
            for m in ("naive", "tiled", "sdpa"):
                r = by.get((m, t), {})
                cells.append(
                    f"{r[key]:.1f}"
                    if key == "peak_extra_mb" and key in r
                    else f"{r[key]:.3f}"
                    if key in r
                    else r.get("error", "-")
                )
        score = next(r["score_matrix_mb"] for r in a["rows"] if r["length"] == t and "score_matrix_mb" in r)
        rows.append(f"| {t} | {score:.0f} MiB | " + " | ".join(cells) + " |")
    err = max(max(e["tiled_max_err"], e["naive_max_err"]) for e in a["errors"])
    rows.append("")
    rows.append(
        f"Batch 1, {a['heads']} heads of dimension {a['head_dim']}, {a['dtype']}, causal, tiles of "
        f"{a['block']}x{a['block']}; each cell a fresh process (peak RSS minus RSS before the call). "
        f"Largest difference to SDPA in float64 over lengths {sorted({e['length'] for e in a['errors']})}, "
        f"causal and not: {err:.1e}. CPU: {a['cpu_model']}, {a['threads']} thread(s), "
        f"load {a['machine_load']}."
    )
    return "\n".join(rows)


def step_time_block(st: dict) -> str:
    rows = [
        "| preset | parameters | layers x d (SwiGLU) | tokens per step | fp32 s/step | bf16 autocast s/step |",
        "|---|---|---|---|---|---|",
    ]
    presets = list(dict.fromkeys(r["preset"] for r in st["rows"]))
    for p in presets:
        by = {r["autocast_bf16"]: r for r in st["rows"] if r["preset"] == p}
        r = by.get(False) or by[True]
        cells = [f"{by[a]['median_s']:.2f}" if a in by else "-" for a in (False, True)]
        rows.append(
            f"| `{p}` | {r['n_params'] / 1e6:.2f}M | {r['shape'][0]} x {r['shape'][1]} ({r['shape'][2]}) | "
            f"{r['tokens_per_step']} | " + " | ".join(cells) + " |"
        )
    repeats = len(st["rows"][0]["step_s"])
    rows += [
        "",
        f"One step = forward, backward and AdamW on a random batch; median of {repeats} steps after a warm-up; "
        f"{st['threads']} torch thread(s); CPU: {st['cpu_model']}; load average {st['machine_load_start']} at "
        f"the start, {st['machine_load_end']} at the end.",
    ]
    return "\n".join(rows)


def gpu_block(g: dict) -> str:
    exact = all(r["exact"] for r in g["int_mm_exact"])
    rows = [
        f"{g['device']}, torch {g['torch']}; `int8_matmul` (padded to `_int_mm`'s CUDA constraints) exact on "
        f"odd shapes: {exact}.",
        "",
        "| tokens | in x out | fp16 (cuBLAS) ms | int8 x int8 -> int32 only ms | vector-wise int8 ms | "
        "LLM.int8 (4 outlier columns) ms | vector-wise relative error |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in g["matmul"]:
        rows.append(
            f"| {r['tokens']} | {r['in']} x {r['out']} | {r['fp16_ms']:.3f} | {r['int_mm_only_ms']:.3f} | "
            f"{r['vectorwise_ms']:.3f} | {r['llm_int8_ms']:.3f} | {100 * r['vectorwise_rel_err']:.2f}% |"
        )
    rows += [
        "",
        "| sequence length | naive: peak extra MiB | tiled: peak extra MiB | SDPA: peak extra MiB | "
        "naive ms | tiled ms | SDPA ms |",
        "|---|---|---|---|---|---|---|",
    ]
    by = {(r["method"], r["length"]): r for r in g["attention"]}
    for t in sorted({r["length"] for r in g["attention"]}):
        cells = [
            f"{by[(m, t)]['peak_extra_mb']:.0f}" if "peak_extra_mb" in by[(m, t)] else by[(m, t)]["error"]
            for m in ("naive", "tiled", "sdpa")
        ]
        cells += [
            f"{by[(m, t)]['time_ms']:.2f}" if "time_ms" in by[(m, t)] else "-" for m in ("naive", "tiled", "sdpa")
        ]
        rows.append(f"| {t} | " + " | ".join(cells) + " |")
    err = max(r.get("max_err_vs_sdpa", 0.0) for r in g["attention"])
    rows += [
        "",
        f"Batch 1, 16 heads of dimension 64, fp16, causal; tiled with 256 x 256 tiles. Largest difference "
        f"to SDPA: {err:.1e} (fp16 rounding).",
    ]
    return "\n".join(rows)


def figures(results: Path, o: dict | None, a: dict | None, metrics: dict[str, list[dict]] | None) -> None:
    """``outliers.png`` (into ``results``, from ``o``), ``attention_memory.png`` (from ``a``) and
    ``train_loss.png`` (every preset's curves in ``metrics``: preset -> metrics.jsonl rows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if o is not None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for label, stats, style in (
            ("trained model", o["stats"], "o-"),
            ("outliers injected", o["injected"]["stats"], "s--"),
        ):
            keys = list(stats["layers"])
            axes[0].plot(range(len(keys)), [stats["layers"][k]["max_abs"] for k in keys], style, label=f"{label}: max")
            axes[0].plot(
                range(len(keys)),
                [stats["layers"][k]["q0.999"] for k in keys],
                style,
                alpha=0.5,
                label=f"{label}: 99.9%",
            )
        axes[0].axhline(6.0, color="k", lw=0.8, ls=":", label="threshold 6")
        axes[0].set_yscale("log")
        axes[0].set_xlabel("Linear input (attention in, o_proj, MLP in, down_proj per layer)")
        axes[0].set_ylabel("|x|")
        axes[0].legend(fontsize=7)
        for label, sweep, style in (
            ("trained model", o["sweep"], "o-"),
            ("outliers injected", o["injected"]["sweep"], "s--"),
        ):
            fp = sweep[0]["perplexity"]
            pts = [(r["threshold"], r["perplexity"]) for r in sweep if r["method"] == "llm-int8"]
            line = axes[1].plot([p[0] for p in pts], [100 * (p[1] / fp - 1) for p in pts], style, label=f"{label}")
            vw = next(r for r in sweep if r["method"] == "int8-vectorwise")
            axes[1].axhline(
                100 * (vw["perplexity"] / fp - 1), color=line[0].get_color(), ls=":", label=f"{label}: no decomposition"
            )
        axes[1].set_xscale("log")
        axes[1].set_xlabel("outlier threshold")
        axes[1].set_ylabel("perplexity vs fp32 (%)")
        axes[1].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(results / "outliers.png", dpi=110)
        plt.close(fig)
    if a is not None:
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for m in ("naive", "tiled", "sdpa"):
            pts = sorted(
                (r["length"], r["peak_extra_mb"]) for r in a["rows"] if r["method"] == m and "peak_extra_mb" in r
            )
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=m)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length")
        ax.set_ylabel("peak extra memory (MiB)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(results / "attention_memory.png", dpi=110)
        plt.close(fig)
    if metrics:
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for preset, rows in metrics.items():
            tr = [(r["step"], r["loss"]) for r in rows if r.get("loss") is not None]
            va = [(r["step"], r["val_loss"]) for r in rows if r.get("val_loss") is not None]
            line = ax.plot(*zip(*tr), label=f"{preset}: train loss")
            ax.plot(*zip(*va), "o--", color=line[0].get_color(), label=f"{preset}: held-out loss")
        ax.set_xlabel("step")
        ax.set_ylabel("cross-entropy (nats/token)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(results / "train_loss.png", dpi=110)
        plt.close(fig)


def _main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--collect", default=None, help="a run directory to copy results from first")
    parser.add_argument(
        "--preset", default="shakespeare", choices=sorted(MODELS.values()), help="the preset whose run --collect copies"
    )
    parser.add_argument("--results", default="projects/quantization/results")
    parser.add_argument(
        "--readme", nargs="+", default=["projects/quantization/README.md", "projects/quantization/REPORT.md"]
    )
    args = parser.parse_args(argv)
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    if args.collect:
        if not Path(args.collect).is_dir():
            raise FileNotFoundError(f"no run directory {args.collect} to collect (train and quantize first)")
        sub = next(k for k, v in MODELS.items() if v == args.preset)
        collect(Path(args.collect), results / sub, results)
    blocks, summaries, configs, metrics = {}, {}, {}, {}
    for sub, preset in MODELS.items():
        d, suffix = results / sub, f"-{sub}" if sub else ""
        summary, q, o = _load(d / "train/summary.json"), _load(d / "quantize.json"), _load(d / "outliers.json")
        if summary:
            summaries[preset] = summary
            if (d / "train/config.yaml").is_file():
                configs[preset] = vars(load_config(Config, d / "train/config.yaml"))
        if (d / "train/metrics.jsonl").is_file():
            lines = (d / "train/metrics.jsonl").read_text().splitlines()
            metrics[preset] = [json.loads(x) for x in lines if x.strip()]
        if q:
            blocks[f"quantize{suffix}"] = quantize_block(q)
            blocks[f"profile{suffix}"] = profile_block(q)
            blocks[f"samples{suffix}"] = samples_block(q)
        if o:
            blocks.update({f"outliers{suffix}": outliers_block(o), f"injected{suffix}": injected_block(o)})
            figures(d, o, None, None)
    if summaries:
        blocks["train"] = train_block(summaries, configs, metrics)
    a, g, st = _load(results / "attention.json"), _load(results / "gpu.json"), _load(results / "step_time.json")
    if st:
        blocks["step-time"] = step_time_block(st)
    if a:
        blocks["attention"] = attention_block(a)
    if g:
        blocks["gpu"] = gpu_block(g)
    if not blocks:
        raise FileNotFoundError(f"no results in {results}: run the commands, then this with --collect RUN")
    figures(results, None, a, metrics)
    written = update_markdown(args.readme, blocks)
    print(f"updated {written}")


def main(argv=None):
    run_command(_main, argv)


if __name__ == "__main__":
    main()
