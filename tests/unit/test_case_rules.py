"""Case-level rules of the adult and children packs on the pure engine (issue 7).

R-NA5 "assign to me" on authorised steps, R-K7 45-day routing, R-K5 two Telephone Wellbeing
Reviews in a row, R-RQ4..R-RQ6 authorisation by role, R-K9 carers checklist, R-K10 budgets,
R-W6 system-generated fields, R-K8 death notification. Dates are Europe/London.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.workflow import domain, purchasing
from services.workflow.pack import DEFINITIONS_DIR, PackError, PackRegistry, load_packs
from tests.workflow_harness import PERSON, Engine, actor, codes

PID = PERSON["person_id"]
CARER = "00000000-0000-4000-8000-0000000000c1"
SW = actor("sw", "social_worker", teams=("adult-review",))
SW2 = actor("sw2", "social_worker", teams=("adult-review",))
TM = actor("tm", "team_manager", teams=("adult-review",))  # the social workers' own managers (R-W14)
ATM = actor("atm", "assistant_team_manager", teams=("adult-review",))
HOS = actor("hos", "head_of_service")
RSW = actor("rsw", "response_social_worker", teams=("children-response",))
RM = actor("rm", "response_manager", teams=("children-response",))
TWR = "Telephone Wellbeing Review"
PSR = "Planned Short Review"
PLAN = "Care and Support Plan"
MCA = "Mental Capacity Assessment"
CFA = "Child and Family Assessment and Plan"
MAM = "Child in Need Multi Agency Meeting"
FW = "Future Work"
REVIEW_REQUEST = "REQUIRED Please review Assessment/Statement of Need/Review and confirm Outcomes"
INFO_REQUEST = "REQUIRED Please review information and confirm outcome"
SAP_REQUEST = "REQUIRED Please Authorise Support Plan"
CFA_REQUESTS = ("REQUIRED: Please review information and confirm next action",
                "REQUIRED: Request for team manager to review")
OTHER_WORKFLOW = "No further action – other workflow continues (NFA)"
YOUNG_CARER = "Referral to Children's and young person's services"
TO_TM = {"kind": "worker", "id": "tm"}

NO_CARERS = {"has_informal_carers": False, "carers": []}
REVIEW = {"review_date": "2024-06-01", "review_summary": "Reviewed by telephone", "annual_review_date": "2025-01-10"}
DOMICILIARY = {"service": "Domiciliary care", "hourly_rate": "16.05", "hours_per_week": 10, "respite_weeks": 6}
PA = {"service": "Personal assistant (PA) support", "hourly_rate": 12.20, "hours_per_week": 7.5}
PLAN_VALUES = {"planned_services": [DOMICILIARY, PA], "annual_review_date": "2025-01-10",
               "plan_outcomes": "Safe at home"}
PSR_VALUES = {"holistic_summary": "Doing well", **NO_CARERS, "planned_services": [DOMICILIARY],
              "annual_review_date": "2025-01-10", "review_date": "2024-06-01"}


def started(e: Engine, step_type: str, who: dict[str, Any] = SW, person_id: str = PID, **extra: Any) -> str:
    """A new workflow's first step opened by `who` for themselves: incomplete at once."""
    [step] = e.given_step(step_type, who, person_id=person_id, **extra).created
    return step.step_id


def authorised(e: Engine, sid: str, action: str, request: str, *, worker: dict[str, Any] = SW,
               manager: dict[str, Any] = TM, **add: Any) -> domain.Decision:
    """The worker adds the action and sends the REQUIRED request; the manager completes it and authorises."""
    e.send("step.add_next_action", worker, step_id=sid, action=action, **add)
    e.send("step.send_request", worker, step_id=sid, name=request, to={"kind": "worker", "id": manager["worker_id"]})
    e.send("request.complete", manager, request_id=e.open_request(sid).request_id)
    return e.send("step.authorise", manager, step_id=sid)


def finished_twr(e: Engine) -> str:
    sid = started(e, TWR)
    e.send("step.save", SW, step_id=sid, values={**NO_CARERS, **REVIEW})
    authorised(e, sid, OTHER_WORKFLOW, REVIEW_REQUEST)
    assert e.steps[sid].state == "finished"
    return sid


# --- R-NA5: "Assign to me" is the worker who added the action -----------------------------------


