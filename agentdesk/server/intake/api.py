"""``POST /api/v1/requests`` for integrations, and the leads' management of their API keys.

A key is shown once, when a lead creates it; the server keeps only its SHA-256 (like login
tokens), so a database leak leaks no key. Revoking is immediate: every request looks its key up.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field
from sqlalchemy import select, update

from ...models import ApiKey, utcnow
from ...models.db import session_scope
from ..deps import ReadSession, ServerState, StateDep, WriteSession
from ..errors import ApiError
from ..routes._common import Lead, bearer_scheme
from ..schemas import ERROR_RESPONSES, Email, PersonName, Text, _line_field
from ..schemas import Request as Body
from ..schemas import _single as single_line
from .service import CHANNELS, IntakeOutcome, IntakeRequest, submit

KEY_PREFIX = "adk_"
api_key_scheme = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An integration's key (leads create them)"
)

KeyName = Annotated[str, _line_field(100), single_line]
Subject = Annotated[str, _line_field(300), single_line]
OrgName = Annotated[str, _line_field(200), single_line]


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeyCreate(Body):
    name: KeyName


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    created_by: uuid.UUID | None
    created_at: str
    revoked: bool
    last_used_at: str | None


class ApiKeyCreated(ApiKeyOut):
    #: The key itself: shown this once, never again.
    key: str


class RequestIn(Body):
    email: Email
    name: PersonName | None = None
    organisation: OrgName
    subject: Subject
    description: Annotated[Text, Field(max_length=20_000)] = ""
    #: Seed 002's tiers: 1 production down, 2 production impaired, 3 low impact, 4 cosmetic.
    urgency: Annotated[int, Field(strict=True, ge=1, le=4)]
    #: Where the request came from; integrations usually stand in for the portal (seed 003).
    channel: Literal["portal", "email", "chat", "phone"] = "portal"


class CheckOut(BaseModel):
    name: str
    passed: bool
    words: str


class RequestOut(BaseModel):
    ticket_id: uuid.UUID
    reference: str
    status: Literal["accepted", "redirected", "flagged"]
    checks: list[CheckOut]
    next_steps: list[str]
    hours_notice: str | None
    expectation: str


assert set(CHANNELS) == {"portal", "email", "chat", "phone"}

keys_router = APIRouter(
    tags=["integrations"], responses=ERROR_RESPONSES, dependencies=[Security(bearer_scheme)]
)
requests_router = APIRouter(tags=["integrations"], responses=ERROR_RESPONSES)


def _out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        created_by=key.created_by_id,
        created_at=key.created_at.isoformat(),
        revoked=key.revoked,
        last_used_at=key.last_used_at.isoformat() if key.last_used_at else None,
    )


@keys_router.post(
    "/api-keys",
    response_model=ApiKeyCreated,
    status_code=201,
    summary="Create an integration's API key (shown once)",
)
def create_key(body: ApiKeyCreate, user: Lead, session: WriteSession) -> ApiKeyCreated:
    taken = session.scalar(
        select(ApiKey.id).where(ApiKey.tenant_id == user.tenant_id, ApiKey.name == body.name)
    )
    if taken is not None:
        raise ApiError(409, "conflict", "an API key with this name exists", "name")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        tenant_id=user.tenant_id,
        name=body.name,
        prefix=secret[:12],
        key_hash=key_hash(secret),
        created_by_id=user.id,
        created_at=utcnow(),
        revoked=False,
        settings={},
    )
    session.add(key)
    session.flush()
    return ApiKeyCreated(**_out(key).model_dump(), key=secret)


@keys_router.get(
    "/api-keys",
    response_model=list[ApiKeyOut],
    summary="The team's integration API keys (never the keys themselves)",
)
def list_keys(user: Lead, session: ReadSession) -> list[ApiKeyOut]:
    rows = session.scalars(
        select(ApiKey)
        .where(ApiKey.tenant_id == user.tenant_id)
        .order_by(ApiKey.created_at, ApiKey.name)
    )
    return [_out(k) for k in rows]


@keys_router.delete(
    "/api-keys/{key_id}", response_model=ApiKeyOut, summary="Revoke an integration's API key"
)
def revoke_key(key_id: uuid.UUID, user: Lead, session: WriteSession) -> ApiKeyOut:
    key = session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.tenant_id == user.tenant_id)
    )
    if key is None:
        raise ApiError(404, "not_found", "no API key with this id")
    if not key.revoked:
        key.revoked, key.revoked_at = True, utcnow()
    session.flush()
    return _out(key)


def integration(state: ServerState, key: str | None) -> ApiKey:
    """The calling integration, from a live key (401 otherwise)."""
    if not key:
        raise ApiError(401, "unauthorized", "an 'X-API-Key' header is required")
    with session_scope(state.read_sessions) as session:
        row = session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash(key)))
        if row is None or row.revoked:
            raise ApiError(401, "unauthorized", "the API key is not valid or was revoked")
        session.expunge(row)
    now = utcnow()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        # At most once a minute: a busy integration must not serialise on its key's row.
        with session_scope(state.write_sessions) as session:
            session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
    return row


@requests_router.post(
    "/requests",
    response_model=RequestOut,
    status_code=201,
    summary="File a support request from an integration; every check is done at the door",
)
async def file_request(
    body: RequestIn,
    state: StateDep,
    request: Request,
    key: Annotated[str | None, Security(api_key_scheme)] = None,
) -> RequestOut:
    req = IntakeRequest(
        email=body.email,
        name=body.name or "",
        organisation=body.organisation,
        subject=body.subject,
        description=body.description,
        urgency=body.urgency,
        channel=body.channel,
    )
    outcome = await run_in_threadpool(_file, state, key, req)
    return RequestOut(
        ticket_id=outcome.ticket_id,
        reference=outcome.reference,
        status=outcome.status,  # type: ignore[arg-type]
        checks=[CheckOut(name=c.name, passed=c.passed, words=c.words) for c in outcome.checks],
        next_steps=list(outcome.next_steps),
        hours_notice=outcome.hours_notice,
        expectation=outcome.expectation,
    )


def _file(state: ServerState, key: str | None, req: IntakeRequest) -> IntakeOutcome:
    """The key checked and the request filed on one worker thread: a sync dependency for the
    key took a thread of its own, and the hand-over to a thread was a tenth of the event
    loop's time per request (docs/performance.md, "Intake throughput")."""
    return submit(state, integration(state, key).tenant_id, req)
