"""Workflow packs: the shipped packs load, broken packs are refused by name, seed 000 facts hold."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.workflow.pack import (
    PackError,
    PackRegistry,
    StepDefinition,
    load_packs,
)

SAP = "WB Support Action Plan Delivery"
TA = "WB Trusted Assessment and Support Planning"
MONITORING = "WB Case Monitoring"
SO_TRANSFER = "(R) REQUIRED WB Transfer to Senior Officer to review information and add additional next actions"
ALREADY_STARTED = "Adult Case Closure Already Started (NFA)"
WELLBEING_STEPS = {
    "WB Wellbeing Screening",
    "WB Initial Risk Assessment and Triage",
    TA,
    SAP,
    MONITORING,
    "WB Covid 19 Response",
}


def _step(
    step_type: str = "Demo Start", actions: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "step_type": step_type,
        "description": "a demo step",
        "sections": [
            {
                "number": 1,
                "title": "Details",
                "fields": [{"key": "notes", "label": "Notes", "type": "textarea"}],
            }
        ],
        "next_actions": actions if actions is not None else [{"action": "Done (NFA)", "nfa": True}],
    }


def _pack(*steps: dict[str, Any], name: str = "demo", version: int = 1) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "teams": ["adult-front-door"],
        "worked_by": ["social_worker"],
        "steps": list(steps) or [_step()],
    }


def _write(directory: Path, file_name: str, pack: dict[str, Any]) -> Path:
    path = directory / file_name
    path.write_text(yaml.safe_dump(pack, sort_keys=False), encoding="utf-8")
    return path


def _refused(directory: Path) -> PackError:
    with pytest.raises(PackError) as caught:
        load_packs(directory)
    return caught.value


def _assert_names(error: PackError, file_name: str, step: str, field: str) -> None:
    assert error.file.endswith(file_name)
    assert error.step is not None and step in error.step
    assert error.field is not None and field in error.field
    for part in (file_name, step, field):
        assert part in str(error)


# --- the shipped packs -------------------------------------------------------------------


def test_R_C1_shipped_packs_load_with_every_wellbeing_step_type(shipped: PackRegistry) -> None:
    """R-C1: the Wellbeing pack defines the six step types of seed 000."""
    assert shipped.step_types() >= WELLBEING_STEPS


def test_R_C5_adult_closure_steps_come_from_their_own_pack(shipped: PackRegistry) -> None:
    """R-C5: Proposed Case Closure (self) leads to Closure in Progress for Adult Admin."""
    packs = {pack.name: {step.step_type for step in pack.steps} for pack in shipped.packs}
    assert packs["adult_closure"] == {
        "Adult Proposed Case Closure",
        "Adult Case Closure in Progress",
    }
    proposed = shipped.step("Adult Proposed Case Closure")
    in_progress = proposed.next_action("Adult Case Closure in Progress")
    assert (in_progress.assignee_kind, in_progress.default_team) == ("team", "adult-admin")
    assert proposed.request("Adult Please review information and authorise").kind == "request"


def test_R_K1_closure_steps_name_the_case_closure_guard(shipped: PackRegistry) -> None:
    """R-K1: the closure guard is a named rule of both closure step types."""
    for step_type in ("Adult Proposed Case Closure", "Adult Case Closure in Progress"):
        assert "case_closure_guard" in shipped.step(step_type).rules


def test_R_NA1_every_shipped_step_has_a_next_action(shipped: PackRegistry) -> None:
    """R-NA1: no step type could ever finish without at least one allowed next action."""
    assert all(shipped.step(step_type).next_actions for step_type in shipped.step_types())


def test_R_NA4_shipped_nfa_actions_have_no_target_and_no_assignee(shipped: PackRegistry) -> None:
    """R-NA4: every NFA action creates no step and needs no assignee."""
    for step_type in shipped.step_types():
        for action in shipped.step(step_type).next_actions:
            assert action.nfa == action.action.endswith("(NFA)"), action.action
            if action.nfa:
                assert (action.target_step_type, action.assignee_kind) == (None, "none")


def test_R_W5_section_one_of_every_wellbeing_step_shows_blue_cog_person_fields(
    shipped: PackRegistry,
) -> None:
    """R-W5: section 1 is Personal Details, prepopulated from the person record."""
    for step_type in WELLBEING_STEPS:
        first = shipped.step(step_type).form_sections[0]
        assert (first.number, first.title) == (1, "Personal Details")
        blue = {field.key: field.prepopulate_from for field in first.fields if field.cog == "blue"}
        assert blue["date_of_birth"] == "date_of_birth"
        assert blue["nhs_number"] == "nhs_number"


def test_R_W7_support_action_plan_delivery_shows_ta_sections_2_to_11_read_only(
    shipped: PackRegistry,
) -> None:
    """R-W7: sections 2-11 of the Trusted Assessment are read-only copies in SAP Delivery."""
    sap, ta = shipped.step(SAP), shipped.step(TA)
    by_number = {section.number: section for section in sap.form_sections}
    assert sorted(by_number) == list(range(1, 14))
    for number in range(2, 12):
        source = next(section for section in ta.sections if section.number == number)
        assert by_number[number].read_only
        assert by_number[number].title == source.title
        assert [f.key for f in by_number[number].fields] == [f.key for f in source.fields]
    assert not by_number[12].read_only and not by_number[13].read_only


def test_R_W7_carried_fields_are_not_mandatory_in_the_carrying_step(shipped: PackRegistry) -> None:
    """R-W7: the GSO cannot write carried fields, so they cannot block Finish."""
    carried = [s for s in shipped.step(SAP).form_sections if 2 <= s.number <= 11]
    assert not any(field.mandatory for section in carried for field in section.fields)
    assert shipped.step(TA).field_map()["what_matters_to_me"].mandatory


def test_R_W8_sap_delivery_domains_table_has_one_exit_score_per_domain(
    shipped: PackRegistry,
) -> None:
    """R-W8: per domain row support provided, date, outcome reason; exit score on first row."""
    table = shipped.step(SAP).field_map()["support_delivery"]
    columns = {column.key: column for column in table.columns}
    assert table.type == "table"
    assert table.rows_from == "support_plan_domains"
    assert {
        "domain",
        "support_provided",
        "support_date",
        "outcome_not_achieved_reason",
        "exit_score",
    } <= set(columns)
    assert columns["exit_score"].once_per == "domain"
    assert columns["domain"].system_generated


def test_R_W8_case_monitoring_logs_date_time_activity_and_worker(shipped: PackRegistry) -> None:
    """R-W8: the activity log is a table of date/time, activity and the recording worker."""
    log = shipped.step(MONITORING).field_map()["activity_log"]
    assert [(c.key, c.type) for c in log.columns] == [
        ("activity_datetime", "datetime"),
        ("activity", "textarea"),
        ("recorded_by", "text"),
    ]
    assert log.columns[2].system_generated


def test_R_C1_case_monitoring_reason_for_involvement_ending_is_mandatory(
    shipped: PackRegistry,
) -> None:
    """R-C1: WB Case Monitoring cannot finish without the reason the involvement ended."""
    fields = [f for s in shipped.step(MONITORING).form_sections for f in s.fields]
    reason = next(f for f in fields if f.label == "Reason for Wellbeing involvement ending")
    assert reason.mandatory


def test_R_W9_referral_to_sadl_requires_the_sadl_form_and_is_sent_immediately(
    shipped: PackRegistry,
) -> None:
    """R-W9, R-NA3: WB Referral to SADL needs WB SADL Referral and goes at once to SADL."""
    sap = shipped.step(SAP)
    action = sap.next_action("WB Referral to SADL")
    assert action.requires_form == "WB SADL Referral"
    assert sap.form("WB SADL Referral").kind == "form"
    assert action.send_immediately == "required"
    assert (action.assignee_kind, action.default_team) == ("team", "wellbeing-sadl-service")
    assert action.target_step_type in shipped.step_types()


def test_R_NA2_telecare_referral_nfa_requires_a_provider_reason(shipped: PackRegistry) -> None:
    """R-NA2: WB Telecare Referral (NFA) must record the provider as its reason."""
    action = shipped.step(SAP).next_action("WB Telecare Referral (NFA)")
    assert action.nfa and action.reason_required and action.reasons


def test_R_RQ3_every_sap_delivery_requires_the_senior_officer_transfer(
    shipped: PackRegistry,
) -> None:
    """R-RQ3: the REQUIRED transfer to the Senior Officer goes to the management team."""
    request = shipped.step(SAP).request(SO_TRANSFER)
    assert (request.kind, request.required) == ("request", True)
    assert request.default_to is not None
    assert (request.default_to.kind, request.default_to.id) == (
        "team",
        "wellbeing-service-management",
    )


def test_R_RQ7_senior_officer_signs_off_sap_delivery(shipped: PackRegistry) -> None:
    """R-RQ7: the Senior Officer finishes the Support Action Plan Delivery."""
    assert shipped.step(SAP).authorisers == ("senior_officer",)


def test_R_NA6_closure_already_started_only_while_closure_is_in_progress(
    shipped: PackRegistry,
) -> None:
    """R-NA6: the NFA is allowed only in that case state; proposing a closure only outside it."""
    for step_type in (SAP, MONITORING):
        step = shipped.step(step_type)
        assert step.next_action(ALREADY_STARTED).allowed_when == "case_closure_in_progress"
        proposed = step.next_action("Adult Proposed Case Closure")
        assert (proposed.assignee_kind, proposed.allowed_when) == (
            "self",
            "no_case_closure_in_progress",
        )


def test_R_C1_sap_delivery_has_exactly_the_seed_actions_and_requests(shipped: PackRegistry) -> None:
    """R-C1: every next action, request and notification of the SAP Delivery tables in 000."""
    step = shipped.step(SAP)
    assert [a.action for a in step.next_actions] == [
        "WB Transfer to Wellbeing Service Hub Team for Reassessment",
        "WB Referral to SADL",
        "WB Referral to Other Agency (NFA)",
        "WB Telecare Referral (NFA)",
        "WB Involvement Ended (NFA)",
        "Adult Proposed Case Closure",
        ALREADY_STARTED,
    ]
    transfer = step.next_action("WB Transfer to Wellbeing Service Hub Team for Reassessment")
    assert transfer.target_step_type == "WB Initial Risk Assessment and Triage"
    assert transfer.default_team == "wellbeing-service-hub"
    assert [(r.name, r.kind) for r in step.requests] == [
        (SO_TRANSFER, "request"),
        ("(N) WB Hub please send relevant correspondence", "notification"),
        ("(R) WB Please action", "request"),
    ]


def test_R_C1_case_monitoring_has_exactly_the_seed_actions_and_requests(
    shipped: PackRegistry,
) -> None:
    """R-C1: every next action, request and notification of the Case Monitoring tables."""
    step = shipped.step(MONITORING)
    assert [a.action for a in step.next_actions] == [
        "WB Case Monitoring Complete (NFA)",
        "WB Case Monitoring No Longer Required (NFA)",
        "Adult Proposed Case Closure",
        ALREADY_STARTED,
    ]
    assert [r.name for r in step.requests] == [
        "(N) WB Hub please send relevant correspondence",
        "(R) WB Please action",
    ]


def test_R_RQ1_please_action_is_a_standard_request_of_every_wellbeing_step(
    shipped: PackRegistry,
) -> None:
    """R-RQ1: "(R) WB Please action" is found in all Wellbeing workflow steps."""
    for step_type in WELLBEING_STEPS:
        assert shipped.step(step_type).request("(R) WB Please action").kind == "request"


def test_every_team_id_used_is_a_kebab_case_slug_with_a_display_name(shipped: PackRegistry) -> None:
    """Team ids are kebab-case slugs listed in some pack's teams map."""
    assert shipped.team_name("wellbeing-service-hub") == "Wellbeing Service Hub Team"
    assert shipped.team_name("adult-admin").startswith("Adult Admin Team")
    used = {
        team
        for step_type in shipped.step_types()
        for team in [shipped.step(step_type).default_team]
        + [a.default_team for a in shipped.step(step_type).next_actions]
        if team
    }
    assert used <= set(shipped.teams)


