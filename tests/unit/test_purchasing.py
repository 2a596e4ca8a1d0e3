"""Purchase orders, pure (R-F1, R-F2, R-F3, R-K10): cost arithmetic and which actions ask for an order."""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from services.workflow import purchasing
from services.workflow.pack import PackRegistry
from shared.events.purchasing import PurchaseOrderRequested
from tests.workflow_harness import Engine, actor, codes

CSP = "Create Support Plan"
BROKERAGE = "Brokerage purchasing request"
INTERIM_REASON = "Long-term PO for the interim service (pass straight to the Purchase Support Team)"
COORDINATOR = actor("cc-1", "social_worker", teams=("short-term-service",))


# --- R-K10 arithmetic, pence exact ----------------------------------------------------------------


def test_R_K10_domiciliary_care_at_16_05_for_10_5_hours_rounds_half_up_to_the_penny() -> None:
    # 16.05 × 10.5 = 168.525 → 168.53 (half up, not banker's 168.52)
    assert purchasing.weekly_cost(Decimal("16.05"), Decimal("10.5")) == Decimal("168.53")


def test_R_K10_pa_support_at_12_20_for_7_hours() -> None:
    assert purchasing.weekly_cost(Decimal("12.20"), Decimal("7")) == Decimal("85.40")


def test_R_K10_six_respite_weeks_leave_46_weeks() -> None:
    assert purchasing.weeks_per_year(Decimal(6)) == Decimal(46)
    assert purchasing.weeks_per_year(None) == Decimal(52)


def test_R_K10_annual_cost_is_the_weekly_cost_shown_times_the_weeks() -> None:
    costs = purchasing.line_costs({"hourly_rate": 16.05, "hours_per_week": 10.5, "respite_weeks": 6})
    assert (costs.weekly_cost, costs.weeks_per_year, costs.annual_cost) == (
        Decimal("168.53"), Decimal(46), Decimal("7752.38"))  # 168.53 × 46, not 168.525 × 46 = 7752.15


def test_R_K10_odd_pennies_never_drift_through_floats() -> None:
    # 0.1 + 0.2 style inputs: £12.21 × 3.3 h = 40.293 → 40.29; £9.995 × 1 h = 9.995 → 10.00 (half up)
    assert purchasing.line_costs({"hourly_rate": 12.21, "hours_per_week": 3.3}).weekly_cost == Decimal("40.29")
    assert purchasing.line_costs({"hourly_rate": "9.995", "hours_per_week": "1"}).weekly_cost == Decimal("10.00")
    assert purchasing.line_costs({"hourly_rate": "0.01", "hours_per_week": "0.5"}).weekly_cost == Decimal("0.01")
    assert purchasing.line_costs({"hourly_rate": "0.01", "hours_per_week": "0.49"}).weekly_cost == Decimal("0.00")


def test_R_K10_a_recorded_weeks_per_year_is_used_when_there_is_no_respite_field() -> None:
    costs = purchasing.line_costs({"hourly_rate": "20", "weekly_hours": "3", "weeks_per_year": "39"})
    assert (costs.weekly_cost, costs.annual_cost) == (Decimal("60.00"), Decimal("2340.00"))


def test_R_K10_unknown_inputs_leave_the_costs_unknown() -> None:
    costs = purchasing.line_costs({"hourly_rate": "abc", "hours_per_week": True})
    assert (costs.hourly_rate, costs.weekly_hours, costs.weekly_cost, costs.annual_cost) == (None, None, None, None)


def test_R_K10_several_lines_add_up_and_a_rate_is_given_only_when_common() -> None:
    lines = [purchasing.line_costs({"hourly_rate": "16.05", "hours_per_week": "10.5", "respite_weeks": "6"}),
             purchasing.line_costs({"hourly_rate": "12.20", "hours_per_week": "7", "respite_weeks": "6"})]
    total = purchasing.total_costs(lines)
    assert (total.weekly_hours, total.hourly_rate, total.weeks_per_year) == (Decimal("17.5"), None, Decimal(46))
    assert (total.weekly_cost, total.annual_cost) == (Decimal("253.93"), Decimal("7752.38") + Decimal("3928.40"))


def test_decimal_strings_are_plain_and_money_is_in_pence() -> None:
    assert purchasing.decimal_string(Decimal("46")) == "46"
    assert purchasing.decimal_string(Decimal("10.50")) == "10.5"
    assert purchasing.decimal_string(Decimal("1E+2")) == "100"
    assert purchasing.money_string(Decimal("7752.38")) == "7752.38"
    assert purchasing.rate_string(Decimal("12.2")) == "12.20"
    assert purchasing.rate_string(Decimal("9.995")) == "9.995"


# --- R-F1: which next actions ask for an order, costed from the step ------------------------------------

PLAN_ROWS = [
    {"service": "Domiciliary care", "provider": "Acme Care", "hourly_rate": 16.05, "hours_per_week": 10.5,
     "respite_weeks": 6},
    {"service": "Personal assistant (PA) support", "hourly_rate": 12.20, "hours_per_week": 7},
    {"service": "Telecare", "hourly_rate": "3.50", "hours_per_week": 1},
]
PLAN_VALUES = {"planned_services": PLAN_ROWS, "annual_review_date": "2025-06-03", "care_start_date": "2024-06-10",
               "may_co_fund": False}


