"""Tiny generated stand-ins for the three texts (the tests never read data/)."""

import gzip
import json
import os
import random
import warnings

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
warnings.filterwarnings("ignore", category=FutureWarning)

WORDS = (
    "love beauty time thee thou fair heart eyes sweet death day night rose youth glass summer winter "
    "praise truth mind world doth hath shall might sun moon king lord sword crown blood war fear grace"
).split()


def write_plays(path, n=120, seed=0):
    rng = random.Random(seed)
    speeches = []
    for _ in range(n):
        name = rng.choice(["ROMEO", "JULIET", "KING", "FIRST CITIZEN"])
        lines = [" ".join(rng.choices(WORDS, k=rng.randint(4, 9))).capitalize() + "." for _ in range(rng.randint(1, 4))]
        speeches.append(f"{name}:\n" + "\n".join(lines))
    path.write_text("\n\n".join(speeches) + "\n")
    return path


def write_sonnets(path, n=30, seed=1):
    rng = random.Random(seed)
    sonnets = [
        "\r\n".join(("  " if i >= 12 else "") + " ".join(rng.choices(WORDS, k=8)) + "," for i in range(14))
        for _ in range(n)
    ]
    path.write_bytes(("\r\n" + "\r\n\r\n".join(sonnets) + "\r\n").encode())
    return path


def write_dialogues(path, n=40, seed=2):
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        q = " ".join(rng.choices(WORDS, k=6)) + "?"
        base = f"\n\nHuman: {q}\n\nAssistant: " + " ".join(rng.choices(WORDS, k=8))
        rows.append({"chosen": base + " kind.", "rejected": base + " damn fool."})
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    return path


@pytest.fixture
def data_files(tmp_path):
    """{"plays", "sonnets", "dialogues"}: paths of tiny generated files."""
    return {
        "plays": write_plays(tmp_path / "plays.txt"),
        "sonnets": write_sonnets(tmp_path / "sonnets.txt"),
        "dialogues": write_dialogues(tmp_path / "hh.jsonl.gz"),
    }