def test_to_contract_has_exactly_the_read_endpoint_keys(shipped: PackRegistry) -> None:
    """CONTRACTS "A step as the read endpoint shows it": form, next_actions, requests, authorisers (R-RQ5)."""
    contract = shipped.step(SAP).to_contract()
    assert set(contract) == {"form", "next_actions", "requests", "authorisers"}
    assert contract["authorisers"] == ["senior_officer"]
    assert set(contract["form"]) == {"sections"}
    section = contract["form"]["sections"][0]
    assert set(section) == {"number", "title", "read_only", "answered_by", "fields"}
    fixed = {"key", "label", "type", "mandatory", "cog", "owner_role", "options", "columns"}
    # the fixed keys, plus the optional ones the contract allows adding
    field_keys = fixed | {"system_generated", "once_per", "rows_from", "activity_log", "yes_from_orders"}
    assert all(
        set(field) == field_keys for s in contract["form"]["sections"] for field in s["fields"]
    )
    table = next(
        f for s in contract["form"]["sections"] for f in s["fields"] if f["type"] == "table"
    )
    assert all(set(column) == field_keys for column in table["columns"])
    assert all(
        set(action)
        == {
            "action",
            "nfa",
            "target_step_type",
            "assignee_kind",
            "default_team",
            "team_by_locality",
            "team_from_field",
            "send_immediately",
            "scheduled_offset_days",
            "reasons",
            "reason_required",
            "requires_form",
        }
        for action in contract["next_actions"]
    )
    assert all(
        set(request) == {"name", "kind", "required", "required_when", "default_to"}
        for request in contract["requests"]
    )


