"""CSV that a spreadsheet opens as data, never as formulas.

A cell that starts with ``=``, ``+``, ``-``, ``@`` (or a tab / carriage return, which some
spreadsheets strip before looking) is read by Excel, LibreOffice and Google Sheets as a formula:
customer text such as ``=HYPERLINK(...)`` in a subject would run on the reader's machine (OWASP
"CSV injection"). Such cells get a leading apostrophe, the convention those programs display as
literal text. Numbers are written as numbers (a negative balance stays ``-1.5``, not text).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_FIRSTS = frozenset(_FORMULA_STARTS)

Cell = str | int | float | Decimal | None

#: Cell types the csv module writes exactly as :func:`escape_cell` would (``str()``; None as
#: nothing). Exact types: bool derives from int but is written "yes"/"no".
_AS_WRITTEN = frozenset({int, float, Decimal, type(None)})


def escape_cell(value: Cell) -> str:
    """The text of one cell, made safe to open in a spreadsheet."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float | Decimal):
        return str(value)
    text = str(value)
    if text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def write_csv(
    out: IO[str],
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    *,
    text_columns: Sequence[int] | None = None,
) -> int:
    """Write ``header`` and ``rows`` to ``out``; returns the number of data rows written.

    ``text_columns``: when the caller knows that only these columns can hold text from outside
    the program (names, subjects, notes) and every other cell is a number, None or the program's
    own words, only those are checked. A statement's ~20,000 lines of 13 cells each spent a third
    of their writing in the check of every cell (docs/performance.md); its export is tested to
    give the same bytes as the full check, hostile text in every field.
    """
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([escape_cell(h) for h in header])
    count = 0
    plain = _AS_WRITTEN
    firsts = _FORMULA_FIRSTS
    batch: list[Sequence[Cell]] = []
    for row in rows:
        if text_columns is None:
            # The common cells take a shortcut: None and numbers are what the csv module
            # writes as escape_cell would, plain text needs only the formula check; anything
            # else (text to escape, a bool) goes through escape_cell.
            row = [
                cell
                if cell is None
                or (type(cell) is str and cell[:1] not in firsts)
                or type(cell) in plain
                else escape_cell(cell)
                for cell in row
            ]
        else:
            for i in text_columns:
                cell = row[i]
                # Anything but None or plain text with a safe first character goes through
                # escape_cell (text to escape, a str subclass, a bool, a number).
                if cell is not None and (type(cell) is not str or cell[:1] in firsts):
                    row = list(row)
                    row[i] = escape_cell(cell)
        batch.append(row)
        if len(batch) == 1000:
            writer.writerows(batch)
            count += len(batch)
            batch.clear()
    writer.writerows(batch)
    return count + len(batch)


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    buffer = io.StringIO()
    write_csv(buffer, header, rows)
    return buffer.getvalue()


def save_csv(
    path: Path,
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    *,
    text_columns: Sequence[int] | None = None,
) -> int:
    """Write a CSV file with a UTF-8 byte-order mark (Excel then reads accents correctly)."""
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        return write_csv(out, header, rows, text_columns=text_columns)
