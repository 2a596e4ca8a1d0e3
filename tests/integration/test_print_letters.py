"""Letters queued for print (R-T4): notifications records a letter for a person reached by post, the
documents service renders it from the waiting-list template, keeps it as the person's document and lists
it for business support to print — through the real broker, database, referrals and notifications."""

import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from services.documents import handlers
from shared import db, topics
from shared.envelope import Envelope, Undecodable, new_message
from shared.testing import EventLog, Seen, publish, service_auth, worker_auth
from tests.factories import canary, person_data, referral_message, unique_referral, unique_seed
from tests.integration.test_documents_service import pdf_text

FIRST, LAST = canary("first name", "Philippa"), canary("last name", "Quernstone")


@pytest.fixture
async def doc_events(infra) -> AsyncIterator[EventLog]:
    async with EventLog(infra.bootstrap, [topics.DOCUMENTS_EVENTS, topics.NOTIFICATIONS_EVENTS,
                                          topics.dlq(topics.NOTIFICATIONS_EVENTS)]) as log:
        yield log


@pytest.fixture
async def documents_pool(infra, documents) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.open_pool(infra.dsn, "documents")
    yield pool
    await pool.close()


async def person_by_post(infra, events: EventLog) -> tuple[str, dict]:
    person = person_data(unique_seed(), first_name=FIRST, last_name=LAST, preferred_contact="Letter",
                         communication_needs=[])  # the print queue prints the standard letter only
    data = unique_referral(person=person)
    envelope = referral_message(data)
    await publish(infra.bootstrap, topics.REFERRALS_INTAKE, [(data["referral_id"], envelope.to_bytes())])
    [accepted] = await events.wait_for(lambda s: s.caused_by(envelope.id) and s.type == "referral.accepted")
    return accepted.data["person_id"], person


async def queue_letter(infra, log: EventLog, person_id: str, **extra) -> Seen:
    """`message.requested` as allocation sends it when a case goes on a tray; notifications' `message.sent`."""
    requested = new_message("message.requested", "tessera/allocation", {
        "person_id": person_id, "team_id": "wellbeing-service-north", "reason": "pwt_added", "channel": None,
        "entry_id": str(uuid.uuid4()), **extra}, subject=person_id)
    await publish(infra.bootstrap, topics.ALLOCATION_EVENTS, [(person_id, requested.to_bytes())])
    sent = one(await log.wait_for(lambda s: s.topic == topics.NOTIFICATIONS_EVENTS and s.caused_by(requested.id)
                                  and s.data.get("recipient", "person") == "person"))  # not the referrer's copy
    assert (sent.type, sent.data["channel"], sent.data["status"]) == ("message.sent", "letter", "queued_for_print")
    return sent


async def rendered_letter(log: EventLog, message_id: str) -> Seen:
    return one(await log.wait_for(lambda s: s.type == "document.rendered" and s.data.get("message_id") == message_id))


def one(seen: list[Seen]) -> Seen:
    """The one event seen, however often the relay delivered it (at least once, the same envelope)."""
    assert len({s.envelope.id for s in seen}) == 1, [s.type for s in seen]
    return seen[0]


async def test_R_T4_a_letter_queued_for_print_is_rendered_kept_listed_and_printable_once(
        infra, notifications, documents, referrals, events, doc_events, db):
    person_id, person = await person_by_post(infra, events)
    sent = await queue_letter(infra, doc_events, person_id)
    message_id = sent.data["message_id"]
    rendered = await rendered_letter(doc_events, message_id)
    document_id = rendered.data["document_id"]
    assert rendered.key == person_id
    assert rendered.data == {"document_id": document_id, "person_id": person_id, "kind": "letter",
                             "message_id": message_id}  # ids only: no name, no address
    async with httpx.AsyncClient(auth=service_auth(), base_url=documents.url) as http:
        listed = (await http.get(f"/people/{person_id}/documents")).json()
        pdf = await http.get(f"/documents/{document_id}.pdf")
    [letter] = listed
    assert (letter["document_id"], letter["kind"], letter["title"], letter["message_id"], letter["shareable"]) == (
        document_id, "letter", "Waiting List Letter", message_id, True)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = pdf_text(pdf.content)
    for expected in (f"Dear {FIRST} {LAST},", person["address"]["line1"], person["address"]["postcode"],
                     "You are on the waiting list for Wellbeing Service North",
                     "If your situation changes, please call 0116 496 0101", f"Message {message_id}",
                     # seed 004: the regular contact to expect (no known RAG: the guide's "at least monthly")
                     "someone from the team will contact you at least once a month"):
        assert expected in text, expected

    # the same message.sent redelivered twice, and re-emitted under a new id: still one letter
    again = sent.envelope.model_copy(update={"id": uuid.uuid4()})
    # and a letter GOV.UK Notify took (issue #22 §8) is Notify's to print and post, not business support's
    by_notify = new_message("message.sent", "tessera/notifications", {
        **sent.data, "message_id": str(uuid.uuid4()), "status": "sent", "provider": "notify"}, subject=person_id)
    await publish(infra.bootstrap, topics.NOTIFICATIONS_EVENTS,
                  [(person_id, sent.value), (person_id, sent.value), (person_id, again.to_bytes()),
                   (person_id, by_notify.to_bytes())])
    # a later letter to the same person (same key, same partition) is handled after them
    marker = await queue_letter(infra, doc_events, person_id, team_id="locality-unknown",
                                team_contact_number="0116 496 0777")
    await rendered_letter(doc_events, marker.data["message_id"])
    assert len({s.envelope.id for s in doc_events.matching(
        lambda s: s.data.get("message_id") == message_id and s.type == "document.rendered")}) == 1
    assert doc_events.matching(lambda s: s.type == "document.rendered"
                               and s.data.get("message_id") == by_notify.data["message_id"]) == []
    assert await db.fetchval("SELECT count(*) FROM documents.letters WHERE message_id = $1", message_id) == 1
    outgoing = b"".join(s.value for s in doc_events.matching(lambda s: s.topic == topics.DOCUMENTS_EVENTS))
    for secret in (FIRST, LAST, person["address"]["line1"], person["address"]["postcode"]):
        assert secret.encode() not in outgoing
        assert secret not in documents.log_text()


