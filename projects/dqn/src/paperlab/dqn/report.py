"""Tables and plots for the README, made only from the metrics files committed under ``results/``.

    python -m paperlab.dqn.report --collect runs/dqn --results projects/dqn/results   # copy small files
    python -m paperlab.dqn.report --results projects/dqn/results --readme projects/dqn/README.md
    python -m paperlab.dqn.report --collect runs/dqn/batched --collect-into projects/dqn/results/batched  # batched runs

``--collect`` copies, for every finished run under the runs folder, the small files
(``config.yaml``, ``metrics.jsonl``, ``episodes.csv``, ``eval.json``, ``summary.json``) into the
results folder. The report then writes ``results/*.md`` tables and ``results/*.png`` plots, and
replaces the text between ``<!-- report:NAME -->`` and ``<!-- /report:NAME -->`` in the README.

``summary.json`` keys: every run has ``steps``, ``wall_time_s``, ``finished`` and ``seed``; runs made
since the common run-directory contract also have ``device`` (the committed runs predate it and are
all CPU runs). A run stopped before its end has ``finished: false`` and is left out.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

import numpy as np

from paperlab.shared.cli import run_command
from paperlab.shared.report import update_markdown, write_headline
from paperlab.shared.runlog import read_metrics

SMALL_FILES = ("config.yaml", "metrics.jsonl", "episodes.csv", "eval.json", "summary.json")
# DQN at 5M frames, read off the learning curves of Young & Tian (2019), arXiv 1903.03176 (the same
# figure is img/learning_curves.gif in github.com/kenjyoung/MinAtar: moving average of returns over
# 100 episodes, 30 seeds). Approximate values read from a plot; the paper gives curves, not a table.
PAPER_DQN_5M = {"Asterix": 17, "Breakout": 10, "Freeway": 50, "Seaquest": 20, "SpaceInvaders": 43}
AGENT_NAMES = {"dqn": "DQN", "mdqn": "M-DQN"}


def _finished(summary: Path) -> bool:
    return json.loads(summary.read_text()).get("finished", True)


def collect(runs: Path, results: Path) -> int:
    n = 0
    for summary in sorted(runs.rglob("summary.json")):
        if not _finished(summary):
            continue
        run = summary.parent
        dest = results / run.relative_to(runs)
        dest.mkdir(parents=True, exist_ok=True)
        for name in SMALL_FILES:
            if (run / name).exists():
                shutil.copy2(run / name, dest / name)
        n += 1
    return n


def _runs(folder: Path) -> dict[str, list[Path]]:
    """agent -> run folders (named <agent>-seed<k>) that finished."""
    out: dict[str, list[Path]] = {}
    for run in sorted(folder.glob("*-seed*")):
        if (run / "summary.json").exists() and _finished(run / "summary.json"):
            out.setdefault(run.name.split("-seed")[0], []).append(run)
    return out


def _med_range(xs, fmt="{:.0f}") -> str:
    xs = np.asarray(xs, dtype=float)
    return f"{fmt.format(np.median(xs))} [{fmt.format(xs.min())}, {fmt.format(xs.max())}]"


def cartpole_table(folder: Path) -> str:
    lines = [
        "| agent | seeds solved | env steps to eval ≥ 475: median [min, max] | wall time (s): median "
        "[min, max] | final eval, 100 fresh episodes: mean ± std over seeds (worst seed) | training "
        "return, last 100 episodes at the stop: median [min, max] |",
        "|---|---|---|---|---|---|",
    ]
    for agent, runs in sorted(_runs(folder).items()):
        s = [json.loads((r / "summary.json").read_text()) for r in runs]
        solved = [x for x in s if x["solved"]]
        evals = np.array([x["eval"]["return_mean"] for x in s])
        steps = _med_range([x["solved"]["step"] for x in solved]) if solved else "not reached"
        times = _med_range([x["solved"]["time"] for x in solved], "{:.0f}") if solved else "-"
        train_ret = _med_range([x["final_return_mean"] for x in s])
        lines.append(
            f"| {AGENT_NAMES.get(agent, agent)} | {len(solved)}/{len(s)} | {steps} | {times} | "
            f"{evals.mean():.1f} ± {evals.std():.1f} ({evals.min():.1f}) | {train_ret} |"
        )
    return "\n".join(lines)


def _episode_curve(run: Path, grid: np.ndarray, window: int = 100) -> np.ndarray:
    """Mean return of the last ``window`` training episodes, at each step of ``grid``."""
    with open(run / "episodes.csv") as f:
        rows = [(int(r["step"]), float(r["return"])) for r in csv.DictReader(f)]
    steps = np.array([s for s, _ in rows])
    rets = np.array([r for _, r in rows])
    csum = np.concatenate([[0.0], np.cumsum(rets)])
    out = np.full(len(grid), np.nan)
    for i, g in enumerate(grid):
        n = np.searchsorted(steps, g, side="right")
        if n:
            k = max(0, n - window)
            out[i] = (csum[n] - csum[k]) / (n - k)
    return out


def _label(agent: str, runs: list) -> str:
    return f"{AGENT_NAMES.get(agent, agent)} ({len(runs)} seed{'s' if len(runs) > 1 else ''})"


COLORS = {"dqn": "tab:blue", "mdqn": "tab:red"}


def _plot_episode_curves(ax, folder: Path, total: int) -> None:
    """Trailing-100 training return: mean over seeds, band from the worst to the best seed."""
    grid = np.linspace(total / 100, total, 100)
    for agent, runs in sorted(_runs(folder).items()):
        curves = np.stack([_episode_curve(r, grid) for r in runs])
        ax.plot(grid, np.nanmean(curves, 0), color=COLORS.get(agent), label=_label(agent, runs))
        if len(runs) > 1:
            ax.fill_between(grid, np.nanmin(curves, 0), np.nanmax(curves, 0), color=COLORS.get(agent), alpha=0.2)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")


def _plot_eval_curves(ax, folder: Path) -> None:
    """The evaluations logged during training, one thin line per seed."""
    for agent, runs in sorted(_runs(folder).items()):
        for r in runs:
            rows = [m for m in read_metrics(r / "metrics.jsonl") if "eval_return_mean" in m]
            ax.plot(
                [m["step"] for m in rows],
                [m["eval_return_mean"] for m in rows],
                color=COLORS.get(agent),
                alpha=0.35,
                lw=1,
            )
        ax.plot([], [], color=COLORS.get(agent), label=_label(agent, runs))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")


def cartpole_plot(folder: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    _plot_eval_curves(ax, folder)
    ax.axhline(475, color="k", ls="--", lw=1)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("greedy eval return (100 episodes)")
    ax.set_title("CartPole-v1: evaluation during training (each line a seed)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _mean_std(xs: np.ndarray) -> str:
    """mean ± std over seeds, with the number of seeds; a single seed has no spread to show."""
    if len(xs) == 1:
        return f"{xs[0]:.1f} (1 seed)"
    return f"{xs.mean():.1f} ± {xs.std():.1f} ({len(xs)} seeds)"


def minatar_table(folder: Path) -> str:
    lines = [
        "| game | frames per run | DQN: return, last 100 training episodes | M-DQN: same | "
        "DQN: greedy eval | M-DQN: greedy eval | paper's DQN at 5M frames (approx.) |",
        "|---|---|---|---|---|---|---|",
    ]
    for game_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        runs = _runs(game_dir)
        if not runs:
            continue
        cells, frames = {}, set()
        for agent in ("dqn", "mdqn"):
            s = [json.loads((r / "summary.json").read_text()) for r in runs.get(agent, [])]
            frames |= {x["steps"] for x in s}
            if s:
                tr = np.array([x["final_return_mean"] for x in s])
                ev = np.array([x["eval"]["return_mean"] for x in s])
                cells[agent] = (_mean_std(tr), _mean_std(ev))
            else:
                cells[agent] = ("-", "-")
        fr = "/".join(f"{f / 1e6:g}M" for f in sorted(frames))
        lines.append(
            f"| {game_dir.name} | {fr} | {cells['dqn'][0]} | {cells['mdqn'][0]} | {cells['dqn'][1]} | "
            f"{cells['mdqn'][1]} | ~{PAPER_DQN_5M.get(game_dir.name, '?')} |"
        )
    return "\n".join(lines)


def minatar_plot(folder: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    games = [p for p in sorted(folder.iterdir()) if p.is_dir() and _runs(p)]
    fig, axes = plt.subplots(1, len(games), figsize=(4.2 * len(games), 3.4), squeeze=False)
    for ax, game in zip(axes[0], games):
        total = max(json.loads((r / "summary.json").read_text())["steps"] for rs in _runs(game).values() for r in rs)
        _plot_episode_curves(ax, game, total)
        ax.set_title(f"MinAtar {game.name}")
        ax.set_xlabel("frames")
    axes[0][0].set_ylabel("return, last 100 episodes\n(mean over seeds; band: min-max)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------- batched runs: results/batched/<Game>/<agent>/seed<k>
GAMES = ("Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders")


def _seed_runs(game_dir: Path) -> dict[str, list[Path]]:
    """agent -> finished seed folders of a batched run (``<agent>/seed<k>``)."""
    out: dict[str, list[Path]] = {}
    for agent_dir in sorted(p for p in game_dir.iterdir() if p.is_dir()):
        runs = sorted(
            (r for r in agent_dir.glob("seed*") if (r / "summary.json").exists() and _finished(r / "summary.json")),
            key=lambda r: int(r.name[4:]),
        )
        if runs:
            out[agent_dir.name] = runs
    return out


def _summaries(runs: list[Path]) -> list[dict]:
    return [json.loads((r / "summary.json").read_text()) for r in runs]


def random_level(runs: dict[str, list[Path]]) -> float | None:
    """Mean return of the episodes that ended during the replay start of every seed and agent, when
    epsilon is still 1: the uniformly random policy's return, measured in the same runs."""
    returns = []
    for rs in runs.values():
        for r in rs:
            start = yaml_value(r / "config.yaml", "learning_starts")
            with open(r / "episodes.csv") as f:
                returns += [float(e["return"]) for e in csv.DictReader(f) if int(e["step"]) <= start]
    return float(np.mean(returns)) if returns else None


