"""The adult (seeds 001, 002) and Children in Need (seed 003) packs: they load, and the seed facts hold."""

from __future__ import annotations

from collections.abc import Sequence, Set
from typing import Any, get_args

import pytest

from services.workflow import domain
from services.workflow.pack import (
    Field,
    PackRegistry,
    RequestDefinition,
    Role,
    StepDefinition,
)
from shared.actor import held_roles
from tests.workflow_harness import Engine, actor, shipped_packs

ATM_TM = ("team_manager", "assistant_team_manager")
TM_HOS = ("team_manager", "head_of_service")
CLOSE_CASE = "No further involvement from the department – close case"
OTHER_WORKFLOW = "No further action – other workflow continues (NFA)"
SAP_REQUEST = "REQUIRED Please Authorise Support Plan"
REVIEW_REQUEST = "REQUIRED Please review Assessment/Statement of Need/Review and confirm Outcomes"
INFO_REQUEST = "REQUIRED Please review information and confirm outcome"
CFA = "Child and Family Assessment and Plan"
MAM = "Child in Need Multi Agency Meeting"
STEP_DOWN = "Step Down to Preventative Services"

# R-C2 and seed 001 §3.1/§3.3/§4: the adult step types, with who signs them (R-RQ5).
ADULT_SIGNERS: dict[str, tuple[str, ...]] = {
    "Supported Self Assessment": ATM_TM,
    "Assessment Review": ATM_TM,
    "Statement of Need": ATM_TM,
    "Care and Support Plan": TM_HOS,
    "Initial Review": ATM_TM,
    "Review Planning": (),
    "Planned Short Review": ATM_TM,
    "Telephone Wellbeing Review": ATM_TM,
    "Professional Support": ATM_TM,
    "Interim Support Plan": TM_HOS,
    "Mental Capacity Assessment": ATM_TM,
    "Carers Assessment": ATM_TM,
    "On-going Carer Review": ATM_TM,
    "Statement of Need – carer": ATM_TM,
    "Carer Support Plan": TM_HOS,
    "Carer Wellbeing check": ATM_TM,
    "Referral for Appointeeship or Deputyship": ("head_of_service",),
    "Close Case": ATM_TM,
    "Adult at Risk – Initial Enquiry": ATM_TM,
    "Adult at Risk – Further Enquiry and Plan": ATM_TM,
    "Adult at Risk – Further Enquiry and Report": ATM_TM,
    "Adult at Risk – Safeguarding Plan Review": ATM_TM,
    "DOLS Assessment": ATM_TM,
    "DOLS Renewal/Review": ATM_TM,
}
CHILDREN_STEPS = {
    CFA,
    MAM,
    "Child in Need Visit",
    "Child or Young Person in Need Review",
    STEP_DOWN,
    "Significant Information on an Open Case",
    "Purchase Services: Children's",
}
# CONTRACTS "Referral intake": each first step with its team inbox.
INTAKE_FIRST_STEPS = {
    "Adult Contact": "adult-front-door",
    "Adult Safeguarding Triage": "adult-safeguarding",
    "Adult Carer Triage": "adult-carers",
    CFA: "children-response",
    "Significant Information on an Open Case": "children-response",
}


def _pack_steps(shipped: PackRegistry, name: str) -> list[StepDefinition]:
    [pack] = [pack for pack in shipped.packs if pack.name == name]
    return [shipped.step(step.step_type) for step in pack.steps]


def _fields(step: StepDefinition) -> dict[str, Field]:
    return step.field_map()


# --- loading --------------------------------------------------------------------------------


def test_R_C2_R_C3_the_packs_load_with_the_existing_ones(shipped: PackRegistry) -> None:
    """R-C2, R-C3: adult and children packs load beside Wellbeing, adult closure and Future Work."""
    names = {pack.name for pack in shipped.packs}
    assert {"wellbeing", "adult_closure", "adult", "children"} <= names
    assert set(ADULT_SIGNERS) | {"Adult Contact", "Pause and Go"} <= {
        s.step_type for s in _pack_steps(shipped, "adult")}
    assert {s.step_type for s in _pack_steps(shipped, "children")} >= CHILDREN_STEPS


