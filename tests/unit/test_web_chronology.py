"""The person's chronology and "as at" (R-P5), as Tessera desk derives them from the services' JSON.

Times are shown to the minute, UK time, everywhere: a practitioner records and reads a chronology by date
and time of day ("03 Jun 2024 14:05"); seconds would be noise in a document read at a review or in court.
Rows keep the exact order of the instants, so events within one minute are never shuffled.
"""

from datetime import UTC, datetime

import pytest

from services.web import chronology, trays
from shared.actor import who_did

STEP = {
    "step_id": "s1", "step_type": "WB Screening",
    "form": {"sections": [{"fields": [{"key": "referral_source", "label": "Referral source"},
                                      {"key": "consent_to_share", "label": "Consent to share information"}]}]},
    "history": [
        {"time": "2024-06-03T13:05:10+00:00", "actor": "hub", "what": "step.created",
         "details": {"state": "incoming"}},
        {"time": "2024-06-03T13:05:10+00:00", "actor": "hub", "what": "prepopulated", "details": {}},
        {"time": "2024-06-03T13:06:00+00:00", "actor": "hub", "what": "step.started", "details": {}},
        {"time": "2024-06-03T13:06:41+00:00", "actor": "hub", "what": "step.saved",
         "details": {"fields": ["referral_source", "consent_to_share"]}},
        {"time": "2024-06-03T13:06:59+00:00", "actor": "hub", "what": "step.assigned",
         "details": {"assignee": {"kind": "worker", "id": "gso"}}},
        {"time": "2024-06-03T13:07:30+00:00", "actor": "gso", "what": "request.sent",
         "details": {"name": "SO Transfer", "to": {"kind": "team", "id": "wellbeing-service-management"}}},
        {"time": "2024-06-03T13:08:00+00:00", "actor": "so", "what": "request.completed",
         "details": {"name": "SO Transfer"}},
        {"time": "2024-06-03T13:09:00+00:00", "actor": "so", "what": "step.returned",
         "details": {"note": "Add the GP"}},
        {"time": "2024-06-03T13:10:00+00:00", "actor": "gso", "what": "next_action.added",
         "details": {"action": "WB Triage"}},
        {"time": "2024-06-03T13:11:00+00:00", "actor": "so", "what": "step.authorised_and_finished",
         "details": {}},
    ],
}
NOTE = {"written_at": "2024-06-03T12:00:00+00:00", "author": "sw", "title": "Phone call", "type": "Case Note"}
RECORD = {"at": "2024-06-02T09:30:00+00:00", "actor": "referrals-officer", "what": "person_created",
          "fields": ["first_name", "address"]}
RELATIONSHIPS = {
    "worker_relationships": [{"worker_id": "sw", "relationship": "allocated worker", "start_date": "2024-06-04",
                              "created_at": "2024-06-04T08:00:00+00:00", "created_by": "tm",
                              "ended_at": "2024-07-01T16:45:00+00:00", "end_date": "2024-07-01",
                              "end_reason": "case closed", "ended_by": "tm-2"}],
    "organisational_relationships": [{"team_id": "adult-front-door", "relationship": "involved team",
                                      "start_date": "2024-06-01", "created_at": "2024-06-01T10:00:00+00:00",
                                      "created_by": "tm"}],
}


NAMES = {"hub": "Hana Hub", "gso": "Gail Stone", "so": "Sam Okafor", "sw": "Sally Walker", "tm": "Tom Mensah"}


def everything(until: datetime | None = None) -> list[chronology.Entry]:
    return chronology.build(steps=[STEP], notes=[NOTE], record_history=[RECORD],
                            relationships=RELATIONSHIPS, until=until, names=NAMES)


def test_r_p5_every_kind_of_event_is_listed_oldest_first_whatever_order_the_services_answer_in():
    entries = everything()
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    assert [e.kind for e in entries[:3]] == ["relationship", "record", "note"]
    reordered = chronology.build(steps=[{**STEP, "history": list(reversed(STEP["history"]))}], notes=[NOTE],
                                 record_history=[RECORD], relationships=RELATIONSHIPS, names=NAMES)
    assert [(e.at, e.what) for e in reordered] == [(e.at, e.what) for e in entries]


def test_r_p5_events_in_the_same_minute_keep_the_order_they_happened_in():
    saved, assigned = (e for e in everything() if e.what.startswith(("WB Screening saved", "WB Screening assigned")))
    assert saved.when == assigned.when == "03 Jun 2024 14:06"  # 13:06 UTC is 14:06 in London (BST)
    assert saved.at < assigned.at and everything().index(saved) < everything().index(assigned)


@pytest.mark.parametrize(("what", "who", "when"), [
    ("WB Screening created (incoming)", "Hana Hub", "03 Jun 2024 14:05"),
    ("WB Screening started", "Hana Hub", "03 Jun 2024 14:06"),
    ("WB Screening saved: Referral source, Consent to share information", "Hana Hub", "03 Jun 2024 14:06"),
    ("WB Screening assigned to Gail Stone", "Hana Hub", "03 Jun 2024 14:06"),
    ("WB Screening: request SO Transfer sent to Wellbeing Service Management Team", "Gail Stone",
     "03 Jun 2024 14:07"),
    ("WB Screening: request SO Transfer completed", "Sam Okafor", "03 Jun 2024 14:08"),
    ("WB Screening returned: Add the GP", "Sam Okafor", "03 Jun 2024 14:09"),
    ("WB Screening: next action WB Triage added", "Gail Stone", "03 Jun 2024 14:10"),
    ("WB Screening authorised and finished", "Sam Okafor", "03 Jun 2024 14:11"),
    ("Case note: Phone call (Case Note)", "Sally Walker", "03 Jun 2024 13:00"),
    ("Record: person created (First name, Address)", "referrals-officer", "02 Jun 2024 10:30"),
    ("Worker Sally Walker: allocated worker from 04 Jun 2024", "Tom Mensah", "04 Jun 2024 09:00"),
    ("Team Adult Social Care Front Door: involved team from 01 Jun 2024", "Tom Mensah", "01 Jun 2024 11:00"),
])
def test_r_p5_each_event_kind_is_rendered_with_who_and_when_to_the_minute_uk_time(what, who, when):
    [entry] = [e for e in everything() if e.what == what]
    assert (entry.who, entry.when) == (who, when)


