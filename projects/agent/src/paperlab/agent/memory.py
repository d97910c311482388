"""Memory: short-term (the conversation within a token budget) and long-term (a vector store in SQLite).

Short-term memory is the scratchpad of one episode. When it outgrows ``budget_tokens``, the oldest
whole turns (an assistant message together with its tool results, so tool-call pairing survives)
are replaced by one summary message; the system prompt and the task always stay.

Long-term memory holds lessons (from reflection) and facts across episodes. Each text is embedded
(``HashingEmbedder``: signed feature hashing of word unigrams and bigrams, L2-normalised, so it works
offline; any ``Embedder`` with ``dim`` and ``embed(texts) -> float32 array`` plugs in) and stored as a
float32 blob in SQLite. Search is exact cosine similarity: one matrix-vector product over the stored
matrix (kept in memory and refreshed after writes), not a Python loop over rows.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from paperlab.agent.llm import count_tokens, messages_tokens


class ShortTermMemory:
    def __init__(self, budget_tokens: int = 3000, summarise: Callable[[list[dict]], str] | None = None):
        self.budget_tokens = budget_tokens
        self.summarise = summarise or extractive_summary
        self.messages: list[dict] = []
        self.n_summaries = 0

    def add(self, message: dict) -> None:
        self.messages.append(message)
        self._fit()

    def tokens(self) -> int:
        return messages_tokens(self.messages)

    def _turns(self) -> list[list[int]]:
        """Indices of the compressible turns: everything after system + task, grouped assistant+tool results."""
        turns: list[list[int]] = []
        for i, m in enumerate(self.messages[2:], start=2):
            if m["role"] == "tool" and turns:
                turns[-1].append(i)
            else:
                turns.append([i])
        return turns

    def _fit(self) -> None:
        while self.tokens() > self.budget_tokens:
            turns = self._turns()
            if len(turns) < 3:  # keep the latest exchange verbatim; nothing more to fold
                return
            fold = [i for t in turns[:-2] for i in t]
            summary = self.summarise([self.messages[i] for i in fold])
            new = {"role": "user", "content": f"[summary of earlier steps]\n{summary}"}
            keep = [m for i, m in enumerate(self.messages) if i not in set(fold)]
            self.messages = keep[:2] + [new] + keep[2:]
            self.n_summaries += 1
            if len(fold) == 1:  # a single oversized message: truncating is all that is left
                return


def extractive_summary(messages: list[dict], max_chars: int = 160) -> str:
    """One line per folded message: who, the first ``max_chars`` characters (a model can do better)."""
    lines = []
    for m in messages:
        text = (m.get("content") or "").replace("\n", " ")
        calls = "; ".join(f"{c['function']['name']}({c['function']['arguments']})" for c in m.get("tool_calls", []))
        body = " ".join(x for x in (text, calls) if x)
        lines.append(f"- {m['role']}: {body[:max_chars]}{'...' if len(body) > max_chars else ''}")
    return "\n".join(lines)


class HashingEmbedder:
    """Signed feature hashing (Weinberger et al. 2009) of lower-cased word unigrams and bigrams."""

    def __init__(self, dim: int = 1024):
        self.dim = dim
        self.name = f"hashing-{dim}"

    def _features(self, text: str) -> list[str]:
        words = re.findall(r"[a-z0-9]+", text.lower())
        return words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feat in self._features(text):
                h = int.from_bytes(hashlib.blake2b(feat.encode(), digest_size=8).digest(), "little")
                out[row, h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


class HFEmbedder:
    """Mean-pooled last hidden states of a local Hugging Face encoder (e.g. a sentence-transformers model
    directory), L2-normalised. Loaded from ``model_dir`` only; nothing is downloaded."""

    def __init__(self, model_dir: str, max_length: int = 256):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModel.from_pretrained(model_dir, local_files_only=True).eval()
        self.dim, self.max_length = int(self.model.config.hidden_size), max_length
        self.name = f"hf:{model_dir}"

    def embed(self, texts: list[str]) -> np.ndarray:
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        with self.torch.no_grad():
            hidden = self.model(**batch).last_hidden_state  # B x L x D
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # B x L x 1
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        return self.torch.nn.functional.normalize(pooled, dim=-1).numpy().astype(np.float32)


class LongTermMemory:
    def __init__(self, path: str | Path = ":memory:", embedder=None):
        self.embedder = embedder or HashingEmbedder()
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.con = sqlite3.connect(str(path))
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS memories (id INTEGER PRIMARY KEY, kind TEXT, scope TEXT, "
            "text TEXT, created REAL, embedder TEXT, vector BLOB)"
        )
        self.con.execute("CREATE INDEX IF NOT EXISTS memories_scope ON memories (scope)")
        self.con.commit()
        self._cache: tuple[np.ndarray, np.ndarray] | None = None
        # rows embedded by another embedder are invisible to this one (their vectors are not comparable)
        self.embedder_name = getattr(self.embedder, "name", f"{type(self.embedder).__name__}-{self.embedder.dim}")

    def add(self, text: str, kind: str = "lesson", scope: str = "") -> int:
        vec = self.embedder.embed([text])[0].astype(np.float32)
        cur = self.con.execute(
            "INSERT INTO memories (kind, scope, text, created, embedder, vector) VALUES (?,?,?,?,?,?)",
            (kind, scope, text, time.time(), self.embedder_name, vec.tobytes()),
        )
        self.con.commit()
        self._cache = None
        return int(cur.lastrowid)

    def forget_scope(self, scope: str) -> int:
        n = self.con.execute("DELETE FROM memories WHERE scope = ?", (scope,)).rowcount
        self.con.commit()
        self._cache = None
        return n

    def __len__(self) -> int:
        return self.con.execute("SELECT COUNT(*) FROM memories").fetchone()[0]

    def _matrix(self) -> tuple[np.ndarray, np.ndarray]:
        if self._cache is None:
            rows = self.con.execute(
                "SELECT id, vector FROM memories WHERE embedder = ?", (self.embedder_name,)
            ).fetchall()
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            mat = (
                np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
                if rows
                else np.zeros((0, self.embedder.dim), np.float32)
            )
            self._cache = ids, mat
        return self._cache

    def search(
        self, query: str, k: int = 3, kind: str | None = None, scope: str | None = None, min_score: float = 0.05
    ) -> list[tuple[float, str]]:
        """The ``k`` stored texts most similar to ``query`` (cosine), best first, as (score, text)."""
        ids, mat = self._matrix()
        if not len(ids):
            return []
        scores = mat @ self.embedder.embed([query])[0]
        order = np.argsort(-scores, kind="stable")
        out = []
        for j in order:
            if scores[j] < min_score or len(out) == k:
                break
            kind_, scope_, text = self.con.execute(
                "SELECT kind, scope, text FROM memories WHERE id = ?", (int(ids[j]),)
            ).fetchone()
            if (kind is None or kind_ == kind) and (scope is None or scope_ == scope):
                out.append((float(scores[j]), text))
        return out

    def close(self) -> None:
        self.con.close()


__all__ = ["ShortTermMemory", "LongTermMemory", "HashingEmbedder", "HFEmbedder", "extractive_summary", "count_tokens"]
