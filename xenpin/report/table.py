"""Plain-text tables for the reports, laid out by `rich`: each column as wide as its widest cell, never wrapped.

The reports go to terminals, pipes and files alike, so a table is rendered to a string without colour, markup or
a width limit (a 40-character variant name widens its column instead of breaking the line), one line per row,
and the caller prints it or puts its own lines (a counterexample's details) between the rows. File paths in the
rows are shown by `shown_path`: relative to the working directory when below it, else as given.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

_NO_LIMIT = 1 << 16  # wider than any row: rich never wraps or truncates a cell


def table_lines(columns: Sequence[str], rows: Sequence[Sequence[object]], indent: int = 0) -> list[str]:
    """The header line, then one line per row; columns two spaces apart. A column name ending in `>` (the `>`
    is not shown) is right-aligned, as numbers are."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="", padding=(0, 1), expand=False)
    for name in columns:
        right = name.endswith(">")
        table.add_column(name[:-1] if right else name, justify="right" if right else "left", no_wrap=True)
    for row in rows:
        table.add_row(*(Text(str(cell)) for cell in row))  # Text: a `[...]` in a name is not markup
    out = io.StringIO()
    console = Console(
        file=out,
        width=_NO_LIMIT,
        color_system=None,
        force_terminal=False,
        no_color=True,
        markup=False,
        emoji=False,
        highlight=False,
    )
    console.print(table)
    pad = " " * indent
    return [pad + line.rstrip() for line in out.getvalue().splitlines()]


def render_table(columns: Sequence[str], rows: Sequence[Sequence[object]], indent: int = 0) -> str:
    return "\n".join(table_lines(columns, rows, indent))


def shown_path(path: str | os.PathLike[str] | None) -> str:
    """A file path for a report row: relative to the working directory when the file is below it (the shipped
    models read `models/kernels/3.1.toml` from a checkout), else as given, with `a/../` folded away (a proof
    script's `../models/...`); `-` for none."""
    if path is None:
        return "-"
    given = Path(os.path.normpath(path))
    if not given.is_absolute():
        return str(given)
    try:
        return str(given.relative_to(Path.cwd()))
    except ValueError:
        return str(given)
