"""Waiting-list messages (issue #22 §3, §8; R-T4, seed 004) through the real broker, referrals, allocation and
notifications: a Team Manager places a person on a Planned Work Tray, and what the person, or their representative,
receives is read where it lands: the SMTP catcher, the local fake of GOV.UK Notify, or the phone-call task in the
tray team's inbox read as one of its workers (one role)."""

import asyncio
import threading
from collections.abc import AsyncIterator
from email import message_from_bytes
from email import policy as email_policy
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from services.notifications.domain import Rendered
from services.notifications.senders import NotifySender, SendFailed
from shared import topics
from shared.testing import EventLog, Seen, SigningProducer, free_port, poll_until, service_auth, worker_auth
from tests.allocation_harness import Staff, actor, referral, tray_args
from tests.conftest import MailCatcher, start_service
from tests.factories import canary, person_data, unique_seed
from tests.notify_fake import (
    API_KEY,
    CALLBACK_TOKEN,
    TEMPLATES,
    UNSENDABLE_DOMAIN,
    WRONG_KEY,
    FakeNotify,
    RunningNotify,
    service_env,
)
from tests.workflow_harness import Commands

DEFAULT_TEAM = ("Adult Social Care", "0116 496 0999")  # teams.yaml's default: a Staff() team is in no table
FIRST = canary("first name", "Wilhelmina")
REP_FIRST = canary("first name", "Barnaby")



def someone(**overrides: Any) -> dict[str, Any]:
    """A person as a referral describes them: by default easy to write to, with no communication needs."""
    seed = unique_seed()
    return person_data(seed, **{"first_name": FIRST, "phone": f"07700 900{seed % 1000:03d}",
                                "communication_needs": [], **overrides})


async def place(infra: Any, events: EventLog, signing_producer: SigningProducer, staff: Staff, person: dict[str, Any],
                representative: dict[str, Any] | None = None, **tray: Any) -> tuple[str, str]:
    """Refer the person (and their representative), then the TM places them on the team's tray: the person's id
    and the id of the `message.requested` that tells them (R-T4)."""
    person_id, _ = await referral(infra, events, person=person)
    if representative is not None:
        rep_id, _ = await referral(infra, events, person=representative)
        hub = actor(f"hub-{staff.suffix}", "gso", teams=("wellbeing-service-hub",))  # the screening is the Hub's
        linked = await Commands(signing_producer, events, topics.REFERRALS_COMMANDS, topics.REFERRALS_EVENTS).send(
            "person_relationship.add", hub, key=person_id, person_id=person_id, other_person_id=rep_id,
            relationship="Represented by", start_date="2026-01-05")
        linked.ok()
    placed = await Commands(signing_producer, events, topics.ALLOCATION_COMMANDS, topics.ALLOCATION_EVENTS).send(
        "tray.add", staff.tm, key=person_id, person_id=person_id, **tray_args(staff.team, **tray))
    requested = next(s for s in placed.ok().seen if s.type == "message.requested")
    return person_id, requested.body["id"]


async def told(events: EventLog, requested_id: str, recipient: str = "person") -> Seen:
    """The outcome of the message to that recipient: `message.sent` or `message.failed`."""
    [seen] = await events.wait_for(lambda s: s.topic == topics.NOTIFICATIONS_EVENTS
                                   and s.body.get("causationid") == requested_id
                                   and s.type in ("message.sent", "message.failed")
                                   and s.data.get("recipient") == recipient)
    return seen


async def records(service: Any, person_id: str) -> dict[str, dict[str, Any]]:
    async with httpx.AsyncClient(auth=service_auth(), base_url=service.url) as http:
        response = await http.get(f"/people/{person_id}/messages")
    assert response.status_code == 200
    return {m["recipient"]: m for m in response.json()}


