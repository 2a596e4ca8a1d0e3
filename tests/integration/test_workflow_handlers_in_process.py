"""Workflow's handlers in process (issue #16 §6): its schema on the real PostgreSQL, signed messages, no broker.

Each message goes through the dead-letter middleware and the signature check as in the running service, then
the handler; the test reads what it stored and what it queued in the outbox. The same paths through the real
broker (a command answered on workflow.events, an undecodable one on workflow.commands.dlq) are proved in
tests/integration/test_workflow_commands.py.
"""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from services.workflow import handlers
from shared import topics
from shared.envelope import new_message
from shared.readers import PersonReader
from shared.testing import free_port
from tests.in_process import Consumer, queued, service_pool, set_aside_once
from tests.workflow_harness import SCREENING, TA, TRIAGE, TRIAGE_VALUES, Personas, actor, given_step, shipped_packs

REFERRALS = "tessera/referrals"


@pytest.fixture(scope="module")
async def pool(handlers_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await service_pool(handlers_dsn, "workflow")
    yield pool
    await pool.close()


@pytest.fixture(scope="module")
async def unreachable_referrals() -> AsyncIterator[PersonReader]:
    """Referrals not answering: a person record cannot be read, so prefilled fields are left empty (R-W5)."""
    reader = PersonReader(f"http://127.0.0.1:{free_port()}", 1.0)
    yield reader
    await reader.close()


@pytest.fixture
def commands(pool: asyncpg.Pool) -> Consumer:
    return Consumer(pool, "workflow", handlers.on_command,
                    {"packs": shipped_packs(), "people": None, "allocation": None, "access": None})


@pytest.fixture
def referral_events(pool: asyncpg.Pool, unreachable_referrals: PersonReader) -> Consumer:
    return Consumer(pool, "workflow", handlers.on_referral_event,
                    {"packs": shipped_packs(), "people": unreachable_referrals})


def personas() -> Personas:
    return Personas(suffix=f"-{uuid.uuid4().hex[:8]}")


def accepted(person_id: str, workflow_id: str) -> dict[str, object]:
    return {"referral_id": f"REF-{uuid.uuid4().hex[:8]}", "person_id": person_id, "matched": False,
            "workflow_id": workflow_id, "first_step_type": SCREENING, "service": "adults",
            "category": "wellbeing", "urgency": "normal"}


async def new_screening(pool: asyncpg.Pool, referral_events: Consumer) -> tuple[str, str]:
    """A referral accepted by referrals (consumed once): the person id and their Screening step's id."""
    person_id, workflow_id = str(uuid.uuid4()), str(uuid.uuid4())
    await referral_events.event(topics.REFERRALS_EVENTS, "referral.accepted", REFERRALS,
                                accepted(person_id, workflow_id), person_id)
    step_id = await pool.fetchval("SELECT step_id FROM steps WHERE workflow_id = $1", uuid.UUID(workflow_id))
    return person_id, str(step_id)


async def test_R_W2_an_accepted_referral_delivered_twice_starts_one_workflow_with_its_first_step_in_the_teams_inbox(
        pool, referral_events):
    person_id, workflow_id = str(uuid.uuid4()), str(uuid.uuid4())
    envelope = await referral_events.event(topics.REFERRALS_EVENTS, "referral.accepted", REFERRALS,
                                           accepted(person_id, workflow_id), person_id)
    await referral_events.deliver(topics.REFERRALS_EVENTS, envelope.to_bytes(), person_id)
    [step] = await pool.fetch("SELECT step_id, step_type, state, assignee_kind, assignee_id FROM steps"
                              " WHERE workflow_id = $1", uuid.UUID(workflow_id))
    assert (step["step_type"], step["state"], step["assignee_kind"], step["assignee_id"]) == (
        SCREENING, "incoming", "team", "wellbeing-service-hub")
    sent = await queued(pool, envelope)
    assert [s.type for s in sent] == ["workflow.started", "step.created"]
    assert {s.key for s in sent} == {person_id} and sent[1].data["step_id"] == str(step["step_id"])
    notes = await pool.fetch("SELECT details FROM step_history WHERE step_id = $1 AND what = 'prepopulated'",
                             step["step_id"])
    assert "person record unavailable" in notes[0]["details"]["note"]  # R-W5: nothing invented


async def test_R_W2_a_started_then_saved_step_is_stored_at_each_version_with_its_events_and_history(
        pool, referral_events, commands):
    p = personas()
    person_id, step_id = await new_screening(pool, referral_events)
    started = (await commands.send(topics.WORKFLOW_COMMANDS, "step.start", p.hub, key=person_id, step_id=step_id,
                                   expected_version=1)).ok()
    assert started.types == ["step.started"] and started.seen[0].key == person_id
    saved = (await commands.send(topics.WORKFLOW_COMMANDS, "step.save", p.hub, key=person_id, step_id=step_id,
                                 values={"referral_source": "Self"}, completed_sections=[2])).ok()
    assert saved.of("step.saved")["fields"] == ["referral_source"]
    row = await pool.fetchrow("SELECT state, version, values, updated_by FROM steps WHERE step_id = $1",
                              uuid.UUID(step_id))
    assert (row["state"], row["version"], row["values"]["referral_source"], row["updated_by"]) == (
        "incomplete", 3, "Self", p.hub["worker_id"])
    history = await pool.fetch("SELECT what, actor FROM step_history WHERE step_id = $1 ORDER BY entry_id",
                               uuid.UUID(step_id))
    assert [h["what"] for h in history] == ["step.created", "prepopulated", "step.started", "step.saved"]
    assert history[2]["actor"] == p.hub["worker_id"]


async def test_a_command_delivered_twice_is_handled_once(pool, referral_events, commands):
    p = personas()
    person_id, step_id = await new_screening(pool, referral_events)
    envelope = new_message("step.start", "test-front-end", {"actor": p.hub, "step_id": step_id}, subject=person_id)
    for _ in range(2):
        await commands.deliver(topics.WORKFLOW_COMMANDS, envelope.to_bytes(), person_id)
    assert [s.type for s in await queued(pool, envelope)] == ["step.started"]
    assert await pool.fetchval("SELECT version FROM steps WHERE step_id = $1", uuid.UUID(step_id)) == 2
    assert await pool.fetchval("SELECT count(*) FROM inbox WHERE message_id = $1", envelope.id) == 1


async def test_commands_refused_for_each_reason_are_answered_once_and_change_nothing(
        pool, referral_events, commands):
    """Every way a command is refused gets one `command.rejected` naming the code (and each field at fault)."""
    p = personas()
    person_id, step_id = await new_screening(pool, referral_events)
    send = commands.send
    wf = topics.WORKFLOW_COMMANDS
    unknown = await send(wf, "step.fly", p.hub, step_id=step_id)
    assert (unknown.rejection["code"], unknown.rejection["command_type"]) == ("unknown_command", "step.fly")
    invalid = await send(wf, "step.add_next_action", {"worker_id": ""}, step_id="not-a-uuid", priority="whenever")
    assert invalid.rejection["code"] == "invalid"
    assert {"actor.worker_id", "step_id", "action", "priority"} <= {r["field"] for r in invalid.reasons}
    assert (await send(wf, "step.start", p.hub, step_id=str(uuid.uuid4()))).rejection["code"] == "not_found"
    (await send(wf, "step.start", p.hub, key=person_id, step_id=step_id)).ok()
    stale = await send(wf, "step.save", p.hub, key=person_id, step_id=step_id, values={}, expected_version=1)
    assert stale.rejection["code"] == "conflict" and stale.seen[0].key == person_id
    # R-W4: finishing names every missing field and the missing next action
    finish = await send(wf, "step.finish", p.hub, key=person_id, step_id=step_id)
    assert finish.rejection["code"] == "rule_broken"
    missing = {r["field"] for r in finish.reasons if r["code"] == "missing_field"}
    assert {"referral_source", "eligible_for_wellbeing_service", "referral_date"} <= missing
    assert "no_next_action" in {r["code"] for r in finish.reasons}
    # R-W5: a read-only (blue cog) field and a value the form does not offer, each named
    wrong = await send(wf, "step.save", p.hub, key=person_id, step_id=step_id,
                       values={"first_name": "Eve", "referral_source": "Pigeon"})
    assert {(r["code"], r["field"]) for r in wrong.reasons} == {
        ("read_only", "first_name"), ("invalid_value", "referral_source")}
    # R-W2: only an authoriser authorises
    refused = await send(wf, "step.authorise", p.gso, key=person_id, step_id=step_id)
    assert refused.rejected
    assert await pool.fetchval("SELECT version FROM steps WHERE step_id = $1", uuid.UUID(step_id)) == 2


async def test_an_unsigned_command_is_answered_unauthenticated_and_not_handled(pool, referral_events, commands):
    p = personas()
    person_id, step_id = await new_screening(pool, referral_events)
    forged = new_message("step.start", "test-front-end", {"actor": p.hub, "step_id": step_id}, subject=person_id)
    await commands.deliver(topics.WORKFLOW_COMMANDS, forged.to_bytes(), person_id, signed=False)
    [answer] = await queued(pool, forged)
    assert answer.type == "command.rejected" and answer.data["code"] == "unauthenticated"
    assert await pool.fetchval("SELECT version FROM steps WHERE step_id = $1", uuid.UUID(step_id)) == 1


async def test_an_undecodable_command_is_set_aside_with_a_dlq_copy(pool, commands):
    garbage = f"not json {uuid.uuid4()}".encode()
    await commands.deliver(topics.WORKFLOW_COMMANDS, garbage, "garbage")
    letter, copy = await set_aside_once(pool, topics.WORKFLOW_COMMANDS, garbage)
    assert (letter["job"], letter["topic"], letter["key"]) == (
        topics.WORKFLOW_COMMANDS, topics.WORKFLOW_COMMANDS, "garbage")
    assert (copy["dlq_original_topic"], copy["dlq_service"]) == (topics.WORKFLOW_COMMANDS, "workflow")


async def test_an_invalid_referral_accepted_is_set_aside_naming_its_field_and_starts_nothing(
        pool, referral_events):
    person_id, workflow_id = str(uuid.uuid4()), str(uuid.uuid4())
    data = {**accepted(person_id, workflow_id), "urgency": "whenever"}
    envelope = await referral_events.event(topics.REFERRALS_EVENTS, "referral.accepted", REFERRALS, data, person_id)
    [letter] = await pool.fetch("SELECT error FROM dead_letters WHERE job = $1 AND key = $2",
                                topics.REFERRALS_EVENTS, person_id)
    assert "urgency" in letter["error"] and "whenever" not in letter["error"]  # named, never echoed
    assert await pool.fetchval("SELECT count(*) FROM workflows WHERE workflow_id = $1", uuid.UUID(workflow_id)) == 0
    assert await queued(pool, envelope) == []


async def test_an_invalid_timer_due_of_workflow_is_set_aside_not_dropped(pool):
    timers = Consumer(pool, "workflow", handlers.on_timer_due, {"packs": shipped_packs()})
    key = f"future-work:{uuid.uuid4()}"
    await timers.event(topics.SCHEDULER_DUE, "timer.due", "tessera/scheduler",
                       {"key": key, "owner": "workflow", "due_at": "not a time", "payload": {}}, key)
    [letter] = await pool.fetch("SELECT error FROM dead_letters WHERE job = $1 AND key = $2",
                                topics.SCHEDULER_DUE, key)
    assert letter["error"].startswith("invalid timer.due") and "due_at" in letter["error"]


@pytest.fixture
def directory(pool: asyncpg.Pool) -> Consumer:
    return Consumer(pool, "workflow", handlers.on_account_listed, {})


async def test_R_RQ9_the_desks_listing_of_an_account_is_kept_over_an_older_one_and_over_the_roles_it_acts_with(
        pool, directory, commands):
    """An unlisted worker is known by the roles they act with; once the desk lists them, the directory wins: a
    command with other roles, or an older listing replayed (the broker lost its log), changes nothing."""
    worker = f"ws-{uuid.uuid4().hex[:8]}"

    async def known() -> tuple[list[str], list[str], bool]:
        row = await pool.fetchrow("SELECT roles, team_ids, active FROM known_workers WHERE worker_id = $1", worker)
        return list(row["roles"]), list(row["team_ids"]), row["active"]

    async def listing(roles: list[str], active: bool, as_of: str) -> None:
        await directory.event(topics.WEB_EVENTS, "account.listed", "tessera/web",
                              {"worker_id": worker, "roles": roles, "team_ids": ["north"], "active": active,
                               "as_of": as_of}, worker)

    acting = {"worker_id": worker, "roles": ["social_worker"], "team_ids": ["south"]}
    await commands.send(topics.WORKFLOW_COMMANDS, "step.start", acting, step_id=str(uuid.uuid4()))
    assert await known() == (["social_worker"], ["south"], True)
    await listing(["team_manager"], False, "2026-12-03T10:00:00Z")
    assert await known() == (["team_manager"], ["north"], False)
    await commands.send(topics.WORKFLOW_COMMANDS, "step.start", acting, step_id=str(uuid.uuid4()))
    assert await known() == (["team_manager"], ["north"], False)
    await listing(["social_worker"], True, "2026-12-03T09:00:00Z")
    assert await known() == (["team_manager"], ["north"], False)


async def test_R_W14_a_workers_step_that_names_no_team_is_held_by_the_teams_the_directory_lists(
        pool, directory, commands):
    """A step written before `held_by` was kept names no team: any team's manager could cancel it. Once the desk
    lists its worker, their teams hold it (migration 0009 did the same for the workers known then)."""
    worker = f"wl-{uuid.uuid4().hex[:8]}"
    step_id = await given_step(pool, actor(worker, "social_worker", teams=("locality-east",)), str(uuid.uuid4()),
                               "WB Covid 19 Response")
    await pool.execute("UPDATE steps SET provenance = provenance - 'held_by' WHERE step_id = $1", uuid.UUID(step_id))
    await directory.event(topics.WEB_EVENTS, "account.listed", "tessera/web",
                          {"worker_id": worker, "roles": ["social_worker"], "team_ids": ["locality-east"],
                           "active": True, "as_of": "2026-12-03T10:00:00Z"}, worker)
    outsider = actor(f"tm-{uuid.uuid4().hex[:8]}", "team_manager", teams=("locality-west",))
    refused = await commands.send(topics.WORKFLOW_COMMANDS, "step.cancel", outsider, step_id=step_id,
                                  reason="Opened in error")
    assert (refused.rejection["code"], "locality-east" in refused.rejection["message"]) == ("not_team_member", True)


async def test_R_W14_migration_0009_holds_a_known_workers_unheld_steps_by_their_teams(pool, commands):
    """The workers known when it runs (seen acting, or listed): their open steps that name no team get theirs."""
    worker = actor(f"wm-{uuid.uuid4().hex[:8]}", "social_worker", teams=("locality-north",))
    await commands.send(topics.WORKFLOW_COMMANDS, "step.start", worker, step_id=str(uuid.uuid4()))  # seen acting
    step_id = await given_step(pool, worker, str(uuid.uuid4()), "WB Covid 19 Response")
    await pool.execute("UPDATE steps SET provenance = provenance - 'held_by' WHERE step_id = $1", uuid.UUID(step_id))
    await pool.execute((Path(handlers.__file__).parent / "migrations" / "0009_held_by_known_teams.sql").read_text())
    held = await pool.fetchval("SELECT provenance->'held_by' FROM steps WHERE step_id = $1", uuid.UUID(step_id))
    assert held == ["locality-north"]


async def test_R_NA7_a_next_action_named_to_no_team_goes_to_the_team_chosen_in_the_form(pool, commands):
    """The desk is not there to propose it: a Triage whose Involved Team is Wellbeing Service North adds the TA
    with no assignee, and workflow itself sends it to North, stored and announced on next_action.added."""
    hub = personas().hub
    person_id = str(uuid.uuid4())
    triage = await given_step(pool, hub, person_id, TRIAGE)
    (await commands.send(topics.WORKFLOW_COMMANDS, "step.save", hub, key=person_id, step_id=triage,
                         values=TRIAGE_VALUES)).ok()
    added = (await commands.send(topics.WORKFLOW_COMMANDS, "step.add_next_action", hub, key=person_id,
                                 step_id=triage, action=TA)).ok()
    assert added.of("next_action.added")["assignee"] == {"kind": "team", "id": "wellbeing-service-north"}
    [action] = await pool.fetchval("SELECT next_actions FROM steps WHERE step_id = $1", uuid.UUID(triage))
    assert (action["assignee_kind"], action["assignee_id"]) == ("team", "wellbeing-service-north")
