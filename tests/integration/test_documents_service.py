"""The documents service against the real broker and database, with workflow and referrals running."""

import hashlib
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
from PIL import Image
from pypdf import PdfReader

from services.documents import handlers
from services.documents.clients import StepReader
from shared import bearer, db, topics
from shared.broker import TRANSIENT
from shared.calendar import LONDON
from shared.envelope import new_message
from shared.readers import Unavailable
from shared.testing import EventLog, Seen, free_port, poll_until, publish, service_auth, signer_of, worker_auth
from tests import pdf_samples
from tests.workflow_harness import (
    SCREENING,
    SCREENING_VALUES,
    TRIAGE,
    TRIAGE_VALUES,
    Commands,
    Personas,
    actor,
    new_case,
)


def personas() -> Personas:
    return Personas(suffix=f"-{uuid.uuid4().hex[:8]}")


def pdf_text(content: bytes) -> str:
    """The PDF's text with whitespace runs (wrapped lines) as single spaces."""
    return " ".join(" ".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(content)).pages).split())


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
async def doc_events(infra) -> AsyncIterator[EventLog]:
    async with EventLog(infra.bootstrap, [topics.DOCUMENTS_EVENTS, topics.dlq(topics.WORKFLOW_EVENTS)]) as log:
        yield log


@pytest.fixture
async def documents_pool(infra, documents) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.open_pool(infra.dsn, "documents")
    yield pool
    await pool.close()


def rendered_for(step_id: str):
    return lambda s: s.topic == topics.DOCUMENTS_EVENTS and s.type == "document.rendered" \
        and s.data.get("step_id") == step_id


async def finished_screening(infra, events: EventLog, commands: Commands, p: Personas) -> tuple[str, str, str, Seen]:
    """A Wellbeing Screening finished through workflow.commands: person, screening, triage, its step.finished."""
    person_id, step_id = await new_case(infra, events)
    (await commands.send("step.start", p.hub, key=person_id, step_id=step_id)).ok()
    (await commands.send("step.save", p.hub, key=person_id, step_id=step_id, values=SCREENING_VALUES)).ok()
    (await commands.send("step.add_next_action", p.hub, key=person_id, step_id=step_id, action=TRIAGE)).ok()
    finished = (await commands.send("step.finish", p.hub, key=person_id, step_id=step_id)).ok()
    triage = finished.of("step.created")["step_id"]
    [seen] = [s for s in finished.seen if s.type == "step.finished"]
    return person_id, step_id, triage, seen


async def test_R_D1_finished_step_is_listed_as_a_shareable_document_with_a_readable_pdf(
        infra, documents, events, commands, doc_events):
    p = personas()
    person_id, step_id, _, _ = await finished_screening(infra, events, commands, p)
    [rendered] = await doc_events.wait_for(rendered_for(step_id))
    assert rendered.data == {"document_id": rendered.data["document_id"], "person_id": person_id,
                             "step_id": step_id, "step_type": SCREENING}  # ids only
    assert rendered.key == person_id
    async with httpx.AsyncClient(auth=service_auth(), base_url=documents.url) as http:
        listed = (await http.get(f"/people/{person_id}/documents")).json()
        pdf = await http.get(f"/documents/{rendered.data['document_id']}.pdf")
    [doc] = listed
    assert (doc["document_id"], doc["kind"], doc["step_type"], doc["shareable"], doc["finished_by"]) == (
        rendered.data["document_id"], "form", SCREENING, True, p.hub["worker_id"])
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = pdf_text(pdf.content)
    for expected in (SCREENING, "1. Personal Details", "2. Referral Details", "3. Screening Outcome",
                     "Reason for referral", "Struggling at home after a fall", "Testfirst", person_id,
                     p.hub["worker_id"], "Next actions", TRIAGE):
        assert expected in text, expected
    assert "DRAFT" not in text


