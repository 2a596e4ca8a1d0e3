"""Allocation and Planned Work Tray rules (R-A1..R-A4, R-T1..R-T7), pure and in microseconds."""

import itertools
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.allocation import domain
from services.allocation.domain import Case, Step
from shared.commands import allocation as cmd
from shared.commands.base import RuleBroken
from shared.events.allocation import (
    CaseAllocated,
    SafeAndWellCheckRequested,
    TrayEntryEscalated,
    TrayEntryRemoved,
    TrayReviewDue,
)

NOW = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)
PERSON = "00000000-0000-4000-8000-000000000001"
TM = {"worker_id": "tm1", "roles": ["team_manager"], "team_ids": ["locality-north"]}
TL = {"worker_id": "tl1", "roles": ["team_leader"], "team_ids": ["locality-north"]}
SW = {"worker_id": "sw1", "roles": ["social_worker"], "team_ids": ["locality-north"]}


def ctx(actor: dict[str, Any] = TM, now: datetime = NOW, **kw: Any) -> domain.Context:
    counter = itertools.count(1)
    ids = (str(uuid.UUID(int=next(counter))) for _ in itertools.count())
    return domain.Context(now=now, actor=domain.Actor.of(cmd.Actor.model_validate(actor)), ids=ids, **kw)


def command(type_: str, actor: dict[str, Any] = TM, **data: Any) -> Any:
    return cmd.COMMANDS[type_].model_validate({"actor": actor, **data})


def tray_add(actor: dict[str, Any] = TM, **overrides: Any) -> Any:
    data = {"person_id": PERSON, "team_id": "locality-north", "rationale": "No worker free this week",
            "priority": "medium", "urgent": False, "complexity": "low", "support": "moderate", "risk": "moderate"}
    return command("tray.add", actor, **{**data, **overrides})


def placed(support: str = "moderate", risk: str = "moderate", now: datetime = NOW) -> domain.TrayEntry:
    decision = domain.tray_add(ctx(now=now), Case(PERSON), tray_add(support=support, risk=risk))
    assert decision.entry is not None
    return decision.entry


def refused(fn: Any, *args: Any) -> list[str]:
    with pytest.raises(RuleBroken) as caught:
        fn(*args)
    return [r.code for r in caught.value.reasons]


# --- R-T3 RAG matrix ---------------------------------------------------------------------------

@pytest.mark.parametrize(("support", "risk", "rag"), [
    ("none", "high", "red"), ("none", "moderate", "red"), ("none", "low", "amber"),
    ("moderate", "high", "red"), ("moderate", "moderate", "amber"), ("moderate", "low", "green"),
    ("full", "high", "amber"), ("full", "moderate", "green"), ("full", "low", "green"),
])
def test_R_T3_rag_is_support_by_risk_of_harm(support: str, risk: str, rag: str) -> None:
    assert domain.rag_rating(support, risk) == rag


def test_R_T3_tray_entry_carries_priority_complexity_and_rag() -> None:
    decision = domain.tray_add(ctx(), Case(PERSON), tray_add(priority="High", complexity="HIGH", support="none",
                                                             risk="low"))
    added = decision.events[0]
    assert (added.priority, added.complexity, added.rag) == ("high", "high", "amber")  # type: ignore[attr-defined]


def test_R_T3_unknown_levels_are_invalid_naming_each_field() -> None:
    with pytest.raises(ValidationError) as caught:
        tray_add(priority="whenever", support="lots", risk="some")
    assert {e["loc"][0] for e in caught.value.errors()} == {"priority", "support", "risk"}


# --- R-T5 review intervals ---------------------------------------------------------------------

def test_R_T5_red_reviewed_weekly() -> None:
    assert domain.next_review_at("red", NOW) == NOW + timedelta(days=7)


def test_R_T5_amber_reviewed_fortnightly() -> None:
    assert domain.next_review_at("amber", NOW) == NOW + timedelta(days=14)


