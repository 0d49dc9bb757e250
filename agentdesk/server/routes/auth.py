"""Sign-in and sign-out.

Failed logins are counted in the database (not in process memory), so the limit holds however
many server processes a team runs, per username and per client address.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from fastapi import APIRouter, Request, Security
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from ...models import AuthToken, LoginFailure, Tenant, User, utcnow
from ..deps import CurrentUser, ReadSession, StateDep, WriteSession, bearer_token
from ..errors import ApiError
from ..schemas import LoginRequest, LoginResponse, UserOut
from ..security import new_token, token_hash, verify_password
from ..settings import ServerSettings
from ._common import bearer_scheme

router = APIRouter(tags=["auth"])


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        email=user.email,
        role=user.role.value,
        active=user.active,
        tenant_id=user.tenant_id,
    )


def _with_team(out: UserOut, session: Session, user: User) -> UserOut:
    tenant = session.get(Tenant, user.tenant_id)
    return out.model_copy(update={"team_timezone": tenant.timezone if tenant else None})


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def login_wait(
    settings: ServerSettings, failures: int, last: datetime | None, now: datetime
) -> timedelta:
    """How long a (username, address) pair must still wait after ``failures`` recent failures,
    the latest at ``last``: nothing for the first few, then ``login_delay`` doubling with each
    further failure, never more than the window."""
    over = failures - settings.login_failures_per_user
    if over < 0 or last is None:
        return timedelta(0)
    delay: timedelta = min(
        settings.login_delay * (2 ** min(over, 32)), settings.login_failure_window
    )
    left: timedelta = last + delay - now
    return max(left, timedelta(0))


def _check_rate_limit(
    session: Session, settings: ServerSettings, username: str, address: str, now: datetime
) -> None:
    since = now - settings.login_failure_window
    pair, last = session.execute(
        select(func.count(), func.max(LoginFailure.at)).where(
            LoginFailure.username == username,
            LoginFailure.address == address,
            LoginFailure.at > since,
        )
    ).one()
    wait = login_wait(settings, int(pair or 0), last, now)
    per_address = (
        session.scalar(
            select(func.count())
            .select_from(LoginFailure)
            .where(LoginFailure.address == address, LoginFailure.at > since)
        )
        or 0
    )
    if per_address >= settings.login_failures_per_address:
        wait = max(wait, settings.login_failure_window)
    if wait > timedelta(0):
        raise ApiError(
            429,
            "rate_limited",
            "too many failed sign-ins from here; try again "
            f"in {math.ceil(wait.total_seconds())} seconds",
            headers={"Retry-After": str(math.ceil(wait.total_seconds()))},
        )


@router.post("/login", response_model=LoginResponse, summary="Sign in; returns a bearer token")
def login(
    body: LoginRequest, request: Request, state: StateDep, session: WriteSession
) -> LoginResponse:
    settings = state.settings
    now = utcnow()
    address = _client_address(request)
    _check_rate_limit(session, settings, body.username, address, now)
    user = session.scalar(select(User).where(User.username == body.username))
    ok = verify_password(user.password_hash if user else None, body.password)
    if not ok or user is None or not user.active or user.deleted:
        session.add(LoginFailure(username=body.username, address=address, at=now))
        # Commit the failure even though we answer with an error.
        session.commit()
        raise ApiError(401, "bad_credentials", "wrong username or password")
    # This address's failures for this user stop counting after a success (another address's
    # do not: the owner signing in must not wipe an attacker's slate); expired tokens go.
    session.execute(
        delete(LoginFailure).where(
            LoginFailure.username == body.username, LoginFailure.address == address
        )
    )
    session.execute(
        delete(AuthToken).where(AuthToken.user_id == user.id, AuthToken.expires_at < now)
    )
    token = new_token()
    expires = now + settings.token_ttl
    session.add(
        AuthToken(user_id=user.id, token_hash=token_hash(token), created_at=now, expires_at=expires)
    )
    return LoginResponse(
        token=token, expires_at=expires, user=_with_team(user_out(user), session, user)
    )


@router.post(
    "/logout",
    status_code=204,
    summary="Revoke the token used for this request",
    dependencies=[Security(bearer_scheme)],
)
def logout(request: Request, user: CurrentUser, session: WriteSession) -> None:
    session.execute(
        update(AuthToken)
        .where(AuthToken.token_hash == token_hash(bearer_token(request)))
        .values(revoked_at=utcnow())
    )


@router.get(
    "/me",
    response_model=UserOut,
    summary="The signed-in user",
    dependencies=[Security(bearer_scheme)],
)
def me(user: CurrentUser, session: ReadSession) -> UserOut:
    return _with_team(user_out(user), session, user)