def test_the_blue_cog_prepopulation_is_part_of_created_not_a_line_of_its_own():
    assert not any("prepopulated" in e.what for e in everything())


def test_R_A1_an_ended_relationship_says_when_why_and_who_ended_it():
    [ended] = [e for e in everything() if e.what.endswith("ended (case closed)")]
    assert (ended.when, ended.who, ended.what) == ("01 Jul 2024 17:45", "tm-2",
                                                   "Worker Sally Walker: allocated worker ended (case closed)")


def test_the_chronology_as_at_a_moment_stops_at_that_moment():
    at = chronology.parse_as_at("2024-06-03T14:07")  # London time, the whole minute 14:07 included
    assert at is not None
    entries = everything(until=at)
    assert entries[-1].what.startswith("WB Screening: request SO Transfer sent")
    assert not any("completed" in e.what for e in entries)


def test_as_at_a_date_is_the_end_of_that_day_in_london_and_is_labelled_so():
    at = chronology.parse_as_at("2024-06-03")
    assert at == datetime(2024, 6, 3, 22, 59, 59, 999_999, tzinfo=UTC)
    assert chronology.as_at_label(at) == "the end of 3 June 2024"
    assert chronology.as_at_label(chronology.parse_as_at("2024-06-03T14:07")) == "3 June 2024 14:07"
    assert chronology.as_at_label(chronology.parse_as_at("2024-06-03T13:06:41.5+00:00")) == "3 June 2024 14:06:41"
    assert chronology.parse_as_at("not a date") is None and chronology.parse_as_at("2024-02-30") is None


def test_every_time_on_the_desk_is_to_the_minute_and_a_date_alone_stays_a_date():
    assert chronology.format_when("2024-01-15T09:05:59+00:00") == "15 Jan 2024 09:05"  # GMT in winter
    assert chronology.format_when(datetime(2024, 6, 3, 13, 5, 59, tzinfo=UTC)) == "03 Jun 2024 14:05"
    assert chronology.format_when("2024-06-03") == "03 Jun 2024"  # a due date: no midnight-in-UTC hour
    assert chronology.format_when(None) == ""


def test_as_at_shows_relationships_open_that_day_notes_written_by_then_and_record_changes_since():
    at = chronology.parse_as_at("2024-06-03")
    assert at is not None
    assert chronology.open_on(RELATIONSHIPS["worker_relationships"], at) == []
    assert chronology.open_on(RELATIONSHIPS["organisational_relationships"], at) == \
        RELATIONSHIPS["organisational_relationships"]
    assert chronology.open_on(RELATIONSHIPS["worker_relationships"], chronology.parse_as_at("2024-06-30")) == \
        RELATIONSHIPS["worker_relationships"]
    assert chronology.made_by([NOTE], chronology.parse_as_at("2024-06-02")) == []
    assert chronology.made_by([NOTE], at, "written_at") == [NOTE]
    later = {"at": "2024-06-10T09:00:00+00:00", "actor": "sw", "what": "person_updated", "fields": ["address"]}
    [changed] = chronology.changed_since([RECORD, later], at)
    assert (changed.who, changed.what) == ("sw", "Record: person updated (Address)")


def test_as_at_replays_each_step_to_its_state_and_assignee_then():
    at = chronology.parse_as_at("2024-06-03T14:07")
    assert at is not None
    [then] = chronology.steps_as_at([STEP], at, needs_authorising=lambda step: True)
    assert (then.state, then.assignee) == ("incomplete", {"kind": "worker", "id": "gso"})
    assert [s.what for s in then.saves] == ["saved referral_source, consent_to_share"]


@pytest.mark.parametrize(("entry", "mark"), [
    ({"due": False, "overdue": False, "days_until_due": 30}, ("waiting", "Due in 30 days")),
    ({"due": False, "overdue": False, "days_until_due": 1}, ("waiting", "Due in 1 day")),
    ({"due": True, "overdue": False, "days_until_due": 0}, ("due", "Due today")),
    ({"due": True, "overdue": False, "days_until_due": 3}, ("due", "Due today")),  # its timer fired early
    ({"due": True, "overdue": True, "days_until_due": -4}, ("overdue", "Overdue by 4 days")),
])
def test_r_t8_a_review_tray_entry_is_marked_waiting_due_or_overdue(entry, mark):
    assert trays.review_mark(entry) == mark


def test_a_worker_recorded_as_worker_colon_id_and_a_services_own_action_are_named():
    """§9: referrals records "worker:tm"; a timer's or a service's action is the system's, never an id."""
    assert who_did("worker:tm", NAMES) == "Tom Mensah"
    assert who_did("system:scheduler", NAMES) == "Tessera (automatic)"
