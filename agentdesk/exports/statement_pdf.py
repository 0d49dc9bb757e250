"""The time statement as a PDF a consultant can send to the customer, rendered without Qt.

Why fpdf2 rather than reportlab: it is pure Python with no C extension to build, small
(one dependency, fontTools, for Unicode fonts), actively maintained, MIT/LGPL-compatible, and
its page model (cells on a page, a header/footer hook) is all a statement needs. reportlab's
Platypus flowables would repeat table headings for us, but it is larger and its open-source
edition's licensing and C accelerator add weight for no feature we use. The table loop here
repeats the header row itself on every page, which also keeps 20,000 rows fast.

Text is set in DejaVu Sans when the system has it (names and notes in any script); otherwise in
the PDF core font Helvetica, where characters outside Latin-1 become "?" rather than failing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date
from pathlib import Path
from zoneinfo import ZoneInfo

from fpdf import FPDF
from fpdf.enums import TextMode, XPos, YPos

from ..queries.statement import StatementView, hours_text

__all__ = ["render_statement_pdf"]

_FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/Library/Fonts"),
    Path("C:/Windows/Fonts"),
)
_ROW_H = 5.2


@dataclass(frozen=True)
class _Column:
    title: str
    width: float
    align: str = "L"


def _font_files() -> tuple[Path, Path] | None:
    for folder in _FONT_DIRS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return regular, bold
    return None


class _StatementPdf(FPDF):
    def __init__(self, view: StatementView) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.view = view
        self.set_auto_page_break(auto=True, margin=16)
        self.set_margins(14, 14, 14)
        files = _font_files()
        if files is not None:
            self.add_font("Body", "", str(files[0]))
            self.add_font("Body", "B", str(files[1]))
            self.family = "Body"
            self.unicode = True
        else:
            self.family = "Helvetica"
            self.unicode = False
        self.set_title(f"Time statement {view.organisation} {view.start} - {view.end}")
        self.set_creator("AgentDesk")
        self.columns: Sequence[_Column] = ()
        self._widths: dict[tuple[str, float, str], float] = {}
        self._fits: dict[tuple[str, float, str, float], str] = {}
        self._shown: dict[tuple[int, str], str] = {}

    def text_of(self, value: str) -> str:
        if self.unicode:
            return value
        return value.encode("latin-1", "replace").decode("latin-1")

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self.family, "", 8)
        self.set_text_color(90)
        self.cell(
            0,
            5,
            self.text_of(
                f"{self.view.organisation} - time statement {self.view.start} to {self.view.end}"
            ),
            align="L",
        )
        self.set_x(self.l_margin)
        self.cell(0, 5, f"Page {self.page_no()} of {{nb}}", align="R")
        self.set_text_color(0)

    # --- tables -----------------------------------------------------------------------------

    def width_of(self, text: str) -> float:
        """String width in the current font, cached: a year's statement repeats names, kinds
        and durations thousands of times, and measuring is most of a row's cost."""
        key = (self.font_style, self.font_size_pt, text)
        width = self._widths.get(key)
        if width is None:
            width = self._widths[key] = self.get_string_width(text)
        return width

    def fit(self, text: str, width: float) -> str:
        """``text`` cut to fit ``width`` with "...", cached like :meth:`width_of`."""
        key = (self.font_style, self.font_size_pt, text, width)
        fitted = self._fits.get(key)
        if fitted is None:
            fitted = self._fits[key] = self._fit(text, width)
        return fitted

    def _fit(self, text: str, width: float) -> str:
        text = self.text_of(text)
        room = width - 2 * self.c_margin
        if self.width_of(text) <= room:
            return text
        lo, hi = 0, len(text)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.width_of(text[:mid] + "...") <= room:
                lo = mid
            else:
                hi = mid - 1
        return text[:lo] + "..."

    def table_header(self) -> None:
        self.set_font(self.family, "B", 8)
        self.set_fill_color(225, 230, 238)
        for col in self.columns:
            self.cell(
                col.width,
                _ROW_H + 0.6,
                self.fit(col.title, col.width),
                border="B",
                align=col.align,
                fill=True,
                new_x=XPos.RIGHT,
                new_y=YPos.TOP,
            )
        self.ln(_ROW_H + 0.6)
        self.set_font(self.family, "", 8)

    def start_table(self, title: str, columns: Sequence[_Column]) -> None:
        if self.get_y() + 4 * _ROW_H > self.page_break_trigger:
            self.add_page()
        self.ln(2)
        self.set_font(self.family, "B", 11)
        self.cell(0, 7, self.text_of(title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.columns = columns
        self.table_header()

    def row(self, cells: Sequence[str], *, bold: bool = False, shade: bool = False) -> None:
        """One table row, drawn with ``text()`` rather than ``cell()``: the same look for a
        fraction of the cost (``cell()`` lays out styled text, which 20,000 rows cannot
        afford). The header row is repeated at the top of every new page."""
        if self.get_y() + _ROW_H > self.page_break_trigger:
            self.add_page()
            self.table_header()
        y = self.get_y()
        if shade:
            self.set_fill_color(244, 246, 250)
            self.rect(self.l_margin, y, sum(c.width for c in self.columns), _ROW_H, style="F")
        if bold:
            self.set_font(self.family, "B", 8)
        x = self.l_margin
        baseline = y + _ROW_H * 0.7
        lines: list[str] = []
        for col, value in zip(self.columns, cells, strict=True):
            text = self.fit(value, col.width) if value else ""
            if text:
                if col.align == "R":
                    left = x + col.width - self.c_margin - self.width_of(text)
                else:
                    left = x + self.c_margin
                shown = self._text_op(left, baseline, text)
                if shown is not None:
                    lines.append(shown)
                else:  # what the shortcut does not cover: fpdf2's own text(), in order
                    if lines:
                        self._out("\n".join(lines))
                        lines.clear()
                    self.text(left, baseline, text)
            x += col.width
        if lines:
            self._out("\n".join(lines))
        self.set_y(y + _ROW_H)
        if bold:
            self.set_font(self.family, "", 8)

    def _text_op(self, x: float, y: float, text: str) -> str | None:
        """The content-stream line fpdf2's ``text(x, y, text)`` writes, built here with each
        distinct string encoded once per font (a year's statement draws ~100,000 cells and
        ``text()``'s checks and encoding were most of the PDF's time). None when the state is
        one this does not reproduce (the font not yet set on the page, a text mode, underline,
        quad points): the caller then uses ``text()`` itself, so the output is the same bytes.
        """
        font = self.current_font
        if (
            font is None
            or not self.current_font_is_set_on_page
            or self.text_mode != TextMode.FILL
            or self.underline
            or self.strikethrough
            or self._record_text_quad_points
        ):
            return None
        key = (id(font), text)
        encoded = self._shown.get(key)
        if encoded is None:  # encoding also records the glyphs the font subset needs
            encoded = self._shown[key] = font.encode_text(self.normalize_text(text))
        op = f"BT {x * self.k:.2f} {(self.h - y) * self.k:.2f} Td {encoded} ET"
        if self.fill_color != self.text_color:
            assert self.text_color is not None
            op = f"q {self.text_color.serialize().lower()} {op} Q"
        return op


def _minutes(value: int | None) -> str:
    return "" if value is None else f"{value} min"


def render_statement_pdf(view: StatementView) -> bytes:
    pdf = _StatementPdf(view)
    zone = ZoneInfo(view.tz)
    pdf.add_page()
    pdf.set_font(pdf.family, "B", 16)
    pdf.cell(
        0,
        9,
        pdf.text_of(f"Time statement: {view.organisation}"),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.set_font(pdf.family, "", 10)
    generated = view.generated_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    for line in (
        f"Period: {view.start.isoformat()} to {view.end.isoformat()} (days in {view.tz})",
        f"Plan: {view.plan}   1-on-1 tech support, billed by the hour",
        f"Prepared {generated}; figures for today are provisional until the day ends.",
    ):
        pdf.cell(0, 5.5, pdf.text_of(line), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1.5)
    pdf.set_font(pdf.family, "B", 9)
    pdf.cell(0, 5, "How time is billed", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(pdf.family, "", 8.5)
    pdf.multi_cell(0, 4.3, pdf.text_of(view.rounding_rule), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    wide = pdf.epw
    pdf.start_table("Summary", (_Column("Item", wide * 0.7), _Column("Hours", wide * 0.3, "R")))
    for label, minutes in (
        ("Opening balance", view.opening),
        ("Purchased", view.purchased),
        ("Used from prepaid hours", view.drawn),
        ("Forfeited at expiry", view.forfeited),
        ("Closing balance", view.closing),
    ):
        pdf.row([label, hours_text(minutes)], bold=label == "Closing balance")
    pdf.row(["Billed in the period", hours_text(view.billed)])
    pdf.row(["Overage (billed beyond prepaid hours, invoiced)", hours_text(view.overage)])
    pdf.set_font(pdf.family, "", 8.5)
    pdf.ln(1)
    pdf.cell(0, 5, pdf.text_of(view.identity_text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    for line in view.expiry_lines or ("No prepaid hours left to expire.",):
        pdf.cell(
            0,
            5,
            pdf.text_of(line + ("" if line.endswith(".") else " unless used")),
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )

    if view.statement.purchases:
        pdf.start_table(
            "Purchases",
            (
                _Column("Date", wide * 0.3),
                _Column("Hours", wide * 0.3, "R"),
                _Column("Expires", wide * 0.4),
            ),
        )
        for p in view.statement.purchases:
            pdf.row(
                [
                    p.purchased_at.astimezone(zone).date().isoformat(),
                    hours_text(p.minutes),
                    p.expires_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                ]
            )

    cols = (
        _Column("Date", 21),
        _Column("Time", 21),
        _Column("Person", 22),
        _Column("Work", wide - 21 - 21 - 22 - 18 - 18 - 28),
        _Column("Worked", 18, "R"),
        _Column("Billed", 18, "R"),
        _Column("Prepaid/over", 28, "R"),
    )
    pdf.start_table("Daily detail (work is rounded once per day)", cols)
    by_day: dict[date, list[list[str]]] = {}
    for e in view.entries:
        what = e.kind + (", extra engineer" if e.extra_engineer else "")
        if not e.billable:
            what += ", not billable"
        label = " - ".join(x for x in (what, e.ticket, e.note) if x)
        by_day.setdefault(e.day, []).append(
            [
                e.day.isoformat(),
                f"{e.start:%H:%M}-{e.end:%H:%M}",
                e.person,
                label,
                _minutes(e.minutes),
                _minutes(e.charged_minutes),
                "",
            ]
        )
    days = {d.day: d for d in view.days}
    for day in sorted(set(by_day) | set(days)):
        for cells in by_day.get(day, []):
            pdf.row(cells)
        d = days.get(day)
        if d is not None:
            extra = (
                f", incl. extra engineer {d.extra_engineer_minutes} min"
                if (d.extra_engineer_minutes)
                else " (rounded once)"
            )
            pdf.row(
                [
                    d.day.isoformat(),
                    "",
                    "",
                    f"Day total{extra}",
                    _minutes(d.raw_minutes),
                    _minutes(d.billed),
                    f"{d.drawn}/{d.overage} min",
                ],
                bold=True,
                shade=True,
            )
    pdf.row(
        [
            "",
            "",
            "",
            "Total billed in the period",
            "",
            _minutes(view.billed),
            f"{view.drawn}/{view.overage} min",
        ],
        bold=True,
    )

    if view.statement.expiries:
        pdf.start_table(
            "Hours forfeited at expiry",
            (
                _Column("Expired", wide * 0.3),
                _Column("Block", wide * 0.35, "R"),
                _Column("Forfeited", wide * 0.35, "R"),
            ),
        )
        for x in view.statement.expiries:
            pdf.row(
                [
                    x.expires_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                    hours_text(x.purchased_minutes),
                    hours_text(x.forfeited_minutes),
                ]
            )
    if view.corrections:
        # The reason gets the room: it is what the customer reads this table for.
        pdf.start_table(
            "Corrections (the entries above already reflect them)",
            (
                _Column("Date", 21),
                _Column("Time", 21),
                _Column("Change", 26),
                _Column("By, on", 38),
                _Column("Why", wide - 106),
            ),
        )
        for c in view.corrections:
            start = c.started_at.astimezone(zone)
            now = (
                "voided"
                if c.replacement_minutes is None
                else f"{c.minutes} to {c.replacement_minutes} min"
            )
            pdf.row(
                [
                    start.date().isoformat(),
                    f"{start:%H:%M}-{c.ended_at.astimezone(zone):%H:%M}",
                    now,
                    f"{c.by or 'not recorded'}, {c.at.astimezone(zone):%m-%d}",
                    c.why,
                ]
            )
    pdf.set_creation_date(view.generated_at.astimezone(UTC))
    return bytes(pdf.output())
