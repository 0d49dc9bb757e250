"""The public support portal at ``/portal``: server-rendered HTML, no JavaScript.

Its own small app, mounted on the server: the form posts go through the same checks as the
intake API (its request model, then :func:`service.submit`), so the two doors cannot drift.

Abuse guards, in order: a CSRF token (double-submit: a random value in a ``SameSite=Strict``
cookie and in the form, compared in constant time), a honeypot field that people never see, a
per-address rate limit, and the API's size limits on every field (the server's body limit caps
the whole post). The rate limit is counted in the database (one small write per valid
submission, none per view), so several server processes enforce one limit.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from ...models import Calendar, Plan, RateLimitHit, utcnow
from ...models.db import session_scope
from ...policy.calendar import BusinessCalendar
from ...policy.intake import TIER_WORDS, hours_text
from ...policy.plans import seed_calendars
from ..deps import ServerState
from ..errors import ApiError, install_error_handlers
from .api import RequestIn
from .service import IntakeRequest, default_tenant, submit

CSRF_COOKIE = "portal_csrf"
_FIELDS = ("email", "name", "organisation", "subject", "description", "urgency")

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
)


class RateLimit:
    """At most ``limit`` submissions per ``window`` per client address, counted in the database
    (``rate_limit_hits``) so that every server process sharing it enforces one limit: counted
    per process, N processes behind nginx gave a client N times the limit.

    Concurrent submissions from one address are counted one at a time: on PostgreSQL under a
    transaction-scoped advisory lock on the address, on SQLite under its single writer.
    """

    SCOPE = "portal"

    def __init__(
        self,
        sessions: sessionmaker[Session],
        limit: int = 5,
        window: timedelta = timedelta(minutes=10),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions, self.limit, self.window, self.clock = sessions, limit, window, clock

    def allow(self, address: str) -> float | None:
        """``None`` if allowed (and counted), else the seconds until the next one is."""
        key = address[:64]
        now = self.clock()
        mine = (RateLimitHit.scope == self.SCOPE, RateLimitHit.key == key)
        with session_scope(self.sessions) as s:
            if s.get_bind().dialect.name == "postgresql":
                s.execute(
                    select(
                        func.pg_advisory_xact_lock(func.hashtextextended(f"{self.SCOPE}:{key}", 0))
                    )
                )
            s.execute(delete(RateLimitHit).where(*mine, RateLimitHit.at <= now - self.window))
            hits = list(s.scalars(select(RateLimitHit.at).where(*mine).order_by(RateLimitHit.at)))
            if len(hits) >= self.limit:
                wait = hits[-self.limit] + self.window - now
                return max(wait.total_seconds(), 1.0)
            s.add(RateLimitHit(scope=self.SCOPE, key=key, at=now))
        return None


def _messages(exc: ValidationError) -> dict[str, str]:
    out: dict[str, str] = {}
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else "form"
        text = str(err["msg"]).removeprefix("Value error, ")
        if name == "email":
            text = "Enter one email address, like name@example.com."
        elif name == "urgency":
            text = "Choose how urgent it is."
        elif err["type"] in ("string_too_short", "missing"):
            text = "This field is required."
        out.setdefault(name, text)
    return out


def create_portal(state: ServerState, limit: RateLimit | None = None) -> FastAPI:
    portal = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    settings = state.settings
    portal.state.rate_limit = limit or RateLimit(
        state.write_sessions,
        settings.portal_submissions_per_address,
        settings.portal_submission_window,
    )

    def team_and_hours() -> tuple[str, str]:
        from ...models import Tenant

        tenant_id = default_tenant(state)
        with session_scope(state.read_sessions) as s:
            tenant = s.get(Tenant, tenant_id)
            plan_cal = s.scalar(
                select(Calendar)
                .join(Plan, Plan.calendar_id == Calendar.id)
                .where(Plan.tenant_id == tenant_id, Plan.deleted.is_(False))
                .order_by(Plan.rank)
                .limit(1)
            )
            data = plan_cal.data if plan_cal is not None else seed_calendars()["office"][1]
            name = tenant.name if tenant is not None else "Support"
        return name, hours_text(BusinessCalendar.from_dict(data))

    def page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
        team, hours = team_and_hours()
        html = _ENV.get_template(template).render(
            team=team, hours=hours, action=context.pop("action", "/portal/"), **context
        )
        response = HTMLResponse(html, status_code=status)
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        return response

    def form(
        status: int = 200,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        problem: str = "",
    ) -> HTMLResponse:
        token = secrets.token_urlsafe(32)
        response = page(
            "form.html",
            status,
            csrf=token,
            values=values or dict.fromkeys(_FIELDS, ""),
            errors=errors or {},
            problem=problem,
            tiers=sorted(TIER_WORDS.items()),
        )
        response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", path="/portal")
        return response

    @portal.get("/", response_class=HTMLResponse)
    async def show() -> Response:
        return await run_in_threadpool(form)

    @portal.post("/", response_class=HTMLResponse)
    async def file(request: Request) -> Response:
        try:
            data = await request.form(max_files=0, max_fields=20, max_part_size=64 * 1024)
        except Exception:  # malformed multipart / urlencoded body: the client's mistake
            return await run_in_threadpool(
                form, 400, None, None, "We could not read this form. Please try again."
            )
        raw = {k: v for k, v in data.items() if isinstance(v, str)}
        values = {k: raw.get(k, "") for k in _FIELDS}
        cookie = request.cookies.get(CSRF_COOKIE, "")
        sent = raw.get("csrf_token", "")
        if not cookie or not sent or not hmac.compare_digest(cookie.encode(), sent.encode()):
            return await run_in_threadpool(
                form,
                403,
                values,
                None,
                "This form expired or did not come from this page. Please submit it again.",
            )
        if raw.get("website"):
            return await run_in_threadpool(
                form,
                422,
                values,
                None,
                "This form looks like it was filled in by an automated tool, so it was not "
                "sent. If you are a person, clear the hidden 'website' field and try again.",
            )
        try:
            body = RequestIn.model_validate(
                {
                    "email": values["email"].strip(),
                    "name": values["name"].strip() or None,
                    "organisation": values["organisation"].strip(),
                    "subject": values["subject"].strip(),
                    "description": values["description"],
                    "urgency": _urgency(values["urgency"]),
                    "channel": "portal",
                }
            )
        except ValidationError as exc:
            return await run_in_threadpool(
                form, 422, values, _messages(exc), "Please check the fields marked below."
            )
        # Counted once the form is valid: a request that would be recorded is what costs.
        address = request.client.host if request.client else "unknown"
        wait = await run_in_threadpool(portal.state.rate_limit.allow, address)
        if wait is not None:
            minutes = max(1, round(wait / 60))
            response = await run_in_threadpool(
                form,
                429,
                values,
                None,
                f"You have sent several requests in a short time. Please wait about {minutes} "
                f"minute{'s' if minutes != 1 else ''} and try again, or add to a request you "
                f"already sent by replying to its email.",
            )
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response
        req = IntakeRequest(
            email=body.email,
            name=body.name or "",
            organisation=body.organisation,
            subject=body.subject,
            description=body.description,
            urgency=body.urgency,
            channel="portal",
        )

        def record() -> HTMLResponse:
            tenant_id = default_tenant(state)
            try:
                outcome = submit(state, tenant_id, req)
            except ApiError as exc:
                return form(422, values, None, exc.message)
            return page("done.html", 201, outcome=outcome)

        return await run_in_threadpool(record)

    return portal


def mount_portal(app: FastAPI, state: ServerState) -> None:
    """``/portal/`` (Starlette redirects ``/portal`` there) as a sub-app: HTML pages stay out
    of the API's schema and its JSON error contract."""
    portal = create_portal(state)
    install_error_handlers(portal)
    app.state.portal = portal
    app.mount("/portal", portal)


def _urgency(text: str) -> int:
    """The form's urgency as a number for validation to judge; anything that is not one or two
    ASCII digits ("²", a 5,000-digit string) is 0, which validation then names as out of range.
    ``str.isdigit`` alone admits characters ``int`` refuses."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 2 else 0
