"""Classification metrics from integer labels: accuracy, unweighted average recall (UAR, the mean of the
per-class recalls: chance is 1/K whatever the class balance), per-class precision/recall/F1, confusion."""

from __future__ import annotations

import numpy as np


def confusion(y_true, y_pred, n_classes: int) -> np.ndarray:
    """C[i, j] = number of clips of class i predicted as j."""
    c = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(c, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return c


def scores(y_true, y_pred, n_classes: int) -> dict:
    c = confusion(y_true, y_pred, n_classes)
    tp = np.diag(c).astype(np.float64)
    support, predicted = c.sum(axis=1), c.sum(axis=0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = support > 0
    return {
        "accuracy": float(tp.sum() / max(c.sum(), 1)),
        "uar": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": support.tolist(),
        "confusion": c.tolist(),
    }
