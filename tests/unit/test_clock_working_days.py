"""Statutory clocks, pure: working days in England and Wales (R-CL2), clocks as data (R-CL1), the C&F
assessment and PWT timescales (R-CL3, R-CL4), the initial and annual reviews (R-CL8, R-CL9), pauses (R-CL5) and
points fired once (R-CL6)."""

from datetime import UTC, date, datetime, timedelta

import pytest

from services.clocks import definitions, domain
from services.clocks.calendar import WorkingDays, bank_holidays
from services.workflow.domain import ReferralToStart, created_event, start_from_referral
from shared.calendar import london_date, start_of_day
from shared.events.clocks import ClockBreached, ClockPaused, ClockResumed, ClockStarted, ClockStopped, ClockWarning

DAYS = WorkingDays(bank_holidays())
SHIPPED = definitions.load()
CFA_STEP = "Child and Family Assessment and Plan"
CFA, PWT = (next(c for c in SHIPPED.clocks if c.name == n)
            for n in ("child_and_family_assessment", "planned_work_tray_wait"))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- working days (R-CL2) ---------------------------------------------------------------------------------

def test_R_CL2_weekends_are_not_working_days():
    assert DAYS.add(date(2024, 6, 7), 1) == date(2024, 6, 10)  # Friday → Monday
    assert DAYS.add(date(2024, 6, 8), 1) == date(2024, 6, 10)  # Saturday → Monday
    assert DAYS.add(date(2024, 6, 10), -1) == date(2024, 6, 7)
    assert DAYS.between(date(2024, 6, 7), date(2024, 6, 10)) == 1


@pytest.mark.parametrize(("day", "next_working"), [
    (date(2024, 3, 28), date(2024, 4, 2)),    # Good Friday and Easter Monday
    (date(2026, 12, 24), date(2026, 12, 29)),  # Christmas, and Boxing Day (a Saturday) observed on Monday 28th
    (date(2023, 5, 5), date(2023, 5, 9)),     # the coronation's one-off bank holiday, 8 May 2023
    (date(2030, 4, 18), date(2030, 4, 23)),   # Easter 2030: computed by the library, typed nowhere
])
def test_R_CL2_england_and_wales_bank_holidays_from_the_library_are_not_working_days(day, next_working):
    assert DAYS.add(day, 1) == next_working


def test_R_CL2_scotland_only_holidays_are_working_days_in_england():
    assert DAYS.is_working_day(date(2026, 1, 2))  # 2 January: a bank holiday in Scotland only
    assert DAYS.is_working_day(date(2026, 11, 30))  # St Andrew's Day


def test_R_CL2_leap_years_count_29_february():
    assert DAYS.add(date(2024, 2, 28), 1) == date(2024, 2, 29)
    assert date(2024, 2, 1) + timedelta(days=28) == domain.due_date_of(PWT, date(2024, 2, 1), DAYS)
    assert domain.due_date_of(PWT, date(2024, 2, 1), DAYS) == date(2024, 2, 29)
    assert domain.due_date_of(PWT, date(2023, 2, 1), DAYS) == date(2023, 3, 1)


def test_R_CL2_a_day_is_a_london_date_across_the_clocks_changing():
    assert london_date(utc("2026-06-01T23:30:00")) == date(2026, 6, 2)  # 00:30 BST
    assert london_date(utc("2026-12-01T23:30:00")) == date(2026, 12, 1)  # 23:30 GMT
    assert start_of_day(date(2026, 3, 29)) == utc("2026-03-29T00:00:00")  # BST begins at 01:00 that day
    assert start_of_day(date(2026, 3, 30)) == utc("2026-03-29T23:00:00")
    assert start_of_day(date(2026, 10, 26)) == utc("2026-10-26T00:00:00")  # GMT again


# --- the C&F assessment and the PWT wait (R-CL1, R-CL3, R-CL4) --------------------------------------------

def test_R_CL3_a_child_and_family_assessment_is_due_45_working_days_after_referral_warned_5_before():
    outcome = domain.start(CFA, 1, subject_key="step-1", person_id="p-1", team_id="children-response",
                           at=utc("2024-01-08T10:00:00"), days=DAYS)
    clock = outcome.clock
    assert clock.due_date == date(2024, 3, 11)  # nine weeks of five days, across 29 February
    [started] = outcome.events
    assert isinstance(started, ClockStarted) and started.breach_at == utc("2024-03-12T00:00:00")
    assert [(t.key.rsplit(":", 1)[1], t.due_at) for t in outcome.timers] == [
        ("warning-5", utc("2024-03-04T00:00:00")), ("breach", utc("2024-03-12T00:00:00"))]
    assert all(t.payload == {"clock_id": clock.clock_id, "point": t.key.rsplit(":", 1)[1]} for t in outcome.timers)


