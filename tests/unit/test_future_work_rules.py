"""Future Work, reviews and renewals on the pure engine: R-S1, R-K2, R-K3, R-K4, R-K6, dates in Europe/London."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.workflow import domain
from services.workflow.pack import DEFINITIONS_DIR, PackError, PackRegistry, load_packs
from tests.workflow_harness import PERSON, Engine, Personas, codes

FW = "Future Work"
PLAN = "Test Care and Support Plan"
SUPPORT = "Test Professional Support"
INITIAL = "Test Initial Review"
TEAM = {"kind": "team", "id": "area-p-and-p"}
P = Personas()
WORKER = {"worker_id": "sw", "roles": ["social_worker"], "team_ids": ["area-p-and-p"]}  # the manager's (R-W14)
MANAGER = {"worker_id": "tm", "roles": ["team_manager"], "team_ids": ["area-p-and-p"]}
PID = PERSON["person_id"]
# the packs the test pack needs (not every shipped pack: those are tested in test_pack_loading);
# Future Work's actions target adult step types, whose requests go to a children's team
BASE_PACKS = ("wellbeing.yaml", "adult_closure.yaml", "future_work.yaml", "adult.yaml", "children.yaml")

# A small adult pack using the optional fields: ongoing_services (R-K3), renewal_days (R-K6),
# scheduled_window_days + window_from_field (initial review), review_date_field (R-K4).
TEST_PACK = """
name: test_adult
version: 1
worked_by: [social_worker]
teams:
  - area-p-and-p
steps:
  - step_type: Test Care and Support Plan
    description: A support plan; finished, the person has ongoing services.
    ongoing_services: true
    authorisers: [team_manager]
    sections:
      - number: 1
        title: Plan
        fields:
          - {key: care_start_date, label: Care starts, type: date}
          - {key: annual_review_date, label: Annual review date, type: date}
    next_actions:
      - action: Future Work
        target_step_type: Future Work
        assignee_kind: team
        scheduled_offset_days: 365
        review_date_field: annual_review_date
      - action: Initial Review
        target_step_type: Test Initial Review
        assignee_kind: team
        scheduled_window_days: [28, 42]
        window_from_field: care_start_date
      - action: Professional Support
        target_step_type: Test Professional Support
        assignee_kind: team
        send_immediately: allowed
      - action: Plan Complete (NFA)
        nfa: true
  - step_type: Test Initial Review
    description: Reviews new care after 4 to 6 weeks.
    next_actions:
      - action: Future Work
        target_step_type: Future Work
        assignee_kind: team
        scheduled_offset_days: 365
      - action: Review Complete (NFA)
        nfa: true
  - step_type: Test Professional Support
    description: Renewed or closed every 4 weeks.
    renewal_days: 28
    next_actions:
      - action: Support Complete (NFA)
        nfa: true
"""


@pytest.fixture(scope="module")
def packs(tmp_path_factory: pytest.TempPathFactory) -> PackRegistry:
    folder = tmp_path_factory.mktemp("packs")
    for name in BASE_PACKS:
        shutil.copy(DEFINITIONS_DIR / name, folder / name)
    (folder / "test_adult.yaml").write_text(TEST_PACK)
    return load_packs(folder)


@pytest.fixture
def e(packs: PackRegistry) -> Engine:
    return Engine(packs=packs)


def started(e: Engine, step_type: str, who: dict[str, Any] = WORKER) -> str:
    """A new workflow's first step opened by `who` for themselves: the step is incomplete at once."""
    [step] = e.given_step(step_type, who, person_id=PID).created
    return step.step_id


def finish(e: Engine, step_id: str, who: dict[str, Any] = WORKER, **action: Any) -> domain.Decision:
    if action:
        e.send("step.add_next_action", who, step_id=step_id, **action)
    return e.send("step.finish", who, step_id=step_id)


def future_work(e: Engine, *, due: date) -> domain.Step:
    """A care plan that finishes with Future Work due on `due` (its annual review date)."""
    plan = started(e, PLAN)
    e.send("step.save", WORKER, step_id=plan, values={"annual_review_date": due.isoformat()})
    [fw] = finish(e, plan, action="Future Work", assignee=TEAM).created
    return fw


