"""The typed SQLAlchemy 2.0 data model, shared by the server database and the desktop replica.

Every synced table carries a client-made UUIDv7 ``id``, its ``tenant_id``, a server ``version``
(from the tenant's counter row, see :mod:`.versioning`) and a ``deleted`` tombstone.
"""

from .base import Base, SyncedMixin, new_id, utcnow
from .billing import Appointment, AppointmentStatus, HourBlock, RunningTimer, TimeEntry, TimeKind
from .notifications import (
    ApiKey,
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    NotificationKind,
    NotificationTemplate,
)
from .support import Calendar, Contact, Organisation, Plan
from .syncstate import MutationRecord, SyncClient
from .tenancy import AuthToken, LoginFailure, RateLimitHit, Role, Tenant, TenantCounter, User
from .tickets import (
    OPEN_STATUS_ORDER,
    EventKind,
    Level,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketStatus,
    WaitingPeriod,
    open_ticket,
)

__all__ = [
    "OPEN_STATUS_ORDER",
    "ApiKey",
    "Appointment",
    "AppointmentStatus",
    "AuthToken",
    "Base",
    "Calendar",
    "Contact",
    "DeliveryStatus",
    "EventKind",
    "HourBlock",
    "Level",
    "LoginFailure",
    "MutationRecord",
    "Notification",
    "NotificationDelivery",
    "NotificationKind",
    "NotificationTemplate",
    "Organisation",
    "Plan",
    "RateLimitHit",
    "Role",
    "RunningTimer",
    "SyncClient",
    "SyncedMixin",
    "Tenant",
    "TenantCounter",
    "Ticket",
    "TicketEvent",
    "TicketKind",
    "TicketStatus",
    "TimeEntry",
    "TimeKind",
    "User",
    "WaitingPeriod",
    "new_id",
    "open_ticket",
    "utcnow",
]