async def test_R_D1_the_pdf_names_the_worker_and_the_team_and_says_when_in_uk_time(
        infra, documents, events, commands, doc_events, db):
    """Issue #22 §9: the desk's directory names the Hub's worker (account.listed on web.events, through the broker
    to workflow): the finished screening's PDF says who finished it by that name, whom the next action went to by
    the team's name, and when in UK time, with no worker id in it."""
    p = personas()
    worker, name = p.hub["worker_id"], f"Hana Testhub {uuid.uuid4().hex[:4]}"
    listing = new_message("account.listed", "tessera/web", {
        "worker_id": worker, "roles": ["gso"], "team_ids": ["wellbeing-service-hub"], "active": True,
        "as_of": datetime.now(UTC).isoformat(), "display_name": name}, subject=worker)
    await publish(infra.bootstrap, topics.WEB_EVENTS, [(worker, listing.to_bytes())])

    async def named() -> bool:
        return await db.fetchval("SELECT display_name FROM workflow.known_workers WHERE worker_id = $1",
                                 worker) == name

    await poll_until(named, 30, "the worker's name in workflow's directory")
    person_id, step_id, _, _ = await finished_screening(infra, events, commands, p)
    [rendered] = await doc_events.wait_for(rendered_for(step_id))
    async with httpx.AsyncClient(auth=service_auth(), base_url=documents.url) as http:
        [doc] = (await http.get(f"/people/{person_id}/documents")).json()
        text = pdf_text((await http.get(f"/documents/{rendered.data['document_id']}.pdf")).content)
    when = datetime.fromisoformat(doc["finished_at"]).astimezone(LONDON)
    assert f"{when.day} {when:%B %Y}, {when:%H:%M} by {name}" in text
    assert "to Wellbeing Service Hub Team" in text
    assert worker not in text and "worker:" not in text and "UTC" not in text


async def test_R_D1_duplicate_step_finished_delivery_makes_one_document(
        infra, documents, events, commands, doc_events, db):
    p = personas()
    person_id, step_id, triage, finished = await finished_screening(infra, events, commands, p)
    await doc_events.wait_for(rendered_for(step_id))
    # the same bytes twice, and the workflow re-emitting it under a new id
    again = finished.envelope.model_copy(update={"id": uuid.uuid4()})
    await publish(infra.bootstrap, topics.WORKFLOW_EVENTS,
                  [(person_id, finished.value), (person_id, finished.value), (person_id, again.to_bytes())])
    # a later step.finished of the same person (same key, same partition) is handled after them
    (await commands.send("step.start", p.hub, key=person_id, step_id=triage)).ok()
    (await commands.send("step.save", p.hub, key=person_id, step_id=triage, values=TRIAGE_VALUES)).ok()
    (await commands.send("step.add_next_action", p.hub, key=person_id, step_id=triage,
                         action="WB Involvement Ended (NFA)")).ok()
    (await commands.send("step.finish", p.hub, key=person_id, step_id=triage)).ok()
    await doc_events.wait_for(rendered_for(triage))
    assert len(doc_events.matching(rendered_for(step_id))) == 1
    count = await db.fetchval("SELECT count(*) FROM documents.documents WHERE step_id = $1", step_id)
    assert count == 1
    async with httpx.AsyncClient(auth=service_auth(), base_url=documents.url) as http:
        listed = (await http.get(f"/people/{person_id}/documents")).json()
    assert sorted(d["step_type"] for d in listed) == sorted([SCREENING, TRIAGE])


async def test_R_D1_output_current_document_of_an_unfinished_step_is_draft_and_not_listed(
        infra, documents, events, commands):
    p = personas()
    person_id, step_id = await new_case(infra, events)
    (await commands.send("step.start", p.hub, key=person_id, step_id=step_id)).ok()
    (await commands.send("step.save", p.hub, key=person_id, step_id=step_id,
                         values={"reason_for_referral": "Needs help with shopping"})).ok()
    async with httpx.AsyncClient(auth=service_auth(), base_url=documents.url) as http:
        draft = await http.get(f"/steps/{step_id}/document.pdf")
        listed = (await http.get(f"/people/{person_id}/documents")).json()
        missing = await http.get(f"/steps/{uuid.uuid4()}/document.pdf")
    assert draft.status_code == 200
    text = pdf_text(draft.content)
    assert "DRAFT" in text and SCREENING in text and "Needs help with shopping" in text
    assert "2. Referral Details" in text
    assert listed == []
    assert missing.status_code == 404


