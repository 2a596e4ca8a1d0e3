"""Every workflow.commands command, accepted and refused, through the real broker and database."""

import uuid

import httpx

from shared import topics
from shared.testing import EventLog, service_auth
from tests.factories import referral_data
from tests.workflow_harness import (
    MONITORING,
    NEWEST_WORK,
    SCREENING,
    SCREENING_VALUES,
    TRIAGE,
    Commands,
    Personas,
    new_case,
)

NORTH = {"kind": "team", "id": "wellbeing-service-north"}


def personas() -> Personas:
    return Personas(suffix=f"-{uuid.uuid4().hex[:8]}")


async def started_screening(infra, events, commands: Commands, p: Personas) -> tuple[str, str]:
    person_id, step_id = await new_case(infra, events)
    (await commands.send("step.start", p.hub, key=person_id, step_id=step_id)).ok()
    return person_id, step_id


async def test_R_W2_R_W5_first_step_prepopulated_started_saved_with_history(infra, workflow, events, commands):
    p = personas()
    person_id, step_id = await new_case(infra, events)
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        hub = (await http.get("/teams/wellbeing-service-hub/work", params=NEWEST_WORK)).json()
        assert step_id in [s["step_id"] for s in hub["incoming"]]
        started = (await commands.send("step.start", p.hub, key=person_id, step_id=step_id, expected_version=1)).ok()
        assert started.types == ["step.started"]
        assert started.seen[0].key == person_id
        saved = (await commands.send("step.save", p.hub, step_id=step_id, values={"referral_source": "Self"},
                                     completed_sections=[2])).ok()
        assert saved.of("step.saved")["fields"] == ["referral_source"]
        step = (await http.get(f"/steps/{step_id}")).json()
    assert step["state"] == "incomplete" and step["version"] == 3
    assert step["values"]["last_name"].startswith("Testperson")  # blue cog, read from referrals (R-W5)
    assert step["values"]["referral_source"] == "Self" and step["completed_sections"] == [2]
    # R-W5 (yellow cog): what the referral itself said, copied into the screening's Referral Details
    referral = referral_data()
    assert step["values"]["referral_date"] == "2024-05-01"  # received 09:30 BST on 1 May
    assert (step["values"]["reason_for_referral"], step["values"]["consent_to_share"]) == (
        referral["reason"], True)
    assert referral["referrer"]["name"] in step["values"]["referrer_details"]
    assert step["form"]["sections"][0]["fields"][0]["cog"] == "blue"
    assert {a["action"] for a in step["next_actions"]} >= {TRIAGE}
    assert [h["what"] for h in step["history"]] == ["step.created", "prepopulated", "step.started", "step.saved"]
    assert all(h["actor"] and h["time"] for h in step["history"])
    assert step["history"][2]["actor"] == p.hub["worker_id"]


async def test_undecodable_command_goes_to_the_dead_letter_topic(infra, workflow, commands):
    dlq = topics.dlq(topics.WORKFLOW_COMMANDS)
    async with EventLog(infra.bootstrap, [dlq]) as dead:
        await commands.publish_raw(b"not json", key="garbage")
        [seen] = await dead.wait_for(lambda s: s.value == b"not json", 30)
    assert seen.headers["dlq_original_topic"] == topics.WORKFLOW_COMMANDS


async def test_R_W4_finish_rejected_with_every_missing_field_and_no_next_action(infra, workflow, events, commands):
    p = personas()
    person_id, step_id = await started_screening(infra, events, commands, p)
    outcome = await commands.send("step.finish", p.hub, key=person_id, step_id=step_id)
    assert outcome.rejection["code"] == "rule_broken"
    missing = {r["field"] for r in outcome.reasons if r["code"] == "missing_field"}
    assert {"eligible_for_wellbeing_service", "screening_rationale"} <= missing
    # prefilled from the referral (R-W5): its date, and who referred (the test's contact centre feed, §7)
    assert not {"referral_date", "referral_source"} & missing
    assert "no_next_action" in {r["code"] for r in outcome.reasons}
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        blockers = (await http.get(f"/steps/{step_id}/blockers")).json()
    assert blockers["can_finish"] is False
    assert {b.get("field") for b in blockers["blockers"]} >= missing


async def test_R_W5_refresh_prepopulated(infra, workflow, events, commands):
    p = personas()
    person_id, step_id = await started_screening(infra, events, commands, p)
    outcome = (await commands.send("step.refresh_prepopulated", p.hub, key=person_id, step_id=step_id)).ok()
    assert outcome.types == ["step.prepopulated_refreshed"]