# --- dates: Europe/London for dates, UTC for instants --------------------------------------------


def test_start_of_day_is_london_midnight_in_utc_in_winter_and_summer() -> None:
    assert domain.start_of_day(date(2024, 12, 4)) == datetime(2024, 12, 4, 0, 0, tzinfo=UTC)
    assert domain.start_of_day(date(2024, 6, 4)) == datetime(2024, 6, 3, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(("day", "utc"), [
    (date(2024, 3, 30), datetime(2024, 3, 30, 0, 0, tzinfo=UTC)),   # GMT
    (date(2024, 3, 31), datetime(2024, 3, 31, 0, 0, tzinfo=UTC)),   # clocks go forward at 01:00 GMT
    (date(2024, 4, 1), datetime(2024, 3, 31, 23, 0, tzinfo=UTC)),   # BST
    (date(2024, 10, 27), datetime(2024, 10, 26, 23, 0, tzinfo=UTC)),  # clocks go back at 02:00 BST
    (date(2024, 10, 28), datetime(2024, 10, 28, 0, 0, tzinfo=UTC)),  # GMT again
])
def test_start_of_day_across_the_dst_changes(day: date, utc: datetime) -> None:
    assert domain.start_of_day(day) == utc
    assert domain.london_date(utc) == day


def test_today_is_the_london_date_not_the_utc_date() -> None:
    ctx = lambda now: domain.Context(now=now, actor=domain.Actor("w"), ids=iter(()), packs=None)  # type: ignore[arg-type]  # noqa: E731
    assert ctx(datetime(2024, 3, 30, 23, 30, tzinfo=UTC)).today == date(2024, 3, 30)  # 23:30 GMT
    assert ctx(datetime(2024, 3, 31, 23, 30, tzinfo=UTC)).today == date(2024, 4, 1)  # 00:30 BST


def test_R_S1_future_work_created_late_on_a_summer_evening_counts_from_the_london_date(e: Engine) -> None:
    e.now = datetime(2024, 6, 3, 23, 30, tzinfo=UTC)  # already 4 June in London
    plan = started(e, PLAN)
    [fw] = finish(e, plan, action="Future Work", assignee=TEAM).created
    assert fw.due_date == date(2025, 6, 4)  # offset 365 days from 4 June 2024, no earlier anchor
    assert e.timers[f"future-work:{fw.step_id}"].due_at == datetime(2025, 6, 3, 23, 0, tzinfo=UTC)


def test_add_months_clamps_to_the_end_of_the_month() -> None:
    assert domain.add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)
    assert domain.add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert domain.add_months(date(2024, 11, 30), 3) == date(2025, 2, 28)
    assert domain.add_months(date(2024, 12, 15), 1) == date(2025, 1, 15)


# --- R-K4: the annual review date is kept ----------------------------------------------------------


@pytest.mark.parametrize(("today", "expected"), [
    (date(2024, 4, 15), date(2025, 3, 1)),   # reviewed late: still 1 March, not 15 April
    (date(2024, 1, 10), date(2025, 3, 1)),   # brought forward and reviewed early
    (date(2025, 4, 1), date(2026, 3, 1)),    # more than a year late: the next anniversary
    (date(2025, 3, 1), date(2026, 3, 1)),
])
def test_R_K4_next_review_keeps_the_previous_future_work_anniversary(today: date, expected: date) -> None:
    assert domain.annual_review_date(today, previous_due=date(2024, 3, 1)) == expected


def test_R_K4_a_recorded_annual_review_date_is_the_next_one_itself() -> None:
    assert domain.annual_review_date(date(2024, 4, 15), recorded=date(2025, 3, 1)) == date(2025, 3, 1)
    assert domain.annual_review_date(date(2024, 4, 15), recorded=date(2024, 3, 1)) == date(2025, 3, 1)
    assert domain.annual_review_date(date(2024, 4, 15)) is None


