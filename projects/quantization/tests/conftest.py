"""Fixtures: a small synthetic corpus (tests never read data/), and a tiny Llama trained on it once."""

from __future__ import annotations

import os
import random

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORDS = [
    "king",
    "queen",
    "lord",
    "love",
    "death",
    "night",
    "sword",
    "crown",
    "heart",
    "blood",
    "sweet",
    "fair",
    "noble",
    "good",
    "speak",
    "come",
    "go",
    "thou",
    "thee",
    "my",
    "the",
    "of",
    "and",
    "to",
    "is",
    "be",
]
NAMES = ["ROMEO", "JULIET", "KING HENRY", "First Citizen", "MENENIUS"]


def make_corpus(n_lines: int = 1500, seed: int = 0) -> str:
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines // 4):
        lines.append(rng.choice(NAMES) + ":")
        for _ in range(3):
            lines.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 9))).capitalize() + ".")
        lines.append("")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    (d / "input.txt").write_text(make_corpus())
    return d


TINY = dict(
    vocab_size=300,
    hidden_size=32,
    intermediate_size=64,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    context=32,
    batch_size=8,
    total_steps=60,
    lr=3e-3,
    warmup_steps=5,
    eval_every=30,
    eval_tokens=512,
    checkpoint_every=20,
    log_every=5,
)


def tiny_args(corpus_dir, run_dir, **kw) -> list[str]:
    return [f"{k}={v}" for k, v in {**TINY, "data_dir": str(corpus_dir), "run_dir": str(run_dir), **kw}.items()]


@pytest.fixture(scope="session")
def trained_run(corpus_dir, tmp_path_factory):
    """A tiny Llama trained for 60 steps: its run directory (model/, summary.json)."""
    from paperlab.quantization.config import Config
    from paperlab.quantization.train import train

    run_dir = tmp_path_factory.mktemp("run") / "tiny"
    train(Config(**{**TINY, "data_dir": str(corpus_dir), "run_dir": str(run_dir)}))
    return run_dir