def test_R_T5_green_reviewed_monthly_by_calendar_month() -> None:
    assert domain.next_review_at("green", NOW) == datetime(2024, 7, 3, 10, 0, tzinfo=UTC)
    jan31 = datetime(2024, 1, 31, 9, tzinfo=UTC)
    assert domain.next_review_at("green", jan31) == datetime(2024, 2, 29, 9, tzinfo=UTC)  # leap-year end of month
    assert domain.next_review_at("green", datetime(2024, 12, 15, tzinfo=UTC)) == datetime(2025, 1, 15, tzinfo=UTC)


def test_R_T5_placing_sets_the_review_timer_by_rag() -> None:
    decision = domain.tray_add(ctx(), Case(PERSON), tray_add(support="none", risk="low"))  # amber
    [review] = [t for t in decision.timers if t.key.startswith("tray-review:")]
    assert review.due_at == NOW + timedelta(days=14)
    assert review.payload == {"entry_id": decision.entry.entry_id, "person_id": PERSON}  # type: ignore[union-attr]


def test_R_T5_review_reschedules_by_new_rag_and_writes_a_pwt_note_notifying_a_manager() -> None:
    entry = placed("moderate", "moderate")  # amber
    later = NOW + timedelta(days=10)
    decision = domain.tray_review(ctx(TL, later), entry, command(
        "tray.review", TL, entry_id=entry.entry_id, contacted=True, note="Spoke to daughter", support="none",
        risk="high"))
    assert decision.entry is not None and decision.entry.rag == "red"
    assert decision.entry.next_review_at == later + timedelta(days=7)
    assert decision.entry.version == 2 and decision.entry.reviews == 1
    review_timer = next(t for t in decision.timers if t.key == f"tray-review:{entry.entry_id}")
    assert review_timer.due_at == later + timedelta(days=7)
    [note] = decision.case_notes
    assert (note.title, note.type) == ("PWT", "PWT")
    assert "tm1" in note.notify_worker_ids and "RAG amber → red" in note.text


def test_R_T5_unreachable_person_prompts_a_safe_and_well_check() -> None:
    entry = placed()
    decision = domain.tray_review(ctx(TM), entry, command("tray.review", TM, entry_id=entry.entry_id,
                                                          contacted=False, note="No answer twice"))
    assert any(isinstance(e, SafeAndWellCheckRequested) for e in decision.events)


def test_R_T5_review_timer_marks_the_review_overdue_once() -> None:
    entry = placed()
    decision = domain.timer_due(ctx(), entry, f"tray-review:{entry.entry_id}", entry.next_review_at)
    assert isinstance(decision.events[0], TrayReviewDue)
    assert decision.entry is not None and decision.entry.review_overdue
    assert domain.timer_due(ctx(), decision.entry, f"tray-review:{entry.entry_id}", entry.next_review_at).events == ()


def test_R_T5_stale_review_timer_does_nothing_after_a_review_moved_it() -> None:
    entry = placed()
    old_due = entry.next_review_at
    reviewed = domain.tray_review(ctx(TM, NOW + timedelta(days=3)), entry, command(
        "tray.review", TM, entry_id=entry.entry_id, contacted=True, note="ok")).entry
    assert domain.timer_due(ctx(), reviewed, f"tray-review:{entry.entry_id}", old_due).events == ()


# --- R-T6 escalation ---------------------------------------------------------------------------

def test_R_T6_red_entry_sets_an_escalation_timer_a_month_after_placing() -> None:
    decision = domain.tray_add(ctx(), Case(PERSON), tray_add(support="none", risk="high"))
    [esc] = [t for t in decision.timers if t.key.startswith("tray-escalation:")]
    assert esc.due_at == datetime(2024, 7, 3, 10, 0, tzinfo=UTC)


def test_R_T6_amber_entry_has_no_escalation_timer() -> None:
    decision = domain.tray_add(ctx(), Case(PERSON), tray_add(support="moderate", risk="moderate"))
    assert not [t for t in decision.timers if t.key.startswith("tray-escalation:")]


def test_R_T6_red_over_a_month_escalates_with_a_management_decision_note() -> None:
    entry = placed("none", "high")
    due = domain.escalation_due_at(entry.placed_at)
    decision = domain.timer_due(ctx(now=due + timedelta(seconds=1)), entry, f"tray-escalation:{entry.entry_id}",
                                due)
    assert isinstance(decision.events[0], TrayEntryEscalated)
    assert decision.events[0].reason == "red_over_a_month"  # type: ignore[attr-defined]
    [note] = decision.case_notes
    assert note.type == "Management Discussion / Decision"
    assert decision.entry is not None and decision.entry.red_escalated


