"""Purchase orders on purchasing.orders through the real broker and database (R-F1..R-F3, R-F5, R-F6, R-K10).

Each order is published once per next action however often the finishing command or a brokerage
event is delivered. "Nothing more came" is awaited with a later message on the same key (one
partition, handled in order), never with a sleep.
"""

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest

from shared import topics
from shared.calendar import london_date
from shared.testing import EventLog
from tests.purchasing_harness import (
    BROKERAGE,
    DOM_CARE,
    INTERIM_REASON,
    PA,
    SOURCE_PVI,
    TELECARE,
    brokerage_message,
    coordinator,
    from_brokerage,
    orders_of,
    plan_values,
    support_plan,
)
from tests.workflow_harness import Commands, actor

CHILDREN = "Purchase Services: Children's"
CONFIRM = "REQUIRED: Please review information and confirm next action"


@pytest.fixture
async def orders(infra) -> AsyncIterator[EventLog]:
    watched = [topics.PURCHASING_ORDERS, topics.SCHEDULER_TIMERS, topics.dlq(topics.BROKERAGE_EVENTS)]
    async with EventLog(infra.bootstrap, watched) as log:
        yield log


async def _order_kinds(orders: EventLog, person_id: str, count: int) -> dict[str, dict]:
    await orders.wait_until(lambda: len(orders_of(orders, person_id)) >= count, 30)
    return {s.data["kind"]: s.data for s in orders_of(orders, person_id)}


async def test_R_F1_R_K10_a_finished_support_plan_publishes_one_brokerage_dp_and_telecare_order_each_costed(
        workflow, commands: Commands, orders: EventLog, db):
    worker, person_id = coordinator(), str(uuid.uuid4())
    plan = await support_plan(commands, worker, person_id, plan_values(DOM_CARE, PA, TELECARE), [
        {"action": BROKERAGE, "reason": SOURCE_PVI, "note": "Morning and evening calls"},
        {"action": "Direct payments"}, {"action": "Telecare"}])
    finish = await commands.publish("step.finish", {"actor": worker, "step_id": plan}, key=person_id)
    (await commands.outcome(finish)).ok()

    by_kind = await _order_kinds(orders, person_id, 3)
    assert set(by_kind) == {"brokerage", "direct_payment", "telecare"}
    brokerage = by_kind["brokerage"]
    assert {k: brokerage[k] for k in ("weekly_hours", "hourly_rate", "weeks_per_year", "weekly_cost",
                                      "annual_cost", "start_date", "requested_by", "step_id", "person_id")} == {
        "weekly_hours": "10.5", "hourly_rate": "16.05", "weeks_per_year": "46", "weekly_cost": "168.53",
        "annual_cost": "7752.38", "start_date": "2024-06-10", "requested_by": worker["worker_id"],
        "step_id": plan, "person_id": person_id}
    assert "Morning and evening calls" in brokerage["note"] and brokerage["service_description"].startswith(
        "Domiciliary care")
    assert (by_kind["direct_payment"]["weekly_cost"], by_kind["direct_payment"]["annual_cost"]) == ("85.40", "4440.80")
    assert (by_kind["telecare"]["weekly_cost"], by_kind["telecare"]["annual_cost"]) == ("3.50", "182.00")
    # R-F5: telecare is costed per week on the rate card: no hours, no hourly rate
    telecare = by_kind["telecare"]
    assert (telecare["unit"], telecare["unit_rate"], telecare["units_per_week"], telecare["hourly_rate"]) == (
        "week", "3.50", "1", None)
    assert (brokerage["unit"], brokerage["unit_rate"]) == ("hour", "16.05")
    published = orders_of(orders, person_id)
    assert all(s.key == person_id and s.body["dataschema"] == "purchase_order.requested/1"
               and s.body["causationid"] == str(finish.id) for s in published)
    # R-F2: the brokerage order (only it) starts the 48-hour lack-of-provision timer
    [timer] = await orders.wait_for(lambda s: s.topic == topics.SCHEDULER_TIMERS and s.type == "timer.set"
                                    and s.data["key"] == f"lack-of-provision:{brokerage['po_request_id']}")
    due = datetime.fromisoformat(timer.data["due_at"])
    assert timer.data["owner"] == "workflow"
    assert timedelta(hours=47, minutes=59) < due - datetime.now(UTC) <= timedelta(hours=48)
    rows = await db.fetch("SELECT kind FROM workflow.po_requests WHERE person_id = $1", uuid.UUID(person_id))
    assert sorted(r["kind"] for r in rows) == ["brokerage", "direct_payment", "telecare"]