def test_R_NA5_an_assign_to_me_action_on_an_authorised_step_goes_to_the_worker_who_added_it(e: Engine) -> None:
    sid = started(e, TWR)
    e.send("step.save", SW, step_id=sid, values={**NO_CARERS, **REVIEW})
    d = authorised(e, sid, "Interim Support Plan", REVIEW_REQUEST, assignee={"kind": "worker", "id": "sw2"})
    [created] = d.created
    assert (created.assignee_kind, created.assignee_id) == ("worker", "sw2")
    plan = started(e, "Statement of Need")
    e.send("step.save", SW, step_id=plan, values={"eligible_needs_summary": "x",
                                                 "son_outcome": "Care and support plan required"})
    d = authorised(e, plan, PLAN, REVIEW_REQUEST)  # "Care and Support Plan" is assigned to self
    [created] = d.created
    assert (created.step_type, created.assignee_kind, created.assignee_id) == (PLAN, "worker", "sw")
    [finished] = [ev for ev in d.events if type(ev).TYPE == "step.finished"]
    assert finished.next_actions[0].assignee.id == "sw"  # the event says so too, not the authoriser


# --- R-K7: the Multi Agency Meeting within 45 days goes to Response, else to Locality -----------


def cfa_ready_for_authorisation(e: Engine, started_on: str | None) -> str:
    sid = started(e, CFA, RSW)
    values: dict[str, Any] = {"assessment_type": "Signs of Wellbeing", "review_completed": True}
    if started_on:
        values["date_assessment_started"] = started_on
    e.send("step.save", RSW, step_id=sid, values=values)
    e.send("step.add_next_action", RSW, step_id=sid, action=MAM)
    for name in CFA_REQUESTS:  # seed 003: both REQUIRED; authorising completes them (R-RQ4)
        e.send("step.send_request", RSW, step_id=sid, name=name, to={"kind": "worker", "id": "rm"})
    e.send("step.save", RM, step_id=sid, values={"assessment_timescale": "45 working days"})
    return sid


@pytest.mark.parametrize("at, team, days", [
    # 2024-03-01 + 45 days = 2024-04-15; British Summer Time began on 31 March: London dates count
    (datetime(2024, 4, 15, 22, 59, 59, tzinfo=UTC), "children-response", 45),  # 23:59:59 BST, day 45
    (datetime(2024, 4, 15, 23, 0, 0, tzinfo=UTC), "children-locality", 46),  # 00:00 BST on the 16th
    (datetime(2024, 4, 16, 12, 0, 0, tzinfo=UTC), "children-locality", 46),
])
def test_R_K7_the_meeting_goes_to_response_up_to_day_45_and_to_locality_from_day_46(
    e: Engine, at: datetime, team: str, days: int,
) -> None:
    e.now = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    sid = cfa_ready_for_authorisation(e, "2024-03-01")
    e.now = at
    [meeting] = e.send("step.authorise", RM, step_id=sid).created
    assert (meeting.step_type, meeting.assignee_kind, meeting.assignee_id) == (MAM, "team", team)
    assert meeting.provenance["routing"] == {"rule": "R-K7", "assessment_started": "2024-03-01",
                                             "meeting_date": domain.london_date(at).isoformat(),
                                             "days": days, "team": team}


def test_R_K7_without_an_assessment_date_the_assessment_created_date_counts(e: Engine) -> None:
    e.now = datetime(2024, 3, 1, 23, 30, tzinfo=UTC)  # created 1 March in London (GMT)
    sid = cfa_ready_for_authorisation(e, None)
    e.now = datetime(2024, 4, 15, 12, 0, tzinfo=UTC)  # day 45
    [meeting] = e.send("step.authorise", RM, step_id=sid).created
    assert meeting.assignee_id == "children-response"
    assert meeting.provenance["routing"]["assessment_started"] == "2024-03-01"


def test_R_K7_a_meeting_started_new_is_routed_from_the_persons_latest_assessment(e: Engine) -> None:
    e.now = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    cfa = started(e, CFA, RSW)
    e.send("step.save", RSW, step_id=cfa, values={"date_assessment_started": "2024-02-20"})
    locality = {"kind": "team", "id": "children-locality"}
    e.now = datetime(2024, 4, 5, 9, 0, tzinfo=UTC)  # day 45 from 20 February (a leap year)
    early = e.given_step(MAM, RM, assignee=locality).created[0]
    assert early.assignee_id == "children-response"
    e.now = datetime(2024, 4, 6, 9, 0, tzinfo=UTC)  # day 46: even a meeting sent to Response goes to Locality
    late = e.given_step(MAM, RM, assignee={"kind": "team", "id": "children-response"}).created[0]
    assert late.assignee_id == "children-locality"


def test_R_K7_no_assessment_and_worker_assignees_are_left_alone(e: Engine) -> None:
    [meeting] = e.given_step(MAM, RM, assignee={"kind": "team", "id": "children-locality"}).created
    assert meeting.assignee_id == "children-locality" and "routing" not in meeting.provenance
    started(e, CFA, RSW)
    mine = started(e, MAM, RM)  # to self: a worker, not a team inbox
    assert (e.steps[mine].assignee_kind, e.steps[mine].assignee_id) == ("worker", "rm")


# --- R-K5: no third Telephone Wellbeing Review in a row ----------------------------------------


