"""Plans, calendars, organisations and their contacts: the data the rules engine reads."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy import false as sql_false
from sqlalchemy.orm import Mapped, mapped_column

from ..policy.calendar import BusinessCalendar
from ..policy.plans import ResponseTarget, SupportPlan
from .base import Base, SyncedMixin, synced_indexes


class Calendar(SyncedMixin, Base):
    """A business calendar, stored in exactly the ``BusinessCalendar.from_dict`` shape."""

    __tablename__ = "calendars"
    __table_args__ = synced_indexes("calendars", UniqueConstraint("tenant_id", "name"))

    name: Mapped[str] = mapped_column(String(100))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)

    def to_policy(self) -> BusinessCalendar:
        return BusinessCalendar.from_dict(self.data)


class Plan(SyncedMixin, Base):
    """A support plan; :class:`agentdesk.policy.plans.SupportPlan` says what each field means."""

    __tablename__ = "plans"
    __table_args__ = synced_indexes(
        "plans",
        UniqueConstraint("tenant_id", "key"),
        CheckConstraint("contact_allotment >= 0", name="contact_allotment_non_negative"),
        CheckConstraint(
            "conversations_per_year IS NULL OR conversations_per_year >= 0",
            name="conversations_non_negative",
        ),
    )

    key: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(100))
    rank: Mapped[int] = mapped_column(Integer)
    channels: Mapped[list[str]] = mapped_column(JSON)
    contact_allotment: Mapped[int] = mapped_column(Integer, default=1)
    conversations_per_year: Mapped[int | None] = mapped_column(Integer, default=None)
    review_bonus_conversations: Mapped[int] = mapped_column(Integer, default=0)
    min_verified_reviews: Mapped[int] = mapped_column(Integer, default=25)
    min_recent_reviews: Mapped[int] = mapped_column(Integer, default=10)
    calendar_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("calendars.id", ondelete="SET NULL"), default=None
    )
    #: ``{"1": {"minutes": 30}, "3": {"business_days": 1}}``: per-tier overrides.
    response_targets: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    @staticmethod
    def columns_from_policy(plan: SupportPlan) -> dict[str, Any]:
        """The stored columns of ``plan`` (not its tenant, id or calendar, which the caller
        knows): for an ORM row, ``Plan(**columns, ...)``, or a bulk-inserted dict."""
        d = plan.to_dict()
        return {
            "key": plan.key,
            "name": plan.name,
            "rank": plan.rank,
            "channels": d["channels"],
            "contact_allotment": plan.contact_allotment,
            "conversations_per_year": plan.conversations_per_year,
            "review_bonus_conversations": plan.review_bonus_conversations,
            "min_verified_reviews": plan.min_verified_reviews,
            "min_recent_reviews": plan.min_recent_reviews,
            "response_targets": d["response_targets"],
        }

    def to_policy(self, calendar_name: str | None = None) -> SupportPlan:
        return SupportPlan(
            key=self.key,
            name=self.name,
            rank=self.rank,
            channels=frozenset(self.channels),
            contact_allotment=self.contact_allotment,
            conversations_per_year=self.conversations_per_year,
            review_bonus_conversations=self.review_bonus_conversations,
            min_verified_reviews=self.min_verified_reviews,
            min_recent_reviews=self.min_recent_reviews,
            calendar=calendar_name,
            response_targets={
                int(tier): ResponseTarget.from_dict(target, f"response_targets.{tier}")
                for tier, target in (self.response_targets or {}).items()
            },
        )


#: The membership states an organisation can be given (the server's schema and the admin
#: screen offer these; intake records "unknown" for an organisation it had to create).
Membership = Literal["active", "trial", "lapsed"]


class Organisation(SyncedMixin, Base):
    """A customer organisation: its plan, membership and review counts (entitlements, seed 000)."""

    __tablename__ = "organisations"
    __table_args__ = synced_indexes(
        "organisations",
        CheckConstraint("verified_reviews >= 0", name="verified_reviews_non_negative"),
        CheckConstraint("recent_reviews >= 0", name="recent_reviews_non_negative"),
    )

    name: Mapped[str] = mapped_column(String(200), index=True)
    plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("plans.id", ondelete="RESTRICT"))
    #: Membership status as the customer knows it ("active", "trial", "lapsed").
    membership: Mapped[str] = mapped_column(String(32), default="active")
    member_since: Mapped[datetime | None] = mapped_column(default=None)
    verified_reviews: Mapped[int] = mapped_column(Integer, default=0)
    recent_reviews: Mapped[int] = mapped_column(Integer, default=0)


class Contact(SyncedMixin, Base):
    """A person at a customer organisation; validated contacts hold the plan's slots (seed 003)."""

    __tablename__ = "contacts"
    __table_args__ = synced_indexes("contacts")

    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(50), default=None)
    validated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_false())
    validated_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    validated_at: Mapped[datetime | None] = mapped_column(default=None)