def test_R_K4_the_previous_future_work_due_date_wins_over_a_recorded_value() -> None:
    got = domain.annual_review_date(date(2024, 4, 15), previous_due=date(2024, 3, 1), recorded=date(2024, 9, 9))
    assert got == date(2025, 3, 1)


def test_R_K4_future_work_after_a_late_review_keeps_the_original_annual_date(e: Engine) -> None:
    fw = future_work(e, due=date(2025, 3, 1))
    e.fire(f"future-work:{fw.step_id}")
    e.now = datetime(2025, 4, 15, 10, 0, tzinfo=UTC)  # the review happens six weeks late
    member = MANAGER  # seed 001 §6.2.1: a manager opens Future Work, never the worker (R-W11)
    e.send("step.start", member, step_id=fw.step_id)
    [review] = finish(e, fw.step_id, member, action="Future Work", assignee=TEAM).created
    assert review.due_date == date(2026, 3, 1)  # not 2026-04-15, a year from today


def test_R_K4_future_work_after_a_review_step_keeps_the_finished_future_work_date(e: Engine) -> None:
    fw = future_work(e, due=date(2025, 3, 1))
    e.fire(f"future-work:{fw.step_id}")
    e.now = datetime(2025, 2, 20, 10, 0, tzinfo=UTC)
    member = MANAGER  # seed 001 §6.2.1: a manager opens Future Work, never the worker (R-W11)
    e.send("step.start", member, step_id=fw.step_id)
    finish(e, fw.step_id, member, action="No further action – other workflow continues (NFA)")
    review = started(e, INITIAL)
    e.now = datetime(2025, 5, 2, 10, 0, tzinfo=UTC)
    [nxt] = finish(e, review, action="Future Work", assignee=TEAM).created
    assert nxt.due_date == date(2026, 3, 1)


def test_R_K4_another_date_than_the_annual_review_date_needs_a_note(e: Engine) -> None:
    plan = started(e, PLAN)
    e.send("step.save", WORKER, step_id=plan, values={"annual_review_date": "2025-03-01"})
    reasons = e.refused("step.add_next_action", WORKER, step_id=plan, action="Future Work", assignee=TEAM,
                        scheduled_date="2025-02-01")
    assert codes(reasons) == ["note_required"] and "2025-03-01" in reasons[0].message
    e.send("step.add_next_action", WORKER, step_id=plan, action="Future Work", assignee=TEAM,
           scheduled_date="2025-02-01", note="matches the carer's review date")
    [fw] = e.send("step.finish", WORKER, step_id=plan).created
    assert fw.due_date == date(2025, 2, 1)


# --- R-S1: future work waits for its due date, then is incoming work ------------------------------


def test_R_S1_a_later_scheduled_date_makes_future_work_with_a_timer_at_london_midnight(e: Engine) -> None:
    fw = future_work(e, due=date(2024, 11, 4))
    assert (fw.state, fw.due_date, fw.assignee_kind, fw.assignee_id) == (
        "future", date(2024, 11, 4), "team", "area-p-and-p")
    timer = e.timers[f"future-work:{fw.step_id}"]
    assert timer.due_at == datetime(2024, 11, 4, 0, 0, tzinfo=UTC)  # GMT by then
    assert (timer.kind, timer.payload["step_id"]) == ("future-work", fw.step_id)


def test_R_S1_when_the_timer_fires_future_work_becomes_incoming_to_allocate(e: Engine) -> None:
    fw = future_work(e, due=date(2024, 11, 4))
    d = e.fire(f"future-work:{fw.step_id}")
    assert e.event_types(d) == ["step.due"]
    assert e.steps[fw.step_id].state == "incoming" and e.steps[fw.step_id].due_date == date(2024, 11, 4)
    assert d.events[0].assignee.id == "area-p-and-p"
    assert [h.what for h in d.history] == ["step.due"]


def test_R_S1_a_timer_for_work_that_is_no_longer_future_changes_nothing(e: Engine) -> None:
    fw = future_work(e, due=date(2024, 11, 4))
    timer = e.timers[f"future-work:{fw.step_id}"]
    e.send("step.cancel", MANAGER, step_id=fw.step_id, reason="duplicate")
    ctx = domain.Context(now=timer.due_at, actor=domain.Actor("system:scheduler"), ids=iter(()), packs=e.packs)
    assert domain.timer_due(ctx, e.steps[fw.step_id], timer.kind, timer.payload).events == ()