def test_every_referral_intake_first_step_exists_with_its_default_team(shipped: PackRegistry) -> None:
    """CONTRACTS "Referral intake": each adult and children first step has its team inbox."""
    for step_type, team in INTAKE_FIRST_STEPS.items():
        assert shipped.step(step_type).default_team == team
        assert domain.FIRST_STEP_TEAMS[step_type] == team
        assert shipped.team_name(team)


def test_every_role_the_packs_name_is_a_known_role(shipped: PackRegistry) -> None:
    """Authorisers, owners, added-by and sends-to roles are all in the Role literal."""
    roles = set(get_args(Role))
    for step in _pack_steps(shipped, "adult") + _pack_steps(shipped, "children"):
        named = set(step.authorisers)
        named |= {f.owner_role for f in _fields(step).values() if f.owner_role}
        for action in step.next_actions:
            named |= set(action.added_by_roles) | ({action.sends_to_role} - {None})
        assert named <= roles, step.step_type


# --- authorisation (R-RQ4..R-RQ7) -------------------------------------------------------------


def test_R_RQ5_who_may_authorise_each_adult_step_type(shipped: PackRegistry) -> None:
    """R-RQ5: ATM or TM; support plans only TM or HOS; appointeeship only HOS (seed 001 §3.3)."""
    actual = {step_type: shipped.step(step_type).authorisers for step_type in ADULT_SIGNERS}
    assert actual == ADULT_SIGNERS


def test_R_RQ5_a_supervising_social_worker_never_authorises(shipped: PackRegistry) -> None:
    """R-RQ5, seed 001 §3.2: social workers quality assure but are not able to authorise."""
    for step in _pack_steps(shipped, "adult") + _pack_steps(shipped, "children"):
        assert not {"social_worker", "response_social_worker", "locality_social_worker",
                    "lac_social_worker"} & set(step.authorisers), step.step_type


def test_R_RQ4_every_authorised_step_has_a_required_request_so_the_worker_cannot_sign(
    shipped: PackRegistry,
) -> None:
    """R-RQ4: the worker sends a REQUIRED request; only an authoriser then finishes (two-part)."""
    for step in _pack_steps(shipped, "adult") + _pack_steps(shipped, "children"):
        required = [r for r in step.requests if r.required and r.kind == "request"]
        if step.authorisers:
            assert required, step.step_type
            assert domain.two_part(step), step.step_type


def test_R_RQ4_the_seed_001_request_names_by_kind_of_work(shipped: PackRegistry) -> None:
    """Seed 001 §2.2: "Please Authorise Support Plan" for plans, the review request for assessments."""
    def required(step_type: str) -> str:
        return next(r.name for r in shipped.step(step_type).requests if r.required)

    for plan in ("Care and Support Plan", "Interim Support Plan", "Carer Support Plan"):
        assert required(plan) == SAP_REQUEST
    for review in ("Supported Self Assessment", "Statement of Need", "Planned Short Review",
                   "Telephone Wellbeing Review", "Initial Review", "Carers Assessment"):
        assert required(review) == REVIEW_REQUEST
    for other in ("Professional Support", "Mental Capacity Assessment", "Close Case"):
        assert required(other) == INFO_REQUEST
    appointeeship = shipped.step("Referral for Appointeeship or Deputyship").request(INFO_REQUEST)
    assert appointeeship.default_to is not None and appointeeship.default_to.id == "head_of_service"


def test_R_RQ6_review_planning_is_the_workers_own_green_tick(shipped: PackRegistry) -> None:
    """R-RQ6: no authoriser and no REQUIRED request; both outcomes come back to the worker."""
    planning = shipped.step("Review Planning")
    assert planning.authorisers == ()
    assert not any(r.required for r in planning.requests)
    assert not domain.two_part(planning)
    assert {(a.action, a.target_step_type, a.assignee_kind) for a in planning.next_actions} == {
        ("Planned Short Review", "Planned Short Review", "self"),
        ("Assessment Review", "Assessment Review", "self"),
    }
    # it is the only step of the §3.3 table the worker signs off themselves
    unsigned = {step_type for step_type, signers in ADULT_SIGNERS.items() if not signers}
    assert unsigned == {"Review Planning"}


