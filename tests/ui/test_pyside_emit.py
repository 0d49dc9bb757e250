"""Guard against PySide6 builds whose ``Signal.emit`` drops a reference to ``True``.

PySide6 6.12.0 does: every Python-side ``emit()`` loses one reference, and after some thousands
(the queue countdown emits twice a second) CPython frees ``True`` and aborts ("bool_dealloc").
pyproject.toml excludes that release; this test fails on any build with the same bug.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Source(QObject):
    ping = Signal()
    value = Signal(object)


def test_emit_keeps_reference_counts_balanced() -> None:
    source = _Source()
    got: list[object] = []
    source.ping.connect(lambda: got.append(None))
    source.value.connect(got.append)
    before = sys.getrefcount(True)
    for i in range(2000):
        source.ping.emit()
        source.value.emit(i)
    assert len(got) == 4000
    assert abs(sys.getrefcount(True) - before) < 50
