"""The SMTP sender: delivers the outbox, one recipient at a time, exactly once each.

Each delivery row is one recipient of one notification, with a Message-ID fixed when it was
queued. The sender *claims* a batch of due deliveries in a short transaction (PostgreSQL:
``SELECT ... FOR UPDATE SKIP LOCKED``, so several server processes take disjoint batches without
waiting on each other; SQLite: its single writer), marking them ``sending`` with a lease, then
talks SMTP outside any transaction, then records each outcome together with the ticket's history
line ("Email sent to ...", or a note that it was not) in one transaction. So:

* a refused recipient fails (or retries) alone: the other recipients have rows of their own,
  and a message always goes to exactly one recipient;
* the mail server being down puts the batch back with a backoff; nothing is lost;
* two processes never hold the same delivery. The one gap no outbox closes: if a process dies
  after the server accepted a message but before the row says so, the lease expires and the
  message is sent again, with the same Message-ID, which receiving systems use to drop repeats.

Credentials come from the environment (``AGENTDESK_SMTP_*``, read once at start: ``config``)
and are never stored.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, parseaddr
from typing import NamedTuple

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from ...models import DeliveryStatus, Notification, NotificationDelivery, utcnow
from ...models.db import session_scope
from .config import SmtpConfig
from .history import add_failure_notes, add_sent_events

log = logging.getLogger(__name__)


class HeaderRefused(ValueError):
    """A header value holds a line break: it could smuggle headers into the message."""


def _header(value: str, name: str) -> str:
    if "\r" in value or "\n" in value:
        raise HeaderRefused(f"the {name} header holds a line break; refused")
    return value


#: UTF-8 bodies as quoted-printable (readable, 7-bit safe); headers encoded only when needed.
_UTF8 = Charset("utf-8")
_UTF8.header_encoding = QP
_UTF8.body_encoding = QP


def _address(value: str, name: str) -> str:
    display, address = parseaddr(_header(value, name))
    return formataddr((display, address), charset=_UTF8) if display else address


def _text_header(value: str, name: str) -> str | Header:
    value = _header(value, name)
    return value if value.isascii() else Header(value, _UTF8, header_name=name)


def build_message(
    config: SmtpConfig, delivery: NotificationDelivery, note: Notification
) -> Message:
    """The message for one recipient, built with the ``compat32`` MIME classes: the
    ``EmailMessage`` API parsed and re-folded every header through its registry, which was
    ~40% of the sender's time per message (docs/performance.md). Every header value is refused
    if it holds a line break; non-ASCII ones are RFC 2047-encoded."""
    msg = MIMEMultipart("alternative")
    msg["From"] = _address(config.sender, "From")
    msg["To"] = formataddr(
        (_header(delivery.name, "To"), _header(delivery.email, "To")), charset=_UTF8
    )
    msg["Subject"] = _text_header(note.subject, "Subject")  # type: ignore[assignment]
    msg["Message-ID"] = _header(delivery.message_id, "Message-ID")
    msg["Date"] = format_datetime(note.created_at)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.attach(MIMEText(note.body_text, "plain", _UTF8))  # type: ignore[arg-type]
    msg.attach(MIMEText(note.body_html, "html", _UTF8))  # type: ignore[arg-type]
    return msg


@dataclass(frozen=True)
class RetryPolicy:
    first: timedelta = timedelta(seconds=30)
    longest: timedelta = timedelta(hours=1)
    attempts: int = 8
    #: How long a claimed delivery is ours before another process may take it over.
    lease: timedelta = timedelta(minutes=5)
    #: How often recording a batch's outcomes is tried before the states are recorded alone,
    #: and the pause between tries (see ``Sender._record``).
    record_tries: int = 3
    record_pause: timedelta = timedelta(milliseconds=200)

    def delay(self, attempts: int) -> timedelta:
        delay: timedelta = self.first * (2 ** max(attempts - 1, 0))
        return delay if delay < self.longest else self.longest


class Outcome(NamedTuple):
    """What became of one claimed delivery."""

    delivery_id: uuid.UUID
    tenant_id: uuid.UUID
    #: Attempts before this one.
    attempts: int
    #: None: the mail server accepted it.
    error: str | None
    #: The server refused it for good (5xx), or it can never be sent (a header refused).
    permanent: bool


@dataclass
class BatchResult:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    retrying: int = 0


class Sender:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: SmtpConfig,
        retry: RetryPolicy | None = None,
        batch: int = 200,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.config = config
        self.retry = retry or RetryPolicy()
        self.batch = batch
        self.clock = clock

    # ----------------------------------------------------------------- claim and record

    def claim(self) -> list[uuid.UUID]:
        now = self.clock()
        with session_scope(self.sessions) as s:
            due = (
                select(NotificationDelivery.id)
                .where(
                    or_(
                        NotificationDelivery.status == DeliveryStatus.QUEUED,
                        NotificationDelivery.status == DeliveryStatus.SENDING,
                    ),  # lease expired
                    NotificationDelivery.next_attempt_at <= now,
                )
                .order_by(NotificationDelivery.next_attempt_at, NotificationDelivery.id)
                .limit(self.batch)
            )
            if s.get_bind().dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            ids = list(s.scalars(due))
            if ids:
                s.execute(
                    update(NotificationDelivery)
                    .where(NotificationDelivery.id.in_(ids))
                    .values(status=DeliveryStatus.SENDING, next_attempt_at=now + self.retry.lease)
                )
        return ids

    def _load(self, ids: list[uuid.UUID]) -> list[tuple[NotificationDelivery, Notification]]:
        with session_scope(self.sessions) as s:
            rows = s.execute(
                select(NotificationDelivery, Notification)
                .join(Notification, Notification.id == NotificationDelivery.notification_id)
                .where(NotificationDelivery.id.in_(ids))
                .order_by(NotificationDelivery.next_attempt_at, NotificationDelivery.id)
            ).all()
            out = [(d, n) for d, n in rows]
            s.expunge_all()
        return out

    def _record(self, outcomes: list[Outcome]) -> None:
        """Record what became of each claimed delivery, one transaction per tenant: the
        deliveries' new states and their tickets' history (sent to whom, or a note that it was
        not) commit together, the sent ones (nearly all, usually) in one statement.

        A transaction that fails is tried again (``RetryPolicy.record_tries``): the mail server
        has the messages already, and a delivery left claimed would go out again once its
        lease ends. If it keeps failing, the states are recorded alone (logged as an error):
        a history line is worth less than not sending a customer the same email again. Only
        if that fails too does the error propagate, leaving the deliveries claimed."""
        if not outcomes:
            return
        now = self.clock()
        by_tenant: dict[uuid.UUID, list[Outcome]] = {}
        for outcome in outcomes:
            by_tenant.setdefault(outcome.tenant_id, []).append(outcome)
        for tenant_id, group in by_tenant.items():
            self._record_tenant(tenant_id, group, now)

    def _record_tenant(self, tenant_id: uuid.UUID, group: list[Outcome], now: datetime) -> None:
        tries = max(self.retry.record_tries, 1)
        for attempt in range(1, tries + 1):
            try:
                with session_scope(self.sessions) as s:
                    self._write_outcomes(s, tenant_id, group, now, history=True)
                return
            except Exception as exc:  # the database's or the history's: tried again the same
                log.warning(
                    "recording %d deliveries failed (try %d of %d): %s",
                    len(group),
                    attempt,
                    tries,
                    exc,
                )
                if attempt < tries:
                    time.sleep(self.retry.record_pause.total_seconds())
        log.error(
            "recording %d deliveries with their history lines kept failing; recording their "
            "states alone so that none is sent again (the tickets' histories miss them): %s",
            len(group),
            ", ".join(str(o.delivery_id) for o in group),
        )
        with session_scope(self.sessions) as s:
            self._write_outcomes(s, tenant_id, group, now, history=False)

    def _write_outcomes(
        self,
        s: Session,
        tenant_id: uuid.UUID,
        group: list[Outcome],
        now: datetime,
        *,
        history: bool,
    ) -> None:
        table = NotificationDelivery
        sent = [o.delivery_id for o in group if o.error is None]
        gave_up: dict[uuid.UUID, str] = {}
        if sent:
            s.execute(
                update(table)
                .where(table.id.in_(sent))
                .values(
                    status=DeliveryStatus.SENT,
                    sent_at=now,
                    last_error="",
                    attempts=table.attempts + 1,
                )
            )
        for o in group:
            if o.error is None:
                continue
            values: dict[str, object]
            if o.permanent or o.attempts + 1 >= self.retry.attempts:
                gave_up[o.delivery_id] = o.error
                values = {
                    "status": DeliveryStatus.FAILED,
                    "last_error": o.error[:2000],
                    "attempts": o.attempts + 1,
                }
            else:
                values = {
                    "status": DeliveryStatus.QUEUED,
                    "last_error": o.error[:2000],
                    "attempts": o.attempts + 1,
                    "next_attempt_at": now + self.retry.delay(o.attempts + 1),
                }
            s.execute(update(table).where(table.id == o.delivery_id).values(**values))
        if history:
            add_sent_events(s, tenant_id, sent, now)  # the tickets' histories: sent to whom
            add_failure_notes(s, tenant_id, gave_up, now)

    def _release(self, rows: list[tuple[NotificationDelivery, Notification]], error: str) -> None:
        """The server could not be reached: each unsent delivery counts an attempt and waits."""
        self._record([Outcome(d.id, d.tenant_id, d.attempts, error, False) for d, _ in rows])

    # ----------------------------------------------------------------- SMTP

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        context = ssl.create_default_context(cafile=c.ca_file)
        if not c.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        smtp: smtplib.SMTP
        if c.security == "tls":
            smtp = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout, context=context)
        else:
            smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout)
            if c.security == "starttls":
                smtp.starttls(context=context)
        if c.username and c.password:
            smtp.login(c.username, c.password)
        return smtp

    def run_once(self) -> BatchResult:
        """Claim one batch and deliver it over one connection."""
        ids = self.claim()
        result = BatchResult(claimed=len(ids))
        if not ids:
            return result
        rows = self._load(ids)
        try:
            smtp = self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("mail server unreachable: %s", exc)
            self._release(rows, f"mail server unreachable: {exc}")
            result.retrying = len(rows)
            return result
        outcomes: list[Outcome] = []
        try:
            for i, (delivery, note) in enumerate(rows):
                try:
                    msg = build_message(self.config, delivery, note)
                    # send_message: CRLF line ends. The envelope sender is the bare address
                    # (a non-ASCII display name there would ask the server for SMTPUTF8).
                    smtp.send_message(
                        msg, from_addr=parseaddr(self.config.sender)[1], to_addrs=[delivery.email]
                    )
                except HeaderRefused as exc:
                    outcomes.append(_outcome(delivery, str(exc), True))
                except smtplib.SMTPRecipientsRefused as exc:
                    code, text = next(iter(exc.recipients.values()))
                    outcomes.append(_outcome(delivery, f"{code} {_text(text)}", code >= 500))
                except smtplib.SMTPResponseException as exc:
                    outcomes.append(
                        _outcome(
                            delivery,
                            f"{exc.smtp_code} {_text(exc.smtp_error)}",
                            exc.smtp_code >= 500,
                        )
                    )
                    if exc.smtp_code in (421,):  # the server is closing the connection
                        self._record(outcomes)
                        self._release(rows[i + 1 :], "the mail server closed the connection")
                        return _tally(result, outcomes, len(rows) - i - 1)
                except (OSError, smtplib.SMTPException) as exc:
                    # The connection broke: this one and the rest wait for the next round.
                    self._record(outcomes)
                    self._release(rows[i:], f"connection lost: {exc}")
                    return _tally(result, outcomes, len(rows) - i)
                else:
                    outcomes.append(_outcome(delivery, None, False))
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
        self._record(outcomes)
        return _tally(result, outcomes, 0)

    def drain(self, max_batches: int = 1000) -> BatchResult:
        """Deliver until nothing is due (tests, benchmarks)."""
        total = BatchResult()
        for _ in range(max_batches):
            r = self.run_once()
            if not r.claimed:
                break
            total.claimed += r.claimed
            total.sent += r.sent
            total.failed += r.failed
            total.retrying += r.retrying
        return total


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _outcome(delivery: NotificationDelivery, error: str | None, permanent: bool) -> Outcome:
    return Outcome(delivery.id, delivery.tenant_id, delivery.attempts, error, permanent)


def _tally(result: BatchResult, outcomes: list[Outcome], released: int) -> BatchResult:
    result.sent += sum(1 for o in outcomes if o.error is None)
    result.failed += sum(1 for o in outcomes if o.error is not None and o.permanent)
    result.retrying += released + sum(
        1 for o in outcomes if o.error is not None and not o.permanent
    )
    return result


class SenderThread:
    """Runs the sender in the server process while SMTP is configured."""

    def __init__(self, sender: Sender, interval: float = 1.0) -> None:
        self.sender = sender
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="smtp-sender", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.sender.run_once().claimed > 0
            except Exception:  # a database hiccup must not kill delivery for good
                log.exception("notification sender failed; retrying")
                busy = False
            if not busy:
                self._stop.wait(self.interval)


def start_sender(sessions: sessionmaker[Session], config: SmtpConfig | None) -> SenderThread | None:
    """Start delivering if SMTP is configured (``ServerSettings.smtp``, read at start);
    ``None`` (local mode): mail stays queued."""
    if config is None:
        log.info("email delivery is off (no AGENTDESK_SMTP_HOST): notifications stay queued")
        return None
    thread = SenderThread(Sender(sessions, config))
    thread.start()
    return thread