def test_R_T6_red_for_exactly_a_month_is_not_yet_over_a_month() -> None:
    entry = placed("none", "high")
    assert not domain.red_over_a_month(entry, domain.add_months(NOW, 1))
    assert domain.red_over_a_month(entry, domain.add_months(NOW, 1) + timedelta(minutes=1))


def test_R_T6_escalation_timer_for_an_entry_no_longer_red_does_nothing() -> None:
    entry = replace(placed("none", "high"), rag="amber")
    due = domain.escalation_due_at(entry.placed_at)
    assert domain.timer_due(ctx(), entry, f"tray-escalation:{entry.entry_id}", due).events == ()


def test_R_T6_increased_risk_flagged_by_a_manager_escalates_at_once() -> None:
    entry = placed()
    decision = domain.tray_review(ctx(TL), entry, command("tray.review", TL, entry_id=entry.entry_id,
                                                          contacted=True, note="Carer unwell", increased_risk=True))
    escalated = [e for e in decision.events if isinstance(e, TrayEntryEscalated)]
    assert [e.reason for e in escalated] == ["increased_risk"]
    assert {n.type for n in decision.case_notes} == {"PWT", "Management Discussion / Decision"}


def test_R_T6_raised_to_red_after_a_month_on_the_tray_escalates_in_the_review() -> None:
    entry = placed("moderate", "moderate")
    later = NOW + timedelta(days=40)
    decision = domain.tray_review(ctx(TM, later), entry, command("tray.review", TM, entry_id=entry.entry_id,
                                                                 contacted=True, note="worse", risk="high"))
    assert [e.reason for e in decision.events if isinstance(e, TrayEntryEscalated)] == ["red_over_a_month"]
    assert not [t for t in decision.timers if t.key.startswith("tray-escalation:")]


def test_R_T6_red_lowered_to_green_cancels_the_escalation_timer() -> None:
    entry = placed("none", "high")
    decision = domain.tray_review(ctx(TM), entry, command("tray.review", TM, entry_id=entry.entry_id,
                                                          contacted=True, note="care started", support="full",
                                                          risk="low"))
    assert f"tray-escalation:{entry.entry_id}" in decision.cancelled_timers


# --- R-T1, R-T2 who and which cases ------------------------------------------------------------

def test_R_T1_only_a_team_manager_or_team_leader_places_a_case() -> None:
    assert refused(domain.tray_add, ctx(SW), Case(PERSON), tray_add(SW)) == ["role"]
    assert domain.tray_add(ctx(TL), Case(PERSON), tray_add(TL)).entry is not None


def test_R_T1_placing_writes_a_pwt_note_with_the_rationale() -> None:
    [note] = domain.tray_add(ctx(), Case(PERSON), tray_add(rationale="No capacity until July")).case_notes
    assert note.title == "PWT" and "No capacity until July" in note.text


def test_R_T1_R_T5_only_a_manager_removes_and_only_the_teams_practitioners_and_managers_review() -> None:
    entry = placed()
    admin = {**SW, "worker_id": "bs1", "roles": ["business_support"]}
    assert refused(domain.tray_review, ctx(admin), entry,
                   command("tray.review", admin, entry_id=entry.entry_id, contacted=True, note="x")) == ["role"]
    assert domain.tray_review(ctx(SW), entry, command("tray.review", SW, entry_id=entry.entry_id, contacted=True,
                                                      note="x")).entry is not None
    assert refused(domain.tray_remove, ctx(SW), entry,
                   command("tray.remove", SW, entry_id=entry.entry_id, reason="x")) == ["role"]


def test_R_T2_urgent_case_is_refused() -> None:
    assert refused(domain.tray_add, ctx(), Case(PERSON), tray_add(urgent=True)) == ["urgent"]
    assert refused(domain.tray_add, ctx(), Case(PERSON, urgency="urgent"), tray_add()) == ["urgent"]