def test_to_contract_send_immediately_says_whether_it_is_allowed(shipped: PackRegistry) -> None:
    """CONTRACTS: `send_immediately` in the read shape is whether the action allows it."""
    actions = {a["action"]: a for a in shipped.step(SAP).to_contract()["next_actions"]}
    assert actions["WB Referral to SADL"]["send_immediately"] is True
    assert actions["WB Involvement Ended (NFA)"]["send_immediately"] is False
    assert actions["WB Telecare Referral (NFA)"]["reasons"]


# --- versions ----------------------------------------------------------------------------


def test_a_running_step_keeps_its_pack_version(tmp_path: Path) -> None:
    """Every version stays loaded; the latest is the default for new steps."""
    old, new = _step(), _step()
    new["description"] = "the new version"
    _write(tmp_path, "demo_v1.yaml", _pack(old, version=1))
    _write(tmp_path, "demo_v2.yaml", _pack(new, version=2))
    registry = load_packs(tmp_path)
    assert registry.latest_version("Demo Start") == 2
    assert registry.step("Demo Start").description == "the new version"
    assert registry.step("Demo Start", version=1).description == "a demo step"
    with pytest.raises(KeyError):
        registry.step("Demo Start", version=3)
    with pytest.raises(KeyError):
        registry.step("No Such Step")


