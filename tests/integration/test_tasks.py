"""Tasks (issue #22 §1, R-RQ8) through the real broker and database: each prompt another service emits is a task
in the inbox of the worker or team it is for, read as that worker; it closes when what it asks for is done, or when
its worker says so with a signed `task.complete`."""

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx

from services.notifications.domain import LONDON
from shared import topics
from shared.envelope import Envelope, new_message
from shared.testing import EventLog, poll_until, publish, service_auth, worker_auth
from tests.allocation_harness import Staff, actor, referral, tray_args
from tests.workflow_harness import SCREENING, Commands, Personas, new_case

SSM_TEAM = "ssm-adult-social-care"  # teams.yaml: a tray team in no service area escalates to this one



async def inbox(service: Any, who: dict[str, Any], kind: str, owner: str, **params: str) -> list[dict[str, Any]]:
    """The inbox as the desk reads it for this worker (their own token, one role, their team)."""
    auth = worker_auth(who["worker_id"], who["roles"], who["team_ids"])
    async with httpx.AsyncClient(auth=auth, base_url=service.url) as http:
        response = await http.get(f"/{kind}/{owner}/inbox", params={"kind": "task", **params})
    assert response.status_code == 200, response.text
    return response.json()


async def task_of(service: Any, who: dict[str, Any], kind: str, owner: str, person_id: str, code: str,
                  state: str = "open", name: str | None = None) -> dict[str, Any]:
    """Wait (polling the read endpoint, with a timeout) until the task is in that inbox in that state."""
    async def found() -> dict[str, Any] | None:
        return next((t for t in await inbox(service, who, kind, owner, state=state)
                     if t["person_id"] == person_id and t["task"]["code"] == code
                     and name in (None, t["name"])), None)
    return await poll_until(found, 30, f"{code} task {state} in the inbox of {kind} {owner}")


# --- the Planned Work Tray's prompts: allocation → referrals → notifications -------------------


