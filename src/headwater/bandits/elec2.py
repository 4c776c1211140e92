"""Elec2 as a two-action contextual bandit: say whether the price goes up or down.

Each half hour the policy chooses ``down`` or ``up`` and earns 1 when the choice
matches the row's label. The context holds only what is known before that label:

- the row's Elec2 features (``nswprice``, ``nswdemand``, ``vicprice``, ``vicdemand``,
  ``transfer``, ``period``);
- the previous row's label (its half hour has ended; 0.5 for the first row), and the
  change of ``nswprice`` since the previous row;
- the time of day, one-hot in eight three-hour bins;
- interactions of the previous label (as ±1) with the features and the time bins;
- with ``streaming=True``, the price against its trailing 24-hour mean (the 48
  previous rows) and that difference times the previous label.

>>> data = bandit(limit=50)
>>> data.actions, data.contexts.shape, data.features[6]
(('down', 'up'), (50, 32), 'last_label')
>>> bool(data.contexts[0, 6] == 0.5 and data.contexts[1, 6] == 1.0)
True
"""

from __future__ import annotations

from typing import Final

import numpy as np

from headwater.bandits.replay import BanditData
from headwater.datasets import elec2

__all__ = ["ACTIONS", "bandit"]

#: The actions: predict the price goes down (index 0, label 0) or up.
ACTIONS: Final = ("down", "up")
_BASE: Final = ("nswprice", "nswdemand", "vicprice", "vicdemand", "transfer", "period")
_BINS: Final = 8
_DAY: Final = 48


def bandit(limit: int | None = None, *, streaming: bool = True) -> BanditData:
    """The Elec2 stream as :class:`~headwater.bandits.replay.BanditData`."""
    table = elec2.load(limit)
    base = np.column_stack([table.column(c).to_numpy().astype(np.float64) for c in _BASE])
    labels = table.column("label").to_numpy()
    n = len(labels)
    last = np.concatenate([[0.5], labels[:-1].astype(np.float64)])
    sign = 2.0 * last - 1.0
    price = base[:, 0]
    change = price - np.concatenate([price[:1], price[:-1]])
    bins = np.minimum((base[:, 5] * _BINS).astype(np.int64), _BINS - 1)
    time_of_day = np.eye(_BINS)[bins]
    columns = [base, last[:, None], base * sign[:, None], change[:, None], time_of_day,
               time_of_day * sign[:, None]]
    names = [*_BASE, "last_label", *(f"{c}*last" for c in _BASE), "price_change",
             *(f"tod{i}" for i in range(_BINS)), *(f"tod{i}*last" for i in range(_BINS))]
    if streaming:
        sums = np.concatenate([[0.0], np.cumsum(price)])
        rows = np.arange(n)
        first = np.maximum(rows - _DAY, 0)
        trailing = np.where(rows > 0, (sums[rows] - sums[first]) / np.maximum(rows - first, 1),
                            price)
        vs_day = price - trailing
        columns[3:3] = [vs_day[:, None], (vs_day * sign)[:, None]]
        names[13:13] = ["price_vs_day", "price_vs_day*last"]
    contexts = np.column_stack(columns)
    return BanditData.classification(contexts, labels, ACTIONS, names)