def test_a_next_action_may_target_a_step_of_another_pack(tmp_path: Path) -> None:
    """Cross-pack targets are allowed, as Wellbeing's actions to the adult closure steps."""
    action = {"action": "Go", "target_step_type": "Other Step", "assignee_kind": "self"}
    _write(tmp_path, "a.yaml", _pack(_step(actions=[action]), name="a"))
    _write(tmp_path, "b.yaml", _pack(_step("Other Step"), name="b"))
    assert isinstance(load_packs(tmp_path).step("Demo Start"), StepDefinition)


# --- broken packs ------------------------------------------------------------------------


def test_a_duplicate_step_type_in_one_pack_is_refused(tmp_path: Path) -> None:
    """Step types are unique: a second definition is refused, naming both."""
    _write(tmp_path, "dup.yaml", _pack(_step(), _step()))
    _assert_names(_refused(tmp_path), "dup.yaml", "Demo Start", "steps[1].step_type")


def test_a_step_type_defined_by_two_packs_is_refused(tmp_path: Path) -> None:
    """A step type belongs to one pack; two packs defining it is ambiguous."""
    _write(tmp_path, "a.yaml", _pack(_step(), name="a"))
    _write(tmp_path, "b.yaml", _pack(_step(), name="b"))
    error = _refused(tmp_path)
    _assert_names(error, "b.yaml", "Demo Start", "step_type")
    assert "a.yaml" in error.problem