async def test_R_RQ8_R_T5_R_T6_tray_prompts_reach_the_tmtl_the_team_and_the_ssm_and_close_when_done(
        infra, allocation, notifications, events: EventLog, signing_producer):
    s = Staff()
    ssm = actor(f"ssm-{s.suffix}", "strategic_service_manager", teams=(SSM_TEAM,))
    alloc = Commands(signing_producer, events, topics.ALLOCATION_COMMANDS, topics.ALLOCATION_EVENTS)
    tasks = Commands(signing_producer, events, topics.NOTIFICATIONS_COMMANDS, topics.NOTIFICATIONS_EVENTS)
    person_id, _ = await referral(infra, events)
    placed = (await alloc.send("tray.add", s.tm, key=person_id, person_id=person_id,
                               **tray_args(s.team, support="none", risk="high"))).ok()
    entry_id = placed.of("tray.entry_added")["entry_id"]
    review = (await alloc.send("tray.review", s.tl, key=person_id, entry_id=entry_id, contacted=False,
                               note="No answer by phone twice", increased_risk=True)).ok()

    # R-T5: the TM who placed the case is notified on the review's "PWT" note (the reviewing TL is its author)
    note = await task_of(notifications, s.tm, "workers", s.tm["worker_id"], person_id, "case_note",
                         name="Case note: PWT")
    assert (note["task"]["rule"], note["sent_by"]) == ("R-T5", s.tl["worker_id"])
    assert note["note"].startswith("A Planned Work Tray review was recorded") and note["step_id"] is None
    assert note["task"]["link"] == f"/people/{person_id}"
    # R-P3: and on the escalation's Management Discussion / Decision note
    await task_of(notifications, s.tm, "workers", s.tm["worker_id"], person_id, "case_note",
                  name="Case note: PWT escalation to Strategic Service Manager")
    assert [t["name"] for t in await inbox(notifications, s.tl, "workers", s.tl["worker_id"])
            if t["person_id"] == person_id] == []  # its author is not told of their own note
    # R-P3: a case note a worker writes, notifying the TL, is the TL's task to read it
    notes = Commands(signing_producer, events, topics.REFERRALS_COMMANDS, topics.REFERRALS_EVENTS)
    (await notes.send("case_note.add", s.sw, key=person_id, person_id=person_id, title="Call from the daughter",
                      type="Case Note", text="Her mother fell last night; no injury", notify_worker_ids=[
                          s.tl["worker_id"]], access_reason="Calling the people on our Planned Work Tray")).ok()
    written = await task_of(notifications, s.tl, "workers", s.tl["worker_id"], person_id, "case_note")
    assert (written["name"], written["task"]["rule"], written["sent_by"]) == (
        "Case note: Call from the daughter", "R-P3", s.sw["worker_id"])
    assert "fell" not in written["note"]  # the note's text stays on the record

    # R-T5: nobody could be reached: the tray's team is asked to consider a safe and well check
    check = await task_of(notifications, s.sw, "teams", s.team, person_id, "safe_and_well_check")
    assert (check["name"], check["to"]) == ("Consider a safe and well check", {"kind": "team", "id": s.team})
    # R-T6: increased risk flagged by a TL: the Strategic Service Manager team of the service area
    escalation = await task_of(notifications, ssm, "teams", SSM_TEAM, person_id, "escalation")
    assert escalation["note"].startswith("A Team Manager or Team Leader of Adult Social Care believes the person")

    # marked done only by the recipient team's worker, with the verified actor recorded
    refused = await tasks.send("task.complete", s.sw, key=person_id, task_id=escalation["request_id"])
    assert refused.rejection["code"] == "forbidden"
    done = (await tasks.send("task.complete", ssm, key=person_id, task_id=escalation["request_id"],
                             note="Discussed with the TL; allocate this week")).ok()
    assert done.of("task.completed")["by"] == ssm["worker_id"]
    closed = await task_of(notifications, ssm, "teams", SSM_TEAM, person_id, "escalation", state="completed")
    assert (closed["closed_by"], closed["closed_reason"]) == (ssm["worker_id"], "done") and closed["closed_at"]
    again = await tasks.send("task.complete", ssm, key=person_id, task_id=escalation["request_id"])
    assert again.rejection["code"] == "not_open"

    # R-T5: the next review falls due (the scheduler fires the timer the review set): a task for the tray's team
    [timer] = await events.wait_for(lambda m: m.type == "timer.set" and m.caused_by(review.command.id)
                                    and m.data["key"] == f"tray-review:{entry_id}")
    due = new_message("timer.due", "tessera/scheduler", {**timer.data, "fired_at": datetime.now(UTC).isoformat()},
                      subject=person_id)
    await publish(infra.bootstrap, topics.SCHEDULER_DUE, [(person_id, due.to_bytes())])
    review_due = await task_of(notifications, s.sw, "teams", s.team, person_id, "tray_review_due")
    assert (review_due["name"], review_due["overdue"]) == ("Planned Work Tray review due", False)
    assert datetime.fromisoformat(review_due["due_at"]) == datetime.fromisoformat(timer.data["due_at"])
    assert review_due["note"].startswith("This Red case on the Planned Work Tray is due its review")

    # a later review that reaches the person completes the review due and the safe and well check
    (await alloc.send("tray.review", s.tl, key=person_id, entry_id=entry_id, contacted=True,
                      note="Spoke to her; daughter staying this week")).ok()
    for code in ("safe_and_well_check", "tray_review_due"):
        settled = await task_of(notifications, s.sw, "teams", s.team, person_id, code, "completed")
        assert (settled["closed_by"], settled["closed_reason"]) == (s.tl["worker_id"], "reviewed")


# --- the workflow's prompts -------------------------------------------------------------------


def workflow_event(type_: str, person_id: str, **data: Any) -> Envelope:
    """An event as the workflow service emits it (signed as workflow by the test producer)."""
    return new_message(type_, "tessera/workflow", {"person_id": person_id, **data}, subject=person_id,
                       dataschema=f"{type_}/1")


