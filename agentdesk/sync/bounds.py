"""Bounded argument types: the one place that says how big, how far and how long anything a
client sends may be.

Every field of a mutator's ``Args`` model and every number in the sync protocol is declared with
one of these types, and :func:`unbounded_fields` (run when a mutator registers) refuses a model
with a field that is not: a new mutator gets the bounds by declaring its fields and cannot
forget them. Why bounds at all: an instant in year 1 made the billing replay walk 740,000 days,
an offset with no UTC equivalent raised ``OverflowError`` deep in the database layer (a 500 that
jammed the client's outbox), and a 2**63 cursor overflowed PostgreSQL's BIGINT.

Instants are converted to UTC during validation, so a value that has no UTC equivalent is a
validation error naming the field, never an exception later.
"""

from __future__ import annotations

import enum
import types
import typing
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Union, get_args, get_origin

import annotated_types
from pydantic import AfterValidator, AwareDatetime, BaseModel, Field
from pydantic.fields import FieldInfo

#: The range of instants a client may name (start inclusive, end exclusive). Wide enough for any
#: real ticket, timer, purchase or appointment; narrow enough that a day-by-day replay over it
#: stays cheap and every zone's local time of it exists.
EARLIEST_INSTANT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_INSTANT = datetime(2100, 1, 1, tzinfo=UTC)

#: The longest single time entry, running timer or appointment: a day's work. Longer work is
#: recorded as several entries (one per day), which is also how it is billed (seed 001 rounds
#: per day).
MAX_SPAN = timedelta(hours=24)

#: The largest integer the sync protocol carries: what a JSON number holds exactly (JavaScript's
#: ``Number.MAX_SAFE_INTEGER``), far below PostgreSQL's BIGINT limit.
MAX_WIRE_INT = 2**53 - 1

#: Lines are titles and names; bodies are notes, replies and descriptions.
MAX_LINE = 300
MAX_BODY = 100_000


def _no_control(value: str) -> str:
    """Tabs and line breaks are text; NUL and the other C0 controls are not (PostgreSQL refuses
    NUL in text, terminals and mail clients misrender the rest)."""
    if any((ord(c) < 32 and c not in "\n\t\r") or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    return value


def _in_range(value: datetime) -> datetime:
    """UTC, or a ValueError: ``0001-01-01T00:00:00+14:00`` has no UTC equivalent."""
    try:
        utc = value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError(
            f"must be between {EARLIEST_INSTANT:%Y-%m-%d} and {LATEST_INSTANT:%Y-%m-%d} (UTC)"
        ) from None
    if not EARLIEST_INSTANT <= utc < LATEST_INSTANT:
        raise ValueError(
            f"must be between {EARLIEST_INSTANT:%Y-%m-%d} and {LATEST_INSTANT:%Y-%m-%d} (UTC)"
        )
    return utc


#: An aware instant within [EARLIEST_INSTANT, LATEST_INSTANT), converted to UTC.
Instant = Annotated[AwareDatetime, AfterValidator(_in_range)]


def _clock_or_none(value: datetime | None) -> datetime | None:
    """A desktop's clock is data: one outside the range is dropped (the server's clock stands in),
    not a reason to refuse the whole push and jam the outbox."""
    if value is None:
        return None
    try:
        return _in_range(value)
    except ValueError:
        return None


#: A desktop's claimed clock on the wire: an aware instant in range, in UTC, or None.
ClientClock = Annotated[AwareDatetime | None, AfterValidator(_clock_or_none)]
#: One line of user text (a subject, a name): 1-300 characters, no control characters.
Line = Annotated[str, Field(min_length=1, max_length=MAX_LINE), AfterValidator(_no_control)]
#: Free text that may be empty (a description, an optional note).
Body = Annotated[str, Field(max_length=MAX_BODY), AfterValidator(_no_control)]
#: Free text that must say something (a reply, a note, a reason).
Text = Annotated[str, Field(min_length=1, max_length=MAX_BODY), AfterValidator(_no_control)]
#: A severity tier or stated urgency (seed 003: 1 = production down ... 4 = cosmetic).
Tier = Annotated[int, Field(ge=1, le=4)]
#: Money: at most 12 digits, 2 after the point, never negative.
Money = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]
#: A count or id on the wire (mutation ids, cursors).
WireInt = Annotated[int, Field(ge=0, le=MAX_WIRE_INT)]


@dataclass(frozen=True)
class Ref:
    """Marks a uuid argument naming an existing row of ``model`` in the caller's tenant: the
    mutation runner resolves it before the mutator runs (missing, deleted or another tenant's:
    ``not_found``). ``what`` names it in the refusal."""

    model: type[Any]
    what: str


@dataclass(frozen=True)
class NewRow:
    """Marks a uuid argument that is the id of a row the mutation creates: it must not be taken
    by any row of ``model`` (in any tenant; the refusal does not say whose)."""

    model: type[Any]


_BOUNDED_SCALARS = (bool, type(None))


def unbounded_fields(model: type[BaseModel]) -> list[str]:
    """The fields of ``model`` whose type has no bound: an ``Args`` model must have none.

    Bounded means: strings and lists with a ``max_length``, integers with both ``ge``/``gt`` and
    ``le``/``lt``, decimals with ``max_digits``, datetimes that are :data:`Instant`, uuids marked
    :class:`Ref` or :class:`NewRow`; literals, enums and booleans are bounded by nature.
    """
    return [
        name
        for name, info in model.model_fields.items()
        if not _bounded(info.annotation, list(info.metadata))
    ]


def _bounded(annotation: Any, metadata: list[Any]) -> bool:
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *extra = get_args(annotation)
        flat: list[Any] = []
        for m in extra:  # a Field(...) inside Annotated carries its constraints as metadata
            flat.extend(m.metadata if isinstance(m, FieldInfo) else [m])
        return _bounded(inner, metadata + flat)
    if origin in (Union, types.UnionType):
        return all(_bounded(arg, metadata) for arg in get_args(annotation))
    if origin is typing.Literal or annotation in _BOUNDED_SCALARS:
        return True
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return True
    if annotation is uuid.UUID:
        return any(isinstance(m, Ref | NewRow) for m in metadata)
    if annotation is str or origin in (list, tuple, set, frozenset):
        has_max = any(
            isinstance(m, annotated_types.MaxLen) or getattr(m, "max_length", None) is not None
            for m in metadata
        )
        items = get_args(annotation)
        return has_max and all(_bounded(a, []) for a in items if a is not Ellipsis)
    if annotation is int:
        low = any(isinstance(m, annotated_types.Ge | annotated_types.Gt) for m in metadata)
        high = any(isinstance(m, annotated_types.Le | annotated_types.Lt) for m in metadata)
        return low and high
    if annotation is Decimal:
        return any(getattr(m, "max_digits", None) is not None for m in metadata)
    if annotation in (datetime, AwareDatetime):
        return any(isinstance(m, AfterValidator) and m.func is _in_range for m in metadata)
    return False
