"""The workflow engine, rule by rule, on the pure domain in memory (no broker, no database)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.workflow import domain
from tests.workflow_harness import (
    CLOSURE_IN_PROGRESS,
    CLOSURE_VALUES,
    MONITORING,
    MONITORING_VALUES,
    PROPOSED_CLOSURE,
    PROPOSED_CLOSURE_VALUES,
    SAP,
    SCREENING_VALUES,
    SO_TRANSFER,
    TA,
    TA_VALUES,
    TRIAGE,
    TRIAGE_VALUES,
    Engine,
    Personas,
    actor,
    codes,
    sap_delivery,
)

P = Personas()
NORTH = {"kind": "team", "id": "wellbeing-service-north"}


def _finish_with(e: Engine, step_id: str, who: dict[str, Any], values: dict[str, Any],
                 *actions: dict[str, Any]) -> domain.Decision:
    e.send("step.save", who, step_id=step_id, values=values)
    for action in actions:
        e.send("step.add_next_action", who, step_id=step_id, **action)
    return e.send("step.finish", who, step_id=step_id)


def screening(e: Engine) -> str:
    step = e.referral()
    e.send("step.start", P.hub, step_id=step.step_id)
    return step.step_id


def triage(e: Engine) -> str:
    s = screening(e)
    _finish_with(e, s, P.hub, SCREENING_VALUES, {"action": TRIAGE})
    t = e.only(TRIAGE).step_id
    e.send("step.start", P.hub, step_id=t)
    return t


def sap(e: Engine) -> tuple[str, str]:
    """Up to SAP Delivery assigned by the SO to the GSO and started, Case Monitoring open; (sap, cm)."""
    t = triage(e)
    e.send("step.save", P.hub, step_id=t, values=TRIAGE_VALUES)
    e.send("step.add_next_action", P.hub, step_id=t, action=MONITORING, send_immediately=True)
    _finish_with(e, t, P.hub, {}, {"action": TA, "assignee": NORTH})
    ta = e.only(TA).step_id
    e.send("step.start", P.ta, step_id=ta)
    _finish_with(e, ta, P.ta, TA_VALUES, {"action": SAP})
    s = e.only(SAP).step_id
    e.send("step.assign", P.so, step_id=s, to={"kind": "worker", "id": P.gso["worker_id"]})
    e.send("step.start", P.gso, step_id=s)
    return s, e.only(MONITORING).step_id


def sap_ready_for_so(e: Engine) -> tuple[str, str]:
    s, cm = sap(e)
    rows = e.steps[s].values["support_delivery"]
    e.send("step.save", P.gso, step_id=s, values={
        "support_start_date": "2024-06-03", "support_end_date": "2024-06-30",
        "support_delivery": sap_delivery(rows)})
    e.send("step.send_request", P.gso, step_id=s, name=SO_TRANSFER)
    return s, cm


# --- R-W1..R-W3: starting, assigning ---------------------------------------------------------


def test_R_W1_start_new_opens_a_new_workflow_started_for_self(e: Engine) -> None:
    d = e.send("step.start_new", P.hub, person_id=domain_person(e), step_type="WB Covid 19 Response")
    assert e.event_types(d) == ["workflow.started", "step.created", "step.started"]
    [step] = d.created
    assert (step.state, step.assignee_kind, step.assignee_id) == ("incomplete", "worker", P.hub["worker_id"])
    assert step.workflow_id == d.workflows[0].workflow_id
    assert step.provenance["pack_version"] == 1


def test_R_W1_start_new_of_an_unknown_step_type_is_refused(e: Engine) -> None:
    assert codes(e.refused("step.start_new", P.hub, person_id=domain_person(e), step_type="Nope")) == [
        "unknown_step_type"]


def test_R_W2_start_moves_incoming_to_incomplete_and_a_team_member_takes_it(e: Engine) -> None:
    step = e.referral()
    e.send("step.start", P.hub, step_id=step.step_id)
    started = e.steps[step.step_id]
    assert (started.state, started.assignee_kind, started.assignee_id) == ("incomplete", "worker", "hub")
    assert started.version == 2


def test_R_W2_a_worker_outside_the_team_cannot_start_its_step(e: Engine) -> None:
    step = e.referral()
    assert codes(e.refused("step.start", P.stranger, step_id=step.step_id)) == ["not_assignee"]


def test_R_W3_a_team_step_is_assigned_on_to_a_worker_by_the_senior_officer(e: Engine) -> None:
    s, _ = sap(e)
    assert (e.steps[s].assignee_kind, e.steps[s].assignee_id) == ("worker", P.gso["worker_id"])


def test_R_W3_a_stranger_cannot_assign_a_step(e: Engine) -> None:
    step = e.referral()
    reasons = e.refused("step.assign", P.stranger, step_id=step.step_id, to={"kind": "worker", "id": "x"})
    assert codes(reasons) == ["role"]


def test_R_W14_a_manager_of_another_team_may_not_assign_or_cancel_a_teams_step(e: Engine) -> None:
    step = e.referral()  # in the Hub's inbox
    outsider = {"worker_id": "tm-north", "roles": ["team_manager"], "team_ids": ["wellbeing-service-north"]}
    assert codes(e.refused("step.assign", outsider, step_id=step.step_id, to={"kind": "worker", "id": "x"})) == [
        "not_team_member"]
    assert codes(e.refused("step.cancel", outsider, step_id=step.step_id, reason="Opened in error")) == [
        "not_team_member"]
    own = {"worker_id": "tm-hub", "roles": ["team_manager"], "team_ids": ["wellbeing-service-hub"]}
    e.send("step.assign", own, step_id=step.step_id, to={"kind": "worker", "id": "x"})
    assert (e.steps[step.step_id].assignee_kind, e.steps[step.step_id].assignee_id) == ("worker", "x")


def test_R_W14_a_step_handed_on_to_a_worker_stays_its_teams_and_above_teams_acts_for_any(e: Engine) -> None:
    step = e.referral()
    e.send("step.assign", P.hub, step_id=step.step_id, to={"kind": "worker", "id": P.hub["worker_id"]})
    outsider = {"worker_id": "tm-north", "roles": ["team_manager"], "team_ids": ["wellbeing-service-north"]}
    refused = e.refused("step.cancel", outsider, step_id=step.step_id, reason="Opened in error")
    assert codes(refused) == ["not_team_member"] and "wellbeing-service-hub" in refused[0].message
    e.send("step.cancel", P.so, step_id=step.step_id, reason="Opened in error")  # a senior officer: any team
    assert e.steps[step.step_id].state == "cancelled"


def test_R_W14_a_workers_own_step_is_their_teams_work(e: Engine) -> None:
    """Only ever the worker's own (Start > New for themselves): the teams the signed worker belongs to hold it,
    and so does the step it leads to for another worker."""
    d = e.send("step.start_new", P.hub, person_id=domain_person(e), step_type="WB Covid 19 Response")
    [step] = d.created
    assert step.provenance["held_by"] == P.hub["team_ids"]
    outsider = {"worker_id": "tm-north", "roles": ["team_manager"], "team_ids": ["wellbeing-service-north"]}
    for command, data in [("step.assign", {"to": {"kind": "worker", "id": "x"}}),
                          ("step.cancel", {"reason": "Opened in error"})]:
        refused = e.refused(command, outsider, step_id=step.step_id, **data)
        assert codes(refused) == ["not_team_member"] and "wellbeing-service-hub" in refused[0].message
    own = {"worker_id": "tm-hub", "roles": ["team_manager"], "team_ids": ["wellbeing-service-hub"]}
    e.send("step.assign", own, step_id=step.step_id, to={"kind": "worker", "id": "x"})
    refused = e.refused("step.cancel", outsider, step_id=step.step_id, reason="Opened in error")
    assert codes(refused) == ["not_team_member"]  # handed on to another worker: still the Hub's


def test_R_W14_a_step_created_for_another_worker_from_no_teams_step_is_the_creators_teams(e: Engine) -> None:
    """A Hub manager opens a step for worker x, from no step of a team's: the Hub holds it; before, it named no
    team and any team's manager could cancel it."""
    own = {"worker_id": "tm-hub", "roles": ["team_manager"], "team_ids": ["wellbeing-service-hub"]}
    [step] = e.given_step("WB Covid 19 Response", own, assignee={"kind": "worker", "id": "x"}).created
    assert step.provenance["held_by"] == ["wellbeing-service-hub"]
    outsider = {"worker_id": "tm-north", "roles": ["team_manager"], "team_ids": ["wellbeing-service-north"]}
    refused = e.refused("step.cancel", outsider, step_id=step.step_id, reason="Opened in error")
    assert codes(refused) == ["not_team_member"] and "wellbeing-service-hub" in refused[0].message


