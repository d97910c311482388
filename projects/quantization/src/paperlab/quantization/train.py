"""Pre-train a small LlamaForCausalLM on tiny-shakespeare with a BPE tokenizer trained here; resumable.

    python -m paperlab.quantization.train --config configs/quantization/shakespeare.yaml [key=value ...]
    python -m paperlab.quantization.train --config configs/quantization/shakespeare.yaml --resume

The run directory gets ``config.yaml``, ``metrics.jsonl`` (+ TensorBoard), ``tokenizer/``,
``checkpoints/last.pt`` (every ``checkpoint_every`` steps and on Ctrl-C/SIGTERM), and at the end
``model/`` (``save_pretrained``: the input of ``make quantize``) and ``summary.json`` with the held-out
perplexity next to the unigram baseline.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from paperlab.quantization.checkpoint import lr_at, resume_training, save_training, set_lr
from paperlab.quantization.config import Config
from paperlab.quantization.data import (
    encode,
    load_text,
    random_batch,
    split_text,
    train_tokenizer,
    unigram_perplexity,
    windows,
)
from paperlab.quantization.evaluate import perplexity
from paperlab.quantization.model import build_llama, n_params
from paperlab.shared.checkpoint import LAST, atomic_write_text, guard_run_dir
from paperlab.shared.cli import StopSignal, check_finite, run_command
from paperlab.shared.config import add_config_args, config_from_args, parse_args
from paperlab.shared.runlog import RunLogger, machine_load
from paperlab.shared.seeding import seed_everything

RESUME_HINT = "--resume (make train-quantization-base RESUME=1)"


def train(cfg: Config, resume: bool = False) -> dict:
    from transformers import AutoTokenizer

    run_dir = Path(cfg.run_dir)
    ckpt = guard_run_dir(run_dir, resume, RESUME_HINT)
    torch.set_num_threads(cfg.threads)
    rng = seed_everything(cfg.seed)
    train_text, val_text = split_text(load_text(cfg.data_dir), cfg.val_fraction)
    if ckpt is None:
        tokenizer = train_tokenizer(train_text, cfg.vocab_size)
        tokenizer.save_pretrained(run_dir / "tokenizer")
    else:
        tokenizer = AutoTokenizer.from_pretrained(run_dir / "tokenizer", local_files_only=True)
    train_tokens, val_tokens = encode(tokenizer, train_text), encode(tokenizer, val_text)
    val_windows = windows(val_tokens, cfg.context, cfg.eval_tokens)

    model = build_llama(cfg, tokenizer)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.95),
    )
    step, before_s = resume_training(ckpt, cfg, model, optimizer, rng) if ckpt is not None else (0, 0.0)
    unigram = unigram_perplexity(train_tokens, val_tokens, len(tokenizer))
    print(
        f"llama {n_params(model) / 1e6:.2f}M params, vocab {len(tokenizer)}, train {len(train_tokens)} tokens, "
        f"held out {len(val_tokens)}; unigram perplexity {unigram:.1f}; starting at step {step}"
    )

    start = time.time()
    with RunLogger(run_dir, cfg, resume_step=step if ckpt else None) as log, StopSignal() as stop:
        bar = log.progress(cfg.total_steps, initial=step, desc="train")
        model.train()
        while step < cfg.total_steps and not stop.requested:
            lr = lr_at(step, cfg)
            set_lr(optimizer, lr)
            batch = random_batch(train_tokens, cfg.batch_size, cfg.context, rng)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.autocast_bf16):
                logits = model(batch[:, :-1]).logits
            loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), batch[:, 1:].flatten())
            check_finite(step, loss=loss.item())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            step += 1
            bar.update(1)
            row = {}
            if step % cfg.log_every == 0:
                row = {"loss": loss.item(), "lr": lr, "grad_norm": float(grad_norm), "load1": machine_load()[0]}
            if step % cfg.eval_every == 0 or step == cfg.total_steps:
                model.eval()
                row["val_loss"] = math.log(perplexity(model, val_windows)["perplexity"])
                model.train()
            if row:
                log.log(step, **row)
                bar.set_postfix(loss=f"{loss.item():.3f}")
            if step % cfg.checkpoint_every == 0 or step == cfg.total_steps or stop.requested:
                save_training(run_dir / LAST, cfg, step, model, optimizer, rng, before_s + time.time() - start)
        bar.close()
    if step < cfg.total_steps:
        return {"steps": step, "finished": False}

    model.eval()
    model.save_pretrained(run_dir / "model")
    tokenizer.save_pretrained(run_dir / "model")
    val = perplexity(model, windows(val_tokens, cfg.context, len(val_tokens)))
    summary = {
        "steps": step,
        "finished": True,
        "seed": cfg.seed,
        "device": "cpu",
        "wall_time_s": round(time.time() - start, 1),  # of the last session (a resumed run: since the resume)
        "train_time_s": round(before_s + time.time() - start, 1),  # every session together
        "machine_load_end": machine_load(),
        "autocast_bf16": cfg.autocast_bf16,
        "threads": cfg.threads,
        "n_params": n_params(model),
        "n_params_non_embedding": n_params(model) - 2 * len(tokenizer) * cfg.hidden_size,
        "vocab_size": len(tokenizer),
        "train_tokens": len(train_tokens),
        "val_tokens": len(val_tokens),
        "tokens_seen": step * cfg.batch_size * cfg.context,
        "val_perplexity": val["perplexity"],
        "val_loss": math.log(val["perplexity"]),
        "unigram_perplexity": unigram,
    }
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    print(f"done: held-out perplexity {val['perplexity']:.2f} (unigram {unigram:.1f}); model in {run_dir / 'model'}")
    return summary


def _main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_config_args(parser, resume=True)
    args = parse_args(parser, argv)
    train(config_from_args(Config, args), resume=args.resume)


def main(argv=None):
    run_command(_main, argv)


if __name__ == "__main__":
    main()