def test_R_K5_a_third_twr_in_a_row_is_refused_as_a_new_step_naming_review_planning(e: Engine) -> None:
    finished_twr(e)
    finished_twr(e)
    [r] = e.given_step_refused(TWR, SW)
    assert (r.code, r.field) == ("two_twr_limit", "step_type")
    assert "Review Planning" in r.message and "R-K5" in r.message
    started(e, "Review Planning")  # the face-to-face way forward


def test_R_K5_a_planned_short_review_in_between_resets_the_count(e: Engine) -> None:
    finished_twr(e)
    finished_twr(e)
    psr = started(e, PSR)
    e.send("step.save", SW, step_id=psr, values=PSR_VALUES)
    authorised(e, psr, OTHER_WORKFLOW, REVIEW_REQUEST)
    finished_twr(e)  # allowed again: the count starts over after the face-to-face review
    finished_twr(e)
    assert codes(e.given_step_refused(TWR, SW)) == ["two_twr_limit"]


def test_R_K5_a_third_twr_is_refused_as_a_next_action_of_future_work(e: Engine) -> None:
    finished_twr(e)
    open_twr = started(e, TWR)  # the second, still being worked on: it counts too
    fw = started(e, FW, TM)
    [r] = e.refused("step.add_next_action", TM, step_id=fw, action=TWR, assignee={"kind": "worker", "id": "sw"})
    assert (r.code, r.field) == ("two_twr_limit", "action")
    e.send("step.cancel", SW, step_id=open_twr, reason="Duplicate")
    e.send("step.add_next_action", TM, step_id=fw, action=TWR, assignee={"kind": "worker", "id": "sw"})


def test_R_K5_finishing_is_refused_when_two_twrs_finished_since_the_action_was_added(e: Engine) -> None:
    finished_twr(e)
    fw = started(e, FW, TM)
    e.send("step.add_next_action", TM, step_id=fw, action=TWR, assignee={"kind": "worker", "id": "sw"})
    finished_twr(e)  # allowed: one finished, none open
    assert "two_twr_limit" in codes(e.refused("step.finish", TM, step_id=fw))


def test_R_K5_reviews_in_a_row_counts_finished_then_open(shipped: PackRegistry) -> None:
    def count(sequence: tuple[str, ...], open_types: tuple[str, ...] = ()) -> int:
        case = domain.CaseView(finished_sequence=sequence, other_steps=tuple(
            domain.OtherStep(f"o{i}", t, "incoming", 1, "w") for i, t in enumerate(open_types)))
        ctx = domain.Context(now=datetime(2024, 6, 3, tzinfo=UTC), actor=domain.Actor("x"),
                             ids=iter(()), packs=shipped, case=case)
        return domain.twr_in_a_row(ctx)

    assert count((TWR, FW, TWR)) == 2  # Future Work between is not a review
    assert count((TWR, "Assessment Review", TWR)) == 1
    assert count((TWR, "Initial Review")) == 0
    assert count((TWR,), (TWR,)) == 2


# --- R-RQ4..R-RQ6: authorisation by role, never one's own work, the green tick ------------------


def _ctx(shipped: PackRegistry, who: dict[str, Any]) -> domain.Context:
    return domain.Context(now=datetime(2024, 6, 3, tzinfo=UTC), actor=domain.Actor(
        who["worker_id"], frozenset(who["roles"]), frozenset(who["team_ids"])), ids=iter(()), packs=shipped)


def _awaiting(step_type: str, assignee: str = "sw") -> domain.Step:
    return domain.Step("s1", "w1", PID, step_type, 1, "awaiting_authorisation", "worker", assignee, "normal",
                       datetime(2024, 6, 3, tzinfo=UTC), assignee, {})


def _request(sent_by: str) -> domain.Request:
    return domain.Request("r1", "s1", PID, SAP_REQUEST, "request", True, "worker", "tm", None, "completed",
                          sent_by, datetime(2024, 6, 3, tzinfo=UTC))


@pytest.mark.parametrize("step_type, may, may_not", [
    (PLAN, (TM, HOS), (ATM, SW)),
    ("Interim Support Plan", (TM, HOS), (ATM, SW)),
    ("Carer Support Plan", (TM, HOS), (ATM, SW)),
    ("Referral for Appointeeship or Deputyship", (HOS,), (TM, ATM, SW)),
    ("Supported Self Assessment", (TM, ATM), (HOS, SW)),
    (TWR, (TM, ATM), (HOS, SW)),
])
def test_R_RQ5_who_may_authorise_by_role(shipped: PackRegistry, step_type: str, may: tuple, may_not: tuple) -> None:
    defn = shipped.step(step_type)
    step = _awaiting(step_type)
    for who in may:
        assert domain.authorise_problems(_ctx(shipped, who), step, defn, [_request("sw")]) == [], who
    for who in may_not:
        assert codes(domain.authorise_problems(_ctx(shipped, who), step, defn, [_request("sw")])) == ["role"], who


