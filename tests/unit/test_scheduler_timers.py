"""Timer rules of the scheduler, pure: set, move, cancel, what is due, and the timer.due it emits."""

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.scheduler import domain
from services.scheduler.clock import Clock
from shared.envelope import Undecodable
from shared.events.scheduler import TimerCancel, TimerDue, TimerSet

NOW = datetime(2025, 3, 30, 0, 30, tzinfo=UTC)  # half an hour before the clocks go forward in London
SET_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")


def a_timer(key="review:p-1", due_at=NOW + timedelta(hours=1), **changes) -> domain.Timer:
    command = TimerSet(key=key, due_at=due_at, owner="workflow", payload={"step_id": "s-1"})
    timer = domain.set_timer(None, command, subject="p-1", message_id=SET_ID, correlation_id="c-1", now=NOW)
    return domain.Timer(**{**timer.__dict__, **changes})


def test_a_new_timer_is_generation_1_and_keyed_by_the_owners_subject():
    timer = a_timer()
    assert (timer.generation, timer.subject, timer.set_by, timer.created_at) == (1, "p-1", SET_ID, NOW)


def test_setting_an_existing_key_moves_it_and_keeps_when_it_was_first_set():
    existing = a_timer()
    later = NOW + timedelta(days=28)
    again = uuid.uuid4()
    moved = domain.set_timer(existing, TimerSet(key=existing.key, due_at=later, owner="workflow", payload={"n": 2}),
                             subject="p-1", message_id=again, correlation_id=None, now=NOW + timedelta(minutes=5))
    assert moved.due_at == later and moved.payload == {"n": 2}
    assert moved.generation == 2 and moved.set_by == again
    assert moved.created_at == NOW and moved.updated_at == NOW + timedelta(minutes=5)


def test_due_times_are_kept_in_utc_whatever_offset_they_were_sent_in():
    london_summer = timezone(timedelta(hours=1))
    timer = domain.set_timer(
        None, TimerSet(key="k", due_at=datetime(2025, 3, 30, 2, 30, tzinfo=london_summer), owner="workflow"),
        subject="k", message_id=SET_ID, correlation_id=None, now=NOW)
    assert timer.due_at.utcoffset() == timedelta(0)
    assert timer.due_at == datetime(2025, 3, 30, 1, 30, tzinfo=UTC)


def test_cancel_withdraws_the_timer_with_that_key():
    timer = a_timer()
    assert domain.cancel_timer(timer, TimerCancel(key=timer.key)) == timer


def test_cancelling_a_key_that_is_not_set_withdraws_nothing():
    assert domain.cancel_timer(None, TimerCancel(key="never-set")) is None


def test_a_timer_is_due_at_its_due_time_and_not_a_moment_before():
    timer = a_timer(due_at=NOW)
    assert domain.is_due(timer, NOW)
    assert not domain.is_due(timer, NOW - timedelta(microseconds=1))


def test_due_timers_come_earliest_first_up_to_the_limit():
    timers = [a_timer(key=f"k{i}", due_at=NOW - timedelta(seconds=i)) for i in range(5)]
    future = a_timer(key="later", due_at=NOW + timedelta(seconds=1))
    assert [t.key for t in domain.due([*timers, future], NOW, limit=3)] == ["k4", "k3", "k2"]


def test_nothing_is_due_before_its_time():
    assert domain.due([a_timer(due_at=NOW + timedelta(days=1))], NOW, limit=10) == []


def test_timer_due_carries_key_due_time_owner_payload_and_when_it_fired():
    timer = a_timer(due_at=NOW)
    fired = domain.fire(timer, NOW + timedelta(milliseconds=40))
    assert fired == TimerDue(key=timer.key, due_at=NOW, owner="workflow", payload={"step_id": "s-1"},
                             fired_at=NOW + timedelta(milliseconds=40))
    assert domain.lateness(timer, NOW + timedelta(milliseconds=40)) == pytest.approx(0.04)


def test_a_repeat_firing_of_one_setting_has_the_same_message_id_and_a_new_setting_another():
    assert domain.due_message_id("k", SET_ID) == domain.due_message_id("k", SET_ID)
    assert domain.due_message_id("k", SET_ID) != domain.due_message_id("k", uuid.uuid4())
    assert domain.due_message_id("k", SET_ID) != domain.due_message_id("k2", SET_ID)


