"""Issue #20: every consumed model bounds every value it brings; hostile values never get past parsing.

Property-based (hypothesis) over every command of shared/commands, every event of shared/events (the
scheduler's are the lead's, tested with the scheduler), the referral intake and the envelope: any
generated data of a model's shape with hostile values mixed in (NaN, infinities, 1e308, year 1 and 9999,
DST-gap local times, 100 kB strings, deep nesting) either validates into a model whose every value is
within shared/bounds.py and serialises as strict JSON (what the store and the outbox relay write), or is
refused with a ValidationError naming fields, never echoing a value, and never any other exception.
Then the pure domain of each service takes what validated without crashing.
"""

import inspect
import json
import math
import os
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from services.referrals import domain as referrals_domain
from services.workflow import domain as workflow_domain
from services.workflow import purchasing
from services.workflow.pack import PackRegistry
from shared import bounds
from shared.commands import allocation as allocation_commands
from shared.commands import referrals as referral_commands
from shared.commands import workflow as workflow_commands
from shared.commands.base import RuleBroken, invalid_reasons, parse_command
from shared.envelope import Envelope, Undecodable, decode, describe_errors
from shared.events import allocation, brokerage, documents, notifications, referrals, web, workflow
from shared.events import purchasing as purchasing_events
from tests.hostile_values import CANARY, data_for, envelope_for, hostile, json_values, nested, within_bounds
from tests.workflow_harness import PERSON, Engine, actor, shipped_packs

# 8 examples a model keeps the unit layer short (issue #16 §6); `make faults` runs 100 (HYPOTHESIS_PER_MODEL)
PER_MODEL = int(os.environ.get("HYPOTHESIS_PER_MODEL", 8))
PROPERTY = settings(max_examples=PER_MODEL, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                           HealthCheck.data_too_large])
COMMAND_SETS = {"workflow": workflow_commands.COMMANDS, "allocation": allocation_commands.COMMANDS,
                "referrals": referral_commands.COMMANDS}
COMMANDS = [model for commands in COMMAND_SETS.values() for model in commands.values()]
EVENTS = [model for module in (workflow, allocation, notifications, documents, brokerage, purchasing_events, referrals,
                          web)
          for _, model in inspect.getmembers(module, inspect.isclass)
          if issubclass(model, BaseModel) and model.__module__ == module.__name__ and "TYPE" in vars(model)]


def _refused_cleanly(exc: ValidationError) -> None:
    errors = exc.errors(include_input=False, include_url=False)
    assert errors
    said = describe_errors(exc) + json.dumps([r.model_dump() for r in invalid_reasons(exc)])
    assert CANARY not in said, said[:300]
    assert "x" * 1000 not in said


def _validated_within_bounds(model: type[BaseModel], data: dict[str, Any]) -> BaseModel | None:
    try:
        instance = model.model_validate(data)
    except ValidationError as exc:
        _refused_cleanly(exc)
        return None
    assert within_bounds(instance) == [], (model.__name__, within_bounds(instance))
    json.dumps(instance.model_dump(mode="json", by_alias=True), allow_nan=False)  # the store and relay write this
    return instance


def test_every_model_is_covered() -> None:
    """The models below are all of them: 34 commands, and the events the services publish for others."""
    assert len(COMMANDS) == 34
    assert {m.TYPE for m in EVENTS} >= {"referral.received", "referral.accepted", "request.raised", "step.finished",
                                        "step.rescheduled", "message.requested", "message.sent", "provider.offered",
                                        "provider.confirmed", "purchase_order.requested", "account.listed"}


@pytest.mark.parametrize("model", COMMANDS, ids=lambda m: m.TYPE)
@PROPERTY
@given(data=st.data())
def test_a_command_validates_within_bounds_or_is_refused_naming_fields(model: type[BaseModel], data) -> None:
    """Issue #20: through `parse_command` (as every handler parses): a model within bounds, or RuleBroken
    with `invalid` reasons each naming a field; nothing else."""
    drawn = data.draw(data_for(model))
    commands = next(c for c in COMMAND_SETS.values() if model.TYPE in c)
    try:
        command = parse_command(commands, model.TYPE, drawn)
    except RuleBroken as refused:
        assert refused.reasons and all(r.code == "invalid" and r.field for r in refused.reasons)
        assert CANARY not in json.dumps([r.model_dump() for r in refused.reasons])
        return
    assert within_bounds(command) == []
    json.dumps(command.model_dump(mode="json", by_alias=True), allow_nan=False)


