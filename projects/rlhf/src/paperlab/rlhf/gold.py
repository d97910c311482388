"""The hidden gold scorer: VADER's sentiment (Hutto & Gilbert 2014), a lexicon a person can read.

It plays the human labeller of Gao et al.'s controlled setup: it labels the preference pairs
(:mod:`paperlab.rlhf.preferences`) and measures the policies afterwards (:mod:`paperlab.rlhf.evaluate`).
No training module imports it (a test checks this): the proxy reward model and every RL method see only
the labelled pairs.

gold(response) = VADER's compound score of the response text, in [-1, 1] (positive sentiment is "better").
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def gold_score(text: str) -> float:
    return float(_analyzer().polarity_scores(text)["compound"])


def gold_scores(texts: list[str]) -> list[float]:
    return [gold_score(t) for t in texts]