async def phone_task(service: Any, staff: Staff, person_id: str) -> dict[str, Any]:
    """The phone-call task in the tray team's inbox, as one of its social workers reads it."""
    auth = worker_auth(staff.sw["worker_id"], staff.sw["roles"], staff.sw["team_ids"])

    async def found() -> dict[str, Any] | None:
        async with httpx.AsyncClient(auth=auth, base_url=service.url) as http:
            items = (await http.get(f"/teams/{staff.team}/inbox", params={"kind": "task"})).json()
        return next((i for i in items if i["person_id"] == person_id and i["task"]["code"] == "phone_call"), None)

    return await poll_until(found, 30, "the phone-call task in the team's inbox")


def mails_to(mail: "MailCatcher | SlowMailbox", address: str) -> list[Any]:
    return [m for m in mail.mails if m["To"] == address]


class SlowMailbox:
    """An SMTP server that keeps every mail, but holds on to one addressed to `slow` until released (a mail
    server slow for one mailbox: greylisting, a full disk, a slow filter)."""

    def __init__(self, slow: str) -> None:
        self.port = free_port()
        self.slow = slow
        self.mails: list[Any] = []
        self.holding = threading.Event()  # the slow mail is being held
        self.release = threading.Event()

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:  # noqa: N802
        if self.slow in envelope.rcpt_tos:
            self.holding.set()
            await asyncio.to_thread(self.release.wait, 60)
        self.mails.append(message_from_bytes(envelope.content, policy=email_policy.default))
        return "250 Message accepted for delivery"


@pytest.fixture
async def slow_mail(services: dict[str, Any], infra: Any, referrals: Any,
                    allocation: Any) -> AsyncIterator[tuple[Any, SlowMailbox]]:
    """Notifications mailing a server that is slow for one mailbox; the development service is stopped for the test
    (one consumer group) and started again by the next test that asks for it."""
    catcher = SlowMailbox(f"slow.{unique_seed()}@example.org")
    controller = Controller(catcher, hostname="127.0.0.1", port=catcher.port)
    controller.start()
    if "notifications" in services:
        services.pop("notifications").stop()
    process = await start_service(services, infra, "notifications", REFERRALS_URL=referrals.url,
                                  SMTP_HOST="127.0.0.1", SMTP_PORT=str(catcher.port), SMTP_TIMEOUT_SECONDS="90",
                                  MESSAGE_RETRY_BACKOFF_SECONDS="0.05")
    try:
        yield process, catcher
    finally:
        catcher.release.set()
        services.pop("notifications").stop()
        controller.stop()


async def test_R_T4_an_email_server_slow_for_one_person_does_not_hold_up_telling_the_others(
        infra, slow_mail, events: EventLog, signing_producer):
    """Notifications handles the partitions of allocation.events at once, each in its own order: while one
    person's email waits on the mail server, people whose messages are on another partition are told (by email
    and in the referrer's copy). Handled one message at a time, nobody was told until that one email went."""
    service, catcher = slow_mail
    staff = Staff()
    _, to_slow = await place(infra, events, signing_producer, staff, someone(preferred_contact="Email",
                                                                              email=catcher.slow))
    assert await asyncio.to_thread(catcher.holding.wait, 30), "the slow person's email reached the server"
    slow_partition = partition_of(events, to_slow)
    for _ in range(10):  # people until one's messages are on another partition (each one is, three times in four)
        other = someone(preferred_contact="Email")
        _, to_other = await place(infra, events, signing_producer, staff, other)
        if partition_of(events, to_other) != slow_partition:
            break
    else:
        pytest.fail("ten people's messages all on the slow person's partition")

    assert (await told(events, to_other)).data["status"] == "sent"
    assert mails_to(catcher, other["email"]), "the other person's email arrived"
    assert (await told(events, to_other, "referrer")).data["status"] == "sent"
    assert mails_to(catcher, catcher.slow) == [] and catcher.holding.is_set()  # the slow one is still held
    catcher.release.set()
    assert (await told(events, to_slow)).data["status"] == "sent"
    assert len(mails_to(catcher, catcher.slow)) == 1


