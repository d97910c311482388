"""The evaluation harness: every task, with and without reflection, up to ``attempts`` attempts each.

    python -m paperlab.agent.evaluate --config configs/agent/scripted.yaml [key=value ...] [--resume]

An agent has no training loop; the run-directory contract applies to the harness instead. The run
directory holds ``config.yaml``, ``checkpoints/last.pt`` (the finished (task, condition) rows, saved
atomically after each one and on Ctrl-C/SIGTERM), ``results.jsonl`` (the same rows),
``memory.sqlite`` (the long-term memory; the lessons of an unfinished (task, condition) are deleted
on resume so that it restarts clean), ``traces/<task>-<condition>-a<k>.{jsonl,md}``, ``eval.json``
(the aggregates) and ``summary.json``. ``--resume`` continues at the first unfinished task.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from paperlab.agent.agent import Agent
from paperlab.agent.build import api_key, make_embedder, make_model, make_tools, settings
from paperlab.agent.config import Config
from paperlab.agent.memory import LongTermMemory
from paperlab.agent.sandbox import isolation
from paperlab.agent.tasks import Task, select
from paperlab.agent.trace import Redactor, Tracer
from paperlab.shared.checkpoint import (
    LAST,
    atomic_save,
    atomic_write_text,
    check_resumable,
    guard_run_dir,
    load_checkpoint,
)
from paperlab.shared.cli import StopSignal, run_command
from paperlab.shared.config import add_config_args, config_from_args, parse_args, save_config, to_dict
from paperlab.shared.runlog import cpu_model, machine_load

RESUME_KEYS = (
    "backend",
    "model",
    "base_url",
    "model_dir",
    "native_tools",
    "temperature",
    "tasks",
    "attempts",
    "conditions",
    "max_steps",
    "max_tokens",
    "repeat_limit",
    "plan",
    "memory_k",
    "short_term_tokens",
    "seed",
)


def run_task(
    task: Task, condition: str, cfg: Config, tools, memory: LongTermMemory, run_dir: Path, model_factory
) -> dict:
    """Up to ``cfg.attempts`` attempts; with reflection, each failure leaves a lesson for the next attempt."""
    key = f"{task.id}/{condition}"
    attempts = []
    for k in range(1, cfg.attempts + 1):
        agent = Agent(model_factory(task), tools, memory, settings(cfg, reflection=condition == "reflection"))
        tracer = Tracer(
            run_dir / "traces" / f"{task.id}-{condition}-a{k}",
            Redactor(extra=(api_key(cfg),)),
            title=f"{task.id}, {condition}, attempt {k}",
        )
        res = agent.run(task.prompt, tracer, scope=key)
        ok, reason = task.check(res.answer)
        tracer.event("check", success=ok, reason=reason)
        attempts.append(
            {
                "attempt": k,
                "success": ok,
                "reason": reason,
                "stop_reason": res.stop_reason,
                "steps": res.steps,
                "tool_calls": res.tool_calls,
                "tool_errors": res.tool_errors,
                "reflections": res.reflections,
                "tokens": res.tokens,
                "recalled": len(res.recalled),
                "wall_s": round(res.wall_s, 3),
            }
        )
        if not ok and condition == "reflection" and k < cfg.attempts:
            agent.reflect_on_episode(task.prompt, res, f"failure: {reason}", tracer, scope=key)
            attempts[-1]["tokens"] = res.tokens
        tracer.close()
        if ok:
            break
    return {
        "task": task.id,
        "condition": condition,
        "scenario": task.scenario,
        "success": attempts[-1]["success"],
        "success_first": attempts[0]["success"],
        "attempts": len(attempts),
        "steps": sum(a["steps"] for a in attempts),
        "tool_errors": sum(a["tool_errors"] for a in attempts),
        "tokens": sum(a["tokens"] for a in attempts),
        "stop_reasons": [a["stop_reason"] for a in attempts],
        "per_attempt": attempts,
    }


def aggregate(rows: list[dict]) -> dict:
    out = {}
    for cond in sorted({r["condition"] for r in rows}):
        rs = [r for r in rows if r["condition"] == cond]
        n = len(rs)
        out[cond] = {
            "tasks": n,
            "success_rate": sum(r["success"] for r in rs) / n,
            "success_rate_first_attempt": sum(r["success_first"] for r in rs) / n,
            "mean_steps": sum(r["steps"] for r in rs) / n,
            "mean_steps_per_attempt": sum(r["steps"] for r in rs) / sum(r["attempts"] for r in rs),
            "tool_errors": sum(r["tool_errors"] for r in rs),
            "mean_tokens": sum(r["tokens"] for r in rs) / n,
        }
    return out


def _write_results(run_dir: Path, rows: list[dict]) -> None:
    atomic_write_text(run_dir / "results.jsonl", "".join(json.dumps(r) + "\n" for r in rows))


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Run the agent task suite and write results.jsonl + eval.json.")
    add_config_args(parser, resume=True)
    args = parse_args(parser, argv)
    cfg = config_from_args(Config, args)
    run_dir = Path(cfg.run_dir)
    tasks = select(cfg.tasks)
    ckpt = guard_run_dir(run_dir, args.resume, "make eval-agent RESUME=1 (or --resume)")
    rows: list[dict] = []
    if ckpt is not None:
        state = load_checkpoint(ckpt, required=("config", "rows"), kind="agent harness")
        check_resumable(state["config"], cfg, RESUME_KEYS)
        rows = state["rows"]
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    done = {(r["task"], r["condition"]) for r in rows}
    tools = make_tools(cfg)
    memory = LongTermMemory(run_dir / "memory.sqlite", make_embedder(cfg))
    if cfg.backend == "scripted":

        def model_factory(task):
            return task.scripted_model()
    else:
        shared_model = make_model(cfg)

        def model_factory(task):
            return shared_model

    todo = [(t, c) for t in tasks for c in cfg.conditions if (t.id, c) not in done]
    start = time.monotonic()
    print(f"{len(done)} done, {len(todo)} to run; sandbox isolation: {isolation()[1]}")
    with StopSignal() as stop:
        for task, condition in todo:
            memory.forget_scope(f"{task.id}/{condition}")  # a half-run (task, condition) restarts clean
            row = run_task(task, condition, cfg, tools, memory, run_dir, model_factory)
            rows.append(row)
            atomic_save({"config": to_dict(cfg), "rows": rows}, run_dir / LAST)
            _write_results(run_dir, rows)
            print(
                f"{task.id:16s} {condition:14s} {'success' if row['success'] else 'failure'} "
                f"after {row['attempts']} attempt(s), {row['steps']} steps, {row['tool_errors']} tool errors"
            )
            if stop.requested:
                break
    finished = len(rows) == len(tasks) * len(cfg.conditions)
    eval_ = {
        "backend": cfg.backend,
        "model": cfg.model or cfg.model_dir or "scripted",
        "attempts": cfg.attempts,
        "conditions": aggregate(rows),
        "sandbox_isolation": isolation()[1],
    }
    atomic_write_text(run_dir / "eval.json", json.dumps(eval_, indent=2) + "\n")
    summary = {
        "steps": len(rows),
        "wall_time_s": round(time.monotonic() - start, 2),
        "finished": finished,
        "seed": cfg.seed,
        "device": "cpu",
        "cpu": cpu_model(),
        "load": machine_load(),
        "tasks": len(tasks),
        "conditions": cfg.conditions,
    }
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    memory.close()
    for cond, m in eval_["conditions"].items():
        print(
            f"{cond}: success {m['success_rate']:.2f} (first attempt {m['success_rate_first_attempt']:.2f}), "
            f"mean steps {m['mean_steps']:.1f}, tool errors {m['tool_errors']}"
        )


def main(argv=None):
    run_command(_main, argv)


if __name__ == "__main__":
    main()