def test_R_NA3_a_target_step_type_no_pack_defines_is_refused(tmp_path: Path) -> None:
    """R-NA3: an action can only create a step type some loaded pack defines."""
    action = {"action": "Go", "target_step_type": "Nowhere", "assignee_kind": "self"}
    _write(tmp_path, "p.yaml", _pack(_step(actions=[action])))
    _assert_names(_refused(tmp_path), "p.yaml", "Demo Start", "next_actions['Go'].target_step_type")


def test_R_NA4_nfa_action_cannot_name_a_target_step(tmp_path: Path) -> None:
    """R-NA4: an NFA action creates no step."""
    action = {"action": "Stop (NFA)", "nfa": True, "target_step_type": "Demo Start"}
    _write(tmp_path, "p.yaml", _pack(_step(actions=[action])))
    _assert_names(
        _refused(tmp_path), "p.yaml", "Demo Start", "next_actions['Stop (NFA)'].target_step_type"
    )


def test_R_NA4_nfa_action_cannot_have_an_assignee_kind(tmp_path: Path) -> None:
    """R-NA4: an NFA action needs no assignee."""
    action = {"action": "Stop (NFA)", "nfa": True, "assignee_kind": "team"}
    _write(tmp_path, "p.yaml", _pack(_step(actions=[action])))
    _assert_names(
        _refused(tmp_path), "p.yaml", "Demo Start", "next_actions['Stop (NFA)'].assignee_kind"
    )


def test_R_NA2_an_action_that_creates_a_step_needs_an_assignee_kind(tmp_path: Path) -> None:
    """R-NA2: a step-creating action says whether it goes to a worker, a team or self."""
    action = {"action": "Go", "target_step_type": "Demo Start"}
    _write(tmp_path, "p.yaml", _pack(_step(actions=[action])))
    _assert_names(_refused(tmp_path), "p.yaml", "Demo Start", "next_actions['Go'].assignee_kind")


def test_R_W9_requires_form_must_name_a_form_of_the_step(tmp_path: Path) -> None:
    """R-W9: an action cannot require a form the step does not offer."""
    action = {"action": "Stop (NFA)", "nfa": True, "requires_form": "Missing Form"}
    _write(tmp_path, "p.yaml", _pack(_step(actions=[action])))
    _assert_names(
        _refused(tmp_path), "p.yaml", "Demo Start", "next_actions['Stop (NFA)'].requires_form"
    )


def test_R_NA2_reason_required_needs_reasons_to_choose_from(tmp_path: Path) -> None:
    """R-NA2: a mandatory reason needs a reason list."""
    action = {"action": "Stop (NFA)", "nfa": True, "reason_required": True}
    _write(tmp_path, "p.yaml", _pack(_step(actions=[action])))
    _assert_names(
        _refused(tmp_path), "p.yaml", "Demo Start", "next_actions['Stop (NFA)'].reason_required"
    )


def test_R_NA1_a_step_without_next_actions_is_refused(tmp_path: Path) -> None:
    """R-NA1: a step type with no allowed next action could never finish."""
    _write(tmp_path, "p.yaml", _pack(_step(actions=[])))
    _assert_names(_refused(tmp_path), "p.yaml", "Demo Start", "next_actions")


