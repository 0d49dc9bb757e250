"""Mutations: one definition each, run optimistically on the desktop replica and
authoritatively on the server, both through the rules engine.

A mutator gets a :class:`MutationContext` (session, tenant, actor, the clock of whoever runs
it) and validated arguments, and either changes rows or raises :class:`MutationRejected` with a
reason an agent can read. Rows a mutator creates get ids derived from ``(client_id,
mutation_id)`` (:meth:`MutationContext.derived_id`), so the desktop's optimistic row and the
server's authoritative row are the same row and a pull simply overwrites one with the other.

Conflict rules (DESIGN.md): assignment is a check-and-set against the assignee the client saw;
ticket fields are last-writer-wins in server order with the overwritten value kept in the
history; status changes go through :mod:`agentdesk.policy.workflow`; time entries are
append-only (a correction voids and replaces); one running timer per person; hour balances are
never written, only computed.

One module per domain; importing this package registers every mutator in :data:`MUTATORS`:

- :mod:`.core`: the registry, the context, argument bounds and reference checks, refusal codes;
- :mod:`.sla_refresh`: keeping stored SLA instants current;
- :mod:`.tickets`, :mod:`.contacts`, :mod:`.time_entries`, :mod:`.appointments`,
  :mod:`.hour_blocks`: the mutations themselves.
"""

from __future__ import annotations

from . import appointments, contacts, hour_blocks, tickets, time_entries
from .core import (
    BILLING_ADMINS,
    CONFLICT,
    DUPLICATE,
    FORBIDDEN,
    INTERNAL_ERROR,
    INVALID,
    KNOWN_UNUSED_IDS,
    MUTATORS,
    NOT_FOUND,
    TIMEKEEPERS,
    TOO_LONG,
    TRIAGERS,
    Args,
    MutationContext,
    MutationRejected,
    Mutator,
    held,
    mutator,
    preload_org_contacts,
    preload_plans,
    resolve_references,
    run_mutation,
)
from .sla_refresh import plan_calendar, refresh_open_sla, refresh_sla, team_default_calendar

__all__ = [
    "BILLING_ADMINS",
    "CONFLICT",
    "DUPLICATE",
    "FORBIDDEN",
    "INTERNAL_ERROR",
    "INVALID",
    "KNOWN_UNUSED_IDS",
    "MUTATORS",
    "NOT_FOUND",
    "TIMEKEEPERS",
    "TOO_LONG",
    "TRIAGERS",
    "Args",
    "MutationContext",
    "MutationRejected",
    "Mutator",
    "appointments",
    "contacts",
    "held",
    "hour_blocks",
    "mutator",
    "plan_calendar",
    "preload_org_contacts",
    "preload_plans",
    "refresh_open_sla",
    "refresh_sla",
    "resolve_references",
    "run_mutation",
    "team_default_calendar",
    "tickets",
    "time_entries",
]
