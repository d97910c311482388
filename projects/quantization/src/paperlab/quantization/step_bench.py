"""Seconds per pre-training step of each model preset, in fp32 and with the bfloat16 autocast forward.

    python -m paperlab.quantization.step_bench --configs configs/quantization/shakespeare.yaml \
        configs/quantization/shakespeare-large.yaml --out runs/quantization/step_time.json

What the size of the larger model was chosen by: one full step (forward, backward, AdamW) on a random
batch of the preset's shape (batch_size x context tokens, its vocabulary), ``repeats`` timed steps after
one warm-up, torch threads = the preset's ``threads``. The tokenizer is not trained (the vocabulary size is
the preset's), so this needs no data.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from paperlab.quantization.config import Config
from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import run_command
from paperlab.shared.config import load_config
from paperlab.shared.runlog import cpu_model, machine_load


def step_seconds(cfg: Config, autocast_bf16: bool, repeats: int) -> tuple[list[float], int]:
    """The timed steps' seconds and the model's parameter count."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(cfg.seed)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=cfg.vocab_size,
            hidden_size=cfg.hidden_size,
            intermediate_size=cfg.intermediate_size,
            num_hidden_layers=cfg.num_layers,
            num_attention_heads=cfg.num_heads,
            num_key_value_heads=cfg.num_kv_heads,
            max_position_embeddings=cfg.context,
            tie_word_embeddings=False,
        )
    ).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    batch = torch.randint(0, cfg.vocab_size, (cfg.batch_size, cfg.context + 1))
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast_bf16):
            logits = model(batch[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), batch[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    # the first step warms up (allocations, oneDNN kernel selection)
    return times[1:], sum(p.numel() for p in model.parameters())


def _main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", required=True, help="preset YAML files")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="runs/quantization/step_time.json")
    args = parser.parse_args(argv)
    rows, load_start = [], machine_load()
    for path in args.configs:
        cfg = load_config(Config, path)
        torch.set_num_threads(cfg.threads)
        for autocast in (False, True):
            t, n = step_seconds(cfg, autocast, args.repeats)
            row = {"preset": Path(path).stem, "autocast_bf16": autocast, "step_s": t, "median_s": statistics.median(t)}
            row.update(
                n_params=n,
                tokens_per_step=cfg.batch_size * cfg.context,
                shape=[cfg.num_layers, cfg.hidden_size, cfg.intermediate_size],
            )
            rows.append(row)
            print(f"{row['preset']:20s} bf16 autocast {autocast!s:5s}: {row['median_s']:.2f} s/step ({t})", flush=True)
    out = {
        "rows": rows,
        "threads": torch.get_num_threads(),
        "cpu_model": cpu_model(),
        "machine_load_start": load_start,
        "machine_load_end": machine_load(),
        "torch": torch.__version__,
    }
    atomic_write_text(Path(args.out), json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


def main(argv=None):
    run_command(_main, argv)


if __name__ == "__main__":
    main()
