"""Small exact metrics for scores against 0/1 labels: ROC AUC, accuracy, log loss.

The AUC is exact: the Mann-Whitney statistic over average ranks, so tied scores count
one half, as scikit-learn's ``roc_auc_score`` does.

>>> import numpy as np
>>> y = np.array([0, 0, 1, 1])
>>> roc_auc(y, np.array([0.1, 0.4, 0.35, 0.8])), accuracy(y, np.array([0.1, 0.4, 0.35, 0.8]))
(0.75, 0.75)
>>> roc_auc(y, np.array([0.5, 0.5, 0.5, 0.5]))
0.5
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["accuracy", "log_loss", "roc_auc"]


def roc_auc(y: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """The area under the ROC curve; ``nan`` when only one class is present."""
    labels = np.asarray(y).astype(bool)
    values = np.asarray(scores, dtype=np.float64)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # average rank (1-based) of each run of tied scores
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    rank_sum = float(ranks[labels].sum())
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def accuracy(y: npt.ArrayLike, scores: npt.ArrayLike, threshold: float = 0.5) -> float:
    """The share of rows where ``score > threshold`` is the label."""
    labels = np.asarray(y).astype(bool)
    return float(np.mean((np.asarray(scores) > threshold) == labels))


def log_loss(y: npt.ArrayLike, scores: npt.ArrayLike, eps: float = 1e-15) -> float:
    """The mean negative log-likelihood of the labels, scores clipped to ``[eps, 1-eps]``."""
    labels = np.asarray(y).astype(bool)
    p = np.clip(np.asarray(scores, dtype=np.float64), eps, 1.0 - eps)
    return float(-np.mean(np.where(labels, np.log(p), np.log1p(-p))))