@pytest.mark.parametrize(("received", "due", "warned"), [
    # Christmas Day a Friday, Boxing Day a Saturday (so Monday 28th), New Year's Day a Friday
    (date(2026, 12, 18), date(2027, 2, 24), date(2027, 2, 17)),
    # Christmas and Boxing Day a weekend (so Monday 27th and Tuesday 28th), New Year's Day a Saturday (so 3 January)
    (date(2021, 12, 17), date(2022, 2, 23), date(2022, 2, 16)),
])
def test_R_CL2_R_CL3_an_assessment_counts_45_working_days_from_the_day_its_referral_was_received_past_christmas(
        received, due, warned):
    """Workflow records the day the referral was received on the assessment it starts; the clock counts from it,
    whenever intake got to it, and skips the bank holidays and their substitute days."""
    referral = ReferralToStart("REF-1", "p-1", "w-1", CFA_STEP, "normal", received_date=received.isoformat())
    _, step = start_from_referral(referral, step_id="s-1", now=utc(f"{received + timedelta(days=3)}T09:00:00"),
                                  actor="system:test", pack_version=1, team="children-response")
    created = created_event(step).model_dump(mode="json")
    assert domain.starts_of(SHIPPED.clocks, "workflow.events", "step.created", created) == [CFA]
    dated = date.fromisoformat(definitions.field_at(created, CFA.length.date_field or ""))
    clock = domain.start(CFA, 1, subject_key="s-1", person_id="p-1", team_id="children-response", at=step.created_at,
                         days=DAYS, dated=dated).clock
    assert clock.due_date == due
    assert [p.at for p in domain.points(clock, DAYS)] == [start_of_day(warned), start_of_day(due + timedelta(days=1))]


def test_R_CL3_in_summer_the_points_are_london_midnight_in_bst():
    clock = domain.start(CFA, 1, subject_key="s", person_id="p", team_id="t", at=utc("2024-06-03T09:00:00"),
                         days=DAYS).clock
    assert clock.due_date == date(2024, 8, 5)
    assert [p.at for p in domain.points(clock, DAYS)] == [utc("2024-07-28T23:00:00"), utc("2024-08-05T23:00:00")]


def test_R_CL4_a_tray_wait_is_28_calendar_days_warned_a_week_before():
    clock = domain.start(PWT, 1, subject_key="entry", person_id="p", team_id="t", at=utc("2026-12-01T12:00:00"),
                         days=DAYS).clock
    assert clock.due_date == date(2026, 12, 29)
    assert [(p.name, p.at) for p in domain.points(clock, DAYS)] == [
        ("warning-7", utc("2026-12-22T00:00:00")), ("breach", utc("2026-12-30T00:00:00"))]


def test_R_CL1_the_shipped_clocks_start_and_stop_on_the_events_named():
    created = {"step_id": "s1", "person_id": "p", "step_type": "Child and Family Assessment and Plan",
               "assignee": {"kind": "team", "id": "children-response"}, "provenance": {"rule": "referral intake"}}
    assert domain.starts_of(SHIPPED.clocks, "workflow.events", "step.created", created) == [CFA]
    update = {**created, "provenance": {"rule": "R-NA1 next action"}}
    assert domain.starts_of(SHIPPED.clocks, "workflow.events", "step.created", update) == []
    assert domain.moves_of(SHIPPED.clocks, "workflow.events", "step.finished", {"step_id": "s1"}) == [
        domain.Move(CFA.name, "s1", "stop")]
    assert domain.moves_of(SHIPPED.clocks, "allocation.events", "case.allocated", {"removed_entry_id": None}) == []


def test_R_CL1_a_broken_clocks_file_is_refused_naming_every_field():
    broken = """
version: 1
clocks:
  - name: Bad Name
    title: x
    rule: R-CL3
    starts: {topic: referrals.events, type: x, key: id, team: t}
    stops: []
    length: {working_days: 10, days: 3}
    warnings: [12]
    concerns: team_manager
"""
    with pytest.raises(definitions.InvalidClocks) as refused:
        definitions.parse(broken, "clocks.yaml")
    message = str(refused.value)
    for field in ("clocks.0.name", "clocks.0.starts.topic", "clocks.0.stops", "clocks.0.length"):
        assert field in message
    assert message.startswith("clocks.yaml: ")


