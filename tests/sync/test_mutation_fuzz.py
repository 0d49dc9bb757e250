"""Hostile arguments for every registered mutator, pushed to a real server over HTTP (SQLite and
PostgreSQL): never a 5xx, never a stuck client, never a row written in another team, and the
team's version counter moves only for applied mutations.

Arguments are generated from each mutator's ``Args`` model, field by field, so a new mutator is
covered the day it registers: ids of the right kind, of the wrong kind, of the other team and
made up; instants with extreme offsets; huge and negative numbers; NUL and control characters.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic.fields import FieldInfo
from sqlalchemy import func, select

from agentdesk.models import AuthToken, User, utcnow
from agentdesk.models.db import make_session_factory
from agentdesk.models.versioning import current_version
from agentdesk.server.security import token_hash
from agentdesk.sync.bounds import NewRow, Ref
from agentdesk.sync.mutators import MUTATORS, Mutator
from agentdesk.sync.rows import SYNCED_MODELS
from tests.plugins.live_team import Team, ticket_args
from tests.sync.world import World, build_world

#: Kept modest: each example is a push and two reads over real HTTP on a shared CI machine.
EXAMPLES = 25
SLOW_EXAMPLES = int(os.environ.get("AGENTDESK_FUZZ_EXAMPLES", "100"))

_EXTREME_INSTANTS = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "1999-12-31T23:59:59Z",
    "2100-01-01T00:00:00+00:00",
    "2026-03-03T09:00:00",
    "not a date",
    "",
    10**20,
    -1,
]
_JUNK: list[Any] = [None, "", "\x00", 2**63, -(2**63) - 1, 1e308, [], {}, True, "x" * 70_000]


def _text() -> st.SearchStrategy[Any]:
    hostile = st.text(alphabet=st.characters(codec="utf-8", max_codepoint=0x3000), max_size=40)
    plain = st.sampled_from(["Printer on fire", "Customer called back", "<b>bold</b>"])
    return st.one_of(
        plain,
        plain,
        plain,
        hostile,
        st.sampled_from(
            [
                "\x00",
                "a\x00b",
                "\x1b[31m",
                "<b>x</b>",
                "x" * 301,
                "x" * 100_001,
                "",
                " ",
                "ok",
                "\ud7ff",
            ]
        ),
    )


def _naive(year: int) -> datetime:
    """A naive bound for ``st.datetimes`` (which adds the zone itself)."""
    return datetime(year, 1, 1, tzinfo=UTC).replace(tzinfo=None)


def _instants() -> st.SearchStrategy[Any]:
    offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
    recent = st.builds(
        lambda dt, tz: dt.replace(tzinfo=UTC).astimezone(tz).isoformat(),
        st.datetimes(min_value=_naive(2025), max_value=_naive(2027)),
        offsets,
    )
    extreme = st.builds(
        lambda dt, tz: dt.replace(tzinfo=tz).isoformat(),
        st.datetimes(min_value=_naive(1), max_value=_naive(9999)),
        offsets,
    )
    return st.one_of(recent, recent, recent, extreme, st.sampled_from(_EXTREME_INSTANTS))


def _unwrap(annotation: Any, metadata: list[Any]) -> tuple[Any, list[Any], bool]:
    """(base type, metadata, optional) of a field's annotation."""
    optional = False
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation, *extra = get_args(annotation)
            for m in extra:
                metadata = metadata + (m.metadata if isinstance(m, FieldInfo) else [m])
            continue
        if origin is Union or (origin is not None and type(None) in get_args(annotation)):
            args = [a for a in get_args(annotation) if a is not type(None)]
            optional = optional or len(args) < len(get_args(annotation))
            annotation = args[0]
            continue
        return annotation, metadata, optional