def partition_of(events: EventLog, message_id: str) -> int:
    [requested] = events.matching(lambda s: s.topic == topics.ALLOCATION_EVENTS and s.body.get("id") == message_id)
    return requested.partition


# --- development: SMTP, the print queue, and no SMS provider -------------------------------------


async def test_R_T4_a_person_who_prefers_the_phone_is_a_phone_call_task_for_the_tray_team_not_a_text(
        infra, allocation, notifications, events: EventLog, signing_producer, mail):
    """Issue #22 §3: "phone" as preferred contact is a call the team makes, not an SMS or a letter."""
    staff = Staff()
    person = someone(preferred_contact="Telephone")
    person_id, requested = await place(infra, events, signing_producer, staff, person)

    sent = await told(events, requested)
    assert (sent.type, sent.data["channel"], sent.data["status"], sent.data["provider"]) == (
        "message.sent", "phone", "phone_call_task", "team")
    task = await phone_task(notifications, staff, person_id)
    assert task["request_id"] == sent.data["task_id"] and task["state"] == "open"
    assert (task["name"], task["task"]["rule"], task["task"]["link"]) == (
        "Phone the person: on the waiting list", "R-T4", f"/people/{person_id}")
    # support moderate, risk moderate: Amber, reviewed fortnightly (R-T5), so that is the contact promised
    assert task["note"] == (
        f"Phone the person to tell them that they are on the waiting list for {DEFAULT_TEAM[0]}, that someone from"
        " the team will contact them at least once every two weeks while they wait, and that they should call"
        f" {DEFAULT_TEAM[1]} if the situation changes. They prefer to be phoned.")
    record = (await records(notifications, person_id))["person"]
    assert (record["channel"], record["status"], record["provider"], record["task_id"]) == (
        "phone", "phone_call_task", "team", task["request_id"])
    assert mails_to(mail, person["email"]) == []

    # the worker who phoned says so: the task keeps who and when
    tasks = Commands(signing_producer, events, topics.NOTIFICATIONS_COMMANDS, topics.NOTIFICATIONS_EVENTS)
    done = (await tasks.send("task.complete", staff.sw, key=person_id, task_id=task["request_id"],
                             note="Phoned: told the team's number")).ok().of("task.completed")
    assert (done["by"], done["how"]) == (staff.sw["worker_id"], "done")


async def test_R_T4_a_waiting_list_call_not_yet_made_is_closed_when_the_case_leaves_the_tray(
        infra, allocation, notifications, events: EventLog, signing_producer):
    """Issue #22 §3: the call would tell the person they are waiting; once the TM takes the case off the tray it
    is moot, so the team's task is closed as such, not left open in the inbox for ever."""
    staff = Staff()
    person_id, _ = await place(infra, events, signing_producer, staff, someone(preferred_contact="Telephone"))
    task = await phone_task(notifications, staff, person_id)
    [added] = await events.wait_for(lambda s: s.type == "tray.entry_added" and s.data["person_id"] == person_id)

    trays = Commands(signing_producer, events, topics.ALLOCATION_COMMANDS, topics.ALLOCATION_EVENTS)
    (await trays.send("tray.remove", staff.tm, key=person_id, entry_id=added.data["entry_id"],
                      reason="Needs met by a family carer")).ok()

    auth = worker_auth(staff.sw["worker_id"], staff.sw["roles"], staff.sw["team_ids"])

    async def closed() -> dict[str, Any] | None:
        async with httpx.AsyncClient(auth=auth, base_url=notifications.url) as http:
            items = (await http.get(f"/teams/{staff.team}/inbox", params={"kind": "task", "state": "completed"})).json()
        return next((i for i in items if i["request_id"] == task["request_id"]), None)

    settled = await poll_until(closed, 30, "the phone-call task closed when the case left the tray")
    assert (settled["state"], settled["closed_reason"], settled["closed_by"]) == (
        "completed", "removed_from_tray", staff.tm["worker_id"])


