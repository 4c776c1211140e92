"""The types of a text file's columns, decided by a vote of their values.

A CSV column is text; ``headwater produce --create`` and ``topics create --from-file``
give it the type that almost all of its values have, so one odd value (``"1,5"`` in a
column of amounts) does not turn the column into text. The rule, per column, over the
values read (nulls aside):

- ``int64`` when more than :data:`MAJORITY` of them are integers and no more are
  numbers; else ``float64`` when more than that share are numbers (``nan`` and ``inf``
  count: the schema then refuses them, unless allowed); else ``bool`` when more than
  that share are ``true``/``false``; else ``string``;
- the key column is ``int64`` or ``string`` (a key is never a float);
- a column holding any zero-padded integer (``007``, ``02139``) is ``string``: its values
  are identifiers whose zeros a number would drop, so ``007`` and ``7`` stay apart;
- the values that disagree with the chosen type are counted, reported with an example,
  and the rows holding them are rejected at append into the dead-letter topic.

>>> votes = vote("amount", pa.array(["1.5", "2", "1,5", None]), np.array([2, 3, 4, 5]))
>>> votes.type, votes.values, votes.disagree, votes.example
('float64', 3, 1, (4, '1,5'))
>>> vote("account", pa.array(["007", "12", "31"]), np.array([2, 3, 4]), key=True).type
'string'
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from rich.table import Table

__all__ = ["MAJORITY", "Votes", "count_votes", "vote", "votes_table"]

#: The share of a column's values that must be passed for the column to take their type.
#: A simple majority: what disagrees is reported and rejected, never silently kept.
MAJORITY: Final = 0.5
_PATTERNS: Final = {
    "int64": r"^-?\d{1,18}$",
    "float64": r"^[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|(?i:nan|inf|infinity))$",
    "bool": r"^(?i:true|false)$",
    "padded": r"^[+-]?0\d+$",  # an identifier's leading zeros: never a number
}


@dataclass(frozen=True, slots=True)
class Votes:
    """What one column's values voted: the type, how many values were read, how many
    disagree with the type, and the first that does (its line and text)."""

    column: str
    type: str
    values: int
    disagree: int
    example: tuple[int, str] | None


@dataclass
class _Tally:
    values: int = 0
    matches: dict[str, int] | None = None

    def add(self, column: pa.Array) -> None:
        valid = column.drop_null()
        self.values += len(valid)
        counts = self.matches or dict.fromkeys(_PATTERNS, 0)
        for name, pattern in _PATTERNS.items():
            counts[name] += int(pc.sum(pc.match_substring_regex(valid, pattern)).as_py() or 0)
        self.matches = counts

    def type(self, key: bool) -> str:
        matches = self.matches or dict.fromkeys(_PATTERNS, 0)
        need = MAJORITY * self.values
        if not self.values or matches["padded"]:
            return "string"
        if matches["int64"] > need and matches["int64"] >= matches["float64"]:
            return "int64"
        if key:
            return "string"
        for name in ("float64", "bool"):
            if matches[name] > need:
                return name
        return "string"


def count_votes(batches: Iterator[tuple[pa.RecordBatch, npt.NDArray[np.int64]]], *,
                key: str | None, skip: tuple[str, ...]) -> list[Votes]:
    """The votes of every column of ``batches`` of text (with the line of each row),
    except the columns in ``skip``."""
    tallies: dict[str, _Tally] = {}
    kept: list[tuple[pa.RecordBatch, npt.NDArray[np.int64]]] = []
    for batch, lines in batches:
        for name in batch.schema.names:
            if name not in skip:
                tallies.setdefault(name, _Tally()).add(batch.column(name))
        kept.append((batch, lines))
    votes = []
    for name, tally in tallies.items():
        chosen = tally.type(name == key)
        disagree, example = 0, None
        if chosen != "string":
            for batch, lines in kept:
                column = batch.column(name)
                odd = pc.and_(pc.is_valid(column),
                              pc.invert(pc.match_substring_regex(column, _PATTERNS[chosen])))
                mask = np.asarray(pc.fill_null(odd, False))
                disagree += int(mask.sum())
                if example is None and mask.any():
                    at = int(np.flatnonzero(mask)[0])
                    example = (int(lines[at]), str(column[at].as_py()))
        votes.append(Votes(name, chosen, tally.values, disagree, example))
    return votes


def vote(name: str, column: pa.Array, lines: npt.NDArray[np.int64], *,
         key: bool = False) -> Votes:
    """The vote of one column of text."""
    batch = pa.RecordBatch.from_arrays([column], names=[name])
    (votes,) = count_votes(iter([(batch, lines)]), key=name if key else None, skip=())
    return votes


def votes_table(votes: list[Votes], name: str) -> Table:
    """The votes as a table for people: per column, its type and what disagrees."""
    table = Table("column", "type", "values", "disagreeing",
                  title=f"types inferred from {name}")
    for v in votes:
        odd = "0"
        if v.disagree:
            odd = f"{v.disagree:,}"
            if v.example is not None:
                odd += f" (e.g. line {v.example[0]}: {v.example[1]!r})"
        table.add_row(v.column, v.type, f"{v.values:,}", odd)
    return table
