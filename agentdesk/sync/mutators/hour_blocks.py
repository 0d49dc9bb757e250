"""Recording a purchase of prepaid hours (leads and admins only); balances are never written,
only computed from the ledger.
"""

from __future__ import annotations

import logging
from typing import Annotated

from pydantic import Field

from ...models import (
    HourBlock,
    Organisation,
)
from ..bounds import (
    Body,
    Instant,
    Money,
)
from .core import (
    BILLING_ADMINS,
    MAX_CLOCK_SKEW,
    Args,
    MutationContext,
    MutationRejected,
    NewBlockId,
    OrganisationRef,
    get_row,
    mutator,
)

log = logging.getLogger(__name__)


class RecordHourPurchase(Args):
    block_id: NewBlockId
    organisation_id: OrganisationRef
    minutes: Annotated[int, Field(gt=0, le=100_000 * 60)]
    purchased_at: Instant
    price: Money | None = None
    note: Body = ""


@mutator("record_hour_purchase", RecordHourPurchase, BILLING_ADMINS)
def record_hour_purchase(ctx: MutationContext, a: RecordHourPurchase) -> None:
    if a.purchased_at > ctx.now + MAX_CLOCK_SKEW:
        raise MutationRejected("invalid", "a purchase cannot be in the future", "purchased_at")
    get_row(ctx, Organisation, a.organisation_id, "organisation")
    ctx.session.add(
        HourBlock(
            id=a.block_id,
            tenant_id=ctx.tenant_id,
            organisation_id=a.organisation_id,
            purchased_at=a.purchased_at,
            minutes=a.minutes,
            price=a.price,
            recorded_by_id=ctx.actor_id,
            note=a.note,
        )
    )
