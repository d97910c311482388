"""One task with a real model backend: ``make agent TASK="..."``.

    python -m paperlab.agent.run --config configs/agent/openai.yaml task="..." [key=value ...]

Long-term memory persists across runs in ``runs/agent/memory.sqlite``; the trace of this run goes to
``<run_dir>/trace.{jsonl,md}`` (run_dir defaults to ``runs/agent/runs/<timestamp>``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from paperlab.agent.agent import Agent
from paperlab.agent.build import api_key, make_embedder, make_model, make_tools, settings
from paperlab.agent.config import Config
from paperlab.agent.memory import LongTermMemory
from paperlab.agent.trace import Redactor, Tracer
from paperlab.shared.cli import run_command
from paperlab.shared.config import add_config_args, config_from_args, parse_args, save_config

SELF_CHECK = (
    "none (no checker for this task): judge yourself whether the answer is complete and supported by the "
    "observations, and what to do better on a similar task"
)


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Run the agent on one task with a real model backend.")
    add_config_args(parser)
    cfg = config_from_args(Config, parse_args(parser, argv))
    if not cfg.task.strip():
        raise ValueError('no task: pass task="..." (make agent TASK="...")')
    model = make_model(cfg)
    default_dir = Config().run_dir
    run_dir = Path(cfg.run_dir if cfg.run_dir != default_dir else f"runs/agent/runs/{time.strftime('%Y%m%d-%H%M%S')}")
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    memory = LongTermMemory(Path("runs/agent/memory.sqlite"), make_embedder(cfg))
    tracer = Tracer(run_dir / "trace", Redactor(extra=(api_key(cfg),)), title=cfg.task[:80])
    agent = Agent(model, make_tools(cfg), memory, settings(cfg))
    result = agent.run(cfg.task, tracer)
    if cfg.reflection:  # no checker here: the model judges its own finished attempt (Self-Refine-style feedback)
        agent.reflect_on_episode(cfg.task, result, SELF_CHECK, tracer, trigger="finished task")
    tracer.close()
    print(result.answer if result.answer is not None else f"(no answer: stopped on {result.stop_reason})")
    print(
        f"{result.steps} steps, {result.tool_calls} tool calls ({result.tool_errors} errors), ~{result.tokens} tokens; "
        f"trace: {run_dir}/trace.md"
    )


def main(argv=None):
    run_command(_main, argv)


if __name__ == "__main__":
    main()
