"""Statutory clocks through the real broker, database and scheduler (R-CL3, R-CL6, R-CL8, R-CL9): a Child and Family
Assessment started from a referral runs 45 working days, then warns and breaches once each, on the test clock."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
import yaml

from services.clocks import definitions
from services.clocks.calendar import WorkingDays, bank_holidays
from shared import topics
from shared.calendar import london_date, start_of_day
from shared.envelope import new_message
from shared.events.scheduler import TimerSet
from shared.testing import EventLog, ServiceProcess, poll_until, publish, service_auth, worker_auth
from tests.workflow_harness import new_case

CFA = "Child and Family Assessment and Plan"
DAYS = WorkingDays(bank_holidays())


def step_created(person_id: str, step_id: str, team: str) -> bytes:
    """The workflow's first step of a child in need referral, as workflow publishes it."""
    return new_message("step.created", "tessera/workflow", {
        "step_id": step_id, "workflow_id": str(uuid.uuid4()), "person_id": person_id, "step_type": CFA,
        "assignee": {"kind": "team", "id": team}, "state": "incoming", "priority": "normal", "pack_version": 1,
        "provenance": {"rule": "referral intake", "referral_id": str(uuid.uuid4())},
    }, subject=person_id).to_bytes()


async def _has(tasks, wanted: object) -> bool:
    return await tasks == wanted


def of_clock(clock_id: str, kind: str):
    return lambda s: s.topic == topics.CLOCKS_EVENTS and s.type == kind and s.data.get("clock_id") == clock_id


async def team_tasks(notifications, manager, team: str, person_id: str) -> dict[str, str]:
    """The clock tasks about the person in the team's inbox, as its manager reads it: code → state."""
    async with httpx.AsyncClient(auth=manager, base_url=notifications.url) as http:
        response = await http.get(f"/teams/{team}/inbox", params={"kind": "task"})
    assert response.status_code == 200, response.text
    return {t["task"]["code"]: t["state"] for t in response.json() if t["person_id"] == person_id}


async def test_R_CL3_R_CL6_an_assessment_clock_warns_then_breaches_once_each_and_the_manager_reads_it(
        infra, db, clocks, notifications, scheduler, scheduler_clock):
    run = uuid.uuid4().hex[:8]
    person_id, step_id, team = str(uuid.uuid4()), str(uuid.uuid4()), f"children-response-{run}"
    manager = worker_auth(f"rm-{run}", ["response_manager"], [team], person_id=person_id)
    async with EventLog(infra.bootstrap, [topics.CLOCKS_EVENTS, topics.SCHEDULER_DUE]) as log:
        await publish(infra.bootstrap, topics.WORKFLOW_EVENTS, [(person_id, step_created(person_id, step_id, team))])
        [started] = await log.wait_for(lambda s: s.topic == topics.CLOCKS_EVENTS and s.type == "clock.started"
                                       and s.data["person_id"] == person_id)
        clock_id, started_at = started.data["clock_id"], datetime.fromisoformat(started.data["started_at"])
        due = DAYS.add(london_date(started_at), 45)
        assert (started.key, started.data["due_date"], started.data["team_id"]) == (person_id, due.isoformat(), team)

        async with httpx.AsyncClient(auth=manager, base_url=clocks.url) as http:
            [clock] = (await http.get(f"/people/{person_id}/clocks")).json()
            assert (clock["state"], clock["status"], clock["due_date"]) == ("running", "on_track", due.isoformat())
            assert clock["next_point"] == {"point": "warning-5", "at": start_of_day(DAYS.add(due, -5)).isoformat()}

            await scheduler_clock.move_to(start_of_day(DAYS.add(due, -5)) + timedelta(seconds=1))
            await log.wait_for(of_clock(clock_id, "clock.warning"))
            [clock] = (await http.get(f"/people/{person_id}/clocks")).json()
            assert clock["status"] == "at_risk"
            await poll_until(lambda: _has(team_tasks(notifications, manager, team, person_id),
                                          {"clock_warning": "open"}), what="the manager's warning task")
            assert [c["clock_id"] for c in (await http.get(f"/teams/{team}/clocks?status=at_risk")).json()] == [
                clock_id]

            breach_at = start_of_day(due + timedelta(days=1))
            await scheduler_clock.move_to(breach_at + timedelta(seconds=1))
            [breached] = await log.wait_for(of_clock(clock_id, "clock.breached"))
            assert (breached.data["due_date"], breached.data["concerns"]) == (due.isoformat(), "team_manager")
            [clock] = (await http.get(f"/people/{person_id}/clocks")).json()
            assert (clock["status"], clock["next_point"]) == ("breached", None)
            assert [c["clock_id"] for c in (await http.get(f"/teams/{team}/clocks?status=breached")).json()] == [
                clock_id]
            assert (await http.get(f"/teams/{team}/clocks?status=at_risk")).json() == []
            await poll_until(lambda: _has(team_tasks(notifications, manager, team, person_id),
                                          {"clock_warning": "completed", "clock_breached": "open"}),
                             what="the breach task, the warning settled")

        # the breach timer delivered again (a relay re-send after a crash has a new id): still one of each
        [fired] = log.matching(lambda s: s.topic == topics.SCHEDULER_DUE and s.data.get("payload", {}).get("point")
                               == "breach" and s.data["payload"]["clock_id"] == clock_id)
        again = new_message("timer.due", "tessera/scheduler", fired.data, subject=person_id)
        await publish(infra.bootstrap, topics.SCHEDULER_DUE, [(person_id, again.to_bytes())])
        await poll_until(lambda: db.fetchval("SELECT 1 FROM clocks.inbox WHERE message_id = $1", again.id),
                         what="the repeated timer handled")
    assert [len(log.matching(of_clock(clock_id, kind))) for kind in ("clock.warning", "clock.breached")] == [1, 1]
    # what the service decided, committed with the inbox claim: published or not yet, still one breach
    decided = await db.fetchval("SELECT count(*) FROM clocks.outbox WHERE topic = $1 AND position($2 IN"
                                " convert_from(value, 'UTF8')) > 0 AND position('clock.breached' IN"
                                " convert_from(value, 'UTF8')) > 0", topics.CLOCKS_EVENTS, clock_id)
    assert decided == 1


