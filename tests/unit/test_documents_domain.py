"""Documents rules without I/O: kept steps, forms on paper, letters and upload checks (R-D1, R-D2, R-W9)."""

import asyncio
import hashlib
import io
import zlib
from datetime import UTC, date, datetime

import pytest
from PIL import Image

from services.documents import domain
from services.documents.clients import StepReader
from shared.broker import TRANSIENT
from shared.commands.base import Reason, RuleBroken
from shared.readers import Unavailable
from tests import pdf_samples

NOW = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)
PERSON = {"first_name": "Ada", "last_name": "Example", "date_of_birth": "2015-03-14",
          "address": {"line1": "1 Example Street", "line2": None, "town": "Testtown", "postcode": "LE1 1AA"}}
LIMITS = {"allowed": ("image/jpeg", "image/png", "application/pdf"), "max_bytes": 100_000, "max_pixels": 10_000}


def step(**over):
    base = {
        "step_id": "s1", "person_id": "p1", "step_type": "WB Trusted Assessment", "state": "finished",
        "assignee": {"kind": "worker", "id": "sw-1"},
        "values": {"seen": True, "when": "2024-05-01", "needs": ["Meals", "Bathing"],
                   "domains": [{"domain": "Home", "score": 3}, {"domain": "Money", "score": None}]},
        "form": {"sections": [
            {"number": 1, "title": "About", "fields": [
                {"key": "seen", "label": "Seen alone", "type": "bool"},
                {"key": "when", "label": "Date seen", "type": "date"},
                {"key": "needs", "label": "Needs", "type": "multiselect"},
                {"key": "note", "label": "Note", "type": "textarea"}]},
            {"number": 2, "title": "Plan", "fields": [
                {"key": "domains", "label": "Areas of need", "type": "table", "columns": [
                    {"key": "domain", "label": "Domain", "type": "text"},
                    {"key": "score", "label": "Score", "type": "number"}]}]}]},
        "history": [{"actor": "sw-1", "time": "2024-06-02T09:00:00+00:00", "what": "step.saved"},
                    {"actor": "tm-1", "time": "2024-06-03T09:30:00+00:00", "what": "step.authorised_and_finished"}],
        "added_next_actions": [{"action": "Future Work", "assignee_kind": "team",
                                "assignee_id": "wellbeing-service-north", "scheduled_date": "2025-06-01",
                                "priority": "normal"},
                               {"action": "Professional support", "assignee_kind": "worker", "assignee_id": "sw-1",
                                "priority": "normal"}],
        "worker_names": {"tm-1": "Tess Manager", "sw-1": "Sid Worker"},
        "optional_forms": [{"name": "Home Visit Letter", "kind": "letter"}, {"name": "Consent", "kind": "form"}],
        "forms": [{"name": "Home Visit Letter", "kind": "letter", "sections": [
            {"number": 1, "title": "Home Visit Letter", "fields": [
                {"key": "hvl_visit_datetime", "label": "Date and time of visit", "type": "datetime"},
                {"key": "hvl_addressee", "label": "Addressee", "type": "text"}]}]}],
    }
    return {**base, **over}


def test_R_D1_a_kept_document_says_who_finished_the_step_and_when_from_its_history():
    doc = domain.keep_finished_step(document_id="d1", step_id="s1", person_id="p1", step_type="WB Trusted Assessment",
                                    actor="tm-1", finished_at=NOW, step=step())
    assert (doc.finished_by, doc.finished_at) == ("tm-1", datetime(2024, 6, 3, 9, 30, tzinfo=UTC))
    assert doc.snapshot["values"]["seen"] is True


def test_R_D1_a_step_read_for_another_person_is_not_kept():
    with pytest.raises(domain.StepMismatch):
        domain.keep_finished_step(document_id="d1", step_id="s1", person_id="someone-else", step_type="X",
                                  actor="a", finished_at=NOW, step=step())


def test_R_D1_a_finished_form_reads_as_sections_with_labels_values_and_tables():
    view = domain.form_view(step(), person=PERSON, printed_at=NOW)
    about, plan = view.sections
    assert (view.draft, view.person_name, view.finished_by) == (False, "Ada Example", "Tess Manager")
    assert (about.number, about.title) == (1, "About")
    assert [(i.label, i.value) for i in about.items] == [
        ("Seen alone", "Yes"), ("Date seen", "1 May 2024"), ("Needs", "Meals, Bathing"), ("Note", "—")]
    [table] = plan.items
    assert isinstance(table, domain.Table)
    assert (table.columns, table.rows) == (("Domain", "Score"), (("Home", "3"), ("Money", "—")))
    assert view.next_actions[0].value == "to Wellbeing Service North; scheduled 1 June 2025"
    assert view.next_actions[1].value == "to Sid Worker"


