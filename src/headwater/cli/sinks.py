"""Event files written batch by batch: Parquet, CSV and JSON lines.

A file holds the topic's fields plus ``_offset`` and ``_append_time``; timestamps keep
their type in Parquet and are ISO 8601 UTC text in CSV and JSON lines, so a written file
can be produced again as it is.
"""

from __future__ import annotations

import abc
from typing import IO, Final

import msgspec
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from headwater.cli.formats import FileFormat
from headwater.cli.render import iso_texts, rows_of
from headwater.errors import ValidationError

__all__ = ["Sink", "open_sink"]

_ENCODER: Final = msgspec.json.Encoder()


class Sink(abc.ABC):
    """An output file; ``write`` each batch, then ``close``."""

    @abc.abstractmethod
    def write(self, batch: pa.RecordBatch) -> None:
        ...

    @abc.abstractmethod
    def close(self) -> None:
        ...

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_sink(path: str, fmt: FileFormat, schema: pa.Schema) -> Sink:
    """Create (or overwrite) ``path`` for events of ``schema``."""
    try:
        if fmt == "parquet":
            return _ParquetSink(path, schema)
        if fmt == "csv":
            return _CsvSink(path, schema)
        return _JsonLinesSink(open(path, "wb"))
    except OSError as exc:
        raise ValidationError("--out", f"cannot write {path!r}: {exc.strerror or exc}") from exc


class _ParquetSink(Sink):
    def __init__(self, path: str, schema: pa.Schema) -> None:
        self._writer = pq.ParquetWriter(path, schema)

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)

    def close(self) -> None:
        self._writer.close()


class _CsvSink(Sink):
    def __init__(self, path: str, schema: pa.Schema) -> None:
        self._schema = pa.schema([_as_text(f) for f in schema])
        self._writer = pa_csv.CSVWriter(path, self._schema)

    def write(self, batch: pa.RecordBatch) -> None:
        columns = [pa.array(iso_texts(c), pa.string()) if pa.types.is_timestamp(c.type) else c
                   for c in batch.columns]
        self._writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=self._schema))

    def close(self) -> None:
        self._writer.close()


class _JsonLinesSink(Sink):
    def __init__(self, file: IO[bytes]) -> None:
        self._file = file

    def write(self, batch: pa.RecordBatch) -> None:
        for row in rows_of(batch):
            self._file.write(_ENCODER.encode(row))
            self._file.write(b"\n")

    def close(self) -> None:
        self._file.close()


def _as_text(field: pa.Field) -> pa.Field:
    return field.with_type(pa.string()) if pa.types.is_timestamp(field.type) else field