# --- points fire once; pauses; stops (R-CL5, R-CL6) ---------------------------------------------------------

def started(at: str = "2024-01-08T10:00:00") -> domain.Clock:
    return domain.start(CFA, 1, subject_key="s", person_id="p", team_id="t", at=utc(at), days=DAYS).clock


def test_R_CL6_a_warning_and_the_breach_each_fire_once():
    clock = started()
    warning_at, breach_at = (p.at for p in domain.points(clock, DAYS))
    warned = domain.fire(clock, point="warning-5", due_at=warning_at, now=warning_at, days=DAYS)
    assert warned is not None and isinstance(warned.events[0], ClockWarning)
    assert warned.events[0].days_before == 5 and warned.clock.status == "at_risk"
    assert domain.fire(warned.clock, point="warning-5", due_at=warning_at, now=warning_at, days=DAYS) is None
    breached = domain.fire(warned.clock, point="breach", due_at=breach_at, now=breach_at, days=DAYS)
    assert breached is not None and isinstance(breached.events[0], ClockBreached)
    assert breached.clock.status == "breached" and domain.points(breached.clock, DAYS) == []
    assert domain.fire(breached.clock, point="breach", due_at=breach_at, now=breach_at, days=DAYS) is None


def test_R_CL6_a_warning_delivered_after_the_breach_fires_nothing():
    clock = started()
    warning_at, breach_at = (p.at for p in domain.points(clock, DAYS))
    breached = domain.fire(clock, point="breach", due_at=breach_at, now=breach_at, days=DAYS)
    assert breached is not None
    assert domain.fire(breached.clock, point="warning-5", due_at=warning_at, now=breach_at, days=DAYS) is None


def test_R_CL5_a_pause_across_christmas_moves_the_due_date_by_the_working_days_paused():
    clock = started("2026-11-02T10:00:00")
    assert clock.due_date == date(2027, 1, 7)
    paused = domain.pause(clock, at=utc("2026-12-18T15:00:00"), reason="child in hospital", days=DAYS)
    assert paused is not None and paused.clock.state == "paused"
    assert (paused.clock.paused_reason, paused.clock.paused_at) == ("child in hospital", utc("2026-12-18T15:00:00"))
    assert isinstance(paused.events[0], ClockPaused)
    assert {t.key for t in paused.timers} == {domain.timer_key(clock.clock_id, p) for p in ("warning-5", "breach")}
    assert domain.fire(paused.clock, point="breach", due_at=clock.breach_at, now=clock.breach_at, days=DAYS) is None
    # 18 Dec to 4 Jan: 18, 21–24, 29–31 Dec are working days; 25 and 28 Dec (Boxing Day observed), 1 Jan are not
    resumed = domain.resume(paused.clock, at=utc("2027-01-04T09:00:00"), days=DAYS)
    assert resumed is not None and isinstance(resumed.events[0], ClockResumed)
    assert resumed.events[0].paused_days == 8
    assert resumed.clock.due_date == date(2027, 1, 19) == DAYS.add(date(2027, 1, 7), 8)
    assert [(t.key.rsplit(":", 1)[1], t.due_at) for t in resumed.timers] == [
        ("warning-5", start_of_day(date(2027, 1, 12))), ("breach", start_of_day(date(2027, 1, 20)))]
    stale = domain.fire(resumed.clock, point="breach", due_at=clock.breach_at, now=clock.breach_at, days=DAYS)
    assert stale is None  # the timer set before the pause no longer counts


def test_R_CL5_a_clock_paused_and_resumed_the_same_day_loses_no_days():
    paused = domain.pause(started(), at=utc("2024-01-10T09:00:00"), reason="r", days=DAYS)
    assert paused is not None
    resumed = domain.resume(paused.clock, at=utc("2024-01-10T17:00:00"), days=DAYS)
    assert resumed is not None and resumed.clock.due_date == date(2024, 3, 11)


def test_R_CL6_a_stopped_clock_withdraws_its_timers_and_fires_nothing():
    clock = started()
    outcome = domain.stop(clock, at=utc("2024-02-01T12:00:00"), by="step.finished", days=DAYS)
    assert outcome is not None and isinstance(outcome.events[0], ClockStopped)
    assert outcome.events[0].breached is False
    assert {type(t) for t in outcome.timers} == {domain.CancelTimer}
    assert domain.stop(outcome.clock, at=utc("2024-02-02T12:00:00"), by="step.cancelled", days=DAYS) is None
    assert domain.fire(outcome.clock, point="breach", due_at=clock.breach_at, now=clock.breach_at, days=DAYS) is None


