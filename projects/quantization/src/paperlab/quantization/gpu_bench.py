"""The same int8 matmuls and attention on a CUDA GPU, where int8 tensor cores and HBM traffic are the point.

    python -m paperlab.quantization.gpu_bench --out runs/quantization/gpu.json     (needs a CUDA device)

1. ``int8_matmul`` pads to ``_int_mm``'s CUDA constraints: checked exact against integer arithmetic on odd shapes.
2. Y = X W^T at Llama-7B-like shapes (K = 4096, N = 4096 and 11008; T = 1..4096 tokens): time of fp16 (cuBLAS),
   of the int8 x int8 -> int32 product alone, of vector-wise int8 (quantize X + int8 matmul + dequantize) and of
   LLM.int8 with 0.1% outlier columns; median of CUDA-event timings.
3. Attention peak memory (``torch.cuda.max_memory_allocated``) and time vs sequence length: naive, tiled
   (``flash.py``), and SDPA (PyTorch's FlashAttention-2 kernel on this GPU), fp16, causal.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from paperlab.quantization.flash import naive_attention, tiled_attention
from paperlab.quantization.int8 import int8_matmul, llm_int8_matmul, quantize_weight, vectorwise_matmul
from paperlab.shared.cli import run_command


def cuda_time(fn, *args, repeats: int = 20) -> float:
    """Median milliseconds of ``fn(*args)`` over ``repeats`` CUDA-event timings, after 3 warm-up calls."""
    for _ in range(3):
        fn(*args)
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn(*args)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def check_int_mm(dev) -> list[dict]:
    rows = []
    for m, k, n in [(1, 5, 3), (17, 33, 7), (5, 4096, 11), (100, 4095, 4097)]:
        a = torch.randint(-127, 128, (m, k), dtype=torch.int8, device=dev)
        b = torch.randint(-127, 128, (n, k), dtype=torch.int8, device=dev)
        exact = (a.double() @ b.double().t()).to(torch.int64)
        rows.append({"shape": [m, k, n], "exact": bool(torch.equal(int8_matmul(a, b.t()).to(torch.int64), exact))})
    return rows


def matmul_rows(dev) -> list[dict]:
    rows = []
    torch.manual_seed(0)
    for n in (4096, 11008):
        k = 4096
        w = torch.randn(n, k, device=dev) * 0.02
        w16 = w.half()
        w_int8, c_w = quantize_weight(w)
        w_t = w_int8.t().contiguous().t()
        for t in (1, 16, 256, 4096):
            x = torch.randn(t, k, device=dev, dtype=torch.float16)
            x_out = x.clone()
            x_out[:, torch.randperm(k, device=dev)[:4]] *= 20  # 4 of 4096 columns (0.1%) above 6
            xi = torch.randint(-127, 128, (max(t, 17), k), dtype=torch.int8, device=dev)
            ref = x.float() @ w.t()
            err_vw = ((vectorwise_matmul(x, w_t, c_w) - ref).abs().mean() / ref.abs().mean()).item()
            rows.append(
                {
                    "tokens": t,
                    "in": k,
                    "out": n,
                    "fp16_ms": cuda_time(torch.matmul, x, w16.t()),
                    "int_mm_only_ms": cuda_time(torch._int_mm, xi, w_t.t()),
                    "vectorwise_ms": cuda_time(vectorwise_matmul, x, w_t, c_w),
                    "llm_int8_ms": cuda_time(llm_int8_matmul, x_out, w_t, c_w, 6.0),
                    "vectorwise_rel_err": err_vw,
                }
            )
            print(rows[-1], flush=True)
    return rows


def attention_rows(dev) -> list[dict]:
    rows = []
    fns = {
        "naive": lambda q, k, v: naive_attention(q, k, v, True),
        "tiled": lambda q, k, v: tiled_attention(q, k, v, True, block_q=256, block_k=256),
        "sdpa": lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True),
    }
    for t in (1024, 4096, 16384, 32768):
        q, k, v = (torch.randn(1, 16, t, 64, device=dev, dtype=torch.float16) for _ in range(3))
        ref = fns["sdpa"](q, k, v)
        for name, fn in fns.items():
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            try:
                out = fn(q, k, v)
                torch.cuda.synchronize()
                peak = torch.cuda.max_memory_allocated() - base
                err = (out.float() - ref.float()).abs().max().item()
                del out
                ms = cuda_time(fn, q, k, v, repeats=3 if name == "tiled" else 10)
                rows.append(
                    {"method": name, "length": t, "peak_extra_mb": peak / 2**20, "time_ms": ms, "max_err_vs_sdpa": err}
                )
            except torch.OutOfMemoryError:
                rows.append({"method": name, "length": t, "error": "out of memory"})
            torch.cuda.empty_cache()
            print(rows[-1], flush=True)
    return rows


def _main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/quantization/gpu.json")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise ValueError("gpu_bench needs a CUDA device (none is visible to torch)")
    dev = torch.device("cuda")
    out = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "int_mm_exact": check_int_mm(dev)}
    print(out, flush=True)
    out["matmul"] = matmul_rows(dev)
    out["attention"] = attention_rows(dev)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")  # plain write: GPU images may lack omegaconf
    print(f"wrote {args.out}")


def main(argv=None):
    run_command(_main, argv)


if __name__ == "__main__":
    main()