def test_R_W5_a_cog_field_must_say_what_it_is_prepopulated_from(tmp_path: Path) -> None:
    """R-W5: blue and yellow cog fields are copied from a person-record field."""
    step = _step()
    step["sections"][0]["fields"].append(
        {"key": "dob", "label": "DOB", "type": "date", "cog": "blue"}
    )
    _write(tmp_path, "p.yaml", _pack(step))
    _assert_names(
        _refused(tmp_path), "p.yaml", "Demo Start", "sections[#1].fields['dob'].prepopulate_from"
    )


def test_R_C5_only_a_yes_no_field_is_answered_from_purchase_orders(tmp_path: Path) -> None:
    """R-C5: `yes_from_orders` answers Yes, so it fits a yes/no field only."""
    step = _step()
    step["sections"][0]["fields"].append(
        {"key": "dp", "label": "Direct payment", "type": "text", "yes_from_orders": ["direct_payment"]})
    _write(tmp_path, "p.yaml", _pack(step))
    _assert_names(_refused(tmp_path), "p.yaml", "Demo Start", "sections[#1].fields['dp'].yes_from_orders")


def test_R_W8_a_table_field_needs_columns(tmp_path: Path) -> None:
    """R-W8: a repeating table defines its columns."""
    step = _step()
    step["sections"][0]["fields"].append({"key": "log", "label": "Log", "type": "table"})
    _write(tmp_path, "p.yaml", _pack(step))
    _assert_names(_refused(tmp_path), "p.yaml", "Demo Start", "sections[#1].fields['log'].columns")


def test_R_W8_once_per_must_name_another_column(tmp_path: Path) -> None:
    """R-W8: a once-per-group column is grouped by a sibling column."""
    columns = [{"key": "score", "label": "Score", "type": "number", "once_per": "domain"}]
    step = _step()
    step["sections"][0]["fields"].append(
        {"key": "plan", "label": "Plan", "type": "table", "columns": columns}
    )
    _write(tmp_path, "p.yaml", _pack(step))
    _assert_names(_refused(tmp_path), "p.yaml", "Demo Start", "columns['score'].once_per")


def test_R_W4_a_field_key_appears_once_in_a_step(tmp_path: Path) -> None:
    """R-W4: saved values are keyed by field key, so a key is unique across sections."""
    step = _step()
    step["sections"].append(copy.deepcopy(step["sections"][0]) | {"number": 2})
    _write(tmp_path, "p.yaml", _pack(step))
    _assert_names(_refused(tmp_path), "p.yaml", "Demo Start", "sections[#2].fields['notes']")


def test_R_W4_section_numbers_must_strictly_increase(tmp_path: Path) -> None:
    """R-W4: sections are numbered in order."""
    step = _step()
    step["sections"].append({"number": 1, "title": "Again", "fields": []})
    _write(tmp_path, "p.yaml", _pack(step))
    _assert_names(_refused(tmp_path), "p.yaml", "Demo Start", "sections[#1].number")


def test_R_W7_carried_sections_must_exist_in_the_earlier_step(tmp_path: Path) -> None:
    """R-W7: a step can only carry sections the earlier step type has."""
    later = _step("Demo Later")
    later["carried_sections"] = [
        {"from_step_type": "Demo Start", "from_section": 2, "to_section": 3}
    ]
    later["sections"] = []
    _write(tmp_path, "p.yaml", _pack(_step(), later))
    _assert_names(_refused(tmp_path), "p.yaml", "Demo Later", "carried_sections[0]")


def test_R_W7_carried_sections_cannot_clash_with_the_steps_own(tmp_path: Path) -> None:
    """R-W7: a carried section number cannot also be one of the step's own sections."""
    later = _step("Demo Later")
    later["carried_sections"] = [
        {"from_step_type": "Demo Start", "from_section": 1, "to_section": 1}
    ]
    _write(tmp_path, "p.yaml", _pack(_step(), later))
    _assert_names(_refused(tmp_path), "p.yaml", "Demo Later", "carried_sections[0]")


