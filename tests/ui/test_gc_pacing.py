"""The collector's pacing (agentdesk/ui/gc_pacing.py): what is alive after start-up and quiet
spells is frozen, so the automatic full passes that run on any thread (and hold the GIL while
the GUI thread waits) never walk it, and a real full collection runs only while the window is
not the active one."""

from __future__ import annotations

import gc
import sys
import weakref
from collections.abc import Callable, Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from agentdesk.ui.gc_pacing import (
    FREEZE_INSTEAD_ABOVE,
    GUI_SWITCH_INTERVAL_S,
    RECOUNT_AFTER,
    CollectorPacing,
)


class Node:
    """A cycle: it can be freed only by the cyclic collector, never by refcounting."""

    def __init__(self) -> None:
        self.me = self


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def pacing(qapp: QApplication, clock: Clock) -> Iterator[CollectorPacing]:
    pacer = CollectorPacing(qapp, refreeze_every_ms=3_600_000, full_every_s=300, clock=clock)
    pacer.start()
    yield pacer
    pacer.stop()
    assert gc.get_freeze_count() == 0


def _walked_by_a_full_pass(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects(generation=2))


def test_what_was_alive_at_start_is_not_walked_by_automatic_full_passes(
    pacing: CollectorPacing,
) -> None:
    assert gc.get_freeze_count() > 0
    assert pacing.full_collections == 1
    # A module-level object alive since import time sits in the permanent generation.
    assert not _walked_by_a_full_pass(Node)


def test_a_refreeze_moves_survivors_out_of_the_full_pass(pacing: CollectorPacing) -> None:
    rows = [[i] for i in range(100)]  # the kind of cache a queue load leaves behind
    gc.collect()  # now in generation 2: a full pass would walk it
    assert _walked_by_a_full_pass(rows)
    pacing.refreeze()
    assert not _walked_by_a_full_pass(rows)
    assert pacing.refreezes == 1


def test_young_cyclic_garbage_is_collected_before_a_refreeze(pacing: CollectorPacing) -> None:
    node = Node()
    gone = weakref.ref(node)
    del node
    pacing.refreeze()
    assert gone() is None


def test_a_cycle_frozen_alive_and_dropped_is_freed_when_the_window_goes_inactive(
    pacing: CollectorPacing, clock: Clock
) -> None:
    node = Node()
    gone = weakref.ref(node)
    pacing.refreeze()  # frozen while alive
    del node
    gc.collect()
    assert gone() is not None, "explicit passes do not walk the permanent generation"

    pacing.state_changed(Qt.ApplicationState.ApplicationActive)
    clock.now += 301
    pacing.state_changed(Qt.ApplicationState.ApplicationActive)
    assert gone() is not None, "no full collection while the agent is using the window"
    assert pacing.full_collections == 1

    pacing.state_changed(Qt.ApplicationState.ApplicationInactive)
    assert gone() is None
    assert pacing.full_collections == 2
    assert gc.get_freeze_count() > 0, "what is still alive is frozen again"


def test_full_collections_are_not_repeated_within_their_interval(
    pacing: CollectorPacing, clock: Clock
) -> None:
    clock.now += 299
    pacing.state_changed(Qt.ApplicationState.ApplicationInactive)
    assert pacing.full_collections == 1
    clock.now += 2
    pacing.state_changed(Qt.ApplicationState.ApplicationHidden)
    assert pacing.full_collections == 2


def test_automatic_collection_is_off_while_paced_and_restored_after(qapp: QApplication) -> None:
    """A pass on a worker thread could destroy a Qt object there: only the GUI thread's timer
    collects while the app is paced; stop() gives back the state it found."""
    gc.enable()
    try:
        pacer = CollectorPacing(qapp, freeze=False)
        pacer.start()
        assert not gc.isenabled()
        pacer.stop()
        assert gc.isenabled()
    finally:
        gc.disable()  # as the test session keeps it (tests/conftest.py)


