"""The three texts the tasks read, each with one clear error when it is missing.

- plays: Karpathy's tiny-shakespeare (``data/tinyshakespeare/input.txt``), split into speeches.
- sonnets: the 154 sonnets (``data/shakespeare-sonnets/sonnets.txt``), every 11th held out.
- dialogues: Anthropic HH-RLHF harmless-base test (``data/hh-rlhf-harmless-test``), *offensive by design*.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

WHERE = {
    "plays": "tiny-shakespeare: https://github.com/karpathy/char-rnn/blob/master/data/tinyshakespeare/input.txt",
    "sonnets": "the sonnets: https://github.com/aparrish/rwet-examples/blob/master/sonnets.txt",
    "dialogues": "HH-RLHF harmless-base/test.jsonl.gz: https://github.com/anthropics/hh-rlhf",
}


def _read(path: str | Path, what: str) -> str:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found at {path}; download {WHERE[what]} and point the config there")
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8").replace("\r\n", "\n")


def split_blocks(text: str) -> list[str]:
    """Blank-line separated blocks, each stripped of surrounding blank lines."""
    return [b.strip("\n") for b in re.split(r"\n\s*\n", text) if b.strip()]


def load_plays(path: str | Path) -> list[str]:
    """The speeches of the plays ("NAME:\\nline\\nline"), in file order."""
    return split_blocks(_read(path, "plays"))


def clean_sonnet(block: str) -> str:
    """Lines stripped of the couplet's indentation and trailing spaces."""
    return "\n".join(line.strip() for line in block.splitlines())


def load_sonnets(path: str | Path, n_heldout: int) -> tuple[list[str], list[str]]:
    """(training sonnets, held-out sonnets): ``n_heldout`` spread evenly over the 154 (every 11th for 14)."""
    sonnets = [clean_sonnet(b) for b in split_blocks(_read(path, "sonnets"))]
    if len(sonnets) < 2 * n_heldout:
        raise ValueError(f"{path} holds {len(sonnets)} sonnets, too few to hold out {n_heldout}")
    stride = len(sonnets) // n_heldout
    held = set(range(stride // 2, stride * n_heldout, stride))
    return [s for i, s in enumerate(sonnets) if i not in held], [s for i, s in enumerate(sonnets) if i in held]


def load_dialogues(path: str | Path) -> list[dict]:
    """HH rows ``{"chosen": transcript, "rejected": transcript}`` ("\\n\\nHuman: ...\\n\\nAssistant: ...")."""
    rows = [json.loads(line) for line in _read(path, "dialogues").splitlines() if line.strip()]
    if not rows or not {"chosen", "rejected"} <= set(rows[0]):
        raise ValueError(f"{path}: expected JSON lines with 'chosen' and 'rejected' transcripts")
    return rows


def turns(transcript: str) -> list[tuple[str, str]]:
    """[("Human", text), ("Assistant", text), ...] of one HH transcript."""
    parts = re.split(r"\n\n(Human|Assistant): ", "\n\n" + transcript.strip("\n").lstrip())
    return [(parts[i], parts[i + 1].strip()) for i in range(1, len(parts) - 1, 2)]
