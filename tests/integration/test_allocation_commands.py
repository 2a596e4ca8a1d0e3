"""Every allocation.commands command, accepted and refused, through the real broker and database."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from shared import topics
from shared.envelope import new_message
from shared.events.scheduler import TimerDue
from shared.testing import EventLog, service_auth
from tests.allocation_harness import AllocationCommands, Staff, referral, tray_args
from tests.workflow_harness import NEWEST_WORK, Commands, given_step


async def on_tray(infra, out: EventLog, alloc: AllocationCommands, s: Staff, **overrides):
    person_id, step_id = await referral(infra, out)
    outcome = (await alloc.send("tray.add", s.tm, person_id=person_id, **tray_args(s.team, **overrides))).ok()
    return person_id, step_id, outcome


# --- relationships (R-A1, R-A2) ----------------------------------------------------------------


async def test_R_A1_worker_relationship_puts_the_case_in_allocations_and_ending_removes_it_at_once(
        infra, allocation, out, alloc):
    s = Staff()
    person_id, _ = await referral(infra, out)
    added = (await alloc.send("worker_relationship.add", s.sw, person_id=person_id, worker_id=s.sw["worker_id"],
                              start_date="2024-06-01", access_reason="Allocated at the team meeting")).ok()
    rel = added.of("worker_relationship.added")
    assert rel["relationship"] == "Involved Worker" and added.seen[0].key == person_id
    async with httpx.AsyncClient(auth=service_auth(), base_url=allocation.url) as http:
        listed = (await http.get(f"/workers/{s.sw['worker_id']}/allocations")).json()
        assert [p["person_id"] for p in listed] == [person_id]
        dup = await alloc.send("worker_relationship.add", s.sw, person_id=person_id, worker_id=s.sw["worker_id"])
        # the open relationship is their grounds now (R-A6): the second is refused only as a duplicate
        assert dup.rejection["code"] == "duplicate"
        ended = (await alloc.send("worker_relationship.end", s.sw, key=person_id,
                                  relationship_id=rel["relationship_id"], end_date="2099-01-01",
                                  end_reason="Involvement ended")).ok()
        assert ended.types == ["worker_relationship.ended"]
        assert (await http.get(f"/workers/{s.sw['worker_id']}/allocations")).json() == []
        kept = (await http.get(f"/people/{person_id}/relationships", params={"include_ended": "true"})).json()
        [closed] = kept["worker_relationships"]
        assert (closed["ended_by"], closed["end_reason"]) == (s.sw["worker_id"], "Involvement ended")
        again = await alloc.send("worker_relationship.end", s.sw, relationship_id=rel["relationship_id"])
        assert again.rejection["code"] == "already_ended"


async def test_R_A2_org_relationship_shows_until_midnight_at_the_end_of_its_end_date(infra, allocation, out, alloc):
    s = Staff()
    person_id, _ = await referral(infra, out)
    today = datetime.now(UTC).date()
    first = (await alloc.send("org_relationship.add", s.tm, person_id=person_id, team_id=s.team,
                              start_date=str(today - timedelta(days=30)),
                              access_reason="The duty call asked for the team")).ok().of("org_relationship.added")
    other = (await alloc.send("org_relationship.add", s.tm, person_id=person_id, team_id=f"{s.team}-2",
                              start_date=str(today - timedelta(days=30)))).ok().of("org_relationship.added")
    (await alloc.send("org_relationship.end", s.tm, relationship_id=first["relationship_id"],
                      end_date=str(today + timedelta(days=1)), end_reason="Closing")).ok()
    (await alloc.send("org_relationship.end", s.tm, relationship_id=other["relationship_id"],
                      end_date=str(today - timedelta(days=2)), end_reason="Closed")).ok()
    async with httpx.AsyncClient(auth=service_auth(), base_url=allocation.url) as http:
        shown = (await http.get(f"/people/{person_id}/relationships")).json()
        every = (await http.get(f"/people/{person_id}/relationships", params={"include_ended": "true"})).json()
    assert [o["team_id"] for o in shown["organisational_relationships"]] == [s.team]
    assert len(every["organisational_relationships"]) == 2
    assert {o["ended_by"] for o in every["organisational_relationships"]} == {s.tm["worker_id"]}


# --- Planned Work Trays (R-T1..R-T7) -----------------------------------------------------------


async def test_R_T1_R_T4_tray_add_records_entry_note_message_and_review_timer(infra, allocation, out, alloc):
    s = Staff()
    person_id, _, outcome = await on_tray(infra, out, alloc, s, support="none", risk="low")
    assert outcome.types == ["tray.entry_added", "message.requested"]
    added = outcome.of("tray.entry_added")
    assert (added["rag"], added["priority"], added["complexity"]) == ("amber", "medium", "medium")
    told = outcome.of("message.requested")
    assert (told["channel"], told["reason"], told["team_id"]) == ("phone", "pwt_added", s.team)
    [note] = await alloc.wait_sent(topics.REFERRALS_COMMANDS, outcome.command, "case_note.add")
    assert note.data["title"] == "PWT" and note.data["person_id"] == person_id and note.key == person_id
    assert "No worker with capacity" in note.data["text"]
    [timer] = await alloc.wait_sent(topics.SCHEDULER_TIMERS, outcome.command, "timer.set")
    assert timer.data["key"] == f"tray-review:{added['entry_id']}" and timer.data["owner"] == "allocation"
    due = datetime.fromisoformat(timer.data["due_at"]) - datetime.fromisoformat(added["placed_at"])
    assert due == timedelta(days=14)  # R-T5 Amber: fortnightly
    async with httpx.AsyncClient(auth=service_auth(), base_url=allocation.url) as http:
        tray = (await http.get(f"/teams/{s.team}/tray")).json()
    assert [e["entry_id"] for e in tray["entries"]] == [added["entry_id"]]
    assert tray["entries"][0]["days_waiting"] == 0 and not tray["entries"][0]["review_overdue"]


async def test_R_T2_person_not_ordinarily_resident_is_refused(infra, allocation, out, alloc):
    s = Staff()
    person_id, _ = await referral(infra, out)
    update = new_message("person.update", "test-front-end", {
        "actor": s.tm, "person_id": person_id, "changes": {"ordinarily_resident": False},
        "access_reason": "Residence checked before placing on the tray"}, subject=person_id)  # not yet related
    await alloc._producer.send_and_wait(topics.REFERRALS_COMMANDS, update.to_bytes(),  # noqa: SLF001
                                        key=person_id.encode())
    await out.wait_for(lambda s_: s_.caused_by(update.id) and s_.type == "person.updated", 30)
    outcome = await alloc.send("tray.add", s.tm, person_id=person_id, **tray_args(s.team, urgent=True))
    assert outcome.rejection["code"] == "rule_broken"
    assert {r["code"] for r in outcome.reasons} == {"urgent", "not_ordinarily_resident"}


async def test_unknown_person_is_not_found(allocation, alloc):
    s = Staff()
    outcome = await alloc.send("tray.add", s.tm, person_id=str(uuid.uuid4()), **tray_args(s.team))
    assert outcome.rejection["code"] == "not_found"


async def test_undecodable_command_goes_to_the_dead_letter_topic(allocation, alloc, out):
    await alloc.publish_raw(b"{not json", key="garbage")
    [seen] = await out.wait_for(lambda s: s.topic == topics.dlq(topics.ALLOCATION_COMMANDS)
                                and s.value == b"{not json", 30)
    assert seen.headers["dlq_original_topic"] == topics.ALLOCATION_COMMANDS


async def test_R_T5_review_changes_rag_moves_timers_and_writes_a_pwt_note(infra, allocation, out, alloc):
    s = Staff()
    person_id, _, placed = await on_tray(infra, out, alloc, s)
    entry_id = placed.of("tray.entry_added")["entry_id"]
    outcome = (await alloc.send("tray.review", s.tl, key=person_id, entry_id=entry_id, contacted=False,
                                note="No answer; daughter says carer unwell", support="none", risk="high",
                                priority="high", expected_version=1)).ok()
    assert outcome.types == ["tray.entry_reviewed", "safe_and_well_check.requested"]
    reviewed = outcome.of("tray.entry_reviewed")
    assert (reviewed["previous_rag"], reviewed["rag"], reviewed["priority"], reviewed["version"]) == (
        "amber", "red", "high", 2)
    [note] = await alloc.wait_sent(topics.REFERRALS_COMMANDS, outcome.command, "case_note.add")
    assert note.data["title"] == "PWT" and s.tm["worker_id"] in note.data["notify_worker_ids"]
    timers = {t.data["key"]: t.data for t in await alloc.wait_sent(topics.SCHEDULER_TIMERS, outcome.command,
                                                                     "timer.set", count=2)}
    review_due = datetime.fromisoformat(timers[f"tray-review:{entry_id}"]["due_at"])
    assert review_due - datetime.fromisoformat(reviewed["next_review_at"]) == timedelta(0)
    placed_at = datetime.fromisoformat(placed.of("tray.entry_added")["placed_at"])
    assert datetime.fromisoformat(timers[f"tray-escalation:{entry_id}"]["due_at"]) > placed_at + timedelta(days=27)
    stale = await alloc.send("tray.review", s.tl, entry_id=entry_id, contacted=True, note="x", expected_version=1)
    assert stale.rejection["code"] == "conflict"


async def test_R_T6_increased_risk_flag_escalates_with_a_management_decision_note(infra, allocation, out, alloc):
    s = Staff()
    person_id, _, placed = await on_tray(infra, out, alloc, s)
    entry_id = placed.of("tray.entry_added")["entry_id"]
    outcome = (await alloc.send("tray.review", s.tm, key=person_id, entry_id=entry_id, contacted=True,
                                note="Falls increasing", increased_risk=True)).ok()
    assert outcome.of("tray.entry_escalated")["reason"] == "increased_risk"
    notes = await alloc.wait_sent(topics.REFERRALS_COMMANDS, outcome.command, "case_note.add", count=2)
    assert {n.data["type"] for n in notes} == {"PWT", "Management Discussion / Decision"}


async def test_R_T5_R_T6_timers_due_mark_review_overdue_and_escalate_red(infra, allocation, out, alloc):
    s = Staff()
    person_id, _, placed = await on_tray(infra, out, alloc, s, support="none", risk="high")
    added = placed.of("tray.entry_added")
    timers = {t.data["key"]: t for t in await alloc.wait_sent(topics.SCHEDULER_TIMERS, placed.command, "timer.set",
                                                                count=2)}
    for key in (f"tray-review:{added['entry_id']}", f"tray-escalation:{added['entry_id']}"):
        timer = timers[key].data
        due = new_message(TimerDue.TYPE, "tessera/scheduler", {**timer, "fired_at": datetime.now(UTC).isoformat()},
                          subject=person_id)
        await alloc._producer.send_and_wait(topics.SCHEDULER_DUE, due.to_bytes(), key=person_id.encode())  # noqa: SLF001
        outcome = await alloc.outcome(due)
        if key.startswith("tray-review"):
            assert outcome.types == ["tray.review_due"]
        else:
            assert outcome.of("tray.entry_escalated")["reason"] == "red_over_a_month"
            [note] = await alloc.wait_sent(topics.REFERRALS_COMMANDS, due, "case_note.add")
            assert note.data["type"] == "Management Discussion / Decision"
    async with httpx.AsyncClient(auth=service_auth(), base_url=allocation.url) as http:
        [entry] = (await http.get(f"/teams/{s.team}/tray", params={"review_overdue": "true"})).json()["entries"]
        report = (await http.get(f"/teams/{s.team}/tray/report")).json()
    assert entry["review_overdue"] and entry["escalated_at"]
    assert report["reviews_overdue"] == 1 and report["escalated"] == 1 and report["by_rag"]["red"] == 1


async def test_tray_remove_cancels_timers_and_a_second_remove_is_refused(infra, allocation, out, alloc):
    s = Staff()
    person_id, _, placed = await on_tray(infra, out, alloc, s, support="none", risk="high")
    entry_id = placed.of("tray.entry_added")["entry_id"]
    sw_refused = await alloc.send("tray.remove", s.sw, entry_id=entry_id, reason="x")
    assert sw_refused.rejection["code"] == "role"
    removed = (await alloc.send("tray.remove", s.tl, key=person_id, entry_id=entry_id,
                                reason="Moved out of area")).ok()
    assert removed.of("tray.entry_removed")["reason"] == "Moved out of area"
    cancels = await alloc.wait_sent(topics.SCHEDULER_TIMERS, removed.command, "timer.cancel", count=2)
    assert {c.data["key"] for c in cancels} == {f"tray-review:{entry_id}", f"tray-escalation:{entry_id}"}
    again = await alloc.send("tray.remove", s.tl, entry_id=entry_id, reason="again")
    assert again.rejection["code"] == "not_on_tray"


async def test_R_T7_tray_sorts_and_filters_and_reports_the_wait(infra, allocation, out, alloc, db):
    s = Staff()
    people = {}
    for name, args in {"red_low": dict(support="none", risk="high", priority="low"),
                       "amber_high": dict(support="moderate", risk="moderate", priority="high"),
                       "green_med": dict(support="full", risk="low", priority="medium", complexity="high")}.items():
        person_id, _, outcome = await on_tray(infra, out, alloc, s, **args)
        people[name] = outcome.of("tray.entry_added")["entry_id"]
    # the red case has waited 40 days (moved back in the table: the clock is real)
    await db.execute("UPDATE allocation.tray_entries SET placed_at = placed_at - interval '40 days'"
                     " WHERE entry_id = $1", uuid.UUID(people["red_low"]))
    async with httpx.AsyncClient(auth=service_auth(), base_url=allocation.url) as http:
        async def ids(**params) -> list[str]:
            body = (await http.get(f"/teams/{s.team}/tray", params=params)).json()
            return [e["entry_id"] for e in body["entries"]]

        assert await ids(sort="priority") == [people["amber_high"], people["green_med"], people["red_low"]]
        assert await ids(sort="rag") == [people["red_low"], people["amber_high"], people["green_med"]]
        assert (await ids(sort="-days_waiting"))[0] == people["red_low"]
        assert await ids(rag="red,amber", sort="-rag") == [people["amber_high"], people["red_low"]]
        assert await ids(complexity="high") == [people["green_med"]]
        assert await ids(past_target="true") == [people["red_low"]]
        assert await ids(min_days_waiting=1) == [people["red_low"]]
        assert (await http.get(f"/teams/{s.team}/tray", params={"sort": "shoe_size"})).status_code == 422
        report = (await http.get(f"/teams/{s.team}/tray/report")).json()
    assert report["total"] == 3 and report["by_rag"] == {"red": 1, "amber": 1, "green": 1}
    assert report["longest_wait_days"] == 40 and report["past_target"] == 1


# --- allocation (R-A3, R-A4) ------------------------------------------------------------------


async def test_R_A3_allocate_removes_from_tray_records_relationship_and_assigns_team_work(
        infra, allocation, workflow, workflow_db, out, alloc):
    """Only the allocating team's work moves: the person's Adult Safeguarding Triage stays in the safeguarding
    team's inbox (issue #22 §4)."""
    s = Staff()
    person_id, step_id, placed = await on_tray(infra, out, alloc, s, support="none", risk="high")
    entry_id = placed.of("tray.entry_added")["entry_id"]
    await alloc.hand_to_team(person_id, step_id, s.team)  # the hub passed the screening to the team
    safeguarding = await given_step(workflow_db, s.tm, person_id, "Adult Safeguarding Triage",
                                    {"kind": "team", "id": "adult-safeguarding"})
    outcome = (await alloc.send("case.allocate", s.tm, person_id=person_id, worker_id=s.sw["worker_id"],
                                team_id=s.team)).ok()
    assert outcome.types == ["worker_relationship.added", "tray.entry_removed", "case.allocated"]
    allocated = outcome.of("case.allocated")
    assert allocated["assigned_step_ids"] == [step_id] and allocated["removed_entry_id"] == entry_id
    [assign] = await alloc.wait_sent(topics.WORKFLOW_COMMANDS, outcome.command, "step.assign")
    assert assign.data["to"] == {"kind": "worker", "id": s.sw["worker_id"]} and assign.key == person_id
    await out.wait_for(lambda e: e.type == "step.assigned" and e.caused_by(assign.envelope.id), 30)
    cancels = await alloc.wait_sent(topics.SCHEDULER_TIMERS, outcome.command, "timer.cancel", count=2)
    assert {c.data["key"] for c in cancels} == {f"tray-review:{entry_id}", f"tray-escalation:{entry_id}"}
    async with httpx.AsyncClient(auth=service_auth()) as http:
        work = (await http.get(f"{workflow.url}/workers/{s.sw['worker_id']}/work")).json()
        assert [w["step_id"] for w in work["incoming"]] == [step_id]
        still = (await http.get(f"{workflow.url}/teams/adult-safeguarding/work", params=NEWEST_WORK)).json()
        assert safeguarding in {w["step_id"] for w in still["incoming"]}
        assert (await http.get(f"{allocation.url}/teams/{s.team}/tray")).json()["entries"] == []
        listed = (await http.get(f"{allocation.url}/workers/{s.sw['worker_id']}/allocations")).json()
    assert [p["person_id"] for p in listed] == [person_id]
    again = await alloc.send("case.allocate", s.tl, person_id=person_id, worker_id=s.sw["worker_id"],
                             team_id=s.team)
    assert again.rejection["code"] == "conflict"  # already involved
    # R-A3: a second worker is involved beside the first, with a relationship of their own
    (await alloc.send("case.allocate", s.tl, person_id=person_id, worker_id=s.sw2["worker_id"],
                      team_id=s.team)).ok()
    async with httpx.AsyncClient(auth=service_auth(), base_url=allocation.url) as http:
        rels = (await http.get(f"/people/{person_id}/relationships")).json()["worker_relationships"]
        assert sorted(r["worker_id"] for r in rels) == sorted([s.sw["worker_id"], s.sw2["worker_id"]])
        assert [p["person_id"] for p in (await http.get(f"/workers/{s.sw2['worker_id']}/allocations")).json()] == [
            person_id]