async def test_R_T4_S8_with_no_sms_provider_a_text_falls_back_to_a_letter_or_a_call_and_is_never_sent(
        infra, allocation, notifications, events: EventLog, signing_producer, mail):
    """Issue #22 §8: without a real SMS provider, an SMS is never recorded as sent."""
    staff = Staff()
    by_post, to_post = await place(infra, events, signing_producer, staff, someone(preferred_contact="Text message"))
    no_address = someone(preferred_contact="Text message", email=None, address=None)
    by_phone, to_phone = await place(infra, events, signing_producer, staff, no_address)

    letter, call = await told(events, to_post), await told(events, to_phone)
    assert (letter.data["channel"], letter.data["status"], letter.data["fallback_from"],
            letter.data["fallback_reason"]) == ("letter", "queued_for_print", "sms", "no_sms_provider")
    assert (call.data["channel"], call.data["status"], call.data["fallback_reason"]) == (
        "phone", "phone_call_task", "no_sms_provider")
    task = await phone_task(notifications, staff, by_phone)
    assert task["note"].endswith("A text message cannot be sent (no text message service is set up).")
    for person_id in (by_post, by_phone):
        record = (await records(notifications, person_id))["person"]
        assert (record["fallback_from"], record["fallback_reason"]) == ("sms", "no_sms_provider")
        assert record["channel"] != "sms" and record["status"] != "sent"


async def test_R_T4_the_representative_is_told_in_their_stead_with_the_regular_contact_to_expect(
        infra, referrals, workflow, allocation, notifications, events: EventLog, signing_producer, mail):
    """Seed 004: "the person or their representative ... must be advised", and of the contact to expect."""
    staff = Staff()
    person = someone(preferred_contact="Letter")
    representative = someone(first_name=REP_FIRST, preferred_contact="Email")
    person_id, requested = await place(infra, events, signing_producer, staff, person, representative,
                                       support="none", risk="high")  # Red: reviewed weekly (R-T5)

    sent = await told(events, requested, "representative")
    assert (sent.data["channel"], sent.data["status"], sent.data["provider"]) == ("email", "sent", "smtp")
    [mail_to_rep] = mails_to(mail, representative["email"])
    body = mail_to_rep.get_content()
    assert mail_to_rep["Subject"] == f"The person you represent is on the waiting list for {DEFAULT_TEAM[0]}"
    assert body.startswith(f"Dear {REP_FIRST} {representative['last_name']},")
    assert f"{FIRST} {person['last_name']} is on the waiting list for {DEFAULT_TEAM[0]}" in body
    assert ("someone from the team will contact them or you at least once a week to check that they are safe and"
            " well") in body
    assert f"If their situation changes, please call {DEFAULT_TEAM[1]}." in body
    assert set(await records(notifications, person_id)) == {"representative", "referrer"}  # not the person too
    assert mails_to(mail, person["email"]) == []


async def test_R_T4_an_interpreter_need_is_a_phone_call_task_that_says_to_arrange_one(
        infra, allocation, notifications, events: EventLog, signing_producer):
    """Seed 004: the person's communication needs shape how they are told; no written English to them."""
    staff = Staff()
    person_id, requested = await place(infra, events, signing_producer, staff, someone(
        preferred_contact="Email", communication_needs=["Interpreter - Polish"]))
    sent = await told(events, requested)
    assert (sent.data["channel"], sent.data["fallback_from"], sent.data["fallback_reason"]) == (
        "phone", "email", "interpreter_needed")
    task = await phone_task(notifications, staff, person_id)
    assert "Their record says they need an interpreter: arrange one for the call." in task["note"]
    assert "Polish" not in task["note"]  # the need is read on the record, not copied into the inbox


# --- GOV.UK Notify (issue #22 §8): the local fake, checked as Notify checks -----------------------


