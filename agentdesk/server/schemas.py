"""Request and response bodies. Every request model forbids unknown fields and bounds its
strings, so a typo or a junk field is a 422 naming it, never silently ignored.

Bounds follow the database columns (a string the column cannot hold, or an integer outside
PostgreSQL's ``INTEGER``, must be a 422 here, not a ``DataError`` 500 later). Numbers are
strict: ``"5"`` or ``true`` for a count is a client bug worth reporting, not coercing.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from ..models import Role
from ..models.support import Membership
from .security import MIN_PASSWORD_LENGTH

# Control characters (tab, newline and carriage return are allowed in multi-line text only) and
# lone surrogates: PostgreSQL refuses NUL, and no database can encode a surrogate as UTF-8.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_LINE_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
#: Documents the rule in the OpenAPI schema; the validators below give the friendlier message.
_LINE_PATTERN = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"


def _no_control_chars(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def _single_line(value: str) -> str:
    if _LINE_CONTROL.search(value):
        raise ValueError("must be one line without control characters")
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _line_field(max_length: int) -> Any:
    return Field(min_length=1, max_length=max_length, json_schema_extra={"pattern": _LINE_PATTERN})


def _to_utc(value: datetime) -> datetime:
    """Aware datetimes are stored and answered in UTC; one that has no UTC equivalent (year 1
    at +14:00) is the client's mistake."""
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("is out of range") from None


_single = AfterValidator(_single_line)
#: A single-line, bounded, non-blank string without control characters.
Line = Annotated[str, _line_field(200), _single]
#: Multi-line text (newlines and tabs allowed), bounded.
Text = Annotated[str, Field(max_length=100_000), AfterValidator(_no_control_chars)]
Username = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")]
Email = Annotated[
    str,
    Field(min_length=3, max_length=320, pattern=r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+$"),
    AfterValidator(_single_line),
]
Password = Annotated[
    str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=1024), AfterValidator(_no_control_chars)
]
#: A time-zone-aware instant; naive datetimes are refused (their zone would be a guess).
Instant = Annotated[AwareDatetime, AfterValidator(_to_utc)]
#: A non-negative count that fits a PostgreSQL INTEGER.
Count = Annotated[int, Field(strict=True, ge=0, le=2_147_483_647)]
Flag = Annotated[bool, Field(strict=True)]

CalendarName = Annotated[str, _line_field(100), _single]
PlanKey = Annotated[str, _line_field(50), _single]
PlanName = Annotated[str, _line_field(100), _single]
OrgName = Annotated[str, _line_field(200), _single]
PersonName = Annotated[str, _line_field(200), _single]
Phone = Annotated[str, _line_field(50), _single]
TimeZoneName = Annotated[str, _line_field(64), _single]


#: The default of a PATCH field: "not sent". Typed ``Any`` because ``None`` is not a valid value
#: of those fields (a client's ``null`` is a 422), only the marker that it was left out.
_ABSENT: Any = None


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


# ------------------------------------------------------------------------------------ errors


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorInfo(BaseModel):
    code: str
    message: str
    field: str | None
    details: list[ErrorDetail] | None = None


class ErrorOut(BaseModel):
    """Every 4xx answer: ``{"error": {"code", "message", "field"}}``."""

    error: ErrorInfo


def _err(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


#: The error answers any API route may give, declared once so the published schema is honest
#: about them (schemathesis checks responses against it).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _err("Not signed in, or the token is expired, revoked or its user disabled"),
    403: _err("Signed in, but the caller's role may not do this"),
    404: _err("No such object in the caller's tenant"),
    409: _err("The change conflicts with existing data"),
    413: _err("The request body is too large"),
    422: _err("Invalid input; `field` names the offending field"),
    429: _err("Too many failed sign-ins; see Retry-After"),
}

# -------------------------------------------------------------------------------- auth, users


class LoginRequest(Request):
    username: Username
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class UserOut(BaseModel):
    id: uuid.UUID
    username: str
    display_name: str
    email: str | None
    role: str
    active: bool
    tenant_id: uuid.UUID
    #: The team's time zone (calendar years and billing days are counted in it); given on
    #: sign-in and /me so a desktop's replica counts like the server.
    team_timezone: str | None = None


class LoginResponse(BaseModel):
    token: str
    token_type: str = "bearer"
    expires_at: datetime
    user: UserOut


class TeamMemberOut(BaseModel):
    """What every team member may know about the others: never emails or password hashes."""

    id: uuid.UUID
    username: str
    display_name: str
    role: Role
    active: bool


class UserCreate(Request):
    username: Username
    display_name: PersonName
    email: Email | None = None
    role: Role
    password: Password


class PasswordReset(Request):
    """A lead sets a member's new password (the member's sign-ins are revoked)."""

    password: Password


class UserPatch(Request):
    """Only the fields sent are changed; ``null`` is not a value for any of them."""

    role: Role = _ABSENT
    display_name: PersonName = _ABSENT
    active: Flag = _ABSENT


# ---------------------------------------------------------------------------------- calendars