async def test_R_A3_allocating_leaves_due_future_work_with_the_team_whose_manager_hands_on_the_piece_of_work(
        infra, allocation, workflow, workflow_db, out, alloc):
    """R-A3, seed 001 §6.2.1: "NOT ... Future work to the worker but the actual piece of work they need to
    complete for example review planning". The team's due Future Work stays in its incoming work when the
    case is allocated; the team manager opens it and hands the worker the Review Planning from it."""
    s = Staff()
    person_id, step_id = await referral(infra, out)
    await alloc.hand_to_team(person_id, step_id, s.team)
    future_work = await given_step(workflow_db, s.tm, person_id, "Future Work", {"kind": "team", "id": s.team})
    outcome = (await alloc.send("case.allocate", s.tm, person_id=person_id, worker_id=s.sw["worker_id"],
                                team_id=s.team)).ok()
    assert outcome.of("case.allocated")["assigned_step_ids"] == [step_id]
    [assign] = await alloc.wait_sent(topics.WORKFLOW_COMMANDS, outcome.command, "step.assign")
    await out.wait_for(lambda e: e.type == "step.assigned" and e.caused_by(assign.envelope.id), 30)
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        assert [w["step_id"] for w in (await http.get(f"/teams/{s.team}/work")).json()["incoming"]] == [
            future_work]
        assert [w["step_id"] for w in (await http.get(f"/workers/{s.sw['worker_id']}/work")).json()[
            "incoming"]] == [step_id]
        wf = Commands(alloc._producer, out)
        (await wf.send("step.start", s.tm, key=person_id, step_id=future_work)).ok()
        (await wf.send("step.add_next_action", s.tm, key=person_id, step_id=future_work, action="Review Planning",
                       assignee={"kind": "worker", "id": s.sw["worker_id"]})).ok()
        created = (await wf.send("step.finish", s.tm, key=person_id, step_id=future_work)).ok().of("step.created")
        mine = (await http.get(f"/workers/{s.sw['worker_id']}/work")).json()["incoming"]
    assert created["step_type"] == "Review Planning"
    assert sorted(w["step_id"] for w in mine) == sorted([step_id, created["step_id"]])


