"""A case on a Planned Work Tray from referral to allocation, every service a process (seed 004).

referral → tray (Amber) → the fortnightly review timer fires on the scheduler's test clock → a review
raises the RAG to Red → a month on the tray escalates it → allocation takes it off the tray, records the
worker relationship and moves the step to the worker's incoming work. Each worker holds one role of the team; where
the guide says someone is told, the item is in their inbox as they read it: the team phones the person who prefers
the phone, the team reviews when due and considers a safe and well check, the TM is told of the review, the
Strategic Service Manager of the escalation; the allocation settles the tray's tasks.
"""

import urllib.parse
from datetime import UTC, datetime, timedelta

import httpx

from shared import topics
from shared.testing import EventLog, ServiceProcess, poll_until, service_auth
from tests.allocation_harness import AllocationCommands, Staff, actor, referral, tray_args
from tests.integration.test_tasks import SSM_TEAM, task_of
from tests.scheduler_clock import SchedulerClock


async def timer_pending(http: httpx.AsyncClient, scheduler: ServiceProcess, key: str, due_at: str) -> None:
    """The scheduler has taken the timer.set (its own table is the only witness)."""
    async def pending() -> bool:
        response = await http.get(f"{scheduler.url}/timers/{urllib.parse.quote(key, safe='')}")
        return response.status_code == 200 and response.json().get("due_at", "")[:19] == due_at[:19]

    await poll_until(pending)


async def test_tray_journey_amber_review_due_red_escalated_then_allocated(
        infra, referrals, workflow, allocation, notifications, scheduler, scheduler_clock: SchedulerClock,
        out: EventLog, alloc: AllocationCommands):
    s = Staff()
    ssm = actor(f"ssm-{s.suffix}", "strategic_service_manager", teams=(SSM_TEAM,))
    person_id, step_id = await referral(infra, out)
    async with httpx.AsyncClient(auth=service_auth(), timeout=10) as http:
        # 1. a Team Manager places the case on the tray: Amber (moderate support x moderate risk)
        placed = (await alloc.send("tray.add", s.tm, person_id=person_id, **tray_args(s.team))).ok()
        entry = placed.of("tray.entry_added")
        entry_id = entry["entry_id"]
        assert entry["rag"] == "amber"
        await timer_pending(http, scheduler, f"tray-review:{entry_id}", entry["next_review_at"])
        # the person prefers the phone: the team is asked to call them (R-T4)
        await task_of(notifications, s.sw, "teams", s.team, person_id, "phone_call")

        # 2. fifteen days pass without a review: the fortnightly review falls due (R-T5)
        await scheduler_clock.move_to(datetime.now(UTC) + timedelta(days=15))
        [due] = await out.wait_for(lambda e: e.type == "tray.review_due" and e.data.get("entry_id") == entry_id, 30)
        assert due.key == person_id
        tray = (await http.get(f"{allocation.url}/teams/{s.team}/tray")).json()["entries"]
        assert [e["review_overdue"] for e in tray] == [True]
        await task_of(notifications, s.sw, "teams", s.team, person_id, "tray_review_due")

        # 3. the Team Leader reviews: the person could not be reached, risk is now high → Red
        reviewed = (await alloc.send("tray.review", s.tl, key=person_id, entry_id=entry_id, contacted=False,
                                     note="No answer; neighbour reports a fall", support="none",
                                     risk="high")).ok()
        assert reviewed.of("tray.entry_reviewed")["rag"] == "red"
        assert "safe_and_well_check.requested" in reviewed.types
        await task_of(notifications, s.sw, "teams", s.team, person_id, "safe_and_well_check")
        await task_of(notifications, s.sw, "teams", s.team, person_id, "tray_review_due", state="completed")
        await task_of(notifications, s.tm, "workers", s.tm["worker_id"], person_id, "case_note",
                      name="Case note: PWT")  # the TM who placed the case is told of the review (R-T5)
        esc_timer = next(t for t in await alloc.wait_sent(topics.SCHEDULER_TIMERS, reviewed.command, "timer.set",
                                                          count=2)
                         if t.data["key"] == f"tray-escalation:{entry_id}")
        await timer_pending(http, scheduler, f"tray-escalation:{entry_id}", esc_timer.data["due_at"])

        # 4. over a month on the tray while Red: escalated to the Strategic Service Manager (R-T6)
        await scheduler_clock.move_to(datetime.now(UTC) + timedelta(days=32))
        [escalated] = await out.wait_for(
            lambda e: e.type == "tray.entry_escalated" and e.data.get("entry_id") == entry_id, 30)
        assert escalated.data["reason"] == "red_over_a_month"
        [mdd] = await out.wait_for(lambda e: e.topic == topics.REFERRALS_COMMANDS and e.type == "case_note.add"
                                   and e.caused_by(escalated.body["causationid"]), 30)
        assert mdd.data["type"] == "Management Discussion / Decision"
        report = (await http.get(f"{allocation.url}/teams/{s.team}/tray/report")).json()
        assert report["by_rag"]["red"] == 1 and report["escalated"] == 1
        escalation = await task_of(notifications, ssm, "teams", SSM_TEAM, person_id, "escalation")

        # 5. a worker is free: allocation takes the case off the tray and moves the team's step (R-A3)
        await alloc.hand_to_team(person_id, step_id, s.team)
        allocated = (await alloc.send("case.allocate", s.tm, person_id=person_id, worker_id=s.sw["worker_id"],
                                      team_id=s.team)).ok()
        assert allocated.types == ["worker_relationship.added", "tray.entry_removed", "case.allocated"]
        [assign] = await alloc.wait_sent(topics.WORKFLOW_COMMANDS, allocated.command, "step.assign")
        await out.wait_for(lambda e: e.type == "step.assigned" and e.caused_by(assign.envelope.id), 30)
        work = (await http.get(f"{workflow.url}/workers/{s.sw['worker_id']}/work")).json()
        assert step_id in [w["step_id"] for w in work["incoming"]]
        mine = (await http.get(f"{allocation.url}/workers/{s.sw['worker_id']}/allocations")).json()
        assert [p["person_id"] for p in mine] == [person_id]
        assert (await http.get(f"{allocation.url}/teams/{s.team}/tray")).json()["entries"] == []
        settled = await task_of(notifications, ssm, "teams", SSM_TEAM, person_id, "escalation", state="completed")
        assert (settled["request_id"], settled["closed_reason"]) == (escalation["request_id"], "removed_from_tray")
        await task_of(notifications, s.sw, "teams", s.team, person_id, "safe_and_well_check", state="completed")

        async def timers_gone() -> bool:
            keys = (f"tray-review:{entry_id}", f"tray-escalation:{entry_id}")
            codes = [(await http.get(f"{scheduler.url}/timers/{urllib.parse.quote(k, safe='')}")).status_code
                     for k in keys]
            return codes == [404, 404]

        await poll_until(timers_gone)

        # 6. the "PWT" notes reached the person's record (R-T1, R-T5, R-P3)
        async def notes() -> list[dict]:
            found = (await http.get(f"{referrals.url}/people/{person_id}/notes")).json()
            return found if len(found) >= 3 else []

        titles = sorted((n["title"], n["type"]) for n in await poll_until(notes))
        assert ("PWT", "PWT") in titles and ("PWT", "Management Discussion / Decision") in titles
