"""Reports for customers: one organisation's 1-on-1 time statement as CSV or PDF.

``agentdesk report time`` against a team server asks here with the token the desktop stored in
the keyring, so the command line and the desktop hand the customer the same document (both are
built by :mod:`agentdesk.queries.statement` and rendered by :mod:`agentdesk.exports`, which need
no Qt). Who may have one is :func:`agentdesk.queries.access.statement_refusal`'s rule, the one
the desktop's "Statement…" actions ask too: a statement is the customer's bill, and agents see no
prices or balances (seed 001's contract terms are the consultants' business).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from ...exports.statement_file import statement_file
from ...models import User
from ...queries.access import statement_refusal
from ...queries.ledger import QueryError, find_organisation
from ..deps import CurrentUser, ReadSession
from ..errors import ApiError

router = APIRouter(tags=["reports"])


def _statement_reader(user: CurrentUser) -> User:
    """403 with the rule's own words for those who get no statement."""
    refusal = statement_refusal(user.role)
    if refusal is not None:
        raise ApiError(403, "forbidden", f"{refusal}; you are signed in as {user.role.value}")
    return user


StatementReader = Annotated[User, Depends(_statement_reader)]

_MEDIA = {"csv": "text/csv; charset=utf-8", "pdf": "application/pdf"}


@router.get(
    "/reports/time",
    summary="One organisation's time statement for a period, as CSV or PDF",
    responses={
        200: {
            "content": {"text/csv": {}, "application/pdf": {}},
            "description": "The statement file",
        }
    },
)
def time_statement(
    user: StatementReader,
    session: ReadSession,
    org: Annotated[
        str,
        Query(
            min_length=1, max_length=200, description="the organisation's name (case-insensitive)"
        ),
    ],
    start: Annotated[date, Query(alias="from", description="first day, YYYY-MM-DD")],
    end: Annotated[date, Query(alias="to", description="last day (inclusive), YYYY-MM-DD")],
    format: Annotated[Literal["csv", "pdf"], Query()] = "pdf",
) -> Response:
    try:
        facts = find_organisation(session, org, tenant_id=user.tenant_id)
        made = statement_file(session, facts.id, start, end, format)
    except QueryError as exc:
        raise ApiError(422, "invalid", exc.message, field=exc.field) from None
    return Response(
        content=made.body,
        media_type=_MEDIA[format],
        headers={
            "Content-Disposition": f'attachment; filename="{made.filename}"',
            "X-Statement-Billed-Minutes": str(made.billed),
            "X-Statement-Closing-Minutes": str(made.closing),
        },
    )
