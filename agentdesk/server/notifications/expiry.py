"""Prepaid-hours expiry warnings (seed 001: 1-on-1 hours are used within 90 days of purchase or
forfeited, never refunded).

A customer's validated contacts and the account's consultant hear, ``WARN_BEFORE`` ahead, that
a block's unused hours will expire. Each warning is owed once per block and threshold, whatever
happens: the notification carries a ``once_key`` that the database keeps unique per team, so a
restart, a second check in the same process, or several server processes checking at once all
end with one message (the loser's insert fails on the key and is dropped in its savepoint). The
warning is then an ordinary outbox notification, delivered by the sender like every other.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ...models import (
    Contact,
    Notification,
    NotificationKind,
    Role,
    Tenant,
    User,
    utcnow,
)
from ...models.billing import Appointment
from ...models.db import session_scope
from ...queries.contracts import ExpiringHours, expiring_hours
from . import outbox

log = logging.getLogger(__name__)

#: How long before a block expires its warning goes out. A tuple, so a later reminder (say,
#: 3 days) is one more threshold, owed once on its own.
WARN_BEFORE: tuple[timedelta, ...] = (timedelta(days=14),)


def once_key(block_id: str, before: timedelta) -> str:
    return f"prepaid_expiry:{block_id}:{before.days}d"


def queue_expiry_warnings(
    sessions: sessionmaker[Session],
    domain: str,
    now: datetime | None = None,
    thresholds: tuple[timedelta, ...] = WARN_BEFORE,
) -> int:
    """Queue every warning owed at ``now`` and not queued yet; returns how many were queued."""
    now = now or utcnow()
    with session_scope(sessions) as s:
        tenants = list(s.scalars(select(Tenant.id).order_by(Tenant.created_at)))
    queued = 0
    for tenant_id in tenants:
        for before in thresholds:
            with session_scope(sessions) as s:
                queued += _queue_for(s, tenant_id, before, now, domain)
    return queued


def _queue_for(
    s: Session, tenant_id: uuid.UUID, before: timedelta, now: datetime, domain: str
) -> int:
    due = expiring_hours(s, now, before, tenant_id=tenant_id)
    if not due:
        return 0
    keys = {e.block_id: once_key(e.block_id, before) for e in due}
    done = set(
        s.scalars(
            select(Notification.once_key).where(
                Notification.tenant_id == tenant_id, Notification.once_key.in_(list(keys.values()))
            )
        )
    )
    tenant = s.get(Tenant, tenant_id)
    assert tenant is not None
    queued = 0
    for item in due:
        key = keys[item.block_id]
        if key in done:
            continue
        pending = _warning(s, tenant, item, key)
        if not pending.recipients:
            continue  # nobody to tell: no validated contact, no consultant with an address
        try:
            with s.begin_nested():
                outbox.write(s, tenant_id, [pending], now, domain, cause="prepaid expiry")
        except IntegrityError:
            continue  # another process queued this one first
        queued += 1
    return queued


def _warning(s: Session, tenant: Tenant, item: ExpiringHours, key: str) -> outbox.Pending:
    contacts = s.scalars(
        select(Contact)
        .where(
            Contact.organisation_id == item.organisation_id,
            Contact.deleted.is_(False),
            Contact.validated.is_(True),
        )
        .order_by(Contact.name, Contact.id)
    ).all()
    people = [outbox.Recipient(c.email, c.name, c.id) for c in contacts]
    consultant = account_consultant(s, item.organisation_id)
    if consultant is not None and consultant.email:
        people.append(outbox.Recipient(consultant.email, consultant.display_name))
    zone = ZoneInfo(tenant.timezone)
    hours = item.remaining / 60
    context = {
        "team": tenant.name,
        "ref": item.organisation,
        "organisation": item.organisation,
        "hours": f"{hours:g} hour{'s' if hours != 1 else ''}",
        "expires": f"{item.expires_at.astimezone(zone):%A %d %B %Y at %H:%M} ({tenant.timezone})",
    }
    kind = NotificationKind.PREPAID_EXPIRY
    pending = outbox.make(
        kind, None, people, context, outbox.team_templates(s, tenant.id).get(kind)
    )
    pending.once_key = key
    return pending


def account_consultant(s: Session, organisation_id: uuid.UUID) -> User | None:
    """The account's consultant: whoever the customer's latest 1-on-1 appointment is with
    (active consultants only)."""
    return s.scalar(
        select(User)
        .join(Appointment, Appointment.consultant_id == User.id)
        .where(
            Appointment.organisation_id == organisation_id,
            Appointment.deleted.is_(False),
            User.active.is_(True),
            User.deleted.is_(False),
            User.role == Role.CONSULTANT,
        )
        .order_by(Appointment.starts_at.desc(), Appointment.id)
        .limit(1)
    )


class ExpiryWatch:
    """Checks for owed warnings at start and then every ``interval`` in the server process."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        domain: str,
        interval: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions, self.domain, self.interval, self.clock = sessions, domain, interval, clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="expiry-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                queued = queue_expiry_warnings(self.sessions, self.domain, self.clock())
                if queued:
                    log.info("queued %d prepaid-hours expiry warning(s)", queued)
            except Exception:  # a database hiccup must not end the checks for good
                log.exception("prepaid-hours expiry check failed; trying again later")
            self._stop.wait(self.interval.total_seconds())