def test_R_W14_a_teams_step_taken_by_a_member_who_started_it_stays_the_teams(e: Engine) -> None:
    step = e.referral()  # in the Hub's inbox
    e.send("step.start", P.hub, step_id=step.step_id)  # a Hub worker takes it
    outsider = {"worker_id": "tm-north", "roles": ["team_manager"], "team_ids": ["wellbeing-service-north"]}
    refused = e.refused("step.cancel", outsider, step_id=step.step_id, reason="Opened in error")
    assert codes(refused) == ["not_team_member"] and "wellbeing-service-hub" in refused[0].message
    own = {"worker_id": "tm-hub", "roles": ["team_manager"], "team_ids": ["wellbeing-service-hub"]}
    e.send("step.cancel", own, step_id=step.step_id, reason="Opened in error")
    assert e.steps[step.step_id].state == "cancelled"


CSP, SIGN_OFF = "Care and Support Plan", "REQUIRED Please Authorise Support Plan"


def test_R_RQ9_a_sign_off_request_to_a_worker_who_cannot_sign_is_refused_naming_who_can(e: Engine) -> None:
    """An ATM cannot sign a Care and Support Plan (R-RQ5): sending them its sign-off is refused at once, naming
    the signing roles and the team's known signers; sent to the team manager it goes."""
    team = ("locality-north",)
    sw, atm = actor("sw-n", "social_worker", teams=team), actor("atm-n", "assistant_team_manager", teams=team)
    tm = actor("tm-n", "team_manager", teams=team)
    [step] = e.given_step(CSP, sw).created
    e.saw(atm)
    e.saw(tm)
    [why] = e.refused("step.send_request", sw, step_id=step.step_id, name=SIGN_OFF,
                      to={"kind": "worker", "id": "atm-n"})
    assert (why.code, why.field) == ("cannot_sign", "to")
    assert "worker atm-n cannot sign a Care and Support Plan" in why.message
    assert "Team Manager or Head of Service" in why.message and "tm-n" in why.message
    e.send("step.send_request", sw, step_id=step.step_id, name=SIGN_OFF, to={"kind": "worker", "id": "tm-n"})
    assert e.steps[step.step_id].state == "awaiting_authorisation"