def test_R_RQ5_a_supervising_social_worker_cannot_authorise_even_with_a_request_sent_to_them(e: Engine) -> None:
    sid = started(e, MCA)
    e.send("step.save", SW, step_id=sid, values=MCA_VALUES)
    e.send("step.add_next_action", SW, step_id=sid, action="Assessment completed (NFA)")
    e.send("step.send_request", SW, step_id=sid, name=INFO_REQUEST, to={"kind": "worker", "id": "sw2"})
    # R-RQ5: the request asks for a manager's sign-off: a social worker cannot complete it either
    assert codes(e.refused("request.complete", SW2, request_id=e.open_request(sid).request_id)) == ["cannot_sign"]
    assert codes(e.refused("step.authorise", SW2, step_id=sid)) == ["role", "open_request"]
    assert "role" in codes(e.refused("step.finish", SW2, step_id=sid))


def test_R_RQ4_no_one_authorises_their_own_work(shipped: PackRegistry) -> None:
    defn = shipped.step(PLAN)
    mine = _awaiting(PLAN, assignee="tm")  # a manager working a case themselves
    [r] = domain.authorise_problems(_ctx(shipped, TM), mine, defn, [])
    assert r.code == "own_work" and "R-RQ4" in r.message
    # nor by sending the request from a step assigned to someone else
    assert codes(domain.authorise_problems(_ctx(shipped, TM), _awaiting(PLAN), defn, [_request("tm")])) == [
        "own_work"]
    assert domain.authorise_problems(_ctx(shipped, HOS), mine, defn, [_request("tm")]) == []


def test_R_RQ4_own_work_is_refused_on_finish_and_authorise_through_the_engine(e: Engine) -> None:
    sid = started(e, MCA, TM)
    e.send("step.save", TM, step_id=sid, values=MCA_VALUES)
    e.send("step.add_next_action", TM, step_id=sid, action="Assessment completed (NFA)")
    e.send("step.send_request", TM, step_id=sid, name=INFO_REQUEST, to={"kind": "worker", "id": "atm"})
    e.send("request.complete", ATM, request_id=e.open_request(sid).request_id)
    assert codes(e.refused("step.authorise", TM, step_id=sid)) == ["own_work"]
    assert codes(e.refused("step.finish", TM, step_id=sid)) == ["own_work"]
    e.send("step.authorise", ATM, step_id=sid)
    assert e.steps[sid].state == "finished"


def test_R_RQ6_review_planning_green_tick_is_the_workers_own_authorisation(e: Engine, shipped: PackRegistry) -> None:
    assert [s for s in shipped.step_types() if shipped.step(s).self_authorise] == ["Review Planning"]
    sid = started(e, "Review Planning")
    e.send("step.save", SW, step_id=sid, values={"review_type_needed": PSR, "review_planning_evidence": "Stable"})
    e.send("step.add_next_action", SW, step_id=sid, action=PSR)
    assert codes(e.refused("step.authorise", SW2, step_id=sid)) == ["role"]  # someone else's step
    d = e.send("step.authorise", SW, step_id=sid)
    assert e.steps[sid].state == "finished" and d.events[0].authorised
    [created] = d.created
    assert (created.step_type, created.assignee_kind, created.assignee_id) == (PSR, "worker", "sw")


MCA_VALUES = {"mca_decision": "Where to live", "mca_impairment": True, "mca_functional_test": "Can weigh it",
              "mca_outcome": "Has capacity", "mca_date": "2024-06-01"}


def test_R_RQ4_returned_with_a_note_until_re_sent_then_authorised(e: Engine) -> None:
    sid = started(e, MCA)
    e.send("step.save", SW, step_id=sid, values=MCA_VALUES)
    e.send("step.add_next_action", SW, step_id=sid, action="Assessment completed (NFA)")
    e.send("step.send_request", SW, step_id=sid, name=INFO_REQUEST, to=TO_TM)
    assert e.steps[sid].state == "awaiting_authorisation"
    e.send("step.return", TM, step_id=sid, note="Say how the decision was explained")
    step = e.steps[sid]
    assert (step.state, step.return_note, step.assignee_id) == ("returned", "Say how the decision was explained", "sw")
    assert [r.state for r in e.requests.values()] == ["returned"]
    assert "required_request" in codes(e.refused("step.authorise", TM, step_id=sid))
    e.send("step.save", SW, step_id=sid, values={"mca_functional_test": "Explained with pictures"})
    e.send("step.send_request", SW, step_id=sid, name=INFO_REQUEST, to=TO_TM)
    assert e.steps[sid].state == "awaiting_authorisation"
    e.send("request.complete", TM, request_id=e.open_request(sid).request_id)
    e.send("step.authorise", TM, step_id=sid)
    assert e.steps[sid].state == "finished"