def _plan(engine: Engine, values: dict[str, Any] | None = None) -> str:
    decision = engine.given_step(CSP, COORDINATOR)
    step_id = decision.created[0].step_id
    engine.send("step.save", COORDINATOR, step_id=step_id, values=values if values is not None else PLAN_VALUES)
    return step_id


def _orders(engine: Engine, step_id: str, packs: PackRegistry) -> list[PurchaseOrderRequested]:
    step = engine.steps[step_id]
    sent = [purchasing.SentAction(a.next_action_id, a.action, a.reason, a.note, a.assignee_kind, a.assignee_id,
                                  sent=a.created_step_id is not None) for a in step.next_actions]
    return [o.event for o in purchasing.orders_of_step(packs.step(step.step_type), step.step_id, step.person_id,
                                                       step.state, step.values, sent, requested_by="cc-1")]


def test_R_F1_R_K10_a_finished_support_plan_asks_brokerage_dp_and_telecare_orders_each_costed(
        shipped: PackRegistry) -> None:
    engine = Engine(packs=shipped)
    plan = _plan(engine)
    engine.send("step.add_next_action", COORDINATOR, step_id=plan, action=BROKERAGE,
                reason="Source PVI care and support", note="Morning calls")
    engine.send("step.add_next_action", COORDINATOR, step_id=plan, action="Direct payments")
    engine.send("step.add_next_action", COORDINATOR, step_id=plan, action="Telecare")
    assert _orders(engine, plan, shipped) == []  # nothing is sent before the step finishes
    engine.send("step.finish", COORDINATOR, step_id=plan)
    orders = {o.kind: o for o in _orders(engine, plan, shipped)}
    assert set(orders) == {"brokerage", "direct_payment", "telecare"}
    brokerage = orders["brokerage"]
    assert (brokerage.weekly_hours, brokerage.hourly_rate, brokerage.weeks_per_year, brokerage.weekly_cost,
            brokerage.annual_cost) == ("10.5", "16.05", "46", "168.53", "7752.38")
    assert (brokerage.provider, brokerage.start_date, brokerage.requested_by) == (
        "Acme Care", date(2024, 6, 10), "cc-1")
    assert "Morning calls" in brokerage.note and "Source PVI" in brokerage.note
    dp = orders["direct_payment"]
    assert (dp.hourly_rate, dp.weekly_hours, dp.weeks_per_year, dp.weekly_cost, dp.annual_cost) == (
        "12.20", "7", "52", "85.40", "4440.80")
    assert orders["telecare"].weekly_cost == "3.50"
    # asked again (a redelivery): the same ids, so the handler's unique key keeps one of each
    assert {o.po_request_id for o in _orders(engine, plan, shipped)} == {o.po_request_id for o in orders.values()}


def test_R_F2_the_brokerage_action_with_the_long_term_po_reason_asks_for_the_interim_homecare_order(
        shipped: PackRegistry) -> None:
    engine = Engine(packs=shipped)
    plan = _plan(engine)
    engine.send("step.add_next_action", COORDINATOR, step_id=plan, action=BROKERAGE, reason=INTERIM_REASON,
                note="Pass straight to PST to raise the PO")
    engine.send("step.finish", COORDINATOR, step_id=plan)
    [order] = _orders(engine, plan, shipped)
    assert order.kind == "interim_homecare" and "Pass straight to PST" in order.note


def test_R_F1_missing_costs_are_null_and_the_note_says_so(shipped: PackRegistry) -> None:
    engine = Engine(packs=shipped)
    plan = _plan(engine, {**PLAN_VALUES, "care_start_date": None,
                          "planned_services": [{"service": "Domiciliary care", "hourly_rate": 16.05}]})
    engine.send("step.add_next_action", COORDINATOR, step_id=plan, action=BROKERAGE,
                reason="Source PVI care and support")
    engine.send("step.add_next_action", COORDINATOR, step_id=plan, action="Telecare")
    engine.refused("step.finish", COORDINATOR, step_id=plan)  # hours are mandatory in the plan
    step = engine.steps[plan]
    sent = [purchasing.SentAction(a.next_action_id, a.action, a.reason, a.note, a.assignee_kind, a.assignee_id,
                                  sent=False) for a in step.next_actions]
    defn = shipped.step(CSP)
    orders = {o.event.kind: o.event for o in purchasing.orders_of_step(
        defn, plan, step.person_id, "finished", step.values, sent, requested_by="cc-1")}
    brokerage = orders["brokerage"]
    assert (brokerage.hourly_rate, brokerage.weekly_hours, brokerage.weekly_cost, brokerage.start_date) == (
        "16.05", None, None, None)
    assert "weekly_hours" in brokerage.note and "start_date" in brokerage.note
    telecare = orders["telecare"]
    assert telecare.weekly_cost is None and "No support plan service line for Telecare" in telecare.note


