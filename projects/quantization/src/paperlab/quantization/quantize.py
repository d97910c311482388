"""The main table: every method on the same model, the same held-out text and the same prompts.

    python -m paperlab.quantization.quantize --config configs/quantization/shakespeare.yaml [methods=[fp32,llm-int8]]

Each method runs in a fresh subprocess (``--worker METHOD``) so that its peak RSS is its own. The fp32
worker runs first and leaves its greedy next-token choices for the others' top-1 agreement. Results:
``<run_dir>/quantize/<method>.json`` and ``<run_dir>/quantize/quantize.json`` (all methods + machine).
Time it on an otherwise idle machine (``make quantize``); the threads it uses are ``bench_threads``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from paperlab.quantization.config import Config
from paperlab.quantization.data import encode, load_text, split_text, windows
from paperlab.quantization.evaluate import decode, generate, perplexity, top1_agreement
from paperlab.quantization.int8 import weight_bytes
from paperlab.quantization.methods import load_method
from paperlab.quantization.model import check_llama_dir, load_tokenizer
from paperlab.shared.checkpoint import atomic_save, atomic_write_text
from paperlab.shared.cli import run_command
from paperlab.shared.config import add_config_args, config_from_args, parse_args
from paperlab.shared.runlog import cpu_model, machine_load


def model_dir(cfg: Config) -> Path:
    return check_llama_dir(cfg.model_path or Path(cfg.run_dir) / "model")


def rss_mb() -> dict:
    """Current (VmRSS) and peak (VmHWM) resident memory of this process, in MiB (Linux)."""
    out = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return {"rss_mb": out.get("VmRSS"), "peak_rss_mb": out.get("VmHWM")}


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return sorted(f for f in line.split(":", 1)[1].split() if f.startswith(("avx", "amx", "fma")))
    except OSError:
        pass
    return []


def profile_ops(model, ids: torch.Tensor, grad: bool, top: int = 6) -> list[dict]:
    """The operators that take the time in one prefill forward: evidence of which kernel a library runs."""
    from torch.profiler import ProfilerActivity, profile

    with torch.set_grad_enabled(grad), profile(activities=[ProfilerActivity.CPU]) as prof:
        model(ids)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    return [{"op": e.key, "self_cpu_ms": round(e.self_cpu_time_total / 1e3, 2), "calls": e.count} for e in events[:top]]


def time_prefill_decode(model, ids: torch.Tensor, decode_tokens: int, repeats: int, grad: bool) -> dict:
    """Median over ``repeats`` (after one warm-up) of prefill tokens/s (one forward of the prompt) and
    decode tokens/s (greedy single-token steps on the KV cache, prefill excluded)."""
    prefill, total = [], []
    for r in range(repeats + 1):
        t0 = time.perf_counter()
        with torch.set_grad_enabled(grad):
            model(ids, use_cache=True)
        t1 = time.perf_counter()
        decode(model, ids, decode_tokens, grad=grad)
        t2 = time.perf_counter()
        if r > 0:
            prefill.append(t1 - t0)
            total.append(t2 - t1)
    p = statistics.median(prefill)
    d = statistics.median(total) - p  # the decode call prefills too: take the median prefill off
    return {
        "prefill_tokens_per_s": ids.shape[1] / p,
        "decode_tokens_per_s": decode_tokens / max(d, 1e-9),
        "prefill_s": prefill,
        "decode_call_s": total,
    }


def worker(cfg: Config, method: str, out_dir: Path) -> dict:
    """Load, quantize, evaluate and time one method in this process; write ``<out_dir>/<method>.json``."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.bench_threads)
    before = rss_mb()
    path = model_dir(cfg)
    tokenizer = load_tokenizer(path)
    t0 = time.perf_counter()
    model = load_method(method, str(path), cfg.threshold)
    load_s = time.perf_counter() - t0
    after_load = rss_mb()
    # bitsandbytes 0.50.2 NF4 fails under no_grad on CPUs with AVX512-BF16 when a layer's in_features is not a
    # multiple of 64 (its packed CPU path); every width of the default model is, so everything runs under no_grad
    grad = False

    _, val_text = split_text(load_text(cfg.data_dir), cfg.val_fraction)
    val = windows(encode(tokenizer, val_text), cfg.ppl_window, cfg.ppl_tokens)
    ppl = perplexity(model, val, return_top1=True, grad=grad)
    ref_path = out_dir / "fp32_top1.pt"
    if method == "fp32":
        atomic_save(ppl["top1"], ref_path)
    agreement = top1_agreement(ppl["top1"], torch.load(ref_path)) if ref_path.is_file() else None

    ids = val[:1, : cfg.prefill_len] if val.shape[1] >= cfg.prefill_len else val[:1]
    timing = time_prefill_decode(model, ids, cfg.decode_tokens, cfg.repeats, grad)
    samples = {
        p: {
            "greedy": generate(model, tokenizer, p, cfg.sample_tokens, sample=False, grad=grad),
            "sampled": generate(model, tokenizer, p, cfg.sample_tokens, sample=True, seed=cfg.seed, grad=grad),
        }
        for p in cfg.prompts
    }
    result = {
        "method": method,
        "model": str(path),
        "weight_bytes": weight_bytes(model),
        "block_bytes": weight_bytes(model.model.layers),  # the decoder blocks: what the methods quantize
        "rss_before_load_mb": before["rss_mb"],
        "rss_after_load_mb": after_load["rss_mb"],
        "peak_rss_mb": rss_mb()["peak_rss_mb"],
        "load_s": load_s,
        "perplexity": ppl["perplexity"],
        "ppl_tokens": ppl["tokens"],
        "top1_agreement": agreement,
        **timing,
        "prefill_len": ids.shape[1],
        "decode_tokens": cfg.decode_tokens,
        "repeats": cfg.repeats,
        "threads": torch.get_num_threads(),
        "profile": profile_ops(model, ids, grad),
        "samples": samples,
        "machine_load": machine_load(),
    }
    atomic_write_text(out_dir / f"{method}.json", json.dumps(result, indent=2) + "\n")
    return result