BSS_1 = worker_auth("bss-1", ["business_support"])


async def test_R_T4_business_support_sees_letters_to_print_and_marks_them_printed(
        infra, notifications, documents, events, doc_events, db):
    """Who marked it is the worker of the bearer token, recorded in the audit chain (issue #21 §3)."""
    person_id, _ = await person_by_post(infra, events)
    sent = await queue_letter(infra, doc_events, person_id)
    document_id = (await rendered_letter(doc_events, sent.data["message_id"])).data["document_id"]
    async with httpx.AsyncClient(auth=service_auth(), base_url=documents.url) as http:
        oldest = (await http.get("/letters/print-queue", params={"limit": 1000})).json()
        queue = (await http.get("/letters/print-queue", params={"person_id": person_id})).json()
        as_service = await http.post(f"/letters/{document_id}/printed", headers={"X-Worker-Id": "bss-1"})
        printed = await http.post(f"/letters/{document_id}/printed", auth=BSS_1)
        twice = await http.post(f"/letters/{document_id}/printed", auth=worker_auth("bss-2", ["business_support"]))
        after = (await http.get("/letters/print-queue", params={"person_id": person_id})).json()
        unknown = await http.post(f"/letters/{uuid.uuid4()}/printed", auth=BSS_1)
        listed = (await http.get(f"/people/{person_id}/documents")).json()
    [waiting] = queue  # other tests' letters may fill the first page of the whole queue
    assert [q["queued_at"] for q in oldest] == sorted(q["queued_at"] for q in oldest)
    assert (waiting["person_id"], waiting["message_id"], waiting["template"], waiting["printed_at"]) == (
        person_id, sent.data["message_id"], "pwt_waiting_list", None)
    assert waiting["pdf"] == f"/documents/{document_id}.pdf"
    assert as_service.status_code == 403 and "worker's act" in as_service.json()["detail"]
    assert printed.status_code == 200 and printed.json()["printed_by"] == "bss-1" and printed.json()["printed_at"]
    assert twice.status_code == 200 and twice.json()["printed_by"] == "bss-1"  # marking again changes nothing
    assert twice.json()["printed_at"] == printed.json()["printed_at"]
    assert after == []
    assert unknown.status_code == 404
    assert [d["printed_at"] for d in listed] == [printed.json()["printed_at"]]
    audited = await db.fetch("SELECT actor_id, actor_roles, subject FROM documents.audit_log"
                             " WHERE action = 'letter.marked_printed' AND object_id = $1", document_id)
    assert [tuple(r) for r in audited] == [("worker:bss-1", ["business_support"], person_id)]


async def test_R_T4_a_letter_whose_template_has_no_letter_is_dead_lettered_not_dropped(documents_pool, documents):
    """No retry can print it, so it goes to the dead-letter topic for a person to see, and nothing is kept."""
    person_id, message_id = str(uuid.uuid4()), str(uuid.uuid4())
    envelope: Envelope = new_message("message.sent", "tessera/notifications", {
        "message_id": message_id, "person_id": person_id, "channel": "letter", "status": "queued_for_print",
        "reason": "referrer_update", "template": "referrer_update", "attempts": 0}, subject=person_id)
    kit = handlers.LetterKit(people=None, templates={}, fonts=None, blobs=None)  # type: ignore[arg-type]
    with pytest.raises(Undecodable, match="'referrer_update'"):
        await handlers.keep_queued_letter(documents_pool, kit, envelope)
    assert await documents_pool.fetchval("SELECT count(*) FROM letters WHERE message_id = $1", message_id) == 0
