"""Feature definitions: entities, sources, features and feature sets, defined once.

Definitions are frozen msgspec structs, so they are stored as JSON and versioned by the
SHA-256 of that JSON: a feature set's version changes exactly when a definition it uses
changes.

>>> from headwater.features.windows import Sliding
>>> user = Entity("user", key="user_id")
>>> payments = StreamSource.of("payments", allowed_lateness="10m")
>>> spend = Feature.of("spend_1h", user, payments, "sum", column="amount",
...                    window=Sliding.of("1h", hop="5m"), ttl="1d")
>>> spend.window.tiles, spend.ttl_us
(12, 86400000000)
>>> FeatureSet("fraud", (spend,)).version == FeatureSet("fraud", (spend,)).version
True

A feature an entity has no value for (never seen, or past its TTL) is its **default**:
0 for ``count``, ``sum`` and ``approx_distinct`` (nothing happened), null for the other
aggregations, unless the definition sets ``default=`` (a number, or ``None`` for null):

>>> spend.default_value, Feature.of("avg", user, payments, "mean", column="amount").default_value
(0.0, None)
>>> Feature.of("avg", user, payments, "mean", column="amount", default=-1).default_value
-1.0

A feature set may hold **helpers**: features that derived features read but the model
does not (``FeatureSet(..., helpers=("spend_1h",))``); :attr:`FeatureSet.inputs` are the
model's inputs.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

import msgspec
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from headwater.errors import ValidationError
from headwater.features.aggregations import AGGREGATIONS, Aggregation, make
from headwater.features.windows import Lifetime, Window
from headwater.time import parse_duration

__all__ = [
    "DerivedFeature",
    "Entity",
    "Feature",
    "FeatureSet",
    "Filter",
    "RequestSource",
    "StreamSource",
    "TableSource",
    "key_column",
]

_LIFETIME: Final = Lifetime()
_FOREVER: Final = 1 << 62
#: Aggregations that count what happened: with nothing to count they are 0.
_COUNTING: Final = frozenset({"count", "sum", "approx_distinct"})
_NAME: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}$")
FilterOp = Literal["==", "!=", "<", "<=", ">", ">=", "in", "not_null"]
_OPS: Final[dict[str, Callable[..., Any]]] = {
    "==": pc.equal, "!=": pc.not_equal, "<": pc.less, "<=": pc.less_equal,
    ">": pc.greater, ">=": pc.greater_equal,
}


def _check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError(kind, f"{name!r} is not a name: a letter, then letters, digits, '_'")


def _duration(value: str | int | None, field: str) -> int | None:
    return None if value is None else parse_duration(value, field=field)


class Entity(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What features describe, identified by the value of one key column."""

    name: str
    key: str

    def __post_init__(self) -> None:
        _check_name("entity.name", self.name)


class StreamSource(msgspec.Struct, frozen=True, tag="stream", forbid_unknown_fields=True):
    """Events of a log topic. ``entity_key`` defaults to the topic's key column.

    Events more than ``allowed_lateness`` behind the partition's watermark are late.
    """

    topic: str
    entity_key: str | None = None
    allowed_lateness_us: int = 0

    @classmethod
    def of(cls, topic: str, entity_key: str | None = None, *,
           allowed_lateness: str | int = 0) -> StreamSource:
        return cls(topic, entity_key, parse_duration(allowed_lateness, field="allowed_lateness"))


class TableSource(msgspec.Struct, frozen=True, tag="table", forbid_unknown_fields=True):
    """A static table (CSV or Parquet) of batch features; each row is valid from the time
    in ``valid_from`` on (its event time).

    Static data is bounded streaming: :func:`headwater.features.tables.load_table` appends
    the table to the topic ``table.<name>`` and its features are computed from there
    like any stream's (rows may come in any time order: none is late).
    """

    name: str
    path: str
    entity_key: str
    valid_from: str

    def __post_init__(self) -> None:
        _check_name("table.name", self.name)

    @property
    def topic(self) -> str:
        return f"table.{self.name}"

    @property
    def allowed_lateness_us(self) -> int:
        return _FOREVER


class RequestSource(msgspec.Struct, frozen=True, tag="request", forbid_unknown_fields=True):
    """Values passed with a prediction request, by name and type."""

    fields: tuple[tuple[str, str], ...]


Source = StreamSource | TableSource | RequestSource


