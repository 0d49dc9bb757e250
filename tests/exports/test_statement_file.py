"""One statement file for the server, the desktop and the command line, and the collector's pause
held until its objects are gone."""

from __future__ import annotations

import gc
import io
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import update

from agentdesk.exports.statement_csv import write_statement_csv
from agentdesk.exports.statement_file import replace_file, statement_file
from agentdesk.models import Organisation
from agentdesk.policy.billing import TimeReportRow, WorkItem
from agentdesk.queries.ledger import QueryError
from agentdesk.queries.statement import StatementEntry, read_statement
from tests.queries.conftest import Ledger, ledger  # noqa: F401  (the fixture)
from tests.queries.test_consultant_queries import at

OCTOBER = (date(2026, 10, 1), date(2026, 10, 31))


def _busy_october(ledger: Ledger) -> None:  # noqa: F811
    """Enough entries that leaving them alive would set off the collector (700 allocations)."""
    ledger.buy(at("2026-10-01", "08:00"), 40)
    for day in range(1, 31):
        stamp = f"2026-10-{day:02d}"
        for hour in range(8, 16):
            ledger.work(at(stamp, f"{hour:02d}:00"), at(stamp, f"{hour:02d}:20"), note="Set-up")


#: The objects a statement makes per entry (with the driver's rows and the CSV's cells).
_PER_ENTRY = (WorkItem, TimeReportRow, StatementEntry)


@pytest.fixture
def collector_on() -> Iterator[list[int]]:
    """Automatic collection on, as in a server or desktop process (the test session keeps it
    off), and, as each collection of the young generation starts, how many of the statement's
    per-entry objects it is about to scan."""
    scanned: list[int] = []

    def record(phase: str, info: dict[str, Any]) -> None:
        if phase == "start" and info["generation"] == 0:
            young = gc.get_objects(generation=0)
            scanned.append(sum(type(o) in _PER_ENTRY for o in young))

    was_enabled = gc.isenabled()
    gc.enable()
    gc.callbacks.append(record)
    try:
        yield scanned
    finally:
        gc.callbacks.remove(record)
        if not was_enabled:
            gc.disable()


def test_the_csv_is_the_written_statement_with_a_byte_order_mark(ledger: Ledger) -> None:  # noqa: F811
    _busy_october(ledger)
    now = at("2026-11-02", "12:00")
    with ledger.session() as s:
        made = statement_file(s, ledger.org(), *OCTOBER, "csv", now=now)
        view = read_statement(s, ledger.org(), *OCTOBER, now=now)
    out = io.StringIO()
    write_statement_csv(out, view)
    assert made.body == out.getvalue().encode("utf-8-sig")
    assert made.body.startswith(b"\xef\xbb\xbfSection,Date,")
    assert (made.organisation, made.start, made.end) == (view.organisation, *OCTOBER)
    assert (
        (made.billed, made.closing) == (view.billed, view.closing) == (30 * 180, 0)
    )  # 8 x 20 min a day, rounded up to 180
    assert made.filename == "Globex-2026-10-01-2026-10-31.csv"


def test_the_pdf_reads_back_with_the_same_totals(ledger: Ledger) -> None:  # noqa: F811
    _busy_october(ledger)
    with ledger.session() as s:
        made = statement_file(s, ledger.org(), *OCTOBER, "pdf", now=at("2026-11-02", "12:00"))
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(made.body)).pages)
    assert f"Total billed in the period {made.billed} min" in text
    assert made.filename.endswith("-2026-10-01-2026-10-31.pdf")


def test_an_organisation_name_without_letters_or_digits_still_names_a_file(
    ledger: Ledger,  # noqa: F811
) -> None:
    ledger.buy(at("2026-10-01", "08:00"), 1)
    with ledger.session() as s:
        s.execute(update(Organisation).where(Organisation.id == ledger.org()).values(name="../ /"))
        s.commit()
    with ledger.session() as s:
        made = statement_file(s, ledger.org(), *OCTOBER, "csv", now=at("2026-11-02", "12:00"))
    assert made.filename == "statement-2026-10-01-2026-10-31.csv"


def test_bad_requests_are_refused_before_anything_is_made(ledger: Ledger) -> None:  # noqa: F811
    with ledger.session() as s, pytest.raises(ValueError, match="csv or pdf, not 'xlsx'"):
        statement_file(s, ledger.org(), *OCTOBER, "xlsx")
    with ledger.session() as s, pytest.raises(QueryError, match=r"ends .* before it starts"):
        statement_file(s, ledger.org(), date(2026, 10, 31), date(2026, 10, 1), "csv")


def test_its_objects_are_freed_before_the_collector_is_back(
    ledger: Ledger,  # noqa: F811
    collector_on: list[int],
) -> None:
    """Collection that comes back while the statement's objects are alive scans all of them on
    its next turn: the read alone hands back a view holding them (the check that this test can
    fail). The statement file frees them first, so no collection after it finds any. (Building
    the queries leaves a few thousand SQLAlchemy objects in cycles: those are the collector's
    to free, and as many for a day's statement as for a year's.)"""
    _busy_october(ledger)
    now = at("2026-11-02", "12:00")
    entries = 30 * 8
    with ledger.session() as s:
        gc.collect()
        view = read_statement(s, ledger.org(), *OCTOBER, now=now)
        gc.collect(generation=0)  # the collector's next turn, if it has not come yet
        assert max(collector_on) >= 3 * entries, collector_on
        del view
        gc.collect()
        collector_on.clear()
        made = statement_file(s, ledger.org(), *OCTOBER, "csv", now=now)
        gc.collect(generation=0)
    assert made.billed == 30 * 180
    assert collector_on == [0] * len(collector_on), collector_on


def test_replace_file_leaves_the_old_file_when_writing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "statements"
    folder.mkdir()
    target = folder / "october.csv"
    target.write_bytes(b"the good one")
    replace_file(target, b"a new one")
    assert target.read_bytes() == b"a new one"

    write_bytes = Path.write_bytes

    def half_then_full_disk(self: Path, data: bytes) -> int:
        write_bytes(self, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(Path, "write_bytes", half_then_full_disk)
        with pytest.raises(OSError, match="No space left"):
            replace_file(target, b"a third version, cut short")
    assert target.read_bytes() == b"a new one"  # the last good file, whole
    assert sorted(p.name for p in folder.iterdir()) == ["october.csv"]  # no partial left

    def refused(self: Path, target: Path) -> Path:
        raise PermissionError(13, "Permission denied")

    with monkeypatch.context() as patched:
        patched.setattr(Path, "replace", refused)
        with pytest.raises(PermissionError):
            replace_file(target, b"a fourth version")
    assert target.read_bytes() == b"a new one"
    assert sorted(p.name for p in folder.iterdir()) == ["october.csv"]
