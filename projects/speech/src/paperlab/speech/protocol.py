"""The evaluation protocol: which corpora, which classes, and the speaker-independent folds.

Within a corpus every fold tests on speakers that no training clip comes from (``data.speaker_folds``).
Cross-corpus (``test_dataset``): one "fold" that trains on every clip of ``dataset`` and tests on every
clip of ``test_dataset``, over the emotions both share.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from paperlab.speech.config import Config
from paperlab.speech.data import speaker_folds, split_indices
from paperlab.speech.features import Features, corpus_features


@dataclass
class Fold:
    name: str
    train: np.ndarray  # clip indices into the training corpus
    test: np.ndarray  # clip indices into the test corpus (the same corpus except cross-corpus)
    test_speakers: list[int]


def restrict(feats: Features, emotions: list[str] | tuple[str, ...]) -> Features:
    unknown = [e for e in emotions if e not in feats.emotions]
    if unknown:
        raise ValueError(f"emotions {unknown} are not classes of this corpus ({', '.join(feats.emotions)})")
    keep = np.flatnonzero(np.isin(feats.labels, [feats.emotions.index(e) for e in emotions]))
    return feats.subset(keep, tuple(emotions))


def speaker_normalise(feats: Features, mode: str = "mean") -> Features:
    """Every speaker's log-mels centred per mel band on that speaker's own mean over all of their frames in
    ``feats`` (``mean``: a per-speaker cepstral-mean-style normalisation), or also scaled by that speaker's
    own per-band standard deviation (``meanstd``, as in Busso et al. 2011's speaker normalisation). It reads
    no label: a held-out speaker is normalised with the statistics of their own unlabelled test clips, which
    a deployed system would take from enrolment speech of that speaker. What is left is how a clip departs
    from the speaker's average voice and channel. Frames of clips outside ``feats`` (the other emotions of a
    restricted corpus) are left as they were."""
    if mode not in ("mean", "meanstd"):
        raise ValueError(f"speaker normalisation is mean or meanstd, got {mode!r}")
    src = feats.frames.astype(np.float32)
    out = src.copy()
    for s in np.unique(feats.speakers):
        clips = np.flatnonzero(feats.speakers == s)
        cols = feats.columns(clips)
        x = src[:, cols] - src[:, cols].mean(axis=1, keepdims=True)
        out[:, cols] = x / np.maximum(x.std(axis=1, keepdims=True), 1e-3) if mode == "meanstd" else x
    return replace(feats, frames=out)


def load_corpora(cfg: Config) -> tuple[Features, Features]:
    """(training corpus, test corpus); the same object unless cross-corpus. ``speaker_norm``
    (mean | meanstd) normalises each speaker's features with that speaker's own statistics
    (``speaker_normalise``), in both corpora."""
    feats = corpus_features(cfg.dataset, cfg.data_dir, cfg)
    norm = (lambda f: speaker_normalise(f, cfg.speaker_norm)) if cfg.speaker_norm != "none" else (lambda f: f)
    if cfg.test_dataset:
        test = corpus_features(cfg.test_dataset, cfg.test_data_dir, cfg)
        shared = list(cfg.emotions) or [e for e in feats.emotions if e in test.emotions]
        return norm(restrict(feats, shared)), norm(restrict(test, shared))
    if cfg.emotions:
        feats = restrict(feats, cfg.emotions)
    feats = norm(feats)
    return feats, feats


def fold_plan(cfg: Config, feats: Features, test: Features) -> list[Fold]:
    if cfg.test_dataset:
        return [
            Fold(
                f"{cfg.dataset}->{cfg.test_dataset}",
                np.arange(len(feats)),
                np.arange(len(test)),
                sorted(set(test.speakers.tolist())),
            )
        ]
    folds = []
    if cfg.folds == "clips":  # speaker-DEPENDENT reference: stratified by emotion and speaker, fixed shuffle
        from sklearn.model_selection import StratifiedKFold

        strata = feats.labels.astype(np.int64) * 100_000 + feats.speakers
        split = StratifiedKFold(cfg.n_folds, shuffle=True, random_state=0).split(np.zeros(len(feats)), strata)
        for k, (tr, te) in enumerate(split):
            folds.append(Fold(f"fold{k}", tr, te, sorted({int(s) for s in feats.speakers[te]})))
    else:
        for k, speakers in enumerate(speaker_folds(feats.speakers, cfg.folds, cfg.n_folds)):
            tr, te = split_indices(feats.speakers, speakers)
            folds.append(Fold(f"fold{k}", tr, te, speakers.tolist()))
    if cfg.only_folds:
        bad = [k for k in cfg.only_folds if not 0 <= k < len(folds)]
        if bad:
            raise ValueError(f"only_folds {bad}: there are {len(folds)} folds (0..{len(folds) - 1})")
        folds = [folds[k] for k in cfg.only_folds]
    return folds
