"""Run a whole grid of training runs (models x seeds x settings) as parallel processes on one machine,
and bundle their small results into one JSONL file.

    python -m paperlab.gcnn.grid eurosat   --data-dir D --work /tmp/gcnn --out runs/gcnn/grid-eurosat.jsonl
    python -m paperlab.gcnn.grid mnist_rot --data-dir D --work /tmp/gcnn --out runs/gcnn/grid-mnist_rot.jsonl
    python -m paperlab.gcnn.grid eurosat_cpu --data-dir runs/gcnn/data --workers 1 --only 'c4-seed1'  # CPU scale
    ... --tiny     # the same grid at toy size (a CPU check of the whole pipeline in a minute or two)

This is how the GPU results were produced (see the README: one H200, ``--workers`` processes sharing
it). Jobs start in priority order (the main model x seed table first, then matched width, data
efficiency, upright training, the peer); none starts after ``--start-deadline-s``, and any still
running at ``--deadline-s`` is stopped with SIGTERM (it saves its checkpoint and is marked unfinished).
Each finished job appends one line to ``--out`` at once: {job, overrides, rc, summary, eval, epochs}.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from paperlab.shared.cli import run_command

MODELS = ("c16", "so2", "c8", "c4", "cnn")  # the expensive ones first: no straggler at the end
SEEDS = (1, 2, 3)
CPU_MODELS = ("so2", "c16", "c8", "d4", "c4", "cnn")
EUROSAT_CPU_MODELS = ("so2", "d4", "c8", "c4", "cnn")
FRAC = ("cnn", "c4", "d4")  # the data-efficiency models of eurosat_cpu
GRIDS = ("eurosat", "eurosat_cpu", "mnist_rot", "mnist_rot_cpu", "mnist_rot_cpu_full")


def plan(name: str, tiny: bool, epochs: int | None = None) -> list[tuple[str, list[str]]]:
    """[(job name, key=value overrides)] in priority order; ``epochs`` overrides the preset's for every job
    (the data-efficiency runs get up to 5x more epochs on their smaller sets)."""
    jobs: list[tuple[str, list[str]]] = []
    if name == "eurosat":
        for seed in SEEDS:
            jobs += [(f"{m}-seed{seed}", [f"model={m}", f"seed={seed}"]) for m in MODELS]
        jobs += [(f"c4-width-seed{s}", ["model=c4", "match=width", f"seed={s}"]) for s in SEEDS]
        for seed in SEEDS:
            for frac in (0.05, 0.2):
                more = (epochs or 10) * min(5, round(1 / frac))  # small sets: more epochs, still fewer steps
                jobs += [
                    (
                        f"{m}-frac{frac}-seed{seed}",
                        [f"model={m}", f"seed={seed}", f"train_fraction={frac}", f"epochs={more}"],
                    )
                    for m in ("so2", "c8", "c4", "cnn")
                ]
        jobs += [(f"e2c8-seed{s}", ["model=e2c8", f"seed={s}"]) for s in SEEDS]
    elif name == "mnist_rot":
        for seed in SEEDS:
            jobs += [(f"{m}-seed{seed}", [f"model={m}", f"seed={seed}"]) for m in (*MODELS, "e2c8")]
        for seed in SEEDS:
            jobs += [(f"{m}-upright-seed{seed}", [f"model={m}", f"seed={seed}", "train_upright=true"]) for m in MODELS]
    elif name == "mnist_rot_cpu":  # the CPU-scale comparison: every model once, most informative first
        small = ["seed=1", "base_width=8", "train_fraction=0.5", "max_test=5000"]
        jobs = [(f"{m}-seed1", [f"model={m}", *small]) for m in ("cnn", "c4", "so2", "c8", "c16", "e2c8")]
    elif name == "mnist_rot_cpu_full":  # CPU scale, complete: all 12,000 digits, all 50,000 test digits, 3 seeds
        small = ["base_width=8", "test_angles=[0.0]"]
        for seed in SEEDS:
            jobs += [(f"{m}-seed{seed}", [f"model={m}", f"seed={seed}", *small]) for m in CPU_MODELS]
        jobs += [(f"e2c8-seed{s}", ["model=e2c8", f"seed={s}", *small]) for s in SEEDS]
        for seed in SEEDS:  # upright-train / rotated-test, then data efficiency (the same epochs on less data)
            for m in ("cnn", "c4", "so2"):
                jobs.append((f"{m}-upright-seed{seed}", [f"model={m}", f"seed={seed}", "train_upright=true", *small]))
            for frac in (0.125, 0.25, 0.5):
                jobs += [
                    (f"{m}-frac{frac}-seed{seed}", [f"model={m}", f"seed={seed}", f"train_fraction={frac}", *small])
                    for m in ("cnn", "c4", "so2")
                ]
        for frac in (0.125, 0.25):  # the same number of steps as on the full set: epochs x 1/frac
            more = [f"train_fraction={frac}", f"epochs={round((epochs or 3) / frac)}"]
            jobs += [(f"{m}-eqsteps{frac}-seed1", [f"model={m}", "seed=1", *more, *small]) for m in ("cnn", "c4")]
        jobs += [(f"c4-width-seed{s}", ["model=c4", "match=width", f"seed={s}", *small]) for s in SEEDS]
    elif name == "eurosat_cpu":  # CPU scale (configs/gcnn/eurosat_cpu.yaml: 32x32, base width 8), 3 seeds
        for seed in SEEDS:
            jobs += [(f"{m}-seed{seed}", [f"model={m}", f"seed={seed}"]) for m in EUROSAT_CPU_MODELS]
        for frac in (0.125, 0.25, 0.5):  # data efficiency: the same epochs on a stratified fraction, seed 1
            jobs += [(f"{m}-frac{frac}-seed1", [f"model={m}", "seed=1", f"train_fraction={frac}"]) for m in FRAC]
        jobs += [(f"c4-width-seed{s}", ["model=c4", "match=width", f"seed={s}"]) for s in SEEDS]
        jobs += [(f"{m}-e10-seed1", [f"model={m}", "seed=1", "epochs=10"]) for m in ("cnn", "c4")]  # longer
        jobs += [(f"c16-seed{s}", ["model=c16", f"seed={s}"]) for s in SEEDS]
        # added later (sixth session): the 10-epoch CNN/C4 pair to 3 seeds, and the D4 and steerable nets at 10
        jobs += [(f"{m}-e10-seed{s}", [f"model={m}", f"seed={s}", "epochs=10"]) for s in (2, 3) for m in ("cnn", "c4")]
        jobs += [(f"{m}-e10-seed1", [f"model={m}", "seed=1", "epochs=10"]) for m in ("d4", "so2")]
    else:
        raise ValueError(f"unknown grid {name!r}; valid: {', '.join(GRIDS)}")
    if epochs:
        jobs = [(j, [f"epochs={epochs}", *o]) for j, o in jobs]  # a job's own epochs= (later) wins
    if tiny:
        tiny_args = ["epochs=1", "train_fraction=0.01", "max_test=50", "batch_size=16", "base_width=2"]
        jobs = [(j, o + tiny_args) for j, o in jobs[:5] + jobs[-1:]]
    return jobs


def _read(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def collect(run_dir: Path, job: str, overrides: list[str], rc: int) -> dict:
    epochs = []
    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file():
        for line in metrics.read_text().splitlines():
            row = json.loads(line)
            if "epoch" in row or "test_acc" in row:
                epochs.append(row)
    return {
        "job": job,
        "overrides": overrides,
        "rc": rc,
        "summary": _read(run_dir / "summary.json"),
        "eval": _read(run_dir / "eval.json"),
        "epochs": epochs,
    }


def run_grid(
    name: str,
    data_dir: str,
    work: Path,
    out: Path,
    workers: int,
    start_deadline: float,
    deadline: float,
    tiny: bool,
    preset: str | None = None,
    extra: list[str] | None = None,
    epochs: int | None = None,
    only: str | None = None,
) -> list[dict]:
    if preset is None:  # a grid's own preset (eurosat_cpu.yaml), else its dataset's (mnist_rot.yaml)
        own = Path(f"configs/gcnn/{name}.yaml")
        preset = str(own) if own.is_file() else f"configs/gcnn/{re.sub(r'_cpu.*$', '', name)}.yaml"
    jobs = plan(name, tiny, epochs)
    if only:  # a chunk of the plan (a queue job of its own): the jobs whose name matches the regex
        jobs = [(j, o) for j, o in jobs if re.fullmatch(only, j)]
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    pending, running, done = list(jobs), {}, []
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    while pending or running:
        now = time.time() - t0
        while pending and len(running) < workers and now < start_deadline:
            job, overrides = pending.pop(0)
            run_dir = work / name / job
            cmd = [
                sys.executable,
                "-m",
                "paperlab.gcnn.train",
                "--config",
                preset,
                f"data_dir={data_dir}",
                f"run_dir={run_dir}",
                "tensorboard=false",
                *overrides,
                *(extra or []),
            ]
            log = open(work / f"{name}-{job}.log", "w")
            running[job] = (
                subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env),
                overrides,
                run_dir,
                log,
                time.time(),
            )
            print(f"[{now:6.0f}s] start {job}", flush=True)
        for job in list(running):
            proc, overrides, run_dir, log, started = running[job]
            if now > deadline and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # saves a checkpoint, writes summary.json (finished: false)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            rc = proc.poll()
            if rc is None:
                continue
            log.close()
            row = collect(run_dir, job, overrides, rc)
            row["job_wall_s"] = round(time.time() - started, 1)
            with open(out, "a") as f:
                f.write(json.dumps(row) + "\n")
            done.append(row)
            del running[job]
            acc = (row["eval"] or {}).get("accuracy", {}).get("0.0")
            print(f"[{now:6.0f}s] done  {job} rc={rc} acc={acc} ({row['job_wall_s']}s)", flush=True)
            if rc != 0:
                print((work / f"{name}-{job}.log").read_text()[-2000:], flush=True)
        if not pending or now >= start_deadline:
            pending = [] if now >= start_deadline else pending
        time.sleep(0.5)
    skipped = [j for j, _ in jobs if j not in {r["job"] for r in done}]
    print(f"grid {name}: {len(done)} jobs in {time.time() - t0:.0f}s; not started: {skipped}", flush=True)
    return done


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("grid", choices=GRIDS)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--work", default="runs/gcnn/grid")
    parser.add_argument("--out", required=True)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--start-deadline-s", type=float, default=1e9)
    parser.add_argument("--deadline-s", type=float, default=1e9)
    parser.add_argument("--preset", default=None)
    parser.add_argument("--epochs", type=int, default=None, help="epochs of every job (default: the preset's)")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--only", default=None, help="run only the jobs whose name matches this regex")
    parser.add_argument("extra", nargs="*", help="key=value overrides for every job")
    args = parser.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    run_grid(
        args.grid,
        args.data_dir,
        work,
        Path(args.out),
        args.workers,
        args.start_deadline_s,
        args.deadline_s,
        args.tiny,
        args.preset,
        args.extra,
        args.epochs,
        args.only,
    )


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
