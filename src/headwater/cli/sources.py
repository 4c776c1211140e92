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
from headwater.cli.inference import Votes, count_votes
from headwater.errors import SchemaError, ValidationError
from headwater.log import Schema

__all__ = ["Chunk", "Source", "Unreadable", "infer_schema", "open_source", "rebatch"]

_CSV_BLOCK_BYTES: Final = 1 << 20
_LINE_BYTES: Final = 64 << 10
_INFER_ROWS: Final = 100_000
_ARROW: Final = {"int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_(),
                 "string": pa.string()}
_LF: Final = 10
_CR: Final = 13
_SCHEMA_SAMPLE_LINES: Final = 1_000
_OPTION: Final = "FILE"


@dataclass(frozen=True, slots=True, order=True)
class Unreadable:
    """A record that could not be read into an event: not parsed into fields, not
    UTF-8, or a value (such as a time) the file's rules cannot read. ``line`` is its
    number in the file's numbering (``Source.numbering``), ``offset`` its byte offset
    where known."""

    line: int
    reason: str
    payload: bytes
    field: str = "$"
    offset: int | None = None


@dataclass(frozen=True, slots=True)
class Chunk:
    """Events read from the input, ready to append.

    ``rows[i]`` is the number of event ``i`` in the input, in the source's ``numbering``:
    its 1-based line in a CSV or JSON-lines file (a CSV's header is line 1), its 1-based
    row in a Parquet file. ``position`` is how far the input has been read, in the
    source's ``unit``.
    """

    events: pa.RecordBatch | list[Any]
    rows: npt.NDArray[np.int64]
    unreadable: tuple[Unreadable, ...]
    position: int


class Source(abc.ABC):
    """An opened input; ``total`` is its size in ``unit`` (``None`` when unknown)."""

    unit: Literal["bytes", "events"] = "bytes"
    total: int | None = None
    #: What ``Chunk.rows`` counts: lines of a text file, or rows of a Parquet file.
    numbering: Literal["line", "row"] = "line"

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
    """A CSV file with a header line, one record per line (blank lines are skipped).

    Values are read as bytes and decoded as UTF-8 batch by batch, so a record holding
    invalid UTF-8 is set aside as :class:`Unreadable` (with its line and the byte offset
    of the bad byte) instead of failing the file.
    """

    unit = "bytes"
    numbering = "line"

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
            raise self.error(exc) from exc

    def chunks(self, size: int) -> Iterator[Chunk]:
        names = self.arrow_schema().names
        invalid: dict[int, Unreadable] = {}  # by record number (the header is record 1)

        def skip(row: pa_csv.InvalidRow) -> str:
            reason = f"expected {row.expected_columns} fields, got {row.actual_columns}"
            invalid[row.number or 0] = Unreadable(0, reason, b"")
            return "skip"

        convert = pa_csv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.binary()),
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            null_values=[""],
        )
        with self._reopen() as stream, self._reopen() as raw:
            lines = LineIndex(raw)
            try:
                reader = pa_csv.open_csv(
                    stream, read_options=self._read_options(),
                    parse_options=pa_csv.ParseOptions(invalid_row_handler=skip),
                    convert_options=convert,
                )
                record = 1  # the header
                for batch in rebatch(reader, size):
                    records, record = _records(record, batch.num_rows, invalid)
                    skipped = sorted(r for r in invalid if r < record)
                    found, starts = lines.find(np.concatenate([records, skipped]).astype(np.int64))
                    bad = [self._unreadable(invalid.pop(r), int(found[len(records) + i]),
                                            int(starts[len(records) + i]))
                           for i, r in enumerate(skipped)]
                    batch, kept, undecodable = self._decode(batch, found[:len(records)],
                                                            starts[:len(records)])
                    yield Chunk(batch, kept, tuple(sorted(bad + undecodable)), stream.tell())
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise self.error(exc) from exc
            if invalid:
                skipped = sorted(invalid)
                found, starts = lines.find(np.asarray(skipped, np.int64))
                bad = [self._unreadable(invalid.pop(r), int(line), int(at))
                       for r, line, at in zip(skipped, found.tolist(), starts.tolist(),
                                              strict=True)]
                yield Chunk(pa.RecordBatch.from_pylist([]), np.zeros(0, np.int64),
                            tuple(bad), stream.tell())

    def _unreadable(self, bad: Unreadable, line: int, offset: int) -> Unreadable:
        text = self._line_bytes(offset)
        return Unreadable(line, bad.reason, text, offset=offset)

    def _decode(self, batch: pa.RecordBatch, lines: npt.NDArray[np.int64],
                starts: npt.NDArray[np.int64]
                ) -> tuple[pa.RecordBatch, npt.NDArray[np.int64], list[Unreadable]]:
        """The batch as text; records with invalid UTF-8 set aside."""
        columns: list[pa.Array] = []
        bad: dict[int, Unreadable] = {}
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            try:
                columns.append(column.cast(pa.string()))
                continue
            except pa.ArrowInvalid:
                pass
            for i, value in enumerate(column.to_pylist()):
                if value is None or i in bad:
                    continue
                try:
                    value.decode()
                except UnicodeDecodeError:
                    bad[i] = self._undecodable(name, int(lines[i]), int(starts[i]))
            texts = [None if v is None or i in bad else v.decode()
                     for i, v in enumerate(column.to_pylist())]
            columns.append(pa.array(texts, pa.string()))
        out = pa.RecordBatch.from_arrays(columns, names=batch.schema.names)
        if not bad:
            return out, lines, []
        keep = np.ones(batch.num_rows, bool)
        keep[list(bad)] = False
        return out.filter(pa.array(keep)), lines[keep], list(bad.values())

    def _undecodable(self, column: str, line: int, start: int) -> Unreadable:
        text = self._line_bytes(start)
        try:
            text.decode()
            at = start
        except UnicodeDecodeError as exc:
            at = start + exc.start
        reason = f"invalid UTF-8 in column {column!r} at byte offset {at} of the file"
        return Unreadable(line, reason, text, field=column, offset=at)

    def _line_bytes(self, offset: int) -> bytes:
        """The line starting at byte ``offset`` (without its end), cut at 64 KiB."""
        with self._reopen() as stream:
            stream.seek(offset)
            data: bytes = stream.read(_LINE_BYTES)
        return data.split(b"\n", 1)[0].rstrip(b"\r")

    def sample(self, rows: int) -> Iterator[tuple[pa.RecordBatch, npt.NDArray[np.int64]]]:
        """The first ``rows`` readable records as text, with their lines."""
        read = 0
        for chunk in self.chunks(min(rows, 10_000)):
            if read >= rows:
                return
            assert isinstance(chunk.events, pa.RecordBatch)
            read += chunk.events.num_rows
            yield chunk.events, chunk.rows

    def close(self) -> None:
        """Nothing to release: each read opens and closes the input."""

    @staticmethod
    def _read_options() -> pa_csv.ReadOptions:
        return pa_csv.ReadOptions(use_threads=False, block_size=_CSV_BLOCK_BYTES)


