"""Tenants (support teams), their version counter, users and the server's auth records."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String, true
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, SyncedMixin, new_id, str_enum, synced_indexes, utcnow


class Role(StrEnum):
    AGENT = "agent"
    COORDINATOR = "coordinator"
    CONSULTANT = "consultant"
    LEAD = "lead"
    ADMIN = "admin"


class Tenant(Base):
    """A support team: the unit of isolation. Nobody reads another tenant's rows."""

    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    #: The team's time zone: calendar years for entitlements and billing days are counted in it.
    timezone: Mapped[str] = mapped_column(String(64), default="America/New_York")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TenantCounter(Base):
    """The per-tenant version counter.

    Every write transaction increments this row and stamps the rows it changes with the new
    value. Because the row is locked until commit, a transaction that took version N+1 cannot
    commit before the one holding N, so a reader that has seen N never misses a row stamped N
    that commits late (a bare sequence or a timestamp would allow exactly that).
    """

    __tablename__ = "tenant_counters"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class User(SyncedMixin, Base):
    """A member of the support team. Synced to desktops without the password hash."""

    __tablename__ = "users"
    __table_args__ = synced_indexes("users")

    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[Role] = mapped_column(str_enum(Role, "user_role"))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    #: argon2 hash; never leaves the server (sync serialisers skip it).
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuthToken(Base):
    """An opaque bearer token. Only its SHA-256 is stored, so a database leak leaks no token."""

    __tablename__ = "auth_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)


class LoginFailure(Base):
    """One failed login, for rate limiting that holds across server processes."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_username_at", "username", "at"),
        Index("ix_login_failures_address_at", "address", "at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class RateLimitHit(Base):
    """One counted action of a client address (a portal submission), so a rate limit holds
    across every server process sharing the database, as login failures do. Rows older than
    the limit's window are deleted as the address comes back."""

    __tablename__ = "rate_limit_hits"
    __table_args__ = (Index("ix_rate_limit_hits_scope_key_at", "scope", "key", "at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    #: What is limited ("portal"): each limit counts its own actions.
    scope: Mapped[str] = mapped_column(String(32))
    #: Who is limited: the client address.
    key: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
