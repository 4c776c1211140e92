"""Point-in-time joins on a Spark cluster: the same join, run per entity bucket.

``pip install 'headwater[spark]'``. :func:`values_at` takes a Spark DataFrame of query
rows (an entity key and a time), sends the rows of each entity bucket of the history to
one Spark task (``repartition`` by bucket), and there runs
:meth:`~headwater.store.history.FeatureHistory.values_at` through ``mapInArrow``: the
very code of a local join, reading only that bucket's files. Spark moves the query rows
and runs the tasks; the feature semantics stay in one place, never restated in SQL.

The executors open the history themselves, so it must be where they can read it: object
storage (an fsspec URL with its ``storage_options``) or a directory they share. They run
Headwater in their own Python (``PYSPARK_PYTHON``), which must have it installed.

The result has the query columns and one column per feature (``double``, or
``array<double>`` for ``last_n``), in no particular row order, as Spark goes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from headwater.errors import MissingExtraError, ValidationError
from headwater.features.definitions import Feature
from headwater.features.pointintime import Mode, Queries
from headwater.log.partitioner import partition_of
from headwater.store.history.history import FeatureHistory
from headwater.store.history.rows import ENTITY
from headwater.store.history.scan import entity_array
from headwater.store.history.timetravel import check_features

try:
    from pyspark.sql import types as spark_types
except ImportError as exc:  # pragma: no cover - exercised with the extra hidden
    raise MissingExtraError("Point-in-time joins on Spark", "spark", "pyspark") from exc

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["values_at"]

_BUCKET = "_headwater_bucket"


def _micros(column: pa.ChunkedArray | pa.Array, field: str) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_timestamp(column.type):
        return column.cast(pa.timestamp("us", column.type.tz)).cast(pa.int64())
    if pa.types.is_integer(column.type):
        return column.cast(pa.int64())
    raise ValidationError(field, f"a query time is a timestamp or µs as an integer, "
                          f"not {column.type}")


def _feature_type(feature: Feature) -> spark_types.DataType:
    if feature.aggregation == "last_n":
        return spark_types.ArrayType(spark_types.DoubleType())
    return spark_types.DoubleType()


def values_at(queries: DataFrame, location: str, features: Sequence[Feature], source: str, *,
              entity: str = "entity", time: str = "time", mode: Mode = "event_time",
              storage_options: dict[str, Any] | None = None) -> DataFrame:
    """``queries`` with each feature's value at each row's ``time`` for its ``entity``,
    read from the history at ``location`` (see the module docstring)."""
    options = dict(storage_options or {})
    features = list(features)
    check_features(features, source)
    history = FeatureHistory(location, **options)
    buckets = history.buckets(source)
    key_type = history.schema(source).field(ENTITY).type
    names = queries.schema.fieldNames()
    for column in (entity, time):
        if column not in names:
            raise ValidationError(column, f"the queries have no column {column!r}")
    taken = sorted({f.name for f in features} & set(names))
    if taken:
        raise ValidationError(taken[0], "a query column has a feature's name")
    if _BUCKET in names:
        raise ValidationError(_BUCKET, "the name is reserved for the join")

    def with_bucket(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            keys = entity_array(batch.column(entity), key_type, entity)
            yield batch.append_column(_BUCKET, pa.array(partition_of(keys, buckets), pa.int32()))

    def join(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        got = list(batches)
        if not got:
            return
        table = pa.Table.from_batches(got)
        if not table.num_rows:
            return
        mine = FeatureHistory(location, **options)
        keys = entity_array(table.column(entity), key_type, entity)
        times = np.asarray(_micros(table.column(time), time), np.int64)
        frame = mine.values_at(features, source, Queries(keys, times), mode=mode)
        out = table.drop_columns([_BUCKET])
        for name in frame.schema.names:
            out = out.append_column(name, frame.column(name))
        yield from out.to_batches()

    bucketed = queries.mapInArrow(
        with_bucket, spark_types.StructType([*queries.schema.fields, spark_types.StructField(
            _BUCKET, spark_types.IntegerType(), False)]))
    result = spark_types.StructType([*queries.schema.fields, *(
        spark_types.StructField(f.name, _feature_type(f), True) for f in features)])
    return bucketed.repartition(buckets, _BUCKET).mapInArrow(join, result)