def test_R_RQ5_a_pack_naming_a_social_worker_as_authoriser_is_refused(tmp_path: Path) -> None:
    shutil.copy(DEFINITIONS_DIR / "future_work.yaml", tmp_path / "x.yaml")
    text = (tmp_path / "x.yaml").read_text().replace(
        "authorisers: [team_manager, assistant_team_manager, head_of_service]",
        "authorisers: [team_manager, locality_social_worker]")
    (tmp_path / "x.yaml").write_text(text)
    for name in ("adult.yaml", "children.yaml", "wellbeing.yaml", "adult_closure.yaml"):
        shutil.copy(DEFINITIONS_DIR / name, tmp_path / name)
    with pytest.raises(PackError, match="R-RQ5") as caught:
        load_packs(tmp_path)
    assert caught.value.field == "authorisers"


# --- R-K9: carers checklist -------------------------------------------------------------------


def twr_with_carers(e: Engine, rows: list[dict[str, Any]], has: bool = True) -> str:
    sid = started(e, TWR)
    e.send("step.save", SW, step_id=sid, values={"has_informal_carers": has, "carers": rows, **REVIEW})
    e.send("step.add_next_action", SW, step_id=sid, action=OTHER_WORKFLOW)
    return sid


def carers_reasons(e: Engine, sid: str) -> list[tuple[str, str | None]]:
    return [(r.code, r.field) for r in e.refused("step.finish", SW, step_id=sid)
            if r.code in ("carers_checklist", "young_carer_referral", "missing_field")]


def row(name: str, **answers: Any) -> dict[str, Any]:
    return {"carer_name": name, "carer_role": "Daily visits", "young_carer": False, **answers}


def test_R_K9_every_carers_checklist_gap_is_reported_at_once(e: Engine) -> None:
    sid = twr_with_carers(e, [
        row("Ann", offer_accepted=True),  # offered not answered: the mandatory column (R-W4), once
        row("Bob", assessment_offered=True, offer_accepted=False),
        row("Cy", assessment_offered=True, offer_accepted=True),
        row("Di", assessment_offered=True, offer_accepted=True, assessment_type="Single Carers Assessment"),
        row("Ed", assessment_offered=True, offer_accepted=True, assessment_type="Single Carers Assessment",
            carer_person_id=CARER, young_carer=True),
        row("Flo", assessment_offered=True, offer_accepted=True,
            assessment_type="Joint Carers Assessment with Cared For"),
    ])
    assert carers_reasons(e, sid) == [
        ("missing_field", "carers[0].assessment_offered"),
        ("carers_checklist", "carers[1].reason_not_accepted"),
        ("carers_checklist", "carers[2].assessment_type"),
        ("carers_checklist", "carers[3].carer_person_id"),
        ("carers_checklist", "carers[4].carer_person_id"),
        ("young_carer_referral", "carers"),
    ]
    [single] = [r for r in e.refused("step.finish", SW, step_id=sid) if r.field == "carers[4].carer_person_id"]
    assert "Carers Assessment" in single.message and "On-going Carer Review" in single.message


def test_R_K9_a_single_assessment_on_the_carers_own_record_and_the_referral_clear_the_checklist(e: Engine) -> None:
    sid = twr_with_carers(e, [row("Ed", assessment_offered=True, offer_accepted=True,
                                  assessment_type="Single Carers Assessment", carer_person_id=CARER,
                                  young_carer=True)])
    assert [c for c, _ in carers_reasons(e, sid)] == ["carers_checklist", "young_carer_referral"]
    started(e, "Carers Assessment", person_id=CARER)  # a separate assessment on the carer's record
    assert [c for c, _ in carers_reasons(e, sid)] == ["young_carer_referral"]
    e.send("step.send_request", SW, step_id=sid, name=YOUNG_CARER)  # to Children's Response by default
    assert carers_reasons(e, sid) == []
    assert "open_request" in codes(e.refused("step.finish", SW, step_id=sid))  # R-RQ2 until they complete it


def test_R_K9_declined_with_a_reason_and_not_offered_pass(e: Engine) -> None:
    sid = twr_with_carers(e, [
        row("Bob", assessment_offered=True, offer_accepted=False,
            reason_not_accepted="Does not see themselves as a carer"),
        row("Gus", assessment_offered=False, offer_accepted=False),
    ])
    assert carers_reasons(e, sid) == []


def test_R_K9_carers_said_yes_needs_rows_and_no_needs_none(e: Engine) -> None:
    assert carers_reasons(e, twr_with_carers(e, [], has=True)) == [("carers_checklist", "carers")]
    assert carers_reasons(e, twr_with_carers(e, [row("Ann", assessment_offered=False, offer_accepted=False)],
                                             has=False)) == [("carers_checklist", "has_informal_carers")]


