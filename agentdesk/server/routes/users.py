"""The team's members: everyone may list them (assignees, authors); leads manage them.

Only an admin may grant the admin role or change an admin's account, so a lead cannot promote
themself (or a friend) past their own rights. Nobody may demote or deactivate themself: a team
must never lock out its last lead by accident; another lead or admin does it.
"""

from __future__ import annotations

import logging
import uuid

from fastapi import APIRouter, Response
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ...models import AuthToken, Role, User, utcnow
from ..deps import CurrentUser, ReadSession, WriteSession, tenant_session
from ..errors import ApiError
from ..schemas import PasswordReset, TeamMemberOut, UserCreate, UserOut, UserPatch
from ..security import hash_password
from ._common import Lead, get_owned, member_out
from .auth import user_out

router = APIRouter(tags=["users"])
#: Who changed whose credentials: ids only (never a password), one line per change, with the
#: request id the server's log formatter adds.
audit_log = logging.getLogger("agentdesk.audit")


@router.get("/users", response_model=list[TeamMemberOut], summary="The team's members")
def list_users(user: CurrentUser, session: ReadSession) -> list[TeamMemberOut]:
    rows = session.scalars(
        select(User)
        .where(User.tenant_id == user.tenant_id, User.deleted.is_(False))
        .order_by(User.display_name, User.username, User.id)
    )
    return [member_out(u) for u in rows]


def _check_admin_rights(caller: User, *roles: Role | None) -> None:
    if caller.role != Role.ADMIN and Role.ADMIN in roles:
        raise ApiError(
            403,
            "forbidden",
            "only an admin can grant the admin role or change an admin's account",
            field="role",
        )


@router.post("/users", response_model=UserOut, status_code=201, summary="Add a team member")
def create_user(body: UserCreate, user: Lead, session: WriteSession) -> UserOut:
    _check_admin_rights(user, body.role)
    tenant_session(session, user)
    # Usernames sign in without naming a tenant, so they are unique across the server.
    if session.scalar(select(User.id).where(User.username == body.username)) is not None:
        raise ApiError(409, "conflict", "this username is taken", field="username")
    new = User(
        tenant_id=user.tenant_id,
        username=body.username,
        display_name=body.display_name,
        email=body.email,
        role=body.role,
        active=True,
        password_hash=hash_password(body.password),
        created_at=utcnow(),
    )
    session.add(new)
    session.flush()
    return user_out(new)


@router.patch(
    "/users/{user_id}",
    response_model=UserOut,
    summary="Change a member's role, display name or active flag",
)
def update_user(user_id: uuid.UUID, body: UserPatch, user: Lead, session: WriteSession) -> UserOut:
    target = get_owned(session, User, user_id, user, "user")
    sent = body.model_fields_set
    _check_admin_rights(user, target.role, body.role if "role" in sent else None)
    if target.id == user.id:
        if "role" in sent and body.role != target.role:
            raise ApiError(
                409,
                "self_change",
                "you cannot change your own role; ask another lead or admin",
                field="role",
            )
        if "active" in sent and not body.active:
            raise ApiError(
                409,
                "self_change",
                "you cannot deactivate your own account; ask another lead or admin",
                field="active",
            )
    tenant_session(session, user)
    if "role" in sent:
        target.role = body.role
    if "display_name" in sent:
        target.display_name = body.display_name
    if "active" in sent:
        if target.active and not body.active:
            # Deactivation ends every session for good: the tokens are revoked, so turning the
            # account back on later does not bring a lost laptop's token back to life.
            _revoke_sign_ins(session, target)
            audit_log.info("user %s deactivated by user %s", target.id, user.id)
        target.active = body.active
    session.flush()
    return user_out(target)


def _revoke_sign_ins(session: Session, target: User) -> None:
    session.execute(
        update(AuthToken)
        .where(AuthToken.user_id == target.id, AuthToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


@router.post(
    "/users/{user_id}/password",
    status_code=204,
    summary="Set a member's new password and revoke their sign-ins",
)
def reset_password(
    user_id: uuid.UUID, body: PasswordReset, user: Lead, session: WriteSession
) -> Response:
    """For a member who forgot theirs or whose password leaked: every token they hold stops
    working at once, so whoever knew the old password is signed out too. Only an admin resets
    an admin's; nobody resets their own here (a second lead or admin vouches for the change)."""
    target = get_owned(session, User, user_id, user, "user")
    _check_admin_rights(user, target.role)
    if target.id == user.id:
        raise ApiError(
            409,
            "self_change",
            "you cannot reset your own password here; ask another lead or admin",
            field="user_id",
        )
    tenant_session(session, user)
    target.password_hash = hash_password(body.password)
    _revoke_sign_ins(session, target)
    session.flush()
    audit_log.info("password of user %s reset by user %s", target.id, user.id)
    return Response(status_code=204)