def test_R_RQ7_step_down_is_two_part_social_worker_then_fyps_manager(shipped: PackRegistry) -> None:
    """R-RQ7: section 1 by the social worker, a request to the FYPS manager, section 2 and the action by them."""
    step = shipped.step(STEP_DOWN)
    assert domain.two_part(step)
    assert step.authorisers == ("preventative_services_manager",)
    request = step.request("Please review information")
    assert (request.kind, request.required) == ("request", True)
    assert request.default_to is not None and request.default_to.id == "preventative_services_manager"
    by_section = {s.number: {f.owner_role for f in s.fields} for s in step.form_sections}
    assert by_section == {1: {"social_worker"}, 2: {"preventative_services_manager"}}
    [action] = step.next_actions
    assert (action.action, action.target_step_type, action.added_by_roles, action.assignee_kind,
            action.sends_to_role) == ("Preventative Services Assessment", "Preventative Services Assessment",
                                      ("preventative_services_manager",), "worker", "fyps_worker")
    for source, name in ((CFA, "Step down to Preventative Services"),
                         ("Child or Young Person in Need Review", "Stepdown to Early Help")):
        down = shipped.step(source).next_action(name)
        assert (down.target_step_type, down.assignee_kind, down.send_immediately) == (
            STEP_DOWN, "self", "allowed")


# --- field owners (R-W6) ------------------------------------------------------------------------


def test_R_W6_child_and_family_assessment_fields_name_their_owner_role(shipped: PackRegistry) -> None:
    """R-W6, R-W10: the children's social worker's and manager's fields, or System Generated (seed 003).

    The Response worker writes it first; the Locality or LAC worker updates it later ("Update Child
    and Family Assessment and Plan"), so the generic roles own what seed 003 gives the Response team.
    """
    fields = _fields(shipped.step(CFA))
    for key in ("assessment_timescale", "target_date_for_plan", "managers_review_scale",
                "manager_comments", "managers_name", "date_assessment_completed"):
        assert fields[key].owner_role == "team_manager", key
    for key in ("communication_needs", "legal_status", "date_assessment_started", "referral_date",
                "review_completed", "chronology", "worries", "existing_strengths",
                "analysis_and_judgement", "what_needs_to_happen", "risks_needs_identified"):
        assert fields[key].owner_role == "social_worker", key
    assert fields["social_workers_details"].system_generated
    # every writable field has an owner: the seed gives one for each
    for key, f in fields.items():
        assert f.owner_role or f.system_generated or f.cog == "blue", key
    assert (fields["assessment_timescale"].mandatory, fields["review_completed"].mandatory) == (True, True)


def test_R_W6_shared_steps_are_owned_by_the_generic_roles(shipped: PackRegistry) -> None:
    """R-W6: "Response/Locality Social Worker" → social_worker; "… Manager" → team_manager."""
    meeting = _fields(shipped.step(MAM))
    assert meeting["analysis_and_judgement"].owner_role == "social_worker"
    assert meeting["manager_comments"].owner_role == "team_manager"
    visit = _fields(shipped.step("Child in Need Visit"))
    assert visit["childrens_details"].system_generated
    assert {visit[k].owner_role for k in ("child_seen", "type_of_visit", "visit_datetime")} == {"social_worker"}
    pf = shipped.step(CFA).form("Private Fostering Assessment")
    owners = {s.title: {f.owner_role for f in s.fields} for s in pf.sections}
    assert owners["Proposed Carers"] == {"fpt_social_worker"}
    assert all(f.system_generated for f in pf.sections[0].fields)


def test_R_W6_a_worker_without_the_owner_role_cannot_write_the_managers_field(shipped: PackRegistry) -> None:
    """R-W6 through the engine: a Response Social Worker cannot write the Assessment Timescale; a Locality one
    writes the assessment they update (R-W10), and a Response or Locality Manager the timescale."""
    defn = shipped.step(CFA)
    step = domain.Step("s", "w", "p", CFA, 1, "incomplete", "worker", "rsw", "normal", None, "rsw", {})  # type: ignore[arg-type]
    worker = domain.Actor("rsw", frozenset({"response_social_worker"}))
    locality = domain.Actor("lsw", frozenset({"locality_social_worker"}))
    timescale = {"assessment_timescale": "45 working days"}
    assert [r.code for r in domain.save_problems(defn, step, timescale, worker)] == ["role"]
    assert domain.save_problems(defn, step, {"worries": "x"}, locality) == []
    for role in ("response_manager", "locality_manager"):
        manager = domain.Actor("rm", frozenset({role}))
        assert domain.save_problems(defn, step, timescale, manager) == []
    assert [r.code for r in domain.save_problems(defn, step, {"social_workers_details": "x"}, manager)] == [
        "read_only"]


