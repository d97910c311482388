"""Task 13's detector wrapper and intervals."""

import importlib.util

import numpy as np
import pytest

from paperlab.toys_torch import toxicity


def test_profanity_check_scores_profanity_above_neutral():
    p = toxicity.detector("profanity_check")(["what the fuck is this shit", "the train leaves at nine"])
    assert p[0] > 0.9 > 0.2 > p[1]
    assert toxicity.detector("profanity_check")([]).shape == (0,)


def test_blind_spots_are_reported_per_category():
    rep = toxicity.blind_spot_report(toxicity.detector("profanity_check"), 0.5)
    assert set(rep["per_category"]) == {c for _, _, c in toxicity.BLIND_SPOTS}
    assert rep["per_category"]["profanity"] == 1.0
    assert rep["per_category"]["implicit hostility"] < 0.5  # the known weakness of a bag-of-words model


@pytest.mark.skipif(importlib.util.find_spec("detoxify") is not None, reason="detoxify is installed")
def test_detoxify_path_says_how_to_get_it():
    with pytest.raises(FileNotFoundError, match="pip install detoxify"):
        toxicity.detector("detoxify")
    with pytest.raises(ValueError, match="unknown detector"):
        toxicity.detector("perspective")


def test_wilson_interval():
    lo, hi = toxicity.wilson(0, 50)
    assert lo == pytest.approx(0.0, abs=1e-12) and 0.05 < hi < 0.09  # not the degenerate [0, 0]
    lo, hi = toxicity.wilson(30, 100)
    assert lo < 0.3 < hi and hi - lo == pytest.approx(2 * 1.96 * np.sqrt(0.21 / 100), rel=0.05)


def test_bootstrap_gap_interval_covers_the_true_gap():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.3, 0.1, 400), rng.normal(0.1, 0.1, 400)
    lo, hi = toxicity.bootstrap_gap_ci(a, b, rng, 1000)
    assert lo < 0.2 < hi and lo > 0.15
    lo, hi = toxicity.bootstrap_mean_ci(b, rng, 1000)
    assert lo < 0.1 < hi


def test_max_gap_permutation_p_is_calibrated_and_detects_a_real_gap():
    rng = np.random.default_rng(1)
    same = [rng.normal(0, 1, 60) for _ in range(5)]
    assert toxicity.max_gap_permutation_p(same, rng, 300) > 0.05
    shifted = same[:4] + [same[4] + 1.0]
    assert toxicity.max_gap_permutation_p(shifted, rng, 300) < 0.01
