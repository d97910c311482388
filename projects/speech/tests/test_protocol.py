"""Speaker-independent folds and the metrics."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, precision_recall_fscore_support

from paperlab.speech.config import Config
from paperlab.speech.data import speaker_folds, split_indices
from paperlab.speech.metrics import scores
from paperlab.speech.protocol import fold_plan


def test_loso_gives_one_fold_per_speaker_and_no_speaker_on_both_sides():
    speakers = np.repeat([1, 2, 3, 4, 5, 6], 10)
    folds = speaker_folds(speakers, "loso")
    assert [f.tolist() for f in folds] == [[s] for s in range(1, 7)]
    for f in folds:
        tr, te = split_indices(speakers, f)
        assert set(speakers[tr]).isdisjoint(speakers[te])
        assert len(tr) + len(te) == len(speakers)


def test_grouped_ravdess_folds_are_disjoint_cover_everyone_and_balance_gender():
    actors = np.repeat(np.arange(1, 25), 60)
    folds = speaker_folds(actors, "grouped", 6)
    assert sorted(np.concatenate(folds).tolist()) == list(range(1, 25))
    assert folds[0].tolist() == [1, 2, 13, 14]
    for f in folds:
        assert len(f) == 4 and (f % 2 == 1).sum() == 2  # odd actors are male
        tr, te = split_indices(actors, f)
        assert set(actors[tr]).isdisjoint(actors[te])
    with pytest.raises(ValueError, match="cannot fill"):
        speaker_folds([1, 2], "grouped", 6)


def test_fold_plan_keeps_speakers_apart(synthetic_features):
    cfg = Config()
    for fold in fold_plan(cfg, synthetic_features, synthetic_features):
        assert set(synthetic_features.speakers[fold.train]).isdisjoint(synthetic_features.speakers[fold.test])
        assert set(synthetic_features.speakers[fold.test]) == set(fold.test_speakers)


def test_clip_folds_are_the_speaker_dependent_reference(synthetic_features):
    """folds=clips partitions the clips with every speaker (and class) on both sides of every fold, and the
    same folds for every seed: the opposite of the speaker-independent schemes, on purpose."""
    f = synthetic_features
    plan = fold_plan(Config(folds="clips", n_folds=4), f, f)
    assert sorted(np.concatenate([fold.test for fold in plan]).tolist()) == list(range(len(f)))
    for fold in plan:
        assert set(f.speakers[fold.train]) == set(f.speakers[fold.test]) == set(f.speakers)
        assert set(f.labels[fold.test]) == set(f.labels)
        assert np.intersect1d(fold.train, fold.test).size == 0
    again = fold_plan(Config(folds="clips", n_folds=4, seed=7), f, f)
    assert all(np.array_equal(a.test, b.test) for a, b in zip(plan, again, strict=True))


def test_metrics_equal_scikit_learn():
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 5, 200)
    y_pred = np.where(rng.uniform(size=200) < 0.6, y_true, rng.integers(0, 5, 200))
    s = scores(y_true, y_pred, 5)
    p, r, f, n = precision_recall_fscore_support(y_true, y_pred, labels=range(5), zero_division=0)
    assert s["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert s["uar"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    np.testing.assert_allclose(s["precision"], p)
    np.testing.assert_allclose(s["recall"], r)
    np.testing.assert_allclose(s["f1"], f)
    np.testing.assert_array_equal(s["support"], n)
    np.testing.assert_array_equal(s["confusion"], confusion_matrix(y_true, y_pred, labels=range(5)))


@pytest.mark.parametrize("mode", ["mean", "meanstd"])
def test_speaker_normalisation_uses_each_speakers_own_frames_and_no_labels(synthetic_features, mode):
    """Per band, every speaker's frames come out with mean 0 (and std 1 for meanstd); shuffling the labels
    changes nothing (no label is read); a speaker's normalised frames do not depend on any other speaker; a
    gain in dB (and for meanstd a scale) common to all of a speaker's frames is removed."""
    from dataclasses import replace

    from paperlab.speech.protocol import speaker_normalise

    f = synthetic_features
    out = speaker_normalise(f, mode)
    for s in np.unique(f.speakers):
        x = np.concatenate([out.clip(i) for i in np.flatnonzero(f.speakers == s)], axis=1)
        raw = np.concatenate([f.clip(i) for i in np.flatnonzero(f.speakers == s)], axis=1)
        np.testing.assert_allclose(x.mean(axis=1), 0, atol=1e-4)
        std = np.ones(len(x)) if mode == "meanstd" else raw.std(axis=1)
        np.testing.assert_allclose(x.std(axis=1), std, rtol=1e-3)
    shuffled = replace(f, labels=np.random.default_rng(0).permutation(f.labels))
    np.testing.assert_array_equal(speaker_normalise(shuffled, mode).frames, out.frames)
    s0 = f.speakers[0]
    mine = np.flatnonzero(f.speakers == s0)
    cols = f.columns(np.flatnonzero(f.speakers != s0))
    changed = f.frames.astype(np.float32)
    changed[:, cols] += 7.0  # every other speaker 7 dB louder
    for i in mine:
        np.testing.assert_array_equal(speaker_normalise(replace(f, frames=changed), mode).clip(i), out.clip(i))
    scale = 2.0 if mode == "meanstd" else 1.0
    gained = f.frames.astype(np.float32) * scale - 11.0
    np.testing.assert_allclose(speaker_normalise(replace(f, frames=gained), mode).frames, out.frames, atol=1e-4)


def test_speaker_norm_is_refused_with_noise_augmentation_and_unknown_modes():
    with pytest.raises(ValueError, match="use one of the two"):
        Config(speaker_norm="mean", noise_snr_db=[5.0, 20.0])
    with pytest.raises(ValueError, match="speaker_norm must be one of"):
        Config(speaker_norm="yes")
