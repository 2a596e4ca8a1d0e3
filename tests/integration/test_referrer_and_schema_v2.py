"""`referral.accepted` v2 (with the referrer) and its consumers, through the real broker and database.

R-T4: when a case goes on a Planned Work Tray, the referrer gets a copy (email, or SMS with only a mobile
number) with the team's number. Schema evolution (issue 11): the referrals service emits v2; the
workflow service stays a v1 consumer and handles a v2 message exactly as a v1; the notifications
service is the v2 consumer, reading v1 messages still in the log through the upcaster.
"""

import uuid
from typing import Any

import asyncpg
import httpx

from shared import topics
from shared.envelope import Envelope, new_message
from shared.testing import EventLog, Seen, poll_until, publish, service_auth
from tests.allocation_harness import Staff, referral_seen, tray_args
from tests.factories import canary, referral_message, unique_referral
from tests.workflow_harness import SCREENING, new_case

REFERRER_NAME, REFERRER_ORG = canary("referrer name", "Quillon Fernsby"), "Larkspur Surgery"
DEFAULT_TEAM_NUMBER = "0116 496 0999"  # teams.yaml's default: the tests' teams are not listed there


def _accepted(person_id: str, version: int, **extra: Any) -> Envelope:
    """`referral.accepted` as the referrals service emits it at `version` (v1: before the referrer was added)."""
    data = {"referral_id": f"REF-{uuid.uuid4().hex[:10]}", "person_id": person_id, "matched": True,
            "workflow_id": str(uuid.uuid4()), "first_step_type": SCREENING, "service": "adults",
            "category": "wellbeing", "urgency": "normal", "ordinarily_resident": True, **extra}
    return new_message("referral.accepted", "tessera/referrals", data, subject=person_id,
                       dataschema=f"referral.accepted/{version}")


async def _handled(db: asyncpg.Pool, service: str, message: Envelope) -> None:
    await poll_until(lambda: db.fetchval(f"SELECT true FROM {service}.inbox WHERE message_id = $1", message.id),
                     30, f"{service} handled {message.type}")


async def _referred_by_email(infra: Any, events: EventLog, db: asyncpg.Pool) -> tuple[str, dict[str, Any], str]:
    """A referral through intake naming a referrer with an email address, read by notifications: the address,
    the referral, the person."""
    email = f"quillon{uuid.uuid4().hex[:6]}@example.org"
    data = unique_referral(referrer={"name": REFERRER_NAME, "organisation": REFERRER_ORG, "role": "GP",
                                     "phone": "0116 496 0001", "email": email})
    envelope = referral_message(data)
    await publish(infra.bootstrap, topics.REFERRALS_INTAKE, [(data["referral_id"], envelope.to_bytes())])
    [accepted] = await events.wait_for(lambda m: m.caused_by(envelope.id) and m.type == "referral.accepted")
    await _handled(db, "notifications", accepted.envelope)
    return email, data, accepted.data["person_id"]


def _told(requested_id: str, recipient: str):
    return lambda s: s.topic == topics.NOTIFICATIONS_EVENTS and s.body.get("causationid") == requested_id \
        and s.type in ("message.sent", "message.failed") and s.data.get("recipient") == recipient