def test_R_K9_the_rule_is_named_where_seed_001_puts_the_checklist(shipped: PackRegistry) -> None:
    named = {s for s in shipped.step_types() if "carers_checklist" in shipped.step(s).rules}
    assert named == {"Supported Self Assessment", "Assessment Review", TWR, PSR}
    assert set(domain.carers_assessment_types(shipped)) == {"Carers Assessment", "On-going Carer Review"}


# --- R-K10: budgets, pence exact ------------------------------------------------------------------


def test_R_K10_seed_rates_weeks_and_totals_computed_on_save(e: Engine) -> None:
    sid = started(e, PLAN)
    e.send("step.save", SW, step_id=sid, values=PLAN_VALUES)
    values = e.steps[sid].values
    assert [(r["weeks_per_year"], r["weekly_cost"], r["annual_cost"]) for r in values["planned_services"]] == [
        ("46", "160.50", "7383.00"),  # £16.05 × 10 h; 6 weeks of respite → 46 weeks
        ("52", "91.50", "4758.00"),  # £12.20 × 7.5 h, all year
    ]
    assert (values["total_weekly_cost"], values["total_annual_cost"]) == ("252.00", "12141.00")
    # the rows as read back save again unchanged; a change of hours is costed again
    rows = [{**r, "hours_per_week": 7.25} if r["service"] == "Domiciliary care" else r
            for r in values["planned_services"]]
    e.send("step.save", SW, step_id=sid, values={"planned_services": rows})
    first = e.steps[sid].values["planned_services"][0]
    assert (first["weekly_cost"], first["annual_cost"]) == ("116.36", "5352.56")  # 116.3625 → 116.36, × 46
    assert e.steps[sid].values["total_annual_cost"] == "10110.56"


def test_R_K10_cost_line_is_decimal_exact() -> None:
    line = domain.cost_line({"hourly_rate": 0.1, "hours_per_week": 3, "respite_weeks": "1.5"}, weeks_generated=True)
    assert line == {"weekly_cost": "0.30", "annual_cost": "15.15", "weeks_per_year": "50.5"}
    assert domain.cost_line({"hourly_rate": "16.05"}, weeks_generated=True)["weekly_cost"] is None
    assert domain.cost_line({"respite_weeks": 2}, weeks_generated=True)["weeks_per_year"] == "50"
    assert Decimal(purchasing.money_string(Decimal("0.005"))) == Decimal("0.01")  # half up, not banker's


def test_R_K10_costs_are_the_systems_and_respite_stays_within_the_year(e: Engine) -> None:
    sid = started(e, PLAN)
    [r] = e.refused("step.save", SW, step_id=sid, values={"total_annual_cost": "1.00"})
    assert r.code == "read_only"
    [r] = e.refused("step.save", SW, step_id=sid, values={"planned_services": [{**DOMICILIARY, "respite_weeks": 53}]})
    assert (r.code, r.field) == ("invalid_value", "planned_services[0].respite_weeks")
    [r] = e.refused("step.save", SW, step_id=sid, values={"planned_services": [{**DOMICILIARY, "weekly_cost": "1"}]})
    assert r.code == "read_only"


def test_R_K10_childrens_purchase_costs_are_filled_too(e: Engine) -> None:
    sid = started(e, "Purchase Services: Children's", RSW)
    e.send("step.save", RSW, step_id=sid, values={"hourly_rate": "16.05", "weekly_hours": 10, "weeks_per_year": 40})
    values = e.steps[sid].values
    assert (values["weekly_cost"], values["annual_cost"]) == ("160.50", "6420.00")


def test_R_K10_a_budget_rule_without_its_fields_is_refused_at_load(tmp_path: Path) -> None:
    for name in ("adult.yaml", "children.yaml", "wellbeing.yaml", "adult_closure.yaml", "future_work.yaml"):
        shutil.copy(DEFINITIONS_DIR / name, tmp_path / name)
    path = tmp_path / "future_work.yaml"
    path.write_text(path.read_text().replace("    future_work: true\n",
                                             "    future_work: true\n    rules: [budget_costs]\n"))
    with pytest.raises(PackError, match="R-K10"):
        load_packs(tmp_path)


# --- R-W6: system-generated fields filled by the system ------------------------------------------


def test_R_W6_social_workers_details_is_the_assigned_worker(e: Engine) -> None:
    sid = e.referral(CFA).step_id  # in the Response team's inbox: no worker yet
    assert "social_workers_details" not in e.steps[sid].values
    e.send("step.start", RSW, step_id=sid)
    assert e.steps[sid].values["social_workers_details"] == "rsw"
    assert codes(e.refused("step.save", RM, step_id=sid, values={"social_workers_details": "x"})) == ["read_only"]


