"""Fixtures: a generated play-like corpus and a tiny saved base model (no data/, no downloads)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORDS = ("good love sweet fair happy joy bad hate death war sad the a and of my lord thou thee king queen "
         "speak hear come go night day heart blood").split()  # fmt: skip


def make_corpus(n_speeches: int = 300, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    names = ["ROMEO", "JULIET", "KING", "NURSE"]
    out = []
    for _ in range(n_speeches):
        words = rng.choice(WORDS, size=int(rng.integers(6, 20)))
        out.append(f"{rng.choice(names)}:\n" + " ".join(words) + ".")
    return "\n\n".join(out) + "\n"


TINY = dict(vocab_size=300, n_layer=2, n_head=2, n_embd=32, block_size=32, sft_steps=30, sft_batch_size=16,
            sft_lr=3e-3, prompt_min_tokens=3, prompt_tokens=6, response_tokens=8, ppo_batch_size=16,
            ppo_minibatch_size=8, ppo_epochs=2, snapshot_every=5, checkpoint_every=2, eval_prompts=8,
            bon_prompts=8, sample_prompts=4, bon_max_n=4)  # fmt: skip


@pytest.fixture(scope="session")
def corpus() -> str:
    return make_corpus()


@pytest.fixture(scope="session")
def base_run(tmp_path_factory, corpus):
    """out_dir holding a tiny pre-trained base model (sft/model)."""
    from paperlab.rlhf.config import Config
    from paperlab.rlhf.sft import train_sft

    out = tmp_path_factory.mktemp("rlhf") / "run"
    cfg = Config(**TINY, out_dir=str(out))
    train_sft(cfg, text=corpus)
    return out