async def test_R_CL1_a_start_event_with_an_id_beyond_bounds_is_dead_lettered_naming_the_field_and_the_next_counts(
        infra, clocks):
    person_id, team = str(uuid.uuid4()), f"children-response-{uuid.uuid4().hex[:8]}"
    body = step_created(person_id, "x" * 500, team)  # a step id far beyond any id
    good = step_created(person_id, str(uuid.uuid4()), team)
    async with EventLog(infra.bootstrap, [topics.dlq(topics.WORKFLOW_EVENTS), topics.CLOCKS_EVENTS]) as log:
        await publish(infra.bootstrap, topics.WORKFLOW_EVENTS, [(person_id, body), (person_id, good)])
        [letter] = await log.wait_for(lambda m: m.headers.get("dlq_service") == "clocks", 60)
        await log.wait_for(lambda s: s.type == "clock.started" and s.data["person_id"] == person_id)
    assert letter.headers["dlq_error"].startswith("invalid step.created: key: String should have at most")
    assert "xxxx" not in letter.headers["dlq_error"]


async def test_R_CL4_a_tray_wait_runs_28_days_and_stops_when_the_entry_leaves_the_tray(infra, clocks):
    run = uuid.uuid4().hex[:8]
    person_id, entry_id, team = str(uuid.uuid4()), str(uuid.uuid4()), f"adult-care-area-{run}"
    placed = datetime.now(UTC)
    added = new_message("tray.entry_added", "tessera/allocation", {
        "entry_id": entry_id, "person_id": person_id, "team_id": team, "priority": "medium", "complexity": "low",
        "support": "moderate", "risk": "moderate", "rag": "amber", "placed_at": placed.isoformat(),
        "next_review_at": (placed + timedelta(days=14)).isoformat(), "actor": f"tm-{run}"}, subject=person_id)
    removed = new_message("tray.entry_removed", "tessera/allocation", {
        "entry_id": entry_id, "person_id": person_id, "team_id": team, "reason": "allocated", "days_waiting": 0,
        "actor": f"tm-{run}"}, subject=person_id)
    manager = worker_auth(f"tm-{run}", ["team_manager"], [team])
    async with EventLog(infra.bootstrap, [topics.CLOCKS_EVENTS]) as log, \
            httpx.AsyncClient(auth=manager, base_url=clocks.url) as http:
        await publish(infra.bootstrap, topics.ALLOCATION_EVENTS, [(person_id, added.to_bytes())])
        [started] = await log.wait_for(lambda s: s.type == "clock.started" and s.data["person_id"] == person_id)
        due = london_date(added.time) + timedelta(days=28)
        assert (started.data["clock"], started.data["due_date"]) == ("planned_work_tray_wait", due.isoformat())
        [waiting] = (await http.get(f"/teams/{team}/clocks")).json()
        assert (waiting["person_id"], waiting["status"], waiting["unit"]) == (person_id, "on_track", "days")

        await publish(infra.bootstrap, topics.ALLOCATION_EVENTS, [(person_id, removed.to_bytes())])
        [stopped] = await log.wait_for(of_clock(started.data["clock_id"], "clock.stopped"))
        assert (stopped.data["stopped_by"], stopped.data["breached"]) == ("tray.entry_removed", False)
        assert (await http.get(f"/teams/{team}/clocks")).json() == []