class Filter(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Keep the events whose ``column`` compares to ``value`` (``op``)."""

    column: str
    op: FilterOp
    value: float | int | str | bool | tuple[float | int | str, ...] | None = None

    def __post_init__(self) -> None:
        if self.op not in (*_OPS, "in", "not_null"):
            raise ValidationError(f"filter.{self.column}.op",
                                  f"unknown operator {self.op!r}; use one of "
                                  f"{', '.join((*_OPS, 'in', 'not_null'))}")

    def mask(self, batch: pa.RecordBatch | pa.Table) -> npt.NDArray[np.bool_]:
        """The events of ``batch`` that pass, as a boolean array (null never passes)."""
        if self.column not in batch.schema.names:
            raise ValidationError(f"filter.{self.column}", "no such column in the source")
        column = batch.column(self.column)
        if self.op == "not_null":
            result = pc.is_valid(column)
        elif self.op == "in":
            values = self.value if isinstance(self.value, tuple) else (self.value,)
            result = pc.is_in(column, value_set=pa.array(values))
        else:
            result = _OPS[self.op](column, self.value)
        return np.asarray(pc.fill_null(result, False), dtype=bool)


class Feature(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One value per entity: an aggregation of a source column over a window.

    ``default`` is the value when the entity has none (see :attr:`default_value`); left
    unset it is not stored, so a definition's digest does not change with it.
    """

    name: str
    entity: Entity
    source: StreamSource | TableSource
    aggregation: str
    column: str | None = None
    window: Window = Lifetime()
    where: Filter | None = None
    ttl_us: int | None = None
    n: int | None = None
    default: float | msgspec.UnsetType | None = msgspec.UNSET

    @classmethod
    def of(cls, name: str, entity: Entity, source: StreamSource | TableSource,
           aggregation: str, *, column: str | None = None, window: Window = _LIFETIME,
           where: Filter | None = None, ttl: str | int | None = None,
           n: int | None = None,
           default: float | msgspec.UnsetType | None = msgspec.UNSET) -> Feature:
        """Build a feature, reading the TTL as a duration (``"1d"``) or µs."""
        if isinstance(default, int) and not isinstance(default, bool):
            default = float(default)
        return cls(name, entity, source, aggregation, column, window, where,
                   _duration(ttl, "ttl"), n, default)

    def __post_init__(self) -> None:
        _check_name("feature.name", self.name)
        if self.aggregation not in (*AGGREGATIONS, "last_n"):
            make(self.aggregation)  # raises the error that lists the aggregations
        if self.aggregation != "count" and self.column is None:
            raise ValidationError(f"{self.name}.column", f"{self.aggregation} needs a column")
        if self.aggregation == "last_n" and not self.n:
            raise ValidationError(f"{self.name}.n", "last_n needs n")
        if self.ttl_us is not None and self.ttl_us <= 0:
            raise ValidationError(f"{self.name}.ttl", "must be positive")
        default = self.default
        if default is not msgspec.UNSET and default is not None:
            if isinstance(default, bool) or not isinstance(default, float | int):
                raise ValidationError(f"{self.name}.default",
                                      f"expected a number or None, got {default!r}")
            if not math.isfinite(default):
                raise ValidationError(f"{self.name}.default", f"must be finite, got {default}")
            if self.aggregation == "last_n":
                raise ValidationError(f"{self.name}.default",
                                      "last_n has no default: a missing list is null")

    @property
    def default_value(self) -> float | None:
        """The value of the feature for an entity that has none — never seen (no event
        passed the filter) or past the TTL — and, for the aggregations that are null
        over an empty window, for an empty window too: ``default`` when the definition
        sets it, else 0 for the counting aggregations (``count``, ``sum``,
        ``approx_distinct``) and null for the others."""
        if self.default is not msgspec.UNSET:
            return None if self.default is None else float(self.default)
        return 0.0 if self.aggregation in _COUNTING else None

    @property
    def aggregator(self) -> Aggregation:
        return make(self.aggregation, self.n)

    @property
    def digest(self) -> str:
        return hashlib.sha256(msgspec.json.encode(self)).hexdigest()


def key_column(feature: Feature) -> str:
    """The column of the source's events that holds the feature's entity keys: the
    source's ``entity_key`` when it names one, else the entity's ``key``. Features of
    several entities over one topic are each keyed by their own column.

    >>> flights = StreamSource.of("flights")
    >>> key_column(Feature.of("departures", Entity("origin", key="origin"), flights, "count"))
    'origin'
    """
    return feature.source.entity_key or feature.entity.key


class DerivedFeature(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A function of other features and request values, run the same online and offline.

    ``function`` takes a mapping of input name to NumPy column and returns one column; the
    online path calls it with columns of length one. Its version is the hash of its name,
    inputs and source code.
    """

    name: str
    inputs: tuple[str, ...]
    function: Callable[[Mapping[str, npt.NDArray[Any]]], npt.NDArray[Any]]

    def __post_init__(self) -> None:
        _check_name("feature.name", self.name)

    def compute(self, columns: Mapping[str, npt.NDArray[Any]]) -> npt.NDArray[Any]:
        missing = [name for name in self.inputs if name not in columns]
        if missing:
            raise ValidationError(f"{self.name}.inputs", f"missing {', '.join(missing)}")
        return np.asarray(self.function({name: columns[name] for name in self.inputs}))

    @property
    def digest(self) -> str:
        try:
            code = inspect.getsource(self.function)
        except (OSError, TypeError):
            code = repr(self.function.__code__.co_code)
        text = f"{self.name}|{','.join(self.inputs)}|{code}"
        return hashlib.sha256(text.encode()).hexdigest()


class FeatureSet(msgspec.Struct, frozen=True):
    """The named list of features a model consumes, versioned by content.

    ``helpers`` names features of the set that derived features read but the model does
    not: they are computed (online and offline alike) and left out of the model's
    input row. Each must feed a derived feature of the set.
    """

    name: str
    features: tuple[Feature | DerivedFeature, ...]
    helpers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_name("feature_set.name", self.name)
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ValidationError(f"{self.name}.features", "feature names repeat")
        read = {i for f in self.features if isinstance(f, DerivedFeature) for i in f.inputs}
        for helper in self.helpers:
            if helper not in names:
                raise ValidationError(f"{self.name}.helpers",
                                      f"{helper!r} is not a feature of the set")
            if helper not in read:
                raise ValidationError(f"{self.name}.helpers",
                                      f"{helper!r} feeds no derived feature of the set: "
                                      "make it an input, or leave it out")

    @property
    def version(self) -> str:
        """SHA-256 over the digests of the features, in order (and the helpers)."""
        text = self.name + "|" + "|".join(f.digest for f in self.features)
        if self.helpers:
            text += "|helpers:" + ",".join(self.helpers)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def names(self) -> list[str]:
        """Every feature of the set, helpers included."""
        return [f.name for f in self.features]

    @property
    def inputs(self) -> list[str]:
        """The features the model reads: every feature but the helpers."""
        helpers = set(self.helpers)
        return [f.name for f in self.features if f.name not in helpers]

