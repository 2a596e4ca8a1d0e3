"""PDFs of forms and letters with ReportLab's Platypus: flowing text, tables that split, page furniture."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    CondPageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.flowables import Flowable

from services.documents import domain

MARGIN = 18 * mm
INK = colors.HexColor("#1a1a1a")
MUTED = colors.HexColor("#555555")
RULE = colors.HexColor("#b0b0b0")
SHADE = colors.HexColor("#eef1f4")
DRAFT_RED = colors.HexColor("#b00020")


@dataclass(frozen=True)
class Fonts:
    """The registered regular and bold font names the PDFs use."""

    regular: str
    bold: str


def register_fonts(font_dir: Path) -> Fonts:
    """DejaVu Sans from `font_dir` when present (most of Unicode), else Bitstream Vera from the reportlab
    wheel (Latin-1). Both are embedded as TrueType subsets, so text can be searched and extracted."""
    import reportlab

    for folder, regular, bold in ((font_dir, "DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
                                  (Path(reportlab.__file__).parent / "fonts", "Vera.ttf", "VeraBd.ttf")):
        if (folder / regular).is_file() and (folder / bold).is_file():
            name = Path(regular).stem
            if name not in pdfmetrics.getRegisteredFontNames():
                pdfmetrics.registerFont(TTFont(name, str(folder / regular)))
                pdfmetrics.registerFont(TTFont(f"{name}-Bold", str(folder / bold)))
            return Fonts(name, f"{name}-Bold")
    return Fonts("Helvetica", "Helvetica-Bold")  # standard fonts: Latin-1 only, never embedded


class _Styles:
    def __init__(self, fonts: Fonts) -> None:
        base = ParagraphStyle("base", fontName=fonts.regular, fontSize=10, leading=13, textColor=INK)
        self.body = base
        self.label = ParagraphStyle("label", parent=base, fontName=fonts.bold)
        self.small = ParagraphStyle("small", parent=base, fontSize=8.5, leading=11, textColor=MUTED)
        self.cell = ParagraphStyle("cell", parent=base, fontSize=9, leading=11.5)
        self.head = ParagraphStyle("head", parent=self.cell, fontName=fonts.bold)
        self.title = ParagraphStyle("title", parent=base, fontName=fonts.bold, fontSize=17, leading=21,
                                    spaceAfter=4)
        self.section = ParagraphStyle("section", parent=base, fontName=fonts.bold, fontSize=12.5, leading=16,
                                      spaceBefore=10, spaceAfter=4)
        self.subsection = ParagraphStyle("subsection", parent=self.label, spaceBefore=4, spaceAfter=2)
        self.draft = ParagraphStyle("draft", parent=base, fontName=fonts.bold, textColor=DRAFT_RED)
        self.right = ParagraphStyle("right", parent=base, alignment=TA_RIGHT)
        self.fonts = fonts


def _text(value: str) -> str:
    """Plain text into Platypus markup: escaped, line breaks kept."""
    return escape(value).replace("\r\n", "\n").replace("\n", "<br/>")


def _p(value: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(_text(value), style)


def _when(moment: datetime | None) -> str:
    return domain.NOT_RECORDED if moment is None else domain.format_moment(moment)


# --- forms (R-D1) ------------------------------------------------------------------------------


def render_form(view: domain.FormView, fonts: Fonts) -> bytes:
    """A form as a worker prints it: numbered sections, labels and values, repeating tables as tables;
    a step that is not finished is marked DRAFT on every page."""
    s = _Styles(fonts)
    width = A4[0] - 2 * MARGIN
    story: list[Flowable] = [_p(view.step_type, s.title)]
    if view.draft:
        story.append(_p(f"DRAFT — this step is {view.state.replace('_', ' ')}, not finished. "
                        "Only finished versions may be shared.", s.draft))
    story += [Spacer(1, 3 * mm), _summary(view, s, width)]
    for section in view.sections:
        story += _section(section, s, width)
    for name, sections in view.forms:
        story += [CondPageBreak(40 * mm), _p(f"Form: {name}", s.section)]
        for section in sections:
            story += _section(section, s, width, level=s.subsection)
    if view.next_actions:
        story += [CondPageBreak(30 * mm), _p("Next actions", s.section),
                  _pairs([(a.label, a.value) for a in view.next_actions], s, width)]
    footer = (f"Person {view.person_id} · Step {view.step_id}", f"Printed {_when(view.printed_at)}")
    return _build(story, title=view.step_type, header=view.step_type, footer=footer, draft=view.draft, fonts=fonts)


def _summary(view: domain.FormView, s: _Styles, width: float) -> Table:
    finished = ("Not finished" if view.draft
                else f"{_when(view.finished_at)} by {view.finished_by or domain.NOT_RECORDED}")
    rows = [("Person", view.person_name or "name not available"), ("Person id", view.person_id),
            ("Step", view.step_type), ("Step id", view.step_id), ("Status", view.state.replace("_", " ")),
            ("Finished", finished)]
    table = _pairs(rows, s, width)
    table.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, -1), SHADE), ("BOX", (0, 0), (-1, -1), 0.5, RULE)]))
    return table


def _section(section: domain.SectionView, s: _Styles, width: float,
             level: ParagraphStyle | None = None) -> list[Flowable]:
    number = f"{section.number}. " if section.number is not None else ""
    heading = _p(f"{number}{section.title}", level or s.section)
    out: list[Flowable] = []
    lines: list[tuple[str, str]] = []

    def flush() -> None:
        if lines:
            out.append(_pairs(list(lines), s, width))
            lines.clear()

    for item in section.items:
        if isinstance(item, domain.Line):
            lines.append((item.label, item.value))
        else:
            flush()
            out += [Spacer(1, 2 * mm), _p(item.label, s.label), Spacer(1, 1 * mm), _table(item, s, width)]
    flush()
    if not section.items:
        out.append(_p("No fields.", s.small))
    # a heading never sits alone at the foot of a page; long tables split across pages
    return [CondPageBreak(35 * mm), heading, *out]


def _pairs(rows: list[tuple[str, str]], s: _Styles, width: float) -> Table:
    data = [[_p(label, s.label), _p(value, s.body)] for label, value in rows]
    table = Table(data, colWidths=[width * 0.38, width * 0.62], hAlign="LEFT")
    table.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, RULE),
        ("TOPPADDING", (0, 0), (-1, -1), 3), ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]))
    return table


def _table(item: domain.Table, s: _Styles, width: float) -> Flowable:
    if not item.columns:
        return _p(domain.NOT_RECORDED, s.body)
    head = [_p(c, s.head) for c in item.columns]
    body: list[list[Flowable | str]] = [[_p(v, s.cell) for v in row] for row in item.rows] or [
        [_p("No rows recorded.", s.cell), *[""] * (len(item.columns) - 1)]]
    table = Table([head, *body], colWidths=[width / len(item.columns)] * len(item.columns),
                  repeatRows=1, hAlign="LEFT")
    style = TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("GRID", (0, 0), (-1, -1), 0.4, RULE),
        ("BACKGROUND", (0, 0), (-1, 0), SHADE),
        ("TOPPADDING", (0, 0), (-1, -1), 3), ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ])
    if not item.rows:
        style.add("SPAN", (0, 1), (-1, 1))
    table.setStyle(style)
    return table


# --- letters (R-W9) ----------------------------------------------------------------------------


def render_letter(view: domain.LetterView, fonts: Fonts) -> bytes:
    """A letter to the person or their family: sender, date, address block, subject, body, sign-off."""
    s = _Styles(fonts)
    address = "<br/>".join(_text(line) for line in (view.addressee, *view.address))
    story: list[Flowable] = [
        _p(view.sender, s.right), _p(view.dated, s.right), Spacer(1, 12 * mm),
        Paragraph(address, s.body), Spacer(1, 10 * mm),
        _p(view.salutation, s.body), Spacer(1, 4 * mm),
        _p(view.subject, s.label), Spacer(1, 4 * mm),
    ]
    for paragraph in view.paragraphs:
        story += [_p(paragraph, s.body), Spacer(1, 3 * mm)]
    story += [Spacer(1, 6 * mm), _p(view.closing, s.body), Spacer(1, 14 * mm),
              _p(view.signed or domain.BLANK, s.body), _p(view.sender, s.body)]
    footer = (f"{view.name} · {view.reference or f'Step {view.step_id}'}",)
    # invariant: the same letter renders to the same bytes (no timestamp or random id), so a re-render after
    # a failed transaction has the same sha256 and lands on the object already stored
    return _build(story, title=view.name, header=None, footer=footer, draft=False, fonts=fonts, invariant=True)


# --- pages -------------------------------------------------------------------------------------


def _build(story: list[Flowable], *, title: str, header: str | None, footer: tuple[str, ...], draft: bool,
           fonts: Fonts, invariant: bool = False) -> bytes:
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN + 4 * mm,
                            bottomMargin=MARGIN, title=("DRAFT — " if draft else "") + title, author="Tessera",
                            creator="Tessera documents", invariant=1 if invariant else None)
    on_page = _furniture(header, footer, draft, fonts)
    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return out.getvalue()


def _furniture(header: str | None, footer: tuple[str, ...], draft: bool, fonts: Fonts) -> Callable[[Canvas, Any], None]:
    def draw(canvas: Canvas, doc: Any) -> None:
        width, height = A4
        canvas.saveState()
        if draft:
            canvas.setFillColor(colors.Color(0.69, 0, 0.13, alpha=0.10))
            canvas.setFont(fonts.bold, 110)
            canvas.translate(width / 2, height / 2)
            canvas.rotate(45)
            canvas.drawCentredString(0, -35, "DRAFT")
            canvas.rotate(-45)
            canvas.translate(-width / 2, -height / 2)
        canvas.setFont(fonts.regular, 8)
        canvas.setFillColor(MUTED)
        if header:
            canvas.drawString(MARGIN, height - MARGIN + 2 * mm, f"Tessera · {header}")
        if draft:
            canvas.setFillColor(DRAFT_RED)
            canvas.setFont(fonts.bold, 9)
            canvas.drawRightString(width - MARGIN, height - MARGIN + 2 * mm, "DRAFT — NOT FOR SHARING")
            canvas.setFont(fonts.regular, 8)
            canvas.setFillColor(MUTED)
        for n, line in enumerate(footer):
            canvas.drawString(MARGIN, MARGIN - 7 * mm - n * 3.5 * mm, line)
        canvas.drawRightString(width - MARGIN, MARGIN - 7 * mm, f"Page {doc.page}")
        canvas.restoreState()

    return draw
