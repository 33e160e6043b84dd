"""Plain-text tables for the terminal: aligned columns, long cells cut with an ellipsis."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from enum import Enum
from typing import Any

from flows.text import plain


def cell(value: Any, width: int = 40) -> str:
    if value is None:
        text = "—"
    elif isinstance(value, Enum):
        text = str(value.value)
    elif isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M")
    elif isinstance(value, date):
        text = value.isoformat()
    elif isinstance(value, list | tuple):
        text = ", ".join(str(v) for v in value) or "—"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    else:
        text = str(value)
    # Control characters written out (ESC as \x1b): a name must not recolour, rewrite or reorder
    # the operator's terminal, nor start a line of its own.
    text = plain(" ".join(text.split()))
    return text if len(text) <= width else text[: width - 1] + "…"


def render(rows: Sequence[Sequence[Any]], headers: Sequence[str], widths: Sequence[int] | None = None) -> str:
    limits = widths or [40] * len(headers)
    cells = [[cell(v, w) for v, w in zip(row, limits, strict=True)] for row in rows]
    sizes = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(s) for h, s in zip(headers, sizes, strict=True)).rstrip()]
    lines.append("  ".join("-" * s for s in sizes))
    lines += ["  ".join(c.ljust(s) for c, s in zip(r, sizes, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def fields(pairs: Sequence[tuple[str, Any]]) -> str:
    """A record shown field by field."""
    width = max(len(k) for k, _ in pairs)
    return "\n".join(f"{k.ljust(width)}  {cell(v, 200)}" for k, v in pairs)


def show(rows: Sequence[Sequence[Any]], headers: Sequence[str], widths: Sequence[int] | None = None) -> None:
    """Print a table: drawn by rich for a person at a terminal, plain columns for a pipe or a script.

    Scripts and tests parse the plain form, so anything that is not a terminal keeps it unchanged.
    """
    import sys

    if not sys.stdout.isatty():
        print(render(rows, headers, widths))
        return
    # Imported here: rich costs start-up time that only a person at a terminal should pay.
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    limits = widths or [40] * len(headers)
    table = Table(*headers, header_style="bold", show_lines=False)
    for row in rows:
        # Text, not markup: a cell such as "[A.6.2.8]" is data, never a style.
        table.add_row(*(Text(cell(v, w)) for v, w in zip(row, limits, strict=True)))
    Console().print(table)
