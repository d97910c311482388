"""Search behind one interface: a local BM25 index over the bundled corpus, or a SearxNG-style web endpoint.

``SearchBackend.search(query, k) -> list[Hit]``. The local index (``bm25s``) works offline and is what
the task suite uses; ``WebSearch`` calls a JSON search endpoint the user runs (``search_url``), e.g. a
SearxNG instance: ``GET {url}/search?q=...&format=json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CORPUS_DIR = Path(__file__).with_name("data") / "corpus"


@dataclass(frozen=True)
class Hit:
    title: str
    text: str
    source: str
    score: float


class SearchBackend:
    def search(self, query: str, k: int = 3) -> list[Hit]:
        raise NotImplementedError


def load_passages(corpus_dir: Path = CORPUS_DIR) -> list[tuple[str, str, str]]:
    """(title, passage, source) for every blank-line-separated paragraph of every ``*.md`` file."""
    files = sorted(Path(corpus_dir).glob("*.md"))
    if not files:
        raise FileNotFoundError(f"no *.md documents in {corpus_dir} (the corpus ships with the package)")
    passages = []
    for path in files:
        lines = path.read_text().strip().splitlines()
        title = lines[0].lstrip("# ").strip()
        for para in "\n".join(lines[1:]).split("\n\n"):
            if para.strip():
                passages.append((title, " ".join(para.split()), path.name))
    return passages


class LocalBM25(SearchBackend):
    """BM25 (Robertson & Zaragoza 2009; k1=1.5, b=0.75 as in bm25s) over paragraphs of the corpus."""

    def __init__(self, corpus_dir: Path = CORPUS_DIR):
        import bm25s

        self._bm25s = bm25s
        self.passages = load_passages(corpus_dir)
        self.index = bm25s.BM25()
        texts = [f"{title}. {text}" for title, text, _ in self.passages]
        self.index.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)

    def search(self, query: str, k: int = 3) -> list[Hit]:
        tokens = self._bm25s.tokenize([query], stopwords="en", show_progress=False)
        if not tokens.vocab:  # only stopwords or punctuation
            return []
        k = min(k, len(self.passages))
        ids, scores = self.index.retrieve(tokens, k=k, show_progress=False)
        return [
            Hit(*self.passages[i][:2], self.passages[i][2], float(s))
            for i, s in zip(ids[0], scores[0], strict=True)
            if s > 0
        ]


class WebSearch(SearchBackend):
    """A JSON web-search endpoint (SearxNG's ``format=json`` API); enable with ``search_backend=web``."""

    def __init__(self, url: str, timeout_s: float = 15.0):
        if not url:
            raise ValueError("search_backend=web needs search_url=http://HOST:PORT (a SearxNG instance)")
        self.url, self.timeout_s = url.rstrip("/"), timeout_s

    def search(self, query: str, k: int = 3) -> list[Hit]:
        import httpx

        r = httpx.get(f"{self.url}/search", params={"q": query, "format": "json"}, timeout=self.timeout_s)
        r.raise_for_status()
        return [
            Hit(x.get("title", ""), x.get("content", ""), x.get("url", ""), float(x.get("score", 0.0)))
            for x in r.json().get("results", [])[:k]
        ]
