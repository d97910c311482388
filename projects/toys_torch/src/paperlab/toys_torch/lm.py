"""The small causal LMs every task trains here: a byte-level BPE tokenizer, a Llama or GPT-2 built from
a config, a pre-training loop on a token stream with checkpoints and bit-exact resume, perplexity.

    tok = train_tokenizer(texts, vocab_size=2048)
    model = build_llama(shape, tok)          # GQA, RoPE, SwiGLU, RMSNorm (Llama-3's choices)
    train_lm(model, train_ids, val_ids, shape, stage_dir, seed, resume)
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from paperlab.shared.checkpoint import LAST, atomic_save, guard_run_dir, load_checkpoint
from paperlab.shared.cli import StopSignal, check_finite
from paperlab.shared.runlog import RunLogger

SPECIAL = {"pad_token": "<pad>", "bos_token": "<bos>", "eos_token": "<eos>"}


def train_tokenizer(texts, vocab_size: int):
    """A byte-level BPE (GPT-2's pre-tokenizer) trained on ``texts``, as a transformers fast tokenizer."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        list(texts), vocab_size=vocab_size, min_frequency=2, special_tokens=list(SPECIAL.values()), show_progress=False
    )
    return PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, **SPECIAL)


def encode_docs(tok, docs) -> np.ndarray:
    """One token stream: each document's tokens followed by EOS (the model learns where a text ends)."""
    ids = tok(list(docs), add_special_tokens=False)["input_ids"]
    return np.fromiter((t for doc in ids for t in (*doc, tok.eos_token_id)), dtype=np.int64)


def build_llama(shape, tok):
    """A ``LlamaForCausalLM`` with Llama-3's architecture choices at the size of ``shape``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=shape.d_model,
        intermediate_size=shape.ffn,
        num_hidden_layers=shape.n_layers,
        num_attention_heads=shape.n_heads,
        num_key_value_heads=shape.n_kv_heads,
        max_position_embeddings=shape.context,
        rope_theta=10000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        hidden_act="silu",
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    return LlamaForCausalLM(config)


def build_gpt2(shape, tok):
    """A ``GPT2LMHeadModel`` (learned positions, LayerNorm, GELU MLP, tied embeddings) of ``shape``."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=len(tok),
        n_positions=shape.context,
        n_embd=shape.d_model,
        n_layer=shape.n_layers,
        n_head=shape.n_heads,
        n_inner=shape.ffn,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    return GPT2LMHeadModel(config)


def lr_at(step: int, total: int, peak: float) -> float:
    """Linear warm-up over 5% of the steps, then cosine decay to 10% of the peak."""
    warm = max(1, total // 20)
    if step < warm:
        return peak * (step + 1) / warm
    frac = (step - warm) / max(1, total - warm)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def sample_windows(ids: np.ndarray, batch: int, length: int, gen: torch.Generator) -> torch.Tensor:
    """``batch`` random windows of ``length`` tokens from the stream (positions drawn from ``gen``)."""
    if len(ids) <= length:
        raise ValueError(f"a token stream of {len(ids)} tokens is too short for windows of {length}")
    starts = torch.randint(0, len(ids) - length, (batch,), generator=gen)
    return torch.from_numpy(np.stack([ids[s : s + length] for s in starts.tolist()]))


@torch.no_grad()
def perplexity(model, ids: np.ndarray, length: int, batch: int = 16) -> float:
    """exp(mean next-token NLL) over consecutive non-overlapping windows of ``length`` tokens."""
    model.eval()
    n = (len(ids) - 1) // (length - 1)
    if n < 1:
        raise ValueError(f"{len(ids)} tokens are too few for a window of {length}")
    windows = torch.from_numpy(np.stack([ids[i * (length - 1) : i * (length - 1) + length] for i in range(n)]))
    total, count = 0.0, 0
    device = next(model.parameters()).device
    for chunk in windows.split(batch):
        chunk = chunk.to(device)
        logits = model(input_ids=chunk).logits[:, :-1].float()
        nll = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), chunk[:, 1:].reshape(-1), reduction="sum"
        )
        total, count = total + float(nll), count + chunk[:, 1:].numel()
    return math.exp(total / count)