async def test_R_RQ8_R_K8_R_K6_R_K3_R_S2_workflow_prompts_become_tasks_closed_when_their_step_or_request_is(
        infra, workflow, notifications, events: EventLog, commands, signing_producer):
    p = Personas(suffix=f"-{uuid.uuid4().hex[:8]}")
    person_id, screening = await new_case(infra, events)

    # R-K8: the steps still open when a death is recorded are the recording manager's tasks
    (await commands.send("person.record_death", p.so, key=person_id, person_id=person_id,
                         date_of_death=(datetime.now(UTC) - timedelta(days=2)).date().isoformat())).ok()
    death = await task_of(notifications, p.so, "workers", p.so["worker_id"], person_id, "open_step_after_death")
    assert (death["name"], death["step_id"], death["task"]["link"]) == (
        f"Person has died: close {SCREENING}", screening, f"/steps/{screening}")
    (await commands.send("step.start", p.hub, key=person_id, step_id=screening)).ok()
    (await commands.send("step.cancel", p.hub, key=person_id, step_id=screening, reason="The person has died")).ok()
    closed = await task_of(notifications, p.so, "workers", p.so["worker_id"], person_id, "open_step_after_death",
                           "completed")
    assert (closed["closed_by"], closed["closed_reason"]) == (p.hub["worker_id"], "step_cancelled")

    # R-K6, R-K3, R-S2 as the workflow and scheduler emit them
    sw = actor(f"sw-{uuid.uuid4().hex[:8]}", "social_worker", teams=("adult-front-door",))
    support, plan, request_id = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    yesterday = datetime.now(LONDON).date() - timedelta(days=1)  # a renewal left since yesterday is overdue
    renewal = workflow_event("step.renewal_due", person_id, step_id=support, actor="system:scheduler", version=3,
                             step_type="Professional Support", assignee={"kind": "worker", "id": sw["worker_id"]},
                             renewal_due_date=yesterday.isoformat(), renewal_number=1,
                             next_renewal_date=(yesterday + timedelta(days=28)).isoformat())
    finished = workflow_event(
        "step.finished", person_id, step_id=plan, actor=sw["worker_id"], version=5, workflow_id=str(uuid.uuid4()),
        step_type="Care and Support Plan", next_actions=[], warned_worker_ids=[sw["worker_id"]],
        warnings=[{"code": "no_future_work", "message": "… (R-K3)", "step_id": plan}])
    raised = workflow_event("request.raised", person_id, step_id=plan, actor="tm-x", version=2,
                            request_id=request_id, step_type="Care and Support Plan", name="Please review",
                            required=False, to={"kind": "worker", "id": sw["worker_id"]}, note=None,
                            step_state="incomplete", due_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat())
    await publish(infra.bootstrap, topics.WORKFLOW_EVENTS, [(person_id, e.to_bytes())
                                                            for e in (renewal, finished, raised)])
    [timer] = await events.wait_for(lambda s: s.type == "timer.set"
                                    and s.data.get("key") == f"request-overdue:{request_id}")
    due = new_message("timer.due", "tessera/scheduler", {**timer.data, "fired_at": datetime.now(UTC).isoformat()},
                      subject=person_id)
    await publish(infra.bootstrap, topics.SCHEDULER_DUE, [(person_id, due.to_bytes())])

    renew = await task_of(notifications, sw, "workers", sw["worker_id"], person_id, "renewal_due")
    assert (renew["name"], renew["step_id"], renew["overdue"]) == ("Renew or close Professional Support", support,
                                                                  True)
    assert datetime.fromisoformat(renew["due_at"]) == datetime.combine(yesterday + timedelta(days=1), time(0), LONDON)
    future = await task_of(notifications, sw, "workers", sw["worker_id"], person_id, "no_future_work")
    assert "one of the workflows must lead to a Future Work" in future["note"] and "R-K3" not in future["note"]
    overdue = await task_of(notifications, sw, "workers", sw["worker_id"], person_id, "request_overdue")
    assert (overdue["name"], overdue["task"]["rule"]) == ("Overdue: Please review", "R-S2")

    # R-A4: the Professional Support is reassigned: its renewal task goes with it to the new worker
    sw2 = actor(f"sw2-{uuid.uuid4().hex[:8]}", "social_worker", teams=("adult-front-door",))
    assigned = workflow_event("step.assigned", person_id, step_id=support, actor="tm-x", version=4,
                              previous={"kind": "worker", "id": sw["worker_id"]},
                              assignee={"kind": "worker", "id": sw2["worker_id"]}, state="incomplete")
    await publish(infra.bootstrap, topics.WORKFLOW_EVENTS, [(person_id, assigned.to_bytes())])
    moved = await task_of(notifications, sw2, "workers", sw2["worker_id"], person_id, "renewal_due")
    assert (moved["name"], moved["due_at"], moved["note"]) == (renew["name"], renew["due_at"], renew["note"])
    gone = await task_of(notifications, sw, "workers", sw["worker_id"], person_id, "renewal_due", "withdrawn")
    assert (gone["closed_by"], gone["closed_reason"]) == ("tm-x", "reassigned")

    created = workflow_event("step.created", person_id, step_id=str(uuid.uuid4()), workflow_id=str(uuid.uuid4()),
                             step_type="Future Work", assignee={"kind": "worker", "id": sw["worker_id"]},
                             state="future", priority="normal", due_date="2027-11-01", pack_version=1)
    completed = workflow_event("request.completed", person_id, step_id=plan, actor=sw["worker_id"], version=3,
                               request_id=request_id, name="Please review", note=None)
    closed_support = workflow_event("step.finished", person_id, step_id=support, actor=sw2["worker_id"], version=5,
                                    workflow_id=str(uuid.uuid4()), step_type="Professional Support", next_actions=[])
    await publish(infra.bootstrap, topics.WORKFLOW_EVENTS, [(person_id, e.to_bytes())
                                                            for e in (created, completed, closed_support)])
    for who, code, how in ((sw, "no_future_work", "future_work_created"), (sw, "request_overdue", "request_completed"),
                           (sw2, "renewal_due", "step_finished")):
        done = await task_of(notifications, who, "workers", who["worker_id"], person_id, code, "completed")
        assert done["closed_reason"] == how
    for who in (sw, sw2):
        assert await inbox(notifications, who, "workers", who["worker_id"], state="open") == []