# --- actions: added by, sent to (R-NA5), routing (R-K7), purchasing (R-F1) -------------------


def test_R_NA5_child_and_family_assessment_actions_are_added_by_its_social_worker(
    shipped: PackRegistry,
) -> None:
    """R-NA5: "Added By: Response Social Worker" (or the Locality/LAC worker updating it); each goes where seed 003
    says."""
    step = shipped.step(CFA)
    assert {a.added_by_roles for a in step.next_actions} == {
        ("response_social_worker", "locality_social_worker", "lac_social_worker")}
    where = {a.action: (a.assignee_kind, a.default_team, a.sends_to_role) for a in step.next_actions}
    assert where["Child In Need Visit"] == ("team", "children-locality", "locality_manager")
    assert where["Close Case to Children's Services"] == ("worker", None, "response_manager")
    assert where["Seek Legal Advice"] == ("self", None, None)
    assert where["Child Sexual Exploitation Screening (SERAF)"] == ("team", None, None)  # FYPS North or South
    assert where["Assessment Completed (NFA)"] == ("none", None, None)
    assert len(step.next_actions) == 15
    required = [r.name for r in step.requests if r.required]
    assert required == ["REQUIRED: Please review information and confirm next action",
                        "REQUIRED: Request for team manager to review"]  # seed 003: both REQUIRED


def test_R_NA5_the_minutes_are_completed_by_business_support(shipped: PackRegistry) -> None:
    """Seed 003: "Minutes Completed — Added By: Business Support"; plan and minutes distributed by them."""
    step = shipped.step(MAM)
    assert step.next_action("Minutes Completed (NFA)").added_by_roles == ("business_support",)
    distribute = step.request("Please distribute Plan and Minutes")
    assert distribute.default_to is not None and distribute.default_to.id == "children-business-support"


def test_R_K7_the_multi_agency_meeting_names_the_45_day_routing_rule(shipped: PackRegistry) -> None:
    """R-K7: the engine routes the meeting to Response within 45 days, else to Locality."""
    meeting = shipped.step(MAM)
    assert "cin_45_day_routing" in meeting.rules
    assert meeting.default_team == "children-locality"
    assert set(meeting.authorisers) == {"response_manager", "locality_manager"}
    action = shipped.step(CFA).next_action(MAM)
    assert (action.target_step_type, action.default_team) == (MAM, "children-locality")
    assert shipped.team_name("children-response") and shipped.team_name("children-locality")
    # the rule is named on that step type only
    assert [s.step_type for s in _pack_steps(shipped, "children") if "cin_45_day_routing" in s.rules] == [MAM]


def test_R_F1_purchase_actions_go_to_their_teams(shipped: PackRegistry) -> None:
    """R-F1: Brokerage purchasing request, Direct payments, Telecare and Purchase services."""
    teams = {"Brokerage purchasing request": "adult-brokerage", "Direct payments": "adult-direct-payments",
             "Telecare": "adult-purchasing-processing"}
    for step_type in ("Care and Support Plan", "Planned Short Review"):
        for name, team in teams.items():
            action = shipped.step(step_type).next_action(name)
            assert (action.target_step_type, action.assignee_kind, action.default_team) == (name, "team", team)
            assert shipped.step(name).default_team == team
    interim = {a.action for a in shipped.step("Interim Support Plan").next_actions}
    assert {"Brokerage purchasing request", "Telecare"} <= interim
    carer = shipped.step("Carer Support Plan").next_action("Purchase services – Carer Services")
    assert (carer.assignee_kind, carer.default_team) == ("team", None)  # Brokerage or Direct Payments
    assert shipped.team_name("adult-purchasing-processing") == "Adult Purchasing Processing Team"
    assert "Purchase Services: Children's" in shipped.step_types()