def yaml_value(path: Path, key: str) -> int:
    """One integer entry of a saved config.yaml (flat ``key: value`` lines)."""
    for line in path.read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split(":", 1)[1])
    raise KeyError(f"{key} not in {path}")


def batched_table(folder: Path) -> str:
    lines = [
        "| game | frames per seed | DQN: return, last 100 training episodes | M-DQN: same | DQN: greedy eval "
        "| M-DQN: greedy eval | random policy (first 5k frames) | frames/s of a 5-seed process (DQN / M-DQN) "
        "| paper's DQN at 5M frames (read from its plot) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for game_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        runs = _seed_runs(game_dir)
        if not runs:
            continue
        cells, frames, fps = {}, set(), {}
        for agent in ("dqn", "mdqn"):
            s = _summaries(runs.get(agent, []))
            frames |= {x["steps"] for x in s}
            if s:
                tr = np.array([x["final_return_mean"] for x in s])
                ev = np.array([x["eval"]["return_mean"] for x in s])
                cells[agent] = (_mean_std(tr), _mean_std(ev) + f", {s[0]['eval']['episodes']} episodes each")
                fps[agent] = f"{s[0]['fps_all_agents']:.0f}"
            else:
                cells[agent], fps[agent] = ("-", "-"), "-"
        fr = "/".join(f"{f / 1e3:g}k" for f in sorted(frames))
        level = random_level(runs)
        rnd = "-" if level is None else f"{level:.2f}"
        lines.append(
            f"| {game_dir.name} | {fr} | {cells['dqn'][0]} | {cells['mdqn'][0]} | {cells['dqn'][1]} | "
            f"{cells['mdqn'][1]} | {rnd} | {fps['dqn']} / {fps['mdqn']} | ~{PAPER_DQN_5M.get(game_dir.name, '?')} |"
        )
    lines += ["", budget_line(folder)]
    return "\n".join(lines)


def budget_line(folder: Path) -> str:
    """What the budgets of the issue (1M frames per seed) and the paper (5M) would cost at the measured rate."""
    s = [x for g in folder.iterdir() if g.is_dir() for rs in _seed_runs(g).values() for x in _summaries(rs)[:1]]
    if not s:
        return ""
    fps = float(np.mean([x["fps_all_agents"] for x in s]))  # agent-frames/s of one process, whole run
    n, frames = s[0]["num_seeds"], max(x["steps"] for x in s)
    hours = {budget: budget * n / fps / 3600 for budget in (1e6, 5e6)}
    return (
        f"{len(s)} processes of {n} seeds, {frames / 1e3:g}k frames per seed: {100 * frames / 1e6:.1f}% of the "
        f"1M-frames-per-seed target and {100 * frames / 5e6:.1f}% of the paper's 5M. At their mean rate of "
        f"{fps:.0f} agent-frames/s (whole run, warm-up and evaluation included, one core each), 1M frames per "
        f"seed would take {hours[1e6]:.1f} h per process ({len(s) * hours[1e6]:.0f} core-hours for these processes), "
        f"5M {hours[5e6]:.0f} h per process ({len(s) * hours[5e6]:.0f} core-hours)."
    )


def batched_plot(folder: Path, out: Path) -> None:
    """Trailing-100 training return per game: mean over seeds, band mean ± std."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    games = [p for p in sorted(folder.iterdir()) if p.is_dir() and _seed_runs(p)]
    fig, axes = plt.subplots(1, len(games), figsize=(3.6 * len(games), 3.2), squeeze=False)
    for ax, game in zip(axes[0], games):
        runs = _seed_runs(game)
        total = max(x["steps"] for rs in runs.values() for x in _summaries(rs))
        grid = np.linspace(total / 50, total, 50)
        for agent, rs in sorted(runs.items()):
            curves = np.stack([_episode_curve(r, grid) for r in rs])
            mean, std = np.nanmean(curves, 0), np.nanstd(curves, 0)
            ax.plot(grid, mean, color=COLORS.get(agent), label=_label(agent, rs))
            ax.fill_between(grid, mean - std, mean + std, color=COLORS.get(agent), alpha=0.2)
        level = random_level(runs)
        if level is not None:
            ax.axhline(level, color="k", ls="--", lw=1, label="random policy")
        ax.set_title(game.name)
        ax.set_xlabel("frames")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("return, last 100 episodes\n(mean over seeds ± std)")
    axes[0][0].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def seeds_bench_table(path: Path) -> str:
    b = json.loads(path.read_text())
    lines = [
        f"{b['env_id']}, agent {b['agent']}, the paper's hyperparameters (batch {b['batch_size']}, one update "
        f"per frame, compiled RMSprop), epsilon {b['epsilon']}, {b['frames_timed']} frames timed per row, torch "
        f"{b['torch']}, {b['torch_threads']} thread, {b['cpu_model']} ({b['cpu_count']} cores); matrix-product "
        f"peak measured in the same setting ({b['matmul_peak_shape']}): **{b['matmul_peak_gflops']:.0f} GFLOP/s**.",
        "",
        "| trainer | seeds per process | frames/s per agent | agent-frames/s | vs solo trainer | "
        "FLOPs per update (all agents) | achieved GFLOP/s | share of matmul peak | load (1 min) before / after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in b["rows"]:
        lines.append(
            f"| {r['trainer']} | {r['num_seeds']} | {r['frames_per_s_per_agent']:.0f} | "
            f"{r['agent_frames_per_s']:.0f} | {r['speedup_vs_solo_trainer']:.2f}x | "
            f"{r['update_mflop']:.1f} M | {r['achieved_gflops']:.1f} | {100 * r['share_of_matmul_peak']:.0f}% | "
            f"{r['load_before'][0]:.1f} / {r['load_after'][0]:.1f} |"
        )
    return "\n".join(lines)


def bench_machine(b: dict) -> str:
    """The machine and its load during a benchmark, as the bench JSON records them (older files: nothing)."""
    if "load_before" not in b:
        return ""
    before, after = b["load_before"][0], b["load_after"][0]
    return (
        f"; machine {b.get('cpu_model', b.get('cpu', '?'))}, {b.get('cpu_count', '?')} cores, load average "
        f"(1 min) {before:.1f} before and {after:.1f} after the timed run"
    )


def bench_table(path: Path) -> str:
    b = json.loads(path.read_text())
    lines = [
        f"Training throughput, {b['env_id']}, agent {b['agent']}, batch {b['batch_size']}, replay "
        f"{b['buffer_size']}, one update per frame, optimizer {b['optimizer']} (compiled: "
        f"{b['compile_optimizer']}), torch {b['torch']}, {b['torch_threads']} thread: "
        f"**{b['fps_median']:.0f} frames/s** (median over 1000-frame intervals; range "
        f"{b['fps_min']:.0f}-{b['fps_max']:.0f}{bench_machine(b)}).",
        "",
        "| where the time goes (cProfile, share of a run) | share |",
        "|---|---|",
    ]
    for k, v in b.get("profile_share_of_run", {}).items():
        lines.append(f"| {k} | {100 * v:.0f}% |")
    ops = dict(b.get("update_op_share", {}))
    if ops:
        per_update = ops.pop("update_us_under_profiler")
        lines += [
            "",
            f"Inside one update ({per_update:.0f} µs under torch.profiler), the operators with the "
            "largest share of CPU time:",
            "",
            "| operator | share of the update |",
            "|---|---|",
        ]
        lines += [f"| `{k}` | {100 * v:.0f}% |" for k, v in ops.items()]
    return "\n".join(lines)


def headline(results: Path) -> str:
    """One line for the repository index, from the same files as the tables."""
    parts = []
    cp = results / "cartpole"
    if cp.is_dir():
        bits = []
        for agent, runs in sorted(_runs(cp).items()):
            s = [json.loads((r / "summary.json").read_text()) for r in runs]
            solved = [x["solved"]["step"] for x in s if x["solved"]]
            med = f", median {np.median(solved) / 1000:.0f}k steps" if solved else ""
            bits.append(f"{AGENT_NAMES.get(agent, agent)} {len(solved)}/{len(s)} seeds{med}")
        parts.append("CartPole-v1 greedy eval ≥ 475: " + "; ".join(bits))
    mn = results / "minatar"
    if mn.is_dir():
        for game in sorted(p for p in mn.iterdir() if p.is_dir() and _runs(p)):
            bits, frames = [], set()
            for agent, runs in sorted(_runs(game).items()):
                s = [json.loads((r / "summary.json").read_text()) for r in runs]
                frames |= {x["steps"] for x in s}
                bits.append(f"{AGENT_NAMES.get(agent, agent)} {np.mean([x['final_return_mean'] for x in s]):.1f}")
            fr = "/".join(f"{f / 1e3:.0f}k" for f in sorted(frames))
            n = min(len(rs) for rs in _runs(game).values())
            parts.append(
                f"MinAtar {game.name} at {fr} frames, {n} seed{'s' if n > 1 else ''}, training return: "
                + ", ".join(bits)
            )
    bt = results / "batched"
    if bt.is_dir():
        games = [p for p in sorted(bt.iterdir()) if p.is_dir() and _seed_runs(p)]
        if games:
            cells, frames, seeds = [], set(), set()
            for game in games:
                runs, level = _seed_runs(game), random_level(_seed_runs(game))
                means = []
                for agent in ("dqn", "mdqn"):
                    s = _summaries(runs.get(agent, []))
                    frames |= {x["steps"] for x in s}
                    seeds |= {len(s)} if s else set()
                    means.append(f"{np.mean([x['final_return_mean'] for x in s]):.2f}" if s else "-")
                rnd = "-" if level is None else f"{level:.2f}"
                cells.append(f"{game.name} {'/'.join(means)} vs {rnd}")
            fr = "/".join(f"{f / 1e3:.0f}k" for f in sorted(frames))
            parts.append(
                f"MinAtar, {len(games)} of 5 games at {fr} frames per seed ({min(seeds)} seeds per batched "
                f"process), training return DQN/M-DQN (seed mean) vs random policy: " + ", ".join(cells)
            )
    return "; ".join(parts)


def _main(argv=None) -> None:
    p = argparse.ArgumentParser(description="DQN results: tables and plots from committed metrics.")
    p.add_argument("--results", default="projects/dqn/results")
    p.add_argument("--collect", default=None, help="runs folder to copy finished runs' small files from")
    p.add_argument("--collect-into", default=None, help="folder the collected runs go to (default: --results)")
    p.add_argument("--readme", nargs="*", default=[], help="README/REPORT files to update between report markers")
    p.add_argument("--index", default=None, help="top-level README whose <!-- headline:dqn --> cell is updated")
    args = p.parse_args(argv)
    results = Path(args.results)
    if not results.is_dir():
        raise FileNotFoundError(f"no results folder {results}")
    if args.collect:
        into = Path(args.collect_into) if args.collect_into else results
        print(f"collected {collect(Path(args.collect), into)} runs into {into}")
    blocks = {}
    if (results / "cartpole").is_dir():
        blocks["cartpole"] = cartpole_table(results / "cartpole")
        cartpole_plot(results / "cartpole", results / "cartpole.png")
    if (results / "minatar").is_dir():
        blocks["minatar"] = minatar_table(results / "minatar")
        minatar_plot(results / "minatar", results / "minatar.png")
    if (results / "batched").is_dir():
        blocks["batched"] = batched_table(results / "batched")
        batched_plot(results / "batched", results / "batched.png")
    if (results / "bench" / "seeds.json").exists():
        blocks["bench-seeds"] = seeds_bench_table(results / "bench" / "seeds.json")
    if (results / "bench" / "breakout.json").exists():
        blocks["bench"] = bench_table(results / "bench" / "breakout.json")
    for name, content in blocks.items():
        (results / f"{name}.md").write_text(content + "\n")
        print(f"--- {name}\n{content}")
    if args.readme:
        update_markdown(args.readme, blocks)  # a block without its markers anywhere is an error
    if args.index:
        line = headline(results)
        write_headline(args.index, "dqn", line)
        print(f"--- headline\n{line}")


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