def test_the_switch_interval_is_short_while_paced_and_restored_after(qapp: QApplication) -> None:
    """The GUI thread waits for the interpreter lock up to a switch interval per Python call
    while a worker runs Python; the desktop shortens it (bench/balance_bench.py), and stop()
    gives back what it found."""
    before = sys.getswitchinterval()
    pacer = CollectorPacing(qapp, freeze=False)
    pacer.start()
    try:
        assert sys.getswitchinterval() == pytest.approx(GUI_SWITCH_INTERVAL_S)
        assert before > GUI_SWITCH_INTERVAL_S
    finally:
        pacer.stop()
        gc.disable()  # as the test session keeps it (tests/conftest.py)
    assert sys.getswitchinterval() == before
    untouched = CollectorPacing(qapp, freeze=False, switch_interval_s=None)
    untouched.start()
    assert sys.getswitchinterval() == before
    untouched.stop()
    gc.disable()


def test_the_gui_thread_collects_what_the_thresholds_say_is_due(
    pacing: CollectorPacing,
) -> None:
    node = Node()
    gone = weakref.ref(node)
    del node
    threshold = gc.get_threshold()[0]
    keep: list[list[int]] = [
        [] for _ in range(threshold + 1)
    ]  # enough tracked allocations to make a pass due
    assert gc.get_count()[0] > threshold
    before = pacing.young_collections
    pacing.collect_due()
    assert pacing.young_collections == before + 1
    assert gc.get_count()[0] < threshold
    del keep
    assert gone() is None


def test_a_burst_of_new_objects_is_frozen_not_walked_and_its_cycles_freed_later(
    pacing: CollectorPacing, clock: Clock
) -> None:
    """A pull page or a replayed ledger leaves thousands of new objects at once: walking them
    on the GUI thread took up to ~30 ms, freezing them costs nothing. A cycle among them is
    freed by the next full collection."""
    node = Node()
    gone = weakref.ref(node)
    del node
    burst: list[list[int]] = [[] for _ in range(FREEZE_INSTEAD_ABOVE + 1)]
    assert gc.get_count()[0] > FREEZE_INSTEAD_ABOVE
    young, frozen = pacing.young_collections, gc.get_freeze_count()
    pacing.collect_due()
    assert pacing.burst_freezes == 1
    assert pacing.young_collections == young, "not walked"
    assert gc.get_freeze_count() > frozen + FREEZE_INSTEAD_ABOVE
    assert gc.get_count()[0] < gc.get_threshold()[0]
    assert gone() is not None, "the cycle waits"
    clock.now += 301
    pacing.state_changed(Qt.ApplicationState.ApplicationInactive)
    assert gone() is None
    del burst


#: A burst well over the freeze threshold (the young count is only roughly the objects made).
BURST = 2 * FREEZE_INSTEAD_ABOVE


def factor_for(frozen: int) -> float:
    """A growth factor that allows at least 10% and at least ten bursts: the same few bursts
    on any heap (the file alone holds ~175,000 objects; the whole suite ~9 million)."""
    return 1 + max(0.1, 10 * BURST / frozen)


@pytest.fixture
def paced(qapp: QApplication, clock: Clock) -> Iterator[Callable[[], CollectorPacing]]:
    """Started pacers with a growth factor fit for the heap (``factor_for``); stopped after."""
    made: list[CollectorPacing] = []

    def make() -> CollectorPacing:
        pacer = CollectorPacing(
            qapp,
            refreeze_every_ms=3_600_000,
            full_every_s=300,
            full_when_frozen_grows=factor_for(max(gc.get_freeze_count(), len(gc.get_objects()))),
            clock=clock,
        )
        made.append(pacer)
        pacer.start()
        return pacer

    yield make
    for pacer in made:
        pacer.stop()  # left a stopped child of the application, as the fixture above leaves it
    assert gc.get_freeze_count() == 0


def allowed_growth(pacer: CollectorPacing) -> float:
    """How many objects may be frozen on top of the current heap before a full collection."""
    return (pacer._full_when_frozen_grows - 1) * gc.get_freeze_count()


