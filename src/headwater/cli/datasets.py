"""``headwater datasets``: the data sets shipped with Headwater, written out as files.

``headwater datasets write payments`` writes ``payments.csv`` and ``chargebacks.csv``
(generated up to now: see :mod:`headwater.datasets.payments`) into the current
directory, or the one given; ``list`` names every data set and its files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Final

import typer
from rich.table import Table

from headwater.cli.common import format_count, out, status
from headwater.datasets import elec2, payments
from headwater.errors import ValidationError

__all__ = ["app"]

app = typer.Typer(help="Data sets shipped with Headwater: list them, write them as files.",
                  no_args_is_help=True)

#: name -> (what it is, its files, the function that writes them into a directory)
_DATASETS: Final[dict[str, tuple[str, str, Callable[[Path], list[Path]]]]] = {
    "payments": ("card payments with chargebacks arriving days later, the 28 days up to now",
                 "payments.csv, chargebacks.csv", lambda d: payments.write(d)),
    "elec2": ("the NSW electricity market, 45,312 half hours of 1996-1998, labelled",
              "elec2.csv", lambda d: elec2.write(d)),
}


@app.command("list")
def list_() -> None:
    """The data sets and the files each writes."""
    table = Table("name", "files", "what")
    for name, (what, files, _) in _DATASETS.items():
        table.add_row(name, files, what)
    out().print(table)


@app.command("write")
def write(
    name: Annotated[str, typer.Argument(help="The data set: payments or elec2.",
                                        show_default=False)],
    directory: Annotated[Path, typer.Argument(help="Where to write its files.")] = Path("."),
) -> None:
    """Write a data set's files (CSV; times in UTC) into DIRECTORY."""
    if name not in _DATASETS:
        raise ValidationError("NAME", f"no data set {name!r}; choose one of "
                              f"{', '.join(_DATASETS)}")
    for path in _DATASETS[name][2](directory):
        with path.open("rb") as file:
            rows = sum(1 for _ in file) - 1
        status().print(f"wrote {path} ({format_count(rows)} rows)")
