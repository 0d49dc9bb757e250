"""The sync wire protocol (``/api/v1/sync/*``), shared by the server and the desktop client.

Modelled on Replicache's push/pull with a per-client ``lastMutationID``, Linear's
server-ordered sync ids and CouchDB's changes feed:

* **push**: a batch of ``(client_id, mutation_id, name, args)``. Mutation ids are per client and
  consecutive from 1. Each runs once, in its own transaction; a retry of an applied mutation is
  a no-op; a rejected mutation is recorded with its reason and still acknowledged (the outbox
  never jams); a gap stops the batch and ``last_mutation_id`` tells the client where to resend
  from.
* **pull**: rows with ``version > cursor`` in version order, paged at version boundaries (a
  page never ends inside one transaction's changes), tombstones included, plus the client's
  ``last_mutation_id`` and the rejections recorded after ``rejections_after``. ``reset`` tells a
  client whose cursor the server cannot serve to start over from 0.
* **poke**: a long-poll that answers as soon as the tenant's version passes ``cursor``.

Client clocks travel only as data (``client_time``); the server orders everything.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .bounds import MAX_WIRE_INT, ClientClock, WireInt

#: The sync protocol's version. Raise it with any change an older desktop would misread: a
#: schema change to a synced table (a new column it would drop, a new mutation it cannot
#: replay) or a change of these messages. Desktops send theirs in :data:`PROTOCOL_HEADER` on
#: every sync request; the server refuses versions it no longer serves with 426 and code
#: ``client_too_old`` (or ``server_too_old`` for a desktop newer than the server), and the
#: desktop keeps its outbox until it is updated.
PROTOCOL_VERSION = 1
PROTOCOL_HEADER = "X-AgentDesk-Protocol"
#: What a request without the header speaks: the desktops released before the header existed.
UNDECLARED_PROTOCOL = 1

#: Mutations per push, rows per pull page: bounds on request size and transaction length.
MAX_PUSH_BATCH = 500
DEFAULT_PULL_LIMIT = 5000
MAX_PULL_LIMIT = 20000
#: A poke waits at most this long (seconds); proxies commonly cut idle requests at 30 s.
MAX_POKE_WAIT = 25.0


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Mutation(_Model):
    id: Annotated[int, Field(ge=1, le=MAX_WIRE_INT)]
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z_]+$")]
    #: Bounded field by field by the mutator's own ``Args`` model (``sync.bounds``).
    args: Annotated[dict[str, Any], Field(max_length=64)]
    client_time: ClientClock = None


class PushRequest(_Model):
    client_id: uuid.UUID
    mutations: Annotated[list[Mutation], Field(min_length=1, max_length=MAX_PUSH_BATCH)]


MutationStatus = Literal["applied", "rejected", "duplicate"]


class MutationResult(_Model):
    id: int
    status: MutationStatus
    code: str | None = None
    message: str | None = None
    field: str | None = None


class PushResponse(_Model):
    #: The highest mutation id the server has processed for this client (applied or rejected).
    last_mutation_id: int
    results: list[MutationResult]
    #: Set when the batch stopped at a gap: the id the server expects next.
    expected_mutation_id: int | None = None
    #: The tenant version after this push (a hint to pull).
    version: int


class PullRequest(_Model):
    client_id: uuid.UUID
    cursor: WireInt
    limit: Annotated[int, Field(ge=1, le=MAX_PULL_LIMIT)] = DEFAULT_PULL_LIMIT
    #: Report rejections of this client's mutations with ids above this.
    rejections_after: WireInt = 0


class Change(_Model):
    table: str
    id: uuid.UUID
    version: int
    deleted: bool
    values: dict[str, Any]


class Rejection(_Model):
    mutation_id: int
    name: str
    code: str
    message: str
    field: str | None = None


class PullResponse(_Model):
    cursor: int
    has_more: bool
    changes: list[Change]
    last_mutation_id: int
    rejections: list[Rejection]
    reset: bool = False


class PokeResponse(_Model):
    version: int
    changed: bool
