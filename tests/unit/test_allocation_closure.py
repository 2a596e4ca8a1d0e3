"""R-A5: a fully closed case ends every involvement and leaves every tray, pure and in microseconds."""

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from services.allocation import domain
from services.allocation.domain import Case
from shared.events.allocation import (
    OrgRelationshipEnded,
    ReviewTrayEntryRemoved,
    TrayEntryRemoved,
    WorkerRelationshipEnded,
)
from tests.unit.test_allocation_domain import NOW, PERSON, TM, command, ctx, placed

CLOSER = {"worker_id": "gso7", "roles": [], "team_ids": []}  # the handler's actor: whoever closed the case
START = date(2024, 1, 2)


def worker(worker_id: str, start: date = START) -> domain.WorkerRelationship:
    return domain.WorkerRelationship(f"w-{worker_id}", PERSON, worker_id, "Involved Worker", start,
                                     NOW - timedelta(days=90), "tm1")


def team(team_id: str, start: date = START) -> domain.OrgRelationship:
    return domain.OrgRelationship(f"o-{team_id}", PERSON, team_id, "Involved Team", start, NOW - timedelta(days=90),
                                  "tm1")


def review_entry() -> domain.ReviewTrayEntry:
    decision = domain.review_tray_add(ctx(), Case(PERSON), command(
        "review_tray.add", person_id=PERSON, team_id="locality-north", review_due="2025-06-03", reason="Annual"))
    assert decision.review_entry is not None
    return decision.review_entry


def test_R_A5_closure_ends_every_open_relationship_on_the_uk_closure_date_by_the_closer() -> None:
    ended_before = replace(worker("sw0"), end_date=START, end_reason="moved", ended_at=NOW, ended_by="sw0")
    case = Case(PERSON, worker_relationships=(worker("sw1"), worker("sw2"), ended_before),
                org_relationships=(team("locality-north"), team("wellbeing-south")))
    closed_on = domain.closure_date(datetime(2024, 6, 30, 23, 30, tzinfo=UTC))  # 00:30 on 1 July in London
    assert closed_on == date(2024, 7, 1)
    decision = domain.close_case(ctx(CLOSER), case, closed_on)

    workers = [e for e in decision.events if isinstance(e, WorkerRelationshipEnded)]
    orgs = [e for e in decision.events if isinstance(e, OrgRelationshipEnded)]
    assert sorted(e.worker_id for e in workers) == ["sw1", "sw2"]  # the one already ended is left alone
    assert sorted(e.team_id for e in orgs) == ["locality-north", "wellbeing-south"]
    assert {(e.end_date, e.end_reason, e.actor) for e in [*workers, *orgs]} == {(closed_on, "case closed", "gso7")}
    assert {(r.ended_at, r.ended_by, r.end_date) for r in [*decision.worker_relationships,
                                                          *decision.org_relationships]} == {(NOW, "gso7", closed_on)}
    assert not any(r.is_open for r in decision.worker_relationships)


def test_R_A5_closure_takes_the_person_off_the_planned_work_tray_and_the_review_tray_cancelling_timers() -> None:
    entry, review = placed(), review_entry()
    decision = domain.close_case(ctx(CLOSER), Case(PERSON, open_entry=entry, open_review_entry=review), NOW.date())
    removed = [e for e in decision.events if isinstance(e, TrayEntryRemoved)]
    review_removed = [e for e in decision.events if isinstance(e, ReviewTrayEntryRemoved)]
    assert [(e.entry_id, e.reason, e.actor) for e in removed] == [(entry.entry_id, "case closed", "gso7")]
    assert [(e.entry_id, e.reason, e.actor) for e in review_removed] == [(review.entry_id, "case closed", "gso7")]
    assert decision.entry is not None and decision.entry.removed_at == NOW and not decision.new_entry
    assert decision.review_entry is not None and decision.review_entry.removed_by == "gso7"
    assert set(decision.cancelled_timers) == {f"tray-review:{entry.entry_id}", f"tray-escalation:{entry.entry_id}",
                                              f"review-tray:{review.entry_id}"}


def test_R_A5_closure_of_a_case_with_nothing_open_changes_nothing() -> None:
    ended = replace(team("locality-north"), end_date=START, ended_at=NOW, ended_by="tm1")
    assert domain.close_case(ctx(CLOSER), Case(PERSON, org_relationships=(ended,)), NOW.date()) == domain.Decision()


def test_R_A5_a_relationship_starting_after_the_closure_date_ends_on_its_start_date() -> None:
    later = NOW.date() + timedelta(days=10)
    decision = domain.close_case(ctx(TM), Case(PERSON, worker_relationships=(worker("sw1", later),)), NOW.date())
    [event] = decision.events
    assert isinstance(event, WorkerRelationshipEnded) and event.end_date == later