def train_lm(
    model,
    train_ids: np.ndarray,
    val_ids: np.ndarray,
    shape,
    stage_dir: str | Path,
    seed: int,
    resume: bool,
    *,
    steps: int | None = None,
    lr: float | None = None,
    batch: int | None = None,
    params=None,
    saved_config: dict | None = None,
) -> dict:
    """Next-token training on random windows of ``train_ids``; ``checkpoints/last.pt`` every
    ``shape.checkpoint_every`` steps and on Ctrl-C. Resuming restores model, AdamW, the window sampler
    and torch's RNG (LoRA dropout), so a resumed run ends where an uninterrupted one would.

    ``params``: the parameters to train (default: all; LoRA passes only its adapters). Returns a
    summary dict (``finished`` False when stopped by a signal). Writes ``metrics.jsonl`` in ``stage_dir``.
    """
    stage_dir = Path(stage_dir)
    steps = steps or shape.train_steps
    lr, batch = lr or shape.lr, batch or shape.batch_size
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": shape.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
        betas=(0.9, 0.95),
    )
    gen = torch.Generator().manual_seed(seed)  # on the CPU: the same windows on every device
    device = next(model.parameters()).device
    start, elapsed = 0, 0.0
    ckpt = guard_run_dir(stage_dir, resume)
    if ckpt is not None:
        state = load_checkpoint(ckpt, required=("model", "optim", "step", "gen", "torch_rng"), kind="toys_torch LM")
        if saved_config is not None and state.get("config") != saved_config:
            raise ValueError(f"{ckpt} was written with another config; resume with the same config or a new run_dir")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optim"])
        gen.set_state(state["gen"])
        torch.set_rng_state(state["torch_rng"])
        start, elapsed = state["step"], state.get("wall_time_s", 0.0)

    def save(step: int, wall: float) -> None:
        atomic_save(
            {
                "model": model.state_dict(),
                "optim": opt.state_dict(),
                "step": step,
                "gen": gen.get_state(),
                "torch_rng": torch.get_rng_state(),
                "config": saved_config,
                "wall_time_s": wall,
            },
            stage_dir / LAST,
        )

    log = RunLogger(stage_dir, resume_step=start if ckpt else None, tensorboard=False)
    t0 = time.time() - elapsed
    step, loss_sum, n_loss = start, 0.0, 0
    progress = log.progress(steps, initial=start, desc=stage_dir.name)
    with StopSignal() as stop:
        while step < steps and not stop.requested:
            model.train()
            x = sample_windows(train_ids, batch, shape.context, gen).to(device)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, steps, lr)
            loss = model(input_ids=x, labels=x).loss
            check_finite(step, loss=loss.item())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            step += 1
            loss_sum, n_loss = loss_sum + loss.item(), n_loss + 1
            progress.update(1)
            if step % shape.log_every == 0 or step == steps:
                row = {"train_loss": loss_sum / n_loss, "lr": lr_at(step - 1, steps, lr)}
                if step == steps or step % (shape.log_every * 5) == 0:
                    row["val_ppl"] = perplexity(model, val_ids, shape.context)
                log.log(step, **row)
                loss_sum, n_loss = 0.0, 0
            if step % shape.checkpoint_every == 0 or step == steps:
                save(step, time.time() - t0)
        if step < steps:
            save(step, time.time() - t0)
    progress.close()
    log.close()
    return {"steps": step, "finished": step >= steps, "wall_time_s": round(time.time() - t0, 1)}


def load_saved(path: str | Path, what: str):
    """A model + tokenizer saved with ``save_pretrained`` (a directory, or an HF id when cached)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(path))
        model = AutoModelForCausalLM.from_pretrained(str(path))
    except OSError as e:
        raise FileNotFoundError(
            f"cannot load {what} from {path!r} (offline here: give a local directory saved with "
            f"save_pretrained, or download it first with `huggingface-cli download {path}`)"
        ) from e
    return model.eval(), tok


def set_threads(n: int) -> None:
    if n > 0:
        torch.set_num_threads(n)
