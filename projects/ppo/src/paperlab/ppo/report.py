"""Tables and plots for projects/ppo, from the committed results only (no number typed by hand).

    python -m paperlab.ppo.report --results projects/ppo/results --readme projects/ppo/README.md

Reads ``results/ip/*/`` (InvertedPendulum seeds), ``results/ewma_sweep/sweep.json``,
``results/brax/<env>/<impl>-seed<k>/`` (our torch PPO and Brax's JAX PPO) and ``results/bench/*.json``;
writes ``results/*.png`` and replaces the text between ``<!-- report:NAME -->`` and
``<!-- /report:NAME -->`` in the given Markdown files (``paperlab.shared.report``: every block must
land in at least one file). Committed runs made before the common run-directory keys keep their old
``summary.json`` keys (``wall_time`` for ``wall_time_s``, ``interrupted`` for ``not finished``) and
their bench files have one load average instead of before/after: both are read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from paperlab.shared.cli import run_command
from paperlab.shared.report import update_markdown, write_headline
from paperlab.shared.runlog import read_metrics


def _load(p: Path) -> dict:
    return json.loads(p.read_text())


def _evals(run: Path) -> list[tuple[int, float]]:
    return [
        (r["step"], r["eval_return"]) for r in read_metrics(run / "metrics.jsonl") if r.get("eval_return") is not None
    ]


def wall_time_s(summary: dict) -> float:
    """``wall_time_s`` (the common key), or ``wall_time`` in runs committed before it."""
    return summary["wall_time_s"] if "wall_time_s" in summary else summary["wall_time"]


def _fmt_k(x: float) -> str:
    return f"{x / 1000:.1f}k" if x < 1e6 else f"{x / 1e6:.2f}M"


def median_range(xs) -> str:
    xs = np.asarray(xs, float)
    return f"{np.median(xs):.0f} [{xs.min():.0f}, {xs.max():.0f}]"


# ------------------------------------------------------------------ InvertedPendulum
def ip_table(results: Path) -> str:
    runs = sorted((results / "ip").glob("*-seed*"))
    if not runs:
        return "_no InvertedPendulum runs committed yet_\n"
    lines = [
        "| run | steps to eval 1000 | wall time to 1000 (s) | steps/s | final 10-episode eval |",
        "|---|---|---|---|---|",
    ]
    solved, walls, sps = [], [], []
    for run in runs:
        s = _load(run / "summary.json")
        ev = _load(run / "evaluate.json") if (run / "evaluate.json").exists() else None
        final = f"{ev['mean_return']:.1f} ± {ev['std_return']:.1f}" if ev else "-"
        if s["solved_step"] is not None:
            solved.append(s["solved_step"])
            walls.append(s["solved_wall_time"])
        sps.append(s["steps_per_s"])
        lines.append(
            f"| {run.name} | {s['solved_step'] if s['solved_step'] is not None else 'not reached'} | "
            f"{s['solved_wall_time']:.0f} | {s['steps_per_s']:.0f} | {final} |"
            if s["solved_step"] is not None
            else f"| {run.name} | not reached | - | {s['steps_per_s']:.0f} | {final} |"
        )
    lines.append(
        f"| **{len(solved)}/{len(runs)} reached 1000** | median {median_range(solved)} | "
        f"median {median_range(walls)} | median {np.median(sps):.0f} | |"
    )
    return "\n".join(lines) + "\n"


def ip_plot(results: Path) -> None:
    import matplotlib.pyplot as plt

    runs = sorted((results / "ip").glob("*-seed*"))
    if not runs:
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for run in runs:
        ev = _evals(run)
        ax.plot([0] + [s for s, _ in ev], [np.nan] + [r for _, r in ev], marker="o", ms=3, label=run.name)
    ax.axhline(1000, color="k", lw=0.8, ls="--")
    ax.set(xlabel="env steps", ylabel="eval return (10 episodes, deterministic)", title="PPO on InvertedPendulum-v5")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(results / "ip.png", dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------ PPO vs PPO-EWMA
def _sweep_groups(sweep: dict) -> dict[tuple[str, int], list[dict]]:
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in sweep["runs"]:
        groups.setdefault((r["algo"], r["num_envs"]), []).append(r)
    return groups


def _auc(curve) -> float:
    """Mean evaluation return over the run (area under the eval curve / its length)."""
    return float(np.mean([v for _, v in curve])) if curve else float("nan")


def ewma_table(results: Path) -> str:
    path = results / "ewma_sweep" / "sweep.json"
    if not path.exists():
        return "_no sweep committed yet_\n"
    groups = _sweep_groups(_load(path))
    lines = [
        "| algo | num_envs (batch) | seeds | mean eval return over the run | final eval return "
        "| steps to first eval 1000 |",
        "|---|---|---|---|---|---|",
    ]
    for (algo, n), runs in sorted(groups.items(), key=lambda kv: (kv[0][0], -kv[0][1])):
        auc = [_auc(r["eval_curve"]) for r in runs]
        final = [r["eval_curve"][-1][1] for r in runs]
        firsts = [next((s for s, v in r["eval_curve"] if v >= 1000), None) for r in runs]
        reached = [f for f in firsts if f is not None]
        first_txt = f"{len(reached)}/{len(runs)}; median {np.median(reached) / 1000:.1f}k" if reached else "none"
        lines.append(
            f"| {algo} | {n} ({runs[0]['batch_size']}) | {len(runs)} | {np.mean(auc):.0f} ± {np.std(auc):.0f} | "
            f"{np.mean(final):.0f} ± {np.std(final):.0f} | {first_txt} |"
        )
    return "\n".join(lines) + "\n"


def ewma_plot(results: Path) -> None:
    import matplotlib.pyplot as plt

    path = results / "ewma_sweep" / "sweep.json"
    if not path.exists():
        return
    groups = _sweep_groups(_load(path))
    algos = sorted({a for a, _ in groups})
    fig, axes = plt.subplots(1, len(algos), figsize=(5 * len(algos), 3.5), sharey=True, squeeze=False)
    for ax, algo in zip(axes[0], algos):
        for (a, n), runs in sorted(groups.items(), key=lambda kv: -kv[0][1]):
            if a != algo:
                continue
            steps = np.array([s for s, _ in runs[0]["eval_curve"]])
            k = min(len(r["eval_curve"]) for r in runs)
            vals = np.array([[v for _, v in r["eval_curve"][:k]] for r in runs])
            line = ax.plot(steps[:k], vals.mean(0), label=f"batch {runs[0]['batch_size']} ({n} envs)")[0]
            ax.fill_between(steps[:k], vals.min(0), vals.max(0), color=line.get_color(), alpha=0.2)
        ax.set(title=algo, xlabel="env steps")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("eval return (mean, min-max over seeds)")
    fig.tight_layout()
    fig.savefig(results / "ewma_sweep.png", dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------ Brax
def brax_runs(results: Path) -> list[Path]:
    return sorted(p for p in (results / "brax").glob("*/*") if (p / "metrics.jsonl").exists())


def brax_table(results: Path) -> str:
    runs = brax_runs(results)
    if not runs:
        return "_no Brax runs committed yet_\n"
    lines = [
        "| env | implementation | env steps | final eval | best eval | wall time (min) | steady steps/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        env = run.parent.name
        impl = "Brax JAX PPO" if run.name.startswith("brax-ppo") else f"ours ({run.name.split('-seed')[0]}, torch)"
        ev = _evals(run)
        if (run / "summary.json").exists():
            s = _load(run / "summary.json")
            steps, wall = s["steps"], wall_time_s(s)
            sps = s.get("steps_per_s_steady")
        else:  # a run still going: the last logged row
            rows = read_metrics(run / "metrics.jsonl")
            steps, wall = rows[-1]["step"], rows[-1].get("wall_time", float("nan"))
            sps = None
        if sps is None:  # ours: the median over iterations of rollout + update steps/s (evaluations excluded)
            sps = float(np.median([r["sps"] for r in read_metrics(run / "metrics.jsonl") if "sps" in r]))
        final = f"{ev[-1][1]:.0f}" if ev else "-"
        best = f"{max(v for _, v in ev):.0f}" if ev else "-"
        lines.append(f"| {env} | {impl} | {_fmt_k(steps)} | {final} | {best} | {wall / 60:.1f} | {sps:.0f} |")
    return "\n".join(lines) + "\n"


def brax_plot(results: Path) -> None:
    import matplotlib.pyplot as plt

    runs = brax_runs(results)
    envs = sorted({r.parent.name for r in runs})
    if not envs:
        return
    fig, axes = plt.subplots(1, len(envs), figsize=(5 * len(envs), 3.5), squeeze=False)
    for ax, env in zip(axes[0], envs):
        for run in runs:
            if run.parent.name != env:
                continue
            ev = _evals(run)
            label = "Brax JAX PPO" if run.name.startswith("brax-ppo") else f"ours: {run.name}"
            ax.plot([s for s, _ in ev], [v for _, v in ev], marker="o", ms=3, label=label)
        ax.set(title=f"Brax {env}", xlabel="env steps", ylabel="eval return (deterministic)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(results / "brax.png", dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------ throughput
def bench_table(results: Path) -> str:
    files = sorted((results / "bench").glob("*.json"))
    if not files:
        return "_no benchmark committed yet_\n"
    lines = [
        "| case | env | envs x steps (minibatch) | steps/s | steady steps/s | env step | rest of rollout | update "
        "| load avg | machine |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in files:
        r = _load(f)
        if "case" not in r:
            continue
        lines.append(
            f"| {r['case']} | {r['env_id']} | {r['num_envs']} x {r['batch_size'] // r['num_envs']} "
            f"({r['minibatch_size']}) | "
            f"{r['steps_per_s']:.0f} | {r['steps_per_s_steady']:.0f} | {r['fraction_env_step']:.0%} | "
            f"{r['fraction_rollout_other']:.0%} | {r['fraction_update']:.0%} | {load_text(r)} | {r['machine']} |"
        )
    return "\n".join(lines) + "\n"


def load_text(r: dict) -> str:
    """1-minute load average before -> after a bench case (older files: one value, taken at the end)."""
    if "load_average_before" in r:
        return f"{r['load_average_before'][0]:.1f} -> {r['load_average_after'][0]:.1f}"
    return f"{r['load_average_1min']:.1f}"


def analysis_facts(results: Path) -> str:
    """The measured facts the REPORT's analysis discusses, computed from the committed files."""
    out = []
    runs = sorted((results / "ip").glob("*-seed*"))
    if runs:
        sums = [_load(r / "summary.json") for r in runs]
        solved = [s["solved_step"] for s in sums if s["solved_step"] is not None]
        out.append(
            f"- InvertedPendulum-v5: {len(solved)}/{len(runs)} seeds reached a 10-episode evaluation of 1000, "
            f"median {np.median(solved) / 1000:.1f}k steps (evaluations every 4096 steps), median wall time "
            f"{np.median([s['solved_wall_time'] for s in sums if s['solved_wall_time']]):.0f} s on the shared machine."
        )
    path = results / "ewma_sweep" / "sweep.json"
    if path.exists():
        groups = _sweep_groups(_load(path))
        for algo in sorted({a for a, _ in groups}):
            sizes = sorted((n for a, n in groups if a == algo), reverse=True)
            if len(sizes) < 2:
                continue
            big, small = (np.mean([_auc(r["eval_curve"]) for r in groups[(algo, n)]]) for n in (sizes[0], sizes[-1]))
            out.append(
                f"- {algo}: mean evaluation return over the 40k-step run {big:.0f} at {sizes[0]} envs, "
                f"{small:.0f} at {sizes[-1]} envs ({small / big:.0%} of it)."
            )
    for run in brax_runs(results):
        ev = _evals(run)
        if not ev:
            continue
        who = "Brax's JAX PPO" if run.name.startswith("brax-ppo") else f"our torch PPO ({run.name})"
        out.append(
            f"- Brax {run.parent.name}, {who}: final evaluation {ev[-1][1]:.0f}, best {max(v for _, v in ev):.0f}, "
            f"after {_fmt_k(ev[-1][0])} steps."
        )
    for f in sorted((results / "bench").glob("*.json")):
        r = _load(f)
        if "case" in r:
            out.append(
                f"- bench {r['case']}: {r['steps_per_s_steady']:.0f} steps/s steady; env step "
                f"{r['fraction_env_step']:.0%}, rest of rollout {r['fraction_rollout_other']:.0%}, update "
                f"{r['fraction_update']:.0%} of the time (load average {load_text(r)})."
            )
    return "\n".join(out) + "\n"