async def test_R_F2_the_brokerage_action_for_the_long_term_po_of_the_interim_service_is_an_interim_homecare_order(
        workflow, commands: Commands, orders: EventLog):
    worker, person_id = coordinator(), str(uuid.uuid4())
    plan = await support_plan(commands, worker, person_id, plan_values(DOM_CARE), [
        {"action": BROKERAGE, "reason": INTERIM_REASON, "note": "Pass straight to PST to raise the PO"}])
    (await commands.send("step.finish", worker, key=person_id, step_id=plan)).ok()
    by_kind = await _order_kinds(orders, person_id, 1)
    assert list(by_kind) == ["interim_homecare"]
    assert by_kind["interim_homecare"]["annual_cost"] == "7752.38"
    assert "Pass straight to PST" in by_kind["interim_homecare"]["note"]


async def test_R_F1_childrens_purchase_services_publishes_its_order_when_the_manager_authorises(
        workflow, commands: Commands, orders: EventLog):
    run = uuid.uuid4().hex[:8]
    worker = actor(f"rsw-{run}", "response_social_worker", "social_worker", teams=("children-response",))
    manager = actor(f"rm-{run}", "response_manager", "team_manager", teams=("children-response",))
    child = str(uuid.uuid4())
    step = await commands.given_step(worker, child, CHILDREN)
    values = {"service_description": "Sitting service", "provider": "Kids Co", "start_date": "2024-07-01",
              "weekly_hours": 4, "hourly_rate": 18.75, "weeks_per_year": 38}
    (await commands.send("step.save", worker, key=child, step_id=step, values=values)).ok()
    raised = (await commands.send("step.send_request", worker, key=child, step_id=step, name=CONFIRM,
                                  to={"kind": "worker", "id": manager["worker_id"]})).ok()
    (await commands.send("step.add_next_action", worker, key=child, step_id=step,
                         action="Services purchased (NFA)")).ok()
    (await commands.send("request.complete", manager, key=child,
                         request_id=raised.of("request.raised")["request_id"])).ok()
    (await commands.send("step.authorise", manager, key=child, step_id=step)).ok()
    by_kind = await _order_kinds(orders, child, 1)
    order = by_kind["purchase_services_children"]
    assert (order["weekly_cost"], order["annual_cost"], order["weeks_per_year"], order["provider"],
            order["requested_by"]) == ("75.00", "2850.00", "38", "Kids Co", manager["worker_id"])


async def test_R_F1_a_redelivered_finishing_command_publishes_no_second_order(
        workflow, commands: Commands, orders: EventLog, db):
    worker, person_id = coordinator(), str(uuid.uuid4())
    plan = await support_plan(commands, worker, person_id, plan_values(PA), [{"action": "Direct payments"}])
    finish = await commands.publish("step.finish", {"actor": worker, "step_id": plan}, key=person_id)
    (await commands.outcome(finish)).ok()
    await orders.wait_until(lambda: len(orders_of(orders, person_id)) == 1, 30)

    await commands.publish_raw(finish.to_bytes(), key=person_id)  # the same command id again
    await commands.publish_raw(finish.to_bytes(), key=person_id)
    retry = await commands.send("step.finish", worker, key=person_id, step_id=plan)  # a new id: refused
    assert retry.rejected and retry.rejection["code"] == "invalid_state"
    # the retry was handled after both redeliveries (same key, one partition, in order)
    assert len(orders_of(orders, person_id)) == 1
    assert await db.fetchval("SELECT count(*) FROM workflow.po_requests WHERE person_id = $1",
                             uuid.UUID(person_id)) == 1


async def _brokerage_and_interim(commands: Commands, orders: EventLog, person_id: str) -> tuple[dict, dict]:
    worker = coordinator()
    sourcing = await support_plan(commands, worker, person_id, plan_values(DOM_CARE),
                                  [{"action": BROKERAGE, "reason": SOURCE_PVI}])
    (await commands.send("step.finish", worker, key=person_id, step_id=sourcing)).ok()
    interim = await support_plan(commands, worker, person_id, plan_values(DOM_CARE),
                                 [{"action": BROKERAGE, "reason": INTERIM_REASON}])
    (await commands.send("step.finish", worker, key=person_id, step_id=interim)).ok()
    by_kind = await _order_kinds(orders, person_id, 2)
    return by_kind["brokerage"], by_kind["interim_homecare"]