class Ids:
    """Ids the generator picks from: each team's rows by kind."""

    def __init__(self, ours: dict[str, list[str]], theirs: dict[str, list[str]]) -> None:
        self.ours, self.theirs = ours, theirs

    def strategy(self, marker: Ref | NewRow | None) -> st.SearchStrategy[Any]:
        kind = marker.model.__name__ if marker is not None else ""
        right = self.ours.get(kind, [])
        wrong = [i for k, v in self.ours.items() if k != kind for i in v]
        other = [i for v in self.theirs.values() for i in v]
        hostile = [
            st.uuids().map(str),
            st.sampled_from(wrong),
            st.sampled_from(other),
            st.sampled_from(["not-a-uuid", "", "00000000-0000-0000-0000-000000000000"]),
        ]
        # Hypothesis leans to earlier branches: the plausible ids come first.
        fresh = [st.uuids().map(str)] * 4 if isinstance(marker, NewRow) else []
        mine = [st.sampled_from(right)] * 4 if right and isinstance(marker, Ref) else []
        return st.one_of(mine + fresh + hostile)


def _field(info: FieldInfo, ids: Ids) -> st.SearchStrategy[Any]:
    base, metadata, optional = _unwrap(info.annotation, list(info.metadata))
    marker = next((m for m in metadata if isinstance(m, Ref | NewRow)), None)
    if base is uuid.UUID:
        good = ids.strategy(marker)
    elif base is str:
        good = _text()
    elif base is bool:
        good = st.booleans()
    elif base is int:
        good = st.one_of(
            st.integers(1, 4),
            st.integers(1, 4),
            st.integers(-5, 10),
            st.integers(-(2**70), 2**70),
            st.integers(1, 600_000),
        )
    elif base is Decimal:
        good = st.one_of(
            st.decimals(allow_nan=False, allow_infinity=False).map(str),
            st.sampled_from(["1e400", "-1", "12345678901234.5", "NaN", "0.001"]),
        )
    elif get_origin(base) is Literal:
        good = st.sampled_from([*get_args(base), "bogus"])
    elif "datetime" in repr(base).lower():
        good = _instants()
    else:
        raise AssertionError(f"no strategy for {base!r}: teach this test the new type")
    options = [good] * 12 + [st.sampled_from(_JUNK)]
    if optional:
        options.append(st.none())
    return st.one_of(options)


def _arguments(m: Mutator, ids: Ids) -> st.SearchStrategy[dict[str, Any]]:
    fields = {name: _field(info, ids) for name, info in m.args.model_fields.items()}
    required = {n for n, info in m.args.model_fields.items() if info.is_required()}
    return st.fixed_dictionaries(
        {n: s for n, s in fields.items() if n in required},
        optional={n: s for n, s in fields.items() if n not in required},
    )


