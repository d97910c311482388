"""The whole pipeline for one seed, one stage after the other, each timed: what ``make train-rlhf`` runs.

    python -m paperlab.rlhf.pipeline --config configs/rlhf/shakespeare.yaml [key=value ...] [--resume]
    python -m paperlab.rlhf.pipeline --stages pairs,rm,ppo,eval --config ... sft_dir=runs/.../sft

Every stage runs as its own process (``python -m paperlab.rlhf.<module> <the same config arguments>``), as a
user would type it, so its wall time includes its imports and start-up. ``out_dir/timing.json`` records each
stage's wall time, exit code and the machine load before and after it, with the CPU model and the thread
settings. With ``--resume`` a stage that finished is skipped (its time kept), a stage with a checkpoint is
resumed (its times add up) and the others start fresh: a pipeline killed anywhere continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from paperlab.rlhf.config import Config
from paperlab.rlhf.model import pick_device
from paperlab.shared.checkpoint import LAST, atomic_write_text
from paperlab.shared.cli import StopSignal, run_command
from paperlab.shared.config import add_config_args, config_from_args, parse_args
from paperlab.shared.runlog import cpu_model, machine_load

# stage -> (module argv, the file that exists with "finished" true (or at all) once the stage is done)
STAGES = {
    "sft": (["paperlab.rlhf.sft"], "summary.json"),
    "pairs": (["paperlab.rlhf.preferences"], "summary.json"),
    "rm": (["paperlab.rlhf.reward"], "eval.json"),
    "ppo": (["paperlab.rlhf.ppo"], "summary.json"),
    "rloo": (["paperlab.rlhf.baselines", "rloo"], "summary.json"),
    "grpo": (["paperlab.rlhf.baselines", "grpo"], "summary.json"),
    "eval": (["paperlab.rlhf.evaluate"], "eval.json"),
}
RESUMABLE = ("sft", "rm", "ppo", "rloo", "grpo")  # the stages that keep a checkpoint


def stage_finished(stage_dir: Path, marker: str) -> bool:
    path = stage_dir / marker
    if not path.is_file():
        return False
    return bool(json.loads(path.read_text()).get("finished", True))


def has_checkpoint(stage_dir: Path) -> bool:
    return (stage_dir / LAST).is_file() or any((stage_dir / "trainer").glob("checkpoint-*"))


def run_pipeline(cfg: Config, config_argv: list[str], stages: list[str], resume: bool, stop: StopSignal) -> dict:
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timing_path = out / "timing.json"
    timing = json.loads(timing_path.read_text()) if resume and timing_path.is_file() else {}
    timing.update({
        "cpu": cpu_model(), "cores": os.cpu_count(), "threads": cfg.threads, "device": str(pick_device(cfg.device)),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", ""), "python": sys.version.split()[0],
    })  # fmt: skip
    timing.setdefault("stages", {})
    for stage in stages:
        module, marker = STAGES[stage]
        stage_dir = Path(cfg.stage_dir(stage))
        record = timing["stages"].setdefault(stage, {"wall_s": 0.0, "runs": 0})
        if resume and stage_finished(stage_dir, marker):
            print(f"[pipeline] {stage}: finished before, skipped", flush=True)
            continue
        extra = ["--resume"] if resume and stage in RESUMABLE and has_checkpoint(stage_dir) else []
        cmd = [sys.executable, "-m", *module, *config_argv, *extra]
        print(f"[pipeline] {stage}: {' '.join(cmd[1:])}", flush=True)
        load_before, t0 = machine_load(), time.time()
        rc = subprocess.run(cmd).returncode  # a Ctrl-C/SIGTERM reaches the stage too: it saves and exits 130
        record.update(wall_s=round(record["wall_s"] + time.time() - t0, 1), runs=record["runs"] + 1, rc=rc,
                      load_before=load_before, load_after=machine_load(), resumed=bool(extra),
                      finished=stage_finished(stage_dir, marker))  # fmt: skip
        done = [s for s in stages if timing["stages"].get(s, {}).get("finished")]
        timing["total_s"] = round(sum(timing["stages"][s]["wall_s"] for s in timing["stages"]), 1)
        timing["finished"] = len(done) == len(stages)
        atomic_write_text(timing_path, json.dumps(timing, indent=2) + "\n")
        if rc == 130 or stop.requested:
            stop.requested = True
            break
        if rc != 0:
            raise RuntimeError(f"stage {stage} failed (exit {rc}); fix it, then continue with --resume")
    for stage in stages:  # stages skipped as finished count as done
        if stage_finished(Path(cfg.stage_dir(stage)), STAGES[stage][1]):
            timing["stages"].setdefault(stage, {"wall_s": 0.0, "runs": 0})["finished"] = True
    timing["total_s"] = round(sum(s["wall_s"] for s in timing["stages"].values()), 1)
    timing["finished"] = all(timing["stages"].get(s, {}).get("finished") for s in stages)
    atomic_write_text(timing_path, json.dumps(timing, indent=2) + "\n")
    return timing


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stages", default=",".join(STAGES),
                        help=f"comma-separated, in pipeline order (default: all of {','.join(STAGES)})")  # fmt: skip
    add_config_args(parser, resume=True)
    args = parse_args(parser, argv)
    stages = [s for s in args.stages.split(",") if s]
    unknown = [s for s in stages if s not in STAGES]
    if unknown or not stages:
        raise ValueError(f"unknown stage(s) {unknown}; choose from {list(STAGES)}")
    cfg = config_from_args(Config, args)
    config_argv = ([f"--config={args.config}"] if args.config else []) + list(args.overrides)
    with StopSignal() as stop:
        timing = run_pipeline(cfg, config_argv, stages, args.resume, stop)
    print(json.dumps({k: v for k, v in timing.items() if k != "stages"}, indent=2))
    for stage, rec in timing["stages"].items():
        print(f"  {stage:6s} {rec['wall_s']:8.1f} s")


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
