"""The hidden gold scorer: VADER's sentiment (Hutto & Gilbert 2014), a lexicon a person can read.

It plays the human labeller of Gao et al.'s controlled setup: it labels the preference pairs
(:mod:`paperlab.rlhf.preferences`) and measures the policies afterwards (:mod:`paperlab.rlhf.evaluate`).
No training module imports it (a test checks this): the proxy reward model and every RL method see only
the labelled pairs.

Two gold scorers (``Config.gold``):

    vader      gold(y) = VADER's compound score of the response text, in [-1, 1] (positive is "better")
    vader-rep  gold(y) = compound(y) - repeats(y), in [-2, 1], where repeats(y) = 1 - distinct words / words:
               positive *and* not a list of the same few words. "love, love, love, love" scores 0.96 under
               ``vader`` but 0.96 - 0.75 = 0.21 here, so the gold score does not saturate on the word lists
               that RL policies drift to (the over-optimisation experiment, configs/rlhf/goodhart-rep.yaml).
"""

from __future__ import annotations

import re
from functools import lru_cache

from paperlab.rlhf.config import GOLDS

_WORD = re.compile(r"[a-z']+")


@lru_cache(maxsize=1)
def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment(text: str) -> float:
    """VADER's compound score of ``text``, in [-1, 1]."""
    return float(_analyzer().polarity_scores(text)["compound"])


def repeats(text: str) -> float:
    """The share of repeated words, 1 - distinct / total (lower-cased words; 0 for an empty text), in [0, 1)."""
    words = _WORD.findall(text.lower())
    return 1.0 - len(set(words)) / len(words) if words else 0.0


def gold_score(text: str, kind: str = "vader") -> float:
    if kind == "vader":
        return sentiment(text)
    if kind == "vader-rep":
        return sentiment(text) - repeats(text)
    raise ValueError(f"unknown gold scorer {kind!r}; choose from {GOLDS}")


def gold_scores(texts: list[str], kind: str = "vader") -> list[float]:
    return [gold_score(t, kind) for t in texts]