def test_R_W6_private_fostering_report_summary_names_worker_and_manager(e: Engine) -> None:
    sid = started(e, CFA, RSW)
    e.send("step.add_form", RSW, step_id=sid, form="Private Fostering Assessment")
    assert e.steps[sid].values["pf_social_worker"] == "rsw" and "pf_team_manager" not in e.steps[sid].values
    e.send("step.save", RM, step_id=sid, values={"assessment_timescale": "20 working days"})
    assert e.steps[sid].values["pf_team_manager"] == "rm"


def test_R_W6_childrens_details_come_from_the_person_record(e: Engine) -> None:
    sid = started(e, "Child in Need Visit", RSW)
    assert e.steps[sid].values["childrens_details"] == (
        "Ada Example, born 1948-03-14, female, 1 Example Street, Testtown, LE1 1AA")
    e.person = None  # the record could not be read: nothing is made up
    other = started(e, "Child in Need Visit", RSW)
    assert "childrens_details" not in e.steps[other].values


def test_R_W6_indicative_budget_is_the_latest_costed_plans_weekly_total(e: Engine) -> None:
    first = started(e, "Statement of Need")
    assert "indicative_budget" not in e.steps[first].values  # no costed plan yet: left empty
    plan = started(e, PLAN)
    e.send("step.save", SW, step_id=plan, values=PLAN_VALUES)
    authorised(e, plan, OTHER_WORKFLOW, SAP_REQUEST)
    later = started(e, "Statement of Need")
    assert e.steps[later].values["indicative_budget"] == "252.00"


# --- R-K8: death notification ----------------------------------------------------------------------


def test_R_K8_a_death_closes_future_work_with_an_nfa_and_reason_and_lists_open_steps(e: Engine) -> None:
    fw = started(e, FW, TM)  # Future Work being allocated from: still open
    twr = started(e, TWR)
    d = e.send("person.record_death", TM, person_id=PID, date_of_death="2024-06-01")
    closed = e.steps[fw]
    [nfa] = closed.next_actions
    assert (closed.state, nfa.nfa, nfa.reason) == ("finished", True, "Person died on 2024-06-01")
    [event] = d.events
    assert event.closed_future_step_ids == [fw]
    assert [(o.step_id, o.step_type, o.state) for o in event.open_steps] == [(twr, TWR, "incomplete")]
    assert e.steps[twr].state == "incomplete"  # listed for the manager, not closed


# --- the pack flags and rule contracts the rules read --------------------------------------------


def _copy_packs(tmp_path: Path) -> Path:
    for name in ("adult.yaml", "children.yaml", "wellbeing.yaml", "adult_closure.yaml", "future_work.yaml"):
        shutil.copy(DEFINITIONS_DIR / name, tmp_path / name)
    return tmp_path / "adult.yaml"


def test_R_K9_a_carers_checklist_rule_without_its_fields_is_refused_at_load(tmp_path: Path) -> None:
    adult = _copy_packs(tmp_path)
    step = "  - step_type: Mental Capacity Assessment\n"
    adult.write_text(adult.read_text().replace(step, step + "    rules: [carers_checklist]\n", 1))
    with pytest.raises(PackError, match="R-K9") as caught:
        load_packs(tmp_path)
    assert caught.value.step == "Mental Capacity Assessment" and caught.value.field == "rules"


def test_R_W6_a_system_value_needs_a_system_generated_field(tmp_path: Path) -> None:
    adult = _copy_packs(tmp_path)
    adult.write_text(adult.read_text().replace(
        "{key: pause_reason, label: Reason and work required, type: textarea, mandatory: true}",
        "{key: pause_reason, label: Reason and work required, type: textarea, system_value: assignee}", 1))
    with pytest.raises(PackError, match="R-W6"):
        load_packs(tmp_path)


def test_flags_default_off(shipped: PackRegistry) -> None:
    """self_authorise, review and carers_assessment are off unless a pack sets them."""
    off = shipped.step("WB Wellbeing Screening")
    assert (off.self_authorise, off.review, off.carers_assessment) == (False, False, False)
    assert {s for s in shipped.step_types() if shipped.step(s).review} == {
        TWR, PSR, "Assessment Review", "Initial Review"}


# --- R-W11: Future Work is the manager's (seed 001 §6.2.1) --------------------------------------