def test_R_C2_financial_assessment_goes_to_the_finance_team(shipped: PackRegistry) -> None:
    """Seed 001 §3.3: "Financial assessment – choose Finance Team" from the SSA and the SON."""
    for step_type in ("Supported Self Assessment", "Assessment Review", "Statement of Need"):
        action = shipped.step(step_type).next_action("Financial assessment")
        assert (action.assignee_kind, action.default_team) == ("team", "adult-finance")


def test_R_C2_care_and_support_plan_outcomes(shipped: PackRegistry) -> None:
    """R-C2: Initial Review (4–6 weeks) / Future Work / Professional Support / close."""
    plan = shipped.step("Care and Support Plan")
    actions = {a.action: a for a in plan.next_actions}
    assert {"Future Work", "Initial Review", "Professional support", CLOSE_CASE} <= set(actions)
    assert actions["Initial Review"].scheduled_window_days == (28, 42)
    assert actions["Future Work"].target_step_type == "Future Work"
    assert actions[CLOSE_CASE].target_step_type == "Close Case"
    # "There is no professional support or initial review here"
    short = {a.action for a in shipped.step("Planned Short Review").next_actions}
    assert not {"Initial Review", "Professional support"} & short
    # "Initial Review ... only found as a next action in the care and support plan"
    creators = {s.step_type for s in _pack_steps(shipped, "adult")
                if any(a.target_step_type == "Initial Review" for a in s.next_actions)}
    assert creators == {"Care and Support Plan"}


def test_R_C2_carers_path(shipped: PackRegistry) -> None:
    """R-C2: Carers Assessment → Statement of Need – carer → Carer Support Plan → On-going Carer Review."""
    chain = ["Carers Assessment", "Statement of Need – carer", "Carer Support Plan", "On-going Carer Review"]
    for earlier, later in zip(chain, chain[1:], strict=False):
        assert later in {a.target_step_type for a in shipped.step(earlier).next_actions}, earlier
    pause = shipped.step("Pause and Go")
    assert {a.target_step_type for a in pause.next_actions} == {
        "Carers Assessment", "Professional Support", "Supported Self Assessment"}
    assert shipped.step("Adult Contact").next_action("Pause and Go").assignee_kind == "self"


def test_R_K9_the_carers_checklist_is_where_seed_001_puts_it(shipped: PackRegistry) -> None:
    """R-K9: section 1 of the SSA and TWR, section 3 of the Planned Short Review, one row per carer."""
    for step_type, number in (("Supported Self Assessment", 1), ("Telephone Wellbeing Review", 1),
                              ("Planned Short Review", 3)):
        section = next(s for s in shipped.step(step_type).form_sections if s.number == number)
        keys = {f.key for f in section.fields}
        assert {"has_informal_carers", "carers"} <= keys, step_type
        carers = next(f for f in section.fields if f.key == "carers")
        assert {c.key for c in carers.columns} >= {
            "assessment_offered", "offer_accepted", "reason_not_accepted", "assessment_type",
            "young_carer", "carer_person_id"}
        assert shipped.step(step_type).request("Referral to Children's and young person's services")


def test_R_K10_support_plans_hold_a_budget_the_system_costs(shipped: PackRegistry) -> None:
    """R-K10: rate × hours × weeks (respite weeks out of 52); costs are system generated."""
    for step_type in ("Care and Support Plan", "Interim Support Plan", "Planned Short Review",
                      "Carer Support Plan"):
        fields = _fields(shipped.step(step_type))
        columns = {c.key: c for c in fields["planned_services"].columns}
        assert {"hourly_rate", "hours_per_week", "respite_weeks"} <= set(columns)
        assert all(columns[k].system_generated for k in ("weeks_per_year", "weekly_cost", "annual_cost"))
        assert fields["total_annual_cost"].system_generated


def test_R_K5_R_K1_R_K6_rules_named_on_their_steps(shipped: PackRegistry) -> None:
    """R-K5 on the Telephone Wellbeing Review; R-K1 on both closures; R-K6 every 4 weeks."""
    assert "two_twr_limit" in shipped.step("Telephone Wellbeing Review").rules
    for closure in ("Close Case", "Close Case to Children's Services"):
        assert "case_closure_guard" in shipped.step(closure).rules
    assert shipped.step("Professional Support").renewal_days == 28
    assert shipped.step("Professional Support").next_action("On-going professional support").target_step_type == (
        "Professional Support")