async def test_S8_notify_takes_email_sms_and_letters_signed_with_the_key_and_refuses_another_key():
    with RunningNotify() as fake:
        sender = NotifySender(API_KEY, fake.url, TEMPLATES, timeout=5)
        email = Rendered("email", "ada@example.org", "Subject", "Dear Ada")
        letter = Rendered("letter", None, "Subject", "Dear Ada", ("Ada Example", "1 Example Street", "LE1 1AA"))
        first = await sender.send("m-1", "pwt_waiting_list", email)
        await sender.send("m-2", "pwt_waiting_list", Rendered("sms", "07700 900123", "Subject", "Text"))
        await sender.send("m-3", "pwt_waiting_list_large_print", letter)
        assert [(p.channel, p.template, p.body.get("reference")) for p in fake.posted] == [
            ("email", "pwt_waiting_list:email", "m-1"), ("sms", "pwt_waiting_list:sms", "m-2"),
            ("letter", "pwt_waiting_list_large_print:letter", "m-3")]
        assert first and fake.posted[0].to == "ada@example.org" and fake.posted[1].to == "07700 900123"
        assert fake.posted[2].fields == {"subject": "Subject", "body": "Dear Ada", "address_line_1": "Ada Example",
                                         "address_line_2": "1 Example Street", "address_line_3": "LE1 1AA"}

        with pytest.raises(SendFailed) as refused:
            await NotifySender(WRONG_KEY, fake.url, TEMPLATES, timeout=5).send("m-4", "pwt_waiting_list", email)
        assert (refused.value.code, refused.value.permanent, fake.refused) == ("notify_403", True, 1)
        assert "ada" not in str(refused.value)


@pytest.fixture
async def notified(services: dict[str, Any], infra: Any, referrals: Any, allocation: Any,
                   mail: MailCatcher) -> AsyncIterator[tuple[Any, FakeNotify]]:
    """The notifications service configured for GOV.UK Notify, pointed at the fake; the development one is
    stopped for the test (one consumer group) and started again by the next test that asks for it."""
    with RunningNotify() as fake:
        if "notifications" in services:
            services.pop("notifications").stop()
        process = await start_service(services, infra, "notifications", REFERRALS_URL=referrals.url,
                                      SMTP_HOST="127.0.0.1", SMTP_PORT=str(mail.port),
                                      MESSAGE_RETRY_BACKOFF_SECONDS="0.05", **service_env(fake))
        try:
            yield process, fake
        finally:
            services.pop("notifications").stop()


async def arrived(fake: FakeNotify, message_id: str) -> Any:
    [posted] = await poll_until(lambda: _posted(fake, message_id), 30, "the message at Notify")
    return posted


async def _posted(fake: FakeNotify, message_id: str) -> list[Any]:
    return fake.with_reference(message_id)


async def test_R_T4_S8_through_notify_a_text_and_a_large_print_letter_reach_the_person_as_preferred(
        infra, notified, events: EventLog, signing_producer, mail):
    """Issue #22 §8 and §3: the SMS goes through Notify (a real provider), the letter in large print."""
    service, fake = notified
    staff = Staff()
    texter = someone(preferred_contact="Text message")
    reader = someone(preferred_contact="Letter", communication_needs=["Large print"])
    texter_id, to_texter = await place(infra, events, signing_producer, staff, texter,
                                       support="full", risk="low")  # Green
    reader_id, to_reader = await place(infra, events, signing_producer, staff, reader)  # Amber

    texted, posted = await told(events, to_texter), await told(events, to_reader)
    assert (texted.data["channel"], texted.data["status"], texted.data["provider"]) == ("sms", "sent", "notify")
    sms = await arrived(fake, texted.data["message_id"])
    assert (sms.template, sms.to) == ("pwt_waiting_list:sms", texter["phone"])
    assert sms.fields["body"] == (f"You are on the waiting list for {DEFAULT_TEAM[0]}. We will contact you at least"
                                  f" once a month while you wait. If your situation changes call {DEFAULT_TEAM[1]}.")

    assert (posted.data["channel"], posted.data["status"], posted.data["template"]) == (
        "letter", "sent", "pwt_waiting_list_large_print")
    letter = await arrived(fake, posted.data["message_id"])
    address = reader["address"]
    assert letter.template == "pwt_waiting_list_large_print:letter"
    assert [letter.fields[f"address_line_{n}"] for n in range(1, 5)] == [
        f"{FIRST} {reader['last_name']}", address["line1"], address["town"], address["postcode"]]
    assert "contact you at least once every two weeks" in letter.fields["body"]
    assert (await records(service, reader_id))["person"]["status"] == "sent"
    assert mails_to(mail, texter["email"]) == mails_to(mail, reader["email"]) == []  # nothing over SMTP
    log = service.log_text()
    for secret in (FIRST, texter["phone"], address["line1"], address["postcode"]):
        assert secret not in log


