"""A package through its life, read back from purchasing.orders into the reference ledger (R-F7, R-K10).

Issue #17 §4's leftovers, each driven by the guides' roles through the workflow service on the real broker and
database: a cancelled purchasing step ends the order it was raised with; an Interim Support Plan opens with the whole
package, so changing one line amends the order by that line's difference; a plan with no line for a package
asks for no empty order; an order raised again for the whole package before amending was built ends when the
package is next changed. After each, tools/finance_ledger.py holds exactly the person's package.
"""

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared import topics
from shared.envelope import new_message
from shared.testing import EventLog, publish, service_auth
from tests.purchasing_harness import (
    BROKERAGE,
    DOM_CARE,
    PA,
    SOURCE_PVI,
    coordinator,
    orders_of,
    plan_values,
    support_plan,
)
from tests.workflow_harness import Commands, actor
from tools import finance_ledger

DAY_CENTRE = {"service": "Day centre", "hourly_rate": "35.00", "hours_per_week": "2"}


@pytest.fixture
async def orders(infra) -> AsyncIterator[EventLog]:
    async with EventLog(infra.bootstrap, [topics.PURCHASING_ORDERS]) as log:
        yield log


async def ledger_of(orders: EventLog, person_id: str, tmp_path: Path, messages: int) -> dict[str, Any]:
    """The person's live orders in the reference ledger once `messages` orders, amendments and ends came."""
    await orders.wait_until(lambda: len(orders.matching(lambda s: s.key == person_id)) >= messages, 30)
    ledger = finance_ledger.open_ledger(tmp_path / f"{person_id}.sqlite")
    finance_ledger.apply(ledger, [s.value for s in orders.matching(lambda s: s.key == person_id)])
    held = finance_ledger.people(ledger).get(person_id, {"orders": [], "weekly": Decimal(0), "annual": Decimal(0)})
    ledger.close()
    return held


async def test_R_F7_a_cancelled_purchasing_step_ends_the_order_it_was_raised_with(
        workflow, commands: Commands, orders: EventLog, tmp_path: Path):
    """Seed 002: the STS case co-ordinator's support plan asks the Direct Payments team for the PA support and
    brokerage for the care. The Direct Payments team's manager cancels their step (the person will not take a
    direct payment): its order ends that day; the brokerage order goes on."""
    worker, person_id = coordinator(), str(uuid.uuid4())
    dp_manager = actor(f"tm-dp-{uuid.uuid4().hex[:8]}", "team_manager", teams=("adult-direct-payments",))
    plan = await support_plan(commands, worker, person_id, plan_values(DOM_CARE, PA), [
        {"action": BROKERAGE, "reason": SOURCE_PVI}, {"action": "Direct payments"}])
    finished = (await commands.send("step.finish", worker, key=person_id, step_id=plan)).ok()
    [dp_step] = [s["step_id"] for s in finished.all("step.created") if s["step_type"] == "Direct payments"]
    by_kind = {o["kind"]: o for o in (await ledger_of(orders, person_id, tmp_path, 2))["orders"]}
    (await commands.send("step.cancel", dp_manager, key=person_id, step_id=dp_step,
                         reason="Declined a direct payment")).ok()
    held = await ledger_of(orders, person_id, tmp_path, 3)
    [ended] = orders_of(orders, person_id, "purchase_order.end_requested")
    assert ended.data["po_request_id"] == by_kind["direct_payment"]["po_request_id"]
    assert ended.data["reason"] == f"The Direct payments step {dp_step} this order was raised with was cancelled"
    # £16.05 × 10.5 h = £168.53 a week, × 46 weeks = £7,752.38: the care alone
    assert [(o["kind"], o["weekly_cost"], o["annual_cost"]) for o in held["orders"]] == [
        ("brokerage", "168.53", "7752.38")]


async def test_R_F7_a_cancelled_purchasing_step_that_amended_the_package_amends_it_back(
        workflow, commands: Commands, orders: EventLog, tmp_path: Path):
    """A review adds 1.5 hours of care and asks brokerage again: the order is amended. The brokerage team's
    manager cancels the review's purchasing step (the care will not change): the order is amended back by the
    same difference, to the penny, and the ledger holds the first plan's package."""
    worker, person_id = coordinator(), str(uuid.uuid4())
    brokerage_tm = actor(f"tm-br-{uuid.uuid4().hex[:8]}", "team_manager", teams=("adult-brokerage",))
    first = await support_plan(commands, worker, person_id, plan_values(DOM_CARE),
                               [{"action": BROKERAGE, "reason": SOURCE_PVI}])
    (await commands.send("step.finish", worker, key=person_id, step_id=first)).ok()
    review = await support_plan(commands, worker, person_id, plan_values({**DOM_CARE, "hours_per_week": 12}),
                                [{"action": BROKERAGE, "reason": SOURCE_PVI}], step_type="Review Support Plan")
    finished = (await commands.send("step.finish", worker, key=person_id, step_id=review)).ok()
    [purchasing_step] = [s["step_id"] for s in finished.all("step.created") if s["step_type"] == BROKERAGE]
    await ledger_of(orders, person_id, tmp_path, 2)
    (await commands.send("step.cancel", brokerage_tm, key=person_id, step_id=purchasing_step,
                         reason="The care is not changing after all")).ok()
    held = await ledger_of(orders, person_id, tmp_path, 3)
    amended, undone = orders_of(orders, person_id, "purchase_order.amended")
    # £16.05 × 12 h = £192.60 a week (+£24.07), × 46 weeks = £8,859.60 (+£1,107.22); and back
    assert amended.data["changes"]["weekly_cost"] == {"from": "168.53", "to": "192.60", "difference": "24.07"}
    assert undone.data["changes"]["weekly_cost"] == {"from": "192.60", "to": "168.53", "difference": "-24.07"}
    assert undone.data["changes"]["annual_cost"] == {"from": "8859.60", "to": "7752.38", "difference": "-1107.22"}
    assert (undone.data["po_request_id"], undone.data["step_id"]) == (amended.data["po_request_id"], purchasing_step)
    assert [(o["kind"], o["weekly_cost"], o["annual_cost"]) for o in held["orders"]] == [
        ("brokerage", "168.53", "7752.38")]
    assert not orders_of(orders, person_id, "purchase_order.end_requested")


