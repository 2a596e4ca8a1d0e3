"""Issue #20: generated messages of every consumed model, through the real broker and the real services.

For each topic a service consumes (the scheduler's topics are tested with the scheduler), hypothesis draws
a batch of envelopes of the types consumed there, with data of each model's shape and hostile values mixed
in (tests/hostile_values.py: NaN, 1e308, year 1 and 9999, DST-gap times, 100 kB strings, deep nesting).
The batch goes to one partition, then a good message. Every generated message must be answered (a command:
its events, or `command.rejected` with reasons), dead-lettered with a reason, or, on an event topic, passed
by every consumer (handled or ignored); the good message must get its normal outcome; every service lives.
HYPOTHESIS_PER_TOPIC sets the batch size (10 by default, to keep `make test` short; 100 with FAULTS_FULL=1).
"""

import json
import os
import uuid
from typing import Any

import httpx
import pytest
from aiokafka import TopicPartition
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from shared import topics
from shared.commands import allocation as allocation_commands
from shared.commands import notifications as notification_commands
from shared.commands import referrals as referral_commands
from shared.commands import workflow as workflow_commands
from shared.events import allocation, brokerage, clocks, notifications, referrals, web, workflow
from shared.testing import EventLog, poll_until, service_auth
from tests.hostile_values import data_for, envelope_for
from tests.integration.test_hostile_everywhere import (  # noqa: F401 - fixtures
    COMMAND_TOPICS,
    CONSUMERS,
    WATCHED,
    Hostile,
    _answer,
    _caused,
    _past,
    consumers,
    good_messages,
    outboxed_dead_letters,
    person_id,
    publish_to,
)

PER_TOPIC = int(os.environ.get("HYPOTHESIS_PER_TOPIC", 100 if os.environ.get("FAULTS_FULL") == "1" else 10))
MODELS: dict[str, list[type[BaseModel]]] = {
    topics.REFERRALS_INTAKE: [referrals.ReferralReceived],
    topics.REFERRALS_COMMANDS: list(referral_commands.COMMANDS.values()),
    topics.REFERRALS_EVENTS: [referrals.ReferralAccepted, referrals.ReferralAcceptedV2, referrals.CaseNoteAdded],
    topics.WORKFLOW_COMMANDS: list(workflow_commands.COMMANDS.values()),
    topics.WORKFLOW_EVENTS: [workflow.RequestRaised, workflow.NotificationSent, workflow.RequestCompleted,
                             workflow.StepCancelled, workflow.StepReturned, workflow.StepFinished,
                             workflow.StepRescheduled, workflow.StepCreated, workflow.StepAssigned,
                             workflow.StepRenewalDue, workflow.PersonDeathRecorded],
    topics.ALLOCATION_COMMANDS: list(allocation_commands.COMMANDS.values()),
    topics.ALLOCATION_EVENTS: [allocation.MessageRequested, allocation.TrayReviewDue, allocation.TrayEntryReviewed,
                               allocation.SafeAndWellCheckRequested, allocation.TrayEntryEscalated,
                               allocation.TrayEntryRemoved],
    topics.NOTIFICATIONS_COMMANDS: list(notification_commands.COMMANDS.values()),
    topics.NOTIFICATIONS_EVENTS: [notifications.MessageSent],
    topics.BROKERAGE_EVENTS: [brokerage.ProviderOffered, brokerage.ProviderConfirmed],
    topics.WEB_EVENTS: [web.AccountListed],
    topics.CLOCKS_EVENTS: [clocks.ClockWarning, clocks.ClockBreached, clocks.ClockStopped],
}


def _message(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    return envelope_for(model.TYPE, data_for(model))  # type: ignore[attr-defined]


def draw_batch(models: list[type[BaseModel]], n: int) -> list[dict[str, Any]]:
    """n generated envelopes of the models (hypothesis draws; no shrinking: the batch is judged whole)."""
    batches: list[list[dict[str, Any]]] = []

    @settings(max_examples=1, phases=[Phase.generate], database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(st.sampled_from(models).flatmap(_message), min_size=n, max_size=n))
    def collect(batch: list[dict[str, Any]]) -> None:
        batches.append(batch)

    collect()
    return batches[0]


def _key(body: dict[str, Any]) -> str:
    subject = body.get("subject")
    return subject if isinstance(subject, str) and subject else str(uuid.uuid4())


@pytest.mark.parametrize("topic", list(MODELS))
async def test_generated_messages_are_answered_dead_lettered_or_passed_and_good_traffic_goes_on(
        topic, infra, consumers, person_id, db, scheduler_dsn):  # noqa: F811 - fixtures
    bodies = draw_batch(MODELS[topic], PER_TOPIC)
    batch = [Hostile(f"{b['type']} #{i}", json.dumps(b, allow_nan=True).encode(), _key(b), "generated",
                     message_id=b["id"]) for i, b in enumerate(bodies)]
    partition = uuid.UUID(bodies[0]["id"]).int % 4
    tp = TopicPartition(topic, partition)
    dlq = topics.dlq(topic)
    async with EventLog(infra.bootstrap, [dlq, *WATCHED]) as log:
        await publish_to(infra.bootstrap, topic, partition, batch)
        good, check_good = good_messages(topic, person_id)
        goods = [Hostile("good", value, key, "good") for key, value in good]
        await publish_to(infra.bootstrap, topic, partition, goods)
        for group in (f"{service}.{topic}" for service in CONSUMERS[topic]):
            await poll_until(lambda g=group: _past(infra.bootstrap, g, tp, goods[-1].offset), 180, f"{group} past")
        await check_good(log, db)
        outboxed = await outboxed_dead_letters(db, scheduler_dsn, topic, partition)

        def fate(m: Hostile) -> str | None:
            if topic in COMMAND_TOPICS and (answers := log.matching(_caused(m.message_id, COMMAND_TOPICS[topic]))):
                return _answer(answers)
            letters = [s for s in log.seen if s.topic == dlq and s.headers.get("dlq_original_topic") == topic
                       and s.headers.get("dlq_original_partition") == str(partition)
                       and s.headers.get("dlq_original_offset") == str(m.offset)]
            if letters:
                assert all(s.headers.get("dlq_error") for s in letters), m.name
                return "dead-lettered"
            return None if topic in COMMAND_TOPICS or m.offset in outboxed else "passed"

        try:
            await log.wait_until(lambda: all(fate(m) for m in batch), 60)
        except TimeoutError:
            raise AssertionError(f"neither answered nor dead-lettered: {[m.name for m in batch if not fate(m)]}")\
                from None
        fates = [fate(m) for m in batch]
    async with httpx.AsyncClient(auth=service_auth(), timeout=5) as http:
        for service in CONSUMERS[topic]:
            process = consumers[service]
            assert process.process is not None and process.process.poll() is None, f"{service} died"
            assert (await http.get(f"{process.url}/readyz")).status_code == 200, f"{service} not ready"
    summary: dict[str, int] = {}
    for f in fates:
        kind = (f or "").split(":")[0]
        summary[kind] = summary.get(kind, 0) + 1
    print(f"\n{topic}: {len(batch)} generated → {summary}; good message handled")