# --- the initial review and the annual review (R-CL8, R-CL9) ------------------------------------------------

INITIAL, ANNUAL = (next(c for c in SHIPPED.clocks if c.name == n) for n in ("initial_review", "annual_review"))


def test_R_CL8_an_initial_review_is_due_6_weeks_after_new_care_started_not_after_its_step():
    outcome = domain.start(INITIAL, 2, subject_key="review", person_id="p", team_id="adult-front-door",
                           at=utc("2024-06-20T10:00:00"), days=DAYS, dated=date(2024, 6, 10))
    assert outcome.clock.due_date == date(2024, 7, 22)  # care started 10 June: 42 days on
    assert [(p.name, p.at) for p in domain.points(outcome.clock, DAYS)] == [
        ("warning-7", utc("2024-07-14T23:00:00")), ("breach", utc("2024-07-22T23:00:00"))]  # London midnights, BST
    [started] = outcome.events
    assert isinstance(started, ClockStarted) and (started.unit, started.length) == ("days", 42)


def test_R_CL8_without_a_care_start_date_an_initial_review_counts_from_its_step():
    clock = domain.start(INITIAL, 2, subject_key="review", person_id="p", team_id="t", at=utc("2024-06-20T10:00:00"),
                         days=DAYS).clock
    assert clock.due_date == date(2024, 8, 1)


def test_R_CL8_the_initial_review_step_starts_its_clock_for_the_team_holding_the_workers_work():
    created = {"step_id": "r1", "person_id": "p", "step_type": "Initial Review",
               "assignee": {"kind": "worker", "id": "sw"},
               "provenance": {"rule": "R-NA3", "held_by": ["adult-front-door", "adult-carers"],
                              "window_from": "2024-06-10"}}
    assert domain.starts_of(SHIPPED.clocks, "workflow.events", "step.created", created) == [INITIAL]
    assert INITIAL.starts.team_key_of(created) == "adult-front-door"
    assert definitions.field_at(created, INITIAL.length.date_field) == "2024-06-10"
    finished = {"step_id": "r1", "step_type": "Initial Review"}
    assert domain.Move(INITIAL.name, "r1", "stop") in domain.moves_of(SHIPPED.clocks, "workflow.events",
                                                                      "step.finished", finished)


def test_R_CL9_an_annual_review_is_due_on_its_original_date_however_late_its_clock_starts():
    # last year's review, due 2 June 2024, was done late, on 1 August: the next is still due on 2 June (R-K4)
    outcome = domain.start(ANNUAL, 2, subject_key="fw", person_id="p", team_id="adult-front-door",
                           at=utc("2024-08-01T10:00:00"), days=DAYS, dated=date(2025, 6, 2))
    assert outcome.clock.due_date == date(2025, 6, 2)
    assert [(p.name, p.at) for p in domain.points(outcome.clock, DAYS)] == [
        ("warning-14", utc("2025-05-18T23:00:00")), ("breach", utc("2025-06-02T23:00:00"))]
    [started] = outcome.events
    assert isinstance(started, ClockStarted) and started.length == 305  # the days it was given


def test_R_CL9_rescheduling_the_future_work_does_not_move_the_annual_review_date():
    rescheduled = {"step_id": "fw", "person_id": "p", "step_type": "Future Work", "due_date": "2025-09-01"}
    assert domain.moves_of(SHIPPED.clocks, "workflow.events", "step.rescheduled", rescheduled) == []
    created = {"step_id": "fw", "person_id": "p", "step_type": "Future Work", "state": "future",
               "assignee": {"kind": "team", "id": "adult-front-door"}, "due_date": "2025-06-02"}
    assert domain.starts_of(SHIPPED.clocks, "workflow.events", "step.created", created) == [ANNUAL]
    assert definitions.field_at(created, ANNUAL.length.date_field) == "2025-06-02"


def test_R_CL1_a_length_is_one_of_working_days_days_or_a_date_and_counts_from_a_date_only_with_a_number():
    for length in ("{days: 3, due_on: due_date}", "{due_on: due_date, counted_from: provenance.window_from}", "{}"):
        text = f"""
version: 1
clocks:
  - {{name: c, title: x, rule: R-CL9, concerns: team_manager, length: {length},
      starts: {{topic: workflow.events, type: step.created, key: step_id, team: assignee.id}},
      stops: [{{topic: workflow.events, type: step.finished, key: step_id}}]}}
"""
        with pytest.raises(definitions.InvalidClocks, match="clocks.0.length"):
            definitions.parse(text)
