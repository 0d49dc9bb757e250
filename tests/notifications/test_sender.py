"""Delivery against a real SMTP server (aiosmtpd on 127.0.0.1): the right recipients, subject
and body per kind, exactly once per recipient through outages and refusals, and two sender
processes on PostgreSQL delivering each message once."""

from __future__ import annotations

import email
import email.policy
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import insert, select

from agentdesk.models import (
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    NotificationKind,
    TicketEvent,
    new_id,
    utcnow,
)
from agentdesk.models.db import session_scope
from agentdesk.server.notifications.config import SmtpConfig
from agentdesk.server.notifications.sender import RetryPolicy, Sender, start_sender
from tests.notifications.conftest import Api, ticket_args
from tests.plugins.live_team import free_port


class Inbox:
    """An aiosmtpd handler: keeps every accepted message; refuses the addresses in ``refuse``."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse: set[str] = set()
        self.lock = threading.Lock()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        with self.lock:
            self.messages.append(msg)
        return "250 Message accepted"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]


class Smtp:
    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = Inbox()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def config(self) -> SmtpConfig:
        return SmtpConfig(
            host="127.0.0.1",
            port=self.port,
            security="none",
            sender="Acme Support <support@acme.test>",
            timeout=5,
        )


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    server = Smtp()
    server.start()
    yield server
    server.stop()


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


def _deliveries(api: Api) -> list[NotificationDelivery]:
    with session_scope(api.world.sessions) as s:
        rows = list(s.scalars(select(NotificationDelivery).order_by(NotificationDelivery.email)))
        s.expunge_all()
    return rows


def test_each_kind_reaches_its_recipients_with_its_words(api: Api, smtp: Smtp) -> None:
    w = api.world
    args = ticket_args(w, subject="Checkout <b>down</b>")
    tid = args["ticket_id"]
    api.push(
        "coordinator",
        ("create_ticket", args),
        (
            "assign_ticket",
            {"ticket_id": tid, "assignee_id": str(w.users["agent"]), "expected_assignee_id": None},
        ),
    )
    api.push("agent", ("create_ticket", ticket_args(w, who="cy")))
    result = Sender(w.sessions, smtp.config()).drain()
    assert result.sent == 5
    assert result.failed == 0
    got = sorted((str(m["To"]), str(m["Subject"])) for m in smtp.inbox.messages)
    assert [to for to, _ in got] == [
        "Ann <ann@globex.test>",
        "Ann <ann@globex.test>",
        "Ann <ann@globex.test>",
        "Bo <bo@globex.test>",
        "Cy <cy@globex.test>",
    ]
    subjects = {s for _, s in got}
    assert any(s.startswith("[AD-") and "We received your request" in s for s in subjects)
    assert any("Agent has your request" in s for s in subjects)
    assert any("How would you like us to proceed?" in s for s in subjects)
    ids = {d.message_id for d in _deliveries(api)}
    for msg in smtp.inbox.messages:
        assert msg["Auto-Submitted"] == "auto-generated"
        assert msg["Message-ID"] in ids
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        assert text is not None
        assert html is not None
        if "received" in str(msg["Subject"]):
            assert "Checkout <b>down</b>" in text.get_content()
            assert "Checkout &lt;b&gt;down&lt;/b&gt;" in html.get_content()
    assert all(d.status is DeliveryStatus.SENT for d in _deliveries(api))
    assert Sender(w.sessions, smtp.config()).drain().claimed == 0  # nothing sent twice


def test_smtp_down_the_outbox_holds_retries_and_delivers_once(api: Api) -> None:
    w = api.world
    api.push("agent", ("create_ticket", ticket_args(w, who="cy")))  # 3 recipients
    down = Smtp()  # not started: connections are refused
    clock = Clock()
    sender = Sender(
        w.sessions, down.config(), RetryPolicy(first=timedelta(seconds=30)), clock=clock
    )
    first = sender.run_once()
    assert first.retrying == 3
    rows = _deliveries(api)
    assert all(d.status is DeliveryStatus.QUEUED and d.attempts == 1 for d in rows)
    assert all("unreachable" in d.last_error for d in rows)
    assert sender.run_once().claimed == 0  # backing off: not due yet
    clock.now += timedelta(seconds=31)
    assert sender.run_once().retrying == 3
    assert all(d.attempts == 2 for d in _deliveries(api))
    down.start()  # the mail server is back
    try:
        clock.now += timedelta(seconds=30)
        assert sender.run_once().claimed == 0  # the second delay is twice the first
        clock.now += timedelta(seconds=31)
        assert sender.drain().sent == 3
        clock.now += timedelta(hours=2)
        assert sender.drain().claimed == 0
        assert sorted(str(m["To"]) for m in down.inbox.messages) == [
            "Ann <ann@globex.test>",
            "Bo <bo@globex.test>",
            "Cy <cy@globex.test>",
        ]
        assert all(d.status is DeliveryStatus.SENT and d.attempts == 3 for d in _deliveries(api))
    finally:
        down.stop()


def test_a_refused_recipient_fails_alone_and_nobody_gets_a_resend(api: Api, smtp: Smtp) -> None:
    w = api.world
    api.push("agent", ("create_ticket", ticket_args(w, who="cy")))
    smtp.inbox.refuse = {"ann@globex.test"}
    clock = Clock()
    sender = Sender(w.sessions, smtp.config(), clock=clock)
    result = sender.drain()
    assert (result.sent, result.failed) == (2, 1)
    for _ in range(3):
        clock.now += timedelta(hours=2)
        assert sender.drain().claimed == 0
    assert len(smtp.inbox.to("bo@globex.test")) == 1
    assert len(smtp.inbox.to("cy@globex.test")) == 1
    assert smtp.inbox.to("ann@globex.test") == []
    ann = next(d for d in _deliveries(api) if d.email == "ann@globex.test")
    assert ann.status is DeliveryStatus.FAILED
    assert ann.last_error.startswith("550")
    # The ticket's history tells the agent; desktops get the note with their next pull.
    with session_scope(w.sessions) as s:
        notes = [e for e in s.scalars(select(TicketEvent)) if e.data.get("delivery_failed")]
        assert [n.body[:45] for n in notes] == ['Email not delivered to ann@globex.test: "[AD-']
        assert "550" in notes[0].body
        assert notes[0].version > 0


def test_line_breaks_in_header_values_are_refused(api: Api, smtp: Smtp) -> None:
    w = api.world
    _queue(api, 1, subject="Hello\r\nBcc: everyone@example.test")
    result = Sender(w.sessions, smtp.config()).drain()
    assert result.failed == 1
    assert smtp.inbox.messages == []
    [row] = _deliveries(api)
    assert "line break" in row.last_error


def test_without_smtp_mail_stays_queued(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    w = api.world
    api.push("agent", ("create_ticket", ticket_args(w)))
    monkeypatch.delenv("AGENTDESK_SMTP_HOST", raising=False)
    assert SmtpConfig.from_env({}) is None
    assert start_sender(w.sessions, None) is None
    assert [d.status for d in _deliveries(api)] == [DeliveryStatus.QUEUED]


def test_the_config_never_shows_the_password() -> None:
    config = SmtpConfig.from_env(
        {
            "AGENTDESK_SMTP_HOST": "mail.test",
            "AGENTDESK_SMTP_SECURITY": "tls",
            "AGENTDESK_SMTP_USERNAME": "desk",
            "AGENTDESK_SMTP_PASSWORD": "hunter2",
        }
    )
    assert config is not None
    assert config.port == 465
    assert config.password == "hunter2"
    assert "hunter2" not in repr(config)


def _queue(api: Api, n: int, subject: str = "Bulk") -> None:
    with session_scope(api.world.sessions) as s:
        notes = [
            {
                "id": new_id(),
                "tenant_id": api.world.tenant,
                "kind": NotificationKind.REPLY,
                "ticket_id": None,
                "subject": subject,
                "body_text": "hello",
                "body_html": "<p>hello</p>",
                "created_at": utcnow(),
                "cause": "",
            }
            for _ in range(n)
        ]
        s.execute(insert(Notification), notes)
        s.execute(
            insert(NotificationDelivery),
            [
                {
                    "id": (d := new_id()),
                    "notification_id": note["id"],
                    "tenant_id": api.world.tenant,
                    "email": f"r{i}@example.test",
                    "name": "",
                    "contact_id": None,
                    "message_id": f"<{d.hex}@acme.test>",
                    "status": DeliveryStatus.QUEUED,
                    "attempts": 0,
                    "next_attempt_at": utcnow(),
                    "last_error": "",
                    "sent_at": None,
                }
                for i, note in enumerate(notes)
            ],
        )


_WORKER = textwrap.dedent("""
    import sys
    from agentdesk.models.db import make_engine, make_session_factory
    from agentdesk.server.notifications.config import SmtpConfig
    from agentdesk.server.notifications.sender import Sender
    engine = make_engine(sys.argv[1])
    sender = Sender(make_session_factory(engine, write=True),
                    SmtpConfig(host="127.0.0.1", port=int(sys.argv[2]), security="none"),
                    batch=20)
    print(sender.drain().sent)