def test_R_W11_future_work_is_opened_by_a_manager_who_allocates_the_review_not_by_the_worker(
    e: Engine, shipped: PackRegistry,
) -> None:
    """Seed 001 §6.2.1: "NOT ... Future work to the worker but the actual piece of work ... they will not
    be able to open future work"; its closure is seed 001's Close Case, not the Wellbeing closure."""
    team_manager = actor("tm-r", "team_manager", teams=("adult-review",))
    [fw] = e.given_step(FW, team_manager, assignee={"kind": "team", "id": "adult-review"}).created
    assert "role" in codes(e.refused("step.start", SW, step_id=fw.step_id))  # SW is in adult-review
    e.send("step.start", team_manager, step_id=fw.step_id)
    e.send("step.add_next_action", team_manager, step_id=fw.step_id, action="Review Planning",
           assignee={"kind": "worker", "id": "sw"})
    [review] = e.send("step.finish", team_manager, step_id=fw.step_id).created
    assert (review.step_type, review.assignee_id) == ("Review Planning", "sw")
    close = shipped.step(FW).next_action("No further involvement required from the department – close case")
    assert close.target_step_type == "Close Case"


def test_R_K13_future_work_is_never_assigned_to_a_worker_and_only_a_manager_hands_it_on(e: Engine) -> None:
    """Seed 001 §6.2.1: Future Work stays with a team. Assigned to a worker it is refused naming the rule, the
    manager's own team-to-team move goes; a team social worker neither assigns nor reschedules it."""
    team_manager = actor("tm-r", "team_manager", teams=("adult-review",))
    [fw] = e.given_step(FW, team_manager, assignee={"kind": "team", "id": "adult-review"}).created
    [why] = e.refused("step.assign", team_manager, step_id=fw.step_id, to={"kind": "worker", "id": "sw"})
    assert (why.code, why.field) == ("future_work_to_team", "to") and "R-K13" in why.message
    assert "role" in codes(e.refused("step.assign", SW, step_id=fw.step_id,  # SW is in adult-review
                                     to={"kind": "team", "id": "adult-north"}))
    assert "role" in codes(e.refused("step.reschedule", SW, step_id=fw.step_id,
                                     due_date=str(e.now.date() + timedelta(days=30))))
    e.send("step.assign", team_manager, step_id=fw.step_id, to={"kind": "team", "id": "adult-north"})
    assert (e.steps[fw.step_id].assignee_kind, e.steps[fw.step_id].assignee_id) == ("team", "adult-north")


def test_R_K6_a_co_worker_ends_their_professional_support_while_the_other_workflow_continues(e: Engine) -> None:
    """Seed 001: "the person who is completing a short piece of work can then close the professional
    support once their involvement ends", with no Future Work or case closure of their own."""
    sid = started(e, "Professional Support")
    e.send("step.save", SW, step_id=sid, values={
        "goals": [{"goal": "Appointeeship application sent", "provisional_timescale": "2024-07-01"}],
        "progress_monitoring": "Application sent; the main worker carries on with the review"})
    d = authorised(e, sid, OTHER_WORKFLOW, INFO_REQUEST, manager=ATM)
    assert e.steps[sid].state == "finished" and not d.created


# --- R-K1: closure closes: waiting work is named, the checks must be Yes ------------------------


def test_R_K1_a_closure_names_future_work_still_waiting_so_it_cannot_fall_due_on_a_closed_case(e: Engine) -> None:
    plan = started(e, PLAN)
    e.send("step.save", SW, step_id=plan, values={**PLAN_VALUES, "annual_review_date": "2030-01-10"})
    [fw] = authorised(e, plan, FW, SAP_REQUEST, assignee={"kind": "team", "id": "adult-review"}).created
    assert e.steps[fw.step_id].state == "future"  # the annual review waits on its date (R-K4)
    sid = started(e, "Adult Proposed Case Closure")
    e.send("step.save", SW, step_id=sid, values={"closure_reason": "No social care needs",
                                                 "proposed_closure_date": "2024-07-02", "had_direct_payment": False})
    e.send("step.add_next_action", SW, step_id=sid, action="Adult Case Closure in Progress")
    reasons = e.refused("step.finish", SW, step_id=sid)
    [waiting] = [r for r in reasons if r.code == "waiting_step"]
    assert waiting.step_id == fw.step_id and "10/01/2030" in waiting.message and "R-K1" in waiting.message


def test_R_K1_the_admin_teams_closure_checks_must_be_yes_not_just_answered(e: Engine) -> None:
    admin = actor("admin-1", "business_support", teams=("adult-admin",))
    [step] = e.given_step("Adult Case Closure in Progress", admin).created
    e.send("step.save", admin, step_id=step.step_id, values={
        "open_work_ended": False, "relationships_ended": True, "case_closure_date": "2024-07-03"})
    e.send("step.add_next_action", admin, step_id=step.step_id, action="Adult Case Closed (NFA)")
    [refusal] = e.refused("step.finish", admin, step_id=step.step_id)
    assert (refusal.code, refusal.field) == ("check_not_done", "open_work_ended")
    e.send("step.save", admin, step_id=step.step_id, values={"open_work_ended": True})
    assert "case.closed" in e.event_types(e.send("step.finish", admin, step_id=step.step_id))
