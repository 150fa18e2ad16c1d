"""Tables that fit the terminal without cutting identifiers or numbers.

Each column is declared by what it holds:

* ``"id"``: identifiers and numbers (names the user types next, sizes, counts). Never
  truncated and never wrapped: the column is as wide as its widest cell.
* ``"text"``: prose (a block description, a list one item per line). Wraps at spaces;
  a word longer than the column folds onto the next line, never an ellipsis.
* ``"fold"``: long single tokens that may be broken anywhere (a storage URL).

When the table does not fit the console, the optional columns are dropped one by one in
the given order. If it still does not fit (a very narrow terminal), every column may
fold: each character is still printed, on more lines. An ellipsis is never used.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

Kind = Literal["id", "text", "fold"]
Justify = Literal["left", "center", "right"]

_HUGE = 100_000


@dataclass(frozen=True)
class Col:
    """A column: its header, what it holds, its alignment and, for text/fold, its narrowest useful width."""

    header: str
    kind: Kind = "id"
    justify: Justify = "left"
    min_width: int = 0


def _lines(text: Text) -> list[str]:
    return text.plain.splitlines() or [""]


def _widths(col: Col, cells: Sequence[Text]) -> tuple[int, int]:
    """(narrowest, widest) content width of a column, header included, padding excluded."""
    header = Text(col.header)
    widest = max(cell_len(line) for cell in (header, *cells) for line in _lines(cell))
    if col.kind == "id":
        return widest, widest
    header_word = max((cell_len(word) for word in col.header.split()), default=0)
    if col.kind == "text":
        longest_word = max((cell_len(word) for cell in cells for word in cell.plain.split()), default=0)
        narrowest = max(longest_word, header_word, col.min_width)
    else:  # fold: any width will do, the header's words still whole
        narrowest = max(header_word, col.min_width, 1)
    return min(narrowest, widest), widest


def _table(cols: Sequence[Col], rows: Sequence[Sequence[Text]], widths: Sequence[int], title: Text | None,
           fold_all: bool) -> Table:
    table = Table(title=title)
    for col, width in zip(cols, widths):
        wraps = fold_all or col.kind != "id"
        table.add_column(Text(col.header), justify=col.justify, width=width, no_wrap=not wraps,
                         overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def measure_width(table: Table, console: Console) -> int:
    """The narrowest width at which rich can lay out ``table`` (not capped by the console)."""
    return console.measure(table, options=console.options.update_width(_HUGE)).minimum


def _share(budget: int, ranges: Sequence[tuple[int, int]]) -> list[int]:
    """Widths within each (narrowest, widest) range summing to at most ``budget``: the widest shrink first."""
    if sum(hi for _, hi in ranges) <= budget:
        return [hi for _, hi in ranges]
    level = 0
    top = max((hi for _, hi in ranges), default=0)
    while level < top and sum(min(hi, max(lo, level + 1)) for lo, hi in ranges) <= budget:
        level += 1
    return [min(hi, max(lo, level)) for lo, hi in ranges]


def fit_table(columns: Sequence[Col], rows: Iterable[Sequence[str | Text]], *, console: Console,
              drop: Sequence[str] = (), title: str | Text | None = None) -> Table:
    """A rich ``Table`` of ``rows`` laid out to fit ``console.width`` without truncating anything.

    ``drop`` names optional columns (by header), the least useful first; they are left
    out, in that order, only while the table is too wide for the console. Cells are
    plain text (no rich markup), so names such as ``stages[1].blocks[0]`` print as they are.
    """
    unknown = set(drop) - {col.header for col in columns}
    if unknown:
        raise ValueError(f"cannot drop unknown column(s): {sorted(unknown)}")
    all_rows = [[cell if isinstance(cell, Text) else Text(str(cell)) for cell in row] for row in rows]
    title_text = Text(title) if isinstance(title, str) else title
    available = console.width
    keep = list(range(len(columns)))
    to_drop = [next(i for i, col in enumerate(columns) if col.header == name) for name in drop]

    def layout(fold_all: bool) -> tuple[list[Col], list[list[Text]], list[tuple[int, int]], int]:
        cols = [columns[i] for i in keep]
        if fold_all:
            cols = [replace(col, kind="fold", min_width=1) for col in cols]
        rows_kept = [[row[i] for i in keep] for row in all_rows]
        ranges = [_widths(col, [row[n] for row in rows_kept]) for n, col in enumerate(cols)]
        narrowest = measure_width(_table(cols, rows_kept, [lo for lo, _ in ranges], None, fold_all), console)
        return cols, rows_kept, ranges, narrowest

    cols, rows_kept, ranges, narrowest = layout(False)
    while narrowest > available and to_drop:
        keep.remove(to_drop.pop(0))
        cols, rows_kept, ranges, narrowest = layout(False)
    fold_all = narrowest > available
    if fold_all:  # last resort: nothing left to drop, so every column may fold (never an ellipsis)
        cols, rows_kept, ranges, narrowest = layout(True)
    overhead = narrowest - sum(lo for lo, _ in ranges)  # borders and padding
    widths = _share(max(available - overhead, 0), ranges)
    table = _table(cols, rows_kept, widths, title_text, fold_all)
    if title_text is not None:  # widen the table to its title's width, when the terminal allows it
        table.min_width = min(max((cell_len(line) for line in _lines(title_text)), default=0), available)
    return table


def headers(table: Table) -> list[str]:
    """The headers of the columns ``table`` kept."""
    return [column.header.plain if isinstance(column.header, Text) else str(column.header) for column in table.columns]


__all__ = ["Col", "fit_table", "headers", "measure_width"]
