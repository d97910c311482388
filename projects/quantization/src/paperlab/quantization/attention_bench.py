"""Attention memory and error vs sequence length: naive (T x T scores), tiled online softmax, and SDPA.

    python -m paperlab.quantization.attention_bench --out runs/quantization/attention.json

Each (method, length) runs in a fresh subprocess so that its peak RSS is its own; the table reports the
peak RSS increase over the process after its inputs were allocated (VmHWM - VmRSS before the call), the
analytic size of the score matrix, the time of one call, and the max error against SDPA in float64.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from paperlab.quantization.flash import naive_attention, tiled_attention
from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import run_command
from paperlab.shared.runlog import cpu_model, machine_load

LENGTHS = (512, 1024, 2048, 4096, 8192)
HEADS, DIM = 4, 64


def _status() -> dict:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line.split(":")[0]] = int(line.split()[1]) * 1024
    return out


def measure(method: str, length: int, causal: bool) -> dict:
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, HEADS, length, DIM) for _ in range(3))
    fn = {
        "naive": naive_attention,
        "tiled": tiled_attention,
        "sdpa": lambda q, k, v, c: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=c),
    }[method]
    before = _status()["VmRSS"]
    t0 = time.perf_counter()
    out = fn(q, k, v, causal)
    dt = time.perf_counter() - t0
    peak = _status()["VmHWM"]
    del out
    return {
        "method": method,
        "length": length,
        "causal": causal,
        "peak_extra_mb": (peak - before) / 2**20,
        "time_s": dt,
        "score_matrix_mb": HEADS * length * length * 4 / 2**20,
    }


def errors(lengths=(1, 7, 100, 257, 1000)) -> list[dict]:
    rows = []
    for t in lengths:
        q, k, v = (torch.randn(1, HEADS, t, DIM, dtype=torch.float64) for _ in range(3))
        for causal in (False, True):
            ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)
            rows.append(
                {
                    "length": t,
                    "causal": causal,
                    "tiled_max_err": float((tiled_attention(q, k, v, causal) - ref).abs().max()),
                    "naive_max_err": float((naive_attention(q, k, v, causal) - ref).abs().max()),
                }
            )
    return rows


def _main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/quantization/attention.json")
    parser.add_argument("--lengths", default=",".join(map(str, LENGTHS)))
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # method:length:causal, in this process
    args = parser.parse_args(argv)
    if args.one:
        method, length, causal = args.one.split(":")
        print(json.dumps(measure(method, int(length), causal == "1")))
        return
    lengths = [int(x) for x in args.lengths.split(",") if x]
    if not lengths or min(lengths) <= 0:
        raise ValueError(f"--lengths must be positive integers, got {args.lengths!r}")
    rows = []
    for length in lengths:
        for method in ("naive", "tiled", "sdpa"):
            proc = subprocess.run(
                [sys.executable, "-m", "paperlab.quantization.attention_bench", "--one", f"{method}:{length}:1"],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                rows.append(
                    {
                        "method": method,
                        "length": length,
                        "causal": True,
                        "error": (proc.stderr.strip().splitlines() or ["failed"])[-1],
                    }
                )
                continue
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(f"{method:6s} T={length:5d} peak +{r['peak_extra_mb']:8.1f} MiB  {r['time_s']:.3f} s", flush=True)
    out = {
        "heads": HEADS,
        "head_dim": DIM,
        "dtype": "float32",
        "block": 64,
        "rows": rows,
        "errors": errors(),
        "cpu_model": cpu_model(),
        "machine_load": machine_load(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    atomic_write_text(Path(args.out), json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


def main(argv=None):
    run_command(_main, argv)


if __name__ == "__main__":
    main()