def test_R_S1_rescheduling_moves_the_timer_and_today_makes_it_incoming(e: Engine) -> None:
    fw = future_work(e, due=date(2024, 11, 4))
    d = e.send("step.reschedule", MANAGER, step_id=fw.step_id, due_date="2024-12-02")
    assert e.event_types(d) == ["step.rescheduled"] and d.cancelled_timers == ()
    assert e.timers[f"future-work:{fw.step_id}"].due_at == datetime(2024, 12, 2, 0, 0, tzinfo=UTC)
    d = e.send("step.reschedule", MANAGER, step_id=fw.step_id, due_date=e.now.date().isoformat())
    assert e.steps[fw.step_id].state == "incoming" and d.events[0].state == "incoming"
    assert f"future-work:{fw.step_id}" not in e.timers
    assert codes(e.refused("step.reschedule", MANAGER, step_id=fw.step_id, due_date="2025-01-01")) == [
        "invalid_state"]


def test_R_S1_future_work_brought_forward_is_started_and_its_timer_withdrawn(e: Engine) -> None:
    fw = future_work(e, due=date(2024, 11, 4))
    member = MANAGER  # seed 001 §6.2.1: a manager opens Future Work, never the worker (R-W11)
    d = e.send("step.start", member, step_id=fw.step_id)
    assert e.steps[fw.step_id].state == "incomplete" and d.cancelled_timers == (f"future-work:{fw.step_id}",)
    assert d.history[0].details["brought_forward_from"] == "2024-11-04"
    assert e.timers == {}


def test_R_S1_cancelling_or_a_death_withdraws_the_timer(e: Engine) -> None:
    fw = future_work(e, due=date(2024, 11, 4))
    d = e.send("person.record_death", MANAGER, person_id=PID, date_of_death="2024-06-01")
    assert f"future-work:{fw.step_id}" in d.cancelled_timers and e.timers == {}
    assert e.steps[fw.step_id].state == "finished"


# --- R-K2: one Future Work per person -----------------------------------------------------------


def test_R_K2_a_second_future_work_is_refused_naming_the_existing_one(e: Engine) -> None:
    fw = future_work(e, due=date(2024, 11, 4))
    [r] = e.given_step_refused(FW, MANAGER, person_id=PID)
    assert (r.code, r.step_id) == ("one_future_work", fw.step_id)
    assert fw.step_id in r.message and "2024-11-04" in r.message


def test_R_K2_a_next_action_to_future_work_is_refused_while_one_exists(e: Engine) -> None:
    fw = future_work(e, due=date(2024, 11, 4))
    plan = started(e, PLAN)
    [r] = e.refused("step.add_next_action", WORKER, step_id=plan, action="Future Work", assignee=TEAM)
    assert (r.code, r.step_id, r.field) == ("one_future_work", fw.step_id, "action")


def test_R_K2_the_same_step_cannot_add_future_work_twice(e: Engine) -> None:
    plan = started(e, PLAN)
    e.send("step.add_next_action", WORKER, step_id=plan, action="Future Work", assignee=TEAM)
    assert codes(e.refused("step.add_next_action", WORKER, step_id=plan, action="Future Work",
                           assignee=TEAM)) == ["one_future_work"]


def test_R_K2_finish_is_blocked_when_future_work_appeared_since_the_action_was_added(e: Engine) -> None:
    first, second = started(e, PLAN), started(e, PLAN)
    e.send("step.add_next_action", WORKER, step_id=first, action="Future Work", assignee=TEAM)
    e.send("step.add_next_action", WORKER, step_id=second, action="Future Work", assignee=TEAM)
    [fw] = e.send("step.finish", WORKER, step_id=first).created
    [r] = e.refused("step.finish", WORKER, step_id=second)
    assert (r.code, r.step_id) == ("one_future_work", fw.step_id)
    assert len(e.of_type(FW)) == 1