async def test_R_D1_workflow_unreachable_is_a_transient_failure_and_nothing_is_kept(
        infra, documents, workflow, events, commands, documents_pool):
    """The handler raises an error the dead-letter middleware retries (blocking, never acked) and writes nothing;
    once the workflow answers, the same message makes the document."""
    p = personas()
    person_id, step_id = await new_case(infra, events)
    # an event the documents process never sees: handled here, in process, on the service's own schema
    envelope = new_message("step.finished", "tessera/workflow", {
        "step_id": step_id, "person_id": person_id, "actor": p.hub["worker_id"], "version": 3,
        "workflow_id": str(uuid.uuid4()), "step_type": SCREENING, "next_actions": []}, subject=person_id)
    dead = StepReader(f"http://127.0.0.1:{free_port()}", 1.0)
    with pytest.raises(Unavailable) as caught:
        await handlers.keep_finished_step(documents_pool, dead, envelope)
    assert isinstance(caught.value, TRANSIENT)
    assert await documents_pool.fetchval("SELECT count(*) FROM documents WHERE step_id = $1", step_id) == 0
    assert await documents_pool.fetchval("SELECT count(*) FROM inbox WHERE message_id = $1", envelope.id) == 0
    live = StepReader(workflow.url, 5.0)
    bearer.sign_reads_with(signer_of("documents"))  # this process handles the message as the documents service
    try:
        assert await handlers.keep_finished_step(documents_pool, live, envelope) == "handled"
        assert await handlers.keep_finished_step(documents_pool, live, envelope) == "duplicate"
    finally:
        await live.close()
        await dead.close()
    assert await documents_pool.fetchval("SELECT count(*) FROM documents WHERE step_id = $1", step_id) == 1


# --- uploads (R-D2) ----------------------------------------------------------------------------


async def test_R_D2_a_real_png_is_kept_with_its_sha256_and_served_back(infra, documents, events, doc_events, db):
    """...and the upload is audited as the uploading worker's act, not the service's (issue #11 §3): the worker
    of the bearer token, never one a form field names (issue #21 §3)."""
    person_id, step_id = await new_case(infra, events)
    png = png_bytes()
    async with httpx.AsyncClient(auth=worker_auth("gso-1", person_id=person_id), base_url=documents.url) as http:
        created = await http.post(f"/people/{person_id}/documents",
                                  files={"file": ("../../front door photo.pdf", png, "application/pdf")},
                                  data={"type": "photo", "step_id": step_id, "uploaded_by": "someone-else"},
                                  headers={"X-Worker-Id": "someone-else"})
        assert created.status_code == 201, created.text
        doc = created.json()
        served = await http.get(f"/documents/{doc['document_id']}")
        listed = (await http.get(f"/people/{person_id}/documents")).json()
    sha = hashlib.sha256(png).hexdigest()
    assert (doc["content_type"], doc["size"], doc["sha256"], doc["step_id"], doc["created_by"]) == (
        "image/png", len(png), sha, step_id, "gso-1")  # the bytes' type, not the name's or the header's
    assert doc["filename"] == "front door photo.pdf"
    assert served.content == png and served.headers["content-type"] == "image/png"
    assert served.headers["content-disposition"].startswith("attachment;")
    assert [d["document_id"] for d in listed] == [doc["document_id"]]
    [attached] = await doc_events.wait_for(
        lambda s: s.type == "document.attached" and s.data.get("document_id") == doc["document_id"])
    assert attached.data == {"document_id": doc["document_id"], "person_id": person_id, "step_id": step_id,
                             "document_type": "photo", "sha256": sha, "content_type": "image/png", "size": len(png),
                             "actor": "gso-1"}
    assert b"front door" not in attached.value and png not in attached.value  # no name, no bytes on Kafka
    audited = await db.fetchrow("SELECT actor_id, action, object_id FROM documents.audit_log WHERE message_id = $1",
                                uuid.UUID(str(attached.envelope.id)))
    assert dict(audited) == {"actor_id": "gso-1", "action": "document.attached", "object_id": doc["document_id"]}


async def test_R_D2_an_exe_renamed_pdf_is_refused_naming_the_reason(infra, documents, events, db):
    person_id, _ = await new_case(infra, events)
    exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 50
    exe += b"This program cannot be run in DOS mode"
    async with httpx.AsyncClient(auth=worker_auth("sw-1", person_id=person_id), base_url=documents.url) as http:
        refused = await http.post(f"/people/{person_id}/documents",
                                  files={"file": ("consent.pdf", exe, "application/pdf")},
                                  data={"type": "consent_form"})
    assert refused.status_code == 415
    detail = refused.json()["detail"]
    assert "application/x-msdownload" in detail and "JPEG, PNG, PDF" in detail and "not trusted" in detail
    assert await db.fetchval("SELECT count(*) FROM documents.documents WHERE person_id = $1", person_id) == 0