def test_R_D1_output_of_a_step_not_yet_finished_is_a_draft_without_a_finisher():
    view = domain.form_view(step(state="incomplete", history=[]), person=None, printed_at=NOW)
    assert view.draft and view.finished_by is None and view.finished_at is None and view.person_name is None


def test_values_read_as_a_worker_reads_them():
    assert domain.format_value({"type": "datetime"}, "2024-06-10T14:30:00") == "Monday 10 June 2024 at 14:30"
    # issue #22 §9: a moment with an offset reads in UK time (British Summer Time here), never as UTC
    assert domain.format_value({"type": "datetime"}, "2024-06-10T13:30:00+00:00") == "Monday 10 June 2024 at 14:30"
    assert domain.format_value({"type": "bool"}, False) == "No"
    assert domain.format_value({"type": "textarea"}, {"line1": "1 Street", "town": "", "postcode": "LE1"}) == \
        "1 Street, LE1"
    assert domain.format_value({"type": "date"}, "not a date") == "not a date"


TEMPLATES = {"Home Visit Letter": domain.LetterTemplate.of("Home Visit Letter", {
    "sender": "Children's Services", "addressee_field": "hvl_addressee", "subject": "Visit: $person_name",
    "paragraphs": ["We will visit $person_first_name on $hvl_visit_datetime.", "$hvl_body"],
    "closing": "Yours sincerely,"})}


def test_R_W9_a_letter_is_filled_from_the_person_and_the_steps_values():
    s = step(values={"hvl_visit_datetime": "2024-06-10T14:30", "hvl_addressee": "Ms Pat Parent"})
    letter = domain.letter_view(s, "Home Visit Letter", PERSON, TEMPLATES, date(2024, 6, 3))
    assert (letter.salutation, letter.address, letter.subject) == (
        "Dear Ms Pat Parent,", ("1 Example Street", "Testtown", "LE1 1AA"), "Visit: Ada Example")
    assert letter.paragraphs == ("We will visit Ada on Monday 10 June 2024 at 14:30.",)  # empty body dropped
    assert (letter.dated, letter.signed, letter.missing) == ("3 June 2024", "Sid Worker", ("hvl_body",))


def test_R_W9_a_letter_without_values_is_addressed_to_the_person_with_blanks_to_fill():
    letter = domain.letter_view(step(values={}), "Home Visit Letter", PERSON, TEMPLATES, date(2024, 6, 3))
    assert letter.salutation == "Dear Ada Example,"
    assert domain.BLANK in letter.paragraphs[0]


def test_R_W9_only_letters_the_steps_pack_offers_can_be_printed():
    with pytest.raises(domain.LetterUnavailable, match="offers no letter"):
        domain.letter_view(step(), "Consent", PERSON, TEMPLATES, date(2024, 6, 3))  # a form, not a letter
    with pytest.raises(domain.LetterUnavailable, match="no template"):
        domain.letter_view(step(), "Home Visit Letter", PERSON, {}, date(2024, 6, 3))


# --- uploads ------------------------------------------------------------------------------------


def image(fmt: str, size: tuple[int, int] = (20, 10)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, format=fmt)
    return out.getvalue()


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def refused(data: bytes, **limits) -> Reason:
    with pytest.raises(RuleBroken) as caught:
        domain.check_upload(data, **{**LIMITS, **limits})
    [why] = caught.value.reasons
    return why


def test_R_D2_a_png_a_jpeg_and_a_pdf_are_kept_with_their_sniffed_type_and_sha256():
    for data, kind in ((image("PNG"), "image/png"), (image("JPEG"), "image/jpeg"), (PDF, "application/pdf")):
        checked = domain.check_upload(data, **LIMITS)
        expected = (kind, len(data), hashlib.sha256(data).hexdigest())
        assert (checked.content_type, checked.size, checked.sha256) == expected


