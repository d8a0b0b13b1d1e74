"""GLUE's official metrics on numpy arrays: accuracy, binary F1 (positive class 1), Matthews
correlation (CoLA), Pearson and Spearman correlation (STS-B; Spearman on average ranks of ties).

Degenerate inputs (a constant prediction, no positive class) score 0, as scikit-learn does, not NaN,
so a model that has not learnt yet never wins a comparison by NaN.
"""

from __future__ import annotations

import numpy as np


def accuracy(pred: np.ndarray, label: np.ndarray) -> float:
    return float(np.mean(np.asarray(pred) == np.asarray(label)))


def f1(pred: np.ndarray, label: np.ndarray) -> float:
    pred, label = np.asarray(pred) == 1, np.asarray(label) == 1
    tp = np.sum(pred & label)
    denominator = pred.sum() + label.sum()
    return float(2 * tp / denominator) if denominator else 0.0


def mcc(pred: np.ndarray, label: np.ndarray) -> float:
    """(tp·tn − fp·fn) / √((tp+fp)(tp+fn)(tn+fp)(tn+fn)) for binary labels."""
    pred, label = np.asarray(pred) == 1, np.asarray(label) == 1
    tp, tn = float(np.sum(pred & label)), float(np.sum(~pred & ~label))
    fp, fn = float(np.sum(pred & ~label)), float(np.sum(~pred & label))
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return float((tp * tn - fp * fn) / denominator) if denominator else 0.0


def pearson(pred: np.ndarray, label: np.ndarray) -> float:
    x, y = (np.asarray(a, dtype=np.float64) - np.mean(a) for a in (pred, label))
    denominator = np.sqrt(np.sum(x * x) * np.sum(y * y))
    return float(np.sum(x * y) / denominator) if denominator else 0.0


def ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given the mean of the ranks they span."""
    values = np.asarray(values)
    order = np.argsort(values, kind="stable")
    _, first, counts = np.unique(values[order], return_index=True, return_counts=True)
    mean_rank = first + (counts + 1) / 2  # ranks first+1 .. first+count
    out = np.empty(len(values))
    out[order] = np.repeat(mean_rank, counts)
    return out


def spearman(pred: np.ndarray, label: np.ndarray) -> float:
    return pearson(ranks(pred), ranks(label))


METRICS = {"accuracy": accuracy, "f1": f1, "mcc": mcc, "pearson": pearson, "spearman": spearman}


def evaluate(names: tuple[str, ...], pred: np.ndarray, label: np.ndarray) -> dict[str, float]:
    """The named metrics plus `score`, their mean (the number a grid is ranked by, as GLUE averages
    F1/accuracy and Pearson/Spearman)."""
    values = {name: METRICS[name](pred, label) for name in names}
    return {**values, "score": float(np.mean(list(values.values())))}
