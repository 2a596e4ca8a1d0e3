"""Person commands are checked against the actor's relationships and work (issue #11 §3; R-A1, R-A2, R-P5).

Through the real broker, referrals, workflow and allocation: referrals reads the person's relationships
from allocation and their steps from workflow, as the web does before it opens a record.
"""

import uuid
from typing import Any

import httpx

from shared import topics
from shared.envelope import new_message
from shared.testing import EventLog, Seen, poll_until, publish, service_auth
from tests.allocation_harness import AllocationCommands, Staff, actor, referral, tray_args
from tests.factories import referral_message, unique_referral


async def person_command(infra: Any, log: EventLog, type_: str, who: dict[str, Any], **data: Any) -> Seen:
    """Send one referrals command and return its single outcome."""
    key = str(data.get("person_id", ""))
    message = new_message(type_, "tessera/web", {"actor": who, **data}, subject=key)
    await publish(infra.bootstrap, topics.REFERRALS_COMMANDS, [(key, message.to_bytes())])
    [outcome] = await log.wait_for(lambda s: s.topic == topics.REFERRALS_EVENTS and s.caused_by(message.id), 30)
    return outcome


def note(person_id: str, title: str = "Home visit") -> dict[str, Any]:
    return {"person_id": person_id, "title": title, "type": "Visit", "text": "Seen at home; all well."}


