import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest

from agentdesk.exports.csv_safe import csv_text, escape_cell, save_csv


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("plain", "plain"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
    ],
)
def test_cells_a_spreadsheet_would_run_are_escaped(raw: str | None, expected: str) -> None:
    assert escape_cell(raw) == expected


def test_numbers_stay_numbers() -> None:
    assert escape_cell(-1.5) == "-1.5"
    assert escape_cell(Decimal("-30")) == "-30"
    assert escape_cell(7) == "7"


def test_round_trip_through_the_csv_reader(tmp_path: Path) -> None:
    rows: list[list[str | int]] = [["=1+1", 3, 'Émilie, "quoted"\nline']]
    text = csv_text(["Subject", "Minutes", "Note"], rows)
    assert list(csv.reader(io.StringIO(text))) == [
        ["Subject", "Minutes", "Note"],
        ["'=1+1", "3", 'Émilie, "quoted"\nline'],
    ]
    path = tmp_path / "out.csv"
    assert save_csv(path, ["a"], [["-x"]]) == 1
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