async def test_R_RQ8_R_K11_a_signed_off_review_is_a_task_for_its_worker_to_send_it_to_the_person(
        infra, workflow, notifications, events: EventLog, commands, signing_producer):
    """Seed 001 §6.3.1 "Please always ensure that reviews are sent out": when the team manager signs off the
    social worker's Telephone Wellbeing Review through the real workflow service, the social worker — not the
    manager — has a task to send it to the person, which only they can mark done."""
    from tests.e2e.test_adult_children_journeys import Journey, People, twr_finished

    p = People()
    person_id, _ = await new_case(infra, events)
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        review = await twr_finished(Journey(commands, http, person_id), p)

    reminder = await task_of(notifications, p.sw, "workers", p.sw["worker_id"], person_id, "send_to_person")
    assert (reminder["name"], reminder["step_id"], reminder["task"]["rule"], reminder["task"]["link"]) == (
        "Send the Telephone Wellbeing Review to the person", review, "R-K11", f"/steps/{review}")
    assert "reviews are always sent out" in reminder["note"]
    assert not [t for t in await inbox(notifications, p.tm, "workers", p.tm["worker_id"])
                if t["task"]["code"] == "send_to_person"]

    tasks = Commands(signing_producer, events, topics.NOTIFICATIONS_COMMANDS, topics.NOTIFICATIONS_EVENTS)
    refused = await tasks.send("task.complete", p.tm, key=person_id, task_id=reminder["request_id"])
    assert refused.rejection["code"] == "forbidden"
    (await tasks.send("task.complete", p.sw, key=person_id, task_id=reminder["request_id"],
                      note="Posted to her and her daughter")).ok()
    sent = await task_of(notifications, p.sw, "workers", p.sw["worker_id"], person_id, "send_to_person", "completed")
    assert (sent["closed_by"], sent["closed_reason"]) == (p.sw["worker_id"], "done")