def test_R_T2_person_not_ordinarily_resident_is_refused() -> None:
    assert refused(domain.tray_add, ctx(), Case(PERSON, ordinarily_resident=False), tray_add()) == [
        "not_ordinarily_resident"]


def test_R_T2_every_reason_is_given_at_once() -> None:
    entry = placed()
    case = Case(PERSON, urgency="urgent", ordinarily_resident=False, open_entry=entry)
    codes = refused(domain.tray_add, ctx(SW), case, tray_add(SW, urgent=True))
    assert codes == ["role", "urgent", "not_ordinarily_resident", "duplicate"]
    with pytest.raises(RuleBroken) as caught:
        domain.tray_add(ctx(SW), case, tray_add(SW, urgent=True))
    assert caught.value.code == "rule_broken"


def test_R_T4_the_person_is_told_by_their_preferred_method_with_the_team_number() -> None:
    decision = domain.tray_add(ctx(channel="email", team_contact_number="0116 305 0000"), Case(PERSON), tray_add())
    told = decision.events[1]
    assert told.TYPE == "message.requested"  # type: ignore[attr-defined]
    assert (told.channel, told.team_contact_number, told.reason) == ("email", "0116 305 0000", "pwt_added")  # type: ignore[attr-defined]


# --- R-T7 the 28-day target ---------------------------------------------------------------------

def test_R_T7_waiting_more_than_28_days_is_past_the_target() -> None:
    assert not domain.past_wait_target(NOW, NOW + timedelta(days=28))
    assert domain.past_wait_target(NOW, NOW + timedelta(days=29))
    assert domain.days_waiting(NOW, NOW + timedelta(days=29, hours=3)) == 29


def test_R_T7_removal_reports_the_days_waited_and_cancels_timers() -> None:
    entry = placed("none", "high")
    decision = domain.tray_remove(ctx(now=NOW + timedelta(days=5)), entry,
                                  command("tray.remove", entry_id=entry.entry_id, reason="Moved out of area"))
    removed = decision.events[0]
    assert isinstance(removed, TrayEntryRemoved) and removed.days_waiting == 5
    assert set(decision.cancelled_timers) == {f"tray-review:{entry.entry_id}", f"tray-escalation:{entry.entry_id}"}


def test_stale_expected_version_on_a_tray_entry_is_a_conflict() -> None:
    entry = placed()
    assert refused(domain.tray_remove, ctx(), entry, command("tray.remove", entry_id=entry.entry_id, reason="x",
                                                             expected_version=3)) == ["conflict"]


# --- R-A1, R-A2 relationships -------------------------------------------------------------------

# the worker's grounds to record their own involvement (R-A6): a step of the person assigned to them
MY_WORK = [Step("s-mine", "Adult Contact", "incomplete", "worker", "sw1")]


def add_worker(case: Case = Case(PERSON), **data: Any) -> domain.Decision:
    return domain.add_worker_relationship(ctx(SW), case, command(
        "worker_relationship.add", SW, **{"person_id": PERSON, "worker_id": "sw1", **data}), MY_WORK)


def test_R_A1_worker_relationship_defaults_to_involved_worker_from_today() -> None:
    [rel] = add_worker().worker_relationships
    assert (rel.relationship, rel.start_date, rel.is_open) == ("Involved Worker", date(2024, 6, 3), True)


def test_R_A1_second_open_relationship_for_the_same_worker_is_a_duplicate() -> None:
    [rel] = add_worker().worker_relationships
    assert refused(add_worker, Case(PERSON, worker_relationships=(rel,))) == ["duplicate"]


def test_R_A1_R_A3_a_worker_may_not_add_or_end_another_workers_relationship_a_manager_may() -> None:
    assert refused(lambda: add_worker(worker_id="sw2")) == ["role"]
    [rel] = domain.add_worker_relationship(ctx(TM), Case(PERSON), command(
        "worker_relationship.add", TM, person_id=PERSON, worker_id="sw2"), TEAM_WORK).worker_relationships
    assert refused(domain.end_worker_relationship, ctx(SW), rel, command(
        "worker_relationship.end", SW, relationship_id=rel.relationship_id)) == ["role"]


