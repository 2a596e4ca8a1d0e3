"""CloudEvents binary content mode from outside systems, through the real broker and database (issue #20 §6).

An upstream system on librdkafka (confluent-kafka), or the Java SDK whose serializer defaults to binary
mode, sends the attributes as `ce_` headers and the data as the value. referrals.intake and
brokerage.events accept both modes (docs/cloudevents-binary-mode.md); each case is sent with a second
Kafka client, confluent-kafka, as well as aiokafka.
"""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, timedelta

import pytest
from aiokafka import AIOKafkaProducer
from confluent_kafka import KafkaError, Producer

from shared import topics
from shared.envelope import Envelope
from shared.testing import EventLog, Seen
from tests.factories import binary_mode, referral_message, unique_referral
from tests.purchasing_harness import BROKERAGE, DOM_CARE, SOURCE_PVI, coordinator, orders_of, plan_values, support_plan
from tests.workflow_harness import Commands

Message = tuple[str, list[tuple[str, bytes]], bytes]  # key, headers, value


async def send_with_aiokafka(bootstrap: str, topic: str, messages: list[Message]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        sent = [await producer.send(topic, value=v, key=k.encode(), headers=h) for k, h, v in messages]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def send_with_confluent_kafka(bootstrap: str, topic: str, messages: list[Message]) -> None:
    """librdkafka, as a Java or .NET upstream system would use it: idempotent, acks=all."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    failures: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: object) -> None:
        if error is not None:
            failures.append(error)

    for key, headers, value in messages:
        producer.produce(topic, value=value, key=key.encode(), headers=headers, on_delivery=delivered)
    left = await asyncio.to_thread(producer.flush, 30)
    assert (left, failures) == (0, [])


async def answer(events: EventLog, envelope: Envelope) -> Seen:
    [seen] = await events.wait_for(
        lambda s: s.caused_by(envelope.id) and s.type in ("referral.accepted", "referral.rejected"), 30)
    return seen


Sender = Callable[[str, str, list[Message]], Awaitable[None]]
CLIENTS = pytest.mark.parametrize("send", [send_with_confluent_kafka, send_with_aiokafka],
                                  ids=["confluent-kafka", "aiokafka"])


@CLIENTS
async def test_a_binary_mode_referral_is_accepted_and_its_first_step_created(
        send: Sender, infra, referrals, workflow, events: EventLog, db):
    envelope = referral_message(unique_referral(), source="hospital-binary")
    headers, value = binary_mode(envelope)
    await send(infra.bootstrap, topics.REFERRALS_INTAKE, [(envelope.data["referral_id"], headers, value)])
    accepted = await answer(events, envelope)
    assert accepted.type == "referral.accepted"
    assert accepted.envelope.causationid == str(envelope.id)
    [step] = await events.wait_for(lambda s: s.caused_by(accepted.envelope.id) and s.type == "step.created", 60)
    assert (step.data["person_id"], step.data["step_type"]) == (accepted.data["person_id"], "WB Wellbeing Screening")
    audited = await db.fetchrow("SELECT actor_id, cause_type, source FROM referrals.audit_log WHERE message_id = $1",
                                accepted.envelope.id)  # the cause read from its headers, not from its data
    assert dict(audited) == {"actor_id": "system:referrals", "cause_type": "referral.received",
                             "source": "hospital-binary"}


async def test_a_structured_referral_with_the_cloudevents_content_type_from_librdkafka_is_accepted(
        infra, referrals, events: EventLog):
    envelope = referral_message(unique_referral())
    headers = [("content-type", b"application/cloudevents+json"), ("ce_specversion", b"1.0")]
    await send_with_confluent_kafka(infra.bootstrap, topics.REFERRALS_INTAKE,
                                    [(envelope.data["referral_id"], headers, envelope.to_bytes())])
    assert (await answer(events, envelope)).type == "referral.accepted"


@CLIENTS
async def test_an_invalid_binary_mode_referral_is_rejected_naming_its_fields(send: Sender, infra, referrals,
                                                                              events: EventLog):
    data = unique_referral(reason="  ")
    del data["person"]["date_of_birth"]
    envelope = referral_message(data)
    headers, value = binary_mode(envelope)
    await send(infra.bootstrap, topics.REFERRALS_INTAKE, [(data["referral_id"], headers, value)])
    rejected = await answer(events, envelope)
    assert rejected.type == "referral.rejected"
    assert {e["field"]: e["code"] for e in rejected.data["errors"]} == {
        "reason": "missing", "person.date_of_birth": "missing"}


@CLIENTS
async def test_the_same_id_in_binary_and_structured_mode_is_one_referral(send: Sender, infra, referrals,
                                                                          events: EventLog, db):
    data = unique_referral()
    envelope, marker = referral_message(data), referral_message(unique_referral())
    headers, value = binary_mode(envelope)
    marker_headers, marker_value = binary_mode(marker)
    key = data["referral_id"]  # one key: one partition, so the marker is handled after every copy
    await send(infra.bootstrap, topics.REFERRALS_INTAKE, [
        (key, headers, value), (key, headers, value), (key, [], envelope.to_bytes()),
        (key, marker_headers, marker_value)])
    await answer(events, envelope)  # keyed by person: on another partition than the marker's answer, maybe later
    await answer(events, marker)
    assert len(events.matching(lambda s: s.caused_by(envelope.id) and s.type == "referral.accepted")) == 1
    assert await db.fetchval("SELECT count(*) FROM referrals.people WHERE nhs_number = $1",
                             data["person"]["nhs_number"]) == 1


@CLIENTS
async def test_a_binary_mode_referral_missing_attributes_is_dead_lettered_with_the_reason_untouched(
        send: Sender, infra, referrals, events: EventLog):
    envelope = referral_message(unique_referral())
    headers, value = binary_mode(envelope)
    headers = [(k, v) for k, v in headers if k not in ("ce_id", "ce_source")] + [("ce_time", b"tomorrow")]
    await send(infra.bootstrap, topics.REFERRALS_INTAKE, [("binary-dlq", headers, value)])
    [dead] = await events.wait_for(lambda s: s.topic == topics.dlq(topics.REFERRALS_INTAKE) and s.value == value)
    reason = dead.headers["dlq_error"]
    assert reason.startswith("not a CloudEvent (binary mode)")
    assert all(f"{name}: " in reason for name in ("ce_id", "ce_source", "ce_time"))
    assert {k: dead.headers[k] for k, _ in headers if k != "ce_time"} == {k: v.decode() for k, v in headers
                                                                           if k != "ce_time"}
    good = referral_message(unique_referral())
    good_headers, good_value = binary_mode(good)
    await send(infra.bootstrap, topics.REFERRALS_INTAKE, [("binary-dlq", good_headers, good_value)])
    assert (await answer(events, good)).type == "referral.accepted"


# --- brokerage.events (R-F2) ----------------------------------------------------------------------


@pytest.fixture
async def orders(infra) -> AsyncIterator[EventLog]:
    watched = [topics.PURCHASING_ORDERS, topics.SCHEDULER_TIMERS, topics.dlq(topics.BROKERAGE_EVENTS)]
    async with EventLog(infra.bootstrap, watched) as log:
        yield log


def brokerage_binary(type_: str, po_request_id: str, person_id: str, start: date | None = None) -> Message:
    data = {"po_request_id": po_request_id, "provider": "Acme PVI",
            **({"start_date": start.isoformat()} if start else {})}
    headers = [("ce_specversion", b"1.0"), ("ce_id", str(uuid.uuid4()).encode()), ("ce_type", type_.encode()),
               ("ce_source", b"brokerage-system"), ("ce_time", b"2024-06-03T09:30:00Z"),
               ("ce_subject", person_id.encode()), ("content-type", b"application/json; charset=utf-8")]
    return person_id, headers, json.dumps(data).encode()


@CLIENTS
async def test_R_F2_binary_mode_provider_offered_and_confirmed_are_acted_on(
        send: Sender, infra, workflow, commands: Commands, orders: EventLog):
    worker, person_id = coordinator(), str(uuid.uuid4())
    plan = await support_plan(commands, worker, person_id, plan_values(DOM_CARE),
                              [{"action": BROKERAGE, "reason": SOURCE_PVI}])
    (await commands.send("step.finish", worker, key=person_id, step_id=plan)).ok()
    await orders.wait_until(lambda: len(orders_of(orders, person_id)) == 1, 30)
    [brokerage] = [s.data for s in orders_of(orders, person_id)]
    po = brokerage["po_request_id"]

    await send(infra.bootstrap, topics.BROKERAGE_EVENTS, [brokerage_binary("provider.offered", po, person_id)])
    await orders.wait_for(lambda s: s.type == "timer.cancel" and s.data["key"] == f"lack-of-provision:{po}", 30)

    start = date.today() + timedelta(days=14)
    no_start = brokerage_binary("provider.confirmed", po, person_id)
    await send(infra.bootstrap, topics.BROKERAGE_EVENTS,
               [no_start, brokerage_binary("provider.confirmed", po, person_id, start)])
    await orders.wait_until(lambda: any(s.data["kind"] == "long_term_homecare" for s in orders_of(orders, person_id)))
    [pvi] = [s.data for s in orders_of(orders, person_id) if s.data["kind"] == "long_term_homecare"]
    assert (pvi["provider"], pvi["start_date"]) == ("Acme PVI", start.isoformat())
    [dead] = await orders.wait_for(lambda s: s.topic == topics.dlq(topics.BROKERAGE_EVENTS) and s.key == person_id)
    assert "start_date" in dead.headers["dlq_error"]
    assert dead.headers["ce_id"] == dict(no_start[1])["ce_id"].decode()  # the original headers are kept
