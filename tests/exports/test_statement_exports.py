"""The statement's CSV and PDF (read back with pypdf) and ``agentdesk report time``, end to end
on real databases with ledgers written through the real mutators."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import update

from agentdesk.cli import main
from agentdesk.exports.csv_safe import write_csv
from agentdesk.exports.statement_csv import HEADER, statement_rows, write_statement_csv
from agentdesk.exports.statement_pdf import render_statement_pdf
from agentdesk.models import Organisation, User
from agentdesk.queries.statement import read_statement
from agentdesk.sync.credentials import TokenStore
from tests.plugins.live_team import PASSWORD, Team
from tests.queries.conftest import Ledger, ledger  # noqa: F401  (the fixture)
from tests.queries.test_consultant_queries import at


def _month_of_work(ledger: Ledger) -> None:  # noqa: F811
    ledger.buy(at("2026-09-01", "09:00"), 10)
    ledger.buy(at("2026-10-02", "09:00"), 20)
    for day in range(1, 31):
        stamp = f"2026-10-{day:02d}"
        ledger.work(at(stamp, "09:00"), at(stamp, "09:05"), note='=HYPERLINK("x")')
        ledger.work(at(stamp, "14:00"), at(stamp, "14:30"), note="Set up the pipeline")
        if day % 7 == 0:
            ledger.work(
                at(stamp, "14:00"),
                at(stamp, "14:45"),
                who="consultant2",
                extra_engineer=True,
                note="Asked for by the customer",
            )


def _csv_rows(view: object) -> list[dict[str, str]]:
    out = io.StringIO()
    write_statement_csv(out, view)  # type: ignore[arg-type]
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def _pdf_text(data: bytes) -> tuple[int, list[str]]:
    reader = PdfReader(io.BytesIO(data))
    return len(reader.pages), [p.extract_text() for p in reader.pages]


def test_csv_and_pdf_show_who_corrected_an_entry_and_why(ledger: Ledger) -> None:  # noqa: F811
    ledger.buy(at("2026-10-01", "08:00"), 5)
    old = ledger.work(at("2026-10-05", "09:00"), at("2026-10-05", "11:00"))
    ledger.correct(
        old,
        at("2026-10-05", "09:00"),
        at("2026-10-05", "09:45"),
        on=at("2026-10-06", "10:00"),
        note="Timer left running",
    )
    with ledger.session() as s:
        view = read_statement(s, ledger.org(), date(2026, 10, 1), date(2026, 10, 31))
    text = "120 min corrected to 45 min by Lead on 2026-10-06: Timer left running"
    (row,) = [r for r in _csv_rows(view) if r["Section"] == "correction"]
    assert (row["Date"], row["Description"], row["Person"], row["Start"], row["End"]) == (
        "2026-10-05",
        text,
        "Consultant",
        "09:00",
        "11:00",
    )
    assert row["Billed minutes"] == ""  # history, not billed again
    _pages, pages = _pdf_text(render_statement_pdf(view))
    assert "Corrections" in pages[-1]
    last = " ".join(pages[-1].split())
    assert "2026-10-05 09:00-11:00 120 to 45 min Lead, 10-06 Timer left running" in last


def test_csv_and_pdf_totals_equal_the_statement(ledger: Ledger) -> None:  # noqa: F811
    _month_of_work(ledger)
    with ledger.session() as s:
        view = read_statement(s, ledger.org(), date(2026, 10, 1), date(2026, 10, 31))
    assert view.billed == 30 * 60 + 4 * 30  # 5 + 30 -> 60 daily; with the extra 45: 80 -> 90
    rows = _csv_rows(view)
    assert list(rows[0]) == list(HEADER)
    (total,) = [r for r in rows if r["Section"] == "total"]
    (closing,) = [r for r in rows if r["Section"] == "closing"]
    assert int(total["Billed minutes"]) == view.billed
    assert int(total["Drawn minutes"]) == view.drawn
    assert int(closing["Balance minutes"]) == view.closing
    assert sum(int(r["Billed minutes"]) for r in rows if r["Section"] == "day") == view.billed
    notes = [r["Description"] for r in rows if r["Section"] == "entry"]
    assert any(n.startswith("work - =HYPERLINK") for n in notes)  # not at the cell start
    assert all(not n.startswith("=") for n in notes)

    pages, texts = _pdf_text(render_statement_pdf(view))
    assert pages >= 3
    whole = "\n".join(texts)
    assert "Time statement: Globex" in texts[0]
    assert "rounded up once a day to the next 30 minutes" in " ".join(texts[0].split())
    assert f"Total billed in the period {view.billed} min" in whole
    found = re.search(r"Total billed in the period (\d+) min", whole)
    assert found is not None
    assert int(found.group(1)) == int(total["Billed minutes"])
    assert view.identity_text in whole
    for number, text in enumerate(texts, start=1):
        assert f"Page {number} of {pages}" in text
    detail_pages = [t for t in texts if "Day total" in t]
    assert len(detail_pages) >= 2
    assert all("Worked" in t and "Billed" in t for t in detail_pages)  # header repeats


def test_checking_only_the_text_columns_writes_what_the_full_check_writes(
    ledger: Ledger,  # noqa: F811
) -> None:
    """The statement's CSV checks only the columns that can carry outside text (a third of its
    writing time went on checking every cell): with hostile text in every field a statement
    carries, it must give the same bytes as checking every cell."""
    hostile = {"consultant": "=cmd|' /C calc'!A0", "lead": "-Lead", "consultant2": "@Two"}
    with ledger.session() as s, s.begin():
        for who, name in hostile.items():
            s.execute(update(User).where(User.id == ledger.user(who)).values(display_name=name))
        s.execute(
            update(Organisation).where(Organisation.id == ledger.org()).values(name="+Globex\t=1")
        )
    ticket = ledger.ticket(subject="=2+5")
    ledger.buy(at("2026-10-01", "08:00"), 5)
    old = ledger.work(at("2026-10-05", "09:00"), at("2026-10-05", "11:00"), note="\t=x")
    ledger.work(at("2026-10-06", "09:00"), at("2026-10-06", "10:00"), ticket_id=str(ticket))
    ledger.work(
        at("2026-10-07", "09:00"),
        at("2026-10-07", "09:30"),
        who="consultant2",
        extra_engineer=True,
        note="@SUM(A1)",
    )
    ledger.correct(
        old,
        at("2026-10-05", "09:00"),
        at("2026-10-05", "09:45"),
        on=at("2026-10-08", "10:00"),
        note="=HYPERLINK(1)",
    )
    with ledger.session() as s:
        view = read_statement(s, ledger.org(), date(2026, 10, 1), date(2026, 10, 31))
    fast, full = io.StringIO(), io.StringIO()
    write_statement_csv(fast, view)
    write_csv(full, HEADER, statement_rows(view))
    assert fast.getvalue() == full.getvalue()
    cells = [c for r in csv.reader(io.StringIO(fast.getvalue())) for c in r]
    assert "'=cmd|' /C calc'!A0" in cells  # a person's cell, escaped
    assert "'@Two" in cells
    for name in hostile.values():  # every name reached the file: escaped, or inside a text
        assert "'" + name in cells or any(name in c and c[:1] != name[:1] for c in cells)
    assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t")]
    assert not [c for c in cells if c[:1] == "-" and not re.fullmatch(r"-\d+(\.\d+)?", c)]


def test_report_time_command_writes_csv_and_pdf(
    ledger: Ledger,  # noqa: F811
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _month_of_work(ledger)
    base = [
        "report",
        "time",
        "--org",
        "globex",
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-31",
        "--database-url",
        database_url,
    ]
    assert main([*base, "--out", str(tmp_path / "s.csv")]) == 0
    assert main([*base, "--format", "pdf", "--out", str(tmp_path / "s.pdf")]) == 0
    assert "wrote the PDF time statement of Globex" in capsys.readouterr().out
    rows = list(csv.DictReader(io.StringIO((tmp_path / "s.csv").read_text("utf-8-sig"))))
    (total,) = [r for r in rows if r["Section"] == "total"]
    _, texts = _pdf_text((tmp_path / "s.pdf").read_bytes())
    found = re.search(r"Total billed in the period (\d+) min", "\n".join(texts))
    assert found is not None
    assert found.group(1) == total["Billed minutes"] == "1920"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--org", "Nobody Inc", "--from", "2026-10-01", "--to", "2026-10-31"],
            "no organisation is called 'Nobody Inc'",
        ),
        (
            ["--org", "Globex", "--from", "2026-10-31", "--to", "2026-10-01"],
            "the period ends (2026-10-01) before it starts (2026-10-31)",
        ),
        (["--org", "Globex", "--from", "2016-10-01", "--to", "2026-09-30"], "longer than"),
    ],
)
def test_report_time_refuses_bad_input_and_writes_nothing(
    ledger: Ledger,  # noqa: F811
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    out = tmp_path / "s.pdf"
    code = main(["report", "time", *args, "--out", str(out), "--database-url", database_url])
    assert code == 1
    assert message in capsys.readouterr().err
    assert list(tmp_path.glob("*.pdf*")) == []


def test_report_time_help_and_bad_dates() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "agentdesk", "report", "time", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--org NAME" in out
    assert "--format {csv,pdf}" in out
    assert "AGENTDESK_DATABASE_URL" in out
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "agentdesk",
            "report",
            "time",
            "--org",
            "x",
            "--from",
            "yesterday",
            "--to",
            "2026-01-01",
            "--out",
            "x.csv",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "not a date (YYYY-MM-DD): 'yesterday'" in bad.stderr


def test_without_a_database_the_local_mode_data_is_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AGENTDESK_DATABASE_URL", raising=False)
    code = main(
        [
            "report",
            "time",
            "--org",
            "Globex",
            "--from",
            "2026-10-01",
            "--to",
            "2026-10-02",
            "--out",
            str(tmp_path / "s.csv"),
        ]
    )
    assert code == 1
    assert "no local-mode data at" in capsys.readouterr().err


def test_pdf_table_shortcut_writes_what_fpdf2s_text_writes(
    ledger: Ledger,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Table cells are written as content-stream lines built by the exporter (each string
    encoded once per font) instead of one fpdf2 ``text()`` call per cell: the PDF's bytes are
    the same as through ``text()`` (unicode names and notes, shaded bold day rows, page breaks
    with repeated headers, the latin-1 fallback font). If an fpdf2 upgrade changes what
    ``text()`` writes, this fails and the shortcut must follow it."""
    from agentdesk.exports import statement_pdf

    _month_of_work(ledger)
    ledger.work(
        at("2026-10-09", "16:00"),
        at("2026-10-09", "16:20"),
        note="Zoë's Ωmega \u2013 漢字 migration",
    )
    with ledger.session() as s:
        view = read_statement(s, ledger.org(), date(2026, 10, 1), date(2026, 10, 31))
    for fonts in (statement_pdf._font_files(), None):
        monkeypatch.setattr(statement_pdf, "_font_files", lambda fonts=fonts: fonts)
        fast = render_statement_pdf(view)
        with monkeypatch.context() as m:
            m.setattr(statement_pdf._StatementPdf, "_text_op", lambda *_a: None)
            plain = render_statement_pdf(view)
        assert fast == plain
        assert _pdf_text(fast)[0] >= 3


