"""Stage 1, the base model: a byte-level BPE and a GPT-2-architecture causal LM trained on tiny-shakespeare.

    python -m paperlab.rlhf.sft --config configs/rlhf/shakespeare.yaml [seed=2] [--resume]
    python -m paperlab.rlhf.sft --config configs/rlhf/gpt2.yaml model=gpt2      # a real checkpoint: no training

Causal language modelling: minimise -sum_t log p(x_t | x_<t) over windows of ``block_size`` tokens of the
training speeches, each speech ended by EOS. Writes ``out_dir/sft/model`` (save_pretrained, tokenizer
included), ``metrics.jsonl``, ``summary.json`` (validation perplexity) and ``samples.txt``.
With ``model=<id or dir>`` the stage only loads that model and saves it into ``sft/model``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from paperlab.rlhf.checkpoint import resume_training, save_training
from paperlab.rlhf.config import Config
from paperlab.rlhf.data import read_shakespeare, speeches, split_text
from paperlab.rlhf.model import (
    PAD,
    build_gpt2,
    check_vocab,
    load_causal_lm,
    load_tokenizer,
    n_params,
    pick_device,
    train_tokenizer,
)
from paperlab.shared.checkpoint import LAST, atomic_write_text, guard_run_dir
from paperlab.shared.cli import StopSignal, check_finite, run_command
from paperlab.shared.config import add_config_args, config_from_args, parse_args
from paperlab.shared.runlog import RunLogger
from paperlab.shared.seeding import seed_everything


def token_stream(tokenizer, docs: list[str]) -> np.ndarray:
    """All documents tokenized, each followed by EOS, concatenated."""
    ids = tokenizer(docs, add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    return np.fromiter((t for d in ids for t in (*d, eos)), dtype=np.int64)


def get_batch(stream: np.ndarray, batch_size: int, block: int, gen: torch.Generator):
    starts = torch.randint(0, len(stream) - block - 1, (batch_size,), generator=gen).numpy()
    x = torch.from_numpy(np.stack([stream[s : s + block + 1] for s in starts]))
    return x[:, :-1], x[:, 1:]


@torch.no_grad()
def perplexity(model, stream: np.ndarray, block: int, max_windows: int = 200) -> float:
    """exp(mean token NLL) over consecutive non-overlapping windows of the held-out stream."""
    model.eval()
    dev = next(model.parameters()).device
    n = min(max_windows, (len(stream) - 1) // block)
    x = torch.from_numpy(stream[: n * block + 1])
    nll = 0.0
    for i in range(0, n, 32):
        rows = range(i, min(n, i + 32))
        inp = torch.stack([x[r * block : (r + 1) * block] for r in rows])
        tgt = torch.stack([x[r * block + 1 : (r + 1) * block + 1] for r in rows])
        logits = model(input_ids=inp.to(dev)).logits
        nll += torch.nn.functional.cross_entropy(logits.flatten(0, 1), tgt.to(dev).flatten(), reduction="sum").item()
    return math.exp(nll / (n * block))


def train_sft(cfg: Config, resume: bool = False, stop_after_steps: int | None = None, text: str | None = None) -> dict:
    torch.set_num_threads(cfg.threads)
    run_dir = Path(cfg.stage_dir("sft"))
    resume_from = guard_run_dir(run_dir, resume, "--resume (make train-rlhf ... RESUME=1)")
    seed_everything(cfg.seed)
    out = run_dir / "model"
    if cfg.model:  # a real checkpoint by name or directory: the base model is that model
        tok = load_tokenizer(cfg.model)
        model = load_causal_lm(cfg.model)
        if len(tok) == model.get_input_embeddings().num_embeddings + 1 and tok.pad_token == PAD:
            model.resize_token_embeddings(len(tok))  # the pad token load_tokenizer added (GPT-2 has none)
        check_vocab(tok, model, cfg.model)
        model.config.pad_token_id = tok.pad_token_id  # the reward model's head reads the last non-pad token
        model.save_pretrained(out)
        tok.save_pretrained(out)
        summary = {"steps": 0, "finished": True, "seed": cfg.seed, "device": cfg.device, "model": cfg.model,
                   "n_params": n_params(model), "wall_time_s": 0.0}  # fmt: skip
        atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        return summary

    text = read_shakespeare(cfg.data_dir) if text is None else text
    train_text, val_text = split_text(text)
    train_docs, val_docs = speeches(train_text), speeches(val_text)
    tok = train_tokenizer(train_docs, cfg.vocab_size)
    train_stream, val_stream = token_stream(tok, train_docs), token_stream(tok, val_docs)
    dev = pick_device(cfg.device)
    model = build_gpt2(tok, cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size, cfg.seed).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.sft_lr, weight_decay=0.1, betas=(0.9, 0.95))
    warmup = max(1, cfg.sft_steps // 20)
    lr_at = lambda s: cfg.sft_lr * min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * s / cfg.sft_steps))
    gen = torch.Generator().manual_seed(cfg.seed)
    step, elapsed = 0, 0.0
    if resume_from is not None:
        loop = resume_training(resume_from, "sft", cfg, {"model": model}, opt, gen)
        step, elapsed = loop["step"], loop["elapsed"]
        print(f"resuming {run_dir} from step {step}", flush=True)
    t0 = time.time()
    save = lambda: save_training(run_dir / LAST, "sft", cfg, {"model": model}, opt,
                                 {"step": step, "elapsed": elapsed + time.time() - t0}, gen)  # fmt: skip
    logger = RunLogger(run_dir, cfg, resume_step=step if resume_from is not None else None)
    bar = logger.progress(cfg.sft_steps, initial=step, desc="base model")
    end = cfg.sft_steps if stop_after_steps is None else min(cfg.sft_steps, step + stop_after_steps)
    every = max(1, cfg.sft_steps // 4)
    with StopSignal() as stop:
        while step < end and not stop.requested:
            model.train()
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            x, y = (t.to(dev) for t in get_batch(train_stream, cfg.sft_batch_size, cfg.block_size, gen))
            loss = torch.nn.functional.cross_entropy(model(input_ids=x).logits.flatten(0, 1), y.flatten())
            check_finite(step + 1, loss=loss.item())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            row = {"loss": loss.item(), "lr": lr_at(step - 1)}
            if step % every == 0 or step == cfg.sft_steps:
                row["val_ppl"] = perplexity(model, val_stream, cfg.block_size)
            logger.log(step, **row)
            bar.update(1)
            if step % 100 == 0 or step == end:
                save()
        bar.close()
    if step < end:  # stopped by a signal
        save()
    summary = {"steps": step, "wall_time_s": round(elapsed + time.time() - t0, 1), "finished": step >= cfg.sft_steps,
               "seed": cfg.seed, "device": str(dev), "model": "gpt2-tiny (GPT2Config)", "n_params": n_params(model),
               "vocab_size": len(tok), "train_tokens": int(len(train_stream)), "val_tokens": int(len(val_stream)),
               "tokens_seen": step * cfg.sft_batch_size * cfg.block_size}  # fmt: skip
    if step >= cfg.sft_steps:
        summary["val_ppl"] = perplexity(model, val_stream, cfg.block_size, max_windows=10**9)
        summary["tokens_per_s"] = round(summary["tokens_seen"] / max(summary["wall_time_s"], 1e-9), 1)
        model.save_pretrained(out)
        tok.save_pretrained(out)
    logger.close()
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser, resume=True)
    args = parse_args(parser, argv)
    cfg = config_from_args(Config, args)
    print(json.dumps(train_sft(cfg, resume=args.resume), indent=2))


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
