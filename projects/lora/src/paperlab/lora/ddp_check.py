"""The multi-process path, proved on CPU: a LoRA run under ``torchrun --nproc_per_node 2`` (gloo) against the
same run in one process with the same global batch.

    make check-ddp-lora          # -> projects/lora/results/ddp_check.json

It trains a tiny offline base (sklearn digits) for a few steps, then the same LoRA run twice: one process,
and two processes under torchrun (each process writes its own adapter). The two processes' adapters must be
bit-identical (DistributedDataParallel averages the gradients, every rank applies the same update), and they
must match the one-process adapter up to float rounding (the gradient of a 2 x 8 batch is summed in another
order than that of one 16-image batch). Note: ``accelerate launch --cpu --num_processes 2`` starts ONE process
on this Accelerate version; torchrun really starts two.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import run_command
from paperlab.shared.runlog import cpu_model, machine_load

TRAIN = [sys.executable, "-m", "paperlab.lora.train"]


def _run(cmd: list[str], env: dict) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{' '.join(cmd[:4])} ... exited {proc.returncode}: {' | '.join(tail)}")


def ddp_check(work: Path, steps: int = 12, batch: int = 16, port: int = 29517) -> dict:
    from safetensors.torch import load_file

    if work.exists():
        shutil.rmtree(work)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    common = [
        "--config",
        "configs/lora/digits-lora.yaml",
        f"base_model={work / 'base'}",
        f"total_steps={steps}",
        f"batch_size={batch}",
        "save_rank_adapters=true",
        "checkpoint_every=1000",
        "num_samples=4",
        "sample_steps=2",
    ]
    _run(
        [
            *TRAIN,
            "--config",
            "configs/lora/digits-base.yaml",
            f"run_dir={work / 'base'}",
            "total_steps=10",
            "num_samples=4",
            "sample_steps=2",
        ],
        env,
    )
    _run([*TRAIN, *common, f"run_dir={work / 'one'}"], env)
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(port),
        "--module",
        "paperlab.lora.train",
    ]
    _run([*torchrun, *common, f"run_dir={work / 'two'}"], env)
    one = load_file(str(work / "one" / "adapter-rank0.safetensors"))
    r0 = load_file(str(work / "two" / "adapter-rank0.safetensors"))
    r1 = load_file(str(work / "two" / "adapter-rank1.safetensors"))
    if not (work / "two" / "adapter-rank1.safetensors").is_file() or set(r0) != set(one):
        raise RuntimeError("the 2-process run did not write one adapter per process")
    two_summary = json.loads((work / "two" / "summary.json").read_text())
    return {
        "processes": two_summary["processes"],
        "steps": steps,
        "global_batch": batch,
        "tensors": len(one),
        "ranks_bit_identical": all(bool((r0[k] == r1[k]).all()) for k in r0),
        "max_abs_diff_2proc_vs_1proc": max(float((r0[k] - one[k]).abs().max()) for k in r0),
        "max_abs_adapter_value": max(float(one[k].abs().max()) for k in one if "lora_B" in k),
        "cpu": cpu_model(),
        "load": machine_load(),
    }


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default="runs/lora/ddp-check")
    parser.add_argument("--out", default=None, help="also write the result JSON here")
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args(argv)
    result = ddp_check(Path(args.work), args.steps)
    print(json.dumps(result, indent=2))
    if args.out:
        atomic_write_text(Path(args.out), json.dumps(result, indent=2) + "\n")
    if not result["ranks_bit_identical"] or result["processes"] != 2 or result["max_abs_diff_2proc_vs_1proc"] > 1e-4:
        raise RuntimeError("the 2-process adapters do not match (see the JSON above)")


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