async def test_R_F7_a_plan_with_no_line_for_a_package_asks_for_no_empty_order(
        workflow, commands: Commands, orders: EventLog, tmp_path: Path):
    """A plan asking brokerage for care it has no line for, and the person with no brokerage order to end: only
    the direct payment it does cost is ordered (both are published by one command, brokerage's first)."""
    worker, person_id = coordinator(), str(uuid.uuid4())
    plan = await support_plan(commands, worker, person_id, plan_values(PA), [
        {"action": BROKERAGE, "reason": SOURCE_PVI}, {"action": "Direct payments"}])
    (await commands.send("step.finish", worker, key=person_id, step_id=plan)).ok()
    held = await ledger_of(orders, person_id, tmp_path, 1)
    assert [o.data["kind"] for o in orders_of(orders, person_id)] == ["direct_payment"]
    assert [(o["kind"], o["weekly_cost"], o["annual_cost"]) for o in held["orders"]] == [
        ("direct_payment", "85.40", "4440.80")]  # £12.20 × 7 h; × 52


async def test_R_F7_an_order_raised_again_for_the_whole_package_ends_when_the_package_next_changes(
        workflow, commands: Commands, orders: EventLog, db, infra, tmp_path: Path):
    """Before amending was built, a review raised a second order for the whole package: the person has two live
    brokerage orders. The next review amends one and ends the other, so the ledger pays the package once."""
    worker, person_id = coordinator(), str(uuid.uuid4())
    first = await support_plan(commands, worker, person_id, plan_values(DOM_CARE),
                               [{"action": BROKERAGE, "reason": SOURCE_PVI}])
    (await commands.send("step.finish", worker, key=person_id, step_id=first)).ok()
    [placed] = [o.data for o in await orders.wait_for(lambda s: s.key == person_id, 30)]
    duplicate = await _old_duplicate(db, infra, placed)
    assert len((await ledger_of(orders, person_id, tmp_path, 2))["orders"]) == 2
    review = await support_plan(commands, worker, person_id, plan_values({**DOM_CARE, "hours_per_week": 12}),
                                [{"action": BROKERAGE, "reason": SOURCE_PVI}], step_type="Review Support Plan")
    (await commands.send("step.finish", worker, key=person_id, step_id=review)).ok()
    held = await ledger_of(orders, person_id, tmp_path, 4)
    [ended] = orders_of(orders, person_id, "purchase_order.end_requested")
    [amended] = orders_of(orders, person_id, "purchase_order.amended")
    assert (ended.data["po_request_id"], amended.data["po_request_id"]) == (duplicate, placed["po_request_id"])
    assert ended.data["reason"] == f"A duplicate of purchase order {placed['po_request_id']}, which carries the package"
    # £16.05 × 12 h = £192.60 a week, × 46 weeks = £8,859.60: once
    assert [(o["po_request_id"], o["weekly_cost"], o["annual_cost"]) for o in held["orders"]] == [
        (placed["po_request_id"], "192.60", "8859.60")]


async def _old_duplicate(db: Any, infra: Any, placed: dict[str, Any]) -> str:
    """The whole-package order an earlier version raised again a day before (its row, and its message)."""
    duplicate = {**placed, "po_request_id": str(uuid.uuid4())}
    await db.execute(
        "INSERT INTO workflow.po_requests (po_request_id, source_key, person_id, step_id, kind, requested,"
        " requested_at) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)", uuid.UUID(duplicate["po_request_id"]),
        f"legacy:{duplicate['po_request_id']}", uuid.UUID(placed["person_id"]), uuid.UUID(placed["step_id"]),
        placed["kind"], json.dumps(duplicate), datetime.now(UTC) - timedelta(days=1))
    envelope = new_message("purchase_order.requested", "tessera/workflow", duplicate, subject=placed["person_id"])
    await publish(infra.bootstrap, topics.PURCHASING_ORDERS, [(placed["person_id"], envelope.to_bytes())])
    return duplicate["po_request_id"]


