"""The file formats the command line reads and writes, told apart by extension.

Files written by ``headwater replay`` and lines printed by ``headwater consume`` carry
the :data:`METADATA_COLUMNS` (where each event was in the log); ``headwater produce``
ignores them, so what one command writes another can read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

from headwater.errors import ValidationError
from headwater.log import APPEND_TIME, OFFSET

__all__ = ["METADATA_COLUMNS", "PARTITION", "STDIO", "FileFormat", "format_of"]

FileFormat = Literal["csv", "parquet", "jsonl"]

#: The file name that means standard input (or output).
STDIO: Final = "-"
#: The column naming an event's partition in printed events.
PARTITION: Final = "_partition"
#: Columns describing where an event was in the log, not part of the event.
METADATA_COLUMNS: Final = (PARTITION, OFFSET, APPEND_TIME)

_EXTENSIONS: Final[dict[str, FileFormat]] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}


def format_of(path: str, given: FileFormat | None, *, option: str = "--format") -> FileFormat:
    """``given`` if set, else the format named by the extension (``-`` is JSON lines).

    >>> format_of("events.parquet", None), format_of("-", None), format_of("x.txt", "csv")
    ('parquet', 'jsonl', 'csv')
    """
    if given is not None:
        return given
    if path == STDIO:
        return "jsonl"
    found = _EXTENSIONS.get(Path(path).suffix.lower())
    if found is None:
        raise ValidationError(
            option, f"cannot tell the format of {path!r} from its extension; "
            "give --format csv, parquet or jsonl"
        )
    return found
