"""The non-neural baseline: an RBF support-vector machine on utterance statistics of the same log-mels
(per band: mean and standard deviation over frames of the log-mel and of its first difference, 4 x n_mels
numbers per clip), standardised on the training fold, classes weighted by inverse frequency.

Why this baseline: on a few hundred acted clips, statistics-plus-SVM is the classic speech-emotion
recogniser (the AESDD papers compare their CNN with SVMs), it has no training randomness, and it tells
whether the CNN learns more than the average spectral envelope of each emotion."""

from __future__ import annotations

import numpy as np

from paperlab.speech.features import Features


def utterance_stats(feats: Features, idx) -> np.ndarray:
    rows = []
    for i in idx:
        x = feats.clip(int(i))
        d = np.diff(x, axis=1) if x.shape[1] > 1 else np.zeros_like(x)
        rows.append(np.concatenate([x.mean(1), x.std(1), d.mean(1), d.std(1)]))
    return np.stack(rows)


def svm_probs(train: Features, tr, test: Features, te, c: float) -> np.ndarray:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    clf = make_pipeline(StandardScaler(), SVC(C=c, gamma="scale", class_weight="balanced"))
    clf.fit(utterance_stats(train, tr), train.labels[tr])
    scores = clf.decision_function(utterance_stats(test, te))
    if scores.ndim == 1:  # two classes
        scores = np.stack([-scores, scores], axis=1)
    full = np.full((len(te), len(test.emotions)), -np.inf)
    full[:, clf.classes_] = scores
    e = np.exp(full - full.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)  # a softmax of the one-vs-rest scores (only argmax is used)