async def notes_of(referrals: Any, person_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(auth=service_auth(), base_url=referrals.url) as http:
        return (await http.get(f"/people/{person_id}/notes")).json()


async def test_a_worker_without_relationship_or_work_is_refused_naming_the_person(
        infra, referrals, workflow, allocation, out, alloc):
    """Every person command of a stranger is refused `no_relationship`; a manager above teams may act."""
    person_id, _ = await referral(infra, out)
    stranger = actor(f"stranger-{uuid.uuid4().hex[:8]}", "social_worker", teams=("adult-front-door",))
    tm_elsewhere = actor(f"tm-{uuid.uuid4().hex[:8]}", "team_manager", teams=("adult-front-door",))
    hos = actor(f"hos-{uuid.uuid4().hex[:8]}", "head_of_service")
    other_id, _ = await referral(infra, out)
    link = await person_command(infra, out, "person_relationship.add", hos, person_id=person_id,
                                other_person_id=other_id, relationship="Neighbour", start_date="2026-01-05")
    assert link.type == "person_relationship.added"

    refused = [
        await person_command(infra, out, "case_note.add", stranger, **note(person_id)),
        await person_command(infra, out, "person.update", stranger, person_id=person_id,
                             changes={"phone": "0116 496 0123"}),
        await person_command(infra, out, "person_relationship.add", stranger, person_id=person_id,
                             other_person_id=other_id, relationship="Friend", start_date="2026-01-05"),
        await person_command(infra, out, "person_relationship.end", stranger,
                             relationship_id=link.data["relationship_id"], end_date="2026-02-01",
                             end_reason="Moved"),
        await person_command(infra, out, "case_note.add", tm_elsewhere, **note(person_id)),
    ]
    assert [(r.type, r.data["code"]) for r in refused] == [("command.rejected", "no_relationship")] * 5
    assert all(person_id in r.data["message"] for r in refused)
    assert refused[0].data["reasons"][0]["field"] == "person_id"
    assert await notes_of(referrals, person_id) == []

    by_hos = await person_command(infra, out, "case_note.add", hos, **note(person_id, "Management decision"))
    assert by_hos.type == "case_note.added"


async def test_R_A1_an_open_worker_relationship_allows_and_ending_it_refuses_at_once(
        infra, referrals, workflow, allocation, out, alloc: AllocationCommands):
    person_id, _ = await referral(infra, out)
    s = Staff()
    so = actor(f"so-{s.suffix}", "senior_officer")  # allocates for any team (R-A7)
    added = (await alloc.send("worker_relationship.add", so, person_id=person_id, worker_id=s.sw["worker_id"])
             ).ok().of("worker_relationship.added")

    allowed = await person_command(infra, out, "case_note.add", s.sw, **note(person_id))
    assert allowed.type == "case_note.added"
    assert [n["author"] for n in await notes_of(referrals, person_id)] == [f"worker:{s.sw['worker_id']}"]

    (await alloc.send("worker_relationship.end", so, key=person_id, relationship_id=added["relationship_id"],
                      end_reason="Case closed")).ok()
    after = await person_command(infra, out, "case_note.add", s.sw, **note(person_id, "Late note"))
    assert (after.type, after.data["code"]) == ("command.rejected", "no_relationship")


async def test_R_A2_the_teams_organisational_relationship_allows_a_member(
        infra, referrals, workflow, allocation, out, alloc: AllocationCommands):
    person_id, _ = await referral(infra, out)
    s = Staff()
    before = await person_command(infra, out, "person.update", s.sw2, person_id=person_id,
                                  changes={"preferred_contact": "email"})
    assert before.data["code"] == "no_relationship"
    (await alloc.send("org_relationship.add", s.tm, person_id=person_id, team_id=s.team,
                      access_reason="The duty call asked for the team")).ok()

    updated = await person_command(infra, out, "person.update", s.sw2, person_id=person_id,
                                   changes={"preferred_contact": "email"})
    assert updated.type == "person.updated" and updated.data["fields"] == ["preferred_contact"]


async def test_R_W3_work_for_the_person_allows_the_assignee_and_the_assigned_team(
        infra, referrals, workflow, allocation, out, alloc: AllocationCommands, commands):
    person_id, screening = await referral(infra, out)
    [created] = out.matching(lambda s: s.type == "step.created" and s.data.get("step_id") == screening)
    team = created.data["assignee"]
    assert team["kind"] == "team"
    member = actor(f"member-{uuid.uuid4().hex[:8]}", "gso", teams=(team["id"],))
    by_team = await person_command(infra, out, "case_note.add", member, **note(person_id))
    assert by_team.type == "case_note.added"

    worker = actor(f"worker-{uuid.uuid4().hex[:8]}", "social_worker", teams=("adult-front-door",))
    (await commands.send("step.assign", actor("so-x", "senior_officer"), key=person_id, step_id=screening,
                         to={"kind": "worker", "id": worker["worker_id"]})).ok()
    by_assignee = await person_command(infra, out, "case_note.add", worker, **note(person_id, "Assigned to me"))
    assert by_assignee.type == "case_note.added"


async def test_issue_21_whoever_assigned_the_persons_open_work_acts_on_the_record_without_a_reason(
        infra, referrals, workflow, allocation, out, alloc: AllocationCommands, commands):
    """A team manager hands their team's step to a worker: their team no longer holds it, yet they still act on
    the person they handed out without break-glass; a manager of the same team who did not is refused."""
    person_id, screening = await referral(infra, out)
    s = Staff()
    await alloc.hand_to_team(person_id, screening, s.team)
    (await commands.send("step.assign", s.tm, key=person_id, step_id=screening,
                         to={"kind": "worker", "id": s.sw["worker_id"]})).ok()
    by_assigner = await person_command(infra, out, "case_note.add", s.tm, **note(person_id, "Handed to Sam"))
    assert by_assigner.type == "case_note.added"
    colleague = actor(f"tm2-{s.suffix}", "team_manager", teams=(s.team,))
    refused = await person_command(infra, out, "case_note.add", colleague, **note(person_id, "Not mine"))
    assert (refused.type, refused.data["code"]) == ("command.rejected", "no_relationship")


async def test_a_break_glass_reason_allows_and_is_recorded_with_the_command(
        infra, referrals, workflow, allocation, out, alloc, db):
    person_id, _ = await referral(infra, out)
    stranger = actor(f"duty-{uuid.uuid4().hex[:8]}", "social_worker", teams=("adult-front-door",))
    blank = await person_command(infra, out, "case_note.add", stranger, **note(person_id), access_reason="   ")
    assert (blank.data["code"], blank.data["reasons"][0]["field"]) == ("invalid", "access_reason")

    reason = "Duty call from the daughter at 14:10"
    allowed = await person_command(infra, out, "case_note.add", stranger, **note(person_id), access_reason=reason)
    assert allowed.type == "case_note.added"
    assert reason not in allowed.value.decode()  # the reason is kept in the record, not in the event
    command_id = allowed.body["causationid"]
    async with httpx.AsyncClient(auth=service_auth(), base_url=referrals.url) as http:
        [kept] = (await http.get(f"/people/{person_id}/access-reasons")).json()
    assert (kept["reason"], kept["actor"], kept["command_type"], kept["message_id"]) == (
        reason, f"worker:{stranger['worker_id']}", "case_note.add", command_id)
    # the audit row of the change names the same actor and command: the reason is found by its causation id
    row = await poll_until(lambda: db.fetchrow(
        "SELECT actor_id, action FROM referrals.audit_log WHERE causation_id = $1", command_id))
    assert (row["actor_id"], row["action"]) == (stranger["worker_id"], "case_note.added")


async def test_R_A7_another_teams_manager_allocates_only_on_a_recorded_reason_kept_by_allocation(
        infra, referrals, workflow, allocation, out, alloc: AllocationCommands):
    """Adding another worker is an allocation (R-A7): a manager of the team holding the person's work may, a
    manager of another team is refused `not_team_member` naming the holding team, unless they give a reason,
    which allocation keeps and shows at GET /people/{id}/access-reasons (issue #21)."""
    person_id, screening = await referral(infra, out)
    s = Staff()
    await alloc.hand_to_team(person_id, screening, s.team)
    elsewhere = actor(f"tm-{s.suffix}-south", "team_manager", teams=(f"{s.team}-south",))
    refused = await alloc.send("worker_relationship.add", elsewhere, person_id=person_id, worker_id=s.sw["worker_id"])
    [why] = refused.reasons
    assert (why["code"], why["field"]) == ("not_team_member", "worker_id") and s.team in why["message"]
    async with httpx.AsyncClient(auth=service_auth(), base_url=allocation.url) as http:
        assert (await http.get(f"/people/{person_id}/access-reasons")).json() == []
        reason = "Covering the north team's allocations this week"
        added = (await alloc.send("worker_relationship.add", elsewhere, person_id=person_id,
                                  worker_id=s.sw["worker_id"], access_reason=reason)).ok()
        [kept] = (await http.get(f"/people/{person_id}/access-reasons")).json()
    assert (kept["reason"], kept["actor"], kept["command_type"], kept["team_ids"], kept["message_id"]) == (
        reason, f"worker:{elsewhere['worker_id']}", "worker_relationship.add", [f"{s.team}-south"],
        str(added.command.id))
    (await alloc.send("worker_relationship.add", s.tm, person_id=person_id, worker_id=s.sw2["worker_id"])).ok()


async def test_a_reason_given_to_record_a_death_is_kept_by_workflow(
        infra, referrals, workflow, allocation, out, commands):
    """A death recorded by a worker with no grounds, on a reason (break-glass, issue #21 §6): workflow keeps the
    reason with who, which command and when, shown at GET /people/{id}/access-reasons."""
    person_id, _ = await referral(infra, out)
    stranger = actor(f"duty-{uuid.uuid4().hex[:8]}", "social_worker", teams=("adult-front-door",))
    reason = "The GP phoned the duty line about the death"
    message = new_message("person.record_death", "tessera/web", {
        "actor": stranger, "person_id": person_id, "date_of_death": "2026-01-05", "access_reason": reason},
        subject=person_id)
    await publish(infra.bootstrap, topics.WORKFLOW_COMMANDS, [(person_id, message.to_bytes())])
    [recorded] = await out.wait_for(lambda e: e.topic == topics.WORKFLOW_EVENTS and e.caused_by(message.id)
                                    and e.type == "person.death_recorded", 30)
    assert reason not in recorded.value.decode()
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        [kept] = (await http.get(f"/people/{person_id}/access-reasons")).json()
    assert (kept["reason"], kept["actor"], kept["command_type"], kept["message_id"]) == (
        reason, f"worker:{stranger['worker_id']}", "person.record_death", str(message.id))


async def test_allocation_unavailable_holds_the_command_until_it_answers_never_allowing_blind(
        infra, referrals, workflow, allocation, out, alloc: AllocationCommands):
    """Unreadable relationships are transient: the command waits (retried) and is decided once allocation is back.

    Intake is no command and goes on meanwhile.
    """
    person_id, _ = await referral(infra, out)
    s = Staff()
    so = actor(f"so-{s.suffix}", "senior_officer")  # allocates for any team (R-A7)
    (await alloc.send("worker_relationship.add", so, person_id=person_id, worker_id=s.sw["worker_id"])).ok()
    retries_before = _unavailable_retries(referrals)
    allocation.kill()
    try:
        message = new_message("case_note.add", "tessera/web", {"actor": s.sw, **note(person_id)}, subject=person_id)
        await publish(infra.bootstrap, topics.REFERRALS_COMMANDS, [(person_id, message.to_bytes())])
        await poll_until(lambda: _more_retries(referrals, retries_before + 2), 30, "the access check retried")
        await referral_accepted_meanwhile(infra, out)
        assert out.matching(lambda e: e.caused_by(message.id)) == []
        assert await notes_of(referrals, person_id) == []
    finally:
        allocation.start()
        await allocation.ready()
    [outcome] = await out.wait_for(lambda e: e.topic == topics.REFERRALS_EVENTS and e.caused_by(message.id), 60)
    assert outcome.type == "case_note.added"


def _unavailable_retries(referrals: Any) -> int:
    return sum(1 for line in referrals.log_text().splitlines()
               if "transient failure, retrying" in line and "Unavailable" in line)


async def _more_retries(referrals: Any, at_least: int) -> bool:
    return _unavailable_retries(referrals) >= at_least


async def referral_accepted_meanwhile(infra: Any, log: EventLog) -> None:
    message = referral_message(unique_referral())
    await publish(infra.bootstrap, topics.REFERRALS_INTAKE, [(None, message.to_bytes())])
    await log.wait_for(lambda s: s.caused_by(message.id) and s.type == "referral.accepted", 30)


async def test_R_T1_a_person_on_the_teams_tray_may_be_noted_by_its_workers_and_no_longer_once_removed(
        infra, referrals, workflow, allocation, out, alloc: AllocationCommands):
    """The desk lets a team's workers open a person waiting on their tray; referrals now agrees, through
    allocation's GET /people/{id}/trays, and refuses again once the case has left the tray."""
    person_id, _ = await referral(infra, out)
    s = Staff()
    refused = await person_command(infra, out, "case_note.add", s.sw, **note(person_id))
    assert refused.data["code"] == "no_relationship"
    entry = (await alloc.send("tray.add", s.tm, person_id=person_id, **tray_args(s.team))).ok().of("tray.entry_added")
    async with httpx.AsyncClient(auth=service_auth(), base_url=allocation.url) as http:
        trays = (await http.get(f"/people/{person_id}/trays")).json()
    assert trays == [{"tray": "planned_work", "entry_id": entry["entry_id"], "team_id": s.team}]

    allowed = await person_command(infra, out, "case_note.add", s.sw, **note(person_id, "Called while waiting"))
    assert allowed.type == "case_note.added"

    (await alloc.send("tray.remove", s.tm, entry_id=entry["entry_id"], reason="Allocated elsewhere")).ok()
    again = await person_command(infra, out, "case_note.add", s.sw, **note(person_id))
    assert again.data["code"] == "no_relationship"