def test_R_RQ9_a_sign_off_request_to_a_team_needs_a_known_signer_in_it(e: Engine) -> None:
    sw = actor("sw-n", "social_worker", teams=("locality-north",))
    e.saw(actor("atm-s", "assistant_team_manager", teams=("locality-south",)))
    [step] = e.given_step(CSP, sw).created
    [why] = e.refused("step.send_request", sw, step_id=step.step_id, name=SIGN_OFF,
                      to={"kind": "team", "id": "locality-south"})
    assert why.code == "cannot_sign" and "nobody in team locality-south" in why.message
    e.saw(actor("tm-s", "team_manager", teams=("locality-south",)))
    e.send("step.send_request", sw, step_id=step.step_id, name=SIGN_OFF, to={"kind": "team", "id": "locality-south"})


def test_R_RQ9_a_worker_workflow_never_saw_act_is_not_judged(e: Engine) -> None:
    """A recipient the desk's directory has not listed and workflow has never seen act is not judged: the request
    is sent."""
    sw = actor("sw-n", "social_worker", teams=("locality-north",))
    [step] = e.given_step(CSP, sw).created
    e.send("step.send_request", sw, step_id=step.step_id, name=SIGN_OFF, to={"kind": "worker", "id": "new-tm"})


def test_R_RQ10_a_request_to_a_disabled_account_is_refused_and_a_disabled_member_signs_nothing(e: Engine) -> None:
    """The directory lists tm-n disabled: a sign-off to them is refused `account_disabled`; sent to their team,
    whose only signer they are, it is refused `cannot_sign` and they are not named."""
    team = ("locality-north",)
    sw = actor("sw-n", "social_worker", teams=team)
    [step] = e.given_step(CSP, sw).created
    e.listed(actor("tm-n", "team_manager", teams=team), active=False)
    [why] = e.refused("step.send_request", sw, step_id=step.step_id, name=SIGN_OFF,
                      to={"kind": "worker", "id": "tm-n"})
    assert (why.code, why.field) == ("account_disabled", "to") and "tm-n" in why.message
    [why] = e.refused("step.send_request", sw, step_id=step.step_id, name=SIGN_OFF,
                      to={"kind": "team", "id": "locality-north"})
    assert why.code == "cannot_sign" and "tm-n" not in why.message


def test_R_RQ10_no_work_is_handed_to_a_disabled_account(e: Engine) -> None:
    """The directory lists a worker disabled: assigning a step to them, a next action for them and a Start > New
    for them are each refused `account_disabled` on the field that names them; the step stays where it was."""
    team = ("wellbeing-service-hub",)
    e.listed(actor("gone", "gso", teams=team), active=False)
    gone = {"kind": "worker", "id": "gone"}
    step = e.referral()
    [why] = e.refused("step.assign", P.hub, step_id=step.step_id, to=gone)
    assert (why.code, why.field) == ("account_disabled", "to") and "gone" in why.message
    assert (e.steps[step.step_id].assignee_kind, e.steps[step.step_id].assignee_id) == ("team", team[0])
    [why] = e.refused("step.start_new", P.hub, person_id=domain_person(e), step_type="WB Covid 19 Response",
                      assignee=gone)
    assert (why.code, why.field) == ("account_disabled", "assignee")
    sw = actor("sw-n", "social_worker", teams=("adult-front-door",))
    [pause] = e.given_step("Pause and Go", sw).created
    [why] = e.refused("step.add_next_action", sw, step_id=pause.step_id, action="Professional support",
                      assignee=gone)
    assert (why.code, why.field) == ("account_disabled", "assignee")
    e.listed(actor("gone", "gso", teams=team))  # enabled again: the same assignment goes through
    e.send("step.assign", P.hub, step_id=step.step_id, to=gone)


def test_stale_expected_version_is_a_conflict(e: Engine) -> None:
    step = e.referral()
    reasons = e.refused("step.start", P.hub, step_id=step.step_id, expected_version=7)
    assert codes(reasons) == ["conflict"]


# --- R-W4..R-W9: forms -------------------------------------------------------------------------


def test_R_W4_partial_save_and_section_completed_marker(e: Engine) -> None:
    s = screening(e)
    e.send("step.save", P.hub, step_id=s, values={"referral_date": "2024-05-01"}, completed_sections=[2])
    step = e.steps[s]
    assert step.values["referral_date"] == "2024-05-01" and step.completed_sections == (2,)
    assert step.state == "incomplete"


def test_R_W4_finish_reports_every_missing_mandatory_field_at_once(e: Engine) -> None:
    s = screening(e)
    reasons = e.refused("step.finish", P.hub, step_id=s)
    missing = {(r.section, r.field) for r in reasons if r.code == "missing_field"}
    assert missing == {(2, "referral_date"), (2, "referral_source"), (2, "reason_for_referral"),
                       (2, "consent_to_share"), (3, "eligible_for_wellbeing_service"),
                       (3, "screening_rationale")}
    assert "no_next_action" in codes(reasons)


def test_R_W4_save_rejects_every_bad_value_with_its_field(e: Engine) -> None:
    s = screening(e)
    reasons = e.refused("step.save", P.hub, step_id=s, values={
        "referral_source": "Carrier pigeon", "consent_to_share": "yes", "nope": 1, "referral_date": "May"})
    assert {(r.code, r.field) for r in reasons} == {
        ("invalid_value", "referral_source"), ("invalid_value", "consent_to_share"),
        ("unknown_field", "nope"), ("invalid_value", "referral_date")}


