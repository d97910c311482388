"""README/REPORT tables and figures from the committed ``results/`` (and, with --collect, the publish step).

    python -m paperlab.rlhf.report --collect runs/rlhf/shakespeare --results projects/rlhf/results \
        --readme projects/rlhf/README.md projects/rlhf/REPORT.md [--index README.md]

``--collect`` copies the small files of every ``seed*`` run (summaries, metrics, evaluation files, 20 example
pairs; no weights) into ``results/<experiment>/seed<N>/``. Tables are then written between the
``<!-- report:NAME -->`` markers; figures go to ``results/figures/``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

import numpy as np

from paperlab.shared.cli import run_command
from paperlab.shared.report import update_markdown, write_headline
from paperlab.shared.runlog import read_metrics

STAGE_FILES = {
    "sft": ("summary.json", "metrics.jsonl", "config.yaml"),
    "pairs": ("summary.json",),
    "rm": ("eval.json", "metrics.jsonl"),
    "ppo": ("summary.json", "metrics.jsonl", "config.yaml"),
    "rloo": ("summary.json", "metrics.jsonl"),
    "grpo": ("summary.json", "metrics.jsonl"),
    "eval": ("eval.json", "bon.json", "samples.jsonl", "curve-ppo.jsonl", "curve-rloo.jsonl", "curve-grpo.jsonl"),
    "hh": ("eval.json", "metrics.jsonl"),
}
ABLATION = "goodhart-"  # results/goodhart-<proxy>/: the over-optimisation ablation, reported on its own
MAIN = "shakespeare-h200"  # the 5-seed experiment of the figures' default names and of the index headline
METHODS = ("ppo", "rloo", "grpo")
COLORS = {"ppo": "C0", "rloo": "C1", "grpo": "C2", "bon": "C3"}
# published reward-model accuracies on the same HH-RLHF harmless-base test pairs, quoted as theirs
HH_PUBLISHED = [
    ("OpenAssistant/reward-model-deberta-v3-large-v2 (435M)", "0.588 (raw text) / 0.564 (chat template)",
     "RewardBench results, allenai/reward-bench-results pref-sets/OpenAssistant/reward-model-deberta-v3-large-v2.json, "
     "key anthropic_harmless"),
]  # fmt: skip


def collect(src: Path, results: Path, name: str | None = None) -> list[str]:
    """Copy the small files of ``src/seed*`` into ``results/<name or src.name>/seed*``."""
    copied, name = [], name or src.name
    for run in sorted(p for p in src.glob("seed*") if p.is_dir()):
        if (run / "timing.json").is_file():
            dst = results / name / run.name / "timing.json"
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run / "timing.json", dst)
            copied.append(str(dst))
        for stage, names in STAGE_FILES.items():
            for fname in names:
                f = run / stage / fname
                if f.is_file():
                    dst = results / name / run.name / stage / fname
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(f, dst)
                    copied.append(str(dst))
        pairs = run / "pairs" / "pairs.jsonl"
        if pairs.is_file():
            dst = results / name / run.name / "pairs" / "examples.jsonl"
            dst.write_text("".join(pairs.read_text().splitlines(keepends=True)[:20]))
    return copied


def _load(path: Path):
    if not path.is_file():
        return None
    return read_metrics(path) if path.suffix == ".jsonl" else json.loads(path.read_text())


def _f(x, nd=3) -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{nd}f}"


def _run(s: Path) -> str:
    return f"{s.parent.name}/{s.name}"


def _seeds(results: Path, ablation: bool = False) -> list[Path]:
    """The seed folders of the main experiments (or, ``ablation=True``, of the goodhart-* ablation)."""
    exps = [e for e in results.iterdir()
            if e.is_dir() and e.name != "figures" and e.name.startswith(ABLATION) == ablation]  # fmt: skip
    runs = [p for e in exps for p in e.glob("seed*") if p.is_dir()]
    return sorted(runs, key=lambda p: (p.parent.name, int(p.name[4:])))


def table_sft(seeds) -> str:
    lines = ["| run | parameters | steps | tokens seen | validation perplexity | tokens/s | wall time (s) |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for s in seeds:
        m = _load(s / "sft" / "summary.json")
        if m:
            lines.append(
                f"| {_run(s)} | {m['n_params']:,} | {m['steps']} | {m.get('tokens_seen', 0):,} "
                f"| {_f(m.get('val_ppl'), 1)} | {_f(m.get('tokens_per_s'), 0)} | {_f(m['wall_time_s'], 0)} |"
            )
    return "\n".join(lines)


def table_rm(seeds) -> str:
    head = (
        "| preference source | run | train / test pairs | test accuracy | test BT loss | ECE | reference, same pairs |"
    )
    lines = [head, "|---|---|---|---|---|---|---|"]
    for s in seeds:
        for src, key in (("gold-labelled (VADER, BT draw)", "rm"), ("Anthropic HH-RLHF harmless-base", "hh")):
            m = _load(s / key / "eval.json")
            if not m:
                continue
            t = m["test"]
            ref = (f"gold scorer itself: {_f(t.get('gold_accuracy'))} (the label-noise ceiling)" if key == "rm"
                   else f"'shorter answer wins': {_f(t.get('length_baseline_accuracy'))}")  # fmt: skip
            lines.append(
                f"| {src} | {_run(s)} | {m['train_pairs']} / {m['test_pairs']} | **{_f(t['accuracy'])}** | "
                f"{_f(t['bt_loss'])} | {_f(t['ece'])} | {ref} |"
            )
    for name, acc, source in HH_PUBLISHED:
        lines.append(f"| HH-RLHF harmless-base, published | {name} | – | {acc} | – | – | {source} |")
    return "\n".join(lines)


def table_overopt(seeds) -> str:
    lines = ["| method | run | steps | KL to base (nats) | proxy score | gold score | best gold on the way (at KL) |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for s in seeds:
        e = _load(s / "eval" / "eval.json")
        if not e:
            continue
        b = e["base"]
        lines.append(
            f"| base model | {_run(s)} | 0 | 0 | {_f(b['proxy'])} | {_f(b['gold'])} ± {_f(b['gold_se'])} | – |"
        )
        for method in METHODS:
            m = e["methods"].get(method)
            if m:
                f = m["final"]
                lines.append(
                    f"| {method.upper()} | {_run(s)} | {f['step']} | {_f(f['kl'], 2)} | {_f(f['proxy'])} | "
                    f"{_f(f['gold'])} ± {_f(f['gold_se'])} | {_f(m['peak_gold'])} ({_f(m['peak_gold_kl'], 2)}) |"
                )
        bon = e.get("best_of_n")
        if bon:
            lines.append(
                f"| best-of-{bon['n']} | {_run(s)} | – | {_f(bon['kl'], 2)} | {_f(bon['proxy'])} | "
                f"{_f(bon['gold'])} ± {_f(bon['gold_se'])} | – |"
            )
    return "\n".join(lines)


TOKENS_COUNTED = {"sft": "training tokens", "ppo": "generated tokens", "rloo": "prompt + completion tokens",
                  "grpo": "prompt + completion tokens"}  # fmt: skip


def table_timing(seeds) -> str:
    lines = ["| stage | run | device | steps | wall time (s) | tokens/s | tokens counted |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    first = {}  # the first seed of each experiment: the seeds of one experiment ran side by side on one machine
    for s in seeds:
        first.setdefault(s.parent.name, s)
    for s in first.values():
        for stage in ("sft", "ppo", "rloo", "grpo"):
            m = _load(s / stage / "summary.json")
            if m:
                lines.append(
                    f"| {stage} | {_run(s)} | {m.get('device', '?')} | {m['steps']} | "
                    f"{_f(m['wall_time_s'], 0)} | {_f(m.get('tokens_per_s'), 0)} | {TOKENS_COUNTED[stage]} |"
                )
        for stage in ("pairs", "eval"):
            m = _load(s / stage / ("summary.json" if stage == "pairs" else "eval.json"))
            if m and "wall_time_s" in m:
                lines.append(f"| {stage} | {_run(s)} | – | – | {_f(m['wall_time_s'], 0)} | – | – |")
        for stage in ("rm", "hh"):
            m = _load(s / stage / "eval.json")
            if m:
                lines.append(
                    f"| {stage} (RewardTrainer) | {_run(s)} | {m.get('device', '?')} | {m['steps']} | "
                    f"{_f(m['wall_time_s'], 0)} | – | – |"
                )
    return "\n".join(lines)


def table_bench(results: Path) -> str:
    """``results/bench-*.json`` written by ``make bench-rlhf`` (then copied into results/)."""
    lines = []
    for path in sorted(results.glob("bench-*.json")):
        b = json.loads(path.read_text())
        lines += [f"\n`{path.name}`: {b['cpu']}, device {b['device']}, {b['threads']} thread(s), load "
                  f"{b['load_before']} before / {b['load_after']} after (torch {b['torch']}, transformers "
                  f"{b['transformers']}, trl {b['trl']}); default model size, a stand-in reward for the RL stages:\n",
                  "| stage | steps | s/step | tokens/s | tokens counted |", "|---|---|---|---|---|"]  # fmt: skip
        for stage, v in b["stages"].items():
            lines.append(
                f"| {stage} | {v['steps']} | {v['s_per_step']:.2f} | {v['tokens_per_s']:.0f} | {v['tokens']} |"
            )
    return "\n".join(lines)


def table_pipeline(seeds) -> str:
    """``timing.json`` of ``paperlab.rlhf.pipeline`` (``make train-rlhf``): wall time of every stage process."""
    out = []
    for s in seeds:
        t = _load(s / "timing.json")
        if not t:
            continue
        steps = {st: (_load(s / st / "summary.json") or _load(s / st / "eval.json") or {}).get("steps")
                 for st in ("sft", "rm", "ppo", "rloo", "grpo")}  # fmt: skip
        device = t["device"]
        if device == "auto":  # timing files before the runner resolved it: the stages' own record
            device = (_load(s / "sft" / "summary.json") or {}).get("device", device)
        out += [""] if out else []  # a blank line between two runs' tables
        out += [f"`{_run(s)}/timing.json`: {t['cpu']} ({t['cores']} cores on the machine), torch threads "
                f"{t['threads']}, OMP_NUM_THREADS={t['omp_num_threads'] or 'unset'}, device {device}; "
                f"whole pipeline finished: {t['finished']}.\n",
                "| stage | steps | wall time (s) | wall time (min) | load (1-min average) before → after |",
                "|---|---|---|---|---|"]  # fmt: skip
        for stage, r in t["stages"].items():
            load = f"{r['load_before'][0]:.2f} → {r['load_after'][0]:.2f}" if "load_before" in r else "–"
            step = steps.get(stage)
            out.append(f"| {stage} | {step if step is not None else '–'} | {r['wall_s']:.0f} | "
                       f"{r['wall_s'] / 60:.1f} | {load} |")  # fmt: skip
        out.append(f"| **total** | | **{t['total_s']:.0f}** | **{t['total_s'] / 60:.1f}** | |")
    return "\n".join(out) or "(no timing.json yet: run make train-rlhf, then make report-rlhf COLLECT=1)"


def gold_at_kl(rows: list[dict], sqrt_kl: float) -> tuple[float, float, bool] | None:
    """(gold, proxy, from_base) where a run first reaches sqrt(KL) = ``sqrt_kl``: linear in sqrt(KL) between the
    two snapshots around the first crossing (rows in step order, the base model first); ``from_base``: that
    segment starts at the base model (a straight-line guess below the first snapshot); None if never reached."""
    xs = [math.sqrt(max(r["kl"], 0.0)) for r in rows]
    for i in range(1, len(rows)):
        lo, hi = xs[i - 1], xs[i]
        if lo <= sqrt_kl <= hi and hi > lo:
            w = (sqrt_kl - lo) / (hi - lo)
            gold, proxy = ((1 - w) * rows[i - 1][k] + w * rows[i][k] for k in ("gold", "proxy"))
            return gold, proxy, i == 1
    return None


MATCHED_SQRT_KL = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0)


def matched_kl(seeds) -> dict:
    """{experiment: {method: {sqrt_kl: [(gold, from_base) of each seed that reached it]}}} from the curves."""
    out: dict = {}
    for s in seeds:
        curves = {m: _load(s / "eval" / f"curve-{m}.jsonl") for m in METHODS}
        bon = _load(s / "eval" / "bon.json")
        if bon:  # best-of-n: n = 1 is the base model, KL grows with n
            curves["best-of-n"] = [{"kl": r["kl"], "gold": r["gold"], "proxy": r["proxy"]} for r in bon]
        for method, rows in curves.items():
            if not rows:
                continue
            for x in MATCHED_SQRT_KL:
                hit = gold_at_kl(rows, x)
                if hit is not None:
                    from_base = hit[2] and method != "best-of-n"
                    out.setdefault(s.parent.name, {}).setdefault(method, {}).setdefault(x, []).append(
                        (hit[0], from_base)
                    )
    return out


def table_matched_kl(seeds) -> str:
    data = matched_kl(seeds)
    head = "| experiment | method | " + " | ".join(f"√KL = {x:g} (KL {x * x:g})" for x in MATCHED_SQRT_KL) + " |"
    lines = [head, "|---|---|" + "---|" * len(MATCHED_SQRT_KL)]
    for exp, methods in data.items():
        for method in ("best-of-n", *METHODS):
            cells = []
            for x in MATCHED_SQRT_KL:
                hits = methods.get(method, {}).get(x, [])
                g, star = [h[0] for h in hits], "*" if any(h[1] for h in hits) else ""
                if not g:
                    cells.append("–")
                elif len(g) == 1:
                    cells.append(f"{g[0]:.2f}{star}")
                else:
                    se = (sum((v - sum(g) / len(g)) ** 2 for v in g) / (len(g) - 1)) ** 0.5 / math.sqrt(len(g))
                    cells.append(f"{sum(g) / len(g):.2f} ± {se:.2f} ({len(g)}){star}")
            if method in methods:
                lines.append(f"| {exp} | {method.upper() if method in METHODS else method} | " + " | ".join(cells)
                             + " |")  # fmt: skip
    return "\n".join(lines) + (
        "\n\n\\* at least one seed's value lies between the base model and its first "
        "snapshot: a straight line through unmeasured KL, not a measurement."
    )


def table_goodhart(results: Path) -> str:
    """The ablation: PPO without KL penalty against a weak and a strong proxy, read against the gold scorer."""
    lines = ["| proxy | gold scorer | run | RM train / test pairs | RM test accuracy (gold ceiling) | base gold | "
             "peak gold (step, KL) | final gold (step, KL) | peak − final gold | final proxy gain |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for s in _seeds(results, ablation=True):
        e, curve = _load(s / "eval" / "eval.json"), _load(s / "eval" / "curve-ppo.jsonl")
        if not e or not curve:
            continue
        rm = _load(s / "rm" / "eval.json")
        cfg_rm = "own" if rm else "the CPU default run's"
        if rm is None:  # the strong proxy is the RM of the CPU default run (rm_dir)
            rm = _load(results / "shakespeare-fast-cpu" / "seed1" / "rm" / "eval.json")
        acc = (f"{rm['train_pairs']} / {rm['test_pairs']} ({cfg_rm}) | {_f(rm['test']['accuracy'])} "
               f"({_f(rm['test'].get('gold_accuracy'))})") if rm else "– | –"  # fmt: skip
        peak = max(curve, key=lambda r: r["gold"])
        last = curve[-1]
        lines.append(
            f"| {s.parent.name[len(ABLATION) :]} | {e.get('gold', 'vader')} | {_run(s)} | {acc} | "
            f"{_f(curve[0]['gold'])} | "
            f"{_f(peak['gold'])} ({peak['step']}, {_f(peak['kl'], 1)}) | {_f(last['gold'])} ± {_f(last['gold_se'])} "
            f"({last['step']}, {_f(last['kl'], 1)}) | {_f(peak['gold'] - last['gold'])} | "
            f"{_f(last['proxy'] - curve[0]['proxy'])} |"
        )
    return "\n".join(lines)


def _gold(seed: Path) -> str:
    """The gold scorer a run was measured with (runs from before the choice existed: vader)."""
    return (_load(seed / "eval" / "eval.json") or {}).get("gold", "vader")


def fit_gao_rl(rows: list[dict]) -> dict | None:
    """Least-squares fit of Gao et al.'s (2022) RL form to a run's gold gain over the base model,
    R(d) = gold(d) - gold(0) = d (alpha - beta log d), d = sqrt(KL) (linear in alpha, beta; R(0) = 0).
    With beta > 0 the form rises, peaks at d* = exp(alpha / beta - 1), then falls. ``rows`` in step order, the
    base model first; None with fewer than three snapshots."""
    pts = [(math.sqrt(r["kl"]), r["gold"] - rows[0]["gold"]) for r in rows[1:] if r["kl"] > 0]
    if len(pts) < 3:
        return None
    d, y = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
    X = np.stack([d, -d * np.log(d)], 1)
    (alpha, beta), *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ np.array([alpha, beta])
    r2 = 1 - float(resid @ resid) / float(((y - y.mean()) ** 2).sum()) if len(y) > 1 and y.std() > 0 else math.nan
    peak_d = math.exp(alpha / beta - 1) if beta > 0 else math.nan
    return {"alpha": float(alpha), "beta": float(beta), "peak_kl": peak_d**2, "r2": r2, "points": len(pts)}


def table_goodhart_fit(results: Path) -> str:
    """Gao et al.'s RL functional form fitted to every ablation run's PPO curve, next to the measured peak."""
    lines = ["| run | gold scorer | snapshots | α | β | fitted peak: KL (gold gain) | measured peak: KL (gold gain) | "
             "R² |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for s in _seeds(results, ablation=True):
        rows = _load(s / "eval" / "curve-ppo.jsonl")
        fit = fit_gao_rl(rows) if rows else None
        if not fit:
            continue
        peak = max(rows, key=lambda r: r["gold"])
        if math.isfinite(fit["peak_kl"]):
            d = math.sqrt(fit["peak_kl"])
            beyond = "†" if fit["peak_kl"] > max(r["kl"] for r in rows) else ""
            fitted = f"{fit['peak_kl']:.1f}{beyond} ({d * (fit['alpha'] - fit['beta'] * math.log(d)):+.3f})"
        else:
            fitted = "none (β ≤ 0: no fall)"
        lines.append(
            f"| {_run(s)} | {_gold(s)} | {fit['points']} | {fit['alpha']:.3f} | {fit['beta']:.3f} | {fitted} | "
            f"{peak['kl']:.1f} ({peak['gold'] - rows[0]['gold']:+.3f}) | {_f(fit['r2'], 2)} |"
        )
    return "\n".join(lines) + (
        "\n\n† beyond the largest KL measured: an extrapolation of the form, not a peak the run reached."
    )


def figure_within_run(results: Path, out: Path) -> list[str]:
    """The ablations measured with a gold scorer other than VADER (goodhart-rep): proxy gain, gold with its two
    parts and Gao et al.'s fitted form against sqrt(KL), and gold against the optimised proxy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    by_exp: dict[str, list[Path]] = {}
    for s in _seeds(results, ablation=True):
        if _gold(s) != "vader" and _load(s / "eval" / "curve-ppo.jsonl"):
            by_exp.setdefault(s.parent.name, []).append(s)
    for exp, seeds in by_exp.items():
        fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
        for i, s in enumerate(seeds):
            rows = _load(s / "eval" / "curve-ppo.jsonl")
            x = np.sqrt([max(r["kl"], 0.0) for r in rows])
            gain = [r["proxy"] - rows[0]["proxy"] for r in rows]
            c, lab = f"C{i}", s.name
            axes[0].plot(x, gain, "o-", color=c, ms=3, label=f"PPO {lab}")
            axes[1].plot(x, [r["gold"] for r in rows], "o-", color=c, ms=3, label=f"gold, {lab}")
            if "sentiment" in rows[0]:
                axes[1].plot(x, [r["sentiment"] for r in rows], ":", color=c, lw=1, label=f"VADER part, {lab}")
                axes[1].plot(x, [-r["repeats"] for r in rows], "--", color=c, lw=1, label=f"−repeats part, {lab}")
            fit = fit_gao_rl(rows)
            if fit:
                d = np.linspace(1e-3, x.max(), 200)
                axes[1].plot(d, rows[0]["gold"] + d * (fit["alpha"] - fit["beta"] * np.log(d)), "-", color=c,
                             alpha=0.35, lw=3, label=f"Gao et al. RL fit, {lab}")  # fmt: skip
            bon = _load(s / "eval" / "bon.json")
            if bon:
                axes[1].plot([math.sqrt(r["kl"]) for r in bon], [r["gold"] for r in bon], "s-.", color=c, ms=3,
                             alpha=0.7, label=f"best-of-n, {lab}")  # fmt: skip
            axes[2].plot(gain, [r["gold"] for r in rows], "o-", color=c, ms=3, label=f"PPO {lab}")
        for ax in axes[:2]:
            ax.set_xlabel("sqrt(KL(pi || base)) [sqrt nats]")
        axes[0].set_title("proxy RM score minus the base model's (optimised)")
        axes[1].set_title(f"gold ({_gold(seeds[0])}) and its parts (hidden)")
        axes[2].set_xlabel("proxy gain over the base model")
        axes[2].set_title("gold against the optimised proxy")
        for ax in axes:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6)
        fig.suptitle(f"{exp}: PPO without KL penalty, a snapshot every few iterations ({len(seeds)} seed(s))",
                     fontsize=10)  # fmt: skip
        fig.tight_layout()
        fig.savefig(out / f"{exp}.png", dpi=110)
        plt.close(fig)
        made.append(f"{exp}.png")
    return made


