"""README/REPORT tables from the committed harness results (``projects/agent/results/<preset>/``).

    python -m paperlab.agent.report [--collect runs/agent/eval] --results projects/agent/results \
        --readme projects/agent/README.md projects/agent/REPORT.md

``--collect`` is the publish step: it copies the small files of every finished harness run
(config, results, eval, summary and the traces) from ``runs/`` into ``results/``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from paperlab.shared.cli import run_command
from paperlab.shared.report import update_markdown, write_headline

FILES = ("config.yaml", "results.jsonl", "eval.json", "summary.json")


def collect(src: Path, dst: Path) -> list[str]:
    copied = []
    for run in sorted(p for p in src.iterdir() if (p / "summary.json").is_file()):
        if not json.loads((run / "summary.json").read_text()).get("finished"):
            print(f"skipping {run}: not finished (make eval-agent RESUME=1)")
            continue
        out = dst / run.name
        if (out / "traces").is_dir():
            shutil.rmtree(out / "traces")
        (out / "traces").mkdir(parents=True)
        for name in FILES:
            shutil.copy2(run / name, out / name)
        for trace in sorted((run / "traces").glob("*")):
            shutil.copy2(trace, out / "traces" / trace.name)
        copied.append(run.name)
    return copied


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def summary_table(results: Path) -> str:
    lines = [
        "| backend (preset) | condition | tasks | success (k attempts) | success (1st attempt) | steps / task "
        "| steps / attempt | tool errors | tokens / task (est.) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in sorted(p for p in results.iterdir() if (p / "eval.json").is_file()):
        ev = json.loads((run / "eval.json").read_text())
        for cond, m in ev["conditions"].items():
            lines.append(
                f"| {ev['backend']} ({run.name}) | {cond} | {m['tasks']} | {_pct(m['success_rate'])} "
                f"(k={ev['attempts']}) | {_pct(m['success_rate_first_attempt'])} | {m['mean_steps']:.1f} | "
                f"{m['mean_steps_per_attempt']:.1f} | {m['tool_errors']} | {m['mean_tokens']:.0f} |"
            )
    return "\n".join(lines)


def task_table(results: Path, preset: str) -> str:
    rows = [json.loads(line) for line in (results / preset / "results.jsonl").read_text().splitlines()]
    conds = sorted({r["condition"] for r in rows})
    by = {(r["task"], r["condition"]): r for r in rows}
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    head = "| task | what the scripted model does | " + " | ".join(conds) + " |"
    lines = [head, "|---|---|" + "---|" * len(conds)]
    for t in tasks:
        cells = []
        for c in conds:
            r = by.get((t, c))
            if r is None:
                cells.append("-")
                continue
            marks = " ".join(
                "✓" if a["success"] else f"✗ ({a['stop_reason'].replace('_', ' ')})" for a in r["per_attempt"]
            )
            cells.append(f"{marks}; {r['steps']} steps, {r['tool_errors']} tool err., {r['tokens']} tok.")
        lines.append(f"| `{t}` | {by[t, conds[0]]['scenario']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine_line(results: Path, preset: str) -> str:
    s = json.loads((results / preset / "summary.json").read_text())
    ev = json.loads((results / preset / "eval.json").read_text())
    return (
        f"Machine: {s['cpu']}, load {', '.join(f'{x:.2f}' for x in s['load'])}; whole suite "
        f"{s['wall_time_s']:.1f} s wall-clock; sandbox isolation: {ev['sandbox_isolation']}."
    )


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collect", default=None, help="copy finished runs from this folder first")
    parser.add_argument("--results", default="projects/agent/results")
    parser.add_argument("--index", default=None, help="top-level README whose <!-- headline:agent --> cell to set")
    parser.add_argument("--readme", nargs="+", default=["projects/agent/README.md", "projects/agent/REPORT.md"])
    args = parser.parse_args(argv)
    results = Path(args.results)
    if args.collect:
        print("collected:", ", ".join(collect(Path(args.collect), results)) or "nothing")
    if not (results / "scripted" / "eval.json").is_file():
        raise FileNotFoundError(
            f"no {results}/scripted/eval.json: run make eval-agent, then make report-agent COLLECT=1"
        )
    blocks = {
        "agent-summary": summary_table(results),
        "agent-tasks": task_table(results, "scripted"),
        "agent-machine": machine_line(results, "scripted"),
    }
    for path, names in update_markdown(args.readme, blocks).items():
        print(f"{path}: {', '.join(names) or 'no blocks'}")
    if args.index:
        write_headline(args.index, "agent", headline(results))


def headline(results: Path) -> str:
    ev = json.loads((results / "scripted" / "eval.json").read_text())
    c = ev["conditions"]
    n = c["no_reflection"]["tasks"]
    return (
        f"scripted-model harness, {n} tasks, k={ev['attempts']}: success {_pct(c['no_reflection']['success_rate'])} "
        f"without / {_pct(c['reflection']['success_rate'])} with reflection (gap by construction: tests the loop, "
        "sandbox and harness; no real LLM was run, no model success rate claimed)"
    )


def main(argv=None):
    run_command(_main, argv)


if __name__ == "__main__":
    main()