async def test_R_CL6_a_clock_warns_and_breaches_once_through_kill_9s_of_the_clocks_service_and_the_scheduler(
        infra, db, clocks, notifications, scheduler, scheduler_clock):
    """The warning falls due while the clocks service is killed; the breach while both it and the scheduler are:
    each restarted, every point fires exactly once (R-CL6), and the manager has one warning task and one breach
    task, not none and not two."""
    run = uuid.uuid4().hex[:8]
    person_id, team = str(uuid.uuid4()), f"children-response-{run}"
    manager = worker_auth(f"rm-{run}", ["response_manager"], [team], person_id=person_id)
    async with EventLog(infra.bootstrap, [topics.CLOCKS_EVENTS, topics.SCHEDULER_DUE]) as log:
        await publish(infra.bootstrap, topics.WORKFLOW_EVENTS,
                      [(person_id, step_created(person_id, str(uuid.uuid4()), team))])
        [started] = await log.wait_for(lambda s: s.type == "clock.started" and s.data["person_id"] == person_id)
        clock_id = started.data["clock_id"]
        due = DAYS.add(london_date(datetime.fromisoformat(started.data["started_at"])), 45)

        clocks.kill()
        await scheduler_clock.move_to(start_of_day(DAYS.add(due, -5)) + timedelta(seconds=1))
        await log.wait_for(lambda s: s.type == "timer.due" and s.data["key"] == f"clock:{clock_id}:warning-5", 60)
        clocks.start()
        await clocks.ready(180)
        await log.wait_for(of_clock(clock_id, "clock.warning"), 120)

        scheduler.kill()
        clocks.kill()
        await scheduler_clock.move_to(start_of_day(due + timedelta(days=1)) + timedelta(seconds=1))
        scheduler.start()
        clocks.start()
        await scheduler.ready(180)
        await clocks.ready(180)
        await log.wait_for(of_clock(clock_id, "clock.breached"), 120)
    # a kill between the relay's publish and its marking publishes the same message again (at least once, the
    # inboxes drop the copy): one message each, however many copies
    assert [len({s.envelope.id for s in log.matching(of_clock(clock_id, kind))})
            for kind in ("clock.warning", "clock.breached")] == [1, 1]
    decided = await db.fetch("SELECT convert_from(value, 'UTF8')::jsonb->>'type' AS type FROM clocks.outbox"
                             " WHERE topic = $1 AND position($2 IN convert_from(value, 'UTF8')) > 0",
                             topics.CLOCKS_EVENTS, clock_id)
    assert sorted(r["type"] for r in decided) == ["clock.breached", "clock.started", "clock.warning"]
    await poll_until(lambda: _has(clock_tasks(notifications, manager, team, person_id),
                                  [("clock_breached", "open"), ("clock_warning", "completed")]),
                     what="one warning task (settled by the breach) and one breach task")