# a team manager's grounds to allocate (R-A7): a step of the person in their team's inbox
TEAM_WORK = [Step("s-team", "Adult Contact", "incoming", "team", "locality-north")]
SOUTH_TM = {"worker_id": "tm-south", "roles": ["team_manager"], "team_ids": ["locality-south"]}
SO = {"worker_id": "so1", "roles": ["senior_officer"], "team_ids": ["senior"]}


def allocate_by_relationship(actor: dict[str, Any], steps: list[Step], **data: Any) -> domain.Decision:
    return domain.add_worker_relationship(ctx(actor), Case(PERSON), command(
        "worker_relationship.add", actor, **{"person_id": PERSON, "worker_id": "sw2", **data}), steps)


def test_R_A7_another_teams_manager_may_not_add_a_worker_to_a_person_whose_work_is_not_theirs() -> None:
    with pytest.raises(RuleBroken) as caught:
        allocate_by_relationship(SOUTH_TM, TEAM_WORK)
    [why] = caught.value.reasons
    assert (why.code, why.field) == ("not_team_member", "worker_id")
    assert "locality-north" in why.message  # who does hold the work


def test_R_A7_the_holding_teams_manager_above_teams_or_a_recorded_reason_may() -> None:
    for actor, steps, data in [(TM, TEAM_WORK, {}), (SO, [], {}),
                               (SOUTH_TM, TEAM_WORK, {"access_reason": "covering the north duty desk"})]:
        [rel] = allocate_by_relationship(actor, steps, **data).worker_relationships
        assert rel.worker_id == "sw2"


def test_R_A7_a_team_tray_or_involvement_is_the_managers_grounds() -> None:
    involved = domain.add_org_relationship(ctx(SO), Case(PERSON), command(
        "org_relationship.add", SO, person_id=PERSON, team_id="locality-south")).org_relationships
    [rel] = domain.add_worker_relationship(ctx(SOUTH_TM), Case(PERSON, org_relationships=involved), command(
        "worker_relationship.add", SOUTH_TM, person_id=PERSON, worker_id="sw2")).worker_relationships
    assert rel.worker_id == "sw2"


def test_R_A1_ending_closes_it_at_once_even_with_a_later_end_date() -> None:
    [rel] = add_worker().worker_relationships
    end = domain.end_worker_relationship(ctx(), rel, command(
        "worker_relationship.end", relationship_id=rel.relationship_id, end_date="2024-06-30",
        end_reason="Involvement ended"))
    assert not end.worker_relationships[0].is_open


def test_R_A1_end_before_start_and_already_ended_are_refused_together() -> None:
    [rel] = add_worker(start_date="2024-06-01").worker_relationships
    ended = replace(rel, ended_at=NOW)
    assert refused(domain.end_worker_relationship, ctx(), ended, command(
        "worker_relationship.end", relationship_id=rel.relationship_id, end_date="2024-05-01")) == [
        "already_ended", "invalid"]


def test_R_A2_org_relationship_shows_until_midnight_at_the_end_of_its_end_date_in_london() -> None:
    end = date(2024, 6, 3)  # British Summer Time: midnight London is 23:00 UTC
    assert domain.org_relationship_visible(end, datetime(2024, 6, 3, 22, 59, 59, tzinfo=UTC))
    assert not domain.org_relationship_visible(end, datetime(2024, 6, 3, 23, 0, tzinfo=UTC))
    winter = date(2024, 12, 3)  # GMT: midnight London is midnight UTC
    assert domain.org_relationship_visible(winter, datetime(2024, 12, 3, 23, 59, tzinfo=UTC))
    assert not domain.org_relationship_visible(winter, datetime(2024, 12, 4, 0, 0, tzinfo=UTC))
    assert domain.org_relationship_visible(None, NOW)


