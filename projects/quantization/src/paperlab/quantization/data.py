"""Tiny-shakespeare, a byte-level BPE tokenizer trained here, and the token batches.

The text is split by characters (first 90% train, last 10% held out, as in nanoGPT); the tokenizer
is trained on the training part only, so the held-out perplexity never saw its merges.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

EOS = "<|endoftext|>"


def load_text(data_dir: str | Path) -> str:
    path = Path(data_dir) / "input.txt"
    if not path.is_file():
        raise FileNotFoundError(
            f"no {path}: put Karpathy's tiny-shakespeare input.txt there (github.com/karpathy/char-rnn, "
            "data/tinyshakespeare/input.txt) or pass data_dir=<folder with input.txt>"
        )
    return path.read_text(encoding="utf-8")


def split_text(text: str, val_fraction: float) -> tuple[str, str]:
    cut = int(len(text) * (1 - val_fraction))
    return text[:cut], text[cut:]


def train_tokenizer(text: str, vocab_size: int):
    """A byte-level BPE (GPT-2 style) wrapped as a transformers tokenizer; ``EOS`` is bos, eos and pad."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        text.splitlines(keepends=True),
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOS],
        show_progress=False,
    )
    return PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token=EOS, eos_token=EOS, pad_token=EOS)


def encode(tokenizer, text: str) -> torch.Tensor:
    """The whole text as one int64 token stream (no special tokens)."""
    return torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"], dtype=torch.long)


def random_batch(tokens: torch.Tensor, batch_size: int, context: int, rng: np.random.Generator) -> torch.Tensor:
    """``batch_size`` random windows of ``context + 1`` tokens (input and shifted target), drawn with ``rng``."""
    if len(tokens) <= context + 1:
        raise ValueError(f"the token stream ({len(tokens)} tokens) is shorter than context + 1 = {context + 1}")
    starts = rng.integers(0, len(tokens) - context - 1, size=batch_size)
    return torch.stack([tokens[s : s + context + 1] for s in starts])


def windows(tokens: torch.Tensor, length: int, max_tokens: int) -> torch.Tensor:
    """Non-overlapping windows of ``length`` tokens covering the first ``max_tokens`` tokens: (N, length)."""
    n = min(len(tokens), max_tokens) // length
    if n == 0:
        raise ValueError(f"{len(tokens)} held-out tokens do not fill one window of {length}")
    return tokens[: n * length].view(n, length)


def unigram_perplexity(train_tokens: torch.Tensor, val_tokens: torch.Tensor, vocab_size: int) -> float:
    """Perplexity of the best context-free model: add-one smoothed token frequencies of the training split."""
    counts = torch.bincount(train_tokens, minlength=vocab_size).double() + 1.0
    logp = (counts / counts.sum()).log()
    return float(torch.exp(-logp[val_tokens].mean()))