def test_R_K2_future_work_finishing_into_the_next_future_work_is_not_a_duplicate(e: Engine) -> None:
    fw = future_work(e, due=date(2024, 11, 4))
    member = MANAGER  # seed 001 §6.2.1: a manager opens Future Work, never the worker (R-W11)
    e.send("step.start", member, step_id=fw.step_id)
    [nxt] = finish(e, fw.step_id, member, action="Future Work", assignee=TEAM).created
    assert nxt.due_date == date(2025, 11, 4) and [s.state for s in e.of_type(FW)] == ["finished", "future"]


def test_R_K2_which_step_types_are_future_work_is_pack_data(packs: PackRegistry) -> None:
    assert packs.step(FW).is_future_work
    assert [t for t in packs.step_types() if packs.step(t).is_future_work] == [FW]


def test_R_K4_only_a_future_work_step_type_may_have_a_review_interval(tmp_path: Path) -> None:
    bad = TEST_PACK.replace("    renewal_days: 28\n", "    renewal_days: 28\n    review_interval_months: 12\n")
    for name in BASE_PACKS:
        shutil.copy(DEFINITIONS_DIR / name, tmp_path / name)
    (tmp_path / "test_adult.yaml").write_text(bad)
    with pytest.raises(PackError, match="review_interval_months"):
        load_packs(tmp_path)


# --- initial review 4–6 weeks after new care (R-S2) ------------------------------------------------


def test_initial_review_window_is_four_to_six_weeks_after_care_starts() -> None:
    assert domain.initial_review_window(date(2024, 6, 3)) == (date(2024, 7, 1), date(2024, 7, 15))


def test_R_S2_initial_review_defaults_to_four_weeks_after_care_starts_and_is_future_work(e: Engine) -> None:
    plan = started(e, PLAN)
    e.send("step.save", WORKER, step_id=plan, values={"care_start_date": "2024-06-10"})
    [review] = finish(e, plan, action="Initial Review", assignee=TEAM).created
    assert (review.state, review.due_date) == ("future", date(2024, 7, 8))
    assert e.timers[f"future-work:{review.step_id}"].due_at == datetime(2024, 7, 7, 23, 0, tzinfo=UTC)


def test_R_S2_initial_review_outside_the_window_is_refused(e: Engine) -> None:
    plan = started(e, PLAN)
    e.send("step.save", WORKER, step_id=plan, values={"care_start_date": "2024-06-10"})
    [r] = e.refused("step.add_next_action", WORKER, step_id=plan, action="Initial Review", assignee=TEAM,
                    scheduled_date="2024-08-01")
    assert r.code == "outside_window" and "2024-07-08" in r.message and "2024-07-22" in r.message
    e.send("step.add_next_action", WORKER, step_id=plan, action="Initial Review", assignee=TEAM,
           scheduled_date="2024-07-22")


def test_R_CL8_an_initial_review_names_the_day_new_care_started_for_its_clock(e: Engine) -> None:
    plan = started(e, PLAN)
    e.send("step.save", WORKER, step_id=plan, values={"care_start_date": "2024-06-10"})
    [review] = finish(e, plan, action="Initial Review", assignee=TEAM, scheduled_date="2024-07-22").created
    assert review.provenance["window_from"] == "2024-06-10"  # not the scheduled date: the clock counts 42 days


def test_R_S2_without_a_care_start_date_the_window_counts_from_today(e: Engine) -> None:
    plan = started(e, PLAN)
    [review] = finish(e, plan, action="Initial Review", assignee=TEAM).created
    assert review.due_date == e.now.date() + timedelta(days=28)


# --- R-K6: Professional Support renewed or closed every 4 weeks ------------------------------------


def test_R_K6_professional_support_has_a_renewal_timer_four_weeks_on(e: Engine) -> None:
    support = started(e, SUPPORT)
    timer = e.timers[f"renewal:{support}"]
    assert timer.due_at == domain.start_of_day(date(2024, 7, 1))  # opened 3 June 2024
    assert timer.payload["every_days"] == 28