def figure_goodhart(results: Path, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = [s for s in _seeds(results, ablation=True) if _gold(s) == "vader"]
    if not seeds:
        return []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colors, styles, labelled = {"weak": "C3", "clean": "C0"}, {1: "o-", 2: "s--", 3: "^:"}, set()
    for s in seeds:
        proxy_name = s.parent.name[len(ABLATION) :]
        rows = _load(s / "eval" / "curve-ppo.jsonl")
        if not rows:
            continue
        x = [math.sqrt(max(r["kl"], 0.0)) for r in rows]
        lab = None if proxy_name in labelled else f"PPO, {proxy_name} proxy (kl_coef 0)"
        labelled.add(proxy_name)
        st = styles.get(int(s.name[4:]), "o-")
        axes[0].plot(x, [r["proxy"] - rows[0]["proxy"] for r in rows], st, color=colors.get(proxy_name, "C7"),
                     label=lab, ms=3, alpha=0.8)  # fmt: skip
        axes[1].plot(x, [r["gold"] for r in rows], st, color=colors.get(proxy_name, "C7"), label=lab, ms=3,
                     alpha=0.8)  # fmt: skip
        bon = _load(s / "eval" / "bon.json")
        if bon:
            bx = [math.sqrt(r["kl"]) for r in bon]
            axes[1].plot(bx, [r["gold"] for r in bon], ":", color=colors.get(proxy_name, "C7"), alpha=0.6, lw=1)
    for ax, t in zip(axes, ("proxy RM score minus the base model's (optimised)", "gold score: VADER (hidden)")):
        ax.set_xlabel("sqrt(KL(pi || base)) [sqrt nats]")
        ax.set_title(t)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Goodhart ablation: two proxies of one base model, PPO without KL penalty (seed 1 solid, "
                 "seed 2 dashed; dotted: best-of-n on the same proxy)", fontsize=10)  # fmt: skip
    fig.tight_layout()
    fig.savefig(out / "goodhart.png", dpi=110)
    plt.close(fig)
    return ["goodhart.png"]


def table_samples(seeds, n: int = 12) -> str:
    rows = _load(seeds[0] / "eval" / "samples.jsonl") if seeds else None
    if not rows:
        return "(no samples yet)"
    names = [k for k in ("base", "ppo", "rloo", "grpo") if k in rows[0]]
    esc = lambda t: " ".join(t.replace("|", "/").split()) or "(empty)"
    lines = ["| prompt | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for r in rows[:n]:
        cells = [f"{esc(r[k]['text'])} <br>*gold {r[k]['gold']:+.2f}, proxy {r[k]['proxy']:+.2f}*" for k in names]
        lines.append(f"| {esc(r['prompt'])} | " + " | ".join(cells) + " |")
    return f"({seeds[0].name}; one sample per model at temperature 1, same seed)\n\n" + "\n".join(lines)


def figures(seeds, out: Path, suffix: str = "") -> list[str]:
    """The over-optimisation curves, PPO curves and reward-model plots of one experiment's seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    made = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for s in seeds:
        e = _load(s / "eval" / "eval.json")
        p0 = e["base"]["proxy"] if e else 0.0  # a BT reward is defined up to a constant: plot the gain over the base
        for method in METHODS:
            rows = _load(s / "eval" / f"curve-{method}.jsonl")
            if rows:
                x = [math.sqrt(max(r["kl"], 0.0)) for r in rows]
                lab = method.upper() if s == seeds[0] else None
                axes[0].plot(x, [r["proxy"] - p0 for r in rows], "o-", color=COLORS[method], label=lab, alpha=0.7, ms=3)
                axes[1].plot(x, [r["gold"] for r in rows], "o-", color=COLORS[method], label=lab, alpha=0.7, ms=3)
        bon = _load(s / "eval" / "bon.json")
        if bon:
            x = [math.sqrt(r["kl"]) for r in bon]
            lab = "best-of-n" if s == seeds[0] else None
            axes[0].plot(x, [r["proxy"] - bon[0]["proxy"] for r in bon], "s--", color=COLORS["bon"], label=lab, ms=3)
            axes[1].plot(x, [r["gold"] for r in bon], "s--", color=COLORS["bon"], label=lab, alpha=0.8, ms=3)
    for ax, t in zip(
        axes, ("proxy RM score minus the base model's (optimised)", "gold score: VADER compound (hidden)")
    ):
        ax.set_xlabel("sqrt(KL(pi || base)) [sqrt nats]")
        ax.set_title(t)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"Reward over-optimisation at toy scale, {seeds[0].parent.name} ({len(seeds)} seed(s); one line "
                 "per seed and method)")  # fmt: skip
    fig.tight_layout()
    fig.savefig(out / f"overoptimisation{suffix}.png", dpi=110)
    plt.close(fig)
    made.append(f"overoptimisation{suffix}.png")

    keys = [("proxy_score", "proxy score (raw RM)"), ("kl_k1", "KL to reference (k1 / k3, nats)"),
            ("entropy", "entropy per token (nats)"), ("response_len", "response length (tokens)")]  # fmt: skip
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for s in seeds:
        rows = _load(s / "ppo" / "metrics.jsonl")
        if not rows:
            continue
        steps = [r["step"] for r in rows]
        for ax, (k, title) in zip(axes, keys):
            ax.plot(steps, [r[k] for r in rows], color="C0", alpha=0.7, label=f"{s.name}")
            if k == "kl_k1":
                ax.plot(steps, [r["kl_k3"] for r in rows], color="C1", alpha=0.7, ls="--")
            ax.set_title(title)
            ax.set_xlabel("PPO iteration")
            ax.grid(alpha=0.3)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / f"ppo_curves{suffix}.png", dpi=110)
    plt.close(fig)
    made.append(f"ppo_curves{suffix}.png")

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for ax, key, title in ((axes[0], "rm", "proxy RM: held-out rewards"), (axes[1], "hh", "HH RM: held-out rewards")):
        m = _load(seeds[0] / key / "eval.json") if seeds else None
        if m:
            ax.hist(m["rewards_test"]["chosen"], bins=30, alpha=0.6, label="chosen")
            ax.hist(m["rewards_test"]["rejected"], bins=30, alpha=0.6, label="rejected")
            ax.set_title(f"{title} (acc {m['test']['accuracy']:.3f})")
            ax.legend()
    axes[2].plot([0, 1], [0, 1], "k:", lw=1)
    for key, c in (("rm", "C0"), ("hh", "C1")):
        m = _load(seeds[0] / key / "eval.json") if seeds else None
        if m:
            cal = m["test"]["calibration"]
            axes[2].plot([b["predicted"] for b in cal], [b["observed"] for b in cal], "o-", color=c,
                         label=f"{key} (ECE {m['test']['ece']:.3f})")  # fmt: skip
    axes[2].set_xlabel("predicted P(a preferred)")
    axes[2].set_ylabel("observed frequency")
    axes[2].set_title("calibration (held-out pairs, both orders)")
    if axes[2].get_legend_handles_labels()[0]:
        axes[2].legend()
    fig.tight_layout()
    fig.savefig(out / f"reward_models{suffix}.png", dpi=110)
    plt.close(fig)
    made.append(f"reward_models{suffix}.png")
    return made


def headline(seeds) -> str:
    """The index cell: means over the seeds that have each file."""
    mean = lambda xs: sum(xs) / len(xs) if xs else math.nan
    evals = [e for e in (_load(s / "eval" / "eval.json") for s in seeds) if e]
    rms = [m["test"] for m in (_load(s / "rm" / "eval.json") for s in seeds) if m]
    hhs = [m["test"] for m in (_load(s / "hh" / "eval.json") for s in seeds) if m]
    parts = []
    if evals:
        gold = [f"base {mean([e['base']['gold'] for e in evals]):.2f}"]
        for method in METHODS:
            fin = [e["methods"][method]["final"] for e in evals if method in e["methods"]]
            if fin:
                gold.append(f"{method.upper()} {mean([f['gold'] for f in fin]):.2f} "
                            f"(KL {mean([f['kl'] for f in fin]):.0f} nats)")  # fmt: skip
        bon = [e["best_of_n"] for e in evals if "best_of_n" in e]
        if bon:
            gold.append(f"best-of-{bon[0]['n']} {mean([b['gold'] for b in bon]):.2f} (KL {bon[0]['kl']:.1f})")
        parts.append("gold (VADER) score " + ", ".join(gold))
    if rms:
        parts.append(f"proxy RM accuracy {mean([t['accuracy'] for t in rms]):.2f} "
                     f"(label-noise ceiling {mean([t.get('gold_accuracy', math.nan) for t in rms]):.2f})")  # fmt: skip
    if hhs:
        parts.append(f"HH-RLHF harmless RM accuracy {mean([t['accuracy'] for t in hhs]):.2f} "
                     f"('shorter answer wins' {mean([t['length_baseline_accuracy'] for t in hhs]):.2f})")  # fmt: skip
    n = len(evals)
    return (
        "1M-param GPT-2 on tiny-shakespeare, " + "; ".join(parts) + f" (mean of {n} seed{'s' if n != 1 else ''}; "
        "proxy and gold rise together, gold drifts 0.1-0.2 on the proxy's plateau in some runs)"
    )


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collect", default=None, help="copy the small files of runs/rlhf/<experiment>/seed* first")
    parser.add_argument(
        "--collect-as",
        default=None,
        help="results/<name>/ for the collected runs (default: "
        "the run folder's name, e.g. shakespeare-cpu for runs/rlhf/shakespeare)",
    )
    parser.add_argument("--results", default="projects/rlhf/results")
    parser.add_argument("--readme", nargs="+", default=["projects/rlhf/README.md"])
    parser.add_argument("--index", default=None, help="top-level README whose headline:rlhf cell is updated")
    args = parser.parse_args(argv)
    results = Path(args.results)
    if args.collect:
        src = Path(args.collect)
        if not src.is_dir():
            raise FileNotFoundError(f"no runs to collect in {src} (run make train-rlhf first)")
        print(f"collected {len(collect(src, results, args.collect_as))} files from {src}")
    if not results.is_dir():
        raise FileNotFoundError(f"no results folder {results}")
    seeds = _seeds(results)
    made = []
    for exp in sorted({s.parent.name for s in seeds}):
        made += figures([s for s in seeds if s.parent.name == exp], results / "figures",
                        "" if exp == MAIN else f"-{exp}")  # fmt: skip
    made += figure_goodhart(results, results / "figures")
    made += figure_within_run(results, results / "figures")
    main_seeds = [s for s in seeds if s.parent.name == MAIN] or seeds
    blocks = {"sft": table_sft(seeds), "rm": table_rm(seeds), "overopt": table_overopt(seeds),
              "timing": table_timing(seeds) + "\n" + table_bench(results), "pipeline": table_pipeline(seeds),
              "matched-kl": table_matched_kl(seeds), "goodhart": table_goodhart(results),
              "goodhart-fit": table_goodhart_fit(results),
              "samples": table_samples(main_seeds)}  # fmt: skip
    update_markdown(args.readme, blocks)
    if args.index and main_seeds:
        write_headline(args.index, "rlhf", headline(main_seeds))
    print(f"wrote {', '.join(blocks)} and figures {', '.join(made)}")


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