def initial_review_created(person_id: str, step_id: str, team: str, care_started: date) -> bytes:
    """An Initial Review as workflow creates it from a Care and Support Plan: a worker's step held by the worker's
    team (R-W14), its window counted from the day the new care started."""
    return new_message("step.created", "tessera/workflow", {
        "step_id": step_id, "workflow_id": str(uuid.uuid4()), "person_id": person_id, "step_type": "Initial Review",
        "assignee": {"kind": "worker", "id": f"sw-{team}"}, "state": "future", "priority": "normal",
        "due_date": (care_started + timedelta(days=28)).isoformat(), "pack_version": 1,
        "provenance": {"rule": "R-NA3 finish", "action": "Initial Review", "held_by": [team],
                       "window_from": care_started.isoformat()},
    }, subject=person_id).to_bytes()


async def test_R_CL8_an_initial_review_6_weeks_after_new_care_warns_then_breaches_as_tasks_of_the_teams_manager(
        infra, clocks, notifications, scheduler, scheduler_clock):
    run = uuid.uuid4().hex[:8]
    person_id, step_id, team = str(uuid.uuid4()), str(uuid.uuid4()), f"adult-front-door-{run}"
    care_started = london_date(datetime.now(UTC)) - timedelta(days=20)
    due = care_started + timedelta(days=42)
    manager = worker_auth(f"tm-{run}", ["team_manager"], [team], person_id=person_id)
    async with EventLog(infra.bootstrap, [topics.CLOCKS_EVENTS]) as log, \
            httpx.AsyncClient(auth=manager, base_url=clocks.url) as http:
        await publish(infra.bootstrap, topics.WORKFLOW_EVENTS,
                      [(person_id, initial_review_created(person_id, step_id, team, care_started))])
        [started] = await log.wait_for(lambda s: s.type == "clock.started" and s.data["person_id"] == person_id)
        assert (started.data["clock"], started.data["due_date"], started.data["team_id"]) == (
            "initial_review", due.isoformat(), team)
        [clock] = (await http.get(f"/people/{person_id}/clocks")).json()
        assert clock["next_point"] == {"point": "warning-7", "at": start_of_day(due - timedelta(days=7)).isoformat()}

        await scheduler_clock.move_to(start_of_day(due - timedelta(days=7)) + timedelta(seconds=1))
        await poll_until(lambda: _has(team_tasks(notifications, manager, team, person_id), {"clock_warning": "open"}),
                         what="the manager's warning task")
        await scheduler_clock.move_to(start_of_day(due + timedelta(days=1)) + timedelta(seconds=1))
        await poll_until(lambda: _has(team_tasks(notifications, manager, team, person_id),
                                      {"clock_warning": "completed", "clock_breached": "open"}),
                         what="the manager's breach task, the warning settled")
        breached = (await http.get(f"/teams/{team}/clocks?status=breached")).json()
        assert [c["clock_id"] for c in breached] == [started.data["clock_id"]]


async def test_R_CL9_an_annual_review_clock_is_due_on_the_future_works_own_date(infra, clocks):
    run = uuid.uuid4().hex[:8]
    person_id, step_id, team = str(uuid.uuid4()), str(uuid.uuid4()), f"adult-front-door-{run}"
    annual = london_date(datetime.now(UTC)) + timedelta(days=300)
    created = new_message("step.created", "tessera/workflow", {
        "step_id": step_id, "workflow_id": str(uuid.uuid4()), "person_id": person_id, "step_type": "Future Work",
        "assignee": {"kind": "team", "id": team}, "state": "future", "priority": "normal",
        "due_date": annual.isoformat(), "pack_version": 1, "provenance": {"rule": "R-NA3 finish"},
    }, subject=person_id)
    manager = worker_auth(f"tm-{run}", ["team_manager"], [team])
    async with EventLog(infra.bootstrap, [topics.CLOCKS_EVENTS]) as log, \
            httpx.AsyncClient(auth=manager, base_url=clocks.url) as http:
        await publish(infra.bootstrap, topics.WORKFLOW_EVENTS, [(person_id, created.to_bytes())])
        await log.wait_for(lambda s: s.type == "clock.started" and s.data["person_id"] == person_id)
        [clock] = (await http.get(f"/teams/{team}/clocks")).json()
    assert (clock["clock"], clock["due_date"], clock["status"]) == ("annual_review", annual.isoformat(), "on_track")
    assert clock["next_point"] == {"point": "warning-14", "at": start_of_day(annual - timedelta(days=14)).isoformat()}


