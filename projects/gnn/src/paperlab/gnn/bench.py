"""Training throughput (graphs/s) of every model on this CPU, with where the time goes.

    python -m paperlab.gnn.bench dataset=zinc out=runs/gnn/bench.json     # make bench-gnn

Each model at its ZINC preset's size trains ``steps`` batches of 128 ZINC training graphs (after ``warmup``
batches) on ``threads`` threads; the time is split into batching (PyG ``Batch.from_data_list``), forward,
backward and the optimiser step. The JSON records the CPU, the load average and the versions.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from paperlab.gnn.config import MODELS, Config
from paperlab.gnn.data import load_data
from paperlab.gnn.evaluate import batches, prepare
from paperlab.gnn.model import build_model, n_params
from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import run_command
from paperlab.shared.config import add_config_args, config_from_args, load_config, parse_args
from paperlab.shared.runlog import cpu_model, machine_load


@dataclass
class BenchArgs:
    dataset: str = "zinc"
    data_dir: str = "data/zinc"
    presets: str = "configs/gnn"
    steps: int = 30
    warmup: int = 3
    threads: int = 1
    out: str = "runs/gnn/bench.json"


def bench_model(cfg: Config, graphs: list, steps: int, warmup: int) -> dict:
    torch.manual_seed(0)
    model = build_model(cfg).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    parts = {"batching": 0.0, "forward": 0.0, "backward": 0.0, "optimizer": 0.0}
    n_graphs = 0
    perm = torch.randperm(len(graphs), generator=torch.Generator().manual_seed(0))
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        b = next(batches(graphs, cfg.batch_size, perm[(i * cfg.batch_size) % len(graphs) :]))
        t1 = time.perf_counter()
        loss = (model(b) - b.y).abs().mean()
        t2 = time.perf_counter()
        opt.zero_grad()
        loss.backward()
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        if i >= warmup:
            for k, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                parts[k] += dt
            n_graphs += b.num_graphs
    total = sum(parts.values())
    return {
        "model": cfg.model,
        "n_params": n_params(model),
        "batch_size": cfg.batch_size,
        "graphs_per_s": n_graphs / total,
        "ms_per_batch": 1000 * total / steps,
        "share": {k: round(v / total, 3) for k, v in parts.items()},
    }


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser)
    args = config_from_args(BenchArgs, parse_args(parser, argv))
    torch.set_num_threads(args.threads)
    load_before = machine_load()
    rows, graphs = [], None
    for model in MODELS:
        preset = Path(args.presets) / f"{args.dataset}-{model}.yaml"
        cfg = load_config(
            Config,
            preset if preset.is_file() else None,
            [f"model={model}", f"dataset={args.dataset}", f"data_dir={args.data_dir}"],
        )
        if graphs is None:
            graphs = load_data(cfg).train
        # the GT and GPS read their own encodings (LapPE or RWSE, of their own size): a fresh copy for each
        model_graphs = prepare([d.clone() for d in graphs], cfg) if cfg.model in ("gt", "gps") else graphs
        rows.append(bench_model(cfg, model_graphs, args.steps, args.warmup))
        print(
            f"{model:9s} {rows[-1]['n_params']:7d} params {rows[-1]['graphs_per_s']:8.0f} graphs/s {rows[-1]['share']}",
            flush=True,
        )
    import torch_geometric

    out = {
        "cpu": cpu_model(),
        "threads": args.threads,
        "load_before": load_before,
        "load_after": machine_load(),
        "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__,
        "dataset": args.dataset,
        "steps": args.steps,
        "models": rows,
    }
    atomic_write_text(Path(args.out), json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
