"""R-W13 WB Case Monitoring as seed 000 says, through the broker with single-role workers: it is open
(Incomplete) from the moment the triage opens it; every worker involved with the person — by a step of the
person (the Trusted Assessor's team), a worker relationship recorded in allocation, or managing above teams
(the Senior Officer) — adds activity rows; each row keeps its author and nobody else changes or deletes it."""

import uuid

import httpx

from shared.testing import service_auth
from tests.allocation_harness import AllocationCommands, referral_seen
from tests.workflow_harness import (
    MONITORING,
    NEWEST_WORK,
    TA,
    Commands,
    Personas,
    actor,
    new_case,
)


def row(when: str, what: str, by: str | None = None) -> dict:
    return {"activity_datetime": when, "activity": what, **({"recorded_by": by} if by else {})}


async def test_R_W13_every_involved_worker_logs_case_monitoring_and_keeps_their_own_rows(
        infra, referrals, workflow, allocation, events, commands: Commands, alloc: AllocationCommands, db):
    p = Personas(suffix=f"-{uuid.uuid4().hex[:8]}")
    south = actor(f"gso-south{p.suffix}", "gso", teams=("wellbeing-service-south",))
    person_id, screening = await new_case(infra, events)

    async def ok(type_: str, who: dict, **data):
        return (await commands.send(type_, who, key=person_id, **data)).ok()

    async def refused(type_: str, who: dict, **data) -> set[str]:
        return {r["code"] for r in (await commands.send(type_, who, key=person_id, **data)).reasons}

    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        async def log_of(step_id: str) -> list[dict]:
            return (await http.get(f"/steps/{step_id}")).json()["values"].get("activity_log") or []

        # the hub screens and triages; the triage opens case monitoring at once and sends the TA to the North team
        triage = await commands.triage_opened(p.hub, person_id, screening)
        sent = await ok("step.add_next_action", p.hub, step_id=triage, action=MONITORING, send_immediately=True)
        monitoring = sent.of("step.created")["step_id"]
        await ok("step.add_next_action", p.hub, step_id=triage, action=TA,
                 assignee={"kind": "team", "id": "wellbeing-service-north"})
        await ok("step.finish", p.hub, step_id=triage)

        # "started prior to your involvement … Incomplete work, not Incoming work"
        assert sent.of("step.started")["step_id"] == monitoring
        assert (await http.get(f"/steps/{monitoring}")).json()["state"] == "incomplete"
        hub_work = (await http.get("/teams/wellbeing-service-hub/work", params=NEWEST_WORK)).json()
        assert monitoring in {s["step_id"] for s in hub_work["incomplete"]}
        assert monitoring not in {s["step_id"] for s in hub_work["incoming"]}

        # the Trusted Assessor (the North team holds the person's TA step) logs a call: the row is theirs
        call = row("2024-06-04T10:00:00", "Introductory call")
        await ok("step.save", p.ta, step_id=monitoring, values={"activity_log": [call]})
        mine = row("2024-06-04T10:00:00", "Introductory call", p.ta["worker_id"])
        assert await log_of(monitoring) == [mine]

        # a worker of another team, with no relationship and no step of the person, cannot log
        visit = row("2024-06-05T14:00:00", "Home visit")
        assert await refused("step.save", south, step_id=monitoring, values={"activity_log": [mine, visit]}) == {
            "not_assignee"}
        # once the Senior Officer records them as an involved worker (allocation), they log too
        await referral_seen(db, person_id)
        (await alloc.send("worker_relationship.add", p.so, key=person_id, person_id=person_id,
                          worker_id=south["worker_id"])).ok()
        await ok("step.save", south, step_id=monitoring, values={"activity_log": [mine, visit]})
        theirs = row("2024-06-05T14:00:00", "Home visit", south["worker_id"])
        # ... and the Senior Officer, managing above teams, logs their review
        review = row("2024-06-06T09:00:00", "Case reviewed in supervision")
        await ok("step.save", p.so, step_id=monitoring, values={"activity_log": [mine, theirs, review]})
        reviewed = {**review, "recorded_by": p.so["worker_id"]}
        assert await log_of(monitoring) == [mine, theirs, reviewed]

        # the hub, whose team holds the step, cannot change the TA's row, delete it, or sign a row as the TA
        changed = {**mine, "activity": "No call made"}
        assert await refused("step.save", p.hub, step_id=monitoring,
                             values={"activity_log": [changed, theirs, reviewed]}) == {"not_your_row"}
        assert await refused("step.save", p.hub, step_id=monitoring,
                             values={"activity_log": [theirs, reviewed]}) == {"not_your_row"}
        assert await refused("step.save", p.hub, step_id=monitoring, values={"activity_log": [
            mine, theirs, reviewed, {**row("2024-06-07T09:00:00", "Letter sent"), "recorded_by": p.ta["worker_id"]}]}
        ) == {"not_your_row"}
        # rows may be moved; the TA corrects their own row
        await ok("step.save", p.hub, step_id=monitoring, values={"activity_log": [reviewed, mine, theirs]})
        fixed = {**mine, "activity": "Introductory call; follow-up booked"}
        await ok("step.save", p.ta, step_id=monitoring, values={"activity_log": [reviewed, fixed, theirs]})
        assert await log_of(monitoring) == [reviewed, fixed, theirs]
        # an involved worker adds rows only: the completion details are the worker's who ends the involvement
        assert await refused("step.save", south, step_id=monitoring, values={
            "reason_involvement_ending": "Support plan outcomes achieved"}) == {"not_assignee"}