async def receipt(service: Any, body: dict[str, Any], token: str = CALLBACK_TOKEN) -> httpx.Response:
    """Notify's delivery-status callback, as Notify posts it to the service."""
    async with httpx.AsyncClient(base_url=service.url) as http:
        return await http.post("/notify/receipts", json=body, headers={"Authorization": f"Bearer {token}"})


async def test_R_T4_S8_a_text_notify_could_not_deliver_is_failed_and_the_team_phones_instead(
        infra, notified, events: EventLog, signing_producer):
    """Issue #22 §8: Notify took the text but could not deliver it (its receipt says so): the message is not
    recorded as sent, and the tray's team is asked to phone, so the person is still told they are waiting."""
    service, fake = notified
    staff = Staff()
    texter, reader = someone(preferred_contact="Text message"), someone(preferred_contact="Email")
    texter_id, to_texter = await place(infra, events, signing_producer, staff, texter)
    reader_id, to_reader = await place(infra, events, signing_producer, staff, reader)
    sms = await arrived(fake, (await told(events, to_texter)).data["message_id"])
    email = await arrived(fake, (await told(events, to_reader)).data["message_id"])

    refused = await receipt(service, sms.receipt("permanent-failure"), token="someone-else's-token")
    assert refused.status_code == 401
    assert (await receipt(service, sms.receipt("sending"))).json() == {"outcome": "unchanged"}
    assert (await records(service, texter_id))["person"]["status"] == "sent"

    assert (await receipt(service, sms.receipt("permanent-failure"))).json() == {"outcome": "failed"}
    [failed] = await events.wait_for(lambda s: s.type == "message.failed" and s.data["person_id"] == texter_id)
    task = await phone_task(service, staff, texter_id)
    assert failed.data["task_id"] == task["request_id"] and failed.data["error_code"] == "notify_permanent-failure"
    assert task["note"].endswith("The message in writing could not be sent or was not delivered.")
    record = (await records(service, texter_id))["person"]
    assert (record["status"], record["error_code"], record["task_id"], record["delivered_at"]) == (
        "failed", "notify_permanent-failure", task["request_id"], None)
    assert (await receipt(service, sms.receipt("permanent-failure"))).json() == {"outcome": "unchanged"}

    assert (await receipt(service, email.receipt("delivered"))).json() == {"outcome": "delivered"}
    delivered = (await records(service, reader_id))["person"]
    assert (delivered["status"], delivered["task_id"]) == ("sent", None) and delivered["delivered_at"] is not None
    log = service.log_text()
    for secret in (FIRST, texter["phone"], reader["email"]):
        assert secret not in log


async def test_R_T4_S8_an_email_notify_refuses_is_failed_and_the_team_phones_instead(
        infra, notified, events: EventLog, signing_producer):
    """A message that cannot be sent at all (Notify refuses the address) leaves the person untold unless the team
    phones: a failed send gets the same phone call as an undelivered one."""
    service, _ = notified
    staff = Staff()
    person = someone(preferred_contact="Email", email=f"person.{unique_seed()}{UNSENDABLE_DOMAIN}")
    person_id, requested = await place(infra, events, signing_producer, staff, person)
    failed = await told(events, requested)
    task = await phone_task(service, staff, person_id)
    assert (failed.type, failed.data["error_code"], failed.data["task_id"]) == (
        "message.failed", "notify_400", task["request_id"])