def test_R_W4_an_incoming_step_must_be_started_before_saving(e: Engine) -> None:
    step = e.referral()
    assert codes(e.refused("step.save", P.hub, step_id=step.step_id, values={})) == ["not_started"]


def test_R_W5_blue_cog_fields_are_prepopulated_and_read_only(e: Engine) -> None:
    s = screening(e)
    values = e.steps[s].values
    assert (values["first_name"], values["address"]) == ("Ada", "1 Example Street, Testtown, LE1 1AA")
    assert values["preferred_contact"] == "phone"  # yellow cog
    reasons = e.refused("step.save", P.hub, step_id=s, values={"first_name": "Eve"})
    assert [(r.code, r.field, r.section) for r in reasons] == [("read_only", "first_name", 1)]
    e.send("step.save", P.hub, step_id=s, values={"preferred_contact": "email"})  # yellow: editable


def test_R_W5_refresh_copies_the_changed_record_into_blue_cog_fields(e: Engine) -> None:
    s = screening(e)
    e.send("step.save", P.hub, step_id=s, values={"preferred_contact": "letter"})
    e.person = {**e.person, "last_name": "Renamed", "preferred_contact": "sms"}  # type: ignore[dict-item]
    d = e.send("step.refresh_prepopulated", P.hub, step_id=s)
    assert d.events[0].fields == ["last_name"]
    assert e.steps[s].values["last_name"] == "Renamed"
    assert e.steps[s].values["preferred_contact"] == "letter"  # a yellow edit is kept


def test_R_W5_a_step_created_without_the_person_record_has_empty_prepopulated_fields(e: Engine) -> None:
    t = triage(e)
    e.person = None
    e.send("step.save", P.hub, step_id=t, values=TRIAGE_VALUES)
    d = e.send("step.add_next_action", P.hub, step_id=t, action=MONITORING, send_immediately=True)
    [cm] = d.created
    assert "first_name" not in cm.values
    assert any("unavailable" in h.details.get("note", "") for h in d.history if h.step_id == cm.step_id)
    assert codes(e.refused("step.refresh_prepopulated", P.hub, step_id=cm.step_id)) == [
        "person_record_unavailable"]


def test_R_W6_a_field_owned_by_a_role_is_written_only_by_that_role() -> None:
    from services.workflow.pack import Field, Section, StepDefinition

    defn = StepDefinition(step_type="X", description="x", sections=(Section(number=1, title="S", fields=(
        Field(key="manager_view", label="Manager view", type="text", owner_role="team_manager"),)),),
        next_actions=())
    step = domain.Step("s", "w", "p", "X", 1, "incomplete", "worker", "sw", "normal", None, "sw", {})  # type: ignore[arg-type]
    worker = domain.Actor("sw", frozenset({"social_worker"}))
    manager = domain.Actor("tm", frozenset({"team_manager"}))
    assert codes(domain.save_problems(defn, step, {"manager_view": "ok"}, worker)) == ["role"]
    assert domain.save_problems(defn, step, {"manager_view": "ok"}, manager) == []


def test_R_W7_sap_delivery_carries_the_trusted_assessment_read_only(e: Engine) -> None:
    s, _ = sap(e)
    values = e.steps[s].values
    assert values["what_matters_to_me"] == "Staying at home"
    reasons = e.refused("step.save", P.gso, step_id=s, values={"what_matters_to_me": "changed"})
    assert [(r.code, r.section) for r in reasons] == [("read_only", 3)]


def test_R_W8_support_rows_come_from_the_ta_domains_and_exit_score_is_needed_once_per_domain(e: Engine) -> None:
    s, _ = sap(e)
    rows = e.steps[s].values["support_delivery"]
    assert [r["domain"] for r in rows] == ["Home and safety", "Social connections and loneliness"]
    half = [{**rows[0], "support_provided": "Rails fitted", "support_date": "2024-06-10"}, rows[1]]
    e.send("step.save", P.gso, step_id=s, values={"support_delivery": half})
    missing = {r.field for r in e.refused("step.finish", P.so, step_id=s) if r.code == "missing_field"}
    assert {"support_delivery[0].exit_score", "support_delivery[1].support_provided",
            "support_delivery[1].exit_score"} <= missing
    extra = e.refused("step.save", P.gso, step_id=s, values={"support_delivery": [*half, half[0]]})
    assert "invalid_value" in codes(extra)


def test_R_W8_activity_log_rows_add_edit_delete_move_and_record_the_worker(e: Engine) -> None:
    _, cm = sap(e)
    assert e.steps[cm].state == "incomplete"  # R-W13: opened when created, in the hub team's work
    a = {"activity_datetime": "2024-06-04T10:00:00", "activity": "Phoned"}
    b = {"activity_datetime": "2024-06-05T11:00:00", "activity": "Visited"}
    e.send("step.save", P.hub, step_id=cm, values={"activity_log": [a, b]})
    log = e.steps[cm].values["activity_log"]
    assert [r["recorded_by"] for r in log] == ["hub", "hub"]
    e.send("step.save", P.hub, step_id=cm, values={"activity_log": [log[1], {**log[0], "activity": "Rang"}]})
    assert [r["activity"] for r in e.steps[cm].values["activity_log"]] == ["Visited", "Rang"]
    e.send("step.save", P.hub, step_id=cm, values={"activity_log": [log[1]]})
    assert len(e.steps[cm].values["activity_log"]) == 1


