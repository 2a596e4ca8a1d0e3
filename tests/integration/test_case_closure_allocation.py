"""R-A5 closure closes: allocation consumes `case.closed` — the person leaves every worker's Allocations and every
team's trays, their relationships show their end, exactly once. Through the real broker, database and services."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.allocation import domain
from shared import topics
from shared.envelope import Envelope, new_message
from shared.testing import EventLog, publish, worker_auth
from tests.allocation_harness import Staff, referral, referral_seen, tray_args


def _closed(person_id: str, closer: str, **data: Any) -> Envelope:
    """`case.closed` as the workflow emits it when a full case closure finishes (R-C5)."""
    body = {"person_id": person_id, "closed_by_step_id": str(uuid.uuid4()), "actor": closer,
            "workflow_ids": [str(uuid.uuid4())], **data}
    return new_message("case.closed", "tessera/workflow", body, subject=person_id, dataschema="case.closed/1")


def _reads_as(who: dict[str, Any], person_id: str | None = None) -> httpx.Auth:
    return worker_auth(who["worker_id"], who["roles"], who["team_ids"], person_id=person_id)


async def test_R_A5_R_A1_R_A2_R_T8_case_closed_takes_the_person_out_of_allocations_and_trays_once(
        infra, allocation, out: EventLog, alloc, db):
    s = Staff()
    gso = {"worker_id": f"gso-{s.suffix}", "roles": ["gso"], "team_ids": [s.team]}  # closes the case (R-C5)
    waiting, _ = await referral(infra, out)  # allocated, involved team, on the Planned Work Tray
    reviewed, _ = await referral(infra, out)  # in the team's Review tray
    await referral_seen(db, waiting)
    await referral_seen(db, reviewed)
    entry = (await alloc.send("tray.add", s.tm, person_id=waiting, **tray_args(s.team))).ok().of("tray.entry_added")
    # on the team's tray: its manager's grounds to allocate (R-A7)
    worker_rel = (await alloc.send("worker_relationship.add", s.tm, person_id=waiting, worker_id=s.sw["worker_id"])
                  ).ok().of("worker_relationship.added")
    org_rel = (await alloc.send("org_relationship.add", s.tm, person_id=waiting, team_id=s.team,
                                access_reason="The duty call asked for the team")).ok().of("org_relationship.added")
    review_due = (datetime.now(UTC).astimezone(domain.LONDON).date() + timedelta(days=365)).isoformat()
    review = (await alloc.send("review_tray.add", s.tl, person_id=reviewed, team_id=s.team, review_due=review_due,
                               reason="Annual review")).ok().of("review_tray.entry_added")

    async with httpx.AsyncClient(base_url=allocation.url) as http:
        async def allocations() -> list[str]:
            listed = await http.get(f"/workers/{s.sw['worker_id']}/allocations", auth=_reads_as(s.sw))
            assert listed.status_code == 200, listed.text
            return [p["person_id"] for p in listed.json()]

        async def trays() -> tuple[list[str], list[str]]:
            tray = (await http.get(f"/teams/{s.team}/tray", auth=_reads_as(s.tm))).json()
            review_tray = (await http.get(f"/teams/{s.team}/review-tray", auth=_reads_as(s.tm))).json()
            return [e["person_id"] for e in tray["entries"]], [e["person_id"] for e in review_tray["entries"]]

        assert await allocations() == [waiting]
        assert await trays() == ([waiting], [reviewed])

        closures = [_closed(waiting, gso["worker_id"]), _closed(reviewed, gso["worker_id"])]
        for closed in closures:
            await publish(infra.bootstrap, topics.WORKFLOW_EVENTS, [(closed.subject, closed.to_bytes())])
        by_waiting = await out.wait_for(lambda m: m.topic == topics.ALLOCATION_EVENTS
                                        and m.caused_by(closures[0].id), 30, 3)
        [by_reviewed] = await out.wait_for(lambda m: m.topic == topics.ALLOCATION_EVENTS
                                           and m.caused_by(closures[1].id), 30)
        assert sorted(m.type or "" for m in by_waiting) == [
            "org_relationship.ended", "tray.entry_removed", "worker_relationship.ended"]
        assert {(m.data["reason" if "entry" in (m.type or "") else "end_reason"], m.data["actor"], m.key)
                for m in by_waiting} == {("case closed", gso["worker_id"], waiting)}
        assert (by_reviewed.type, by_reviewed.data["entry_id"], by_reviewed.data["reason"]) == (
            "review_tray.entry_removed", review["entry_id"], "case closed")
        cancels = await out.wait_for(lambda m: m.topic == topics.SCHEDULER_TIMERS and m.type == "timer.cancel"
                                     and m.body["source"] == "tessera/allocation"  # clocks stops its own
                                     and m.caused_by(closures[0].id), 30, 2)
        assert {c.data["key"] for c in cancels} == {f"tray-review:{entry['entry_id']}",
                                                   f"tray-escalation:{entry['entry_id']}"}

        # what the worker and the team see now: nobody's allocation, on no tray; the relationships show their end
        assert await allocations() == []
        assert await trays() == ([], [])
        today = datetime.now(UTC).astimezone(domain.LONDON).date().isoformat()  # the test closes "now"
        kept = (await http.get(f"/people/{waiting}/relationships", params={"include_ended": "true"},
                               auth=_reads_as(s.tm, waiting))).json()
        [worker_ended] = kept["worker_relationships"]
        [org_ended] = kept["organisational_relationships"]
        for ended, made in ((worker_ended, worker_rel), (org_ended, org_rel)):
            assert (ended["relationship_id"], ended["end_date"], ended["end_reason"], ended["ended_by"]) == (
                made["relationship_id"], today, "case closed", gso["worker_id"])
            assert ended["ended_at"]
        assert not worker_ended["open"]

        # exactly once: the same case.closed delivered again has no second effect, even on a relationship opened
        # since; the next closure (a new message id, after it on the person's partition) is the one that ends it
        later = (await alloc.send("worker_relationship.add", s.tm, person_id=waiting, worker_id=s.sw["worker_id"],
                                  access_reason="Reopened after a new call")  # closed: no grounds left (R-A7)
                 ).ok().of("worker_relationship.added")
        again = _closed(waiting, gso["worker_id"])
        await publish(infra.bootstrap, topics.WORKFLOW_EVENTS,
                      [(waiting, closures[0].to_bytes()), (waiting, again.to_bytes())])
        [ended_later] = await out.wait_for(lambda m: m.topic == topics.ALLOCATION_EVENTS
                                           and m.caused_by(again.id), 30)
        assert (ended_later.type, ended_later.data["relationship_id"]) == (
            "worker_relationship.ended", later["relationship_id"])
        assert len(out.matching(lambda m: m.topic == topics.ALLOCATION_EVENTS
                                and m.caused_by(closures[0].id))) == 3
        assert await allocations() == []

    # an invalid case.closed is set aside with its error, naming no personal data; other types stay ignored
    broken = _closed("not-a-uuid", gso["worker_id"])
    async with EventLog(infra.bootstrap, [topics.dlq(topics.WORKFLOW_EVENTS)]) as dead:
        await publish(infra.bootstrap, topics.WORKFLOW_EVENTS, [("k", broken.to_bytes())])
        [letter] = await dead.wait_for(lambda m: m.body.get("id") == str(broken.id)
                                       and m.headers.get("dlq_service") == "allocation", 60)
    assert letter.headers["dlq_error"].startswith("invalid case.closed:")
    assert "not-a-uuid" not in letter.headers["dlq_error"]