def test_R_D2_an_exe_whatever_its_name_is_refused_naming_what_it_is():
    why = refused(b"MZ\x90\x00" + b"\x00" * 60)
    assert why.code == "unsupported" and "application/x-msdownload" in why.message and "JPEG, PNG, PDF" in why.message


def test_R_D2_unknown_empty_and_oversize_files_are_refused():
    assert refused(b"<html><script>alert(1)</script></html>").code == "unsupported"
    assert refused(b"").code == "empty"
    assert refused(image("PNG"), max_bytes=10).code == "too_large"


def test_R_D2_a_file_that_only_starts_like_an_image_is_refused():
    assert "not a readable image" in refused(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20).message


def test_R_D2_an_image_with_too_many_pixels_is_refused():
    assert refused(image("PNG", (200, 100)), max_pixels=10_000).code == "too_large"


def test_R_D2_a_pdf_with_active_content_is_refused_even_with_escaped_names():
    assert "JavaScript" in refused(PDF.replace(b"/Pages 2 0 R", b"/OpenAction << /S /JavaScript /JS (x) >>")).message
    assert refused(PDF.replace(b"/Pages 2 0 R", b"/OpenAction << /S /J#61vaScript >>")).code == "unsupported"
    assert refused(b"%PDF-1.4\n no end marker").code == "unsupported"


def test_R_D2_random_bytes_inside_a_pdf_stream_are_not_taken_for_active_content():
    body = b"%PDF-1.4\n4 0 obj << /Length 9 >>\nstream\n/JS (x) 1\nendstream\nendobj\n%%EOF\n"
    assert domain.check_upload(body, **LIMITS).content_type == "application/pdf"


def test_R_D2_active_content_hidden_in_a_compressed_object_stream_is_refused():
    """Issue #21 §7: a PDF 1.5 keeps its dictionaries compressed in /ObjStm streams; they are opened and checked."""
    assert "JavaScript" in refused(pdf_samples.with_object_stream(pdf_samples.JAVASCRIPT_OPEN_ACTION)).message
    assert "Launch" in refused(pdf_samples.with_object_stream(b"/OpenAction << /S /L#61unch /F (x.exe) >>")).message
    assert refused(pdf_samples.with_object_stream(b"/AA << /O << /S /JavaScript /JS (x) >> >>")).code == "unsupported"


def test_R_D2_a_clean_pdf_with_object_streams_is_accepted():
    assert domain.check_upload(pdf_samples.with_object_stream(), **LIMITS).content_type == "application/pdf"


def test_R_D2_an_object_stream_that_cannot_be_opened_is_refused_not_waved_through():
    clean = pdf_samples.with_object_stream()
    assert "encoding" in refused(clean.replace(b"/Type /ObjStm /N 3", b"/Type /ObjStm /N 3 /Filter /LZWDecode"
                                               b" /DecodeParms << >>")).message
    start = clean.index(b"stream\n") + len(b"stream\n")
    assert "cannot be opened" in refused(clean[:start] + b"\x00" * 8 + clean[start + 8:]).message
    bomb = zlib.compress(b" " * (30 * 1024 * 1024))
    inflating = b"%PDF-1.5\n" + (b"4 0 obj\n<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length %d >>\nstream\n"
                                   % len(bomb)) + bomb + b"\nendstream\nendobj\n%%EOF\n"
    assert refused(inflating, max_bytes=len(inflating)).code == "too_large"


def test_R_D2_a_filename_keeps_no_path_or_control_characters():
    assert domain.safe_filename("../../etc/passwd\x00.png", "image/png") == "passwd.png"
    assert domain.safe_filename("C:\\Users\\me\\scan 1.pdf", "application/pdf") == "scan 1.pdf"
    assert domain.safe_filename("", "image/jpeg") == "upload.jpg"


def test_R_D1_an_unreachable_or_failing_workflow_is_a_transient_error_and_a_missing_step_is_none():
    async def read(status: int | None):
        """A step read from a local HTTP server answering `status`, or from a port nothing listens on."""
        async def answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}" % status)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        if status is None:
            server.close()
            await server.wait_closed()
        reader = StepReader(f"http://127.0.0.1:{port}", 1.0)
        try:
            return await reader.get("s1")
        finally:
            await reader.close()
            server.close()

    for status in (None, 503):
        with pytest.raises(Unavailable) as caught:
            asyncio.run(read(status))
        assert isinstance(caught.value, TRANSIENT)
    assert asyncio.run(read(404)) is None