async def test_R_CL9_a_future_work_without_a_date_starts_no_clock_and_one_with_a_bad_date_is_dead_lettered(
        infra, clocks):
    """A Future Work sent at once has no date to be due on; a date that is not one is named in the letter."""
    person_id, team = str(uuid.uuid4()), f"adult-front-door-{uuid.uuid4().hex[:8]}"

    def future_work(due: object) -> bytes:
        return new_message("step.created", "tessera/workflow", {
            "step_id": str(uuid.uuid4()), "workflow_id": str(uuid.uuid4()), "person_id": person_id,
            "step_type": "Future Work", "assignee": {"kind": "team", "id": team}, "state": "incoming",
            "priority": "normal", "due_date": due, "pack_version": 1}, subject=person_id).to_bytes()

    dated = (london_date(datetime.now(UTC)) + timedelta(days=200)).isoformat()
    async with EventLog(infra.bootstrap, [topics.dlq(topics.WORKFLOW_EVENTS), topics.CLOCKS_EVENTS]) as log:
        await publish(infra.bootstrap, topics.WORKFLOW_EVENTS,
                      [(person_id, future_work(None)), (person_id, future_work("31 June")),
                       (person_id, future_work(dated))])
        [letter] = await log.wait_for(lambda m: m.headers.get("dlq_service") == "clocks"
                                      and person_id in m.value.decode(errors="replace"), 60)
        await log.wait_for(lambda s: s.type == "clock.started" and s.data["person_id"] == person_id)
    assert letter.headers["dlq_error"].startswith("invalid step.created: due_date: ")
    started = log.matching(lambda s: s.type == "clock.started" and s.data.get("person_id") == person_id)
    assert [s.data["due_date"] for s in started] == [dated]


def next_18_december(today: date) -> date:
    """A Friday-or-so a week before Christmas still ahead, so every point of its clock is in the future."""
    this_year = date(today.year, 12, 18)
    return this_year if this_year > today else date(today.year + 1, 12, 18)


async def scheduler_holds(scheduler, key: str) -> bool:
    async with httpx.AsyncClient(auth=service_auth(), base_url=scheduler.url) as http:
        return (await http.get(f"/timers/{key}")).status_code == 200


async def moved_to(infra, log: EventLog, scheduler_clock, at: datetime) -> None:
    """The scheduler's clock moved to `at`, once it has polled there: a timer of the tests' own due just before
    `at` has fired (timers are claimed earliest first, so any clock point due by then has fired with it)."""
    key = f"tests:clocks-moved:{uuid.uuid4()}"
    marker = new_message(TimerSet.TYPE, "tests", TimerSet(key=key, due_at=at - timedelta(seconds=1), owner="tests",
                                                          payload={}))
    await publish(infra.bootstrap, topics.SCHEDULER_TIMERS, [(key, marker.to_bytes())])
    await scheduler_clock.move_to(at)
    await log.wait_for(lambda s: s.type == "timer.due" and s.data.get("key") == key, 60)


async def clock_tasks(notifications, manager, team: str, person_id: str) -> list[tuple[str, str]]:
    """Every clock task about the person in the team's inbox, as its manager reads it: (code, state), sorted."""
    async with httpx.AsyncClient(auth=manager, base_url=notifications.url) as http:
        response = await http.get(f"/teams/{team}/inbox", params={"kind": "task"})
    assert response.status_code == 200, response.text
    return sorted((t["task"]["code"], t["state"]) for t in response.json()
                  if t["person_id"] == person_id and t["task"]["code"].startswith("clock_"))