def test_R_K6_each_renewal_tells_the_assignee_and_sets_the_next(e: Engine) -> None:
    support = started(e, SUPPORT)
    d = e.fire(f"renewal:{support}")
    [due] = d.events
    assert e.event_types(d) == ["step.renewal_due"]
    assert (due.renewal_number, due.renewal_due_date, due.next_renewal_date) == (1, date(2024, 7, 1), date(2024, 7, 29))
    assert due.assignee.id == WORKER["worker_id"]
    d = e.fire(f"renewal:{support}")
    assert (d.events[0].renewal_number, d.events[0].next_renewal_date) == (2, date(2024, 8, 26))


def test_R_K6_closing_professional_support_withdraws_its_renewal(e: Engine) -> None:
    support = started(e, SUPPORT)
    d = finish(e, support, action="Support Complete (NFA)")
    assert f"renewal:{support}" in d.cancelled_timers and e.timers == {}


def test_R_K6_support_sent_immediately_to_a_team_starts_renewing_when_created(e: Engine) -> None:
    plan = started(e, PLAN)
    d = e.send("step.add_next_action", WORKER, step_id=plan, action="Professional Support", assignee=TEAM,
               send_immediately=True)
    [support] = d.created
    assert [t.key for t in d.timers] == [f"renewal:{support.step_id}"]


def test_R_K6_renewal_dates_count_from_when_the_step_opened() -> None:
    assert domain.next_renewal_date(date(2024, 6, 3), date(2024, 6, 3), 28) == date(2024, 7, 1)
    assert domain.next_renewal_date(date(2024, 6, 3), date(2024, 7, 1), 28) == date(2024, 7, 29)
    assert domain.next_renewal_date(date(2024, 6, 3), date(2024, 7, 2), 28) == date(2024, 7, 29)


# --- R-K3: the last workflow must not end without Future Work -------------------------------------


def test_R_K3_last_open_work_of_a_person_with_services_ending_without_future_work_warns(e: Engine) -> None:
    plan = started(e, PLAN)
    e.send("step.add_next_action", WORKER, step_id=plan, action="Plan Complete (NFA)")
    d = e.send("step.authorise", MANAGER, step_id=plan)
    [finished] = d.events
    assert [w.code for w in finished.warnings] == ["no_future_work"]
    assert "R-K3" in finished.warnings[0].message
    assert finished.warned_worker_ids == sorted([MANAGER["worker_id"], WORKER["worker_id"]])
    assert e.steps[plan].state == "finished"  # a warning, never a blocker


def test_R_K3_no_warning_while_future_work_is_waiting(e: Engine) -> None:
    future_work(e, due=date(2024, 11, 4))
    support = started(e, SUPPORT)
    assert finish(e, support, action="Support Complete (NFA)").events[0].warnings == []


def test_R_K3_no_warning_when_the_workflow_goes_on(e: Engine) -> None:
    plan = started(e, PLAN)
    assert finish(e, plan, action="Initial Review", assignee=TEAM).events[0].warnings == []


def test_R_K3_no_warning_while_other_work_is_open(e: Engine) -> None:
    plan, other = started(e, PLAN), started(e, SUPPORT)
    assert other and finish(e, plan, action="Plan Complete (NFA)").events[0].warnings == []


def test_R_K3_no_warning_for_a_person_without_ongoing_services(e: Engine) -> None:
    support = started(e, SUPPORT)
    assert finish(e, support, action="Support Complete (NFA)").events[0].warnings == []


def test_R_K3_warning_is_shown_before_finishing(e: Engine) -> None:
    plan = started(e, PLAN)
    finish(e, started(e, INITIAL), action="Review Complete (NFA)")
    e.send("step.add_next_action", WORKER, step_id=plan, action="Plan Complete (NFA)")
    ctx = domain.Context(now=e.now, actor=domain.Actor("w"), ids=iter(()), packs=e.packs,
                         case=e.case_view(PID))
    defn = e.packs.step(PLAN)
    assert codes(domain.finish_warnings(ctx, e.steps[plan], defn)) == ["no_future_work"]
    assert domain.finish_blockers(ctx, e.steps[plan], defn, [], check_actor=False) == []
