"""Allocation's handlers in process (issue #16 §6): its schema on the real PostgreSQL, signed messages, no broker.

Each message goes through the dead-letter middleware and the signature check as in the running service, then
the handler; the test reads what it stored and what it queued in the outbox. No other service is asked (no
person record, no steps): what a command reads from referrals and workflow, and the same paths through the real
broker, are proved in tests/integration/test_allocation_commands.py.
"""

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import asyncpg
import pytest

from services.allocation import handlers
from services.allocation.clients import WorkReader
from shared import topics
from shared.envelope import new_message
from shared.testing import free_port
from tests.allocation_harness import Staff, tray_args
from tests.in_process import Consumer, queued, service_pool, set_aside_once
from tests.workflow_harness import SCREENING

REFERRALS = "tessera/referrals"


@pytest.fixture(scope="module")
async def pool(handlers_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await service_pool(handlers_dsn, "allocation")
    yield pool
    await pool.close()


@pytest.fixture
def commands(pool: asyncpg.Pool) -> Consumer:
    return Consumer(pool, "allocation", handlers.on_command, {"readers": handlers.Readers()})


@pytest.fixture
def referral_events(pool: asyncpg.Pool) -> Consumer:
    return Consumer(pool, "allocation", handlers.on_referral_event, {})


async def referred(referral_events: Consumer, **overrides: object) -> str:
    """A person whose referral referrals accepted (allocation keeps its urgency and residence, R-T2)."""
    person_id = str(uuid.uuid4())
    await referral_events.event(topics.REFERRALS_EVENTS, "referral.accepted", REFERRALS, {
        "referral_id": f"REF-{uuid.uuid4().hex[:8]}", "person_id": person_id, "matched": False,
        "workflow_id": str(uuid.uuid4()), "first_step_type": SCREENING, "service": "adults",
        "category": "wellbeing", "urgency": "normal", **overrides}, person_id)
    return person_id


async def add_to_tray(commands: Consumer, who: dict[str, object], person_id: str, team: str, **overrides: object):
    return await commands.send(topics.ALLOCATION_COMMANDS, "tray.add", who, key=person_id, person_id=person_id,
                               **tray_args(team, **overrides))


async def test_R_T1_R_T4_a_case_placed_on_the_tray_is_stored_once_noted_told_and_timed_for_review(
        pool, referral_events, commands):
    s = Staff()
    person_id = await referred(referral_events)
    envelope = new_message("tray.add", "test-front-end", {"actor": s.tm, "person_id": person_id,
                                                          **tray_args(s.team, support="none", risk="low")},
                           subject=person_id)
    for _ in range(2):  # a redelivery is handled once
        await commands.deliver(topics.ALLOCATION_COMMANDS, envelope.to_bytes(), person_id)
    sent = await queued(pool, envelope)
    assert [(m.topic, m.type) for m in sent] == [
        (topics.ALLOCATION_EVENTS, "tray.entry_added"), (topics.ALLOCATION_EVENTS, "message.requested"),
        (topics.REFERRALS_COMMANDS, "case_note.add"), (topics.SCHEDULER_TIMERS, "timer.cancel"),
        (topics.SCHEDULER_TIMERS, "timer.set")]
    added, _, note, _, timer = (m.data for m in sent)
    assert (added["rag"], added["priority"], added["team_id"]) == ("amber", "medium", s.team)
    assert note["title"] == "PWT" and "No worker with capacity" in note["text"]
    assert timer["key"] == f"tray-review:{added['entry_id']}" and timer["owner"] == "allocation"
    due = datetime.fromisoformat(timer["due_at"]) - datetime.fromisoformat(added["placed_at"])
    assert due == timedelta(days=14)  # R-T5 Amber: fortnightly
    [entry] = await pool.fetch("SELECT entry_id, team_id, rag FROM tray_entries WHERE person_id = $1",
                               uuid.UUID(person_id))
    assert (str(entry["entry_id"]), entry["team_id"], entry["rag"]) == (added["entry_id"], s.team, "amber")


async def test_R_T1_R_T2_tray_add_refused_for_each_reason_is_answered_once_and_changes_nothing(
        pool, referral_events, commands):
    """Every way a tray.add is refused gets one `command.rejected` naming the code (and each field at fault)."""
    s = Staff()
    person_id = await referred(referral_events)
    assert (await add_to_tray(commands, s.sw, person_id, s.team)).rejection["code"] == "role"  # R-T1
    assert (await add_to_tray(commands, s.tm, person_id, s.team, urgent=True)).rejection["code"] == "urgent"
    urgent = await referred(referral_events, urgency="urgent")  # R-T2: urgent by its referral, no flag needed
    assert (await add_to_tray(commands, s.tm, urgent, s.team)).rejection["code"] == "urgent"
    elsewhere = await referred(referral_events, ordinarily_resident=False)
    both = await add_to_tray(commands, s.tm, elsewhere, s.team, urgent=True)
    assert both.rejection["code"] == "rule_broken"
    assert {r["code"] for r in both.reasons} == {"urgent", "not_ordinarily_resident"}
    invalid = await commands.send(topics.ALLOCATION_COMMANDS, "tray.add", {"worker_id": ""}, person_id="not-a-uuid",
                                  team_id="t", priority="whenever", support="lots", risk="high", complexity="low")
    assert invalid.rejection["code"] == "invalid"
    assert {"actor.worker_id", "person_id", "priority", "support", "rationale"} <= {
        r["field"] for r in invalid.reasons}
    unknown = await commands.send(topics.ALLOCATION_COMMANDS, "tray.fly", s.tm, entry_id=str(uuid.uuid4()))
    assert unknown.rejection["code"] == "unknown_command"
    review = await commands.send(topics.ALLOCATION_COMMANDS, "tray.review", s.tm, entry_id=str(uuid.uuid4()),
                                 contacted=True, note="Rang the family")
    assert review.rejection["code"] == "not_found"
    assert await pool.fetchval("SELECT count(*) FROM tray_entries WHERE person_id = ANY($1::uuid[])",
                               [person_id, urgent, elsewhere]) == 0
    (await add_to_tray(commands, s.tm, person_id, s.team)).ok()
    assert (await add_to_tray(commands, s.tl, person_id, s.team)).rejection["code"] == "duplicate"  # R-T1


async def test_an_unsigned_command_is_answered_unauthenticated_and_not_handled(pool, referral_events, commands):
    s = Staff()
    person_id = await referred(referral_events)
    forged = new_message("tray.add", "test-front-end", {"actor": s.tm, "person_id": person_id, **tray_args(s.team)},
                         subject=person_id)
    await commands.deliver(topics.ALLOCATION_COMMANDS, forged.to_bytes(), person_id, signed=False)
    [answer] = await queued(pool, forged)
    assert answer.type == "command.rejected" and answer.data["code"] == "unauthenticated"
    assert await pool.fetchval("SELECT count(*) FROM tray_entries WHERE person_id = $1", uuid.UUID(person_id)) == 0


async def test_an_undecodable_command_is_set_aside_with_a_dlq_copy(pool, commands):
    garbage = f"{{not json {uuid.uuid4()}".encode()
    await commands.deliver(topics.ALLOCATION_COMMANDS, garbage, "garbage")
    letter, copy = await set_aside_once(pool, topics.ALLOCATION_COMMANDS, garbage)
    assert (letter["job"], letter["topic"], letter["key"]) == (
        topics.ALLOCATION_COMMANDS, topics.ALLOCATION_COMMANDS, "garbage")
    assert (copy["dlq_original_topic"], copy["dlq_service"]) == (topics.ALLOCATION_COMMANDS, "allocation")


async def test_an_invalid_case_closed_is_set_aside_naming_its_field_and_ends_nothing(pool, referral_events):
    """R-A5: a case.closed allocation cannot read is kept for an operator, not dropped, and nothing is ended."""
    workflow_events = Consumer(pool, "allocation", handlers.on_workflow_event, {})
    person_id = await referred(referral_events)
    await workflow_events.event(topics.WORKFLOW_EVENTS, "case.closed", "tessera/workflow",
                                {"person_id": person_id, "closed_by_step_id": str(uuid.uuid4()), "actor": "",
                                 "workflow_ids": []}, person_id)
    [letter] = await pool.fetch("SELECT error FROM dead_letters WHERE job = $1 AND key = $2",
                                topics.WORKFLOW_EVENTS, person_id)
    assert letter["error"].startswith("invalid case.closed")
    assert await pool.fetchval("SELECT version FROM cases WHERE person_id = $1", uuid.UUID(person_id)) == 0


async def test_an_invalid_tray_review_timer_due_is_set_aside_not_dropped(pool):
    timers = Consumer(pool, "allocation", handlers.on_timer_due, {})
    key = "tray-review:not-an-entry"
    await timers.event(topics.SCHEDULER_DUE, "timer.due", "tessera/scheduler",
                       {"key": key, "owner": "allocation", "due_at": "2024-06-01T10:00:00+00:00",
                        "fired_at": "2024-06-01T10:00:01+00:00", "payload": {}}, key)
    [letter] = await pool.fetch("SELECT error FROM dead_letters WHERE job = $1 AND key = $2",
                                topics.SCHEDULER_DUE, key)
    assert "entry_id" in letter["error"]


async def test_an_allocation_while_workflow_cannot_be_read_is_refused_unavailable_and_changes_nothing(
        pool, referral_events):
    """R-A3: allocating moves the person's team work, so the work must be read first; when the workflow service
    does not answer, the command is refused `unavailable` (try again) and no relationship is recorded."""
    s = Staff()
    person_id = await referred(referral_events)
    work = WorkReader(f"http://127.0.0.1:{free_port()}", 1.0)
    try:
        commands = Consumer(pool, "allocation", handlers.on_command, {"readers": handlers.Readers(work=work)})
        outcome = await commands.send(topics.ALLOCATION_COMMANDS, "case.allocate", s.tm, key=person_id,
                                      person_id=person_id, worker_id=s.sw["worker_id"], team_id=s.team)
    finally:
        await work.close()
    assert outcome.rejection["code"] == "unavailable"
    assert await pool.fetchval("SELECT count(*) FROM worker_relationships WHERE person_id = $1",
                               uuid.UUID(person_id)) == 0