async def test_R_CL2_R_CL3_R_CL6_a_referral_a_week_before_christmas_is_due_45_working_days_on_past_the_bank_holidays(
        infra, referrals, workflow, clocks, notifications, scheduler, scheduler_clock):
    """A child in need referral received on 18 December, through intake and workflow: its assessment's clock counts
    from the day the referral was received (R-CL3), skipping Christmas Day, Boxing Day (in 2026 a Saturday, so
    Monday 28th too) and New Year's Day (R-CL2). Moved to the day before each point the scheduler fires nothing;
    moved past each, the Response Manager reads one warning task, then one breach task (R-CL6)."""
    run = uuid.uuid4().hex[:8]
    received = next_18_december(london_date(datetime.now(UTC)))
    due = DAYS.add(received, 45)
    warning_day = DAYS.add(due, -5)
    assert due > WorkingDays(frozenset()).add(received, 45)  # bank holidays fell inside: the count skipped them
    topics_read = [topics.REFERRALS_EVENTS, topics.WORKFLOW_EVENTS, topics.CLOCKS_EVENTS, topics.SCHEDULER_DUE]
    async with EventLog(infra.bootstrap, topics_read) as log:
        person_id, _ = await new_case(infra, log, service="children", category="child_in_need",
                                      received_at=f"{received.isoformat()}T10:30:00+00:00")
        [started] = await log.wait_for(lambda s: s.type == "clock.started" and s.data["person_id"] == person_id, 60)
        clock_id, team = started.data["clock_id"], started.data["team_id"]
        manager = worker_auth(f"rm-{run}", ["response_manager"], [team], person_id=person_id)
        assert (team, started.data["due_date"]) == ("children-response", due.isoformat())
        async with httpx.AsyncClient(auth=manager, base_url=clocks.url) as http:
            async def mine(status: str) -> list[str]:
                listed = (await http.get(f"/teams/{team}/clocks", params={"status": status})).json()
                return [c["status"] for c in listed if c["clock_id"] == clock_id]

            [clock] = (await http.get(f"/people/{person_id}/clocks")).json()
            assert (clock["status"], clock["due_date"], clock["length"], clock["unit"]) == (
                "on_track", due.isoformat(), 45, "working_days")
            await poll_until(lambda: scheduler_holds(scheduler, f"clock:{clock_id}:breach"),
                             what="the clock's timers held by the scheduler")

            await moved_to(infra, log, scheduler_clock, start_of_day(warning_day) - timedelta(hours=1))
            assert await scheduler_holds(scheduler, f"clock:{clock_id}:warning-5"), "the warning fired early"
            assert ((await http.get(f"/people/{person_id}/clocks")).json()[0]["status"], await mine("at_risk")) == (
                "on_track", [])

            await moved_to(infra, log, scheduler_clock, start_of_day(warning_day) + timedelta(seconds=1))
            await log.wait_for(of_clock(clock_id, "clock.warning"), 60)
            await poll_until(lambda: _has(clock_tasks(notifications, manager, team, person_id),
                                          [("clock_warning", "open")]), what="one warning task for the manager")
            assert ((await http.get(f"/people/{person_id}/clocks")).json()[0]["status"], await mine("at_risk")) == (
                "at_risk", ["at_risk"])

            breach_at = start_of_day(due + timedelta(days=1))
            await moved_to(infra, log, scheduler_clock, breach_at - timedelta(hours=1))
            assert await scheduler_holds(scheduler, f"clock:{clock_id}:breach"), "the breach fired on its due date"
            assert await mine("breached") == []

            await moved_to(infra, log, scheduler_clock, breach_at + timedelta(seconds=1))
            await log.wait_for(of_clock(clock_id, "clock.breached"), 60)
            await poll_until(lambda: _has(clock_tasks(notifications, manager, team, person_id),
                                          [("clock_breached", "open"), ("clock_warning", "completed")]),
                             what="one breach task, the warning settled")
            assert ((await http.get(f"/people/{person_id}/clocks")).json()[0]["status"], await mine("breached"),
                    await mine("at_risk")) == ("breached", ["breached"], [])
    assert [len(log.matching(of_clock(clock_id, kind))) for kind in ("clock.warning", "clock.breached")] == [1, 1]


