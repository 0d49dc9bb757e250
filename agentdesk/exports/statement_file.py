"""A time statement as the file a customer is handed: read, rendered, its objects freed, at once.

The server's download, the desktop's "Statement…" and ``agentdesk report time`` all come here, so
the three hand out the same bytes and name the file the same way.

Why one step: a year's statement makes ~100,000 short-lived objects (rows, the policy's work
items and report rows, the statement's lines, the CSV's cells). :mod:`..queries.collector` keeps
the cycle collector off while they are made, but when it came back on at the end of the read
they were all still alive (the view held them until the file was written): the collector's
first pass then scanned every one of them (~20 ms), promoted them, and every few statements a
full pass scanned the whole heap (~90 ms), for objects reference counting frees anyway
(docs/performance.md). Here the collector stays off until the file is made and the view is
gone, so it comes back to a heap that did not grow.

That is for the server and the command line, where automatic collection is on. The price: it
stays off while the file renders (a year's PDF, ~1.3 s), for the whole process, and while any
overlapping statement is made; cycles made meanwhile (fpdf2 leaves some) wait for the
next collection. The desktop runs with automatic collection off anyway and its GUI thread's
pacing freezes such bursts (:mod:`agentdesk.ui.gc_pacing`): there the pause changes nothing.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from ..queries import collector
from ..queries.statement import read_statement
from .statement_csv import write_statement_csv
from .statement_pdf import render_statement_pdf

__all__ = ["FORMATS", "StatementFile", "replace_file", "statement_file"]

#: What a statement can be rendered as.
FORMATS = ("csv", "pdf")


@dataclass(frozen=True)
class StatementFile:
    """The rendered statement and the figures a caller reports next to it."""

    organisation: str
    start: date
    end: date
    format: str
    billed: int
    closing: int
    body: bytes

    @property
    def filename(self) -> str:
        """``<organisation>-<from>-<to>.<format>``, the organisation's name kept to letters and
        digits (it is a customer's own text, and goes into a download's header)."""
        name = "".join(c if c.isalnum() else "-" for c in self.organisation).strip("-")
        return f"{name or 'statement'}-{self.start}-{self.end}.{self.format}"


def statement_file(
    session: Session,
    org_id: uuid.UUID,
    start: date,
    end: date,
    fmt: str,
    *,
    now: datetime | None = None,
) -> StatementFile:
    """The statement of ``org_id`` for ``start``..``end`` (see
    :func:`~agentdesk.queries.statement.read_statement`) rendered as ``fmt``.

    The CSV carries a UTF-8 byte-order mark, so a spreadsheet reads accents correctly.
    Raises :class:`~agentdesk.queries.ledger.QueryError` for a period the read side refuses,
    :class:`ValueError` for a format not in :data:`FORMATS` (before anything is read).
    """
    if fmt not in FORMATS:
        raise ValueError(f"a statement is made as {' or '.join(FORMATS)}, not {fmt!r}")
    with collector.paused():
        view = read_statement(session, org_id, start, end, now=now)
        if fmt == "csv":
            out = io.StringIO()
            write_statement_csv(out, view)
            body = out.getvalue().encode("utf-8-sig")
        else:
            body = render_statement_pdf(view)
        made = StatementFile(
            view.organisation, view.start, view.end, fmt, view.billed, view.closing, body
        )
        del view  # its objects go now, before the collector is back (see the module notes)
    return made


def replace_file(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a hidden file beside it, moved into place once
    complete: a statement interrupted half-way never replaces a good one."""
    partial = target.with_name(f".{target.name}.partial")
    try:
        partial.write_bytes(data)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
