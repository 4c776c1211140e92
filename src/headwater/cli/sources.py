"""Event files read in batches: CSV, Parquet and JSON lines, from a path or standard input.

A source yields :class:`Chunk` s of exactly ``size`` events (the last may be shorter), so
the same file read with the same size always splits the same way; that is what makes a
re-run of ``headwater produce --producer-id`` idempotent. Records that cannot even be
parsed (a CSV line with the wrong number of fields, a line that is not JSON) come back as
:class:`Unreadable` with their line number, for the dead-letter topic.

CSV columns are read as text and converted by the log's validation against the topic's
schema, so one bad value rejects one row, not the file. Parquet keeps its types; JSON
lines are decoded to dicts.
"""

from __future__ import annotations

import abc
import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Final, Literal

import msgspec
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from headwater.cli.formats import METADATA_COLUMNS, STDIO, FileFormat
from headwater.errors import ValidationError
from headwater.log import Schema

__all__ = ["Chunk", "Source", "Unreadable", "infer_schema", "open_source", "rebatch"]

_CSV_BLOCK_BYTES: Final = 1 << 20
_SCHEMA_SAMPLE_LINES: Final = 1_000
_OPTION: Final = "FILE"


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A record that could not be parsed into fields at all."""

    line: int
    reason: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Chunk:
    """Events read from the input, ready to append.

    ``rows[i]`` is the 1-based number of event ``i`` in the input (for JSON lines: its
    line). ``position`` is how far the input has been read, in the source's ``unit``.
    """

    events: pa.RecordBatch | list[Any]
    rows: npt.NDArray[np.int64]
    unreadable: tuple[Unreadable, ...]
    position: int


class Source(abc.ABC):
    """An opened input; ``total`` is its size in ``unit`` (``None`` when unknown)."""

    unit: Literal["bytes", "events"] = "bytes"
    total: int | None = None

    def __init__(self, name: str) -> None:
        self.name = name

    @abc.abstractmethod
    def arrow_schema(self) -> pa.Schema:
        """The columns and the types inferred from the start of the input."""
        ...

    @abc.abstractmethod
    def chunks(self, size: int) -> Iterator[Chunk]:
        ...

    @abc.abstractmethod
    def close(self) -> None:
        """Release the input."""

    def error(self, exc: Exception) -> ValidationError:
        return ValidationError(_OPTION, f"{self.name}: {exc}")

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_source(path: str, fmt: FileFormat, stdin: BinaryIO) -> Source:
    """Open ``path`` (``-`` for ``stdin``) as a source of format ``fmt``."""
    if path != STDIO and not os.path.isfile(path):
        raise ValidationError(_OPTION, f"no such file: {path!r}")
    name = "<stdin>" if path == STDIO else path
    if fmt == "jsonl":
        if path == STDIO:
            return JsonLinesSource(name, stdin, None)
        return JsonLinesSource(name, open(path, "rb"), os.path.getsize(path))
    # CSV is read twice (header, then data) and Parquet needs to seek: buffer stdin.
    data: pa.Buffer | None = pa.py_buffer(stdin.read()) if path == STDIO else None

    def reopen() -> pa.NativeFile:
        return pa.BufferReader(data) if data is not None else pa.OSFile(path)

    size = data.size if data is not None else os.path.getsize(path)
    if fmt == "csv":
        return CsvSource(name, reopen, size)
    return ParquetSource(name, reopen())


class CsvSource(Source):
    unit = "bytes"

    def __init__(self, name: str, reopen: Callable[[], pa.NativeFile], size: int) -> None:
        super().__init__(name)
        self._reopen = reopen
        self.total = size

    def arrow_schema(self) -> pa.Schema:
        options = pa_csv.ParseOptions(invalid_row_handler=lambda row: "skip")
        try:
            with self._reopen() as stream:
                reader = pa_csv.open_csv(stream, read_options=self._read_options(),
                                         parse_options=options)
                return reader.schema
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise self.error(exc) from None

    def chunks(self, size: int) -> Iterator[Chunk]:
        names = self.arrow_schema().names
        pending: list[Unreadable] = []

        def skip(row: pa_csv.InvalidRow) -> str:
            reason = f"expected {row.expected_columns} fields, got {row.actual_columns}"
            pending.append(Unreadable(row.number or 0, reason, row.text.encode()))
            return "skip"

        convert = pa_csv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            null_values=[""],
        )
        with self._reopen() as stream:
            try:
                reader = pa_csv.open_csv(
                    stream, read_options=self._read_options(),
                    parse_options=pa_csv.ParseOptions(invalid_row_handler=skip),
                    convert_options=convert,
                )
                first = 1
                for batch in rebatch(reader, size):
                    rows = np.arange(first, first + batch.num_rows, dtype=np.int64)
                    first += batch.num_rows
                    unreadable = tuple(pending)
                    pending.clear()
                    yield Chunk(batch, rows, unreadable, stream.tell())
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise self.error(exc) from None
            if pending:
                yield Chunk(pa.RecordBatch.from_pylist([]), np.zeros(0, np.int64),
                            tuple(pending), stream.tell())

    def close(self) -> None:
        """Nothing to release: each read opens and closes the input."""

    @staticmethod
    def _read_options() -> pa_csv.ReadOptions:
        return pa_csv.ReadOptions(use_threads=False, block_size=_CSV_BLOCK_BYTES)


class ParquetSource(Source):
    unit = "events"

    def __init__(self, name: str, stream: pa.NativeFile) -> None:
        super().__init__(name)
        try:
            self._file = pq.ParquetFile(stream)
        except (pa.ArrowInvalid, OSError) as exc:
            raise self.error(exc) from None
        self.total = self._file.metadata.num_rows

    def arrow_schema(self) -> pa.Schema:
        return self._file.schema_arrow

    def close(self) -> None:
        self._file.close()

    def chunks(self, size: int) -> Iterator[Chunk]:
        first = 1
        try:
            for batch in rebatch(self._file.iter_batches(batch_size=size), size):
                rows = np.arange(first, first + batch.num_rows, dtype=np.int64)
                first += batch.num_rows
                yield Chunk(batch, rows, (), first - 1)
        except (pa.ArrowInvalid, OSError) as exc:
            raise self.error(exc) from None


class JsonLinesSource(Source):
    """One JSON object per line; blank lines are skipped (and still counted as lines)."""

    unit = "bytes"

    def __init__(self, name: str, stream: BinaryIO, size: int | None) -> None:
        super().__init__(name)
        self._stream = stream
        self.total = size
        self._peeked: list[bytes] = []
        self._decoder = msgspec.json.Decoder()

    def arrow_schema(self) -> pa.Schema:
        self._peeked.extend(itertools.islice(self._stream, _SCHEMA_SAMPLE_LINES))
        sample = []
        for line in self._peeked:
            try:
                value = self._decoder.decode(line) if line.strip() else None
            except msgspec.DecodeError:
                continue
            if isinstance(value, dict):
                sample.append(value)
        if not sample:
            raise ValidationError(_OPTION, f"{self.name}: no JSON object to infer a schema from")
        try:
            return pa.Table.from_pylist(sample).schema
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise self.error(exc) from None

    def chunks(self, size: int) -> Iterator[Chunk]:
        events: list[Any] = []
        rows: list[int] = []
        bad: list[Unreadable] = []
        position = 0
        lines = itertools.chain(self._peeked, self._stream)
        for number, line in enumerate(lines, start=1):
            position += len(line)
            if not line.strip():
                continue
            try:
                events.append(self._decoder.decode(line))
            except msgspec.DecodeError as exc:
                bad.append(Unreadable(number, f"invalid JSON: {exc}", line.rstrip(b"\r\n")))
                continue
            rows.append(number)
            if len(events) == size:
                yield Chunk(events, np.asarray(rows, np.int64), tuple(bad), position)
                events, rows, bad = [], [], []
        if events or bad:
            yield Chunk(events, np.asarray(rows, np.int64), tuple(bad), position)
        self._peeked.clear()

    def close(self) -> None:
        self._stream.close()


def infer_schema(source: Source, *, event_time: str, key: str | None) -> Schema:
    """A topic schema with the columns of ``source`` and the types Arrow infers."""
    inferred = source.arrow_schema()
    for name in METADATA_COLUMNS:
        if name in inferred.names:
            inferred = inferred.remove(inferred.get_field_index(name))
    if event_time not in inferred.names:
        raise ValidationError("--event-time", f"{source.name} has no column {event_time!r}")
    if key is not None and key not in inferred.names:
        raise ValidationError("--key", f"{source.name} has no column {key!r}")
    return Schema.from_arrow(inferred, event_time=event_time, key=key)


def rebatch(batches: Iterable[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    """Regroup ``batches`` into batches of exactly ``size`` rows (the last may be shorter).

    >>> parts = [pa.record_batch({"x": list(range(n))}) for n in (3, 4, 2)]
    >>> [b.num_rows for b in rebatch(parts, 4)]
    [4, 4, 1]
    """
    if size <= 0:
        raise ValidationError("--batch-size", f"expected a positive size, got {size}")
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        while batch.num_rows:
            take = min(size - count, batch.num_rows)
            pending.append(batch.slice(0, take))
            count += take
            batch = batch.slice(take)
            if count == size:
                yield _concat(pending)
                pending, count = [], 0
    if count:
        yield _concat(pending)


def _concat(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    return batches[0] if len(batches) == 1 else pa.concat_batches(batches)
