"""Person records, relationships and case notes through referrals.commands (R-P1..R-P3).

The acting social worker is allocated to each person first (R-A1): person commands are checked against
the actor's relationships (issue #11 §3, tests/integration/test_person_access.py).
"""

import httpx

from shared import topics
from shared.testing import EventLog, ServiceProcess, publish, service_auth
from tests.allocation_harness import AllocationCommands
from tests.factories import (
    actor,
    command_message,
    person_data,
    referral_message,
    unique_referral,
    unique_seed,
    valid_nhs_number,
)


async def new_person(infra, events: EventLog, alloc: AllocationCommands) -> str:
    """A person through intake, with the acting social worker's own worker relationship (R-A1)."""
    message = referral_message(unique_referral())
    await publish(infra.bootstrap, topics.REFERRALS_INTAKE, [(None, message.to_bytes())])
    [accepted] = await events.wait_for(lambda s: s.caused_by(message.id) and s.type == "referral.accepted")
    person_id = accepted.data["person_id"]
    worker = actor()
    (await alloc.send("worker_relationship.add", worker, person_id=person_id, worker_id=worker["worker_id"],
                      access_reason="Allocated at the team meeting")).ok()  # no grounds yet (R-A6)
    return person_id


async def command(infra, events: EventLog, type_: str, data: dict, subject: str | None = None):
    """Send a command and return its one outcome."""
    message = command_message(type_, data, subject=subject)
    await publish(infra.bootstrap, topics.REFERRALS_COMMANDS, [(subject, message.to_bytes())])
    [outcome] = await events.wait_for(lambda s: s.topic == topics.REFERRALS_EVENTS and s.caused_by(message.id))
    return outcome


async def test_R_P1_person_update_changes_the_record_and_says_who_changed_what(
        infra, referrals: ServiceProcess, allocation, events, alloc):
    person_id = await new_person(infra, events, alloc)
    changes = {"phone": "0116 496 0999", "gp": {"practice": "Example Surgery"},
               "financial_assessment": {"weekly_contribution": "99999"}, "legal_status": ["Section 117 MHA"]}
    outcome = await command(infra, events, "person.update", {"person_id": person_id, "changes": changes}, person_id)
    assert outcome.type == "person.updated"
    assert outcome.data["fields"] == ["financial_assessment", "gp", "legal_status", "phone"]
    assert outcome.data["actor"] == "worker:w-social-1"
    assert "0116 496 0999" not in outcome.value.decode()  # values stay in the record
    async with httpx.AsyncClient(auth=service_auth(), base_url=referrals.url) as http:
        person = (await http.get(f"/people/{person_id}")).json()
        history = (await http.get(f"/people/{person_id}/history")).json()
    assert person["phone"] == "0116 496 0999"
    assert person["financial_assessment"]["weekly_contribution"] == "99999"
    assert person["version"] == 2 and person["updated_by"] == "worker:w-social-1"
    assert history[-1]["fields"] == ["financial_assessment", "gp", "legal_status", "phone"]
    assert history[-1]["actor"] == "worker:w-social-1"


async def test_person_update_names_every_field_at_fault(infra, referrals, allocation, events, alloc):
    person_id = await new_person(infra, events, alloc)
    changes = {"nhs_number": "1234567890", "favourite_colour": "blue", "date_of_birth": "yesterday",
               "classes": ["wizard"]}
    outcome = await command(infra, events, "person.update", {"person_id": person_id, "changes": changes}, person_id)
    assert outcome.type == "command.rejected"
    assert outcome.data["code"] == "invalid"
    fields = {r["field"] for r in outcome.data["reasons"]}
    assert {"changes.favourite_colour", "changes.date_of_birth", "changes.classes"} <= fields


async def test_R_P4_an_invalid_nhs_number_is_never_stored(infra, referrals, allocation, events, alloc):
    person_id = await new_person(infra, events, alloc)
    outcome = await command(infra, events, "person.update",
                            {"person_id": person_id, "changes": {"nhs_number": "9434765918"}}, person_id)
    assert outcome.data["code"] == "invalid_nhs_number"
    assert outcome.data["reasons"][0]["field"] == "changes.nhs_number"


async def test_an_nhs_number_of_another_person_is_refused(infra, referrals, allocation, events, alloc):
    first, second = await new_person(infra, events, alloc), await new_person(infra, events, alloc)
    async with httpx.AsyncClient(auth=service_auth(), base_url=referrals.url) as http:
        taken = (await http.get(f"/people/{first}")).json()["nhs_number"]
    outcome = await command(infra, events, "person.update",
                            {"person_id": second, "changes": {"nhs_number": taken}}, second)
    assert outcome.data["code"] == "conflict"


