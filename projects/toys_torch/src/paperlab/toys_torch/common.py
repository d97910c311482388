"""What the three task commands share: the command line, the run directory, JSON files, stages.

``python -m paperlab.toys_torch.<task> [--config configs/toys_torch/<task>.yaml] [key=value ...] [--resume]``
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

from paperlab.shared.checkpoint import LAST, atomic_write_text
from paperlab.shared.config import ConfigError, add_config_args, load_config, parse_args, save_config, to_dict


def parse_task_config(task: str, argv, doc: str | None):
    """The config of ``task`` from ``--config`` (default: its preset, if present) and overrides."""
    from paperlab.toys_torch.config import Config

    parser = argparse.ArgumentParser(prog=f"python -m paperlab.toys_torch.{task}", description=doc)
    add_config_args(parser, resume=True)
    args = parse_args(parser, argv)
    preset = args.config
    if preset is None and Path(f"configs/toys_torch/{task}.yaml").is_file():
        preset = f"configs/toys_torch/{task}.yaml"
    cfg = load_config(Config, preset, [f"task={task}", *args.overrides])
    if cfg.task != task:
        raise ConfigError(f"this command runs task {task!r}; the config asks for {cfg.task!r}")
    return cfg, args.resume


def write_json(obj: Any, path: str | Path) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=float) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def start_run(cfg, resume: bool, stages: list[str]) -> Path:
    """Create ``run_dir`` and save the config; a fresh run over a run with checkpoints is refused."""
    run_dir = Path(cfg.run_dir)
    held = [s for s in stages if (run_dir / s / LAST).is_file()]
    if held and not resume:
        raise ConfigError(
            f"{run_dir} already holds a run (checkpoint {run_dir / held[0] / LAST}); "
            "continue it with --resume (make ... RESUME=1) or give a new run_dir=..."
        )
    if resume and not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"nothing to resume: no {run_dir / 'config.yaml'} (run without --resume)")
    if resume:
        saved = load_config(type(cfg), run_dir / "config.yaml")
        if run_key(saved) != run_key(cfg):
            raise ConfigError(
                f"{run_dir}/config.yaml differs from this config; resume with the same settings "
                "or start a new run_dir=..."
            )
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    return run_dir


def run_key(cfg) -> dict[str, Any]:
    """What a resumed run must share with the run it continues: task, seed and the task's own section."""
    return {"task": cfg.task, "seed": cfg.seed, cfg.task: to_dict(cfg)[cfg.task]}


def stage_resume(stage_dir: Path, resume: bool) -> bool:
    """Resume a stage only where it left a checkpoint (a stage that never started starts fresh)."""
    return resume and (stage_dir / LAST).is_file()


def machine() -> dict[str, Any]:
    import torch

    from paperlab.shared.runlog import cpu_model, machine_load

    return {
        "cpu_model": cpu_model(),
        "machine_load": machine_load(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }


def write_summary(run_dir: Path, cfg, t0: float, **extra) -> None:
    write_json(
        {
            "task": cfg.task,
            "seed": cfg.seed,
            "finished": True,
            "wall_time_s": round(time.time() - t0, 1),
            **machine(),
            **extra,
        },
        run_dir / "summary.json",
    )