def test_report_time_against_a_signed_in_team_server(
    team: Team,
    memory_keyring: object,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--server``/``--user`` ask the real server over HTTP with the token the desktop stored
    in the keyring; the file equals the one rendered from the same database, and the server's
    role rules hold (an agent gets no statement)."""
    books = Ledger(team.world)
    _month_of_work(books)
    tmp_path = tmp_path_factory.mktemp("statements")
    for who in ("consultant", "agent"):
        login = team.client().login(who, PASSWORD)
        TokenStore(team.url, who).save(login.token)
    base = [
        "report",
        "time",
        "--server",
        team.url + "/",
        "--org",
        "globex",
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-31",
    ]
    assert main([*base, "--user", "consultant", "--out", str(tmp_path / "s.csv")]) == 0
    assert "wrote the CSV time statement of globex" in capsys.readouterr().out
    with books.session() as s:
        view = read_statement(s, books.org(), date(2026, 10, 1), date(2026, 10, 31))
    rows = list(csv.DictReader(io.StringIO((tmp_path / "s.csv").read_text("utf-8-sig"))))
    assert rows == _csv_rows(view)
    assert main([*base, "--user", "consultant", "--out", str(tmp_path / "s.pdf")]) == 0
    _, texts = _pdf_text((tmp_path / "s.pdf").read_bytes())
    assert f"Total billed in the period {view.billed} min" in "\n".join(texts)

    assert main([*base, "--user", "agent", "--out", str(tmp_path / "a.csv")]) == 1
    assert "only consultants, leads and admins export time statements" in capsys.readouterr().err
    assert main([*base, "--user", "lead", "--out", str(tmp_path / "l.csv")]) == 1
    assert "not signed in to" in capsys.readouterr().err
    long = [*base[:7], "2016-10-01", "--to", "2026-10-31", "--user", "consultant"]
    assert main([*long, "--out", str(tmp_path / "x.csv")]) == 1
    assert "ask for at most three years" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv", "s.pdf"]
