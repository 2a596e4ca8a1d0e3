"""The Planned Work Tray as its workers use it (issue #22 §3, seed 004), through the real broker and database.

Each worker holds one role in the tray's team. What they see is read as they read it: the tray from
allocation, the person's case notes from referrals, the task in a TM/TL's inbox from notifications.
"""

from datetime import datetime, timedelta
from typing import Any

import httpx

from services.allocation.domain import LONDON
from shared import topics
from shared.testing import poll_until, worker_auth
from tests.allocation_harness import AllocationCommands, Staff, referral, referral_seen, tray_args


async def tray_entry(allocation: Any, who: dict[str, Any], team: str, person_id: str) -> dict[str, Any] | None:
    """The person's entry on the team's tray, as a worker of the team reads it."""
    async with httpx.AsyncClient(auth=worker_auth(who["worker_id"], who["roles"], who["team_ids"]),
                                 base_url=allocation.url) as http:
        response = await http.get(f"/teams/{team}/tray")
    assert response.status_code == 200, response.text
    return next((e for e in response.json()["entries"] if e["person_id"] == person_id), None)


async def case_note(referrals: Any, who: dict[str, Any], person_id: str, title: str,
                    type_: str | None = None) -> dict[str, Any]:
    """Wait until the person's case notes, read as the worker, hold a note with this title (and type)."""
    auth = worker_auth(who["worker_id"], who["roles"], who["team_ids"], person_id=person_id)

    async def found() -> dict[str, Any] | None:
        async with httpx.AsyncClient(auth=auth, base_url=referrals.url) as http:
            response = await http.get(f"/people/{person_id}/notes")
        assert response.status_code == 200, response.text
        return next((n for n in response.json() if n["title"] == title and type_ in (None, n["type"])), None)
    return await poll_until(found, 30, f"case note {title!r}")


async def task_for(notifications: Any, who: dict[str, Any], person_id: str, name: str) -> dict[str, Any]:
    """Wait until the worker's own inbox, read as them, holds an open task about the person with this name."""
    auth = worker_auth(who["worker_id"], who["roles"], who["team_ids"])

    async def found() -> dict[str, Any] | None:
        async with httpx.AsyncClient(auth=auth, base_url=notifications.url) as http:
            response = await http.get(f"/workers/{who['worker_id']}/inbox", params={"kind": "task", "state": "open"})
        assert response.status_code == 200, response.text
        return next((t for t in response.json() if t["person_id"] == person_id and t["name"] == name), None)
    return await poll_until(found, 30, f"task {name!r} for {who['worker_id']}")


async def placed(infra: Any, out: Any, alloc: AllocationCommands, s: Staff, **overrides: Any) -> tuple[str, str]:
    person_id, _ = await referral(infra, out)
    added = (await alloc.send("tray.add", s.tm, person_id=person_id, **tray_args(s.team, **overrides))).ok()
    return person_id, added.of("tray.entry_added")["entry_id"]


async def test_R_T5_R_T3_a_social_worker_records_the_review_contact_with_a_rag_by_judgement_and_the_tmtl_get_tasks(
        infra, referrals, allocation, notifications, out, alloc):
    """R-T5: the team's social worker makes the check-in call and records it on a "PWT" note; the TM who placed
    the case and the TL the worker names each get a task to read it. R-T3: the worker rates the case Red against
    the matrix's Amber, with the reason, which the tray shows with who chose it."""
    s = Staff()
    person_id, entry_id = await placed(infra, out, alloc, s)
    review = (await alloc.send("tray.review", s.sw, key=person_id, entry_id=entry_id, contacted=True,
                               note="Spoke to her; managing but lonely", notify_worker_ids=[s.tl["worker_id"]],
                               rag_override="red", rag_override_reason="Lives alone and fell twice this month")).ok()
    assert review.of("tray.entry_reviewed")["actor"] == s.sw["worker_id"]

    entry = await tray_entry(allocation, s.sw, s.team, person_id)
    assert entry is not None
    assert (entry["rag"], entry["matrix_rag"], entry["rag_overridden"], entry["rag_overridden_by"]) == (
        "red", "amber", True, s.sw["worker_id"])
    assert entry["rag_override_reason"] == "Lives alone and fell twice this month"
    assert (entry["reviews"], entry["last_contacted"]) == (1, True)

    note = await case_note(referrals, s.sw, person_id, "PWT", "PWT")
    assert note["author"].removeprefix("worker:") == s.sw["worker_id"]
    assert "professional judgement: Lives alone and fell twice this month" in note["text"]
    for manager in (s.tm, s.tl):
        task = await task_for(notifications, manager, person_id, "Case note: PWT")
        assert (task["sent_by"], task["task"]["rule"]) == (s.sw["worker_id"], "R-T5")