""")


@pytest.mark.postgres
@pytest.mark.parametrize("db_kind", ["postgresql"])
def test_two_sender_processes_deliver_each_message_once(
    api: Api, smtp: Smtp, database_url: str
) -> None:
    _queue(api, 300)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, database_url, str(smtp.port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    sent = [int(p.communicate(timeout=120)[0].strip()) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(sent) == 300
    assert min(sent) > 0  # both took part
    ids = [str(m["Message-ID"]) for m in smtp.inbox.messages]
    assert len(ids) == 300
    assert len(set(ids)) == 300


def test_leads_see_failures_with_the_reason_and_retry_only_that_recipient(
    api: Api, smtp: Smtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = api.world
    api.push("agent", ("create_ticket", ticket_args(w, who="cy")))
    smtp.inbox.refuse = {"ann@globex.test"}
    sender = Sender(w.sessions, smtp.config())
    sender.drain()
    monkeypatch.delenv("AGENTDESK_SMTP_HOST", raising=False)
    lead = api.headers("lead")
    outbox = api.client.get("/api/v1/notifications", headers=lead).json()
    assert outbox["delivery"] is False  # this server sends nothing itself: local mode
    failed = [d for d in outbox["deliveries"] if d["status"] == "failed"]
    assert [(d["email"], d["last_error"][:3]) for d in failed] == [("ann@globex.test", "550")]
    assert api.client.get("/api/v1/notifications", headers=api.headers("agent")).status_code == 403
    sent_id = next(d["id"] for d in outbox["deliveries"] if d["status"] == "sent")
    refused = api.client.post(f"/api/v1/notifications/deliveries/{sent_id}/retry", headers=lead)
    assert refused.status_code == 409

    smtp.inbox.refuse = set()
    retried = api.client.post(
        f"/api/v1/notifications/deliveries/{failed[0]['id']}/retry", headers=lead
    )
    assert retried.json()["status"] == "queued"
    assert sender.drain().sent == 1
    assert sorted(str(m["To"]) for m in smtp.inbox.messages) == [
        "Ann <ann@globex.test>",
        "Bo <bo@globex.test>",
        "Cy <cy@globex.test>",
    ]


def test_non_ascii_names_subjects_and_bodies_arrive_as_written(api: Api, smtp: Smtp) -> None:
    """The messages are built with the compat32 MIME classes (fast); every header that is not
    ASCII must still be RFC 2047-encoded so that it reads back exactly."""
    subject = "Café ☕ down: " + "a long subject that has to be folded " * 4 + "end"
    with session_scope(api.world.sessions) as s:
        note_id, delivery_id = new_id(), new_id()
        s.execute(
            insert(Notification),
            [
                {
                    "id": note_id,
                    "tenant_id": api.world.tenant,
                    "kind": NotificationKind.REPLY,
                    "ticket_id": None,
                    "subject": subject,
                    "body_text": "Grüße, Zoë\n\n— Ann",
                    "body_html": "<p>Grüße, Zoë</p>",
                    "created_at": utcnow(),
                    "cause": "",
                }
            ],
        )
        s.execute(
            insert(NotificationDelivery),
            [
                {
                    "id": delivery_id,
                    "notification_id": note_id,
                    "tenant_id": api.world.tenant,
                    "email": "zoe@example.test",
                    "name": "Zoë Ångström, Jr.",
                    "contact_id": None,
                    "message_id": f"<{delivery_id.hex}@acme.test>",
                    "status": DeliveryStatus.QUEUED,
                    "attempts": 0,
                    "next_attempt_at": utcnow(),
                    "last_error": "",
                    "sent_at": None,
                }
            ],
        )
    config = smtp.config()
    sender = Sender(
        api.world.sessions,
        SmtpConfig(
            host=config.host,
            port=config.port,
            security="none",
            sender="Équipe Support <s@acme.test>",
            timeout=5,
        ),
    )
    assert sender.drain().sent == 1
    [msg] = smtp.inbox.messages
    assert str(msg["Subject"]) == subject
    assert str(msg["To"]) == '"Zoë Ångström, Jr." <zoe@example.test>'
    assert str(msg["From"]) == "Équipe Support <s@acme.test>"
    assert msg["Message-ID"] == f"<{delivery_id.hex}@acme.test>"
    text, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None
    assert html is not None
    # Text travels in its canonical form, CRLF line ends (quoted-printable keeps them).
    assert text.get_content().replace("\r\n", "\n").rstrip("\n") == "Grüße, Zoë\n\n— Ann"
    assert html.get_content().rstrip("\r\n") == "<p>Grüße, Zoë</p>"
