"""Future Work through the real broker, database and scheduler (R-S1, R-K2): timers fire on the test clock."""

import uuid
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from services.workflow import domain
from shared import topics
from shared.commands.base import RuleBroken
from shared.testing import service_auth
from tests.workflow_harness import Commands, actor, new_case

FW = "Future Work"


def today() -> date:
    """The date in Europe/London, as the engine counts due dates."""
    return domain.london_date(datetime.now(UTC))


def team_and_manager() -> tuple[str, dict]:
    """A team and its manager, who opens and moves Future Work (seed 001 §6.2.1, R-W11)."""
    run = uuid.uuid4().hex[:8]
    team = f"adult-review-{run}"
    return team, actor(f"tm-{run}", "team_manager", teams=(team,))


async def future_work_due_tomorrow(commands: Commands, person_id: str, team: str, manager: dict) -> tuple[str, str]:
    """A Future Work the manager holds, finished into the next Future Work due tomorrow: (first, second) ids."""
    first = await commands.given_step(manager, person_id, FW)
    tomorrow = (today() + timedelta(days=1)).isoformat()
    (await commands.send("step.add_next_action", manager, key=person_id, step_id=first, action=FW,
                         assignee={"kind": "team", "id": team}, scheduled_date=tomorrow)).ok()
    finished = (await commands.send("step.finish", manager, key=person_id, step_id=first)).ok()
    created = finished.of("step.created")
    assert (created["state"], created["due_date"], created["step_type"]) == ("future", tomorrow, FW)
    return first, created["step_id"]


async def test_R_S1_future_work_waits_then_falls_due_as_incoming_work_when_the_scheduler_clock_gets_there(
        infra, workflow, scheduler, scheduler_clock, events, commands):
    team, manager = team_and_manager()
    person_id, _ = await new_case(infra, events)
    _, second = await future_work_due_tomorrow(commands, person_id, team, manager)
    due_on = today() + timedelta(days=1)
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        work = (await http.get(f"/teams/{team}/work")).json()
        assert [(s["step_id"], s["due_date"]) for s in work["future"]] == [(second, due_on.isoformat())]
        assert work["incoming"] == []
        step = (await http.get(f"/steps/{second}")).json()
        assert step["timers"] == [{"key": f"future-work:{second}", "kind": "future-work",
                                   "due_at": domain.start_of_day(due_on).isoformat()}]

        await scheduler_clock.move_to(domain.start_of_day(due_on) + timedelta(seconds=1))
        [due] = await events.wait_for(
            lambda s: s.topic == topics.WORKFLOW_EVENTS and s.type == "step.due" and s.data["step_id"] == second,
            timeout=30)
        assert due.key == person_id
        assert (due.data["state"], due.data["due_date"], due.data["assignee"]) == (
            "incoming", due_on.isoformat(), {"kind": "team", "id": team})

        work = (await http.get(f"/teams/{team}/work")).json()
        assert [s["step_id"] for s in work["incoming"]] == [second] and work["future"] == []
        step = (await http.get(f"/steps/{second}")).json()
    assert step["state"] == "incoming" and step["timers"] == []
    assert [h["what"] for h in step["history"]][-1] == "step.due"


async def test_R_K2_a_second_future_work_is_refused_naming_the_first(infra, workflow, events, commands):
    team, manager = team_and_manager()
    person_id, screening = await new_case(infra, events)
    _, second = await future_work_due_tomorrow(commands, person_id, team, manager)
    with pytest.raises(RuleBroken) as caught:  # the domain on the service's database
        await commands.given_step(manager, person_id, FW)
    [reason] = caught.value.reasons
    assert (reason.code, reason.step_id) == ("one_future_work", second)
    assert second in reason.message and "R-K2" in reason.message
    # nor is Future Work on anyone's Start > New (R-W12): the manager allocates from the one there is
    refused = await commands.send("step.start_new", manager, key=person_id, person_id=person_id, step_type=FW)
    assert refused.rejection["code"] == "not_startable"
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        steps = (await http.get(f"/people/{person_id}/steps")).json()
    assert [s["state"] for s in steps if s["step_type"] == FW] == ["finished", "future"]


async def test_R_S1_rescheduling_future_work_to_today_makes_it_incoming_and_withdraws_its_timer(
        infra, workflow, events, commands):
    team, manager = team_and_manager()
    person_id, _ = await new_case(infra, events)
    _, second = await future_work_due_tomorrow(commands, person_id, team, manager)
    moved = (await commands.send("step.reschedule", manager, key=person_id, step_id=second,
                                 due_date=today().isoformat())).ok()
    assert moved.of("step.rescheduled")["state"] == "incoming"
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        step = (await http.get(f"/steps/{second}")).json()
    assert step["state"] == "incoming" and step["timers"] == []