def test_R_W9_referral_to_sadl_needs_the_sadl_form_completed_and_goes_at_once(e: Engine) -> None:
    s, _ = sap(e)
    action = {"action": "WB Referral to SADL", "send_immediately": True}
    assert codes(e.refused("step.add_next_action", P.gso, step_id=s, **action)) == ["form_required"]
    assert codes(e.refused("step.save", P.gso, step_id=s, values={"sadl_reason": "x"})) == ["form_not_added"]
    e.send("step.add_form", P.gso, step_id=s, form="WB SADL Referral")
    e.send("step.save", P.gso, step_id=s, values={
        "sadl_equipment_required": "Perching stool", "sadl_reason": "Kitchen", "sadl_consent": True})
    d = e.send("step.add_next_action", P.gso, step_id=s, **action)
    assert e.event_types(d) == ["next_action.added", "next_action.sent", "step.created"]
    [sadl] = d.created
    assert (sadl.step_type, sadl.assignee_id) == ("WB Referral to SADL", "wellbeing-sadl-service")
    assert sadl.provenance["rule"].startswith("R-NA3") and sadl.provenance["from_step_id"] == s


def test_R_W9_an_unknown_form_is_refused(e: Engine) -> None:
    s, _ = sap(e)
    assert codes(e.refused("step.add_form", P.gso, step_id=s, form="Nope")) == ["unknown_form"]


# --- R-NA1..R-NA6: next actions ---------------------------------------------------------------


def test_R_NA1_a_step_cannot_finish_without_a_next_action(e: Engine) -> None:
    s = screening(e)
    e.send("step.save", P.hub, step_id=s, values=SCREENING_VALUES)
    assert codes(e.refused("step.finish", P.hub, step_id=s)) == ["no_next_action"]


def test_R_NA3_finish_creates_each_action_as_incoming_work_with_provenance(e: Engine) -> None:
    s = screening(e)
    d = _finish_with(e, s, P.hub, SCREENING_VALUES, {"action": TRIAGE})
    assert e.event_types(d) == ["step.finished", "step.created"]
    [t] = d.created
    assert (t.step_type, t.state, t.assignee_kind, t.assignee_id) == (
        TRIAGE, "incoming", "team", "wellbeing-service-hub")
    assert t.workflow_id == e.steps[s].workflow_id
    assert t.provenance == {"rule": "R-NA3 next action on finish", "action": TRIAGE, "from_step_id": s,
                            "next_action_id": e.steps[s].next_actions[0].next_action_id,
                            "from_pack_version": 1, "pack_version": 1}
    assert e.steps[s].state == "finished"
    assert codes(e.refused("step.save", P.hub, step_id=s, values={})) == ["invalid_state"]


def test_R_NA3_a_later_scheduled_date_makes_future_work() -> None:
    from services.workflow.pack import NextActionDefinition

    e = Engine()
    t = triage(e)
    defn = e.packs.step(TRIAGE)
    later = NextActionDefinition(action="Review later", target_step_type=TRIAGE, assignee_kind="team",
                                 default_team="wellbeing-service-hub", scheduled_offset_days=28)
    object.__setattr__(defn, "next_actions", (*defn.next_actions, later))
    try:
        e.send("step.save", P.hub, step_id=t, values=TRIAGE_VALUES)
        due = e.now.date() + timedelta(days=30)
        e.send("step.add_next_action", P.hub, step_id=t, action="Review later", scheduled_date=due.isoformat())
        d = e.send("step.finish", P.hub, step_id=t)
    finally:
        object.__setattr__(defn, "next_actions", defn.next_actions[:-1])
    [future] = d.created
    assert (future.state, future.due_date) == ("future", due)


def test_R_NA2_scheduling_is_refused_where_the_action_does_not_allow_it(e: Engine) -> None:
    t = triage(e)
    reasons = e.refused("step.add_next_action", P.hub, step_id=t, action=TA, assignee=NORTH,
                        scheduled_date=str(date(2030, 1, 1)))
    assert codes(reasons) == ["scheduling_not_allowed"]


def test_R_NA4_nfa_creates_nothing_and_takes_no_assignee(e: Engine) -> None:
    s = screening(e)
    reasons = e.refused("step.add_next_action", P.hub, step_id=s,
                        action="WB Referral to Other Agency (NFA)", assignee=NORTH)
    assert codes(reasons) == ["assignee_not_allowed"]
    d = _finish_with(e, s, P.hub, SCREENING_VALUES, {"action": "WB Referral to Other Agency (NFA)"})
    assert e.event_types(d) == ["step.finished"] and d.created == ()


def test_R_NA2_reason_required_and_from_the_list_priority_needs_a_note_all_reported(e: Engine) -> None:
    s, _ = sap(e)
    reasons = e.refused("step.add_next_action", P.gso, step_id=s, action="WB Telecare Referral (NFA)",
                        priority="high", send_immediately=True)
    assert set(codes(reasons)) == {"reason_required", "note_required", "send_immediately_not_allowed"}
    bad = e.refused("step.add_next_action", P.gso, step_id=s, action="WB Telecare Referral (NFA)",
                    reason="A friend")
    assert codes(bad) == ["invalid_reason"]
    e.send("step.add_next_action", P.gso, step_id=s, action="WB Telecare Referral (NFA)",
           reason="Private telecare provider", priority="high", note="Falls risk")


def test_R_NA2_send_immediately_only_where_allowed_and_required_where_the_pack_says(e: Engine) -> None:
    s, _ = sap(e)
    e.send("step.add_form", P.gso, step_id=s, form="WB SADL Referral")
    e.send("step.save", P.gso, step_id=s, values={
        "sadl_equipment_required": "Stool", "sadl_reason": "Kitchen", "sadl_consent": True})
    assert codes(e.refused("step.add_next_action", P.gso, step_id=s, action="WB Referral to SADL")) == [
        "send_immediately_required"]