def test_an_unknown_team_id_is_refused(tmp_path: Path) -> None:
    """Team ids must be in some pack's teams map, so a typo cannot strand work."""
    action = {
        "action": "Go",
        "target_step_type": "Demo Start",
        "assignee_kind": "team",
        "default_team": "no-such-team",
    }
    _write(tmp_path, "p.yaml", _pack(_step(actions=[action])))
    _assert_names(_refused(tmp_path), "p.yaml", "Demo Start", "next_actions['Go'].default_team")


def test_R_RQ1_a_notification_cannot_be_required(tmp_path: Path) -> None:
    """R-RQ1: notifications are information only, so they cannot block Finish."""
    step = _step()
    step["requests"] = [{"name": "(N) FYI", "kind": "notification", "required": True}]
    _write(tmp_path, "p.yaml", _pack(step))
    _assert_names(_refused(tmp_path), "p.yaml", "Demo Start", "requests['(N) FYI'].required")


def test_an_unknown_key_is_refused_naming_file_step_and_location(tmp_path: Path) -> None:
    """Pydantic errors become PackErrors naming the file, the step and where in it."""
    step = _step()
    step["sections"][0]["fields"][0]["colour"] = "red"
    _write(tmp_path, "p.yaml", _pack(step))
    error = _refused(tmp_path)
    _assert_names(error, "p.yaml", "Demo Start (steps[0])", "sections[#1].fields['notes'].colour")


def test_a_wrong_literal_is_refused_naming_file_step_and_location(tmp_path: Path) -> None:
    """An assignee kind outside worker/team/self/none is a PackError at that action."""
    action = {"action": "Go", "target_step_type": "Demo Start", "assignee_kind": "anyone"}
    _write(tmp_path, "p.yaml", _pack(_step(actions=[action])))
    _assert_names(_refused(tmp_path), "p.yaml", "steps[0]", "next_actions['Go'].assignee_kind")


def test_an_unknown_rule_name_is_refused(tmp_path: Path) -> None:
    """Rules implemented in code are a fixed set of names."""
    step = _step() | {"rules": ["close_everything"]}
    _write(tmp_path, "p.yaml", _pack(step))
    _assert_names(_refused(tmp_path), "p.yaml", "Demo Start", "rules")


def test_a_pack_level_type_error_names_the_file(tmp_path: Path) -> None:
    """A pack whose version is not an integer is refused with the file and field."""
    _write(tmp_path, "p.yaml", _pack() | {"version": "one"})
    error = _refused(tmp_path)
    assert error.file.endswith("p.yaml") and error.step is None and error.field == "version"


def test_invalid_yaml_is_refused_naming_the_file(tmp_path: Path) -> None:
    """A file that is not YAML stops loading with its name."""
    (tmp_path / "broken.yaml").write_text("steps: [unclosed", encoding="utf-8")
    assert _refused(tmp_path).file.endswith("broken.yaml")


# --- R-W10: a pack whose fields, actions or sign-offs no named role can reach does not load ----


def test_R_W10_a_field_owned_by_a_role_the_step_does_not_name_stops_the_pack(tmp_path: Path) -> None:
    """R-W10: Business Support owns a field of a step only social workers work: nobody could write it."""
    step = _step()
    step["sections"][0]["fields"].append({"key": "minutes", "label": "Minutes", "type": "textarea",
                                          "owner_role": "business_support"})
    _write(tmp_path, "p.yaml", _pack(step))
    _assert_names(_refused(tmp_path), "p.yaml", "Demo Start", "sections.minutes")
    step["contributors"] = ["business_support"]
    _write(tmp_path, "p.yaml", _pack(step))
    load_packs(tmp_path)