# Shapes only bound sizes here; the rules engine judges the content, so its field names
# (``hours.mon[0]``, ``holidays[2]``) are what a client sees for a bad calendar.
Short = Annotated[str, Field(max_length=16)]
DayHours = Annotated[list[Annotated[list[Short], Field(max_length=4)]], Field(max_length=48)]


class CalendarIn(Request):
    """A business calendar: its name plus exactly ``BusinessCalendar.from_dict``'s fields
    (``hours`` keyed ``mon`` ... ``sun``, windows ``["08:00", "17:00"]``, dates
    ``YYYY-MM-DD``), so a rule violation's field is also the path into this body."""

    name: CalendarName
    tz: TimeZoneName
    hours: Annotated[dict[Short, DayHours], Field(max_length=7)]
    holidays: Annotated[list[Short], Field(max_length=1000)] = Field(default_factory=list)
    overrides: Annotated[dict[Short, DayHours], Field(max_length=1000)] = Field(
        default_factory=dict
    )
    holiday_country: Short | None = None


class CalendarOut(BaseModel):
    id: uuid.UUID
    version: int
    name: str
    tz: str
    hours: dict[str, list[list[str]]]
    holidays: list[str]
    overrides: dict[str, list[list[str]]]
    holiday_country: str | None = None


# -------------------------------------------------------------------------------------- plans


class TargetIn(Request):
    """Exactly one of ``minutes`` (business time) or ``business_days``."""

    minutes: Annotated[int, Field(strict=True, ge=1, le=1_000_000)] | None = None
    business_days: Annotated[int, Field(strict=True, ge=1, le=1000)] | None = None


class PlanIn(Request):
    key: PlanKey
    name: PlanName
    #: Higher is served first; bounded to fit the tickets' SMALLINT sort column.
    rank: Annotated[int, Field(strict=True, ge=-1000, le=1000)]
    channels: Annotated[list[Annotated[str, Field(max_length=16)]], Field(max_length=8)] = Field(
        default_factory=lambda: ["portal"]
    )
    contact_allotment: Count = 1
    #: ``null``: unlimited support conversations.
    conversations_per_year: Count | None = None
    review_bonus_conversations: Count = 0
    min_verified_reviews: Count = 25
    min_recent_reviews: Count = 10
    #: The business calendar the plan's clock runs on; ``null``: the team's default.
    calendar_id: uuid.UUID | None = None
    #: Per-tier overrides of the default response targets, keyed "1" ... "4".
    response_targets: Annotated[dict[Short, TargetIn], Field(max_length=4)] = Field(
        default_factory=dict
    )


class PlanOut(BaseModel):
    id: uuid.UUID
    version: int
    key: str
    name: str
    rank: int
    channels: list[str]
    contact_allotment: int
    conversations_per_year: int | None
    review_bonus_conversations: int
    min_verified_reviews: int
    min_recent_reviews: int
    calendar_id: uuid.UUID | None
    response_targets: dict[str, dict[str, int]]


# ------------------------------------------------------------------------------ organisations


class OrganisationSearch(Request):
    """``GET /organisations`` parameters; an unknown one (a typo like ``?qurey=``) is a 422,
    not a silently unfiltered list."""

    query: Line | None = Field(default=None, description="Part of the name; omit to list all")
    limit: Annotated[int, Field(ge=1, le=100)] = 20


class OrganisationCreate(Request):
    name: OrgName
    plan_id: uuid.UUID
    membership: Membership = "active"
    member_since: Instant | None = None
    verified_reviews: Count = 0
    recent_reviews: Count = 0


class OrganisationPatch(Request):
    """Only the fields sent are changed; ``member_since`` alone may be set to ``null``."""

    name: OrgName = _ABSENT
    plan_id: uuid.UUID = _ABSENT
    membership: Membership = _ABSENT
    member_since: Instant | None = None
    verified_reviews: Count = _ABSENT
    recent_reviews: Count = _ABSENT


class OrganisationOut(BaseModel):
    id: uuid.UUID
    version: int
    name: str
    plan_id: uuid.UUID
    membership: str
    member_since: datetime | None
    verified_reviews: int
    recent_reviews: int


class ContactCreate(Request):
    name: PersonName
    email: Email
    phone: Phone | None = None


class ContactPatch(Request):
    """Only the fields sent are changed; ``phone`` alone may be set to ``null``."""

    name: PersonName = _ABSENT
    email: Email = _ABSENT
    phone: Phone | None = None


class ContactOut(BaseModel):
    id: uuid.UUID
    version: int
    organisation_id: uuid.UUID
    name: str
    email: str
    phone: str | None
    validated: bool
    validated_at: datetime | None


class AllotmentOut(BaseModel):
    """Validated-contact slots (seed 003): ``used`` may exceed ``total`` after a downgrade."""

    used: int
    total: int
    free: int
    over_by: int
    holders: list[uuid.UUID]


class AllowanceOut(BaseModel):
    """Support conversations in the team's current calendar year (seed 000); ``allowance`` and
    ``remaining`` are ``null`` for unlimited plans."""

    year: int
    allowance: int | None
    used: int
    remaining: int | None
    bonus_applies: bool


class OrganisationDetail(OrganisationOut):
    plan: PlanOut
    contacts: list[ContactOut]
    allotment: AllotmentOut
    conversations: AllowanceOut
