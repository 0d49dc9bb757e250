"""``/api/v1/sync``: push, pull and poke."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, Security
from fastapi.concurrency import run_in_threadpool
from pydantic_core import to_json

from ..models import User
from ..models.db import session_scope
from ..models.versioning import current_version
from ..sync.bounds import MAX_WIRE_INT
from ..sync.protocol import (
    MAX_POKE_WAIT,
    PokeResponse,
    PullRequest,
    PullResponse,
    PushRequest,
    PushResponse,
)
from . import sync_service
from .deps import CurrentUser, ServerState, StateDep, current_user
from .routes._common import bearer_scheme
from .schemas import ERROR_RESPONSES

router = APIRouter(
    prefix="/sync",
    tags=["sync"],
    responses=ERROR_RESPONSES,
    dependencies=[Security(bearer_scheme)],
)

#: How often a waiting poke re-reads the version from the database, in case a notification was
#: lost (a PostgreSQL listener reconnecting, say).
RECHECK_SECONDS = 2.0


@router.post(
    "/push",
    response_model=PushResponse,
    summary="Apply a batch of this client's mutations, each exactly once",
)
def push(body: PushRequest, state: StateDep, user: CurrentUser) -> PushResponse:
    response = sync_service.push(state, user, body)
    return response


@router.post(
    "/pull",
    response_model=PullResponse,
    summary="Rows changed since the cursor, in version order, with tombstones",
)
def pull(body: PullRequest, state: StateDep, user: CurrentUser) -> Response:
    # Encoded straight from the page's dicts (a PullResponse's exact JSON): validating a few
    # thousand changes into models only to serialise them again cost more than reading them.
    return Response(
        to_json(sync_service.pull_body(state, user, body)), media_type="application/json"
    )


def _version(state: ServerState, user: User) -> int:
    with session_scope(state.read_sessions) as session:
        return current_version(session, user.tenant_id)


@router.get(
    "/poke",
    response_model=PokeResponse,
    summary="Long-poll: returns as soon as the team's version passes the cursor",
)
async def poke(
    request: Request,
    state: StateDep,
    user: Annotated[User, Depends(current_user)],
    cursor: Annotated[int, Query(ge=0, le=MAX_WIRE_INT)],
    wait: Annotated[float, Query(ge=0, le=MAX_POKE_WAIT)] = MAX_POKE_WAIT,
) -> PokeResponse:
    version = await run_in_threadpool(_version, state, user)
    if version > cursor or wait == 0:
        return PokeResponse(version=version, changed=version > cursor)
    notifier = state.notifier
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        left = deadline - loop.time()
        if left <= 0:
            return PokeResponse(version=version, changed=False)
        async with state.gate.stepped_out(request.scope):
            woke = await notifier.wait_beyond(user.tenant_id, cursor, min(left, RECHECK_SECONDS))
        if woke is not None:
            return PokeResponse(version=woke, changed=True)
        version = await run_in_threadpool(_version, state, user)
        if version > cursor or notifier.closed:
            # Closed: the server is stopping; the client polls again and finds it gone.
            return PokeResponse(version=version, changed=version > cursor)