def test_R_F1_childrens_purchase_services_asks_on_finishing_with_services_purchased(shipped: PackRegistry) -> None:
    defn = shipped.step("Purchase Services: Children's")
    values = {"service_description": "Sitting service", "provider": "Kids Co", "start_date": "2024-07-01",
              "weekly_hours": "4", "hourly_rate": "18.75", "weeks_per_year": "38"}
    nfa = purchasing.SentAction("00000000-0000-4000-8000-0000000000aa", "Services purchased (NFA)", None, None,
                                "none", None, sent=False)
    assert purchasing.orders_of_step(defn, "s", "p", "incomplete", values, [nfa], requested_by="m") == []
    [order] = purchasing.orders_of_step(defn, "s", "p", "finished", values, [nfa], requested_by="m")
    assert (order.event.kind, order.event.weekly_cost, order.event.annual_cost, order.event.provider) == (
        "purchase_services_children", "75.00", "2850.00", "Kids Co")
    not_required = purchasing.SentAction("00000000-0000-4000-8000-0000000000ab", "Purchase not required (NFA)",
                                         None, None, "none", None, sent=False)
    assert purchasing.orders_of_step(defn, "s", "p", "finished", values, [not_required], requested_by="m") == []


def test_R_F1_carer_services_are_a_direct_payment_when_passed_to_direct_payments(shipped: PackRegistry) -> None:
    action = shipped.step("Carer Support Plan").next_action("Purchase services – Carer Services")
    to = {team: purchasing.SentAction("x", action.action, None, None, "team", team, sent=True)
          for team in ("adult-brokerage", "adult-direct-payments")}
    assert purchasing.kind_of(action, to["adult-brokerage"]) == "brokerage"
    assert purchasing.kind_of(action, to["adult-direct-payments"]) == "direct_payment"


def test_R_F1_every_purchasing_action_of_seeds_001_and_002_carries_an_order_kind(shipped: PackRegistry) -> None:
    for step_type in ("Care and Support Plan", "Interim Support Plan", "Planned Short Review", CSP,
                      "Review Support Plan"):
        for name in (BROKERAGE, "Telecare"):
            assert shipped.step(step_type).next_action(name).purchase_order is not None, (step_type, name)
    assert shipped.step("Care and Support Plan").next_action("Direct payments").purchase_order.kind == (  # type: ignore[union-attr]
        "direct_payment")


# --- R-F2: the PVI order and the end of the interim one ----------------------------------------------------


def test_R_F2_the_pvi_order_copies_the_brokerage_costs_with_the_confirmed_provider_and_start() -> None:
    brokerage = PurchaseOrderRequested(
        po_request_id="11111111-1111-4111-8111-111111111111", person_id="p", step_id="s", kind="brokerage",
        service_description="Domiciliary care", start_date=date(2024, 6, 10), weekly_hours="10.5",
        hourly_rate="16.05", weeks_per_year="46", weekly_cost="168.53", annual_cost="7752.38",
        requested_by="cc-1", note="")
    pvi = purchasing.pvi_order(brokerage, provider="Acme PVI", start_date=date(2024, 8, 1), requested_by="b")
    assert (pvi.event.kind, pvi.event.provider, pvi.event.start_date, pvi.event.annual_cost) == (
        "long_term_homecare", "Acme PVI", date(2024, 8, 1), "7752.38")
    assert pvi.event.po_request_id != brokerage.po_request_id
    assert pvi == purchasing.pvi_order(brokerage, provider="Acme PVI", start_date=date(2024, 8, 1), requested_by="b")
    end = purchasing.interim_end("22222222-2222-4222-8222-222222222222", provider="Acme PVI",
                                 start_date=date(2024, 8, 1))
    assert (end.end_date, end.po_request_id) == (date(2024, 7, 31), "22222222-2222-4222-8222-222222222222")


def test_R_F2_lack_of_provision_falls_due_48_hours_after_the_brokerage_order() -> None:
    at = datetime(2024, 6, 3, 10, tzinfo=UTC)
    assert purchasing.lack_of_provision_due(at) == datetime(2024, 6, 5, 10, tzinfo=UTC)
    assert purchasing.watches_provision("brokerage") and not purchasing.watches_provision("telecare")


# --- R-F3: FABO with a new support plan where the person may co-fund ------------------------------------------


def test_R_F3_the_fabo_request_is_required_only_where_the_person_may_co_fund(shipped: PackRegistry) -> None:
    engine = Engine(packs=shipped)
    plan = _plan(engine, {**PLAN_VALUES, "may_co_fund": True})
    engine.send("step.add_next_action", COORDINATOR, step_id=plan, action="Telecare")
    reasons = engine.refused("step.finish", COORDINATOR, step_id=plan)
    assert codes(reasons) == ["required_request"] and "FABO request" in reasons[0].message
    engine.send("step.save", COORDINATOR, step_id=plan, values={"may_co_fund": False})
    engine.send("step.finish", COORDINATOR, step_id=plan)
    assert engine.steps[plan].state == "finished"
    assert shipped.step("Review Support Plan").request("FABO request").required_when == "may_co_fund"
