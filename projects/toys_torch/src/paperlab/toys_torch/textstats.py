"""How sonnet-like and how new a text is: metre, rhyme, copying, and a sonnet-vs-play classifier.

- syllables per line from the CMU pronouncing dictionary (``pronouncing``); a line counts only when
  every word is in the dictionary (``coverage`` says how many lines that is);
- end rhyme: lines i and j rhyme when the rhyming parts (last stressed vowel onward) of their last
  words agree; the rate is over the pairs of Shakespeare's scheme ABAB CDCD EFEF GG;
- novelty: the longest run of words shared with the training sonnets, and the share of word
  4-grams that occur in them (copying shows as long runs and a high share);
- a TF-IDF + logistic-regression classifier, sonnet quatrains against 4-line play excerpts.
"""

from __future__ import annotations

import re

import numpy as np

SCHEME_PAIRS = ((0, 2), (1, 3), (4, 6), (5, 7), (8, 10), (9, 11), (12, 13))  # ABAB CDCD EFEF GG
WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def words(line: str) -> list[str]:
    return WORD.findall(line.lower())


def _phones(word: str) -> list[str]:
    import pronouncing

    found = pronouncing.phones_for_word(word)
    if not found and "'" in word:  # Shakespeare's elisions: "deserv'd" -> "deserved"
        found = pronouncing.phones_for_word(word.replace("'d", "ed").replace("'", ""))
    return found


def line_syllables(line: str) -> int | None:
    """Syllables of a line (first CMUdict pronunciation of each word); None if a word is unknown."""
    import pronouncing

    total = 0
    for w in words(line):
        ph = _phones(w)
        if not ph:
            return None
        total += pronouncing.syllable_count(ph[0])
    return total if total else None


def rhyme_part(line: str) -> str | None:
    import pronouncing

    ws = words(line)
    ph = _phones(ws[-1]) if ws else []
    return pronouncing.rhyming_part(ph[0]) if ph else None


def rhymes(a: str, b: str) -> bool | None:
    """Do the last words of two lines rhyme (same rhyming part, different word)? None if unknown."""
    ra, rb = rhyme_part(a), rhyme_part(b)
    if ra is None or rb is None:
        return None
    return ra == rb and words(a)[-1] != words(b)[-1]


def poem_lines(text: str, n: int = 14) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if words(ln)][:n]


def metre_rhyme(texts: list[str]) -> dict[str, float]:
    """Syllables per line (mean, share of lines with 9..11), end-rhyme rate on the sonnet scheme."""
    syl, n_lines, rhyme_hits, rhyme_pairs, n_lines_per = [], 0, 0, 0, []
    for text in texts:
        lines = poem_lines(text)
        n_lines_per.append(len(lines))
        for ln in lines:
            n_lines += 1
            s = line_syllables(ln)
            if s is not None:
                syl.append(s)
        for i, j in SCHEME_PAIRS:
            if j < len(lines):
                r = rhymes(lines[i], lines[j])
                if r is not None:
                    rhyme_pairs += 1
                    rhyme_hits += int(r)
    syl = np.asarray(syl, float)
    return {
        "lines_per_text": float(np.mean(n_lines_per)) if n_lines_per else 0.0,
        "syllables_mean": float(syl.mean()) if syl.size else float("nan"),
        "pentameter_share": float(((syl >= 9) & (syl <= 11)).mean()) if syl.size else float("nan"),
        "cmudict_coverage": len(syl) / max(1, n_lines),
        "end_rhyme_rate": rhyme_hits / rhyme_pairs if rhyme_pairs else float("nan"),
        "rhyme_pairs": rhyme_pairs,
    }


class NgramIndex:
    """Word n-grams of a corpus, for the longest shared run and the n-gram overlap of new texts."""

    def __init__(self, corpus: list[str], max_n: int = 40):
        self.max_n = max_n
        self.grams: set[tuple[str, ...]] = set()
        for text in corpus:
            ws = words(text)
            for n in range(1, max_n + 1):
                self.grams.update(tuple(ws[i : i + n]) for i in range(len(ws) - n + 1))

    def longest_shared_run(self, text: str) -> int:
        """The most consecutive words of ``text`` that also occur consecutively in the corpus."""
        ws, best = words(text), 0
        for i in range(len(ws)):
            n = best + 1
            while i + n <= len(ws) and n <= self.max_n and tuple(ws[i : i + n]) in self.grams:
                best, n = n, n + 1
        return best

    def overlap(self, text: str, n: int = 4) -> float:
        """Share of the text's word n-grams that occur in the corpus."""
        ws = words(text)
        grams = [tuple(ws[i : i + n]) for i in range(len(ws) - n + 1)]
        return sum(g in self.grams for g in grams) / len(grams) if grams else float("nan")


def novelty(texts: list[str], index: NgramIndex) -> dict[str, float]:
    runs = [index.longest_shared_run(t) for t in texts]
    return {
        "longest_shared_run_mean": float(np.mean(runs)),
        "longest_shared_run_max": int(max(runs)),
        "overlap_4gram": float(np.nanmean([index.overlap(t, 4) for t in texts])),
        "overlap_8gram": float(np.nanmean([index.overlap(t, 8) for t in texts])),
    }


def chunks(texts: list[str], size: int = 4) -> list[str]:
    """Consecutive ``size``-line pieces of each text (a last shorter piece is dropped)."""
    out = []
    for text in texts:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        out += ["\n".join(lines[i : i + size]) for i in range(0, len(lines) - size + 1, size)]
    return out


def play_excerpts(speeches: list[str], size: int = 4) -> list[str]:
    """4-line excerpts of play speeches (speaker names removed), to stand against sonnet quatrains."""
    body = [ln for s in speeches for ln in s.splitlines()[1:] if ln.strip()]
    return ["\n".join(body[i : i + size]) for i in range(0, len(body) - size + 1, size)]


def fit_style_classifier(sonnet_texts, play_texts, seed: int = 0):
    """P(sonnet | 4 lines): TF-IDF of word 1-2-grams and char 2-4-grams, logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    features = make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, min_df=2),
    )
    clf = make_pipeline(features, LogisticRegression(C=4.0, max_iter=2000, class_weight="balanced", random_state=seed))
    x = list(sonnet_texts) + list(play_texts)
    y = np.r_[np.ones(len(sonnet_texts)), np.zeros(len(play_texts))]
    return clf.fit(x, y)


def sonnet_score(clf, texts: list[str]) -> float:
    """Mean P(sonnet) over the 4-line chunks of ``texts`` (texts shorter than 4 lines count whole)."""
    pieces = chunks(texts) or [t for t in texts if t.strip()]
    pieces = pieces or [""]
    return float(clf.predict_proba(pieces)[:, 1].mean())
