"""The one place that bounds mutator arguments: every registered mutator's ``Args`` declares
bounded fields, instants convert to UTC inside the range, and a model with an unbounded field
cannot register as a mutator."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

import pytest
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from agentdesk.sync.bounds import (
    ClientClock,
    Instant,
    Line,
    NewRow,
    Ref,
    WireInt,
    unbounded_fields,
)
from agentdesk.sync.mutators import MUTATORS, Args, mutator


def test_every_registered_mutator_declares_bounded_arguments() -> None:
    for m in MUTATORS.values():
        assert unbounded_fields(m.args) == [], m.name
        id_fields = {
            n
            for n, f in m.args.model_fields.items()
            if "uuid" in repr(f.annotation).lower() or "UUID" in repr(f.annotation)
        }
        assert id_fields == {name for name, _ in m.references}, m.name


def test_a_mutator_with_an_unbounded_argument_does_not_register() -> None:
    class Loose(Args):
        ticket_id: uuid.UUID
        when: datetime
        words: str
        count: int

    with pytest.raises(TypeError, match="ticket_id, when, words, count"):
        mutator("loose_for_test", Loose)(lambda ctx, a: None)
    assert "loose_for_test" not in MUTATORS


def test_bounded_shapes_are_recognised() -> None:
    class Tight(BaseModel):
        line: Line
        when: Instant | None = None
        n: WireInt = 0
        ticket_id: Annotated[uuid.UUID, Ref(object, "thing")] | None = None
        new_id: Annotated[uuid.UUID, NewRow(object)]
        lines: Annotated[list[Line], Field(max_length=10)] = []

    class Loose(BaseModel):
        lines: Annotated[list[str], Field(max_length=10)] = []
        n: Annotated[int, Field(ge=0)] = 0

    assert unbounded_fields(Tight) == []
    assert unbounded_fields(Loose) == ["lines", "n"]


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "1999-12-31T23:59:59Z",
        "2100-01-01T00:00:00Z",
    ],
)
def test_instants_outside_the_range_are_validation_errors(text: str) -> None:
    with pytest.raises(ValidationError, match="between 2000-01-01 and 2100-01-01"):
        TypeAdapter(Instant).validate_python(text)
    assert TypeAdapter(ClientClock).validate_python(text) is None


def test_instants_are_converted_to_utc() -> None:
    value = TypeAdapter(Instant).validate_python("2026-03-03T10:00:00-05:00")
    assert value == datetime(2026, 3, 3, 15, tzinfo=UTC)
    assert value.tzinfo is UTC