def test_R_A2_ended_event_says_until_when_it_shows() -> None:
    decision = domain.add_org_relationship(ctx(), Case(PERSON), command(
        "org_relationship.add", person_id=PERSON, team_id="wellbeing-service-north",
        access_reason="The duty call asked for the team"))
    [rel] = decision.org_relationships
    assert rel.relationship == "Involved Team"
    ended = domain.end_org_relationship(ctx(), Case(PERSON), rel, command("org_relationship.end",
                                                            relationship_id=rel.relationship_id,
                                                            end_date="2024-06-03", end_reason="Closed",
                                                            access_reason="The team closed its involvement"))
    assert ended.events[0].visible_until == datetime(2024, 6, 3, 23, 0, tzinfo=UTC)  # type: ignore[attr-defined]


def test_R_A6_recording_ones_own_or_a_teams_involvement_needs_grounds_or_a_recorded_reason() -> None:
    stranger = {"worker_id": "sw9", "roles": ["social_worker"], "team_ids": ["locality-south"]}
    own = command("worker_relationship.add", stranger, person_id=PERSON, worker_id="sw9")
    assert refused(domain.add_worker_relationship, ctx(stranger), Case(PERSON), own) == ["no_relationship"]
    assert refused(domain.add_org_relationship, ctx(stranger), Case(PERSON), command(
        "org_relationship.add", stranger, person_id=PERSON, team_id="locality-south")) == ["no_relationship"]
    assert domain.add_worker_relationship(ctx(stranger), Case(PERSON), command(
        "worker_relationship.add", stranger, person_id=PERSON, worker_id="sw9",
        access_reason="Covering the duty desk today")).worker_relationships
    theirs = Step("s-theirs", "Adult Contact", "incoming", "team", "locality-south")
    assert domain.add_worker_relationship(ctx(stranger), Case(PERSON), own, [theirs]).worker_relationships
    so = {"worker_id": "so1", "roles": ["senior_officer"], "team_ids": []}
    [rel] = domain.add_org_relationship(ctx(so), Case(PERSON), command(
        "org_relationship.add", so, person_id=PERSON, team_id="locality-north")).org_relationships
    involved = Case(PERSON, org_relationships=(rel,))
    ending = command("org_relationship.end", stranger, relationship_id=rel.relationship_id)
    assert refused(domain.end_org_relationship, ctx(stranger), involved, rel, ending) == ["no_relationship"]
    assert domain.end_org_relationship(ctx(SW), involved, rel, ending).events  # their team is involved


# --- R-A3, R-A4 allocation and reassignment ---------------------------------------------------

STEPS = [
    Step("s-team-incoming", "Adult Contact", "incoming", "team", "locality-north"),
    Step("s-team-incomplete", "Adult Contact", "incomplete", "team", "locality-north"),
    Step("s-team-future", "Review", "future", "team", "locality-north"),
    Step("s-worker", "Assessment", "incoming", "worker", "sw9"),
    Step("s-finished", "Screening", "finished", "team", "locality-north"),
    Step("s-safeguarding", "Adult Safeguarding Triage", "incoming", "team", "adult-safeguarding"),
]


def allocate(case: Case, actor: dict[str, Any] = TM, **data: Any) -> domain.Decision:
    return domain.allocate(ctx(actor), case, command("case.allocate", actor, **{
        "person_id": PERSON, "worker_id": "sw1", "team_id": "locality-north", **data}), STEPS)


def test_R_A3_allocation_records_the_worker_relationship_and_assigns_the_team_work() -> None:
    decision = allocate(Case(PERSON))
    [rel] = decision.worker_relationships
    assert (rel.worker_id, rel.relationship) == ("sw1", "Involved Worker")
    assert [a.step_id for a in decision.step_assigns] == ["s-team-incoming", "s-team-incomplete"]
    assert all((a.kind, a.id) == ("worker", "sw1") for a in decision.step_assigns)


def test_R_A3_allocation_removes_the_case_from_the_tray() -> None:
    entry = placed("none", "high")
    decision = allocate(Case(PERSON, open_entry=entry))
    types = [type(e).TYPE for e in decision.events]  # type: ignore[attr-defined]
    assert types == ["worker_relationship.added", "tray.entry_removed", "case.allocated"]
    allocated = decision.events[-1]
    assert isinstance(allocated, CaseAllocated) and allocated.removed_entry_id == entry.entry_id
    assert decision.entry is not None and decision.entry.removed_reason == "allocated"
    assert f"tray-escalation:{entry.entry_id}" in decision.cancelled_timers


