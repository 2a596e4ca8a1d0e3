"""PDFs as a worker reads them, checked with a PDF text extractor (R-D1, R-W9)."""

import io
from datetime import UTC, date, datetime
from pathlib import Path

from pypdf import PdfReader

from services.documents import domain, render
from tests.unit.test_documents_domain import PERSON, TEMPLATES, step

NOW = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)


def text_of(content: bytes) -> str:
    return " ".join(" ".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(content)).pages).split())


def fonts() -> render.Fonts:
    return render.register_fonts(Path("/nonexistent"))  # the reportlab wheel's own Vera: works on any machine


def test_R_D1_a_finished_form_prints_its_step_type_person_numbered_sections_tables_and_finisher():
    """Issue #22 §9: people and teams by name, times in UK time (10:30 BST is 09:30 UTC), never a worker's id."""
    content = render.render_form(domain.form_view(step(), person=PERSON, printed_at=NOW), fonts())
    assert content.startswith(b"%PDF-")
    text = text_of(content)
    for expected in ("WB Trusted Assessment", "Ada Example", "p1", "1. About", "Seen alone Yes", "2. Plan",
                     "Domain Score", "Home 3", "3 June 2024, 10:30 by Tess Manager", "Next actions", "Future Work",
                     "to Wellbeing Service North", "to Sid Worker", "Printed 3 June 2024, 11:00"):
        assert expected in text, expected
    assert "DRAFT" not in text and "UTC" not in text and "tm-1" not in text and "sw-1" not in text


def test_R_D1_a_draft_is_marked_on_the_page_and_in_the_title():
    content = render.render_form(domain.form_view(step(state="incomplete"), person=None, printed_at=NOW), fonts())
    text = text_of(content)
    assert "DRAFT — NOT FOR SHARING" in text and "Not finished" in text and "name not available" in text
    assert PdfReader(io.BytesIO(content)).metadata.title.startswith("DRAFT")


def test_values_with_markup_and_long_tables_print_as_text_over_pages():
    rows = [{"domain": f"Row {n} <b>&amp;", "score": n} for n in range(120)]
    s = step(values={"domains": rows, "note": "line one\nline <two> & three"})
    content = render.render_form(domain.form_view(s, person=PERSON, printed_at=NOW), fonts())
    reader = PdfReader(io.BytesIO(content))
    assert len(reader.pages) > 1
    text = text_of(content)
    assert "line <two> & three" in text and "Row 119 <b>&amp;" in text


def test_R_W9_a_letter_prints_the_address_block_salutation_and_body():
    s = step(values={"hvl_visit_datetime": "2024-06-10T14:30", "hvl_addressee": "Ms Pat Parent"})
    letter = domain.letter_view(s, "Home Visit Letter", PERSON, TEMPLATES, date(2024, 6, 3))
    text = text_of(render.render_letter(letter, fonts()))
    for expected in ("Children's Services", "3 June 2024", "Ms Pat Parent 1 Example Street Testtown LE1 1AA",
                     "Dear Ms Pat Parent,", "Visit: Ada Example", "Monday 10 June 2024 at 14:30", "Yours sincerely,"):
        assert expected in text, expected