async def test_R_A3_allocate_refused_for_a_worker_without_a_manager_role(infra, allocation, out, alloc):
    s = Staff()
    person_id, _ = await referral(infra, out)
    outcome = await alloc.send("case.allocate", s.sw, person_id=person_id, worker_id=s.sw["worker_id"],
                               team_id=s.team)
    assert outcome.rejection["code"] == "role"


async def test_R_A4_reassign_preview_then_move_work_and_allocation_by_the_teams_manager_only(
        infra, allocation, workflow, out, alloc):
    s = Staff()
    person_id, step_id = await referral(infra, out)
    await alloc.hand_to_team(person_id, step_id, s.team)
    allocated = (await alloc.send("case.allocate", s.tm, person_id=person_id, worker_id=s.sw["worker_id"],
                                  team_id=s.team)).ok()
    [assign] = await alloc.wait_sent(topics.WORKFLOW_COMMANDS, allocated.command, "step.assign")
    await out.wait_for(lambda e: e.type == "step.assigned" and e.caused_by(assign.envelope.id), 30)
    async with httpx.AsyncClient(auth=service_auth()) as http:
        preview = (await http.get(f"{allocation.url}/people/{person_id}/reassign-preview",
                                  params={"from": f"worker:{s.sw['worker_id']}"})).json()
        assert [p["step_id"] for p in preview["steps"]] == [step_id]
        assert len(preview["worker_relationships"]) == 1
        [made] = (await http.get(f"{allocation.url}/people/{person_id}/relationships")).json()[
            "worker_relationships"]
        assert made["team_id"] == s.team  # allocated for the team (R-A3)
        elsewhere = Staff()  # another team's manager may not move it
        refused = await alloc.send("case.reassign", elsewhere.tm, person_id=person_id,
                                   **{"from": {"kind": "worker", "id": s.sw["worker_id"]}},
                                   to={"kind": "worker", "id": elsewhere.sw["worker_id"]})
        [why] = refused.reasons
        assert why["code"] == "not_team_member" and s.team in why["message"]
        outcome = (await alloc.send("case.reassign", s.tm, person_id=person_id,
                                    **{"from": {"kind": "worker", "id": s.sw["worker_id"]}},
                                    to={"kind": "worker", "id": s.sw2["worker_id"]})).ok()
        assert outcome.types == ["worker_relationship.ended", "worker_relationship.added", "case.reassigned"]
        assert outcome.of("case.reassigned")["moved_step_ids"] == [step_id]
        [moved] = await alloc.wait_sent(topics.WORKFLOW_COMMANDS, outcome.command, "step.assign")
        await out.wait_for(lambda e: e.type == "step.assigned" and e.caused_by(moved.envelope.id), 30)
        work = (await http.get(f"{workflow.url}/workers/{s.sw2['worker_id']}/work")).json()
        assert [w["step_id"] for w in work["incoming"]] == [step_id]
        assert (await http.get(f"{allocation.url}/workers/{s.sw['worker_id']}/allocations")).json() == []
        nothing = await alloc.send("case.reassign", s.tm, person_id=person_id,
                                   **{"from": {"kind": "worker", "id": s.sw["worker_id"]}},
                                   to={"kind": "team", "id": s.team})
        assert nothing.rejection["code"] == "nothing_to_reassign"


# --- concurrency --------------------------------------------------------------------------------


async def test_100_concurrent_allocations_of_one_case_to_one_worker_exactly_one_wins(infra, allocation, out, alloc):
    s = Staff()
    person_id, _ = await referral(infra, out)
    sent = await asyncio.gather(*(
        alloc.publish("case.allocate", {"actor": s.tm, "person_id": person_id, "worker_id": f"w-{s.suffix}",
                                        "team_id": s.team}, key=person_id) for _ in range(100)))
    outcomes = await asyncio.gather(*(alloc.outcome(e, timeout=60) for e in sent))
    winners = [o for o in outcomes if not o.rejected]
    assert len(winners) == 1
    assert {o.rejection["code"] for o in outcomes if o.rejected} == {"conflict"}
    async with httpx.AsyncClient(auth=service_auth(), base_url=allocation.url) as http:
        relationships = (await http.get(f"/people/{person_id}/relationships")).json()["worker_relationships"]
    assert [r["worker_id"] for r in relationships] == [winners[0].of("case.allocated")["worker_id"]]
