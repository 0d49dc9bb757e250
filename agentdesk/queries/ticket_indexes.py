"""The tickets table as SQLite must read it for the open queue's big scans: through a named
partial index (``INDEXED BY``).

SQLite keeps no statistics here, and without them its planner reads the open queue through the
status index and looks up every open row, or sorts the whole queue for a GROUP BY: ~300 ms on
100,000 open tickets where the partial index answers in ~10 ms, index-only (docs/performance.md).
SQLAlchemy renders no table hints for SQLite, so a read that needs one selects from one of these
stand-ins for ``tickets``, built from the columns it reads; PostgreSQL sees a plain ``tickets``.
A query through one repeats the index's WHERE as written
(:func:`~agentdesk.models.tickets.open_ticket`), as SQLite requires of a partial index.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import Table, TableClause, column
from sqlalchemy.ext.compiler import compiles

from ..models import Ticket

__all__ = ["ThroughOpenIndex", "ThroughOpenOrganisationIndex", "through"]

_TICKETS: Table = Ticket.__table__  # type: ignore[assignment]


class _ThroughIndex(TableClause):
    index: ClassVar[str]
    inherit_cache = True


class ThroughOpenIndex(_ThroughIndex):
    """``ix_tickets_open``: open tickets in (assignee, tier, level, organisation) order, with
    every column the queue's figures read (migration 0012)."""

    index = "ix_tickets_open"
    inherit_cache = True


class ThroughOpenOrganisationIndex(_ThroughIndex):
    """``ix_tickets_open_org``: open tickets in organisation order (migration 0013)."""

    index = "ix_tickets_open_org"
    inherit_cache = True


def _indexed_by(element: _ThroughIndex, compiler: Any, **kw: Any) -> str:
    return f"{compiler.visit_table(element, **kw)} INDEXED BY {element.index}"


for _kind in (ThroughOpenIndex, ThroughOpenOrganisationIndex):
    compiles(_kind, "sqlite")(_indexed_by)


def through(kind: type[_ThroughIndex], *names: str) -> TableClause:
    """``tickets`` with the columns ``names`` (typed as the model's), read through ``kind``'s
    index on SQLite."""
    return kind("tickets", *(column(name, _TICKETS.c[name].type) for name in names))
