"""The server's sync bookkeeping: which desktop belongs to whom, and what became of each
mutation it pushed. Not synced itself; it is what makes pushes idempotent."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class SyncClient(Base):
    """A desktop replica. ``last_mutation_id`` is the highest mutation id processed (applied or
    rejected); the next acceptable one is exactly one more."""

    __tablename__ = "sync_clients"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    last_mutation_id: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class MutationRecord(Base):
    """The outcome of one pushed mutation, kept so a retry is answered, not re-applied, and so
    a rejection reaches the client even if the push response was lost."""

    __tablename__ = "mutation_records"
    __table_args__ = (Index("ix_mutation_records_client_status", "client_id", "status"),)

    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sync_clients.id", ondelete="CASCADE"), primary_key=True
    )
    mutation_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    code: Mapped[str | None] = mapped_column(String(64), default=None)
    message: Mapped[str | None] = mapped_column(Text, default=None)
    field: Mapped[str | None] = mapped_column(String(200), default=None)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    processed_at: Mapped[datetime] = mapped_column(default=utcnow)