def test_the_ordering_key_is_the_subject_then_the_kafka_key_then_the_timer_key():
    assert domain.ordering_key("person-1", "other", "t") == "person-1"
    assert domain.ordering_key(None, "person-2", "t") == "person-2"
    assert domain.ordering_key(None, None, "t") == "t"


def test_a_timer_due_before_the_next_poll_wakes_the_job_at_its_due_time():
    poll = timedelta(seconds=0.2)
    assert domain.wake_at(NOW + timedelta(seconds=0.1), NOW, poll) == NOW + timedelta(seconds=0.1)
    assert domain.wake_at(NOW - timedelta(seconds=5), NOW, poll) == NOW
    assert domain.wake_at(NOW + timedelta(seconds=1), NOW, poll) is None


def test_unknown_command_types_are_not_the_schedulers():
    assert domain.parse_command("timer.snooze", {"key": "k"}) is None


@pytest.mark.parametrize(("data", "field"), [
    ({"due_at": "2030-01-01T09:00:00+00:00", "owner": "workflow"}, "key"),
    ({"key": "k", "due_at": "2030-01-01T09:00:00", "owner": "workflow"}, "due_at"),
    ({"key": "k", "due_at": "next tuesday", "owner": "workflow"}, "due_at"),
    ({"key": "k" * 201, "due_at": "2030-01-01T09:00:00Z", "owner": "workflow"}, "key"),
    ({"key": "a\nb", "due_at": "2030-01-01T09:00:00Z", "owner": "workflow"}, "key"),
    ({"key": "k", "due_at": "2030-01-01T09:00:00Z"}, "owner"),
    ({"key": "k", "due_at": "2030-01-01T09:00:00Z", "owner": "workflow", "payload": [1]}, "payload"),
])
def test_an_invalid_timer_set_names_the_field_at_fault_without_its_value(data, field):
    with pytest.raises(Undecodable) as raised:
        domain.parse_command("timer.set", data)
    assert raised.value.reason.startswith("invalid timer.set: " + field)
    assert "next tuesday" not in raised.value.reason


@pytest.mark.parametrize(("due_at", "payload", "fields"), [
    ("0001-01-01T00:00:00Z", {}, ["due_at"]),
    ("1999-12-31T23:59:59Z", {}, ["due_at"]),
    ("9999-12-31T23:59:59Z", {}, ["due_at"]),
    ("2030-01-01T09:00:00Z", {"note": "x" * 20_000}, ["payload"]),
    ("2030-01-01T09:00:00Z", {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}, ["payload"]),
    ("0001-01-01T00:00:00Z", {"note": "x" * 20_000}, ["due_at", "payload"]),
])
def test_a_timer_set_beyond_the_limits_is_refused_naming_every_field(due_at, payload, fields):
    """Issue #20: a due time outside 2000-2200 or an oversized payload never reaches the table."""
    with pytest.raises(Undecodable) as raised:
        domain.parse_command("timer.set", {"key": "k", "due_at": due_at, "owner": "workflow", "payload": payload})
    named = [part.split(":")[0].strip() for part in raised.value.reason.removeprefix("invalid timer.set: ").split(";")]
    assert named == fields
    assert "xxxx" not in raised.value.reason


def test_the_limits_are_settings():
    limits = domain.TimerLimits(earliest_due_at=datetime(1990, 1, 1, tzinfo=UTC), max_payload_bytes=10)
    command = domain.parse_command("timer.set", {"key": "k", "due_at": "1995-01-01T00:00:00Z", "owner": "w"},
                                   limits)
    assert isinstance(command, TimerSet)
    with pytest.raises(Undecodable, match="payload"):
        domain.parse_command("timer.set", {"key": "k", "due_at": "1995-01-01T00:00:00Z", "owner": "w",
                                           "payload": {"step_id": "s-123456"}}, limits)


def test_a_timer_set_with_extra_fields_is_accepted():
    command = domain.parse_command("timer.set", {"key": "k", "due_at": "2030-01-01T09:00:00Z",
                                                 "owner": "workflow", "priority": "high"})
    assert isinstance(command, TimerSet) and command.payload == {}


def test_the_clock_adds_its_offset_and_converts_back_to_wall_time():
    clock = Clock(offset_seconds=86_400, wall=lambda: NOW.timestamp())
    assert clock.now() == NOW + timedelta(days=1)
    assert clock.to_wall(NOW + timedelta(days=1, seconds=3)) == NOW + timedelta(seconds=3)
    assert clock.now().tzinfo == UTC
