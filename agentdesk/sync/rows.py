"""Synced rows on the wire.

A row travels as ``{"table", "id", "version", "deleted", "values"}`` with JSON-safe values:
UUIDs and Decimals as strings (Decimals never become floats), datetimes as ISO 8601 with offset,
enums as their values. The same functions serialise on the server and deserialise into the
desktop replica, so the two cannot drift.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import inspect
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


def _columns(model: type[SyncedMixin]) -> list[Any]:
    mapper: Mapper[Any] = inspect(model)
    private = PRIVATE_COLUMNS.get(model.__tablename__, frozenset())  # type: ignore[attr-defined]
    return [c for c in mapper.columns if c.key not in private and c.key not in _ENVELOPE]


def _to_json(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value


def row_to_wire(obj: SyncedMixin) -> dict[str, Any]:
    model = type(obj)
    return {
        "table": model.__tablename__,  # type: ignore[attr-defined]
        "id": str(obj.id),
        "version": obj.version,
        "deleted": obj.deleted,
        "values": {c.key: _to_json(getattr(obj, c.key)) for c in _columns(model)},
    }


def wire_to_values(table: str, wire: Mapping[str, Any]) -> dict[str, Any]:
    """Column values for an ORM insert/update from a wire row, with Python types restored."""
    model = MODELS_BY_TABLE[table]
    values: dict[str, Any] = {
        "id": uuid.UUID(str(wire["id"])),
        "version": int(wire["version"]),
        "deleted": bool(wire["deleted"]),
    }
    raw = wire["values"]
    for column in _columns(model):
        value = raw.get(column.key)
        if value is not None:
            value = _from_json(column, value)
        values[column.key] = value
    return values


def _from_json(column: Any, value: Any) -> Any:
    ctype = column.type
    if isinstance(ctype, UTCDateTime):
        return datetime.fromisoformat(value)
    python_type: Any
    try:
        python_type = ctype.python_type
    except NotImplementedError:
        return value
    if python_type is uuid.UUID:
        return uuid.UUID(str(value))
    if python_type is Decimal:
        return Decimal(str(value))
    if isinstance(python_type, type) and issubclass(python_type, Enum):
        return python_type(value)
    return value
