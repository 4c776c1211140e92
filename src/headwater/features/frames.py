"""Training frames from a pandas DataFrame: each row's features as of its time.

:func:`training_frame` is what Feast users know as ``get_historical_features(entity_df)``.
The DataFrame holds one row per example: a column per entity, named as the entity
(``user``) and holding its keys, a time column, and anything else (labels, request
values), which is carried through. The result is the same DataFrame (same index, same
order, every row kept, duplicates too) with one column per feature, recomputed from the
log by :func:`~headwater.features.pointintime.point_in_time`, the one implementation of
the rules (a feature with no value gets its default, as in serving); derived features
run on those values and on the DataFrame's columns, as serving runs them on the online
values and the request. Given a :class:`~headwater.features.FeatureSet`, the columns are
the model's inputs: its helpers are computed for the derived features, then left out.

Two modes (``docs/design/features.md``):

- ``"event_time"`` (the default): each feature from the events that happened by the
  row's time, which is training data without leakage;
- ``"known_at"``: from the events the log had appended by then, exactly what serving
  could have answered at that moment.

Times must be pandas datetimes. Aware ones are exact instants. Naive ones are refused,
unless ``timezone`` says where they were recorded (``"UTC"``, ``"Europe/Paris"``); a
wall time that a zone skips or repeats is refused with the row, never guessed.

pandas is an optional dependency: ``pip install 'headwater[pandas]'``. Without it the
call raises :class:`~headwater.errors.MissingExtraError`; the Arrow-level functions
(:func:`~headwater.features.pointintime.point_in_time`,
:func:`~headwater.features.timetravel.values_at_times`) need no pandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from headwater.errors import MissingExtraError, TimestampError, ValidationError
from headwater.features.definitions import DerivedFeature, Feature, FeatureSet
from headwater.features.pointintime import Mode, with_derived
from headwater.features.timetravel import values_at_times
from headwater.log import Log
from headwater.time import check_range

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["training_frame"]


def training_frame(entity_df: pd.DataFrame,
                   features: FeatureSet | Sequence[Feature | DerivedFeature], *, log: Log,
                   time: str = "ts", mode: Mode = "event_time",
                   timezone: str | None = None) -> pd.DataFrame:
    """``entity_df`` with each feature's value at each row's ``time`` (see the module
    docstring). A feature with no value then (no event yet, or past its TTL) is its
    default: 0 for counts and sums, NaN for the others unless the definition sets one.

    Raises :class:`~headwater.errors.ValidationError` naming the column (a missing entity
    or time column, a null key, a feature named like a column) and
    :class:`~headwater.errors.TimestampError` for times that are not pandas datetimes,
    naive without ``timezone``, null or out of range.
    """
    _require_pandas()
    import pandas as pd

    if not isinstance(entity_df, pd.DataFrame):
        raise ValidationError("entity_df", f"expected a pandas DataFrame, got "
                              f"{type(entity_df).__name__}")
    chosen = list(features.features if isinstance(features, FeatureSet) else features)
    helpers = set(features.helpers) if isinstance(features, FeatureSet) else set()
    plain = [f for f in chosen if isinstance(f, Feature)]
    derived = [f for f in chosen if isinstance(f, DerivedFeature)]
    clash = [f.name for f in chosen if f.name in entity_df.columns]
    if clash:
        raise ValidationError("entity_df", f"{', '.join(clash)}: already a column; rename it "
                              "or leave the feature out")
    times = _micros(entity_df, time, timezone)
    keys = {name: _entity_keys(entity_df, name) for name in dict.fromkeys(
        f.entity.name for f in plain)}
    frame = values_at_times(log, plain, keys, times, mode=mode)
    if derived:
        computed = {f.name for f in chosen}
        inputs = dict.fromkeys(n for f in derived for n in f.inputs if n not in computed)
        extra = [n for n in inputs if n in entity_df.columns]
        for name in extra:
            frame = frame.append_column(name, _arrow(_column(entity_df, name, "an input"),
                                                     name))
        frame = with_derived(derived, frame).drop_columns(extra)
    # by position, never by index label: an index may repeat
    return entity_df.assign(**{f.name: frame.column(f.name).to_pandas().to_numpy()
                               for f in chosen if f.name not in helpers})


def _require_pandas() -> None:
    try:
        import pandas  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError("Training frames from DataFrames", "pandas", "pandas") from exc


def _column(entity_df: pd.DataFrame, name: str, what: str) -> pd.Series[Any]:
    if name not in entity_df.columns:
        raise ValidationError(f"entity_df.{name}", f"no such column ({what}); the columns are "
                              f"{[str(c) for c in entity_df.columns]}")
    column = entity_df[name]
    if not hasattr(column, "dtype"):  # several columns of that name
        raise ValidationError(f"entity_df.{name}", "several columns have this name")
    return column


def _entity_keys(entity_df: pd.DataFrame, entity: str) -> pa.Array:
    column = _column(entity_df, entity, f"the keys of the entity {entity!r}")
    missing = column.isna().to_numpy()
    if missing.any():
        raise ValidationError(f"entity_df.{entity}", f"null key at row {_first(column, missing)}")
    return _arrow(column, entity)


def _first(column: pd.Series[Any], rows: npt.NDArray[np.bool_]) -> str:
    """The index label of the first of ``rows``, as the user wrote it."""
    label = column.index[int(np.argmax(rows))]
    return repr(label.item() if isinstance(label, np.generic) else label)


def _arrow(column: pd.Series[Any], name: str) -> pa.Array:
    try:
        array = pa.Array.from_pandas(column)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValidationError(f"entity_df.{name}", f"cannot read the column: {exc}") from exc
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _micros(entity_df: pd.DataFrame, name: str,
            timezone: str | None) -> npt.NDArray[np.int64]:
    """The time column as µs since the epoch, UTC (see the module docstring)."""
    import pandas as pd

    field = f"entity_df.{name}"
    column = _column(entity_df, name, "the time of each row")
    if not pd.api.types.is_datetime64_any_dtype(column.dtype):
        raise TimestampError(field, f"expected pandas datetimes, got {column.dtype}: convert "
                             "with pandas.to_datetime(..., utc=True)")
    missing = column.isna().to_numpy()
    if missing.any():
        raise TimestampError(field, f"no time at row {_first(column, missing)}")
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        utc = column.dt.tz_convert("UTC")
    elif timezone is None:
        raise TimestampError(field, "naive timestamps: say where they were recorded with "
                             "timezone='UTC' (or the zone's name), or make them aware with "
                             "Series.dt.tz_localize")
    else:
        utc = _localize(column, timezone, field).dt.tz_convert("UTC")
    nanos: npt.NDArray[np.int64] = (utc.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
                                    .astype(np.int64))
    us = nanos // 1_000  # floor: events are whole µs, so "at or before" is unchanged
    if len(us):
        check_range(int(us.min()), field=field)
        check_range(int(us.max()), field=field)
    return us


def _localize(column: pd.Series[Any], timezone: str, field: str) -> pd.Series[Any]:
    try:
        local: pd.Series[Any] = column.dt.tz_localize(timezone, ambiguous="raise",
                                                      nonexistent="raise")
        return local
    # An unknown zone, or a wall time it skips or repeats: pandas 3 raises ValueErrors and
    # KeyErrors, pandas 2 pytz's own exceptions, so whatever it raises is named here.
    except Exception as exc:
        raise TimestampError(field, f"cannot read the naive times in {timezone!r}: "
                             f"{type(exc).__name__}: {exc}") from exc
