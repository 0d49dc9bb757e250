"""Request dependencies: the database session, the signed-in user and role checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ..models import AuthToken, Role, User, utcnow
from ..models.db import session_scope
from ..models.versioning import enable_stamping
from .admission import DatabaseGate
from .errors import ApiError
from .notify import VersionNotifier
from .security import token_hash
from .settings import ServerSettings


@dataclass
class ServerState:
    settings: ServerSettings
    write_sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]
    notifier: VersionNotifier
    #: Admits as many requests at once as the pool has connections (``admission``).
    gate: DatabaseGate


def get_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.agentdesk
    return state


StateDep = Annotated[ServerState, Depends(get_state)]


def read_session(state: StateDep) -> Iterator[Session]:
    with session_scope(state.read_sessions) as session:
        yield session


def write_session(state: StateDep) -> Iterator[Session]:
    with session_scope(state.write_sessions) as session:
        yield session


ReadSession = Annotated[Session, Depends(read_session)]
# scope="function": commit before the response is sent. FastAPI's default ends a yield
# dependency after sending, so a client could use a token (or see a write) not yet committed.
WriteSession = Annotated[Session, Depends(write_session, scope="function")]

_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "unauthorized",
            "sign in: an 'Authorization: Bearer <token>' header is required",
            headers=_UNAUTHORIZED,
        )
    return token.strip()


def current_user(request: Request, state: StateDep) -> User:
    """The caller, from a live token. Uses its own short session so the token check does not
    hold a write lock for the whole request."""
    token = bearer_token(request)
    now = utcnow()
    with session_scope(state.read_sessions) as session:
        row = session.execute(
            select(AuthToken, User)
            .join(User, User.id == AuthToken.user_id)
            .where(AuthToken.token_hash == token_hash(token))
        ).first()
        if row is None:
            raise ApiError(
                401, "unauthorized", "the token is not valid; sign in again", headers=_UNAUTHORIZED
            )
        auth, user = row
        if auth.revoked_at is not None:
            raise ApiError(
                401, "unauthorized", "the token was revoked; sign in again", headers=_UNAUTHORIZED
            )
        if auth.expires_at <= now:
            raise ApiError(
                401, "unauthorized", "the token has expired; sign in again", headers=_UNAUTHORIZED
            )
        if not user.active or user.deleted:
            raise ApiError(401, "unauthorized", "this account is disabled", headers=_UNAUTHORIZED)
        session.expunge(user)
    request.state.user = user
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def require_roles(*roles: Role) -> Callable[[User], User]:
    """A dependency that lets only the given roles through (403 for the rest)."""
    allowed = frozenset(roles)

    def check(user: CurrentUser) -> User:
        if user.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise ApiError(
                403, "forbidden", f"this needs one of the roles: {names}; you are {user.role.value}"
            )
        return user

    return check


def tenant_session(session: Session, user: User) -> Session:
    """Mark a write session as working for the caller's tenant (stamps versions, refuses
    cross-tenant writes)."""
    enable_stamping(session, user.tenant_id)
    return session


LEADS = (Role.LEAD, Role.ADMIN)
