"""R-T8 Review trays fed by `step.rescheduled`, and a team's trays for its own managers: pure rules."""

from datetime import date, timedelta

import pytest

from services.allocation import domain
from services.allocation.domain import Case
from shared.commands.base import RuleBroken
from shared.events.allocation import ReviewTrayEntryAdded, ReviewTrayEntryDue, ReviewTrayEntryRescheduled
from shared.events.workflow import StepRescheduled
from tests.unit.test_allocation_domain import NOW, PERSON, TM, command, ctx, placed, refused, tray_add

TEAM = "locality-north"
IN_A_YEAR = date(2025, 6, 3)


def rescheduled(due: date = IN_A_YEAR, state: str = "future", kind: str = "team", team: str = TEAM) -> StepRescheduled:
    return StepRescheduled(step_id="s1", person_id=PERSON, actor="sw9", version=4, step_type="Future Work",
                           assignee={"kind": kind, "id": team}, previous_due_date=None, due_date=due,
                           state=state)  # type: ignore[arg-type]


def fed(case: Case = Case(PERSON), **kw) -> domain.Decision:
    # the handler's actor is whoever rescheduled the step
    return domain.review_rescheduled(ctx({"worker_id": "sw9"}), case, rescheduled(**kw))


def test_R_T8_team_future_work_rescheduled_puts_the_case_in_the_teams_review_tray_with_a_timer() -> None:
    decision = fed()
    [added] = decision.events
    assert isinstance(added, ReviewTrayEntryAdded)
    assert (added.team_id, added.review_due, added.actor) == (TEAM, IN_A_YEAR, "sw9")
    assert added.reason == "Next review (Future Work) rescheduled to 2025-06-03"
    [timer] = decision.timers
    assert timer.due_at == domain.review_tray_due_at(IN_A_YEAR) and decision.new_review_entry


def test_R_T8_rescheduled_again_the_entry_moves_date_and_team_and_the_same_date_changes_nothing() -> None:
    entry = fed().review_entry
    assert entry is not None
    case = Case(PERSON, open_review_entry=entry)
    assert fed(case).events == ()
    sooner = IN_A_YEAR - timedelta(days=100)
    decision = fed(case, due=sooner, team="locality-city")
    [moved] = decision.events
    assert isinstance(moved, ReviewTrayEntryRescheduled)
    assert (moved.entry_id, moved.team_id, moved.previous_team_id, moved.review_due, moved.previous_review_due) == (
        entry.entry_id, "locality-city", TEAM, sooner, IN_A_YEAR)
    assert decision.review_entry is not None and not decision.new_review_entry
    assert (decision.review_entry.version, decision.review_entry.due_at) == (2, None)
    assert [t.key for t in decision.timers] == [f"review-tray:{entry.entry_id}"]
    # the old date's timer, if it still fires, does nothing
    assert domain.review_tray_timer_due(ctx(), decision.review_entry, domain.review_tray_due_at(IN_A_YEAR)).events == ()


def test_R_T8_rescheduled_to_today_the_open_entry_is_due_now() -> None:
    entry = fed().review_entry
    decision = fed(Case(PERSON, open_review_entry=entry), due=NOW.date(), state="incoming")
    [due] = decision.events
    assert isinstance(due, ReviewTrayEntryDue) and decision.review_entry.due_at == NOW  # type: ignore[union-attr]
    assert fed(due=NOW.date(), state="incoming").events == ()  # nothing in the tray: nothing to mark


def test_R_T8_worker_future_work_a_case_on_a_planned_work_tray_or_allocated_stays_out() -> None:
    assert fed(kind="worker", team="sw1").events == ()
    assert fed(Case(PERSON, open_entry=placed())).events == ()
    allocated = domain.WorkerRelationship("r1", PERSON, "sw1", "Involved Worker", NOW.date(), NOW, "tm1")
    assert fed(Case(PERSON, worker_relationships=(allocated,))).events == ()


OUTSIDER = {"worker_id": "tm9", "roles": ["team_manager", "team_leader"], "team_ids": ["locality-city"]}


def test_R_T1_R_T8_R_A3_a_manager_of_another_team_is_refused_on_every_team_command() -> None:
    assert refused(domain.tray_add, ctx(OUTSIDER), Case(PERSON), tray_add(OUTSIDER)) == ["not_team_member"]
    entry = placed()
    for rule, cmd_type, data in (
            (domain.tray_review, "tray.review", {"contacted": True, "note": "ok", "increased_risk": True}),
            (domain.tray_remove, "tray.remove", {"reason": "x"})):
        assert refused(rule, ctx(OUTSIDER), entry, command(cmd_type, OUTSIDER, entry_id=entry.entry_id,
                                                           **data)) == ["not_team_member"]
    review = command("review_tray.add", OUTSIDER, person_id=PERSON, team_id=TEAM, review_due="2025-06-03",
                     reason="Annual review")
    assert refused(domain.review_tray_add, ctx(OUTSIDER), Case(PERSON), review) == ["not_team_member"]
    in_tray = domain.review_tray_add(ctx(), Case(PERSON), command(
        "review_tray.add", TM, person_id=PERSON, team_id=TEAM, review_due="2025-06-03", reason="r")).review_entry
    remove = command("review_tray.remove", OUTSIDER, entry_id=in_tray.entry_id, reason="x")  # type: ignore[union-attr]
    assert refused(domain.review_tray_remove, ctx(OUTSIDER), in_tray, remove) == ["not_team_member"]
    allocate = command("case.allocate", OUTSIDER, person_id=PERSON, worker_id="sw1", team_id=TEAM)
    with pytest.raises(RuleBroken) as caught:
        domain.allocate(ctx(OUTSIDER), Case(PERSON), allocate, [])
    [why] = caught.value.reasons
    assert (why.code, why.field) == ("not_team_member", "actor.team_ids") and f"team {TEAM}" in why.message


def test_R_A3_a_head_of_service_allocates_for_any_team() -> None:
    head = {"worker_id": "hos1", "roles": ["head_of_service"], "team_ids": []}
    allocate = command("case.allocate", head, person_id=PERSON, worker_id="sw1", team_id=TEAM)
    assert domain.allocate(ctx(head), Case(PERSON), allocate, []).worker_relationships