def test_R_NA5_assignee_kind_is_enforced(e: Engine) -> None:
    t = triage(e)
    worker = {"kind": "worker", "id": "someone"}
    assert codes(e.refused("step.add_next_action", P.hub, step_id=t, action=TA, assignee=worker)) == [
        "assignee_kind"]
    assert codes(e.refused("step.add_next_action", P.hub, step_id=t, action=TA)) == ["assignee_required"]
    assert codes(e.refused("step.add_next_action", P.hub, step_id=t, action=PROPOSED_CLOSURE,
                           assignee=worker)) == ["assignee_kind"]


def test_R_NA7_the_team_chosen_in_triage_takes_the_trusted_assessment_unless_the_worker_names_another(
        e: Engine) -> None:
    """The Hub records Wellbeing Service South as the Involved Team and adds the TA naming no team: it goes to
    South; a team the worker names wins; with no team chosen the refusal names the field to choose it in."""
    t = triage(e)
    [why] = e.refused("step.add_next_action", P.hub, step_id=t, action=TA)
    assert why.code == "assignee_required" and "'Wellbeing Service team (Involved Team)'" in why.message
    e.send("step.save", P.hub, step_id=t, values={**TRIAGE_VALUES, "involved_team": "Wellbeing Service South"})
    named = e.send("step.add_next_action", P.hub, step_id=t, action=TA, assignee=NORTH)
    assert named.events[0].assignee.id == "wellbeing-service-north"
    e.send("step.remove_next_action", P.hub, step_id=t, next_action_id=e.steps[t].next_actions[0].next_action_id)
    e.send("step.add_next_action", P.hub, step_id=t, action=TA)
    e.send("step.finish", P.hub, step_id=t)
    assert (e.only(TA).assignee_kind, e.only(TA).assignee_id) == ("team", "wellbeing-service-south")


def test_R_NA5_an_action_added_by_roles_is_refused_to_other_roles(e: Engine) -> None:
    from services.workflow.pack import NextActionDefinition

    t = triage(e)
    defn = e.packs.step(TRIAGE)
    managed = NextActionDefinition(action="Managers only (NFA)", nfa=True, added_by_roles=("team_manager",))
    object.__setattr__(defn, "next_actions", (*defn.next_actions, managed))
    try:
        reasons = e.refused("step.add_next_action", P.hub, step_id=t, action="Managers only (NFA)")
    finally:
        object.__setattr__(defn, "next_actions", defn.next_actions[:-1])
    assert codes(reasons) == ["role"]


def test_R_NA5_assign_to_me_creates_the_step_for_the_finishing_worker(e: Engine) -> None:
    _, cm = sap(e)
    e.send("step.assign", P.so, step_id=cm, to={"kind": "worker", "id": P.gso["worker_id"]})
    assert e.steps[cm].state == "incomplete"  # R-W13: reassigned, it stays started
    d = _finish_with(e, cm, P.gso, MONITORING_VALUES, {"action": PROPOSED_CLOSURE})
    [proposed] = d.created
    assert (proposed.assignee_kind, proposed.assignee_id) == ("worker", P.gso["worker_id"])


def test_R_NA6_closure_already_started_only_while_a_closure_is_in_current_work(e: Engine) -> None:
    s, cm = sap(e)
    already = "Adult Case Closure Already Started (NFA)"
    assert codes(e.refused("step.add_next_action", P.hub, step_id=cm, action=already)) == [
        "not_allowed_in_case_state"]
    e.send("step.start_new", P.so, person_id=e.steps[s].person_id, step_type=PROPOSED_CLOSURE)
    e.send("step.add_next_action", P.hub, step_id=cm, action=already)
    assert codes(e.refused("step.add_next_action", P.hub, step_id=cm, action=PROPOSED_CLOSURE)) == [
        "not_allowed_in_case_state"]


def test_remove_next_action_until_sent(e: Engine) -> None:
    s = screening(e)
    d = e.send("step.add_next_action", P.hub, step_id=s, action=TRIAGE)
    added = d.events[0].next_action_id
    e.send("step.remove_next_action", P.hub, step_id=s, next_action_id=added)
    assert e.steps[s].next_actions == ()
    assert codes(e.refused("step.remove_next_action", P.hub, step_id=s, next_action_id=added)) == ["not_found"]


# --- R-RQ: requests, notifications, authorisation ----------------------------------------------


def test_R_RQ1_a_request_goes_to_its_default_team_with_a_note(e: Engine) -> None:
    s, _ = sap(e)
    d = e.send("step.send_request", P.gso, step_id=s, name=SO_TRANSFER, note="Please sign off")
    raised = d.events[0]
    assert (raised.TYPE, raised.to.kind, raised.to.id, raised.note) == (
        "request.raised", "team", "wellbeing-service-management", "Please sign off")
    assert e.steps[s].state == "awaiting_authorisation"


def test_R_RQ1_a_notification_is_sent_and_never_blocks(e: Engine) -> None:
    s, _ = sap(e)
    d = e.send("step.send_notification", P.gso, step_id=s, name="(N) WB Hub please send relevant correspondence")
    assert d.events[0].TYPE == "notification.sent"
    assert "open_request" not in codes(e.refused("step.finish", P.so, step_id=s))
    assert codes(e.refused("step.send_request", P.gso, step_id=s,
                           name="(N) WB Hub please send relevant correspondence")) == ["wrong_kind"]