async def _messages_of(notifications: Any, person_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(auth=service_auth(), base_url=notifications.url) as http:
        return (await http.get(f"/people/{person_id}/messages")).json()


# --- the producer ---------------------------------------------------------------------------------


async def test_referrals_emit_referral_accepted_v2_carrying_the_referrer(infra, referrals, events: EventLog):
    data = unique_referral(referrer={"name": REFERRER_NAME, "organisation": REFERRER_ORG, "role": "GP",
                                     "phone": "", "email": "quillon@example.org"})
    envelope = referral_message(data)
    await publish(infra.bootstrap, topics.REFERRALS_INTAKE, [(data["referral_id"], envelope.to_bytes())])
    [accepted] = await events.wait_for(lambda s: s.caused_by(envelope.id) and s.type == "referral.accepted")
    assert accepted.body["dataschema"] == "referral.accepted/2"
    assert accepted.data["referrer"] == {"name": REFERRER_NAME, "organisation": REFERRER_ORG, "role": "GP",
                                         "phone": None, "email": "quillon@example.org"}
    anonymous = unique_referral(referrer=None)
    message = referral_message(anonymous)
    await publish(infra.bootstrap, topics.REFERRALS_INTAKE, [(anonymous["referral_id"], message.to_bytes())])
    [second] = await events.wait_for(lambda s: s.caused_by(message.id) and s.type == "referral.accepted")
    assert second.body["dataschema"] == "referral.accepted/2" and second.data["referrer"] is None


# --- the v1 consumer: workflow --------------------------------------------------------------------


def _opened(events: EventLog, accepted: Envelope) -> list[Seen]:
    return events.matching(lambda s: s.topic == topics.WORKFLOW_EVENTS
                           and s.data.get("workflow_id") == accepted.data["workflow_id"])


def _without_ids(value: Any) -> Any:
    """The message's data without the ids that differ between the two referrals, however deep."""
    if isinstance(value, Seen):
        return _without_ids(value.data)
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k not in ("step_id", "workflow_id", "referral_id")}
    return value


async def test_workflow_a_v1_consumer_handles_a_v2_referral_accepted_exactly_as_a_v1(infra, workflow, events):
    person_id, _ = await new_case(infra, events)
    v1 = _accepted(person_id, 1)
    v2 = _accepted(person_id, 2, referrer={"name": REFERRER_NAME, "organisation": REFERRER_ORG, "role": "GP",
                                           "phone": "07700 900123", "email": "quillon@example.org"})
    await publish(infra.bootstrap, topics.REFERRALS_EVENTS, [(person_id, v1.to_bytes()), (person_id, v2.to_bytes())])
    for accepted in (v1, v2):
        await events.wait_for(lambda s, a=accepted: s.type == "step.created"
                              and s.data.get("workflow_id") == a.data["workflow_id"])
    by_v1, by_v2 = _opened(events, v1), _opened(events, v2)
    assert [s.type for s in by_v1] == [s.type for s in by_v2] == ["workflow.started", "step.created"]
    assert [_without_ids(s) for s in by_v1] == [_without_ids(s) for s in by_v2]
    assert by_v2[1].data["step_type"] == SCREENING and by_v2[1].data["person_id"] == person_id
    assert not events.matching(lambda s: s.topic == topics.dlq(topics.REFERRALS_EVENTS))


# --- the v2 consumer: notifications tells the referrer (R-T4) --------------------------------------


async def test_R_T4_placing_a_case_on_a_tray_emails_the_referrer_a_copy_with_the_teams_number(
        infra, allocation, notifications, out, alloc, events: EventLog, mail, db):
    s = Staff()
    email, data, person_id = await _referred_by_email(infra, events, db)
    await referral_seen(db, person_id)

    placed = (await alloc.send("tray.add", s.tm, person_id=person_id, **tray_args(s.team))).ok()
    requested = str(next(x for x in placed.seen if x.type == "message.requested").envelope.id)
    [to_person] = await events.wait_for(_told(requested, "person"))
    [to_referrer] = await events.wait_for(_told(requested, "referrer"))
    # the factory's person prefers "phone": the team is asked to phone them (issue #22 §3)
    assert (to_person.type, to_person.data["channel"]) == ("message.sent", "phone")
    assert (to_referrer.type, to_referrer.data["channel"], to_referrer.data["status"]) == ("message.sent", "email",
                                                                                           "sent")
    assert to_referrer.data["template"] == "pwt_waiting_list_referrer" and to_referrer.key == person_id
    [mailed] = [m for m in mail.mails if m["X-Tessera-Message-Id"] == to_referrer.data["message_id"]]
    assert mailed["To"] == email
    # a long subject is folded onto the next line: unfolded it starts with the fold's space
    subject = f"Your referral {data['referral_id']}: on the waiting list for Adult Social Care"
    assert mailed["Subject"].strip() == subject
    body = mailed.get_content()
    assert f"Dear {REFERRER_NAME}," in body
    assert f"If their situation changes, please call {DEFAULT_TEAM_NUMBER}." in body
    assert data["person"]["last_name"] not in body  # named by the referrer's own reference only

    records = {m["recipient"]: m for m in await _messages_of(notifications, person_id)}
    assert set(records) == {"person", "referrer"}
    assert (records["referrer"]["channel"], records["referrer"]["status"], records["referrer"]["attempts"]) == (
        "email", "sent", 1)
    outgoing = b"".join(m.value for m in events.matching(lambda m: m.topic == topics.NOTIFICATIONS_EVENTS))
    log = notifications.log_text() + allocation.log_text()
    for secret in (REFERRER_NAME, email):
        assert secret not in log and secret.encode() not in outgoing


