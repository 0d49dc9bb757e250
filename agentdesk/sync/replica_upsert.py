"""The replica's fast path for pull pages: wire rows written with one prepared ``INSERT OR
REPLACE`` per table, values converted by per-column functions planned once per table.

Pulls of thousands of rows spent most of their time in the ORM's per-row bookkeeping; the
replica never needs identity-map semantics for rows the server owns, so they bypass it here
(checked against the ORM's own conversion at plan time, see ``_utc_text_agrees``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Uuid,
    insert,
)
from sqlalchemy.engine import Connection

from ..models.base import UTCDateTime
from .rows import (
    MODELS_BY_TABLE,
    wire_decoders,
    wire_to_values,
)

#: A row's parameter: (from the envelope, not "values"?, its key, wire value -> stored value).
_Param = tuple[bool, str, Callable[[Any], Any] | None]
#: Per table: the INSERT OR REPLACE's SQL and its parameters in order; None for a table whose
#: wire rows leave a column to its default (users: the password hash stays on the server).
_REPLACE_PLANS: dict[str, tuple[str, tuple[_Param, ...]] | None] = {}


def replace_rows(conn: Connection, table_name: str, wires: list[dict[str, Any]]) -> None:
    """``INSERT OR REPLACE`` wire rows (``{"id", "version", "deleted", "values"}``).

    Each value goes from its wire form to its stored form in one step: the decoding
    :func:`wire_to_values` does, then the column type's own bind processor, so the stored
    values are exactly those ``conn.execute(insert(table), wire_to_values(...))`` stores; and
    the rows go to the driver's executemany without SQLAlchemy's per-row parameter
    assembly. Together that was half the cost of applying a first sync's pages.
    """
    if table_name not in _REPLACE_PLANS:
        _REPLACE_PLANS[table_name] = _replace_plan(conn, table_name)
    plan = _REPLACE_PLANS[table_name]
    if plan is None:
        table = MODELS_BY_TABLE[table_name].__table__  # type: ignore[attr-defined]
        conn.execute(
            insert(table).prefix_with("OR REPLACE"), [wire_to_values(table_name, w) for w in wires]
        )
        return
    sql, params = plan
    batch = []
    for wire in wires:
        raw = wire["values"]
        row = []
        for envelope, key, convert in params:
            value = wire[key] if envelope else raw.get(key)
            row.append(value if convert is None else convert(value))
        batch.append(tuple(row))
    conn.exec_driver_sql(sql, batch)


def _replace_plan(conn: Connection, table_name: str) -> tuple[str, tuple[_Param, ...]] | None:
    table = MODELS_BY_TABLE[table_name].__table__  # type: ignore[attr-defined]
    decoders = dict(wire_decoders(table_name))
    envelope: dict[str, Callable[[Any], Any]] = {"id": _uuid, "version": int, "deleted": bool}
    keys = [*envelope, *decoders]
    if set(keys) != set(table.c.keys()):
        return None
    dialect = conn.dialect
    compiled = insert(table).prefix_with("OR REPLACE").compile(dialect=dialect, column_keys=keys)
    order = list(compiled.positiontup or [])
    if sorted(order) != sorted(keys):
        return None
    params: list[_Param] = []
    for key in order:
        column = table.c[key]
        process = column.type.dialect_impl(dialect).bind_processor(dialect)
        if key in envelope:
            decode = envelope[key]
            if _stored_as_hex(column, dialect):
                params.append((True, key, _uuid_hex))
            elif process is None:
                params.append((True, key, decode))
            else:
                params.append((True, key, _composed(decode, process)))
            continue
        value_decode = decoders[key]
        if value_decode is not None and _stored_as_hex(column, dialect):
            params.append((False, key, _uuid_hex_or_none))
        elif value_decode is None:
            params.append((False, key, process))
        elif (
            isinstance(column.type, UTCDateTime)
            and process is not None
            and _utc_text_agrees(_composed_or_none(value_decode, process))
        ):
            params.append((False, key, _utc_text_or(_composed_or_none(value_decode, process))))
        else:
            params.append((False, key, _composed_or_none(value_decode, process)))
    return compiled.string, tuple(params)


def _stored_as_hex(column: Any, dialect: Any) -> bool:
    """Whether SQLAlchemy stores this column's UUIDs as 32 hex digits (its bind processor
    is ``value.hex``): a UUID column where the database has no UUID type."""
    ctype = column.type
    return (
        isinstance(ctype, Uuid)
        and bool(ctype.as_uuid)
        and not (dialect.supports_native_uuid and ctype.native_uuid)
    )


_CANONICAL_UUID = re.compile("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _uuid_hex(value: Any) -> str:
    """``uuid.UUID(str(value)).hex``, without building the UUID for canonical text."""
    if type(value) is uuid.UUID:
        return value.hex
    if type(value) is str and _CANONICAL_UUID.fullmatch(value):
        return value.replace("-", "")
    return uuid.UUID(str(value)).hex


def _uuid_hex_or_none(value: Any) -> str | None:
    return None if value is None else _uuid_hex(value)


#: A UTC instant as ``datetime.isoformat`` writes it (whole seconds or microseconds).
_UTC_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{6})?\+00:00")


def _utc_text(value: str) -> str:
    """How SQLite stores a UTC ISO instant: SQLAlchemy's DATETIME format, naive UTC with
    microseconds. Parsed first, so an impossible date still raises as on the slow path."""
    datetime.fromisoformat(value)
    return f"{value[:10]} {value[11:19]}.{value[20:26] if len(value) == 32 else '000000'}"


def _utc_text_or(slow: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if type(value) is str and _UTC_ISO.fullmatch(value):
            return _utc_text(value)
        return slow(value)

    return convert


def _utc_text_agrees(slow: Callable[[Any], Any]) -> bool:
    """Whether :func:`_utc_text` gives what the column's own decoding and bind processor give
    (a guard: it knows SQLite's storage format, which the processor owns)."""
    probes = (
        "2026-03-03T15:00:00+00:00",
        "2026-03-03T15:00:00.123456+00:00",
        "1999-12-31T23:59:59.000001+00:00",
    )
    try:
        return all(_utc_text(p) == slow(p) for p in probes)
    except Exception:  # a processor that does not take these at all: use it, not the shortcut
        return False


def _uuid(value: Any) -> uuid.UUID:
    return value if type(value) is uuid.UUID else uuid.UUID(str(value))


def _composed(decode: Callable[[Any], Any], process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: process(decode(value))


def _composed_or_none(
    decode: Callable[[Any], Any], process: Callable[[Any], Any] | None
) -> Callable[[Any], Any]:
    if process is None:
        return lambda value: None if value is None else decode(value)
    return lambda value: process(None if value is None else decode(value))