async def test_R_D2_a_pdf_hiding_javascript_in_an_object_stream_is_refused_and_a_clean_one_kept(infra, documents,
                                                                                               events, db):
    """Issue #21 §7: the active-content check opens compressed object streams (/ObjStm)."""
    person_id, _ = await new_case(infra, events)
    async with httpx.AsyncClient(auth=worker_auth("sw-1", person_id=person_id), base_url=documents.url) as http:
        hidden = await http.post(f"/people/{person_id}/documents",
                                 files={"file": ("letter.pdf", pdf_samples.with_object_stream(
                                     pdf_samples.JAVASCRIPT_OPEN_ACTION), "application/pdf")},
                                 data={"type": "consent_form"})
        clean = await http.post(f"/people/{person_id}/documents",
                                files={"file": ("letter.pdf", pdf_samples.with_object_stream(), "application/pdf")},
                                data={"type": "consent_form"})
    assert hidden.status_code == 415 and "active content (JavaScript)" in hidden.json()["detail"]
    assert clean.status_code == 201, clean.text
    kept = await db.fetch("SELECT document_id FROM documents.documents WHERE person_id = $1", person_id)
    assert [str(r["document_id"]) for r in kept] == [clean.json()["document_id"]]


async def test_R_D2_oversize_and_unattributed_uploads_are_refused(infra, documents, events):
    """Issue #21 §3: an upload is a worker's act, so a service's own token (no worker) cannot make one, and
    nobody without a token can."""
    person_id, _ = await new_case(infra, events)
    too_big = png_bytes() + b"\x00" * (1024 * 1024)  # the tests' limit is 1 MiB
    nobody_id = str(uuid.uuid4())
    as_worker = worker_auth("sw-1", person_id=person_id)
    async with httpx.AsyncClient(auth=as_worker, base_url=documents.url) as http:
        big = await http.post(f"/people/{person_id}/documents", files={"file": ("a.png", too_big, "image/png")},
                              data={"type": "photo"})
        as_service = await http.post(f"/people/{person_id}/documents", auth=service_auth(),
                                     files={"file": ("a.png", png_bytes(), "image/png")},
                                     data={"type": "photo", "uploaded_by": "sw-1"})
        no_token = await http.post(f"/people/{person_id}/documents", auth=httpx.Auth(),
                                   files={"file": ("a.png", png_bytes(), "image/png")}, data={"type": "photo"})
        bad_type = await http.post(f"/people/{person_id}/documents",
                                   files={"file": ("a.png", png_bytes(), "image/png")}, data={"type": "selfie"})
        nobody = await http.post(f"/people/{nobody_id}/documents", auth=worker_auth("sw-1", person_id=nobody_id),
                                 files={"file": ("a.png", png_bytes(), "image/png")}, data={"type": "photo"})
    assert big.status_code == 413 and "limit" in big.json()["detail"]
    assert as_service.status_code == 403 and "worker's act" in as_service.json()["detail"]
    assert no_token.status_code == 401
    assert bad_type.status_code == 422 and "photo" in bad_type.json()["detail"]
    assert nobody.status_code == 404


# --- letters (R-W9) ----------------------------------------------------------------------------


async def test_R_W9_home_visit_letter_renders_with_the_persons_name_address_and_the_visit(
        infra, documents, referrals, events, commands):
    rsw = actor(f"rsw-{uuid.uuid4().hex[:8]}", "response_social_worker", "social_worker", teams=("children-response",))
    person_id, step_id = await new_case(infra, events, service="children", category="child_in_need")
    (await commands.send("step.start", rsw, key=person_id, step_id=step_id)).ok()
    (await commands.send("step.add_form", rsw, key=person_id, step_id=step_id, form="Home Visit Letter")).ok()
    (await commands.send("step.save", rsw, key=person_id, step_id=step_id,
                         values={"hvl_visit_datetime": "2024-06-10T14:30:00", "hvl_addressee": "Ms Pat Parent"})).ok()
    async with httpx.AsyncClient(auth=service_auth(), base_url=documents.url) as http:
        letter = await http.get(f"/steps/{step_id}/letters/Home Visit Letter.pdf")
        slug = await http.get(f"/steps/{step_id}/letters/outcome-of-assessment-letter.pdf")
        unknown = await http.get(f"/steps/{step_id}/letters/Eviction Notice.pdf")
    async with httpx.AsyncClient(auth=service_auth(), base_url=referrals.url) as http:
        person = (await http.get(f"/people/{person_id}")).json()
    assert letter.status_code == 200, letter.text
    text = pdf_text(letter.content)
    name = f"{person['first_name']} {person['last_name']}"
    for expected in ("Dear Ms Pat Parent,", name, person["address"]["line1"], person["address"]["postcode"],
                     "Monday 10 June 2024 at 14:30", "Children's Services"):
        assert expected in text, expected
    assert slug.status_code == 200 and name in pdf_text(slug.content)
    assert unknown.status_code == 404 and "Home Visit Letter" in unknown.json()["detail"]