async def test_R_K11_a_review_waiting_with_the_team_at_sign_off_is_the_task_of_the_worker_who_sent_it(
        infra, workflow, notifications, events: EventLog, commands):
    """Seed 001 §6.3.1 "Please always ensure that reviews are sent out": the social worker sends their Telephone
    Wellbeing Review for sign-off and passes it to the team while it waits; when the team manager signs it off,
    the task to send it out is the social worker's, not an item in the team's inbox."""
    from tests.e2e.test_adult_children_journeys import NO_CARERS, OTHER_WORKFLOW, REVIEW_REQUEST, TWR, Journey, People

    p = People()
    person_id, _ = await new_case(infra, events)
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        j = Journey(commands, http, person_id)
        review = await j.new(TWR, p.sw)
        await j.ok("step.save", p.sw, step_id=review, values={
            **NO_CARERS, "review_date": "2026-01-05", "review_summary": "Reviewed by telephone",
            "annual_review_date": "2026-12-01"})
        await j.ok("step.add_next_action", p.sw, step_id=review, action=OTHER_WORKFLOW)
        request_id = await j.send_for_authorisation(review, REVIEW_REQUEST, p.sw, p.tm)
        await j.ok("step.assign", p.sw, step_id=review, to={"kind": "team", "id": p.team})
        await j.ok("request.complete", p.tm, request_id=request_id)
        finished = (await j.ok("step.authorise", p.tm, step_id=review)).of("step.finished")
    assert finished["send_to_person"] == {"kind": "worker", "id": p.sw["worker_id"]}
    reminder = await task_of(notifications, p.sw, "workers", p.sw["worker_id"], person_id, "send_to_person")
    assert (reminder["step_id"], reminder["task"]["rule"]) == (review, "R-K11")
    assert not [t for t in await inbox(notifications, p.tm, "teams", p.team) if t["task"]["code"] == "send_to_person"]


async def test_R_K6_a_professional_support_falls_due_for_renewal_through_the_scheduler_as_its_workers_task(
        infra, workflow, notifications, scheduler, scheduler_clock, events: EventLog, commands):
    """No event made up: the manager opens a Professional Support for a worker (seed 001 §3.3), workflow sets its
    4-weekly renewal with the scheduler, four weeks pass on the scheduler's clock, and the renewal is the worker's
    task, done when the manager closes the support."""
    run = uuid.uuid4().hex[:8]
    tm = actor(f"tm-{run}", "team_manager", teams=("adult-front-door",))
    sw = actor(f"sw-{run}", "social_worker", teams=("adult-front-door",))
    person_id, _ = await new_case(infra, events)
    opened = (await commands.send("step.start_new", tm, key=person_id, person_id=person_id,
                                  step_type="Professional Support",
                                  assignee={"kind": "worker", "id": sw["worker_id"]})).ok()
    support = opened.of("step.created")["step_id"]
    [renewal] = await events.wait_for(lambda s: s.type == "timer.set" and s.caused_by(opened.command.id)
                                      and s.data["owner"] == "workflow", 30)
    await scheduler_clock.move_to(datetime.fromisoformat(renewal.data["due_at"]) + timedelta(seconds=1))
    task = await task_of(notifications, sw, "workers", sw["worker_id"], person_id, "renewal_due")
    assert (task["name"], task["step_id"], task["task"]["rule"]) == (
        "Renew or close Professional Support", support, "R-K6")
    (await commands.send("step.cancel", tm, key=person_id, step_id=support, reason="Goals met")).ok()
    done = await task_of(notifications, sw, "workers", sw["worker_id"], person_id, "renewal_due", "completed")
    assert (done["closed_by"], done["closed_reason"]) == (tm["worker_id"], "step_cancelled")


