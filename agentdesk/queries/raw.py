"""Reading many rows without SQLAlchemy's per-value result processing.

Read through the columns' own types, every UUID becomes a ``uuid.UUID`` and every instant goes
through a regex parse (SQLite) and :class:`~agentdesk.models.base.UTCDateTime`'s
``process_result_value``, one Python call per value: for the read side's big reads (a year of
ledger, a dashboard's month of first responses) that was most of the time, and it holds the GIL,
stalling the desktop's GUI thread while a worker reads (docs/performance.md). These helpers
select a column with no result processing (the driver's value as it is: SQLite's stored text,
PostgreSQL's ``uuid.UUID`` and ``datetime``) and convert each value once, in one step, to what
the typed read would have returned.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Executable, String, type_coerce
from sqlalchemy.orm import Session

__all__ = ["Texts", "Uuids", "driver_rows", "instant", "raw", "uuid_text"]


def raw(column: Any) -> Any:
    """``column`` selected with no result processing, under its own key."""
    return type_coerce(column, String).label(column.key)


def driver_rows(session: Session | Connection, stmt: Executable) -> list[tuple[Any, ...]]:
    """Every row of ``stmt`` as the driver returns it: no per-row result object and no
    per-value processing (booleans stay SQLite's 0/1). For reads of tens of thousands of rows
    whose columns are plain numbers or :func:`raw` values."""
    conn = session.connection() if isinstance(session, Session) else session
    result = conn.execute(stmt)  # Core, also for ORM-annotated columns: a cursor result
    try:
        return list(result.cursor.fetchall())  # type: ignore[union-attr,unused-ignore]
    finally:
        result.close()


def instant(value: Any) -> datetime:
    """An instant as :class:`~agentdesk.models.base.UTCDateTime` returns it (aware UTC), from
    SQLite's stored text or PostgreSQL's datetime."""
    if type(value) is str:
        try:  # one C call; ``.replace(tzinfo=UTC)`` per value cost several times the parse
            return datetime.fromisoformat(value + "+00:00")
        except ValueError:  # text that carries its own offset
            value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
    return value.astimezone(UTC)  # type: ignore[no-any-return]


def uuid_text(value: Any) -> str:
    """A UUID as ``str(uuid.UUID(...))``: SQLite stores 32 lower-case hex digits, PostgreSQL's
    driver hands back ``uuid.UUID``."""
    if type(value) is str and len(value) == 32:
        return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
    return str(value if type(value) is uuid.UUID else uuid.UUID(str(value)))


class Uuids(dict[Any, uuid.UUID]):
    """Driver value -> ``uuid.UUID``, for columns with few distinct values (people, tickets,
    organisations): each is converted once."""

    def __missing__(self, key: Any) -> uuid.UUID:
        value = self[key] = uuid.UUID(uuid_text(key))
        return value


class Texts(dict[Any, str]):
    """Driver value -> canonical UUID text, for columns with few distinct values."""

    def __missing__(self, key: Any) -> str:
        value = self[key] = uuid_text(key)
        return value