async def test_R_F7_an_interim_support_plan_changes_one_line_of_the_whole_package(
        workflow, commands: Commands, orders: EventLog, tmp_path: Path):
    """Seed 001 §3.3: the Interim Support Plan is "a small increase/reduction of the care package", signed by the
    TM. It opens with the signed-off plan's lines; the social worker adds an hour of domiciliary care and the
    brokerage order is amended by that hour — the day centre stays on it."""
    run = uuid.uuid4().hex[:8]
    worker = actor(f"sw-{run}", "social_worker", teams=("adult-review",))
    manager = actor(f"tm-{run}", "team_manager", teams=("adult-review",))
    person_id = str(uuid.uuid4())
    plan = await commands.given_step(worker, person_id, "Care and Support Plan")
    await _signed_off(commands, worker, manager, person_id, plan, {
        "planned_services": [DOM_CARE, DAY_CENTRE], "care_start_date": "2024-06-10",
        "annual_review_date": "2025-06-03", "plan_outcomes": "Stays safely at home"})
    [placed] = [o.data for o in (await orders.wait_for(lambda s: s.key == person_id, 30))]
    isp = await commands.given_step(worker, person_id, "Interim Support Plan")
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        opened = (await http.get(f"/steps/{isp}")).json()["values"]
    rows = [{k: r[k] for k in ("service", "hourly_rate", "hours_per_week", "respite_weeks") if k in r}
            for r in opened["planned_services"]]
    assert [r["service"] for r in rows] == ["Domiciliary care", "Day centre"]
    rows[0]["hours_per_week"] = "11.5"
    await _signed_off(commands, worker, manager, person_id, isp, {
        "planned_services": rows, "isp_reason": "One more hour of personal care in the mornings"})
    held = await ledger_of(orders, person_id, tmp_path, 2)
    [amended] = orders_of(orders, person_id, "purchase_order.amended")
    # 16.05 × 11.5 h = 184.575 → £184.58 (+£16.05 a week); × 46 weeks = £8,490.68 (+£738.30)
    assert amended.data["changes"]["weekly_cost"] == {"from": "238.53", "to": "254.58", "difference": "16.05"}
    assert amended.data["changes"]["annual_cost"] == {"from": "11392.38", "to": "12130.68", "difference": "738.30"}
    assert [(o["po_request_id"], o["weekly_cost"], o["annual_cost"]) for o in held["orders"]] == [
        (placed["po_request_id"], "254.58", "12130.68")]


async def test_R_F7_R_F6_a_carers_regular_direct_payment_is_a_new_order_beside_their_one_off_payment(
        workflow, commands: Commands, orders: EventLog, tmp_path: Path):
    """Seed 001 §3.3 (Carer Support plan): a one-off direct payment is an order of its own. When the carer's
    next plan gives them a regular direct payment for a PA, that is a new order — the one-off is not the
    package it amends."""
    run = uuid.uuid4().hex[:8]
    worker = actor(f"sw-{run}", "social_worker", teams=("adult-review",))
    manager = actor(f"tm-{run}", "team_manager", teams=("adult-review",))
    carer, to_dp = str(uuid.uuid4()), {"action": "Purchase services – Carer Services",
                                       "assignee": {"kind": "team", "id": "adult-direct-payments"}}
    for values in ({"one_off_dp_amount": "350.00", "one_off_dp_purpose": "A short break from caring"},
                   {"planned_services": [{**PA, "hours_per_week": 3}]}):
        plan = await commands.given_step(worker, carer, "Carer Support Plan")
        await _signed_off(commands, worker, manager, carer, plan, {
            **values, "care_start_date": "2024-06-10", "annual_review_date": "2025-06-03"}, to_dp)
    held = await ledger_of(orders, carer, tmp_path, 2)
    assert [(o.data["one_off_amount"], o.data["weekly_cost"]) for o in orders_of(orders, carer)] == [
        ("350.00", None), (None, "36.60")]  # £12.20 × 3 h
    assert orders_of(orders, carer, "purchase_order.amended") == []
    assert (len(held["orders"]), held["weekly"]) == (2, Decimal("36.60"))


async def _signed_off(commands: Commands, worker: dict, manager: dict, person_id: str, step: str,
                      values: dict[str, Any], action: dict[str, Any] | None = None) -> None:
    """A plan only the TM or HOS can sign (seed 001 §3.3): the worker fills it in, asks brokerage (or `action`)
    for the care and sends it for authorisation; the team manager authorises it."""
    (await commands.send("step.save", worker, key=person_id, step_id=step, values=values)).ok()
    (await commands.send("step.add_next_action", worker, key=person_id, step_id=step,
                         **(action or {"action": BROKERAGE}))).ok()
    raised = (await commands.send("step.send_request", worker, key=person_id, step_id=step,
                                  name="REQUIRED Please Authorise Support Plan",
                                  to={"kind": "worker", "id": manager["worker_id"]})).ok()
    (await commands.send("request.complete", manager, key=person_id,
                         request_id=raised.of("request.raised")["request_id"])).ok()
    (await commands.send("step.authorise", manager, key=person_id, step_id=step)).ok()
