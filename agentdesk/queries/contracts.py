"""Prepaid 1-on-1 hour blocks per organisation, as of any date, replayed from the ledger.

Nothing here is stored or edited: balances, draws (oldest block first), forfeits at expiry and
overage come from :func:`agentdesk.policy.billing.balance` and
:func:`~agentdesk.policy.billing.statement` over :func:`.ledger.load_ledger`. Prices are left
out unless the caller may see them (agents see no prices), so a view cannot leak them by
forgetting to hide a column.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import HourBlock, Organisation
from ..policy import billing
from .ledger import QueryError, load_ledger, org_facts
from .statement import hours_text

__all__ = [
    "CONTRACT_HISTORY",
    "Contract",
    "ContractBlock",
    "ExpiringHours",
    "expiring_hours",
    "read_contract",
]

#: Expired blocks stay listed this long after their expiry.
CONTRACT_HISTORY = timedelta(days=365)
#: The furthest ahead the all-customers expiry list looks.
MAX_EXPIRY_HORIZON = timedelta(days=90)


@dataclass(frozen=True)
class ContractBlock:
    block_id: str
    purchased_at: datetime
    minutes: int
    price: Decimal | None
    expires_at: datetime
    drawn: int
    forfeited: int
    remaining: int
    expired: bool


@dataclass(frozen=True)
class Contract:
    organisation_id: uuid.UUID
    organisation: str
    plan: str
    tz: str
    as_of: datetime
    blocks: tuple[ContractBlock, ...]
    """Newest purchase first."""
    balance: int
    overage: int
    next_expiry: datetime | None
    next_expiry_minutes: int
    prices_shown: bool

    @property
    def forecast(self) -> str:
        """The next expiry in words, e.g. "4.5 h expire on 2027-02-03" (if nothing is used)."""
        if self.next_expiry is None:
            return "No prepaid hours left to expire"
        day = self.next_expiry.astimezone(ZoneInfo(self.tz)).date().isoformat()
        return f"{hours_text(self.next_expiry_minutes)} expire on {day}"


def read_contract(
    session: Session, org_id: uuid.UUID, as_of: datetime, *, show_prices: bool
) -> Contract:
    """The organisation's blocks at ``as_of``: live ones and those expired in the last year."""
    if as_of.tzinfo is None:
        raise QueryError("as_of", "must be time-zone aware")
    org = org_facts(session, org_id)
    since = as_of - CONTRACT_HISTORY
    ledger = load_ledger(session, org_id, since, as_of + timedelta(microseconds=1), details=False)
    bills = billing.bill_days([i for i in ledger.items if i.start <= as_of], tz=org.tz)
    bal = billing.balance(ledger.blocks, bills, as_of, customer_id=str(org_id))
    first_day = ledger.since.astimezone(ZoneInfo(org.tz)).date()
    stmt = billing.statement(
        ledger.blocks,
        bills,
        start=first_day,
        end=as_of.astimezone(ZoneInfo(org.tz)).date(),
        tz=org.tz,
        as_of=as_of,
        customer_id=str(org_id),
    )
    by_id = {b.id: b for b in ledger.blocks}
    shown: list[ContractBlock] = []
    for live in bal.blocks:
        shown.append(
            ContractBlock(
                block_id=live.block_id,
                purchased_at=live.purchased_at,
                minutes=live.purchased_minutes,
                price=ledger.prices.get(live.block_id) if show_prices else None,
                expires_at=live.expires_at,
                drawn=live.used_minutes,
                forfeited=0,
                remaining=live.remaining_minutes,
                expired=False,
            )
        )
    for gone in stmt.expiries:
        if gone.expires_at <= since:
            continue
        block = by_id[gone.block_id]
        shown.append(
            ContractBlock(
                block_id=gone.block_id,
                purchased_at=block.purchased_at,
                minutes=block.minutes,
                price=ledger.prices.get(gone.block_id) if show_prices else None,
                expires_at=gone.expires_at,
                drawn=block.minutes - gone.forfeited_minutes,
                forfeited=gone.forfeited_minutes,
                remaining=0,
                expired=True,
            )
        )
    shown.sort(key=lambda b: (b.purchased_at, b.block_id), reverse=True)
    return Contract(
        organisation_id=org_id,
        organisation=org.name,
        plan=org.plan,
        tz=org.tz,
        as_of=as_of,
        blocks=tuple(shown),
        balance=bal.total_minutes,
        overage=stmt.overage_minutes,
        next_expiry=bal.next_expiry,
        next_expiry_minutes=bal.next_expiry_minutes,
        prices_shown=show_prices,
    )


@dataclass(frozen=True)
class ExpiringHours:
    organisation_id: uuid.UUID
    organisation: str
    block_id: str
    expires_at: datetime
    remaining: int


def expiring_hours(
    session: Session, as_of: datetime, within: timedelta, *, tenant_id: uuid.UUID | None = None
) -> tuple[ExpiringHours, ...]:
    """Across all customers: minutes that expire in (as_of, as_of + within] unless used,
    soonest first. Only organisations with a block expiring then are replayed."""
    if within <= timedelta(0) or within > MAX_EXPIRY_HORIZON:
        raise QueryError("within", f"must be between 1 and {MAX_EXPIRY_HORIZON.days} days")
    validity = billing.DEFAULT_VALIDITY
    query = (
        select(HourBlock.organisation_id)
        .join(Organisation, Organisation.id == HourBlock.organisation_id)
        .where(
            HourBlock.deleted.is_(False),
            Organisation.deleted.is_(False),
            HourBlock.purchased_at > as_of - validity,
            HourBlock.purchased_at <= as_of + within - validity,
        )
        .distinct()
    )
    if tenant_id is not None:
        query = query.where(HourBlock.tenant_id == tenant_id)
    out: list[ExpiringHours] = []
    for org_id in session.scalars(query):
        contract = read_contract(session, org_id, as_of, show_prices=False)
        out.extend(
            ExpiringHours(org_id, contract.organisation, b.block_id, b.expires_at, b.remaining)
            for b in contract.blocks
            if not b.expired and b.remaining > 0 and b.expires_at <= as_of + within
        )
    out.sort(key=lambda e: (e.expires_at.astimezone(UTC), e.organisation, e.block_id))
    return tuple(out)