async def test_a_stale_expected_version_is_a_conflict(infra, referrals, allocation, events, alloc):
    person_id = await new_person(infra, events, alloc)
    first = await command(infra, events, "person.update",
                          {"person_id": person_id, "changes": {"phone": "01"}, "expected_version": 1}, person_id)
    stale = await command(infra, events, "person.update",
                          {"person_id": person_id, "changes": {"phone": "02"}, "expected_version": 1}, person_id)
    assert first.type == "person.updated"
    assert (stale.type, stale.data["code"]) == ("command.rejected", "conflict")


async def test_R_P2_a_main_carer_relationship_is_recorded_and_ended(infra, referrals, allocation, events, alloc):
    person_id, carer_id = await new_person(infra, events, alloc), await new_person(infra, events, alloc)
    added = await command(infra, events, "person_relationship.add", {
        "person_id": carer_id, "other_person_id": person_id, "relationship": "Daughter (main carer)",
        "is_main_carer": True, "start_date": "2026-01-05"}, carer_id)
    assert added.type == "person_relationship.added" and added.data["is_main_carer"] is True
    ended = await command(infra, events, "person_relationship.end", {
        "relationship_id": added.data["relationship_id"], "end_date": "2026-06-30",
        "end_reason": "Moved away"}, carer_id)
    assert ended.type == "person_relationship.ended"
    again = await command(infra, events, "person_relationship.end", {
        "relationship_id": added.data["relationship_id"], "end_date": "2026-07-01", "end_reason": "x"}, carer_id)
    assert again.data["code"] == "conflict"
    async with httpx.AsyncClient(auth=service_auth(), base_url=referrals.url) as http:
        person = (await http.get(f"/people/{person_id}")).json()
    [link] = person["relationships"]
    assert (link["person_id"], link["end_date"]) == (carer_id, "2026-06-30")


async def test_a_relationship_to_nobody_is_refused(infra, referrals, allocation, events, alloc):
    person_id = await new_person(infra, events, alloc)
    outcome = await command(infra, events, "person_relationship.add", {
        "person_id": person_id, "other_person_id": person_id, "relationship": "Self", "start_date": "2026-01-01"},
        person_id)
    assert outcome.type == "command.rejected"
    assert [(r["code"], r["field"]) for r in outcome.data["reasons"]] == [("invalid", "other_person_id")]


async def test_R_P3_case_note_is_kept_with_author_and_notified_workers(
        infra, referrals, allocation, events, alloc):
    person_id = await new_person(infra, events, alloc)
    outcome = await command(infra, events, "case_note.add", {
        "person_id": person_id, "title": "PWT", "type": "PWT", "text": "Placed on the tray; called the person.",
        "notify_worker_ids": ["w-tm-1"]}, person_id)
    assert outcome.type == "case_note.added"
    assert outcome.data["notify_worker_ids"] == ["w-tm-1"]
    assert "called the person" not in outcome.value.decode()
    async with httpx.AsyncClient(auth=service_auth(), base_url=referrals.url) as http:
        [note] = (await http.get(f"/people/{person_id}/notes")).json()
    assert (note["title"], note["author"], note["text"]) == ("PWT", "worker:w-social-1",
                                                             "Placed on the tray; called the person.")


async def test_every_command_ends_in_one_outcome_even_when_repeated_or_unknown(
        infra, referrals, allocation, events, alloc):
    person_id = await new_person(infra, events, alloc)
    note = command_message("case_note.add", {"person_id": person_id, "title": "t", "type": "Visit", "text": "x"},
                           subject=person_id)
    unknown = command_message("person.teleport", {"person_id": person_id}, subject=person_id)
    missing = command_message("case_note.add", {"person_id": person_id}, subject=person_id)
    await publish(infra.bootstrap, topics.REFERRALS_COMMANDS,
                  [(person_id, m.to_bytes()) for m in (note, note, unknown, missing)])
    [u] = await events.wait_for(lambda s: s.caused_by(unknown.id))
    [m] = await events.wait_for(lambda s: s.caused_by(missing.id))
    assert len(events.matching(lambda s: s.caused_by(note.id))) == 1
    assert u.data["code"] == "unknown_command"
    assert {r["field"] for r in m.data["reasons"]} == {"title", "type", "text"}


def test_factories_make_valid_people():
    assert person_data(unique_seed())["nhs_number"] != valid_nhs_number(unique_seed())
    assert actor()["roles"] == ["social_worker"]