async def test_R_F2_R_F6_a_redelivered_provider_confirmed_asks_one_pvi_order_at_its_rate_and_ends_the_others_once(
        workflow, commands: Commands, orders: EventLog, infra, db):
    person_id = str(uuid.uuid4())
    brokerage, interim = await _brokerage_and_interim(commands, orders, person_id)
    start = date.today() + timedelta(days=14)
    confirmed = brokerage_message("provider.confirmed", brokerage["po_request_id"], "Acme PVI", start, person_id,
                                  rate="17.25")
    again = brokerage_message("provider.confirmed", brokerage["po_request_id"], "Acme PVI", start, person_id,
                              rate="17.25")
    await from_brokerage(infra.bootstrap, person_id, confirmed, confirmed, again)  # redelivered, and re-sent

    # the marker: a later (invalid) brokerage event on the same key, dead-lettered once the others are handled
    marker = brokerage_message("provider.confirmed", brokerage["po_request_id"], "Acme PVI", None, person_id)
    await from_brokerage(infra.bootstrap, person_id, marker)
    await orders.wait_for(lambda s: s.topic == topics.dlq(topics.BROKERAGE_EVENTS)
                          and s.body.get("id") == str(marker.id), 30)

    pvi = [s.data for s in orders_of(orders, person_id) if s.data["kind"] == "long_term_homecare"
           and s.data["provider"] == "Acme PVI"]
    assert len(pvi) == 1
    # R-F6: at the provider's rate, 17.25 × 10.5 h = 181.125 → 181.13 a week, × 46 weeks
    assert {k: pvi[0][k] for k in ("start_date", "weekly_cost", "annual_cost", "hourly_rate", "weekly_hours")} == {
        "start_date": start.isoformat(), "weekly_cost": "181.13", "annual_cost": "8331.98", "hourly_rate": "17.25",
        "weekly_hours": "10.5"}
    # R-F6: the brokerage order and the interim one end the day before the provider starts, each once
    ends = orders_of(orders, person_id, "purchase_order.end_requested")
    day_before = (start - timedelta(days=1)).isoformat()
    assert sorted((s.data["po_request_id"], s.data["end_date"]) for s in ends
                  if s.data["po_request_id"] in (interim["po_request_id"], brokerage["po_request_id"])) == sorted([
        (interim["po_request_id"], day_before), (brokerage["po_request_id"], day_before)])
    assert all("Acme PVI" in s.data["reason"] for s in ends if s.data["po_request_id"] == interim["po_request_id"])
    cancels = orders.matching(lambda s: s.type == "timer.cancel"
                              and s.data["key"] == f"lack-of-provision:{brokerage['po_request_id']}")
    assert len(cancels) == 1
    assert await db.fetchval("SELECT count(*) FROM workflow.po_requests WHERE person_id = $1 AND kind ="
                             " 'long_term_homecare'", uuid.UUID(person_id)) == 1


async def test_R_F2_an_invalid_brokerage_event_is_dead_lettered_and_an_unknown_order_changes_nothing(
        workflow, commands: Commands, orders: EventLog, infra):
    person_id = str(uuid.uuid4())
    no_start = brokerage_message("provider.confirmed", str(uuid.uuid4()), "Acme PVI", None, person_id)
    unknown = brokerage_message("provider.confirmed", str(uuid.uuid4()), "Acme PVI", date.today(), person_id)
    await from_brokerage(infra.bootstrap, person_id, no_start, unknown)
    [dead] = await orders.wait_for(lambda s: s.topic == topics.dlq(topics.BROKERAGE_EVENTS)
                                   and s.body.get("id") == str(no_start.id), 30)
    assert "start_date" in dead.headers["dlq_error"]
    assert orders_of(orders, person_id) == []