def test_R_W10_an_action_no_role_of_the_step_may_add_stops_the_pack(tmp_path: Path) -> None:
    """R-W10: seed 003's Multi Agency Meeting had only a Business-Support action and no way for them in."""
    step = _step(actions=[{"action": "Minutes Completed (NFA)", "nfa": True, "added_by_roles": ["business_support"]}])
    _write(tmp_path, "p.yaml", _pack(step))
    _assert_names(_refused(tmp_path), "p.yaml", "Demo Start", "next_actions['Minutes Completed (NFA)'].added_by_roles")


def test_R_W10_R_RQ5_a_required_sign_off_sent_to_a_role_that_cannot_sign_stops_the_pack(tmp_path: Path) -> None:
    """R-RQ5: a REQUIRED authorisation request for a TM/HoS plan cannot default to an assistant team manager."""
    step = _step()
    step["authorisers"] = ["team_manager", "head_of_service"]
    step["requests"] = [{"name": "REQUIRED Please Authorise Support Plan", "kind": "request", "required": True,
                         "default_to": {"kind": "role", "id": "assistant_team_manager"}}]
    _write(tmp_path, "p.yaml", _pack(step))
    error = _refused(tmp_path)
    _assert_names(error, "p.yaml", "Demo Start", "requests['REQUIRED Please Authorise Support Plan'].default_to.id")
    assert "R-RQ5" in error.problem


def test_R_W10_a_pack_must_say_who_works_its_steps(tmp_path: Path) -> None:
    """R-W10: without worked_by on the pack or the step, nobody is known to be able to finish it."""
    pack = _pack()
    del pack["worked_by"]
    _write(tmp_path, "p.yaml", pack)
    _assert_names(_refused(tmp_path), "p.yaml", "Demo Start", "worked_by")


@pytest.mark.parametrize(("grant", "field", "words"), [
    ({}, "start_new[0]", "roles or teams"),
    ({"teams": ["nowhere-team"]}, "start_new[0].teams", "nowhere-team"),
    ({"roles": ["gso"]}, "start_new[0].roles", "worked_by"),
])
def test_R_W12_a_start_new_grant_names_who_may_start_and_can_work_the_step(
    tmp_path: Path, grant: dict[str, Any], field: str, words: str,
) -> None:
    """R-W12: a grant naming nobody (anyone could start it), an unknown team, or a role that can neither work
    the step nor assign it on does not load."""
    step = _step()
    step["start_new"] = [grant]
    _write(tmp_path, "p.yaml", _pack(step))
    error = _refused(tmp_path)
    _assert_names(error, "p.yaml", "Demo Start", field)
    assert words in error.problem


def test_a_pack_team_the_catalogue_does_not_know_stops_the_pack(tmp_path: Path) -> None:
    """§9: teams are named in one place, shared/teams.yaml; a pack lists ids the catalogue knows."""
    pack = _pack()
    pack["teams"] = ["adult-front-door", "nowhere-team"]
    _write(tmp_path, "p.yaml", pack)
    error = _refused(tmp_path)
    assert error.field == "teams[1]" and "nowhere-team" in error.problem


@pytest.mark.parametrize(("field", "words"), [
    ({"key": "notes", "label": "Notes", "type": "textarea"}, "not a select"),
    ({"key": "notes", "label": "Team", "type": "select", "options": ["Wellbeing Service North", "Elsewhere"]},
     "Elsewhere"),
])
def test_a_team_from_field_is_a_select_of_team_names(tmp_path: Path, field: dict[str, Any], words: str) -> None:
    """§9: the field whose choice becomes the next action's team must offer team names only."""
    step = _step(actions=[{"action": "Onward", "target_step_type": "Demo Start", "assignee_kind": "team",
                           "team_from_field": "notes"}])
    step["sections"][0]["fields"] = [field]
    _write(tmp_path, "p.yaml", _pack(step))
    error = _refused(tmp_path)
    _assert_names(error, "p.yaml", "Demo Start", "next_actions['Onward'].team_from_field")
    assert words in error.problem
