"""Review trays (R-T8) and the locality team finder (R-A3) through the real broker and database."""

import urllib.parse
import uuid
from datetime import UTC, date, datetime, timedelta

import httpx

from services.allocation import domain
from shared import topics
from shared.envelope import new_message
from shared.events.scheduler import TimerDue
from shared.testing import poll_until, service_auth
from tests.allocation_harness import Staff, actor, referral, tray_args
from tests.factories import person_data, unique_seed


def _today() -> date:
    return datetime.now(UTC).astimezone(domain.LONDON).date()


def review_args(team: str, days: int = 365, **overrides):
    return {"team_id": team, "review_due": (_today() + timedelta(days=days)).isoformat(),
            "reason": "Respite booked from the contingency; nothing needed until the annual review", **overrides}


# --- R-T8 Review trays -------------------------------------------------------------------------


async def test_R_T8_review_tray_add_sets_a_timer_lists_by_review_date_and_remove_cancels_it(
        infra, allocation, out, alloc):
    s = Staff()
    atm = actor(f"atm-{s.suffix}", "assistant_team_manager", teams=(s.team,))
    later, _ = await referral(infra, out)
    sooner, _ = await referral(infra, out)
    first = (await alloc.send("review_tray.add", s.tm, person_id=later, **review_args(s.team, 365))).ok()
    added = first.of("review_tray.entry_added")
    assert first.types == ["review_tray.entry_added"] and added["review_due"] == review_args(s.team)["review_due"]
    [timer] = await alloc.wait_sent(topics.SCHEDULER_TIMERS, first.command, "timer.set")
    assert timer.data["key"] == f"review-tray:{added['entry_id']}" and timer.data["owner"] == "allocation"
    assert datetime.fromisoformat(timer.data["due_at"]) == domain.review_tray_due_at(
        date.fromisoformat(added["review_due"]))
    second = (await alloc.send("review_tray.add", atm, person_id=sooner, **review_args(s.team, 180))).ok()
    soon_id = second.of("review_tray.entry_added")["entry_id"]

    assert (await alloc.send("review_tray.add", s.tl, person_id=later, **review_args(s.team))).rejection[
        "code"] == "duplicate"
    sw = await alloc.send("review_tray.add", s.sw, person_id=later, **review_args(s.team))
    assert {r["code"] for r in sw.reasons} == {"role", "duplicate"}  # every reason at once
    past = await alloc.send("review_tray.add", s.tm, person_id=later, **review_args(s.team, -1))
    assert {r["code"] for r in past.reasons} == {"invalid", "duplicate"}

    async with httpx.AsyncClient(auth=service_auth(), base_url=allocation.url) as http:
        tray = (await http.get(f"/teams/{s.team}/review-tray")).json()
        assert [e["entry_id"] for e in tray["entries"]] == [soon_id, added["entry_id"]]  # by review date
        assert tray["total"] == 2 and not any(e["due"] or e["overdue"] for e in tray["entries"])
        assert tray["entries"][0]["days_until_due"] == 180
        assert (await http.get(f"/teams/{s.team}/review-tray", params={"due": "true"})).json()["entries"] == []
        assert (await http.get(f"/teams/{s.team}/tray")).json()["entries"] == []  # not on the PWT

        removed = (await alloc.send("review_tray.remove", atm, key=later, entry_id=added["entry_id"],
                                    reason="Moved to a care home out of county")).ok()
        assert removed.of("review_tray.entry_removed")["reason"] == "Moved to a care home out of county"
        [cancel] = await alloc.wait_sent(topics.SCHEDULER_TIMERS, removed.command, "timer.cancel")
        assert cancel.data["key"] == f"review-tray:{added['entry_id']}"
        again = await alloc.send("review_tray.remove", atm, entry_id=added["entry_id"], reason="again")
        assert again.rejection["code"] == "not_on_tray"
        unknown = await alloc.send("review_tray.remove", atm, entry_id=str(uuid.uuid4()), reason="x")
        assert unknown.rejection["code"] == "not_found"
        assert [e["entry_id"] for e in (await http.get(f"/teams/{s.team}/review-tray")).json()["entries"]] == [
            soon_id]
        gone = (await http.get(f"/review-tray/entries/{added['entry_id']}")).json()
        assert gone["removed_reason"] == "Moved to a care home out of county" and gone["version"] == 2


async def test_R_T8_timer_due_marks_the_entry_due_and_it_stays_in_the_review_tray(infra, allocation, out, alloc):
    s = Staff()
    person_id, _ = await referral(infra, out)
    added = (await alloc.send("review_tray.add", s.tl, person_id=person_id, **review_args(s.team, 30))).ok()
    entry_id = added.of("review_tray.entry_added")["entry_id"]
    [timer] = await alloc.wait_sent(topics.SCHEDULER_TIMERS, added.command, "timer.set")
    due = new_message(TimerDue.TYPE, "tessera/scheduler", {**timer.data, "fired_at": datetime.now(UTC).isoformat()},
                      subject=person_id)
    await alloc._producer.send_and_wait(topics.SCHEDULER_DUE, due.to_bytes(), key=person_id.encode())  # noqa: SLF001
    outcome = await alloc.outcome(due)
    assert outcome.types == ["review_tray.entry_due"]
    assert outcome.of("review_tray.entry_due")["entry_id"] == entry_id
    async with httpx.AsyncClient(auth=service_auth(), base_url=allocation.url) as http:
        [entry] = (await http.get(f"/teams/{s.team}/review-tray", params={"due": "true"})).json()["entries"]
        assert entry["entry_id"] == entry_id and entry["due"] and entry["due_marked_at"] and not entry["overdue"]
        assert (await http.get(f"/teams/{s.team}/review-tray", params={"due": "false"})).json()["entries"] == []
    # allocating the case takes it out of the Review tray and cancels the timer
    allocated = (await alloc.send("case.allocate", s.tm, person_id=person_id, worker_id=s.sw["worker_id"],
                                  team_id=s.team)).ok()
    assert "review_tray.entry_removed" in allocated.types
    assert allocated.of("case.allocated")["removed_review_entry_id"] == entry_id
    cancels = await alloc.wait_sent(topics.SCHEDULER_TIMERS, allocated.command, "timer.cancel")
    assert {c.data["key"] for c in cancels} == {f"review-tray:{entry_id}"}