async def test_R_NA3_finish_creates_the_next_step_as_incoming_work_with_provenance(infra, workflow, events, commands):
    p = personas()
    person_id, step_id = await started_screening(infra, events, commands, p)
    await commands.send("step.save", p.hub, key=person_id, step_id=step_id, values=SCREENING_VALUES)
    added = (await commands.send("step.add_next_action", p.hub, key=person_id, step_id=step_id, action=TRIAGE)).ok()
    assert added.of("next_action.added")["next_action_id"]
    finished = (await commands.send("step.finish", p.hub, key=person_id, step_id=step_id)).ok()
    assert finished.types == ["step.finished", "step.created"]
    created = finished.of("step.created")
    assert (created["step_type"], created["state"], created["assignee"]) == (
        TRIAGE, "incoming", {"kind": "team", "id": "wellbeing-service-hub"})
    assert created["provenance"]["from_step_id"] == step_id
    assert created["provenance"]["action"] == TRIAGE and created["provenance"]["pack_version"] == 1
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        step = (await http.get(f"/steps/{created['step_id']}")).json()
        steps = (await http.get(f"/people/{person_id}/steps")).json()
    assert step["values"]["first_name"].startswith("Testfirst")
    assert [s["state"] for s in steps] == ["finished", "incoming"]


async def test_R_NA_send_immediately_assign_add_form_remove_and_notification(infra, workflow, events, commands):
    p = personas()
    person_id, screening = await started_screening(infra, events, commands, p)
    await commands.send("step.save", p.hub, key=person_id, step_id=screening, values=SCREENING_VALUES)
    await commands.send("step.add_next_action", p.hub, key=person_id, step_id=screening, action=TRIAGE)
    triage = (await commands.send("step.finish", p.hub, key=person_id, step_id=screening)).of("step.created")["step_id"]
    assigned = (await commands.send("step.assign", p.so, key=person_id, step_id=triage,
                                    to={"kind": "worker", "id": p.hub["worker_id"]})).ok()
    assert assigned.of("step.assigned")["assignee"] == {"kind": "worker", "id": p.hub["worker_id"]}
    await commands.send("step.start", p.hub, key=person_id, step_id=triage)
    sent = (await commands.send("step.add_next_action", p.hub, key=person_id, step_id=triage, action=MONITORING,
                                send_immediately=True)).ok()
    assert sent.types == ["next_action.added", "next_action.sent", "step.created", "step.started"]  # R-W13
    refused = await commands.send("step.add_next_action", p.hub, key=person_id, step_id=triage,
                                  action="WB Trusted Assessment and Support Planning",
                                  assignee={"kind": "worker", "id": "x"}, priority="urgent")
    assert {r["code"] for r in refused.reasons} == {"assignee_kind", "note_required"}
    added = (await commands.send("step.add_next_action", p.hub, key=person_id, step_id=triage,
                                 action="WB Involvement Ended (NFA)")).of("next_action.added")
    removed = (await commands.send("step.remove_next_action", p.hub, key=person_id, step_id=triage,
                                   next_action_id=added["next_action_id"])).ok()
    assert removed.types == ["next_action.removed"]
    form = await commands.send("step.add_form", p.hub, key=person_id, step_id=triage, form="Nope")
    assert form.rejection["code"] == "unknown_form"
    note = (await commands.send("step.send_notification", p.hub, key=person_id, step_id=triage,
                                name="(R) WB Please action", to=NORTH))
    assert note.rejection["code"] == "wrong_kind"


async def test_R_RQ2_open_request_blocks_finish_until_the_recipient_completes_it(infra, workflow, events, commands):
    p = personas()
    person_id, step_id = await started_screening(infra, events, commands, p)
    raised = (await commands.send("step.send_request", p.hub, key=person_id, step_id=step_id,
                                  name="(R) WB Please action", to=NORTH, note="Please visit")).ok()
    request = raised.of("request.raised")
    assert (request["to"], request["note"], request["step_type"]) == (NORTH, "Please visit", SCREENING)
    await commands.send("step.save", p.hub, key=person_id, step_id=step_id, values=SCREENING_VALUES)
    await commands.send("step.add_next_action", p.hub, key=person_id, step_id=step_id, action=TRIAGE)
    blocked = await commands.send("step.finish", p.hub, key=person_id, step_id=step_id)
    assert [(r["code"], r["request_id"]) for r in blocked.reasons] == [("open_request", request["request_id"])]
    stranger = await commands.send("request.complete", p.so, key=person_id, request_id=request["request_id"])
    assert stranger.rejection["code"] == "not_recipient"
    done = (await commands.send("request.complete", p.ta, key=person_id, request_id=request["request_id"],
                                note="Visited")).ok()
    assert done.types == ["request.completed"]
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        blockers = (await http.get(f"/steps/{step_id}/blockers")).json()
        assert blockers == {"can_finish": True, "blockers": [], "warnings": []}
        step = (await http.get(f"/steps/{step_id}")).json()
    assert step["sent_requests"][0]["state"] == "completed"
    (await commands.send("step.finish", p.hub, key=person_id, step_id=step_id)).ok()


