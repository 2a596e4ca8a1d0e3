"""Letters to people queued for print (R-T4) and where document bytes are stored (R-D2), without services."""

import asyncio
import hashlib
import io
from datetime import date
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from pypdf import PdfReader

from services.documents import domain, render, storage
from services.documents.settings import DocumentsSettings
from services.notifications import domain as notifications
from tests.unit.test_documents_domain import PERSON
from tests.unit.test_documents_render import fonts, text_of

SHIPPED = Path(domain.__file__).parent / "templates" / "letters.yaml"
TEMPLATES = {name: domain.LetterTemplate.of(name, raw)
             for name, raw in yaml.safe_load(SHIPPED.read_text(encoding="utf-8")).items()}
TEAM = {"team_name": "Wellbeing Service North", "team_number": "0116 496 0101",
        "regular_contact": "at least once every two weeks"}
WAITING = notifications.TEMPLATES["pwt_added"]  # the template notifications records for a tray placement


def waiting_letter(params=TEAM, person=PERSON) -> domain.LetterView:
    template = domain.template_for_message(TEMPLATES, WAITING)
    return domain.message_letter_view(template, person, params, date(2024, 6, 3), person_id="p1", message_id="m1")


def test_R_T4_the_waiting_list_letter_prints_the_team_its_number_and_the_persons_address():
    text = text_of(render.render_letter(waiting_letter(), fonts()))
    for expected in ("Wellbeing Service North", "3 June 2024", "Ada Example 1 Example Street Testtown LE1 1AA",
                     "Dear Ada Example,", "You are on the waiting list for Wellbeing Service North",
                     "If your situation changes, please call 0116 496 0101", "Yours sincerely,",
                     "will contact you at least once every two weeks to check that you are",  # seed 004
                     "Waiting List Letter · Message m1"):
        assert expected in text, expected


def test_R_T4_a_team_number_the_message_lacks_prints_as_a_blank_to_fill_by_hand():
    view = waiting_letter({**TEAM, "team_number": None})
    assert view.missing == ("team_number",)
    assert any(f"please call {domain.BLANK}" in p for p in view.paragraphs)


def test_R_T4_a_person_without_a_name_is_written_to_as_sir_or_madam():
    assert waiting_letter(person={"address": PERSON["address"]}).salutation == "Dear Sir or Madam,"


def test_R_T4_a_message_template_with_no_letter_is_refused_by_name():
    with pytest.raises(domain.LetterUnavailable, match="'referrer_update'"):
        domain.template_for_message(TEMPLATES, "referrer_update")


def test_the_same_letter_renders_to_the_same_bytes_so_a_retry_reuses_its_stored_object():
    first, again = (render.render_letter(waiting_letter(), fonts()) for _ in range(2))
    assert first == again and len(PdfReader(io.BytesIO(first)).pages) == 1


# --- storage (R-D2) ----------------------------------------------------------------------------


def test_R_D2_the_folder_store_names_files_by_sha256_writes_atomically_and_reads_back(tmp_path):
    store = storage.FolderStore(tmp_path / "uploads")
    content = b"%PDF-1.4 pretend\n%%EOF"
    sha = hashlib.sha256(content).hexdigest()
    checked = domain.CheckedFile("application/pdf", len(content), sha)
    stored = asyncio.run(storage.keep(store, checked, content))
    again = asyncio.run(storage.keep(store, checked, content))
    assert stored == again == storage.Stored("folder", f"{sha[:2]}/{sha}")
    assert [p.relative_to(tmp_path) for p in (tmp_path / "uploads").rglob("*") if p.is_file()] == [
        (tmp_path / "uploads" / sha[:2] / sha).relative_to(tmp_path)]  # one file, no temp files left
    assert asyncio.run(store.get(stored.key or "")) == content
    assert asyncio.run(store.get(f"{'0' * 2}/{'0' * 64}")) is None
    with pytest.raises(ValueError):
        asyncio.run(store.get("../../etc/passwd"))


def test_R_D2_postgres_storage_keeps_the_bytes_in_the_row():
    checked = domain.CheckedFile("image/png", 3, "a" * 64)
    assert asyncio.run(storage.keep(None, checked, b"abc")) == storage.IN_POSTGRES


def test_s3_storage_without_a_bucket_or_with_half_the_credentials_is_refused_by_name():
    with pytest.raises(ValidationError, match="S3_BUCKET"):
        DocumentsSettings(document_storage="s3")
    with pytest.raises(ValidationError, match="S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY"):
        DocumentsSettings(document_storage="s3", s3_bucket="docs", s3_access_key_id="AKIA")
    with pytest.raises(ValidationError, match="document_storage"):
        DocumentsSettings(document_storage="ftp")