def test_R_C4_interim_homecare_transfer(shipped: PackRegistry) -> None:
    """Seed 002, R-F2: PSP to the interim DSO sent immediately with a reason; mandatory end date request."""
    psp = shipped.step("Personal Service Plan Homecare")
    transfer = psp.next_action("Personal Service Plan Homecare")
    assert (transfer.assignee_kind, transfer.send_immediately, transfer.reason_required,
            transfer.sends_to_role) == ("worker", "required", True, "domiciliary_service_officer")
    end = psp.request("Service end date request")
    assert end.required and end.default_to is not None and end.default_to.id == "purchase-support-team"
    plan = shipped.step("Create Support Plan")
    brokerage = plan.next_action("Brokerage purchasing request")
    assert any("Long-term PO" in reason for reason in brokerage.reasons)
    assert plan.request("FABO request").default_to is not None
    assert plan.next_action("Review Support Plan").default_team == "area-p-and-p"
    assert shipped.step("Brokerage purchasing request").request("PO request").default_to is not None


# --- every next action through the pure engine, by the guide's roles (tests/workflow_harness.py) --


def _value(f: Field) -> Any:
    match f.type:
        case "text" | "textarea" | "person_ref":
            return "x"
        case "number":
            return 1
        case "bool":
            return True
        case "date":
            return "2024-06-01"
        case "datetime":
            return "2024-06-01T10:00:00"
        case "select":
            return f.options[0]
        case "multiselect":
            return [f.options[0]]
        case "table":
            return [{c.key: _value(c) for c in f.columns if not c.system_generated}]
    raise AssertionError(f.type)


# R-K9: no informal carers, so the carers checklist asks nothing further
NO_CARERS = {"has_informal_carers": False, "carers": []}


class _Crew:
    """R-W10: one single-role worker per role the step type names, each in the step's team."""

    def __init__(self, defn: StepDefinition) -> None:
        self.team = defn.default_team or "the-team"
        self.worker = self.of(defn.worked_by[0])
        self.signer = self.of(defn.authorisers[0]) if defn.authorisers else None
        self.others = [self.of(role) for role in (*defn.contributors, *defn.authorisers, *defn.finished_by)]

    def of(self, role: str) -> dict[str, Any]:
        return actor(role, role, teams=(self.team,))

    def holding(self, roles: Sequence[str]) -> dict[str, Any]:
        """The first of the crew (the worker first) whose one role is, or specialises, one of `roles`."""
        return next(who for who in (self.worker, *self.others) if held_roles(who["roles"]) & set(roles))


def _writes(fields: list[Field], owners: Set[str], unowned: bool) -> dict[str, Any]:
    return {f.key: NO_CARERS.get(f.key, _value(f)) for f in fields
            if not f.system_generated and f.cog != "blue"
            and (f.owner_role in owners if f.owner_role else unowned)}


def _fill(e: Engine, crew: _Crew, defn: StepDefinition, sid: str, fields: list[Field]) -> None:
    """The worker writes the unowned fields and their role's; each contributor only their own role's (R-W10)."""
    for who in (crew.worker, *crew.others):
        held = held_roles(who["roles"])
        contributing = who is not crew.worker and bool(held & set(defn.contributors))
        owners = held & set(defn.contributors) if contributing else held
        values = _writes(fields, owners, unowned=who is crew.worker)
        if values:
            e.send("step.save", who, step_id=sid, values=values)


def _request_and_answer(e: Engine, crew: _Crew, sid: str, r: RequestDefinition) -> None:
    """A sign-off request goes to the signer (authorising completes it, R-RQ4); any other to its team."""
    if r.required and crew.signer:
        e.send("step.send_request", crew.worker, step_id=sid, name=r.name,
               to={"kind": "worker", "id": crew.signer["worker_id"]})
        return
    team = r.default_to.id if r.default_to and r.default_to.kind == "team" else crew.team
    e.send("step.send_request", crew.worker, step_id=sid, name=r.name, to={"kind": "team", "id": team})
    e.send("request.complete", actor("recipient", "business_support", teams=(team,)),
           request_id=e.open_request(sid).request_id)