def test_R_RQ1_a_request_without_a_default_recipient_needs_one(e: Engine) -> None:
    s = screening(e)
    assert codes(e.refused("step.send_request", P.hub, step_id=s, name="(R) WB Please action")) == [
        "recipient_required"]


def test_R_RQ2_a_step_cannot_finish_while_a_request_it_sent_is_open(e: Engine) -> None:
    s = screening(e)
    d = e.send("step.send_request", P.hub, step_id=s, name="(R) WB Please action", to=NORTH)
    request_id = d.events[0].request_id
    _ = e.send("step.save", P.hub, step_id=s, values=SCREENING_VALUES)
    e.send("step.add_next_action", P.hub, step_id=s, action=TRIAGE)
    reasons = e.refused("step.finish", P.hub, step_id=s)
    assert [(r.code, r.request_id) for r in reasons] == [("open_request", request_id)]
    assert codes(e.refused("request.complete", P.hub, request_id=request_id)) == ["not_recipient"]
    d = e.send("request.complete", P.ta, request_id=request_id, note="Done")
    assert d.events[0].TYPE == "request.completed"
    e.send("step.finish", P.hub, step_id=s)


def test_R_RQ3_sap_delivery_cannot_finish_until_the_required_so_request_is_sent_and_completed(e: Engine) -> None:
    s, _ = sap(e)
    e.send("step.add_next_action", P.so, step_id=s, action="WB Involvement Ended (NFA)")
    assert "required_request" in codes(e.refused("step.finish", P.so, step_id=s))


def test_R_RQ7_the_gso_sends_the_required_request_and_the_senior_officer_finishes(e: Engine) -> None:
    s, _ = sap_ready_for_so(e)
    e.send("step.add_next_action", P.so, step_id=s, action="WB Involvement Ended (NFA)")
    request = e.open_request(s)
    reasons = e.refused("step.finish", P.gso, step_id=s)
    assert set(codes(reasons)) == {"role", "open_request"}
    e.send("request.complete", P.so, request_id=request.request_id)
    assert codes(e.refused("step.finish", P.gso, step_id=s)) == ["role"]
    d = e.send("step.finish", P.so, step_id=s)
    assert d.events[0].TYPE == "step.finished" and e.steps[s].state == "finished"


def test_R_RQ4_returned_step_goes_back_with_a_note_until_re_sent(e: Engine) -> None:
    s, _ = sap_ready_for_so(e)
    assert codes(e.refused("step.return", P.gso, step_id=s, note="x")) == ["role"]
    e.send("step.return", P.so, step_id=s, note="Add the exit scores again")
    step = e.steps[s]
    assert (step.state, step.return_note) == ("returned", "Add the exit scores again")
    assert not [r for r in e.requests.values() if r.step_id == s and r.state == "open"]
    e.send("step.send_request", P.gso, step_id=s, name=SO_TRANSFER)
    assert e.steps[s].state == "awaiting_authorisation"


def test_R_RQ5_only_an_authoriser_role_may_authorise(e: Engine) -> None:
    s, _ = sap_ready_for_so(e)
    tm = {"worker_id": "tm", "roles": ["team_manager"], "team_ids": []}
    assert "role" in codes(e.refused("step.authorise", tm, step_id=s))
    e.send("request.complete", P.so, request_id=e.open_request(s).request_id)
    e.send("step.add_next_action", P.so, step_id=s, action="WB Involvement Ended (NFA)")
    d = e.send("step.authorise", P.so, step_id=s)
    assert d.events[0].authorised is True


# --- R-C5, R-K1: case closure -------------------------------------------------------------------


def test_R_K1_proposed_closure_refused_naming_every_open_step_then_case_closed(e: Engine) -> None:
    s, cm = sap_ready_for_so(e)
    e.send("request.complete", P.so, request_id=e.open_request(s).request_id)
    d = _finish_with(e, s, P.so, {}, {"action": PROPOSED_CLOSURE})
    [proposed] = d.created
    assert (proposed.state, proposed.assignee_id) == ("incoming", P.so["worker_id"])
    e.send("step.start", P.so, step_id=proposed.step_id)
    e.send("step.save", P.so, step_id=proposed.step_id, values=PROPOSED_CLOSURE_VALUES)
    e.send("step.add_next_action", P.so, step_id=proposed.step_id, action=CLOSURE_IN_PROGRESS)
    reasons = e.refused("step.finish", P.so, step_id=proposed.step_id)
    assert [(r.code, r.step_id) for r in reasons] == [("open_step", cm)]
    assert MONITORING in reasons[0].message
    _finish_with(e, cm, P.hub, MONITORING_VALUES, {"action": "WB Case Monitoring Complete (NFA)"})
    d = e.send("step.finish", P.so, step_id=proposed.step_id)
    [closing] = d.created
    assert (closing.step_type, closing.assignee_id) == (CLOSURE_IN_PROGRESS, "adult-admin")
    e.send("step.start", P.admin, step_id=closing.step_id)
    d = _finish_with(e, closing.step_id, P.admin, CLOSURE_VALUES, {"action": "Adult Case Closed (NFA)"})
    assert e.event_types(d) == ["step.finished", "case.closed"]
    assert all(w.status == "closed" for w in e.workflows.values())


