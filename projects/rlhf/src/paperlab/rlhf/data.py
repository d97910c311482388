"""Text data: tiny-shakespeare speeches (pre-training text and prompts), preference files, Anthropic HH-RLHF.

tiny-shakespeare is one file of plays in which speeches ("NAME:\\n...lines...") are separated by blank
lines. A speech is one document: the base model learns to end it with EOS, and a prompt is the start of
a speech. The first 90% of the characters train, the last 10% are held out (nanoGPT's split); RL prompts
come from the training part, every evaluation prompt from the held-out part.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

SHAKESPEARE_HINT = ("tiny-shakespeare's input.txt (karpathy/char-rnn data/tinyshakespeare/input.txt); "
                    "point data_dir=... at the folder that holds it")  # fmt: skip
HH_FILE = "harmless-base_test.jsonl.gz"
HH_HINT = (f"Anthropic HH-RLHF's {HH_FILE} (github.com/anthropics/hh-rlhf, harmless-base/test.jsonl.gz); "
           "point hh_data_dir=... at the folder that holds it")  # fmt: skip


def read_shakespeare(data_dir: str | Path) -> str:
    path = Path(data_dir) / "input.txt"
    if not path.is_file():
        raise FileNotFoundError(f"no {path}: this needs {SHAKESPEARE_HINT}")
    return path.read_text()


def split_text(text: str, val_frac: float = 0.1) -> tuple[str, str]:
    n = int(len(text) * (1 - val_frac))
    return text[:n], text[n:]


def speeches(text: str) -> list[str]:
    """The speeches of a play text: blocks separated by blank lines, stripped, empty ones dropped."""
    return [s.strip() for s in text.split("\n\n") if s.strip()]


def make_prompts(docs_ids: list[list[int]], n: int, min_tokens: int, max_tokens: int, rng: np.random.Generator):
    """``n`` prompts: the first k tokens of random documents, k uniform in [min_tokens, max_tokens]
    (capped at the document's length minus one so that a prompt never holds the whole speech)."""
    usable = [d for d in docs_ids if len(d) > min_tokens]
    if not usable:
        raise ValueError(f"no document is longer than prompt_min_tokens={min_tokens} tokens")
    picks = rng.choice(len(usable), size=n, replace=len(usable) < n)
    out = []
    for i in picks:
        doc = usable[int(i)]
        k = int(rng.integers(min_tokens, max_tokens + 1))
        out.append(doc[: min(k, len(doc) - 1)])
    return out


# ------------------------------------------------------------------ preference files (JSONL)
PAIR_FIELDS = ("prompt", "chosen", "rejected")


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    from paperlab.shared.checkpoint import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def read_preferences(path: str | Path, fields: tuple[str, ...] = PAIR_FIELDS) -> list[dict]:
    """Rows of a preference JSONL file; a row that is not JSON or lacks a field is refused with its line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no preference file {path} (make the pairs first: make pairs-rlhf)")
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    with opener(path, "rt") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path} line {lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path} line {lineno}: a row must be a JSON object")
            missing = [k for k in fields if not isinstance(row.get(k), str)]
            if missing:
                raise ValueError(f"{path} line {lineno}: missing or non-text field(s) {', '.join(missing)}")
            rows.append(row)
    if not rows:
        raise ValueError(f"{path} holds no preference pairs")
    return rows


def split_rows(rows: list, test_frac: float, seed: int) -> tuple[list, list]:
    """A seeded shuffle, then the last ``test_frac`` of the rows as the held-out split."""
    order = np.random.default_rng(seed).permutation(len(rows))
    n_test = max(1, int(round(len(rows) * test_frac)))
    return [rows[i] for i in order[:-n_test]], [rows[i] for i in order[-n_test:]]


def read_hh(data_dir: str | Path) -> list[dict]:
    """The 2,312 ``{"chosen", "rejected"}`` transcripts of HH-RLHF harmless-base (test split)."""
    path = Path(data_dir) / HH_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {path}: this needs {HH_HINT}")
    return read_preferences(path, fields=("chosen", "rejected"))