def _cases(shipped: PackRegistry) -> list[Any]:
    # R-NA5: an "Assign to me" action goes to the worker who added it, also when an authoriser
    # finishes the step (seed 001: SSA → Statement of Need "to self"; seed 003: "Assigned to
    # themselves"); the cases of authorised steps with a self action check exactly that.
    return [pytest.param(step.step_type, action.action)
            for name in ("adult", "children") for step in _pack_steps(shipped, name)
            for action in step.next_actions]


@pytest.mark.parametrize("step_type, action_name", _cases(shipped_packs()))
def test_every_next_action_of_every_step_type_is_reached_by_the_guides_roles(
    shipped: PackRegistry, step_type: str, action_name: str,
) -> None:
    """R-W10, R-NA1..R-NA5, R-RQ4: workers of one role each start, fill, add the action, sign, finish."""
    e = Engine(packs=shipped)
    defn = shipped.step(step_type)
    spec = defn.next_action(action_name)
    crew = _Crew(defn)
    [step] = e.given_step(step_type, crew.worker).created
    sid = step.step_id
    _fill(e, crew, defn, sid, [f for s in defn.sections for f in s.fields])
    if spec.requires_form:
        e.send("step.add_form", crew.worker, step_id=sid, form=spec.requires_form)
        _fill(e, crew, defn, sid, [f for s in defn.form(spec.requires_form).sections for f in s.fields])
    adder = crew.holding(spec.added_by_roles) if spec.added_by_roles else crew.worker
    add: dict[str, Any] = {"action": action_name, "send_immediately": spec.send_immediately == "required"}
    if spec.assignee_kind == "worker":
        add["assignee"] = {"kind": "worker", "id": "next-worker"}
    elif spec.assignee_kind == "team" and spec.default_team is None:
        add["assignee"] = {"kind": "team", "id": "adult-brokerage"}
    if spec.reason_required:
        add["reason"] = spec.reasons[0]
    e.send("step.add_next_action", adder, step_id=sid, **add)
    # R-F3: a request REQUIRED when a bool field is true (the fill sets every bool true)
    required = [r for r in defn.requests if r.required or r.required_when is not None]
    for r in required:
        _request_and_answer(e, crew, sid, r)
    if crew.signer:
        e.send("step.authorise", crew.signer, step_id=sid)  # R-RQ4: completes the requests sent to them
    else:
        e.send("step.finish", crew.worker, step_id=sid)
    assert e.steps[sid].state == "finished"
    [added] = e.steps[sid].next_actions
    if spec.nfa:
        assert added.created_step_id is None
        return
    created = e.steps[added.created_step_id]
    assert created.step_type == spec.target_step_type
    assert created.state in {"incoming", "future"}
    expected = {"self": ("worker", adder["worker_id"]), "worker": ("worker", "next-worker"),
                "team": ("team", spec.default_team or "adult-brokerage")}[spec.assignee_kind]
    if "cin_45_day_routing" in shipped.step(created.step_type).rules:  # R-K7: Response or Locality
        assert (created.assignee_kind, created.assignee_id) in {expected, ("team", "children-response")}
    else:
        assert (created.assignee_kind, created.assignee_id) == expected


# --- R-W5: the referral's own details prefill the first step (issue #22 §7) ---------------------


def test_R_W5_the_referral_received_late_on_a_summer_evening_is_dated_by_london(shipped: PackRegistry) -> None:
    """23:30 UTC on 1 May is 00:30 on 2 May in London: the screening says it was received on the 2nd."""
    referral = {"received_at": "2024-05-01T23:30:00+00:00", "reason": "Fell at home", "consent_to_share": True,
                "referrer": {"name": "Sam Referrer", "organisation": "GP practice"}}
    source = {"first_name": "Ann", "referral": domain.referral_values(referral)}
    values = domain.prepopulated(shipped.step("WB Wellbeing Screening"), source, cogs=frozenset({"yellow"}))
    assert (values["referral_date"], values["reason_for_referral"], values["consent_to_share"]) == (
        "2024-05-02", "Fell at home", True)
    assert values["referrer_details"] == "Sam Referrer, GP practice"
    for step_type, key in (("Adult Contact", "contact_date"), (CFA, "referral_date")):
        assert domain.prepopulated(shipped.step(step_type), source, cogs=frozenset({"yellow"}))[key] == "2024-05-02"