def test_R_K1_every_open_step_is_named(e: Engine) -> None:
    s, cm = sap(e)
    person = e.steps[s].person_id
    e.send("step.start_new", P.so, person_id=person, step_type=PROPOSED_CLOSURE)
    proposed = e.only(PROPOSED_CLOSURE).step_id
    reasons = e.refused("step.finish", P.so, step_id=proposed)
    assert {r.step_id for r in reasons if r.code == "open_step"} == {s, cm}


def test_R_K1_a_cancelled_closure_step_says_the_case_is_not_closing(e: Engine) -> None:
    """The teams told the case was closing are told no more: cancelling a closure step withdraws the closure, by
    whoever cancelled it; cancelling any other step does not."""
    s, cm = sap(e)
    e.send("step.start_new", P.so, person_id=e.steps[s].person_id, step_type=PROPOSED_CLOSURE)
    proposed = e.only(PROPOSED_CLOSURE)
    d = e.send("step.cancel", P.so, step_id=proposed.step_id, reason="Still open to the carers team")
    assert e.event_types(d) == ["step.cancelled", "case.closure_withdrawn"]
    withdrawn = d.events[1]
    assert (withdrawn.workflow_id, withdrawn.step_id, withdrawn.actor, withdrawn.reason) == (
        proposed.workflow_id, proposed.step_id, P.so["worker_id"], "Still open to the carers team")
    assert e.event_types(e.send("step.cancel", P.hub, step_id=cm, reason="Opened in error")) == ["step.cancelled"]


# --- other commands ------------------------------------------------------------------------------


def test_R_W2_cancel_needs_a_reason_and_withdraws_open_requests(e: Engine) -> None:
    s = screening(e)
    with pytest.raises(ValidationError):
        e.send("step.cancel", P.hub, step_id=s, reason="  ")
    e.send("step.send_request", P.hub, step_id=s, name="(R) WB Please action", to=NORTH)
    e.send("step.cancel", P.hub, step_id=s, reason="Duplicate referral")
    assert e.steps[s].state == "cancelled"
    assert {r.state for r in e.requests.values()} == {"cancelled"}


def test_R_K8_recording_a_death_lists_open_steps(e: Engine) -> None:
    s = screening(e)
    d = e.send("person.record_death", P.hub, person_id=e.steps[s].person_id, date_of_death="2024-06-01")
    assert [o.step_id for o in d.events[0].open_steps] == [s]


def test_every_change_records_actor_and_time(e: Engine) -> None:
    s = screening(e)
    e.send("step.save", P.hub, step_id=s, values={"referral_date": "2024-05-01"})
    mine = [h for h in e.history if h.step_id == s]
    assert [h.what for h in mine] == ["step.started", "step.saved"]
    assert all(h.actor == "hub" and h.at is not None for h in mine)


def domain_person(e: Engine) -> str:
    return str(e.person["person_id"]) if e.person else "00000000-0000-4000-8000-000000000001"


# --- #20 part 5: a save records which fields changed, from what to what ----------------------------


def _last_saved(e: Engine, step_id: str) -> domain.History:
    return [h for h in e.history if h.step_id == step_id and h.what == "step.saved"][-1]


def test_issue_20_history_of_a_save_names_each_changed_field_from_what_to_what(e: Engine) -> None:
    s = screening(e)
    first = {k: SCREENING_VALUES[k] for k in ("referral_date", "referral_source", "reason_for_referral")}
    e.send("step.save", P.hub, step_id=s, values=first)
    assert _last_saved(e, s).details["changes"] == [
        {"field": "reason_for_referral", "from": None, "to": "Struggling at home after a fall"},
        {"field": "referral_date", "from": None, "to": "2024-05-01"},
        {"field": "referral_source", "from": None, "to": "GP or health professional"}]

    d = e.send("step.save", P.hub, step_id=s, values={"referral_date": "2024-05-01",
                                                     "reason_for_referral": "Fell on the stairs"})
    assert _last_saved(e, s).details["changes"] == [
        {"field": "reason_for_referral", "from": "Struggling at home after a fall", "to": "Fell on the stairs"}]
    assert _last_saved(e, s).details["fields"] == ["reason_for_referral", "referral_date"]  # what was sent
    # the event names the changed keys only: values stay in the step's own record
    assert d.events[0].fields == ["reason_for_referral", "referral_date"]
    assert d.events[0].changed_fields == ["reason_for_referral"]
    assert "Fell on the stairs" not in d.events[0].model_dump_json()


def test_issue_20_a_partial_save_keeps_untouched_fields_and_records_a_blanking_as_a_change(e: Engine) -> None:
    s = screening(e)
    e.send("step.save", P.hub, step_id=s, values=SCREENING_VALUES)
    e.send("step.save", P.hub, step_id=s, values={"screening_rationale": "Lives alone; daughter visits weekly"})
    assert {k: e.steps[s].values[k] for k in ("referral_date", "referral_source", "reason_for_referral")} == {
        "referral_date": "2024-05-01", "referral_source": "GP or health professional",
        "reason_for_referral": "Struggling at home after a fall"}
    e.send("step.save", P.hub, step_id=s, values={"referral_source": None})
    assert _last_saved(e, s).details["changes"] == [
        {"field": "referral_source", "from": "GP or health professional", "to": None}]


def test_issue_20_a_save_that_changes_nothing_records_no_changes(e: Engine) -> None:
    s = screening(e)
    e.send("step.save", P.hub, step_id=s, values={"referral_date": "2024-05-01"})
    d = e.send("step.save", P.hub, step_id=s, values={"referral_date": "2024-05-01"})
    assert _last_saved(e, s).details["changes"] == [] and d.events[0].changed_fields == []