@pytest.mark.parametrize("model", EVENTS, ids=lambda m: m.TYPE)
@PROPERTY
@given(data=st.data())
def test_an_event_validates_within_bounds_or_is_refused_naming_fields(model: type[BaseModel], data) -> None:
    """Issue #20: an event consumers read validates within bounds or raises ValidationError (→ `.dlq`)."""
    _validated_within_bounds(model, data.draw(data_for(model)))


@pytest.mark.parametrize("value, field", [
    (float("nan"), "weekly_hours"), (float("inf"), "hourly_rate"), (1e308, "weekly_hours"),
])
def test_a_number_that_is_not_finite_or_absurd_is_refused_in_a_save(value: float, field: str) -> None:
    """Issue #20: NaN, infinity and 1e308 never reach a step's values (they are not JSON, or no cost)."""
    with pytest.raises(ValidationError) as caught:
        workflow_commands.SaveStep.model_validate({"actor": actor("w"), "step_id": PERSON["person_id"],
                                                   "values": {"rows": [{field: value}]}})
    assert [e["loc"] for e in caught.value.errors()] == [("values",)]


@pytest.mark.parametrize("data, fields", [
    ({"received_at": "0001-01-01T00:00:00Z"}, {"received_at"}),
    ({"received_at": "9999-12-31T23:59:59Z"}, {"received_at"}),
    ({"received_at": "2025-03-30T01:30:00"}, {"received_at"}),  # naive: refused, whatever the clocks did
    ({"person": {"first_name": "A", "last_name": "B", "date_of_birth": "1879-12-31"}}, {"person.date_of_birth"}),
    ({"person": {"first_name": "A", "last_name": "B", "date_of_birth": "9999-12-31"}}, {"person.date_of_birth"}),
    ({"reason": "x" * 100_000}, {"reason"}),
])
def test_a_referral_out_of_bounds_is_rejected_naming_the_field(data: dict[str, Any], fields: set[str]) -> None:
    """Issue #20 on referral.received: year 1 / 9999, DST-gap naive times, 100 kB text: every field named."""
    good = {"referral_id": "REF-1", "received_at": "2025-03-30T01:30:00+01:00", "service": "adults",
            "category": "wellbeing", "person": {"first_name": "A", "last_name": "B", "date_of_birth": "1950-01-01"},
            "reason": "Needs help"}
    assert referrals_domain.validate_referral(good).received_at == datetime(2025, 3, 30, 0, 30, tzinfo=UTC)
    with pytest.raises(RuleBroken) as caught:
        referrals_domain.validate_referral({**good, **data})
    assert {e.field for e in caught.value.reasons} == fields
    assert all(e.code == "invalid" or e.code == "too_long" for e in caught.value.reasons)


@PROPERTY
@given(data=data_for(referrals.ReferralReceived))
def test_referral_intake_accepts_within_bounds_or_rejects_naming_fields(data: dict[str, Any]) -> None:
    """Issue #20: the intake domain (validate → match keys → person record) never fails on a hostile referral."""
    try:
        referral = referrals_domain.validate_referral(data)
    except RuleBroken as invalid:
        assert invalid.reasons and all(e.field for e in invalid.reasons)
        assert CANARY not in json.dumps([e.model_dump() for e in invalid.reasons])
        return
    assert within_bounds(referral) == []
    for person in filter(None, (referral.person, referral.cared_for_person)):
        referrals_domain.match_keys(person)
        json.dumps(referrals_domain.person_record(person), allow_nan=False)


@PROPERTY
@given(data=data_for(referral_commands.PersonChanges))
def test_person_changes_apply_or_are_refused(data: dict[str, Any]) -> None:
    """Issue #20: person.update's changes, once valid, apply to a record without crashing (R-P1)."""
    model = _validated_within_bounds(referral_commands.PersonChanges, data)
    if model is None:
        return
    changes = model.model_dump(mode="json", exclude_unset=True)
    try:
        record, _ = referrals_domain.apply_changes({"date_of_birth": "1950-01-01"}, changes)
    except RuleBroken as refused:
        assert all(r.field for r in refused.reasons)
        return
    json.dumps(record, allow_nan=False)


