"""Declarative base, column types and the synced-row mixin."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import uuid6
from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    Index,
    MetaData,
    Uuid,
    event,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column
from sqlalchemy.types import TypeDecorator

# Stable constraint names so Alembic migrations are identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> uuid.UUID:
    """A UUIDv7: made by whoever creates the row (desktop or server), roughly time-ordered."""
    value: uuid.UUID = uuid6.uuid7()
    return uuid.UUID(bytes=value.bytes)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC on every engine.

    SQLite has no time-zone type and hands back naive values; this type refuses naive input
    (a client's naive datetime is a bug, not "probably UTC") and always returns aware UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; a time zone is required")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def str_enum(enum_cls: type[StrEnum], name: str) -> Enum:
    """A portable enum column: VARCHAR plus a CHECK constraint, never a native PG enum type
    (native enums need their own migrations for every new value)."""
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda cls: [member.value for member in cls],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: dict[Any, Any] = {
        datetime: UTCDateTime(),
        uuid.UUID: Uuid(as_uuid=True),
    }


class SyncedMixin:
    """Columns every synced row has.

    ``version`` is 0 until the server stamps the row; after that it is the tenant counter value
    of the transaction that last changed it, so "changed since version N" is an indexed read and
    versions become visible in commit order. ``deleted`` is a tombstone: a delete is a change that
    must reach every replica.
    """

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    @declared_attr
    def tenant_id(cls) -> Mapped[uuid.UUID]:
        return mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))


def synced_indexes(table: str, *extra: Any) -> tuple[Any, ...]:
    """``__table_args__`` for a synced table: the "changed since version N" index first."""
    return (Index(f"ix_{table}_tenant_version", "tenant_id", "version"), *extra)


@event.listens_for(SyncedMixin, "init", propagate=True)
def _assign_id_on_construction(target: SyncedMixin, _args: Any, kwargs: dict[str, Any]) -> None:
    """Whoever creates a synced row names it, at once: a desktop can refer to a ticket it made
    offline (events, time entries) long before any server has seen it."""
    if kwargs.get("id") is None:
        kwargs["id"] = new_id()
    kwargs.setdefault("version", 0)
    kwargs.setdefault("deleted", False)