async def test_R_F7_a_changed_plan_amends_the_live_order_by_the_difference_and_a_plan_without_it_ends_it(
        workflow, commands: Commands, orders: EventLog, db):
    worker, person_id = coordinator(), str(uuid.uuid4())
    first = await support_plan(commands, worker, person_id, plan_values(DOM_CARE, PA), [
        {"action": BROKERAGE, "reason": SOURCE_PVI}, {"action": "Direct payments"}])
    (await commands.send("step.finish", worker, key=person_id, step_id=first)).ok()
    by_kind = await _order_kinds(orders, person_id, 2)

    # a review: 12 hours of domiciliary care instead of 10.5; the PA hours unchanged
    more = {**DOM_CARE, "hours_per_week": 12}
    review = await support_plan(commands, worker, person_id, plan_values(more, PA), [
        {"action": BROKERAGE, "reason": SOURCE_PVI}, {"action": "Direct payments"}])
    finish = await commands.publish("step.finish", {"actor": worker, "step_id": review}, key=person_id)
    (await commands.outcome(finish)).ok()
    [amended] = await orders.wait_for(lambda s: s.key == person_id and s.type == "purchase_order.amended", 30)
    await commands.publish_raw(finish.to_bytes(), key=person_id)  # redelivered: amends nothing again

    # then a plan with the PA only: the domiciliary care package ends the day before its care starts
    last = await support_plan(commands, worker, person_id, plan_values(PA, start="2024-09-02"), [
        {"action": BROKERAGE, "reason": SOURCE_PVI}])
    (await commands.send("step.finish", worker, key=person_id, step_id=last)).ok()
    [ended] = await orders.wait_for(lambda s: s.key == person_id and s.type == "purchase_order.end_requested", 30)

    assert len(orders_of(orders, person_id)) == 2  # no second order for the whole package
    assert len(orders_of(orders, person_id, "purchase_order.amended")) == 1  # the DP order did not change
    brokerage = by_kind["brokerage"]
    # £16.05 × 12 h = £192.60 a week (+£24.07 on £168.53), × 46 weeks = £8,859.60 (+£1,107.22)
    assert amended.data["po_request_id"] == brokerage["po_request_id"] and amended.data["step_id"] == review
    changes = amended.data["changes"]
    assert changes["weekly_hours"] == {"from": "10.5", "to": "12"}
    assert changes["weekly_cost"] == {"from": "168.53", "to": "192.60", "difference": "24.07"}
    assert changes["annual_cost"] == {"from": "7752.38", "to": "8859.60", "difference": "1107.22"}
    assert (ended.data["po_request_id"], ended.data["end_date"]) == (brokerage["po_request_id"], "2024-09-01")
    current = json.loads(await db.fetchval("SELECT current FROM workflow.po_requests WHERE po_request_id = $1",
                                           uuid.UUID(brokerage["po_request_id"])))
    assert (current["weekly_cost"], current["annual_cost"]) == ("192.60", "8859.60")


async def test_R_F7_closing_the_case_ends_the_persons_live_orders_that_day(
        workflow, commands: Commands, orders: EventLog):
    run = uuid.uuid4().hex[:8]
    worker, person_id = coordinator(), str(uuid.uuid4())
    processing = actor(f"pp-{run}", "social_worker", teams=("adult-purchasing-processing",))
    manager = actor(f"tm-{run}", "team_manager", teams=("short-term-service",))
    plan = await support_plan(commands, worker, person_id, plan_values(TELECARE), [{"action": "Telecare"}])
    finished = (await commands.send("step.finish", worker, key=person_id, step_id=plan)).ok()
    [telecare] = (await _order_kinds(orders, person_id, 1)).values()
    # the Adult purchasing processing team purchases it (R-K1: no closure while it is open)
    purchase = finished.of("step.created")["step_id"]
    (await commands.send("step.start", processing, key=person_id, step_id=purchase)).ok()
    (await commands.send("step.save", processing, key=person_id, step_id=purchase, values={
        "telecare_equipment": "Pendant alarm", "telecare_start_date": "2024-06-10"})).ok()
    (await commands.send("step.add_next_action", processing, key=person_id, step_id=purchase,
                         action="Telecare purchased (NFA)")).ok()
    (await commands.send("step.finish", processing, key=person_id, step_id=purchase)).ok()

    close = await commands.given_step(worker, person_id, "Close Case")
    (await commands.send("step.save", worker, key=person_id, step_id=close, values={
        "closure_reason": "No further involvement required", "closing_summary": "Needs met",
        "services_ended": True, "reviews_sent": True, "worker_relationship_end_date": date.today().isoformat()})).ok()
    raised = (await commands.send("step.send_request", worker, key=person_id, step_id=close,
                                  name="REQUIRED Please review information and confirm outcome",
                                  to={"kind": "worker", "id": manager["worker_id"]})).ok()
    (await commands.send("step.add_next_action", worker, key=person_id, step_id=close,
                         action="Case closed (NFA)")).ok()
    (await commands.send("request.complete", manager, key=person_id,
                         request_id=raised.of("request.raised")["request_id"])).ok()
    closed = (await commands.send("step.authorise", manager, key=person_id, step_id=close)).ok()
    assert closed.of("case.closed")["person_id"] == person_id
    [ended] = await orders.wait_for(lambda s: s.key == person_id and s.type == "purchase_order.end_requested", 30)
    assert (ended.data["po_request_id"], ended.data["end_date"], ended.data["reason"]) == (
        telecare["po_request_id"], london_date(datetime.now(UTC)).isoformat(), "The case was closed")


