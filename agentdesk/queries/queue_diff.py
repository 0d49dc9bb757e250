"""How one sorted key list of the queue becomes another, planned off the GUI thread (Qt-free).

A Qt model must announce every change of its rows as it makes it (rows removed, inserted,
moved, or a layout change), and at 100,000 rows the O(n) part of working out those changes
(merging two key lists, indexing the new one by ticket id) costs more than the GUI thread may
spend. So the worker that fetched the keys (:func:`prepare`) or re-read the tickets a pull
changed (:func:`plan_pull`) also plans the changes against a snapshot of the list on screen;
the GUI thread then only replays the plan as signals, and only if the list is still that
snapshot (the model's version number says so).

**A re-query** (search typed, periodic refresh, a large sync) compared with the list on screen:

* another saved view (or user): a reset - a different list, nothing to keep;
* another sort of the same rows: a layout change, the persistent indexes (selection, current
  row) moved to their tickets' new rows;
* the same view and sort: the diff of the two sorted key lists as contiguous runs of removed
  and inserted rows (:func:`diff_plan`); the model resets instead past a share of changed rows
  or a number of runs, where the per-run signals cost more than the view re-reading its rows.

**A sync pull** (:func:`plan_pull`) changes a few rows of a long list. When few rows change
place (a retriaged tier, a column sort's value), the GUI thread applies each changed ticket as a
row move, removal or insertion found by binary search: cheap, and the exact signals a view
animates best. When many do (a pull of 1,000 changes reorders hundreds of rows), hundreds of
row moves cost the GUI thread seconds on a loaded machine (docs/performance.md, "GUI thread
under load"), so the worker plans the tickets that left or joined as runs of removed and
inserted rows and the moves as one layout change to the final list. Never a reset.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .queue import Key, QueueQuery, is_queue_order, kid
from .queue_rows import ChangedRow

__all__ = ["DiffPlan", "Fetched", "PullPlan", "apply_mode", "diff_plan", "plan_pull", "prepare"]


@dataclass
class DiffPlan:
    """A diff between two key lists in the same order."""

    removals: list[list[int]]  # [start, count] in old indices
    insertions: list[tuple[int, list[Key]]]  # (start in new indices, keys)
    changed: int
    runs: int


def diff_plan(old: Sequence[Key], new: Sequence[Key]) -> DiffPlan:
    """Merge two sorted key lists into contiguous runs of removals and insertions."""
    removals: list[list[int]] = []
    insertions: list[tuple[int, list[Key]]] = []
    i = j = 0
    n_old, n_new = len(old), len(new)
    while i < n_old or j < n_new:
        if j >= n_new or (i < n_old and old[i] < new[j]):
            if removals and removals[-1][0] + removals[-1][1] == i:
                removals[-1][1] += 1
            else:
                removals.append([i, 1])
            i += 1
        elif i >= n_old or new[j] < old[i]:
            if insertions and insertions[-1][0] + len(insertions[-1][1]) == j:
                insertions[-1][1].append(new[j])
            else:
                insertions.append((j, [new[j]]))
            j += 1
        else:
            i += 1
            j += 1
    changed = sum(c for _, c in removals) + sum(len(k) for _, k in insertions)
    return DiffPlan(removals, insertions, changed, len(removals) + len(insertions))


def apply_mode(shown: QueueQuery, wanted: QueueQuery) -> str:
    """How a result for ``wanted`` replaces the list of ``shown``: a reset for another set of
    rows, a layout change for another order of them, else a diff."""
    if shown.rows_key() != wanted.rows_key():
        return "reset"
    same_order = (
        is_queue_order(shown.sort_column) and is_queue_order(wanted.sort_column)
    ) or shown.sort_column == wanted.sort_column
    shown_desc = shown.descending and shown.sort_column >= 0
    wanted_desc = wanted.descending and wanted.sort_column >= 0
    if not same_order or shown_desc != wanted_desc:
        return "layout"
    return "diff"


@dataclass
class Fetched:
    """A query result with its O(n) preparation done (on the worker thread)."""

    query: QueueQuery
    keys: list[Key]
    pos: dict[bytes, Key]
    base_version: int
    mode: str
    plan: DiffPlan | None = None
    same_rows: bool = False


def prepare(
    query: QueueQuery, keys: list[Key], snapshot: Sequence[Key], version: int, mode: str
) -> Fetched:
    pos = {kid(k): k for k in keys}
    fetched = Fetched(query, keys, pos, version, mode)
    if mode == "diff":
        fetched.plan = diff_plan(snapshot, keys)
    elif mode == "layout":
        fetched.same_rows = len(keys) == len(snapshot) and all(kid(k) in pos for k in snapshot)
    return fetched


@dataclass
class PullPlan:
    """A sync pull's changes to the list on screen.

    ``rows`` are the re-read tickets, each with its key when the query still lists it. With at
    most ``move_limit`` rows changing place the GUI thread applies them one by one (a binary
    search and a row signal each, against whatever the list is then). With more, the plan was
    made against a snapshot of the list (``base_version``): ``membership``, the rows that left or
    joined, as runs, then one layout change to ``keys`` (the final list) with ``moved``, the new
    keys of the tickets that changed place. The model updates its id index with the runs and
    ``moved`` (a few hundred entries) rather than taking a new index of every row: building
    one was a hundred thousand Python calls per pull, all of them holding the GIL against the
    GUI thread.
    """

    query: QueueQuery
    base_version: int
    ids: frozenset[uuid.UUID]
    rows: dict[bytes, ChangedRow]
    moves: int
    membership: DiffPlan | None = None
    keys: list[Key] | None = None
    moved: list[Key] | None = None


def plan_pull(
    query: QueueQuery,
    snapshot: Sequence[Key],
    old: Mapping[bytes, Key],
    ids: frozenset[uuid.UUID],
    rows: Mapping[bytes, ChangedRow],
    base_version: int,
    move_limit: int,
) -> PullPlan:
    """Plan a pull's changes against ``snapshot`` (the sorted list on screen, whose id index
    gave ``old``: the current keys of the changed tickets that are listed)."""
    removed: set[Key] = set()
    inserted: list[Key] = []
    moves: list[tuple[Key, Key]] = []
    for tid in ids:
        before = old.get(tid.bytes)
        entry = rows.get(tid.bytes)
        after = entry.key if entry is not None else None
        if after is None:
            if before is not None:
                removed.add(before)
        elif before is None:
            inserted.append(after)
        elif before != after:
            moves.append((before, after))
    plan = PullPlan(query, base_version, ids, dict(rows), len(moves))
    if len(moves) <= move_limit:
        return plan
    if removed or inserted:
        middle = [key for key in snapshot if key not in removed] if removed else list(snapshot)
        if inserted:
            middle.extend(inserted)
            middle.sort()  # two sorted runs: Timsort merges them in O(n)
        plan.membership = diff_plan(snapshot, middle)
    else:  # only moves (a retriage): no row leaves or joins, no merge of the whole list
        middle = list(snapshot)
        plan.membership = DiffPlan([], [], 0, 0)
    leaving = {before for before, _ in moves}
    final = [key for key in middle if key not in leaving]
    plan.moved = sorted(after for _, after in moves)
    final.extend(plan.moved)
    final.sort()
    plan.keys = final
    return plan