def orchestrate(cfg: Config, argv: list[str]) -> dict:
    path = model_dir(cfg)
    out_dir = Path(cfg.run_dir) / "quantize"
    out_dir.mkdir(parents=True, exist_ok=True)
    methods = ["fp32"] + [m for m in cfg.methods if m != "fp32"]  # fp32 first: the agreement reference
    results, failed, previous = {}, {}, None
    load_start = machine_load()
    if cfg.keep_previous:
        if not (out_dir / "quantize.json").is_file() or not (out_dir / "fp32_top1.pt").is_file():
            raise FileNotFoundError(f"keep_previous=true needs a finished table in {out_dir}: run without it first")
        previous = json.loads((out_dir / "quantize.json").read_text())
        methods = [m for m in methods if m != "fp32"]
    for method in methods:
        print(f"[{method}] ...", flush=True)
        proc = subprocess.run(
            [sys.executable, "-m", "paperlab.quantization.quantize", "--worker", method, *argv],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            failed[method] = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"[{method}] failed: {failed[method]}", flush=True)
            continue
        results[method] = json.loads((out_dir / f"{method}.json").read_text())
        r = results[method]
        print(
            f"[{method}] ppl {r['perplexity']:.3f}  weights {r['weight_bytes'] / 2**20:.2f} MiB  "
            f"peak RSS {r['peak_rss_mb']:.0f} MiB  prefill {r['prefill_tokens_per_s']:.0f} tok/s  "
            f"decode {r['decode_tokens_per_s']:.1f} tok/s  top-1 {r['top1_agreement']}",
            flush=True,
        )
    added, load_end = {}, machine_load()
    if previous is not None:  # the earlier table, with this run's methods added (or replaced)
        added = {**previous.get("added_later", {}), **{m: {"machine_load": load_start} for m in results}}
        results = {**previous["methods"], **results}
        failed = {**{k: v for k, v in previous["failed"].items() if k not in results}, **failed}
        load_start, load_end = previous["machine_load_start"], previous["machine_load_end"]
    summary = {
        "model": str(path),
        "methods": results,
        "failed": failed,
        "added_later": added,
        "threshold": cfg.threshold,
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "machine_load_start": load_start,
        "machine_load_end": load_end,
        "versions": versions(),
        "python": platform.python_version(),
    }
    atomic_write_text(out_dir / "quantize.json", json.dumps(summary, indent=2) + "\n")
    print(f"wrote {out_dir / 'quantize.json'}")
    return summary


def versions() -> dict:
    import importlib.metadata as md

    return {p: md.version(p) for p in ("torch", "transformers", "bitsandbytes", "torchao")}


def _main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_config_args(parser)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # one method, in this process
    args = parse_args(parser, argv)
    cfg = config_from_args(Config, args)
    if args.worker:
        worker(cfg, args.worker, Path(cfg.run_dir) / "quantize")
        return
    passed = (["--config", args.config] if args.config else []) + list(args.overrides)
    orchestrate(cfg, passed)


def main(argv=None):
    run_command(_main, argv)


if __name__ == "__main__":
    main()
