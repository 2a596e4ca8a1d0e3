"""The notifications service through the real broker and database: inboxes (R-RQ1, R-RQ2), overdue
reminders (R-S2) and messages to people by their preferred method (R-T4)."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from shared import topics
from shared.envelope import Envelope, new_message
from shared.testing import EventLog, Seen, publish, service_auth
from tests.factories import canary, person_data, referral_message, unique_referral, unique_seed
from tests.workflow_harness import SCREENING, Personas, new_case

NORTH = {"kind": "team", "id": "wellbeing-service-north"}
PLEASE_ACTION = "(R) WB Please action"


def personas() -> Personas:
    return Personas(suffix=f"-{uuid.uuid4().hex[:8]}")


def delivered(request_id: str):
    return lambda s: s.topic == topics.NOTIFICATIONS_EVENTS and s.type == "notification.delivered" \
        and s.data.get("request_id") == request_id


def timer(type_: str, request_id: str):
    return lambda s: s.topic == topics.SCHEDULER_TIMERS and s.type == type_ \
        and s.data.get("key") == f"request-overdue:{request_id}"


async def inbox(service: Any, kind: str, owner: str, **params: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(auth=service_auth(), base_url=service.url) as http:
        response = await http.get(f"/{kind}/{owner}/inbox", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def workflow_event(type_: str, key: str, /, **data: Any) -> Envelope:
    """An event as the workflow service emits it on workflow.events."""
    return new_message(type_, "tessera/workflow", data, subject=key, dataschema=f"{type_}/1")


def raised(person_id: str, to: dict[str, str], **overrides: Any) -> Envelope:
    data = {"step_id": str(uuid.uuid4()), "person_id": person_id, "actor": "hub-x", "version": 2,
            "request_id": str(uuid.uuid4()), "step_type": SCREENING, "name": PLEASE_ACTION, "required": False,
            "to": to, "note": "Please visit", "step_state": "incomplete", **overrides}
    return workflow_event("request.raised", person_id, **data)


async def publish_envelopes(infra: Any, topic: str, key: str, *envelopes: Envelope) -> None:
    await publish(infra.bootstrap, topic, [(key, e.to_bytes()) for e in envelopes])


# --- inboxes ----------------------------------------------------------------------------------


async def test_R_RQ1_R_RQ2_a_request_raised_through_workflow_is_in_the_team_inbox_until_completed(
        infra, workflow, notifications, events: EventLog, commands):
    p = personas()
    person_id, step_id = await new_case(infra, events)
    (await commands.send("step.start", p.hub, key=person_id, step_id=step_id)).ok()
    sent = (await commands.send("step.send_request", p.hub, key=person_id, step_id=step_id, name=PLEASE_ACTION,
                                to=NORTH, note="Please visit on Tuesday")).ok()
    request_id = sent.of("request.raised")["request_id"]

    [note] = await events.wait_for(delivered(request_id))
    assert note.key == person_id
    assert note.data == {"request_id": request_id, "kind": "request", "recipient": NORTH, "step_id": step_id,
                         "person_id": person_id, "due_at": note.data["due_at"]}  # ids only: no name, no note
    [set_] = await events.wait_for(timer("timer.set", request_id))
    due_at = datetime.fromisoformat(set_.data["due_at"])
    assert set_.data["owner"] == "notifications" and set_.data["due_at"] == note.data["due_at"]
    assert timedelta(days=5) - timedelta(minutes=5) < due_at - datetime.now(UTC) <= timedelta(days=5)

    items = [i for i in await inbox(notifications, "teams", NORTH["id"]) if i["request_id"] == request_id]
    assert len(items) == 1
    item = items[0]
    assert (item["kind"], item["state"], item["step_id"], item["person_id"], item["step_type"]) == (
        "request", "open", step_id, person_id, SCREENING)
    assert (item["name"], item["note"], item["sent_by"], item["to"]) == (
        PLEASE_ACTION, "Please visit on Tuesday", p.hub["worker_id"], NORTH)

    (await commands.send("request.complete", p.ta, key=person_id, request_id=request_id, note="Visited")).ok()
    await events.wait_for(timer("timer.cancel", request_id))
    assert request_id not in {i["request_id"] for i in await inbox(notifications, "teams", NORTH["id"], state="open")}
    [closed] = [i for i in await inbox(notifications, "teams", NORTH["id"], state="completed")
                if i["request_id"] == request_id]
    assert (closed["state"], closed["closed_by"], closed["closed_reason"]) == (
        "completed", p.ta["worker_id"], "completed")


async def test_R_W2_cancelling_the_step_withdraws_its_open_request_from_the_inbox(
        infra, workflow, notifications, events: EventLog, commands):
    p = personas()
    person_id, step_id = await new_case(infra, events)
    (await commands.send("step.start", p.hub, key=person_id, step_id=step_id)).ok()
    worker = {"kind": "worker", "id": p.ta["worker_id"]}
    sent = (await commands.send("step.send_request", p.hub, key=person_id, step_id=step_id, name=PLEASE_ACTION,
                                to=worker)).ok()
    request_id = sent.of("request.raised")["request_id"]
    await events.wait_for(delivered(request_id))
    (await commands.send("step.cancel", p.hub, key=person_id, step_id=step_id, reason="Duplicate referral")).ok()
    await events.wait_for(timer("timer.cancel", request_id))
    [item] = await inbox(notifications, "workers", worker["id"])
    assert (item["request_id"], item["state"], item["closed_reason"]) == (request_id, "withdrawn", "step_cancelled")


async def test_R_RQ1_a_notification_is_in_the_worker_inbox_open_items_first_newest_first(
        infra, notifications, events: EventLog):
    person_id, worker = str(uuid.uuid4()), f"gso-{uuid.uuid4().hex[:8]}"
    to = {"kind": "worker", "id": worker}
    older = raised(person_id, to)
    info = workflow_event(
        "notification.sent", person_id, step_id=str(uuid.uuid4()), person_id=person_id, actor="so-x", version=3,
        request_id=str(uuid.uuid4()), step_type="WB Support Action Plan Delivery",
        name="(N) WB Hub please send relevant correspondence", to=to, note=None)
    completed = workflow_event("request.completed", person_id, step_id=older.data["step_id"], person_id=person_id,
                               actor=worker, version=3, request_id=older.data["request_id"],
                               name=PLEASE_ACTION, note=None)
    await publish_envelopes(infra, topics.WORKFLOW_EVENTS, person_id, older, info, completed)
    [note] = await events.wait_for(delivered(info.data["request_id"]))
    assert note.data["kind"] == "notification" and note.data["due_at"] is None
    await events.wait_for(timer("timer.cancel", older.data["request_id"]))
    items = await inbox(notifications, "workers", worker)
    assert [(i["request_id"], i["kind"], i["state"]) for i in items] == [
        (info.data["request_id"], "notification", "open"), (older.data["request_id"], "request", "completed")]
    assert [i["request_id"] for i in await inbox(notifications, "workers", worker, state="open")] == [
        info.data["request_id"]]


async def test_duplicate_delivery_of_a_request_makes_one_inbox_item(infra, notifications, events: EventLog):
    person_id, team = str(uuid.uuid4()), f"team-{uuid.uuid4().hex[:8]}"
    to = {"kind": "team", "id": team}
    first = raised(person_id, to)
    # the same message redelivered, and the same request re-emitted under a new message id
    again = new_message(first.type, first.source, first.data, subject=person_id)
    marker = raised(person_id, to)
    await publish_envelopes(infra, topics.WORKFLOW_EVENTS, person_id, first, first, again, marker)
    await events.wait_for(delivered(marker.data["request_id"]))  # same key: the duplicates were handled before
    # the timers are on scheduler.timers, read apart from notifications.events: the marker's, on the same key,
    # comes after any the duplicates made
    await events.wait_for(timer("timer.set", marker.data["request_id"]))
    assert len(events.matching(delivered(first.data["request_id"]))) == 1
    assert len(events.matching(timer("timer.set", first.data["request_id"]))) == 1
    items = await inbox(notifications, "teams", team)
    assert sorted(i["request_id"] for i in items) == sorted([first.data["request_id"], marker.data["request_id"]])


# --- overdue requests (R-S2) ------------------------------------------------------------------


def timer_due(person_id: str, request_id: str, due_at: str, owner: str = "notifications") -> Envelope:
    data = {"key": f"request-overdue:{request_id}", "due_at": due_at, "owner": owner,
            "payload": {"request_id": request_id}, "fired_at": datetime.now(UTC).isoformat()}
    return new_message("timer.due", "tessera/scheduler", data, subject=person_id)


def reminder(request_id: str):
    return lambda s: s.topic == topics.NOTIFICATIONS_EVENTS and s.type == "request.reminder" \
        and s.data.get("request_id") == request_id


async def test_R_S2_an_overdue_timer_reminds_once_and_stale_or_foreign_timers_do_nothing(
        infra, notifications, events: EventLog):
    person_id, team = str(uuid.uuid4()), f"team-{uuid.uuid4().hex[:8]}"
    to = {"kind": "team", "id": team}
    own_due = "2024-06-10"
    late, other = raised(person_id, to, due_date=own_due), raised(person_id, to)
    await publish_envelopes(infra, topics.WORKFLOW_EVENTS, person_id, late, other)
    [set_late] = await events.wait_for(timer("timer.set", late.data["request_id"]))
    [set_other] = await events.wait_for(timer("timer.set", other.data["request_id"]))
    assert datetime.fromisoformat(set_late.data["due_at"]) == datetime(2024, 6, 10, 23, 0, tzinfo=UTC)  # BST

    rid, due_at = late.data["request_id"], set_late.data["due_at"]
    stale = (datetime.fromisoformat(due_at) - timedelta(days=1)).isoformat()
    await publish_envelopes(
        infra, topics.SCHEDULER_DUE, person_id,
        timer_due(person_id, rid, due_at, owner="allocation"),  # another service's timer
        timer_due(person_id, rid, stale),  # set for another due time
        timer_due(person_id, rid, due_at), timer_due(person_id, rid, due_at),  # fired twice
        timer_due(person_id, other.data["request_id"], set_other.data["due_at"]))  # the marker
    await events.wait_for(reminder(other.data["request_id"]))
    [reminded] = events.matching(reminder(rid))
    assert reminded.key == person_id
    assert reminded.data == {"request_id": rid, "recipient": to, "step_id": late.data["step_id"],
                             "person_id": person_id, "due_at": reminded.data["due_at"],
                             "sent_at": reminded.data["sent_at"]}
    assert datetime.fromisoformat(reminded.data["due_at"]) == datetime.fromisoformat(due_at)
    [item] = [i for i in await inbox(notifications, "teams", team) if i["request_id"] == rid]
    assert (item["state"], item["overdue"]) == ("open", True) and item["reminded_at"]


# --- messages to people (R-T4) ----------------------------------------------------------------

CANARY_FIRST, CANARY_LAST = canary("first name", "Zephyrina"), canary("last name", "Marrowbone")


async def person(infra: Any, events: EventLog, **overrides: Any) -> str:
    data = unique_referral(person=person_data(unique_seed(), **overrides))
    envelope = referral_message(data)
    await publish(infra.bootstrap, topics.REFERRALS_INTAKE, [(data["referral_id"], envelope.to_bytes())])
    [accepted] = await events.wait_for(lambda s: s.caused_by(envelope.id) and s.type == "referral.accepted")
    return accepted.data["person_id"]


def message_requested(person_id: str, channel: str | None, team_id: str = "wellbeing-service-north",
                      **extra: Any) -> Envelope:
    """`message.requested` as the allocation service emits it when a case goes on a tray (R-T4)."""
    data = {"person_id": person_id, "team_id": team_id, "reason": "pwt_added", "channel": channel,
            "entry_id": str(uuid.uuid4()), **extra}
    return new_message("message.requested", "tessera/allocation", data, subject=person_id)


def to_the_person(s: Seen) -> bool:
    """The person's own message; the referrer's copy (R-T4) is tested in test_referrer_and_schema_v2.py."""
    return s.data.get("recipient") == "person"


async def outcome(events: EventLog, requested: Envelope) -> Seen:
    [seen] = await events.wait_for(lambda s: s.topic == topics.NOTIFICATIONS_EVENTS and s.caused_by(requested.id)
                                   and s.type in ("message.sent", "message.failed") and to_the_person(s))
    return seen


async def messages_of(service: Any, person_id: str) -> list[dict[str, Any]]:
    """The delivery records of the messages to the person themself."""
    async with httpx.AsyncClient(auth=service_auth(), base_url=service.url) as http:
        response = await http.get(f"/people/{person_id}/messages")
    assert response.status_code == 200
    return [m for m in response.json() if m["recipient"] == "person"]


async def test_R_T4_email_letter_and_a_text_falling_back_by_preferred_method_once_each_with_no_personal_data_in_logs(
        infra, notifications, events: EventLog, mail):
    """Development (SMTP, the print queue, no SMS provider): a text falls back to a letter, never "sent" (§8)."""
    seed = unique_seed()
    email = f"canary{seed}@example.org"
    mobile = f"07700 900{seed % 1000:03d}"
    by_email = await person(infra, events, first_name=CANARY_FIRST, last_name=CANARY_LAST, email=email,
                            preferred_contact="Email")
    by_text = await person(infra, events, first_name=CANARY_FIRST, last_name=CANARY_LAST, phone=mobile,
                           preferred_contact="Text message", communication_needs=[])
    by_post = await person(infra, events, first_name=CANARY_FIRST, preferred_contact="Letter", communication_needs=[])
    unreachable = await person(infra, events, first_name=CANARY_FIRST, email=None, phone=None, address=None,
                               preferred_contact="email")

    to_email = message_requested(by_email, "phone")  # the record's preference wins over the request's
    await publish_envelopes(infra, topics.ALLOCATION_EVENTS, by_email, to_email)
    sent = await outcome(events, to_email)
    assert sent.type == "message.sent" and sent.key == by_email
    assert (sent.data["channel"], sent.data["status"], sent.data["person_id"]) == ("email", "sent", by_email)
    message_id = sent.data["message_id"]
    [received] = [m for m in mail.mails if m["X-Tessera-Message-Id"] == message_id]
    assert received["To"] == email
    assert received["Subject"] == "You are on the waiting list for Wellbeing Service North"
    body = received.get_content()
    assert f"Dear {CANARY_FIRST} {CANARY_LAST}," in body
    assert "If your situation changes, please call 0116 496 0101." in body

    # redelivered: no second record, event or mail (the marker on the same key shows it was handled)
    marker = message_requested(by_email, None, team_id="locality-unknown", team_contact_number="0116 496 0777")
    await publish_envelopes(infra, topics.ALLOCATION_EVENTS, by_email, to_email, marker)
    marked = await outcome(events, marker)
    assert len(events.matching(lambda s: s.caused_by(to_email.id) and s.topic == topics.NOTIFICATIONS_EVENTS
                               and to_the_person(s))) == 1
    assert len([m for m in mail.mails if m["X-Tessera-Message-Id"] == message_id]) == 1
    [default_team] = [m for m in mail.mails if m["X-Tessera-Message-Id"] == marked.data["message_id"]]
    assert "waiting list for Adult Social Care" in default_team.get_content()
    assert "call 0116 496 0777" in default_team.get_content()
    records = await messages_of(notifications, by_email)
    assert sorted((r["message_id"], r["channel"], r["status"], r["attempts"]) for r in records) == sorted(
        [(message_id, "email", "sent", 1), (marked.data["message_id"], "email", "sent", 1)])

    to_text, to_post, to_nobody = (message_requested(by_text, None), message_requested(by_post, None),
                                   message_requested(unreachable, "email"))
    await publish_envelopes(infra, topics.ALLOCATION_EVENTS, by_text, to_text)
    await publish_envelopes(infra, topics.ALLOCATION_EVENTS, by_post, to_post)
    await publish_envelopes(infra, topics.ALLOCATION_EVENTS, unreachable, to_nobody)
    texted, posted, failed = (await outcome(events, to_text), await outcome(events, to_post),
                              await outcome(events, to_nobody))
    assert (texted.type, texted.data["channel"], texted.data["status"], texted.data["fallback_from"]) == (
        "message.sent", "letter", "queued_for_print", "sms")
    assert (posted.type, posted.data["channel"], posted.data["status"]) == ("message.sent", "letter",
                                                                            "queued_for_print")
    assert (failed.type, failed.data["channel"], failed.data["error_code"]) == ("message.failed", None,
                                                                                "no_contact_details")
    [letter] = await messages_of(notifications, by_post)
    assert (letter["status"], letter["template"], letter["team_id"]) == (
        "queued_for_print", "pwt_waiting_list", "wellbeing-service-north")

    log = notifications.log_text()
    assert f'"message_id": "{texted.data["message_id"]}"' in log
    outgoing = b"".join(s.value for s in events.matching(lambda s: s.topic == topics.NOTIFICATIONS_EVENTS))
    for secret in (CANARY_FIRST, CANARY_LAST, email, mobile, "Example Street", "LE1 1AA"):
        assert secret not in log
        assert secret.encode() not in outgoing