def headline(results: Path) -> str:
    parts = []
    runs = sorted((results / "ip").glob("*-seed*"))
    if runs:
        solved = [_load(r / "summary.json")["solved_step"] for r in runs]
        ok = [x for x in solved if x is not None]
        med = f", median {np.median(ok) / 1000:.1f}k steps" if ok else ""
        parts.append(f"InvertedPendulum-v5 eval 1000: {len(ok)}/{len(runs)} seeds{med}")
    brax = []
    for run in brax_runs(results):
        rows = [r for r in read_metrics(run / "metrics.jsonl") if r.get("eval_return") is not None]
        if rows and "-std" not in run.name:  # the failed std-1 Ant run stays in the tables, not the headline
            who = "Brax's JAX PPO" if run.name.startswith("brax-ppo") else "ours"
            last = rows[-1]
            std = f" ± {last['eval_return_std']:.0f}" if last.get("eval_return_std") is not None else ""
            brax.append(
                f"Brax {run.parent.name} ({who}): eval {last['eval_return']:.0f}{std} "
                f"after {_fmt_k(last['step'])} steps"
            )
    if brax:
        episodes = sorted({_eval_episodes(run) for run in brax_runs(results)} - {None})
        n = "/".join(str(e) for e in episodes) or "?"
        parts.append("; ".join(brax) + f" (one seed each; ± is the std over {n} evaluation episodes)")
    return "; ".join(parts)


def _eval_episodes(run: Path) -> int | None:
    cfg = run / "config.yaml"
    if not cfg.exists():
        return None
    import yaml

    return (yaml.safe_load(cfg.read_text()) or {}).get("eval_episodes")


BLOCKS = {"ip": ip_table, "ewma": ewma_table, "brax": brax_table, "bench": bench_table, "analysis": analysis_facts}


def _main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="projects/ppo/results")
    p.add_argument("--readme", nargs="+", default=[])
    p.add_argument("--index", default=None, help="top-level README whose <!-- headline:ppo --> cell is updated")
    args = p.parse_args(argv)
    results = Path(args.results)
    if not results.is_dir():
        raise FileNotFoundError(f"no results directory at {results}")
    for plot in (ip_plot, ewma_plot, brax_plot):
        plot(results)
    tables = {name: fn(results) for name, fn in BLOCKS.items()}
    if args.readme:
        update_markdown(args.readme, tables)
    for name, content in tables.items():
        print(f"--- {name}\n{content}")
    if args.index:
        line = headline(results)
        write_headline(args.index, "ppo", line)
        print(f"--- headline\n{line}")


def main(argv=None):
    return run_command(_main, argv)


if __name__ == "__main__":
    main()