def test_R_A3_a_second_worker_is_involved_beside_the_first_each_with_their_own_relationship() -> None:
    """The Wellbeing Service's Trusted Assessor and General Support Officer are both involved."""
    [first] = add_worker().worker_relationships
    decision = allocate(Case(PERSON, worker_relationships=(first,)), worker_id="gso2")
    [second] = decision.worker_relationships
    assert (second.worker_id, first.is_open) == ("gso2", True)
    assert refused(allocate, Case(PERSON, worker_relationships=(first,))) == ["conflict"]  # sw1 again


def test_R_A3_allocating_moves_only_the_allocating_teams_work() -> None:
    """A safeguarding triage waiting in the safeguarding inbox stays there when locality allocates."""
    moved = {a.step_id for a in allocate(Case(PERSON)).step_assigns}
    assert "s-safeguarding" not in moved and moved == {"s-team-incoming", "s-team-incomplete"}


FUTURE_WORK = Step("s-future-work", "Future Work", "incoming", "team", "locality-north", future_work=True)


def test_R_A3_allocating_never_hands_the_teams_due_future_work_to_the_worker() -> None:
    """Seed 001 §6.2.1: "NOT ... Future work to the worker but the actual piece of work": a due Future Work
    stays in the team's incoming work, where its manager hands the worker the piece of work from it."""
    decision = domain.allocate(ctx(), Case(PERSON), command("case.allocate", TM, person_id=PERSON,
                               worker_id="sw1", team_id="locality-north"), [*STEPS, FUTURE_WORK])
    moved = [a.step_id for a in decision.step_assigns]
    assert moved == ["s-team-incoming", "s-team-incomplete"]
    allocated = decision.events[-1]
    assert isinstance(allocated, CaseAllocated) and allocated.assigned_step_ids == moved


def test_R_A4_reassigning_to_a_worker_keeps_future_work_with_the_team() -> None:
    """Seed 001 §6.2.1: a team's Future Work stays with it; one a worker held goes to the team that holds
    their work with the person, never on to another worker; to a team it moves as any work does."""
    case = allocated_to_sw1()
    kept = domain.reassign(ctx(), case, command(
        "case.reassign", person_id=PERSON, **{"from": {"kind": "team", "id": "locality-north"}},
        to={"kind": "worker", "id": "sw2"}), [*STEPS, FUTURE_WORK])
    assert "s-future-work" not in [a.step_id for a in kept.step_assigns]
    workers_future = replace(FUTURE_WORK, assignee_kind="worker", assignee_id="sw1")
    handed = domain.reassign(ctx(), case, command(
        "case.reassign", person_id=PERSON, **{"from": {"kind": "worker", "id": "sw1"}},
        to={"kind": "worker", "id": "sw2"}), [*WORK_OF_SW1, workers_future])
    [(kind, team)] = [(a.kind, a.id) for a in handed.step_assigns if a.step_id == "s-future-work"]
    assert (kind, team) == ("team", "locality-north")
    to_team = domain.reassign(ctx(), case, command(
        "case.reassign", person_id=PERSON, **{"from": {"kind": "team", "id": "locality-north"}},
        to={"kind": "team", "id": "locality-south"}), [FUTURE_WORK])
    assert [(a.step_id, a.id) for a in to_team.step_assigns] == [("s-future-work", "locality-south")]


def test_R_A4_a_workers_future_work_goes_to_a_team_even_when_several_or_none_hold_their_work() -> None:
    """R-K13: never left with the worker. Several holding teams: the reassigning manager's among them; none
    known (only a manager above teams may then reassign): the manager's own team."""
    workers_future = replace(FUTURE_WORK, assignee_kind="worker", assignee_id="sw1")
    [first] = allocate(Case(PERSON)).worker_relationships
    second = replace(first, relationship_id="r-2", team_id="locality-south")
    several = Case(PERSON, worker_relationships=(first, second))

    def future_to(case: Case, actor: dict[str, Any]) -> list[tuple[str, str]]:
        decision = domain.reassign(ctx(actor), case, command(
            "case.reassign", actor, person_id=PERSON, **{"from": {"kind": "worker", "id": "sw1"}},
            to={"kind": "worker", "id": "sw2"}), [workers_future])
        return [(a.kind, a.id) for a in decision.step_assigns if a.step_id == "s-future-work"]

    assert future_to(several, OTHER_TM) == [("team", "locality-south")]
    assert future_to(several, TM) == [("team", "locality-north")]
    assert future_to(Case(PERSON), SENIOR) == [("team", "county-hq")]  # no relationship, tray or team known