async def test_R_T4_a_referrer_with_only_a_phone_number_is_a_phone_call_for_the_team_never_a_text_sent(
        infra, notifications, events: EventLog, db):
    """Issue #22 §8: with no real SMS provider (development) a referrer's mobile number is phoned by the team."""
    person_id, _ = await new_case(infra, events)
    texted = _accepted(person_id, 2, referrer={"name": REFERRER_NAME, "phone": "07700 900456"})
    await publish(infra.bootstrap, topics.REFERRALS_EVENTS, [(person_id, texted.to_bytes())])
    await _handled(db, "notifications", texted)
    requested = _requested(person_id)
    await publish(infra.bootstrap, topics.ALLOCATION_EVENTS, [(person_id, requested.to_bytes())])
    [call] = await events.wait_for(_told(str(requested.id), "referrer"))
    assert (call.type, call.data["channel"], call.data["status"], call.data["fallback_from"]) == (
        "message.sent", "phone", "phone_call_task", "sms")
    [task] = await events.wait_for(lambda s: s.type == "task.created" and s.data["task_id"] == call.data["task_id"])
    assert (task.data["code"], task.data["recipient"]) == ("phone_call", {"kind": "team",
                                                                          "id": "wellbeing-service-north"})

    landline = _accepted(person_id, 2, referrer={"name": REFERRER_NAME, "phone": "0116 496 0001"})
    await publish(infra.bootstrap, topics.REFERRALS_EVENTS, [(person_id, landline.to_bytes())])
    await _handled(db, "notifications", landline)
    again = _requested(person_id)
    await publish(infra.bootstrap, topics.ALLOCATION_EVENTS, [(person_id, again.to_bytes())])
    [called] = await events.wait_for(_told(str(again.id), "referrer"))
    assert (called.type, called.data["channel"], called.data["status"]) == ("message.sent", "phone",
                                                                            "phone_call_task")


def _requested(person_id: str) -> Envelope:
    data = {"person_id": person_id, "team_id": "wellbeing-service-north", "reason": "pwt_added", "channel": None,
            "entry_id": str(uuid.uuid4())}
    return new_message("message.requested", "tessera/allocation", data, subject=person_id,
                       dataschema="message.requested/1")