async def test_R_RQ4_returned_step_shows_in_incomplete_work_with_the_note(infra, workflow, events, commands):
    p = personas()
    person_id, step_id = await started_screening(infra, events, commands, p)
    wrong = await commands.send("step.return", p.hub, key=person_id, step_id=step_id, note="No")
    assert wrong.rejection["code"] == "role"
    (await commands.send("step.return", p.so, key=person_id, step_id=step_id, note="Check the consent")).ok()
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        work = (await http.get(f"/workers/{p.hub['worker_id']}/work")).json()
    [item] = work["incomplete"]
    assert (item["state"], item["return_note"]) == ("returned", "Check the consent")


async def test_R_W2_cancel_with_reason_and_authorise_refused_to_non_authorisers(infra, workflow, events, commands):
    p = personas()
    person_id, step_id = await started_screening(infra, events, commands, p)
    authorise = await commands.send("step.authorise", p.so, key=person_id, step_id=step_id)
    assert "role" in {r["code"] for r in authorise.reasons}
    empty = await commands.send("step.cancel", p.hub, key=person_id, step_id=step_id, reason="")
    assert empty.rejection["code"] == "invalid"
    cancelled = (await commands.send("step.cancel", p.hub, key=person_id, step_id=step_id, reason="Duplicate")).ok()
    assert cancelled.of("step.cancelled")["reason"] == "Duplicate"


async def test_R_W1_start_new_and_R_K8_record_death(infra, workflow, events, commands):
    p = personas()
    person_id, first = await new_case(infra, events)
    new = (await commands.send("step.start_new", p.hub, key=person_id, person_id=person_id,
                               step_type="WB Covid 19 Response")).ok()
    assert new.types == ["workflow.started", "step.created", "step.started"]
    assert new.of("step.created")["provenance"]["rule"].startswith("R-W1")
    death = (await commands.send("person.record_death", p.so, key=person_id, person_id=person_id,
                                 date_of_death="2024-06-01")).ok()
    listed = {s["step_id"] for s in death.of("person.death_recorded")["open_steps"]}
    assert {first, new.of("step.created")["step_id"]} == listed


async def test_issue_20_a_partial_save_keeps_untouched_fields_and_history_says_what_changed(
        infra, workflow, events, commands):
    """#20 part 5: a save of one field leaves every other saved field as it was; the step's history names
    each changed field from what to what, and step.saved names the changed keys without their values."""
    p = personas()
    person_id, step_id = await started_screening(infra, events, commands, p)
    first = {k: SCREENING_VALUES[k] for k in ("referral_date", "referral_source", "reason_for_referral")}
    (await commands.send("step.save", p.hub, key=person_id, step_id=step_id, values=first, expected_version=2)).ok()
    saved = (await commands.send("step.save", p.hub, key=person_id, step_id=step_id, expected_version=3,
                                 values={"screening_rationale": "Lives alone", "referral_date": "2024-05-01"})).ok()
    event = saved.of("step.saved")
    assert event["fields"] == ["referral_date", "screening_rationale"]
    assert event["changed_fields"] == ["screening_rationale"]
    assert "Lives alone" not in str(event)
    assert saved.seen[0].body["dataschema"] == "step.saved/2"  # additive: v1 readers ignore the new field
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        step = (await http.get(f"/steps/{step_id}")).json()
    assert {k: step["values"].get(k) for k in (*first, "screening_rationale")} == {
        **first, "screening_rationale": "Lives alone"}
    changes = [h["details"]["changes"] for h in step["history"] if h["what"] == "step.saved"]
    # R-W5: the referral's date, reason and source were prefilled; the worker's first save changed reason and source
    from_referral = {"referral_date": "2024-05-01", "reason_for_referral": referral_data()["reason"],
                     "referral_source": "Customer Service Centre"}  # §7: the tests' contact centre feed
    assert changes == [
        [{"field": k, "from": from_referral.get(k), "to": first[k]} for k in sorted(first)
         if from_referral.get(k) != first[k]],
        [{"field": "screening_rationale", "from": None, "to": "Lives alone"}]]