def _records(first: int, count: int, invalid: dict[int, Unreadable]
             ) -> tuple[npt.NDArray[np.int64], int]:
    """The record numbers of the next ``count`` parsed records after record ``first``
    (skipping the invalid ones), and the last record number given."""
    numbers = np.arange(first + 1, first + 1 + count, dtype=np.int64)
    if invalid:
        skipped = np.asarray(sorted(invalid), np.int64)
        skipped = skipped[skipped > first]
        # shift each number past the invalid records before it, in order
        for r in skipped.tolist():
            numbers[numbers >= r] += 1
    return numbers, int(numbers[-1]) if count else first


class LineIndex:
    """Where the records of a CSV input are: each one's line number and byte offset.

    pyarrow numbers a file's records 1, 2, … (the header is record 1) and skips blank
    lines (empty, or a lone carriage return); this scans the raw bytes in blocks to map
    record numbers back to lines, keeping only the records not yet asked for.
    """

    def __init__(self, stream: pa.NativeFile) -> None:
        self._stream = stream
        self._pos = 0  # bytes scanned
        self._line = 0  # lines ended so far
        self._start = 0  # where the unfinished line starts
        self._last = 0  # the last byte scanned
        self._first = 1  # the record number of the first kept entry
        self._lines = np.zeros(0, np.int64)
        self._starts = np.zeros(0, np.int64)
        self._done = False

    def find(self, records: npt.NDArray[np.int64]
             ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The line numbers and byte offsets of ``records`` (no record below the
        smallest of an earlier call)."""
        if not len(records):
            return records, records
        need = int(records.max())
        while self._first + len(self._lines) <= need and not self._done:
            self._scan()
        drop = int(records.min()) - self._first
        if drop > 0:
            self._lines, self._starts = self._lines[drop:], self._starts[drop:]
            self._first += drop
        index = np.minimum(records - self._first, len(self._lines) - 1)
        return self._lines[index], self._starts[index]

    def _scan(self) -> None:
        block = self._stream.read(_CSV_BLOCK_BYTES)
        if not block:
            self._done = True
            size = self._pos - self._start
            if size > 1 or (size == 1 and self._last != _CR):
                self._keep(np.array([self._line + 1]), np.array([self._start]))
            return
        data = np.frombuffer(block, np.uint8)
        ends = np.flatnonzero(data == _LF)
        starts = np.concatenate([[self._start], self._pos + ends[:-1] + 1]).astype(np.int64)
        lengths = self._pos + ends - starts
        before = np.where(ends > 0, data[np.maximum(ends - 1, 0)], self._last)
        filled = (lengths > 1) | ((lengths == 1) & (before != _CR))
        numbers = self._line + 1 + np.arange(len(ends), dtype=np.int64)
        self._keep(numbers[filled], starts[filled])
        self._line += len(ends)
        if len(ends):
            self._start = self._pos + int(ends[-1]) + 1
        self._pos += len(block)
        self._last = int(data[-1])

    def _keep(self, lines: npt.NDArray[np.int64], starts: npt.NDArray[np.int64]) -> None:
        self._lines = np.concatenate([self._lines, lines])
        self._starts = np.concatenate([self._starts, starts])


class ParquetSource(Source):
    unit = "events"
    numbering = "row"

    def __init__(self, name: str, stream: pa.NativeFile) -> None:
        super().__init__(name)
        try:
            self._file = pq.ParquetFile(stream)
        except (pa.ArrowInvalid, OSError) as exc:
            raise self.error(exc) from exc
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
            raise self.error(exc) from exc


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
            raise self.error(exc) from exc

    def chunks(self, size: int) -> Iterator[Chunk]:
        events: list[Any] = []
        rows: list[int] = []
        bad: list[Unreadable] = []
        position = 0
        lines = itertools.chain(self._peeked, self._stream)
        for number, line in enumerate(lines, start=1):
            start = position
            position += len(line)
            if not line.strip():
                continue
            try:
                events.append(self._decoder.decode(line))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                bad.append(_bad_json(number, start, line.rstrip(b"\r\n"), exc))
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


def _bad_json(line: int, start: int, text: bytes, exc: Exception) -> Unreadable:
    """A JSON line that does not decode, with the byte offset of invalid UTF-8."""
    try:
        text.decode()
    except UnicodeDecodeError as bad:
        at = start + bad.start
        return Unreadable(line, f"invalid UTF-8 at byte offset {at} of the file", text,
                          offset=at)
    return Unreadable(line, f"invalid JSON: {exc}", text, offset=start)


def infer_schema(source: Source, *, event_time: str, key: str | None,
                 allow_non_finite: tuple[str, ...] = ()) -> tuple[Schema, list[Votes]]:
    """A topic schema with the columns of ``source``: for a CSV file, the types its
    values vote for (:mod:`headwater.cli.inference`, the votes returned with it); for
    Parquet and JSON lines, the types they carry."""
    inferred = source.arrow_schema()
    for name in METADATA_COLUMNS:
        if name in inferred.names:
            inferred = inferred.remove(inferred.get_field_index(name))
    if event_time not in inferred.names:
        raise ValidationError("--event-time", f"{source.name} has no column {event_time!r}")
    if key is not None and key not in inferred.names:
        raise ValidationError("--key", f"{source.name} has no column {key!r}")
    missing = [n for n in allow_non_finite if n not in inferred.names]
    if missing:
        raise ValidationError("--allow-non-finite", f"{source.name} has no column {missing[0]!r}")
    votes: list[Votes] = []
    if isinstance(source, CsvSource):
        votes = count_votes(source.sample(_INFER_ROWS), key=key,
                            skip=(event_time, *METADATA_COLUMNS))
        types = {v.column: _ARROW[v.type] for v in votes}
        inferred = pa.schema([pa.field(f.name, types.get(f.name, f.type)) for f in inferred])
    try:
        schema = Schema.from_arrow(inferred, event_time=event_time, key=key,
                                   allow_non_finite=allow_non_finite)
    except SchemaError as exc:
        raise ValidationError("--allow-non-finite" if "allow_non_finite" in exc.field
                              else "FILE", f"{source.name}: {exc.reason}") from exc
    return schema, votes


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