async def test_R_T4_a_v1_referral_accepted_still_in_the_log_is_upcast_no_referrer_so_only_the_person_is_told(
        infra, notifications, events: EventLog, db):
    person_id, _ = await new_case(infra, events)  # intake's v2 names the factory's referrer
    v1 = _accepted(person_id, 1, referrer={"name": "ignored: v1 has no referrer", "email": "x@example.org"})
    no_schema = Envelope.model_validate({**_accepted(person_id, 1).model_dump(), "dataschema": None})
    for accepted in (v1, no_schema):
        await publish(infra.bootstrap, topics.REFERRALS_EVENTS, [(person_id, accepted.to_bytes())])
        await _handled(db, "notifications", accepted)
        requested = _requested(person_id)
        await publish(infra.bootstrap, topics.ALLOCATION_EVENTS, [(person_id, requested.to_bytes())])
        [told] = await events.wait_for(_told(str(requested.id), "person"))
        assert told.type == "message.sent"
        # one outcome per recipient, all in one transaction: the person's is there, so a referrer's would be too
        assert events.matching(_told(str(requested.id), "referrer")) == []
    assert not events.matching(lambda m: m.topic == topics.dlq(topics.REFERRALS_EVENTS))


async def test_an_undecodable_referral_accepted_is_dead_lettered_by_notifications(infra, notifications, db):
    person_id = str(uuid.uuid4())
    wrong_schema = _accepted(person_id, 2)
    wrong_schema = Envelope.model_validate({**wrong_schema.model_dump(), "dataschema": "person.created/1"})
    bad_v2 = _accepted(person_id, 2, referrer={"email": "not an email"})
    async with EventLog(infra.bootstrap, [topics.dlq(topics.REFERRALS_EVENTS)]) as dead:
        await publish(infra.bootstrap, topics.REFERRALS_EVENTS,
                      [(person_id, wrong_schema.to_bytes()), (person_id, bad_v2.to_bytes())])
        letters = await dead.wait_for(lambda m: m.headers.get("dlq_service") == "notifications"
                                      and m.body.get("id") in (str(wrong_schema.id), str(bad_v2.id)), 60, 2)
    reasons = {m.body["id"]: m.headers["dlq_error"] for m in letters}
    assert reasons[str(wrong_schema.id)] == (
        "invalid referral.accepted: dataschema is not a version of referral.accepted")
    assert reasons[str(bad_v2.id)].startswith("invalid referral.accepted: referrer.email")
    assert "not an email" not in reasons[str(bad_v2.id)]


async def test_R_T4_a_tray_message_read_before_the_referral_still_tells_the_referrer_asking_referrals(
        infra, referrals, notifications, events: EventLog, mail, db):
    """After an outage notifications may read allocation.events before referrals.events: the referrer it
    has not heard of yet is read from referrals (GET /people/{id}/referrer), told, and kept."""
    email, data, person_id = await _referred_by_email(infra, events, db)
    await db.execute("DELETE FROM notifications.referrers WHERE person_id = $1", person_id)  # as if not yet read
    async with httpx.AsyncClient(auth=service_auth(), base_url=referrals.url) as http:
        latest = (await http.get(f"/people/{person_id}/referrer")).json()
        nobody = await http.get(f"/people/{uuid.uuid4()}/referrer")
    assert (latest["referral_id"], latest["referrer"]["email"]) == (data["referral_id"], email)
    assert nobody.status_code == 404

    requested = _requested(person_id)
    await publish(infra.bootstrap, topics.ALLOCATION_EVENTS, [(person_id, requested.to_bytes())])
    [to_referrer] = await events.wait_for(_told(str(requested.id), "referrer"))
    assert (to_referrer.type, to_referrer.data["channel"]) == ("message.sent", "email")
    assert [m["To"] for m in mail.mails if m["X-Tessera-Message-Id"] == to_referrer.data["message_id"]] == [email]
    kept = await db.fetchval("SELECT referral_id FROM notifications.referrers WHERE person_id = $1", person_id)
    assert kept == data["referral_id"]

    stranger = str(uuid.uuid4())  # no referral at all: the person's message only, nothing failed
    alone = _requested(stranger)
    await publish(infra.bootstrap, topics.ALLOCATION_EVENTS, [(stranger, alone.to_bytes())])
    await events.wait_for(_told(str(alone.id), "person"))
    assert events.matching(_told(str(alone.id), "referrer")) == []
