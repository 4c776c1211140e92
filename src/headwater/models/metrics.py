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

from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["LOG_LOSS_EPS", "accuracy", "log_loss", "log_losses", "roc_auc"]

LOG_LOSS_EPS: Final = 1e-15
"""How far from 0 and 1 a score is clipped before its log loss is taken, everywhere."""


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


def log_losses(y: npt.ArrayLike, scores: npt.ArrayLike, eps: float = LOG_LOSS_EPS
               ) -> npt.NDArray[np.float64]:
    """Each row's negative log-likelihood of its label, the score clipped to
    ``[eps, 1-eps]`` (so a confident mistake costs about 34.5, not infinity).

    >>> log_losses([1, 0, 1], [0.5, 0.5, 0.0]).round(2).tolist()
    [0.69, 0.69, 34.54]
    """
    labels = np.asarray(y).astype(bool)
    p = np.clip(np.asarray(scores, dtype=np.float64), eps, 1.0 - eps)
    losses: npt.NDArray[np.float64] = -np.where(labels, np.log(p), np.log1p(-p))
    return losses


def log_loss(y: npt.ArrayLike, scores: npt.ArrayLike, eps: float = LOG_LOSS_EPS) -> float:
    """The mean of :func:`log_losses`."""
    return float(np.mean(log_losses(y, scores, eps)))