async def test_R_T8_the_scheduler_fires_the_review_tray_timer_on_the_review_date(
        infra, allocation, scheduler, scheduler_clock, out, alloc):
    s = Staff()
    person_id, _ = await referral(infra, out)
    added = (await alloc.send("review_tray.add", s.tm, person_id=person_id, **review_args(s.team, 2))).ok()
    entry = added.of("review_tray.entry_added")
    key = f"review-tray:{entry['entry_id']}"
    async with httpx.AsyncClient(auth=service_auth(), timeout=10) as http:
        async def pending() -> bool:
            response = await http.get(f"{scheduler.url}/timers/{urllib.parse.quote(key, safe='')}")
            return response.status_code == 200
        await poll_until(pending, what="the scheduler has the Review tray timer")
        await scheduler_clock.move_to(domain.review_tray_due_at(date.fromisoformat(entry["review_due"]))
                                      + timedelta(minutes=1))
        [due] = await out.wait_for(lambda e: e.type == "review_tray.entry_due"
                                   and e.data.get("entry_id") == entry["entry_id"], 30)
        assert due.key == person_id
        [listed] = (await http.get(f"{allocation.url}/teams/{s.team}/review-tray")).json()["entries"]
        assert listed["due"] and listed["due_marked_at"]


async def test_R_T8_placing_on_the_planned_work_tray_takes_the_case_out_of_the_review_tray(
        infra, allocation, out, alloc):
    s = Staff()
    person_id, _ = await referral(infra, out)
    entry_id = (await alloc.send("review_tray.add", s.tm, person_id=person_id, **review_args(s.team))).ok().of(
        "review_tray.entry_added")["entry_id"]
    placed = (await alloc.send("tray.add", s.tm, person_id=person_id, **tray_args(s.team))).ok()
    assert placed.types == ["tray.entry_added", "message.requested", "review_tray.entry_removed"]
    refused = await alloc.send("review_tray.add", s.tm, person_id=person_id, **review_args(s.team))
    assert refused.rejection["code"] == "duplicate"  # waiting on the PWT
    async with httpx.AsyncClient(auth=service_auth(), base_url=allocation.url) as http:
        assert (await http.get(f"/teams/{s.team}/review-tray")).json()["entries"] == []
        assert (await http.get(f"/review-tray/entries/{entry_id}")).json()["removed_reason"] == (
            "placed on the Planned Work Tray")


# --- R-A3 locality team finder -----------------------------------------------------------------


async def test_R_A3_locality_team_finder_looks_up_a_postcode(allocation):
    async with httpx.AsyncClient(auth=service_auth(), base_url=allocation.url) as http:
        found = (await http.get("/localities/team", params={"postcode": "le1 1aa"})).json()
        assert (found["postcode"], found["team_id"], found["matched"]) == ("LE1 1AA", "locality-city", "LE1")
        assert (await http.get("/localities/team", params={"postcode": "LE11 2CD"})).json()["team_id"] == (
            "locality-north")
        assert (await http.get("/localities/team", params={"postcode": "LE15 6AA"})).json()["team_id"] is None
        assert (await http.get("/localities/team", params={"postcode": "LE1-1AA!"})).status_code == 422
        teams = (await http.get("/localities")).json()["teams"]
        assert "LE1" in teams["locality-city"]["areas"]


async def test_R_A3_allocating_or_placing_outside_the_persons_locality_team_is_refused(infra, allocation, out, alloc):
    s = Staff()
    tm = actor(f"tm-north-{s.suffix}", "team_manager", teams=(s.team, "locality-north"))  # a member of both
    # tests/factories.py's address: an LE1 postcode, in locality-city's area
    person_id, _ = await referral(infra, out)
    wrong = await alloc.send("case.allocate", tm, person_id=person_id, worker_id=s.sw["worker_id"],
                             team_id="locality-north")
    assert wrong.rejection["code"] == "wrong_locality" and "locality-city" in wrong.rejection["message"]
    assert wrong.reasons[0]["field"] == "team_id"
    on_tray = await alloc.send("tray.add", tm, person_id=person_id, **tray_args("locality-north"))
    assert on_tray.rejection["code"] == "wrong_locality"
    # a team outside the finder's table (here the test's own team) is not checked
    (await alloc.send("tray.add", tm, person_id=person_id, **tray_args(s.team))).ok()
    # a person living in locality-north's area is allocated by locality-north
    north = person_data(unique_seed(), address={"line1": "2 Example Road", "line2": None, "town": "Loughborough",
                                                "postcode": "LE11 2CD"})
    northerner, _ = await referral(infra, out, person=north)
    allocated = (await alloc.send("case.allocate", tm, person_id=northerner, worker_id=s.sw["worker_id"],
                                  team_id="locality-north")).ok()
    assert allocated.of("case.allocated")["team_id"] == "locality-north"