async def test_R_CL6_a_clock_moved_straight_past_its_due_date_warns_then_breaches_once_each(
        infra, clocks, notifications, scheduler, scheduler_clock):
    """The scheduler's clock jumps from today to the day after the due date: both points fall due in one poll,
    the warning first; the manager has one warning task, settled by the one breach task (R-CL6)."""
    run = uuid.uuid4().hex[:8]
    person_id, team = str(uuid.uuid4()), f"children-response-{run}"
    manager = worker_auth(f"rm-{run}", ["response_manager"], [team], person_id=person_id)
    async with EventLog(infra.bootstrap, [topics.CLOCKS_EVENTS, topics.SCHEDULER_DUE]) as log:
        await publish(infra.bootstrap, topics.WORKFLOW_EVENTS,
                      [(person_id, step_created(person_id, str(uuid.uuid4()), team))])
        [started] = await log.wait_for(lambda s: s.type == "clock.started" and s.data["person_id"] == person_id, 60)
        clock_id = started.data["clock_id"]
        await poll_until(lambda: scheduler_holds(scheduler, f"clock:{clock_id}:breach"),
                         what="the clock's timers held by the scheduler")
        due = date.fromisoformat(started.data["due_date"])
        await moved_to(infra, log, scheduler_clock, start_of_day(due + timedelta(days=2)))
        await log.wait_for(of_clock(clock_id, "clock.breached"), 60)
        await poll_until(lambda: _has(clock_tasks(notifications, manager, team, person_id),
                                      [("clock_breached", "open"), ("clock_warning", "completed")]),
                         what="one warning task, settled by the one breach task")
    fired = [s.type for s in log.matching(lambda s: s.data.get("clock_id") == clock_id
                                          and s.type in ("clock.warning", "clock.breached"))]
    assert fired == ["clock.warning", "clock.breached"]


# a council's own timescale that stops counting while the worker waits for health's information (R-CL5): no seed
# timescale pauses, so this is the shape a council declares one in, in its own clocks file (CLOCKS_FILE)
PAUSING = "Test Timed Assessment"
HEALTH_INFORMATION = "Health information"
WAITING_FOR_HEALTH = "Waiting for information from health"
PAUSING_CLOCK = {
    "name": "assessment_waiting_for_health", "title": "Assessment within 20 working days, not counting the wait for"
    " health", "rule": "R-CL5",
    "starts": {"topic": "workflow.events", "type": "step.created", "match": {"step_type": PAUSING}, "key": "step_id",
               "team": "assignee.id"},
    "stops": [{"topic": "workflow.events", "type": "step.finished", "key": "step_id"}],
    "pauses": [{"topic": "workflow.events", "type": "request.raised", "match": {"name": HEALTH_INFORMATION},
                "key": "step_id", "reason": WAITING_FOR_HEALTH}],
    "resumes": [{"topic": "workflow.events", "type": "request.completed", "match": {"name": HEALTH_INFORMATION},
                 "key": "step_id"}],
    "length": {"working_days": 20}, "warnings": [5], "concerns": "team_manager",
}


@pytest.fixture
async def clocks_with_a_pause(services, infra, tmp_path) -> AsyncIterator[ServiceProcess]:
    """The clocks service on a council's own file: the shipped clocks and one that pauses. It stands in for the
    session's clocks process (one consumer group) during the test; the next test starts the shipped one again."""
    if "clocks" in services:
        services.pop("clocks").stop()
    shipped = yaml.safe_load(definitions.DEFAULT_FILE.read_text())
    council_file = tmp_path / "clocks.yaml"
    council_file.write_text(yaml.safe_dump({"version": 7, "clocks": [*shipped["clocks"], PAUSING_CLOCK]}))
    process = ServiceProcess("clocks", {**infra.env, "CLOCKS_FILE": str(council_file)}, infra.log_dir)
    process.start()
    try:
        await process.ready(120)
        yield process
    finally:
        process.stop()


def request_event(kind: str, person_id: str, step_id: str, request_id: str, at: datetime) -> bytes:
    """A request of a step raised or completed, as workflow publishes it, at the time given."""
    data = {"step_id": step_id, "person_id": person_id, "actor": "worker:sw", "version": 2, "request_id": request_id,
            "name": HEALTH_INFORMATION, "note": None}
    if kind == "request.raised":
        data |= {"step_type": PAUSING, "required": True, "to": {"kind": "team", "id": "health-liaison"},
                 "step_state": "in_progress"}
    return new_message(kind, "tessera/workflow", data, subject=person_id).model_copy(update={"time": at}).to_bytes()


