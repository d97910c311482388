"""Training throughput of every model, alone on the device (no other job running):

    python -m paperlab.gcnn.bench --out runs/gcnn/bench.json [--size 64 --batch 64 --steps 20 --base-width 16]

Times ``steps`` AdamW steps (forward, backward, update; the filter-bank expansion included) after
``warmup`` steps, on random data, at the matched parameter counts of the EuroSAT preset; writes
images/s, ms/step, the share of a step spent expanding filters (bank construction alone, timed
separately), the machine, its load and the versions.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch
import torch.nn.functional as F

from paperlab.gcnn.model import build as build_net
from paperlab.gcnn.model import matched_width, n_params
from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import run_command
from paperlab.shared.runlog import cpu_model, machine_load


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_model(
    name: str,
    device,
    size: int,
    channels: int,
    batch: int,
    steps: int,
    warmup: int,
    amp: bool,
    base_width: int = 16,
    mults=(1, 1, 2, 2, 4, 4),
    kernel: int = 5,
    pools=(1, 3, 5),
) -> dict:
    width = matched_width(name, channels, 10, base_width, list(mults), kernel, list(pools))
    net = build_net(name, channels, 10, width, list(mults), kernel, list(pools)).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    x = torch.randn(batch, channels, size, size, device=device)
    y = torch.randint(0, 10, (batch,), device=device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    _sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    per_step = (time.perf_counter() - t) / steps
    banks = [m for m in net.modules() if hasattr(m, "filter_bank") or hasattr(m, "kernel")]
    _sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        for m in banks:
            (m.filter_bank() if hasattr(m, "filter_bank") else m.kernel())
    _sync(device)
    bank_s = (time.perf_counter() - t) / steps
    return {
        "model": name,
        "width": width,
        "n_params": n_params(net),
        "ms_per_step": round(1000 * per_step, 3),
        "images_per_s": round(batch / per_step, 1),
        "filter_expansion_ms_forward": round(1000 * bank_s, 3),
    }


def run_bench(
    models,
    device_name: str,
    size: int,
    channels: int,
    batch: int,
    steps: int,
    warmup: int,
    pools=(1, 3, 5),
    base_width: int = 16,
) -> dict:
    device = torch.device(device_name if device_name != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    amp = device.type == "cuda"
    rows = [
        bench_model(m, device, size, channels, batch, steps, warmup, amp, base_width, pools=tuple(pools))
        for m in models
    ]
    return {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "cpu": cpu_model(),
        "load": machine_load(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "amp_bf16": amp,
        "input": [batch, channels, size, size],
        "base_width": base_width,
        "pool_after": list(pools),
        "steps": steps,
        "warmup": warmup,
        "rows": rows,
    }


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/gcnn/bench.json")
    parser.add_argument("--models", default="cnn,c4,c8,c16,so2")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--base-width", type=int, default=16, help="the plain CNN's; the others matched in params")
    parser.add_argument("--pool-after", default="1,3,5", help="layers followed by 2x2 pooling (MNIST: 1,3)")
    args = parser.parse_args(argv)
    result = run_bench(
        args.models.split(","),
        args.device,
        args.size,
        args.channels,
        args.batch,
        args.steps,
        args.warmup,
        [int(p) for p in args.pool_after.split(",")],
        args.base_width,
    )
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    for r in result["rows"]:
        print(
            f"{r['model']:>5}  {r['n_params']:>8} params  {r['ms_per_step']:>9.2f} ms/step  "
            f"{r['images_per_s']:>9.1f} img/s"
        )
    print(f"wrote {args.out}")


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
