"""The cycle collector's pause around a statement build: counted across threads, restored."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from agentdesk.queries import collector


@pytest.fixture(autouse=True)
def _collector_on() -> Iterator[None]:
    """These tests start with automatic collection on (as a server process has it); the test
    session keeps it off (tests/conftest.py), so it is put back as it was."""
    was_enabled = gc.isenabled()
    gc.enable()
    yield
    if not was_enabled:
        gc.disable()


def test_paused_inside_and_back_on_after_even_on_an_error() -> None:
    assert gc.isenabled()
    with collector.paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector.paused():
        raise RuntimeError("the build failed")
    assert gc.isenabled()


def test_the_last_of_overlapping_holders_turns_it_back_on() -> None:
    first_in, second_in, first_may_leave = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with collector.paused():
            first_in.set()
            second_in.wait(5)
            first_may_leave.wait(5)
        seen.append(gc.isenabled())  # the second still builds: still paused

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait(5)
    with collector.paused():
        second_in.set()
        first_may_leave.set()
        thread.join(5)
        assert not gc.isenabled()
    assert seen == [False]
    assert gc.isenabled()


def test_left_off_if_it_was_off() -> None:
    gc.disable()
    with collector.paused():
        assert not gc.isenabled()
    assert not gc.isenabled()
