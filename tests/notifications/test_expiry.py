"""Prepaid-hours expiry warnings end to end: owed 14 days ahead to the customer's validated
contacts and the account's consultant, queued once per block and threshold however often and
from however many processes the check runs, delivered once each by the sender over SMTP."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import func, select, update

from agentdesk.models import Notification, NotificationKind, User
from agentdesk.models.db import make_engine, make_session_factory
from agentdesk.models.db import session_scope as scope
from agentdesk.server.notifications.expiry import queue_expiry_warnings
from agentdesk.server.notifications.sender import Sender
from tests.notifications.conftest import Api
from tests.notifications.test_sender import Smtp, smtp  # noqa: F401 (the SMTP fixture)

DOMAIN = "acme.test"


def _buy(api: Api, org: str, days_ago: int, hours: float) -> str:
    w = api.world
    block = str(uuid.uuid4())
    w.run(
        "lead",
        "record_hour_purchase",
        block_id=block,
        organisation_id=str(w.orgs[org]),
        minutes=int(hours * 60),
        purchased_at=(w.now - timedelta(days=days_ago)).isoformat(),
    )
    return block


def _book(api: Api, org: str, consultant: str, days_ago: int) -> None:
    w = api.world
    start = w.now - timedelta(days=days_ago)
    w.run(
        "coordinator",
        "schedule_appointment",
        appointment_id=str(uuid.uuid4()),
        organisation_id=str(w.orgs[org]),
        consultant_id=str(w.users[consultant]),
        starts_at=start.isoformat(),
        ends_at=(start + timedelta(hours=1)).isoformat(),
    )


def _warnings(api: Api) -> list[Notification]:
    with scope(api.world.sessions) as s:
        rows = list(
            s.scalars(
                select(Notification).where(Notification.kind == NotificationKind.PREPAID_EXPIRY)
            )
        )
        s.expunge_all()
    return rows


def test_a_warning_reaches_the_contacts_and_the_consultant_once(
    api: Api,
    smtp: Smtp,  # noqa: F811
    database_url: str,
) -> None:
    w = api.world
    with scope(w.sessions) as s:
        for who in ("consultant", "consultant2"):
            s.execute(
                update(User).where(User.id == w.users[who]).values(email=f"{who}@support.test")
            )
    _buy(api, "globex", days_ago=80, hours=10)  # expires in 10 days: owed
    _buy(api, "umbrella", days_ago=60, hours=5)  # expires in 30 days: not yet
    _book(api, "globex", "consultant2", days_ago=40)
    _book(api, "globex", "consultant", days_ago=20)  # the latest: the account's consultant

    # Three checks at once, each with its own engine (as separate processes would), then again
    # later (a restart): one warning.
    def check(_n: int) -> int:
        engine = make_engine(database_url)
        try:
            return queue_expiry_warnings(make_session_factory(engine, write=True), DOMAIN, w.now)
        finally:
            engine.dispose()

    with ThreadPoolExecutor(3) as pool:
        assert sum(pool.map(check, range(3))) == 1
    assert queue_expiry_warnings(w.sessions, DOMAIN, w.now + timedelta(days=2)) == 0
    [note] = _warnings(api)
    assert "10 hours of your prepaid 1-on-1 hours expire on" in note.subject

    result = Sender(w.sessions, smtp.config()).drain()
    assert result.sent == 3
    assert sorted(str(m["To"]) for m in smtp.inbox.messages) == [
        "Ann <ann@globex.test>",
        "Bo <bo@globex.test>",
        "Consultant <consultant@support.test>",
    ]
    body = smtp.inbox.messages[0].get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Globex has 10 hours of prepaid 1-on-1 Tech Support left" in text
    assert "forfeited and not refunded" in text
    assert Sender(w.sessions, smtp.config()).drain().sent == 0
    assert len(smtp.inbox.messages) == 3


def test_used_up_or_far_off_blocks_owe_nothing_and_each_block_is_owed_its_own(api: Api) -> None:
    w = api.world
    _buy(api, "globex", days_ago=85, hours=1)
    w.run(
        "consultant",
        "add_time_entry",
        entry_id=str(uuid.uuid4()),
        note="worked",
        organisation_id=str(w.orgs["globex"]),
        started_at=(w.now - timedelta(days=3)).isoformat(),
        ended_at=(w.now - timedelta(days=3) + timedelta(hours=1)).isoformat(),
    )
    assert queue_expiry_warnings(w.sessions, DOMAIN, w.now) == 0  # all used: nothing to lose
    _buy(api, "globex", days_ago=70, hours=2)  # expires in 20 days
    assert queue_expiry_warnings(w.sessions, DOMAIN, w.now) == 0
    assert queue_expiry_warnings(w.sessions, DOMAIN, w.now + timedelta(days=7)) == 1
    _buy(api, "globex", days_ago=78, hours=3)  # a second block, owed its own warning
    assert queue_expiry_warnings(w.sessions, DOMAIN, w.now + timedelta(days=7)) == 1
    with scope(w.sessions) as s:
        assert (
            s.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.once_key.is_not(None))
            )
            == 2
        )