async def test_R_T5_a_worker_moves_the_next_review_by_hand_then_the_tm_removes_the_case_with_a_decision_note(
        infra, referrals, allocation, out, alloc):
    """R-T5: the next review set by hand (worker absence) with the reason: the tray shows it, the review timer
    moves. Removal by the TM writes the Management Discussion / Decision note: who, why and when."""
    s = Staff()
    person_id, entry_id = await placed(infra, out, alloc, s)
    review_on = (datetime.now(LONDON) + timedelta(days=20)).date()
    moved = (await alloc.send("tray.set_next_review", s.sw, key=person_id, entry_id=entry_id,
                              next_review_on=review_on.isoformat(), reason="Allocated worker on leave")).ok()
    [timer] = [t for t in await alloc.wait_sent(topics.SCHEDULER_TIMERS, moved.command, "timer.set")
               if t.data["key"] == f"tray-review:{entry_id}"]
    assert datetime.fromisoformat(timer.data["due_at"]).astimezone(LONDON).date() == review_on
    entry = await tray_entry(allocation, s.tm, s.team, person_id)
    assert entry is not None
    assert datetime.fromisoformat(entry["next_review_at"]).astimezone(LONDON).date() == review_on
    assert (entry["next_review_reason"], entry["next_review_set_by"]) == ("Allocated worker on leave",
                                                                          s.sw["worker_id"])
    too_late = await alloc.send("tray.set_next_review", s.sw, key=person_id, entry_id=entry_id,
                                next_review_on=(review_on + timedelta(days=30)).isoformat(), reason="x")
    assert (too_late.rejection["code"], too_late.reasons[0]["field"]) == ("invalid", "next_review_on")

    (await alloc.send("tray.remove", s.tm, key=person_id, entry_id=entry_id,
                      reason="Daughter has arranged care; no assessment wanted now")).ok()
    assert await tray_entry(allocation, s.tm, s.team, person_id) is None
    note = await case_note(referrals, s.tm, person_id, "PWT removal")
    assert note["type"] == "Management Discussion / Decision"
    assert note["author"].removeprefix("worker:") == s.tm["worker_id"]
    assert f"by {s.tm['worker_id']} on " in note["text"]
    assert "Reason: Daughter has arranged care; no assessment wanted now" in note["text"]


async def test_R_T2_an_urgent_referral_is_placed_once_duty_records_the_urgent_actions_done(
        infra, referrals, allocation, out, alloc, db):
    """R-T2: refused while urgent; Duty's social worker records the urgent actions done (a case note says so);
    then the Team Manager places the case."""
    s = Staff()
    person_id, _ = await referral(infra, out, urgency="urgent")
    await referral_seen(db, person_id)
    refused = await alloc.send("tray.add", s.tm, person_id=person_id, **tray_args(s.team))
    assert refused.rejection["code"] == "urgent"
    not_duty = await alloc.send("urgent_actions.record", s.tm | {"roles": ["business_support"]}, person_id=person_id,
                                note="x")
    assert not_duty.rejection["code"] == "role"

    done = (await alloc.send("urgent_actions.record", s.sw, person_id=person_id,
                             note="Emergency respite booked; carer's GP informed")).ok()
    assert done.of("urgent_actions.recorded")["actor"] == s.sw["worker_id"]
    note = await case_note(referrals, s.sw, person_id, "Urgent actions done (Duty)")
    assert "Emergency respite booked" in note["text"]
    (await alloc.send("tray.add", s.tm, person_id=person_id, **tray_args(s.team))).ok()
    assert await tray_entry(allocation, s.tm, s.team, person_id) is not None