class CountedWalks:
    """``gc.get_freeze_count``, counted: each call walks the whole frozen heap."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self._real = gc.get_freeze_count
        monkeypatch.setattr(gc, "get_freeze_count", self)

    def __call__(self) -> int:
        self.calls += 1
        return self._real()


def test_bursts_that_grow_what_is_frozen_bring_the_full_collection_forward(
    paced: Callable[[], CollectorPacing], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cycles frozen with bursts wait for a full collection; once the frozen heap has grown by
    the factor (the app's is 2) since the last one, it runs then, not before, so memory stays
    bounded while the window stays active. The frozen heap is walked (counted exactly) only
    when the bursts' own count says it may have grown."""
    pacer = paced()
    node = Node()
    gone = weakref.ref(node)
    del node
    need = allowed_growth(pacer)
    fulls = pacer.full_collections
    walks = CountedWalks(monkeypatch)
    kept: list[list[list[int]]] = []
    grown = 0
    while pacer.full_collections == fulls:
        assert grown <= need + 2 * BURST, "grown by the factor, yet no full collection"
        kept.append([[] for _ in range(BURST)])
        grown += BURST + 1
        pacer.collect_due()
    assert grown > need - 2 * BURST, "a full collection before the heap grew"
    assert pacer.full_collections == fulls + 1
    assert walks.calls <= 3, "the frozen heap is walked to confirm, not at every burst"
    assert len(kept) >= 5
    assert gone() is None
    assert pacer.burst_freezes >= 1
    del kept


def test_frozen_objects_freed_since_are_not_counted_as_growth(
    paced: Callable[[], CollectorPacing],
) -> None:
    """A pull replaces what it froze before (old rows freed, new ones frozen): the frozen heap
    does not grow, and no full pass runs however many pulls come."""
    pacer = paced()
    need = allowed_growth(pacer)
    fulls = pacer.full_collections
    churned = 0
    rows: list[list[int]] = []
    while churned < 2 * need:
        pulled: list[list[int]] = [[] for _ in range(BURST)]
        churned += BURST
        pacer.collect_due()
        rows = pulled  # the last pull's rows, frozen by then, are freed
        del pulled
    assert pacer.full_collections == fulls
    assert pacer.burst_freezes * BURST >= churned
    assert pacer.exact_counts >= 1, "the estimate crossed the limit and was corrected"
    del rows


def test_a_heap_just_under_the_limit_is_not_walked_at_every_burst(
    paced: Callable[[], CollectorPacing], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Data grown to just under the limit, then pulls replacing their rows: after one exact
    count, the next waits until a quarter of the heap more has been frozen (RECOUNT_AFTER)."""
    pacer = paced()
    near: list[list[int]] = [[] for _ in range(int(allowed_growth(pacer)) - 4 * BURST)]
    pacer.collect_due()  # frozen as a burst, under the limit by four bursts
    fulls = pacer.full_collections
    per_recount = RECOUNT_AFTER * gc.get_freeze_count() / BURST  # bursts between two counts
    walks = CountedWalks(monkeypatch)
    rows: list[list[int]] = []
    pulls = 30
    for _ in range(pulls):
        pulled: list[list[int]] = [[] for _ in range(BURST)]
        pacer.collect_due()
        rows = pulled
        del pulled
    assert pacer.full_collections == fulls
    assert walks.calls >= 1
    assert walks.calls <= 1 + pulls / per_recount, f"{walks.calls} walks in {pulls} pulls"
    del near, rows


def test_the_data_loaded_after_start_up_is_not_counted_as_growth(
    paced: Callable[[], CollectorPacing],
) -> None:
    """The replica's rows and the queue load in the first minute: the first re-freeze is what
    "grown" is measured from, so the agent's first bursts do not trigger a full pass."""
    pacer = paced()
    loaded: list[list[int]] = [[] for _ in range(int(allowed_growth(pacer)) + 2 * BURST)]
    pacer.refreeze()
    fulls = pacer.full_collections
    burst: list[list[int]] = [[] for _ in range(BURST)]
    pacer.collect_due()
    assert pacer.burst_freezes == 1
    assert pacer.full_collections == fulls, "loading the data is not growth"
    del loaded, burst