async def test_R_CL5_a_clock_a_council_declares_pausable_says_why_and_since_when_and_resumes_with_its_due_date_moved(
        infra, clocks_with_a_pause, notifications, scheduler, scheduler_clock):
    """A pause in a council's clocks file, through the real broker, clocks service and scheduler: paused, the clock
    says why and since when and its timers are withdrawn; resumed two weeks later, its due date and warning move on
    by the working days it was paused, and it warns at the moved point, not the first one (R-CL5, R-CL6)."""
    run = uuid.uuid4().hex[:8]
    person_id, step_id, team, request_id = str(uuid.uuid4()), str(uuid.uuid4()), f"adult-area-{run}", str(uuid.uuid4())
    manager = worker_auth(f"tm-{run}", ["team_manager"], [team], person_id=person_id)
    created = new_message("step.created", "tessera/workflow", {
        "step_id": step_id, "workflow_id": str(uuid.uuid4()), "person_id": person_id, "step_type": PAUSING,
        "assignee": {"kind": "team", "id": team}, "state": "incoming", "priority": "normal", "pack_version": 1,
    }, subject=person_id)
    async with EventLog(infra.bootstrap, [topics.CLOCKS_EVENTS, topics.SCHEDULER_DUE]) as log, \
            httpx.AsyncClient(auth=manager, base_url=clocks_with_a_pause.url) as http:
        await publish(infra.bootstrap, topics.WORKFLOW_EVENTS, [(person_id, created.to_bytes())])
        [started] = await log.wait_for(lambda s: s.type == "clock.started" and s.data["person_id"] == person_id, 60)
        clock_id, first_due = started.data["clock_id"], DAYS.add(london_date(created.time), 20)
        assert (started.data["clock"], started.data["due_date"], started.data["definition_version"]) == (
            "assessment_waiting_for_health", first_due.isoformat(), 7)
        await poll_until(lambda: scheduler_holds(scheduler, f"clock:{clock_id}:warning-5"),
                         what="the warning timer held by the scheduler")

        paused_at = datetime.now(UTC)
        raised = request_event("request.raised", person_id, step_id, request_id, paused_at)
        await publish(infra.bootstrap, topics.WORKFLOW_EVENTS, [(person_id, raised)])
        await log.wait_for(of_clock(clock_id, "clock.paused"), 60)
        [clock] = (await http.get(f"/people/{person_id}/clocks")).json()
        assert (clock["state"], clock["paused"], clock["next_point"], clock["definition_version"]) == (
            "paused", {"since": paused_at.isoformat(), "reason": WAITING_FOR_HEALTH}, None, 7)
        assert [c["paused"] for c in (await http.get(f"/teams/{team}/clocks")).json()] == [clock["paused"]]
        await poll_until(lambda: _has(scheduler_holds(scheduler, f"clock:{clock_id}:warning-5"), False),
                         what="the paused clock's timers withdrawn")

        resumed_at = paused_at + timedelta(days=14)
        lost = DAYS.between(london_date(paused_at), london_date(resumed_at))
        moved_due = DAYS.add(first_due, lost)
        completed = request_event("request.completed", person_id, step_id, request_id, resumed_at)
        await publish(infra.bootstrap, topics.WORKFLOW_EVENTS, [(person_id, completed)])
        [resumed] = await log.wait_for(of_clock(clock_id, "clock.resumed"), 60)
        assert (resumed.data["paused_days"], resumed.data["due_date"]) == (lost, moved_due.isoformat())
        [clock] = (await http.get(f"/people/{person_id}/clocks")).json()
        assert (clock["state"], clock["paused"], clock["due_date"], clock["next_point"]) == (
            "running", None, moved_due.isoformat(),
            {"point": "warning-5", "at": start_of_day(DAYS.add(moved_due, -5)).isoformat()})

        await moved_to(infra, log, scheduler_clock, start_of_day(DAYS.add(first_due, -5)) + timedelta(hours=1))
        assert await scheduler_holds(scheduler, f"clock:{clock_id}:warning-5"), "warned at the point before the pause"
        await moved_to(infra, log, scheduler_clock, start_of_day(DAYS.add(moved_due, -5)) + timedelta(seconds=1))
        await log.wait_for(of_clock(clock_id, "clock.warning"), 60)
        assert [c["clock_id"] for c in (await http.get(f"/teams/{team}/clocks?status=at_risk")).json()] == [clock_id]