async def test_R_F7_the_long_term_order_takes_the_brokerage_order_as_amended_by_a_review(
        workflow, commands: Commands, orders: EventLog, infra):
    worker, person_id = coordinator(), str(uuid.uuid4())
    first = await support_plan(commands, worker, person_id, plan_values(DOM_CARE),
                               [{"action": BROKERAGE, "reason": SOURCE_PVI}])
    (await commands.send("step.finish", worker, key=person_id, step_id=first)).ok()
    [brokerage] = (await _order_kinds(orders, person_id, 1)).values()
    review = await support_plan(commands, worker, person_id, plan_values({**DOM_CARE, "hours_per_week": 12}),
                                [{"action": BROKERAGE, "reason": SOURCE_PVI}], step_type="Review Support Plan")
    (await commands.send("step.finish", worker, key=person_id, step_id=review)).ok()
    await orders.wait_for(lambda s: s.key == person_id and s.type == "purchase_order.amended", 30)
    start = date.today() + timedelta(days=7)
    await from_brokerage(infra.bootstrap, person_id, brokerage_message(
        "provider.confirmed", brokerage["po_request_id"], "Acme PVI", start, person_id))
    [pvi] = await orders.wait_for(lambda s: s.key == person_id and s.data.get("kind") == "long_term_homecare", 30)
    assert (pvi.data["weekly_hours"], pvi.data["weekly_cost"], pvi.data["annual_cost"]) == ("12", "192.60", "8859.60")


async def _authorised_plan(commands: Commands, worker: dict, manager: dict, person_id: str, step_type: str,
                           values: dict, action: dict) -> None:
    """A plan only the TM or HOS can sign (seed 001 §3.3): saved, sent for authorisation, authorised."""
    step = await commands.given_step(worker, person_id, step_type)
    (await commands.send("step.save", worker, key=person_id, step_id=step, values=values)).ok()
    raised = (await commands.send("step.send_request", worker, key=person_id, step_id=step,
                                  name="REQUIRED Please Authorise Support Plan",
                                  to={"kind": "worker", "id": manager["worker_id"]})).ok()
    (await commands.send("step.add_next_action", worker, key=person_id, step_id=step, **action)).ok()
    (await commands.send("request.complete", manager, key=person_id,
                         request_id=raised.of("request.raised")["request_id"])).ok()
    (await commands.send("step.authorise", manager, key=person_id, step_id=step)).ok()


async def test_R_F6_direct_payments_from_an_interim_support_plan_and_a_carers_one_off_payment_carry_their_amounts(
        workflow, commands: Commands, orders: EventLog):
    run = uuid.uuid4().hex[:8]
    worker = actor(f"sw-{run}", "social_worker", teams=("adult-review",))
    manager = actor(f"tm-{run}", "team_manager", teams=("adult-review",))
    to_dp = {"kind": "team", "id": "adult-direct-payments"}
    person, carer = str(uuid.uuid4()), str(uuid.uuid4())
    await _authorised_plan(commands, worker, manager, person, "Interim Support Plan", {
        "planned_services": [DOM_CARE, {**PA, "hours_per_week": "7.5"}], "care_start_date": "2024-06-10",
        "isp_reason": "Two more PA hours a week", "annual_review_date": "2025-06-03"},
        {"action": BROKERAGE, "assignee": to_dp})
    await _authorised_plan(commands, worker, manager, carer, "Carer Support Plan", {
        "one_off_dp_amount": "350.00", "one_off_dp_purpose": "A short break from caring",
        "care_start_date": "2024-06-10", "annual_review_date": "2025-06-03"},
        {"action": "Purchase services – Carer Services", "assignee": to_dp})
    [dp] = (await _order_kinds(orders, person, 1)).values()
    [one_off] = (await _order_kinds(orders, carer, 1)).values()
    assert (dp["kind"], dp["hourly_rate"], dp["weekly_hours"], dp["weekly_cost"], dp["annual_cost"]) == (
        "direct_payment", "12.20", "7.5", "91.50", "4758.00")  # the PA line only, not the brokerage care
    assert (one_off["kind"], one_off["one_off_amount"]) == ("direct_payment", "350.00")
    assert "A short break from caring" in one_off["service_description"]
