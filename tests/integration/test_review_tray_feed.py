"""R-T8 Review trays fed by the workflow: a person's next review (their Future Work) rescheduled puts the case in
the team's Review tray until it is due; and a team's trays are acted on by its own managers only. Through the
real broker, database, workflow and allocation services."""

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from services.allocation import domain
from shared import topics
from shared.envelope import new_message
from shared.testing import EventLog, Seen, poll_until, publish, service_auth
from tests.allocation_harness import Staff, actor, referral, referral_seen, tray_args
from tests.integration.test_future_work_commands import future_work_due_tomorrow
from tests.workflow_harness import Commands, new_case


def _today() -> date:
    return datetime.now(UTC).astimezone(domain.LONDON).date()


def _caused_by(seen: Seen, type_: str):
    return lambda s: s.topic == topics.ALLOCATION_EVENTS and s.type == type_ and s.body.get("causationid") == str(
        seen.envelope.id)


async def _review_tray(allocation: Any, team: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(auth=service_auth(), base_url=allocation.url) as http:
        response = await http.get(f"/teams/{team}/review-tray")
    assert response.status_code == 200, response.text
    return response.json()["entries"]


async def _reschedule(commands: Commands, worker: dict, person_id: str, step_id: str, due: date) -> Seen:
    moved = (await commands.send("step.reschedule", worker, key=person_id, step_id=step_id, due_date=due.isoformat(),
                                 note="Respite booked from the contingency; nothing needed until the review")).ok()
    [seen] = [s for s in moved.seen if s.type == "step.rescheduled"]
    return seen


async def test_R_T8_rescheduled_future_work_puts_the_case_in_its_teams_review_tray_moves_it_then_marks_it_due(
        infra, workflow, allocation, events: EventLog, commands: Commands):
    run = uuid.uuid4().hex[:8]
    team = f"adult-review-{run}"
    worker = actor(f"tm-{run}", "team_manager", teams=(team,))  # Future Work is the manager's (R-W11)
    person_id, _ = await new_case(infra, events)
    _, future = await future_work_due_tomorrow(commands, person_id, team, worker)

    in_a_year = _today() + timedelta(days=365)
    first = await _reschedule(commands, worker, person_id, future, in_a_year)
    [added] = await events.wait_for(_caused_by(first, "review_tray.entry_added"))
    entry_id = added.data["entry_id"]
    assert (added.key, added.data["team_id"], added.data["review_due"], added.data["actor"]) == (
        person_id, team, in_a_year.isoformat(), worker["worker_id"])
    assert added.data["reason"] == f"Next review (Future Work) rescheduled to {in_a_year.isoformat()}"
    [timer] = await events.wait_for(lambda s: s.topic == topics.SCHEDULER_TIMERS and s.type == "timer.set"
                                    and s.data["key"] == f"review-tray:{entry_id}")
    assert datetime.fromisoformat(timer.data["due_at"]) == domain.review_tray_due_at(in_a_year)
    [listed] = await _review_tray(allocation, team)
    assert (listed["entry_id"], listed["person_id"], listed["due"], listed["days_until_due"]) == (
        entry_id, person_id, False, 365)

    # rescheduled again: the same entry moves to the new date, its timer with it; still one entry
    in_half_a_year = _today() + timedelta(days=180)
    second = await _reschedule(commands, worker, person_id, future, in_half_a_year)
    [moved] = await events.wait_for(_caused_by(second, "review_tray.entry_rescheduled"))
    assert (moved.data["entry_id"], moved.data["review_due"], moved.data["previous_review_due"]) == (
        entry_id, in_half_a_year.isoformat(), in_a_year.isoformat())
    await events.wait_for(lambda s: s.topic == topics.SCHEDULER_TIMERS and s.type == "timer.set"
                          and s.data["key"] == f"review-tray:{entry_id}"
                          and datetime.fromisoformat(s.data["due_at"]) == domain.review_tray_due_at(in_half_a_year))
    [listed] = await _review_tray(allocation, team)
    assert (listed["entry_id"], listed["review_due"], listed["version"]) == (entry_id, in_half_a_year.isoformat(), 2)

    # brought forward to today: the review is incoming work now, and the entry is due
    third = await _reschedule(commands, worker, person_id, future, _today())
    [due] = await events.wait_for(_caused_by(third, "review_tray.entry_due"))
    assert due.data["entry_id"] == entry_id
    [listed] = await _review_tray(allocation, team)
    assert listed["due"] is True and listed["due_marked_at"]


def _rescheduled(person_id: str, assignee: dict[str, str], due: date, state: str = "future") -> Any:
    """`step.rescheduled` as the workflow emits it (for assignees and cases the real journey makes slow to reach)."""
    data = {"step_id": str(uuid.uuid4()), "person_id": person_id, "actor": "sw-feed", "version": 3,
            "step_type": "Future Work", "assignee": assignee, "previous_due_date": None,
            "due_date": due.isoformat(), "state": state, "note": None}
    return new_message("step.rescheduled", "tessera/workflow", data, subject=person_id,
                       dataschema="step.rescheduled/1")


async def _handled_by_allocation(db: asyncpg.Pool, message_id: uuid.UUID) -> None:
    await poll_until(lambda: db.fetchval("SELECT true FROM allocation.inbox WHERE message_id = $1", message_id),
                     30, "allocation handled the step.rescheduled")


async def test_R_T8_future_work_of_a_worker_or_a_case_waiting_on_a_planned_work_tray_stays_out_of_review_trays(
        infra, allocation, out, alloc, db):
    s = Staff()
    later = _today() + timedelta(days=365)
    on_tray, _ = await referral(infra, out)
    await referral_seen(db, on_tray)
    (await alloc.send("tray.add", s.tm, person_id=on_tray, **tray_args(s.team))).ok()
    workers, _ = await referral(infra, out)
    ignored = [_rescheduled(on_tray, {"kind": "team", "id": s.team}, later),
               _rescheduled(workers, {"kind": "worker", "id": s.sw["worker_id"]}, later)]
    for message in ignored:
        await publish(infra.bootstrap, topics.WORKFLOW_EVENTS, [(message.subject, message.to_bytes())])
    for message in ignored:
        await _handled_by_allocation(db, message.id)
    assert await _review_tray(allocation, s.team) == []
    ignored_ids = {str(m.id) for m in ignored}
    assert not out.matching(lambda m: m.body.get("causationid") in ignored_ids)

    # the same event for a team's future work of a case not on a tray does put it in the Review tray
    fed = _rescheduled(workers, {"kind": "team", "id": s.team}, later)
    await publish(infra.bootstrap, topics.WORKFLOW_EVENTS, [(workers, fed.to_bytes())])
    [added] = await out.wait_for(lambda m: m.type == "review_tray.entry_added"
                                 and m.body.get("causationid") == str(fed.id))
    assert [e["entry_id"] for e in await _review_tray(allocation, s.team)] == [added.data["entry_id"]]


async def test_an_invalid_step_rescheduled_is_dead_lettered_by_allocation(infra, allocation, out, db):
    broken = new_message("step.rescheduled", "tessera/workflow", {"step_id": "s", "person_id": "not-a-uuid"})
    async with EventLog(infra.bootstrap, [topics.dlq(topics.WORKFLOW_EVENTS)]) as dead:
        await publish(infra.bootstrap, topics.WORKFLOW_EVENTS, [("k", broken.to_bytes())])
        [letter] = await dead.wait_for(lambda m: m.body.get("id") == str(broken.id)
                                       and m.headers.get("dlq_service") == "allocation", 60)
    assert letter.headers["dlq_error"].startswith("invalid step.rescheduled:")
    assert "not-a-uuid" not in letter.headers["dlq_error"]


# --- a team's trays, its own managers (R-T1, R-T5, R-T6, R-T8, R-A3) -----------------------------------


async def test_R_T1_R_T5_R_T8_R_A3_a_manager_of_another_team_is_refused_naming_the_team(infra, allocation, out, alloc,
                                                                                     db):
    s = Staff()
    other = Staff()
    person_id, _ = await referral(infra, out)
    await referral_seen(db, person_id)

    def refused_for(outcome: Any) -> None:
        [why] = outcome.reasons
        assert (outcome.rejection["code"], why["field"]) == ("not_team_member", "actor.team_ids")
        assert f"team {s.team}" in why["message"]

    refused_for(await alloc.send("tray.add", other.tm, person_id=person_id, **tray_args(s.team)))
    entry_id = (await alloc.send("tray.add", s.tm, person_id=person_id, **tray_args(s.team))).ok().of(
        "tray.entry_added")["entry_id"]
    refused_for(await alloc.send("tray.review", other.tl, key=person_id, entry_id=entry_id, contacted=True,
                                 note="Checked in", increased_risk=True))  # R-T6: no escalation from outside
    refused_for(await alloc.send("tray.remove", other.tm, key=person_id, entry_id=entry_id, reason="x"))
    refused_for(await alloc.send("case.allocate", other.tm, person_id=person_id, worker_id=s.sw["worker_id"],
                                 team_id=s.team))
    # a social worker of another team: every reason at once
    both = await alloc.send("tray.remove", other.sw, key=person_id, entry_id=entry_id, reason="x")
    assert {r["code"] for r in both.reasons} == {"role", "not_team_member"}
    # above the teams, a head of service allocates for any team
    head = actor(f"hos-{s.suffix}", "head_of_service")
    allocated = (await alloc.send("case.allocate", head, person_id=person_id, worker_id=s.sw["worker_id"],
                                  team_id=s.team)).ok()
    assert allocated.of("case.allocated")["removed_entry_id"] == entry_id

    reviewed, _ = await referral(infra, out)
    await referral_seen(db, reviewed)
    due = (_today() + timedelta(days=90)).isoformat()
    refused_for(await alloc.send("review_tray.add", other.tm, person_id=reviewed, team_id=s.team, review_due=due,
                                 reason="Annual review"))
    review_id = (await alloc.send("review_tray.add", s.tl, person_id=reviewed, team_id=s.team, review_due=due,
                                  reason="Annual review")).ok().of("review_tray.entry_added")["entry_id"]
    refused_for(await alloc.send("review_tray.remove", other.tl, key=reviewed, entry_id=review_id, reason="x"))
    (await alloc.send("review_tray.remove", s.tm, key=reviewed, entry_id=review_id, reason="Moved away")).ok()
