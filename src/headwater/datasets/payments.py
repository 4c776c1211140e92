"""Payments: a small card-payments stream with chargebacks, made up around the present.

The data set of the README's tour: what a payments team exports, not something made for
Headwater. Two tables, in time order:

- ``payments``: ``payment_id`` (int64, in time order), ``user`` (``"u0042"``),
  ``merchant`` (a category: ``grocery``, ``restaurant``, ``fuel``, ``online``,
  ``electronics``, ``travel``), ``amount`` (float64, two decimals) and ``ts`` (when it
  was paid, whole seconds, UTC), over the ``days`` up to now. :func:`write` writes its
  times as the payment system's export does: UTC wall times without an offset
  (``2025-06-01 09:30:12``), so reading them takes the zone (``headwater produce
  --timezone UTC``);
- ``chargebacks``: ``payment_id``, ``user`` and ``ts`` (when the chargeback arrived) of
  the payments disputed as fraud. A chargeback comes one to twenty days after its
  payment, so the newest frauds are not known yet: they are not in the table (labels
  that arrive late, as real ones do).

How it is made (seeded, so the same ``seed`` gives the same rows, shifted in time): each
user pays at their own daily rate, mostly by day, with their own typical amount. Some
users' cards are stolen once: a burst of three to nine payments within the hour, online
and for electronics or travel, for larger amounts. Those are the frauds, plus a few
disputes of ordinary payments. So fraud shows in how much and how often a user paid in
the last hour, which is what the tour's features count.

Times are relative to the clock's now (the end of the period), so a feature's TTL never
finds them expired; pass a :class:`~headwater.time.ManualClock` for fixed times.

>>> from headwater.time import ManualClock
>>> data = load(clock=ManualClock(1_750_000_000_000_000), users=20, days=7)
>>> data.payments.column_names, data.chargebacks.column_names
(['payment_id', 'user', 'merchant', 'amount', 'ts'], ['payment_id', 'user', 'ts'])
>>> load(clock=ManualClock(1_750_000_000_000_000), users=20, days=7) == data
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from headwater.datasets.files import write_csv
from headwater.errors import ValidationError
from headwater.time import Clock, SystemClock

__all__ = [
    "MERCHANTS",
    "Payments",
    "load",
    "write",
]

#: The merchant categories, with the share of ordinary payments each gets.
MERCHANTS: Final[dict[str, float]] = {
    "grocery": 0.32, "restaurant": 0.22, "fuel": 0.14, "online": 0.18, "electronics": 0.06,
    "travel": 0.08,
}
#: The typical amount of an ordinary payment in each category.
_TYPICAL: Final = {"grocery": 38.0, "restaurant": 27.0, "fuel": 55.0, "online": 45.0,
                   "electronics": 160.0, "travel": 240.0}
_FRAUD_MERCHANTS: Final = ("online", "electronics", "travel")
_SECOND: Final = 1_000_000
_HOUR: Final = 3_600 * _SECOND
_DAY: Final = 24 * _HOUR
#: How likely a payment is in each hour of the day (UTC), relative to the others.
_HOURLY: Final = np.array([1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 3, 5, 6, 6, 7, 9, 8, 6, 6, 7, 8, 9,
                           8, 6, 4, 3, 2], dtype=np.float64)
_STOLEN_SHARE: Final = 0.15  # users whose card is stolen once in the period
_DISPUTED_SHARE: Final = 0.002  # ordinary payments disputed all the same


class Payments(NamedTuple):
    """The two tables of the data set (see the module docstring)."""

    payments: pa.Table
    chargebacks: pa.Table


def load(*, clock: Clock | None = None, days: int = 28, users: int = 150,
         seed: int = 0) -> Payments:
    """The payments of ``users`` users over the ``days`` days up to the clock's now, and
    the chargebacks known by then."""
    for name, value in (("days", days), ("users", users)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValidationError(name, f"expected an int >= 1, got {value!r}")
    now = (clock or SystemClock()).now_us() // _SECOND * _SECOND
    start = now - days * _DAY
    midnight = start // _DAY * _DAY  # hours of the day are counted from a UTC midnight
    span = days + 1  # whole days from that midnight; what falls outside [start, now) goes
    rng = np.random.default_rng(seed)
    names = np.array([f"u{i:04d}" for i in range(1, users + 1)], dtype=object)
    categories = list(MERCHANTS)

    # Ordinary payments: each user at their own rate, by hour of day, in their own range.
    rate = rng.gamma(2.0, 1.25, users)  # payments a day, 2.5 on average
    user = np.repeat(np.arange(users), rng.poisson(rate * span))
    n = len(user)
    hour = rng.choice(24, n, p=_HOURLY / _HOURLY.sum())
    time = (midnight + rng.integers(0, span, n) * _DAY + hour * _HOUR
            + rng.integers(0, _HOUR // _SECOND, n) * _SECOND)
    merchant = rng.choice(len(categories), n, p=np.array(list(MERCHANTS.values())))
    typical = np.array([_TYPICAL[c] for c in categories])[merchant]
    amount = typical * rng.lognormal(0.0, 0.35, users)[user] * rng.lognormal(0.0, 0.6, n)
    fraud = rng.random(n) < _DISPUTED_SHARE

    # Stolen cards: a burst of payments within the hour, online, for larger amounts.
    stolen = np.flatnonzero(rng.random(users) < _STOLEN_SHARE)
    bursts = rng.integers(3, 10, len(stolen))
    b_user = np.repeat(stolen, bursts)
    b_time = (np.repeat(start + rng.integers(0, days * _DAY // _SECOND, len(stolen)) * _SECOND,
                        bursts) + rng.integers(0, 50 * 60, len(b_user)) * _SECOND)
    b_merchant = rng.choice([categories.index(c) for c in _FRAUD_MERCHANTS], len(b_user))
    b_amount = rng.lognormal(np.log(320.0), 0.5, len(b_user))

    all_user = np.concatenate([user, b_user])
    all_time = np.concatenate([time, b_time])
    inside = np.flatnonzero((all_time >= start) & (all_time < now))
    rows = inside[np.lexsort((all_user[inside], all_time[inside]))]  # time order
    ts = all_time[rows]
    owner = all_user[rows]
    payment_id = np.arange(1, len(rows) + 1, dtype=np.int64)
    payments = pa.table({
        "payment_id": payment_id,
        "user": pa.array(names[owner], pa.string()),
        "merchant": pa.array(np.array(categories, dtype=object)[
            np.concatenate([merchant, b_merchant])[rows]], pa.string()),
        "amount": pa.array(np.round(np.concatenate([amount, b_amount])[rows], 2), pa.float64()),
        "ts": _timestamps(ts),
    })

    # Chargebacks one to twenty days later; those still in the future are not known yet.
    disputed = np.flatnonzero(np.concatenate([fraud, np.ones(len(b_user), dtype=bool)])[rows])
    delay = np.clip(rng.lognormal(np.log(5.0), 0.6, len(disputed)), 1.0, 20.0)
    arrives = ts[disputed] + (delay * _DAY).astype(np.int64) // _SECOND * _SECOND
    known = np.flatnonzero(arrives <= now)
    known = known[np.argsort(arrives[known], kind="stable")]
    chargebacks = pa.table({
        "payment_id": pa.array(payment_id[disputed[known]], pa.int64()),
        "user": pa.array(names[owner[disputed[known]]], pa.string()),
        "ts": _timestamps(arrives[known]),
    })
    return Payments(payments, chargebacks)


def _timestamps(us: npt.NDArray[np.int64]) -> pa.Array:
    return pa.array(us.astype(np.int64), pa.int64()).view(pa.timestamp("us", tz="UTC"))


def write(directory: str | Path, *, clock: Clock | None = None, days: int = 28,
          users: int = 150, seed: int = 0) -> list[Path]:
    """Write ``payments.csv`` and ``chargebacks.csv`` into ``directory`` (created if
    needed) and return their paths. The payments' times are UTC wall times without an
    offset (``2025-06-01 09:30:12``), the chargebacks' ISO 8601 in UTC
    (``2025-06-01T09:30:12Z``): two systems, two habits."""
    data = load(clock=clock, days=days, users=users, seed=seed)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, table, naive in (("payments", data.payments, True),
                               ("chargebacks", data.chargebacks, False)):
        path = folder / f"{name}.csv"
        write_csv(table, path, naive=naive)
        paths.append(path)
    return paths
