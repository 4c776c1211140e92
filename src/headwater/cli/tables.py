"""A command's table as a table, JSON or CSV (``--format``), so output piped to a
script or a file is read as data, not parsed from box drawing.

>>> emit(["model", "versions"], [["churn", 3]], "csv")
model,versions
churn,3
>>> emit(["model", "versions"], [["churn", 3]], "json")
[{"model": "churn", "versions": 3}]
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import typer
from rich.table import Table

from headwater.cli.common import out

__all__ = ["FormatOption", "TableFormat", "emit"]

TableFormat = Literal["table", "json", "csv"]
FormatOption = Annotated[TableFormat, typer.Option(
    "--format", help="table, json (an array of objects) or csv (a header line, then rows).")]


def emit(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: TableFormat, *,
         title: str | None = None) -> None:
    """Print ``rows`` under ``columns`` on standard output in ``fmt``."""
    if fmt == "json":
        typer.echo(json.dumps([dict(zip(columns, row, strict=True)) for row in rows],
                              default=str))
    elif fmt == "csv":
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        typer.echo(text.getvalue(), nl=False)
    else:
        table = Table(*columns, title=title)
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        out().print(table)