async def test_R_K3_a_plan_ending_the_last_open_work_with_no_future_work_is_the_workers_and_the_signers_task(
        infra, workflow, notifications, events: EventLog, commands):
    """No event made up: a social worker's Care and Support Plan, the person's only open work, goes for sign-off with
    "other workflow continues" and nothing leading to a Future Work; the Team Manager authorises it, and the warning
    is a task in the worker's inbox and the manager's (seed 001 §3.3, §6.5)."""
    run = uuid.uuid4().hex[:8]
    sw = actor(f"sw-{run}", "social_worker", teams=("adult-review",))
    tm = actor(f"tm-{run}", "team_manager", teams=("adult-review",))
    person_id = str(uuid.uuid4())

    async def ok(type_: str, who: dict[str, Any], **data: Any) -> Any:
        return (await commands.send(type_, who, key=person_id, **data)).ok()

    plan = await commands.given_step(sw, person_id, "Care and Support Plan")
    await ok("step.save", sw, step_id=plan, values={
        "planned_services": [{"service": "Personal assistant (PA) support", "hourly_rate": 12.20,
                              "hours_per_week": 7}], "annual_review_date": "2025-06-03",
        "care_start_date": "2024-06-10", "plan_outcomes": "Stays independent at home"})
    raised = await ok("step.send_request", sw, step_id=plan, name="REQUIRED Please Authorise Support Plan",
                      to={"kind": "worker", "id": tm["worker_id"]})
    await ok("step.add_next_action", sw, step_id=plan, action="No further action – other workflow continues (NFA)")
    await ok("request.complete", tm, request_id=raised.of("request.raised")["request_id"])
    finished = (await ok("step.authorise", tm, step_id=plan)).of("step.finished")
    assert "no_future_work" in [w["code"] for w in finished["warnings"]]
    for who in (sw, tm):
        task = await task_of(notifications, who, "workers", who["worker_id"], person_id, "no_future_work")
        assert (task["name"], task["step_id"], task["task"]["rule"]) == (
            "Make sure a Future Work follows", plan, "R-K3")


async def test_R_S2_a_request_left_past_its_due_time_is_its_recipients_task_until_completed(
        infra, workflow, notifications, scheduler, scheduler_clock, events: EventLog, commands):
    """No event made up: the hub asks the Senior Officer to act on a screening; the request's due time passes on
    the scheduler's clock; the SO has an overdue task, done when they complete the request."""
    p = Personas(suffix=f"-{uuid.uuid4().hex[:8]}")
    person_id, screening = await new_case(infra, events)
    (await commands.send("step.start", p.hub, key=person_id, step_id=screening)).ok()
    raised = (await commands.send("step.send_request", p.hub, key=person_id, step_id=screening,
                                  name="(R) WB Please action", to={"kind": "worker", "id": p.so["worker_id"]},
                                  note="Please look at this referral")).ok().of("request.raised")
    key = f"request-overdue:{raised['request_id']}"
    [timer] = await events.wait_for(lambda s: s.type == "timer.set" and s.data.get("key") == key, 30)
    await scheduler_clock.move_to(datetime.fromisoformat(timer.data["due_at"]) + timedelta(seconds=1))
    task = await task_of(notifications, p.so, "workers", p.so["worker_id"], person_id, "request_overdue")
    assert (task["name"], task["step_id"], task["task"]["rule"]) == (
        "Overdue: (R) WB Please action", screening, "R-S2")
    (await commands.send("request.complete", p.so, key=person_id, request_id=raised["request_id"])).ok()
    done = await task_of(notifications, p.so, "workers", p.so["worker_id"], person_id, "request_overdue",
                         "completed")
    assert (done["closed_by"], done["closed_reason"]) == (p.so["worker_id"], "request_completed")
