"""Stored SLA instants for tickets that existed before the columns did.

The schema revision that added ``sla_due_at``, ``sla_risk_at`` and ``first_response_business_s``
left existing rows NULL, and the dashboard's SLA counts are range queries over them, so an
upgraded team's older tickets counted as "no promise" until something touched them. This module
fills them with the one rule every writer uses (:func:`agentdesk.sync.mutators.refresh_sla`), in
batches of its own transactions, each stamped with the tenant's next version so every desktop
pulls the new values.

It runs after every schema upgrade the server performs (:func:`upgrade_and_backfill`: app start
with ``migrate_on_start``, and every ``agentdesk server`` command), and on demand as
``agentdesk server backfill-sla`` (for a database already upgraded by an AgentDesk without it).
Idempotent: only rows with none of the three values are candidates, and a recomputation that
finds nothing (a redirected request, a ticket waiting on the customer) changes nothing and so
takes no version.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from sqlalchemy import Engine, select

from ..models import Calendar, Organisation, Plan, Ticket, TicketStatus
from ..models.db import make_session_factory, session_scope
from ..models.migrate import needs_upgrade, upgrade
from ..models.versioning import enable_stamping
from ..sync.mutators import refresh_sla

__all__ = ["BATCH", "backfill_sla", "upgrade_and_backfill"]

log = logging.getLogger("agentdesk.server")

#: Tickets per transaction: short write locks on SQLite, bounded memory on any size of team.
BATCH = 500


def _candidates(engine: Engine) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(tenant, ticket) of every live ticket with no stored instant at all."""
    with session_scope(make_session_factory(engine, write=False)) as session:
        rows = session.execute(
            select(Ticket.tenant_id, Ticket.id)
            .where(
                Ticket.deleted.is_(False),
                Ticket.status != TicketStatus.REDIRECTED,
                Ticket.sla_due_at.is_(None),
                Ticket.sla_risk_at.is_(None),
                Ticket.first_response_business_s.is_(None),
            )
            .order_by(Ticket.tenant_id, Ticket.id)
        ).all()
    return [(row.tenant_id, row.id) for row in rows]


def _fill(engine: Engine, tenant_id: uuid.UUID, ticket_ids: Sequence[uuid.UUID]) -> int:
    changed = 0
    with session_scope(make_session_factory(engine)) as session:
        enable_stamping(session, tenant_id)
        # The rule looks each ticket's organisation, plan and calendar up by id; holding them
        # here keeps them in the (weak) identity map, so those are not a query per ticket.
        tickets = session.scalars(select(Ticket).where(Ticket.id.in_(list(ticket_ids)))).all()
        orgs = session.scalars(
            select(Organisation).where(Organisation.id.in_({t.organisation_id for t in tickets}))
        ).all()
        held = [
            *orgs,
            *session.scalars(select(Plan).where(Plan.id.in_({o.plan_id for o in orgs}))),
            *session.scalars(select(Calendar).where(Calendar.tenant_id == tenant_id)),
        ]
        with session.no_autoflush:  # count the changes before anything is written
            for ticket in tickets:
                refresh_sla(session, ticket)
                if session.is_modified(ticket):
                    changed += 1
        del held
    return changed


def backfill_sla(engine: Engine, batch: int = BATCH) -> int:
    """Compute the stored instants of every ticket that has none; returns how many changed."""
    candidates = _candidates(engine)
    changed = 0
    start = 0
    while start < len(candidates):
        tenant = candidates[start][0]
        chunk = [ticket for t, ticket in candidates[start : start + batch] if t == tenant]
        changed += _fill(engine, tenant, chunk)
        start += len(chunk)
    if changed:
        log.info(
            "stored SLA instants computed for %d earlier ticket(s) (%d looked at)",
            changed,
            len(candidates),
        )
    return changed


def upgrade_and_backfill(engine: Engine) -> int:
    """:func:`~agentdesk.models.migrate.upgrade`, then, if the schema changed, the backfill:
    an upgrade is when new stored columns may have arrived empty."""
    changing = needs_upgrade(engine)
    upgrade(engine)
    return backfill_sla(engine) if changing else 0
