"""The gold scorers by hand: VADER's compound score, and VADER minus the share of repeated words."""

from __future__ import annotations

import pytest

from paperlab.rlhf.gold import gold_score, gold_scores, repeats, sentiment


def test_repeats_counts_repeated_words_case_and_punctuation_blind():
    assert repeats("love, love, love, love") == pytest.approx(0.75)  # 1 distinct of 4
    assert repeats("Good good GOOD night") == pytest.approx(0.5)  # 2 distinct of 4
    assert repeats("noble heaven's love") == 0.0 and repeats("") == 0.0 and repeats(",,, !") == 0.0


def test_vader_rep_is_sentiment_minus_repeats_and_does_not_saturate_on_word_lists():
    varied, listy = "my sweet love, thou art fair and good", "love love love love love love love love"
    for text in (varied, listy):
        assert gold_score(text) == pytest.approx(sentiment(text))  # the default: VADER alone
        assert gold_score(text, "vader-rep") == pytest.approx(sentiment(text) - repeats(text))
    assert sentiment(listy) > 0.9  # VADER alone loves the word list ...
    assert gold_score(listy, "vader-rep") < 0.2 < gold_score(varied, "vader-rep")  # ... vader-rep does not
    assert gold_scores([varied, listy], "vader-rep") == [gold_score(t, "vader-rep") for t in (varied, listy)]
    with pytest.raises(ValueError, match="unknown gold scorer"):
        gold_score("x", "human")
