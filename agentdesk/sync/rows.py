"""Synced rows on the wire.

A row travels as ``{"table", "id", "version", "deleted", "values"}`` with JSON-safe values:
UUIDs and Decimals as strings (Decimals never become floats), datetimes as ISO 8601 with offset,
enums as their values. The same functions serialise on the server and deserialise into the
desktop replica, so the two cannot drift.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Any, cast

from sqlalchemy import Select, Text, Uuid, inspect, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Mapper

from ..models import (
    Appointment,
    Calendar,
    Contact,
    HourBlock,
    Organisation,
    Plan,
    RunningTimer,
    SyncedMixin,
    Ticket,
    TicketEvent,
    TimeEntry,
    User,
    WaitingPeriod,
)
from ..models.base import UTCDateTime

#: Synced tables in dependency order (a parent before the rows that refer to it), so a page of
#: changes applied in this order never trips a foreign key.
SYNCED_MODELS: tuple[type[SyncedMixin], ...] = (
    User,
    Calendar,
    Plan,
    Organisation,
    Contact,
    Ticket,
    TicketEvent,
    WaitingPeriod,
    HourBlock,
    Appointment,
    TimeEntry,
    RunningTimer,
)
MODELS_BY_TABLE: dict[str, type[SyncedMixin]] = {
    m.__tablename__: m  # type: ignore[attr-defined]
    for m in SYNCED_MODELS
}
TABLE_ORDER: dict[str, int] = {name: i for i, name in enumerate(MODELS_BY_TABLE)}

#: Columns that never leave the server.
PRIVATE_COLUMNS: Mapping[str, frozenset[str]] = {"users": frozenset({"password_hash"})}
_ENVELOPE = frozenset({"id", "version", "deleted"})


#: Memos of :func:`_columns` and :func:`_keys`: serialising a page asks once per row.
_COLUMNS: dict[type[SyncedMixin], tuple[Any, ...]] = {}
_KEYS: dict[type[SyncedMixin], tuple[str, ...]] = {}


def _columns(model: type[SyncedMixin]) -> tuple[Any, ...]:
    columns = _COLUMNS.get(model)
    if columns is None:
        mapper: Mapper[Any] = inspect(model)
        private = PRIVATE_COLUMNS.get(model.__tablename__, frozenset())  # type: ignore[attr-defined]
        columns = tuple(
            c for c in mapper.columns if c.key not in private and c.key not in _ENVELOPE
        )
        _COLUMNS[model] = columns
    return columns


def _keys(model: type[SyncedMixin]) -> tuple[str, ...]:
    keys = _KEYS.get(model)
    if keys is None:
        keys = _KEYS[model] = tuple(c.key for c in _columns(model))
    return keys


def wire_select(model: type[SyncedMixin]) -> Select[Any]:
    """A Core SELECT of exactly what :func:`mapping_to_wire` needs, for reading many rows
    without loading ORM objects. UUID columns come back as text (SQLite's stored 32 hex digits,
    PostgreSQL's canonical form): :func:`mapping_to_wire` writes them without building a
    ``uuid.UUID`` per value, which was a quarter of the cost of a first sync's pages."""
    table = model.__table__  # type: ignore[attr-defined]
    columns = (table.c.id, table.c.version, table.c.deleted, *_columns(model))
    return select(*(sql_cast(c, Text).label(c.key) if _is_uuid(c) else c for c in columns))


def _is_uuid(column: Any) -> bool:
    return isinstance(column.type, Uuid)


#: How SQLAlchemy stores a UUID where the database has no UUID type (SQLite), and the
#: canonical text (PostgreSQL's ``uuid::text``, Python's ``str(uuid)``).
_HEX32 = re.compile("[0-9a-f]{32}")
_CANONICAL = re.compile("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _uuid_text(value: Any) -> str:
    """A UUID read as text, as the wire's canonical text: ``str(uuid.UUID(value))``."""
    if type(value) is str:
        if _CANONICAL.fullmatch(value):
            return value
        if _HEX32.fullmatch(value):
            return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
    return str(value if type(value) is uuid.UUID else uuid.UUID(str(value)))


def _to_json(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value._value_  # what ``.value`` returns, without its descriptor's cost
    return value


#: Types :func:`_to_json` returns unchanged (exact types: an enum deriving from str is not one).
_AS_IS = frozenset({str, int, bool, float, type(None), dict, list})


def row_to_wire(obj: SyncedMixin) -> dict[str, Any]:
    model = type(obj)
    return {
        "table": model.__tablename__,  # type: ignore[attr-defined]
        "id": str(obj.id),
        "version": obj.version,
        "deleted": obj.deleted,
        "values": {
            key: value if type(value) in _AS_IS else _to_json(value)
            for key in _keys(model)
            for value in (getattr(obj, key),)
        },
    }


#: Per model, each wire column's key and whether it holds a UUID (see :func:`wire_select`).
_WIRE_PLANS: dict[type[SyncedMixin], tuple[tuple[str, bool], ...]] = {}


def mapping_to_wire(model: type[SyncedMixin], row: Mapping[Any, Any]) -> dict[str, Any]:
    """:func:`row_to_wire` for a row read with :func:`wire_select`: the same dict."""
    plan = _WIRE_PLANS.get(model)
    if plan is None:
        plan = _WIRE_PLANS[model] = tuple((c.key, _is_uuid(c)) for c in _columns(model))
    return {
        "table": model.__tablename__,  # type: ignore[attr-defined]
        "id": _uuid_text(row["id"]),
        "version": row["version"],
        "deleted": row["deleted"],
        "values": {
            key: (
                (None if value is None else _uuid_text(value))
                if is_uuid
                else value
                if type(value) in _AS_IS
                else _to_json(value)
            )
            for key, is_uuid in plan
            for value in (row[key],)
        },
    }


def wire_to_values(table: str, wire: Mapping[str, Any]) -> dict[str, Any]:
    """Column values for an ORM insert/update from a wire row, with Python types restored."""
    values: dict[str, Any] = {
        "id": _uuid(wire["id"]),
        "version": int(wire["version"]),
        "deleted": bool(wire["deleted"]),
    }
    raw = wire["values"]
    for key, decode in wire_decoders(table):
        value = raw.get(key)
        if value is not None and decode is not None:
            value = decode(value)
        values[key] = value
    return values


@cache
def wire_decoders(table: str) -> tuple[tuple[str, Callable[[Any], Any] | None], ...]:
    """Per wire column (envelope aside), the function :func:`wire_to_values` applies to a
    value that is not None to restore its Python type (None: the JSON value is it)."""
    return tuple((c.key, _decoder(c)) for c in _columns(MODELS_BY_TABLE[table]))


def _from_json(column: Any, value: Any) -> Any:
    decode = _decoder(column)
    return value if decode is None else decode(value)


def _decoder(column: Any) -> Callable[[Any], Any] | None:
    ctype = column.type
    if isinstance(ctype, UTCDateTime):
        return datetime.fromisoformat
    python_type: Any
    try:
        python_type = ctype.python_type
    except NotImplementedError:
        return None
    if python_type is uuid.UUID:
        return _uuid
    if python_type is Decimal:
        return _decimal
    if isinstance(python_type, type) and issubclass(python_type, Enum):
        return cast(Callable[[Any], Any], python_type)
    return None


def _uuid(value: Any) -> uuid.UUID:
    return value if type(value) is uuid.UUID else uuid.UUID(str(value))


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value))