class Fuzz:
    def __init__(self, team: Team, rival: World) -> None:
        self.team, self.rival = team, rival
        self.http = requests.Session()
        self.tokens: dict[str, str] = {}
        self.clients: dict[str, tuple[uuid.UUID, int]] = {}
        with team.db() as s:
            for who, user_id in team.world.users.items():
                token = uuid.uuid4().hex
                s.add(
                    AuthToken(
                        user_id=user_id,
                        token_hash=token_hash(token),
                        expires_at=utcnow() + timedelta(hours=2),
                    )
                )
                self.tokens[who] = token

    def push(self, who: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
        client, last = self.clients.get(who, (uuid.uuid4(), 0))
        mid = last + 1
        r = self.http.post(
            f"{self.team.url}/api/v1/sync/push",
            timeout=60,
            headers={"Authorization": f"Bearer {self.tokens[who]}"},
            json={"client_id": str(client), "mutations": [{"id": mid, "name": name, "args": args}]},
        )
        assert r.status_code < 500, f"{name}({args!r}) -> {r.status_code}: {r.text[:500]}"
        assert r.status_code == 200, f"{name}({args!r}) -> {r.status_code}: {r.text[:500]}"
        body = r.json()
        # Never stuck: the mutation is processed (applied or refused) and acknowledged.
        assert body["expected_mutation_id"] is None, body
        assert body["last_mutation_id"] == mid, body
        self.clients[who] = (client, mid)
        return dict(body["results"][0])

    def snapshot(self) -> tuple[int, int]:
        """(our team's version, rows of the other team)."""
        with self.team.db() as s:
            version = current_version(s, self.team.world.tenant)
            theirs = int(
                s.scalar(
                    select(
                        sum(  # one round trip: a scalar subquery per table
                            (
                                select(func.count())
                                .select_from(model)
                                .where(model.tenant_id == self.rival.tenant)
                                .scalar_subquery()
                                for model in SYNCED_MODELS[1:]
                            ),
                            select(func.count())
                            .select_from(SYNCED_MODELS[0])
                            .where(SYNCED_MODELS[0].tenant_id == self.rival.tenant)
                            .scalar_subquery(),
                        )
                    )
                )
                or 0
            )
        return version, theirs


def _ids_of(team: Team, tenant: uuid.UUID) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    with team.db() as s:
        for model in SYNCED_MODELS:
            rows = s.scalars(select(model.id).where(model.tenant_id == tenant).limit(20))
            out[model.__name__] = [str(i) for i in rows]
        out.setdefault(User.__name__, [])
    return out


@pytest.fixture
def fuzz(team: Team) -> Iterator[tuple[Fuzz, Ids]]:
    rival = build_world(make_session_factory(team.engine), prefix="b-", name="Rival Support")
    f = Fuzz(team, rival)
    # Some rows of every kind on our side, so right-kind ids can succeed.
    now = utcnow()
    org = str(team.world.orgs["globex"])
    ticket = ticket_args(team.world)
    for who, name, args in [
        ("agent", "create_ticket", ticket),
        (
            "consultant",
            "add_time_entry",
            dict(
                entry_id=str(uuid.uuid4()),
                organisation_id=org,
                started_at=(now - timedelta(hours=3)).isoformat(),
                ended_at=(now - timedelta(hours=2)).isoformat(),
            ),
        ),
        (
            "consultant",
            "schedule_appointment",
            dict(
                appointment_id=str(uuid.uuid4()),
                organisation_id=org,
                starts_at=(now + timedelta(days=3)).isoformat(),
                ends_at=(now + timedelta(days=3, hours=1)).isoformat(),
            ),
        ),
        (
            "lead",
            "record_hour_purchase",
            dict(
                block_id=str(uuid.uuid4()),
                organisation_id=org,
                minutes=600,
                purchased_at=now.isoformat(),
            ),
        ),
        (
            "consultant2",
            "start_timer",
            dict(timer_id=str(uuid.uuid4()), organisation_id=org, started_at=now.isoformat()),
        ),
    ]:
        assert f.push(who, name, args)["status"] == "applied"
    rival_ticket = ticket_args(rival)
    rival.now = now
    rival.run("lead", "create_ticket", **rival_ticket)  # their rows: a ticket among them
    ids = Ids(_ids_of(team, team.world.tenant), _ids_of(team, rival.tenant))
    yield f, ids
    f.http.close()


def _run(fuzz: tuple[Fuzz, Ids], examples: int) -> None:
    f, ids = fuzz
    names = sorted(MUTATORS)
    people = sorted(f.tokens)

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(names), label="mutator")
        who = data.draw(st.sampled_from(people), label="who")
        args = data.draw(_arguments(MUTATORS[name], ids), label="args")
        before, theirs_before = f.snapshot()
        result = f.push(who, name, args)
        after, theirs_after = f.snapshot()
        assert theirs_after == theirs_before, f"{name} wrote into the other team: {args!r}"
        if result["status"] == "applied":
            assert after > before, f"{name} applied without a version: {args!r}"
        else:
            assert result["status"] == "rejected", result
            assert result["code"], result
            assert result["code"] != "internal_error", result  # a refusal the rules foresaw
            assert after == before, f"rejected {name} moved the version: {result!r}"

    run()
    # Every mutator was tried at least once, whatever the draw.
    for name in names:
        args = _one_example(MUTATORS[name], ids)
        result = f.push("lead", name, args)
        assert result["status"] in ("applied", "rejected"), result


def _one_example(m: Mutator, ids: Ids) -> dict[str, Any]:
    example: dict[str, Any] = {}

    @settings(
        max_examples=1,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(_arguments(m, ids))
    def draw(args: dict[str, Any]) -> None:
        example.update(args)

    draw()
    return example


def test_hostile_arguments_for_every_mutator(fuzz: tuple[Fuzz, Ids]) -> None:
    _run(fuzz, EXAMPLES)


@pytest.mark.slow
def test_hostile_arguments_for_every_mutator_at_length(fuzz: tuple[Fuzz, Ids]) -> None:
    _run(fuzz, SLOW_EXAMPLES)