@PROPERTY
@given(body=st.one_of(envelope_for("x.anything", json_values()), envelope_for("x.deep", st.just(nested(40))),
                      envelope_for("x.nan", st.just({"n": math.nan}))))
def test_an_envelope_decodes_within_bounds_or_is_undecodable(body: dict[str, Any]) -> None:
    """Issue #20: the envelope's time lies between 2000 and 2200, its data nests at most 32 levels, and
    NaN or infinities (not JSON) make the message undecodable: `.dlq`, never another exception."""
    raw = json.dumps(body, allow_nan=True).encode()
    try:
        envelope = decode(raw)
    except Undecodable as exc:
        assert CANARY not in exc.reason
        return
    assert bounds.EARLIEST_TIME <= envelope.time < bounds.LATEST_TIME
    assert not bounds.nests_deeper_than(envelope.data, bounds.MAX_ENVELOPE_DEPTH)
    json.dumps(envelope.model_dump(mode="json"), allow_nan=False)


@pytest.mark.parametrize("raw", [b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}', b'{"a": 1e400}'])
def test_nan_and_infinities_are_not_json(raw: bytes) -> None:
    with pytest.raises(Undecodable):
        decode(raw)


def test_an_envelope_time_outside_2000_to_2200_is_undecodable() -> None:
    body = {"specversion": "1.0", "id": "7d1c9c9e-0c2b-4b8e-9d0a-3f1e2f0c9a11", "type": "x", "source": "t",
            "time": "0001-01-01T00:00:00Z", "data": {}}
    with pytest.raises(Undecodable) as caught:
        decode(json.dumps(body).encode())
    assert caught.value.reason.startswith("not a CloudEvent: time: must be between")
    assert Envelope.model_validate({**body, "time": "2025-03-30T01:30:00+01:00"}).time.hour == 1


# --- the workflow domain takes any valid command without crashing -------------------------------------

PLAN = "Create Support Plan"
VISIT = "Child in Need Visit"
COORDINATOR = actor("cc-1", "social_worker", teams=("short-term-service",))
SHIPPED: PackRegistry = shipped_packs()
COST_INPUT = st.one_of(hostile(), st.decimals(allow_nan=True, allow_infinity=True).map(str),
                       st.floats(allow_nan=False, allow_infinity=False), st.integers(-(10**12), 10**12))
ROW = st.fixed_dictionaries({"service": st.just("Domiciliary care")}, optional={
    "hourly_rate": COST_INPUT, "hours_per_week": COST_INPUT, "respite_weeks": COST_INPUT})
PLAN_VALUES = st.fixed_dictionaries({}, optional={
    "planned_services": st.lists(ROW, max_size=3), "care_start_date": st.one_of(hostile(), st.dates().map(str)),
    "annual_review_date": st.one_of(hostile(), st.dates().map(str)), "may_co_fund": st.booleans()})


def _try(engine: Engine, type_: str, **data: Any) -> workflow_domain.Decision | None:
    """A command as the handler takes it: refused (validation or rule) or decided; nothing else."""
    try:
        return engine.send(type_, COORDINATOR, **data)
    except ValidationError as exc:
        _refused_cleanly(exc)
    except RuleBroken as broken:
        assert all(r.code for r in broken.reasons)
    return None


def _stored(decision: workflow_domain.Decision | None) -> None:
    """What the handler would write (step values as jsonb) and relay (events as JSON)."""
    if decision is None:
        return
    if decision.step is not None:
        json.dumps(decision.step.values, allow_nan=False)
    for event in decision.events:
        assert within_bounds(event) == []
        json.dumps(event.model_dump(mode="json", by_alias=True), allow_nan=False)


@PROPERTY
@given(values=PLAN_VALUES, when=st.one_of(hostile(), st.dates().map(str)))
def test_a_support_plan_saves_costs_and_orders_or_refuses_r_k10(values: dict[str, Any], when: Any) -> None:
    """Issue #20, R-K10: hostile hours, rates and dates in a support plan are refused with reasons or costed
    within bounds; finishing asks for purchase orders that validate; a good save afterwards still works."""
    engine = Engine(packs=SHIPPED)
    plan = engine.given_step(PLAN, COORDINATOR).created[0]
    _stored(_try(engine, "step.save", step_id=plan.step_id, values=values))
    _stored(_try(engine, "step.add_next_action", step_id=plan.step_id, action="Brokerage purchasing request",
                 scheduled_date=when))
    good = {"planned_services": [{"service": "Domiciliary care", "hourly_rate": "16.05", "hours_per_week": "10.5"}]}
    saved = engine.send("step.save", COORDINATOR, step_id=plan.step_id, values=good)
    assert saved.step is not None and saved.step.values["planned_services"][0]["weekly_cost"] == "168.53"
    step = engine.steps[plan.step_id]
    sent = [purchasing.SentAction(a.next_action_id, a.action, a.reason, a.note, a.assignee_kind, a.assignee_id,
                                  sent=True) for a in step.next_actions]
    for order in purchasing.orders_of_step(SHIPPED.step(PLAN), step.step_id, step.person_id, "finished",
                                           step.values, sent, requested_by="cc-1"):
        json.dumps(order.event.model_dump(mode="json"), allow_nan=False)


@pytest.mark.parametrize("values, field", [
    ({"planned_services": [{"service": "Domiciliary care", "hourly_rate": "1e308", "hours_per_week": "1"}]},
     "planned_services[0].hourly_rate"),
    ({"planned_services": [{"service": "Domiciliary care", "hourly_rate": "16.05", "hours_per_week": "1e308"}]},
     "planned_services[0].hours_per_week"),
    ({"planned_services": [{"service": "Domiciliary care", "hourly_rate": "16.05", "hours_per_week": "169"}]},
     "planned_services[0].hours_per_week"),
    ({"care_start_date": "0001-01-01"}, "care_start_date"),
    ({"care_start_date": "9999-12-31"}, "care_start_date"),
])
def test_absurd_hours_rates_and_dates_in_a_plan_are_refused_naming_the_field(values: dict[str, Any],
                                                                             field: str) -> None:
    """Issue #20, R-K10: 1e308 hours or a rate beyond £10,000 an hour is no care package; year 1 is no start."""
    engine = Engine(packs=SHIPPED)
    plan = engine.given_step(PLAN, COORDINATOR).created[0]
    with pytest.raises(RuleBroken) as caught:
        engine.send("step.save", COORDINATOR, step_id=plan.step_id, values=values)
    assert [r.field for r in caught.value.reasons] == [field]
    assert "1e308" not in caught.value.reasons[0].message


@pytest.mark.parametrize("when, problem", [
    ("2025-03-30T01:30:00", "does not exist in Europe/London"),  # clocks went forward at 01:00 GMT
    ("0001-01-01T00:00:00", "must be between"),
    ("9999-12-31T23:59:59+00:00", "must be between"),
    ("2025-03-30T00:59:00", None), ("2025-03-30T02:00:00", None),
    ("2025-10-26T01:30:00", None),  # the autumn overlap: its first occurrence
    ("2025-03-30T01:30:00+01:00", None),  # an offset makes it an instant
])
def test_a_visit_time_in_the_london_dst_gap_is_refused(when: str, problem: str | None) -> None:
    """Issue #20: a naive date and time typed into a form is Europe/London wall time; one the clocks skipped
    is refused, and the message says why without repeating it."""
    got = workflow_domain.value_problem(SHIPPED.step(VISIT).field_map()["visit_datetime"], when)
    if problem is None:
        assert got is None
    else:
        assert got is not None and problem in got and when not in got


@PROPERTY
@given(when=st.one_of(hostile(), st.dates().map(str)), due=st.one_of(hostile(), st.dates().map(str)))
def test_scheduled_and_due_dates_decide_or_refuse(when: Any, due: Any) -> None:
    """Issue #20: a future work date of year 1 or 9999 never reaches the timer arithmetic (R-S1)."""
    engine = Engine(packs=SHIPPED)
    step = engine.referral()
    engine.send("step.start", actor("hub", "gso", teams=("wellbeing-service-hub",)), step_id=step.step_id)
    _stored(_try(engine, "step.reschedule", step_id=step.step_id, due_date=due))
    _stored(_try(engine, "person.record_death", person_id=PERSON["person_id"], date_of_death=when))