def test_R_A3_not_ordinarily_resident_and_wrong_role_refused_together() -> None:
    assert refused(allocate, Case(PERSON, ordinarily_resident=False), SW) == ["role", "not_ordinarily_resident"]


WORK_OF_SW1 = [replace(s, assignee_kind="worker", assignee_id="sw1") if s.state != "finished" else s
               for s in STEPS if s.step_id != "s-safeguarding"]
SENIOR = {"worker_id": "so1", "roles": ["senior_officer"], "team_ids": ["county-hq"]}
OTHER_TM = {"worker_id": "tm7", "roles": ["team_manager"], "team_ids": ["locality-south"]}


def reassign(case: Case, actor: dict[str, Any] = TM, source: str = "worker:sw1",
             to: str = "worker:sw2") -> domain.Decision:
    (from_kind, from_id), (to_kind, to_id) = source.split(":"), to.split(":")
    return domain.reassign(ctx(actor), case, command("case.reassign", actor, person_id=PERSON,
                                                     **{"from": {"kind": from_kind, "id": from_id}},
                                                     to={"kind": to_kind, "id": to_id}), WORK_OF_SW1)


def allocated_to_sw1() -> Case:
    return Case(PERSON, worker_relationships=allocate(Case(PERSON)).worker_relationships)


def test_R_A4_reassign_moves_incoming_incomplete_and_future_work_and_the_allocation() -> None:
    decision = reassign(allocated_to_sw1())
    assert [a.step_id for a in decision.step_assigns] == [
        "s-team-incoming", "s-team-incomplete", "s-team-future", "s-worker"]
    assert [type(e).TYPE for e in decision.events] == [  # type: ignore[attr-defined]
        "worker_relationship.ended", "worker_relationship.added", "case.reassigned"]
    [(worker, team)] = [(r.worker_id, r.team_id) for r in decision.worker_relationships if r.is_open]
    assert (worker, team) == ("sw2", "locality-north")  # the case stays with the team it was allocated for


def test_R_A4_nothing_to_reassign_is_refused() -> None:
    assert refused(domain.reassign, ctx(), Case(PERSON), command(
        "case.reassign", person_id=PERSON, **{"from": {"kind": "team", "id": "locality-north"}},
        to={"kind": "team", "id": "t"}), []) == ["nothing_to_reassign"]


def test_R_A4_another_teams_manager_may_not_move_the_work_a_team_holds() -> None:
    case = allocated_to_sw1()
    with pytest.raises(RuleBroken) as caught:
        reassign(case, OTHER_TM)
    [why] = caught.value.reasons
    assert (why.code, why.field) == ("not_team_member", "actor.team_ids") and "locality-north" in why.message
    assert refused(domain.reassign, ctx(OTHER_TM), case, command(
        "case.reassign", OTHER_TM, person_id=PERSON, **{"from": {"kind": "team", "id": "locality-north"}},
        to={"kind": "worker", "id": "sw2"}), STEPS) == ["not_team_member"]
    assert reassign(case, SENIOR).step_assigns  # a senior officer reassigns for any team


def test_R_A4_a_worker_without_an_allocation_is_moved_by_the_managers_of_the_team_the_person_waits_with() -> None:
    [own] = add_worker().worker_relationships  # the worker recorded their own involvement: no team
    on_tray = Case(PERSON, worker_relationships=(own,), open_entry=placed())
    assert reassign(on_tray).step_assigns
    assert refused(reassign, on_tray, OTHER_TM) == ["not_team_member"]
    assert refused(reassign, Case(PERSON, worker_relationships=(own,))) == ["not_team_member"]  # held by no team
