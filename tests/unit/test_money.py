"""Money of purchase orders, pure (R-F4..R-F6, R-K10): amounts, pence exact, rate card, what orders carry."""

from __future__ import annotations

import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.workflow import purchasing
from services.workflow.pack import DEFINITIONS_DIR, PackError, PackRegistry, load_packs
from shared.events.purchasing import PurchaseOrderRequested
from tests.workflow_harness import PERSON, Engine, actor

PID = PERSON["person_id"]
SW = actor("sw", "social_worker", teams=("adult-review",))
RSW = actor("rsw", "response_social_worker", teams=("children-response",))
PLAN = "Care and Support Plan"
CARER_PLAN = "Carer Support Plan"
CHILDREN = "Purchase Services: Children's"


def _started(engine: Engine, step_type: str, who: dict[str, Any] = SW) -> str:
    return engine.given_step(step_type, who, person_id=PID).created[0].step_id


# --- R-F4: nothing, or less, is not an amount -----------------------------------------------------------


def test_R_F4_a_negative_rate_zero_hours_and_a_whole_year_of_respite_are_refused_naming_each_field(
        shipped: PackRegistry) -> None:
    engine = Engine(packs=shipped)
    plan = _started(engine, PLAN)
    rows = [{"service": "Domiciliary care", "hourly_rate": "-16.05", "hours_per_week": 10},
            {"service": "Personal assistant (PA) support", "hourly_rate": "0", "hours_per_week": 0,
             "respite_weeks": 52},
            {"service": "Domiciliary care", "hourly_rate": "16.05", "hours_per_week": "-0.5"}]
    reasons = engine.refused("step.save", SW, step_id=plan, values={"planned_services": rows})
    assert {(r.code, r.field) for r in reasons} == {
        ("invalid_value", "planned_services[0].hourly_rate"),
        ("invalid_value", "planned_services[1].hourly_rate"),
        ("invalid_value", "planned_services[1].hours_per_week"),
        ("invalid_value", "planned_services[1].respite_weeks"),
        ("invalid_value", "planned_services[2].hours_per_week"),
    }
    assert all("R-F4" in r.message or "R-K10" in r.message for r in reasons)
    assert "planned_services" not in engine.steps[plan].values  # nothing costed, nothing kept


def test_R_F4_childrens_purchase_of_zero_weeks_at_a_zero_rate_is_refused_naming_both(shipped: PackRegistry) -> None:
    engine = Engine(packs=shipped)
    step = _started(engine, CHILDREN, RSW)
    reasons = engine.refused("step.save", RSW, step_id=step,
                             values={"hourly_rate": 0, "weekly_hours": 4, "weeks_per_year": 0})
    assert {r.field for r in reasons} == {"hourly_rate", "weeks_per_year"}


def test_R_F4_a_carers_one_off_direct_payment_of_nothing_or_less_is_refused(shipped: PackRegistry) -> None:
    engine = Engine(packs=shipped)
    plan = _started(engine, CARER_PLAN)
    for amount in (0, "-250.00"):
        [r] = engine.refused("step.save", SW, step_id=plan, values={"one_off_dp_amount": amount})
        assert (r.code, r.field) == ("invalid_value", "one_off_dp_amount")
    engine.send("step.save", SW, step_id=plan, values={"one_off_dp_amount": "250.01"})
    assert engine.steps[plan].values["one_off_dp_amount"] == "250.01"


def test_R_F4_the_smallest_amounts_are_accepted_and_costed_to_the_penny(shipped: PackRegistry) -> None:
    engine = Engine(packs=shipped)
    plan = _started(engine, PLAN)
    rows = [{"service": "Other", "hourly_rate": "0.01", "hours_per_week": "0.5", "respite_weeks": 0}]
    engine.send("step.save", SW, step_id=plan, values={"planned_services": rows})
    [line] = engine.steps[plan].values["planned_services"]
    assert (line["weekly_cost"], line["annual_cost"]) == ("0.01", "0.52")  # 0.005 → 0.01 half up, × 52


# --- R-F4, R-K10: odd pennies, half up ---------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "hours", "weekly"), [
    ("16.05", "10.5", "168.53"),   # 168.525: half up, where banker's rounding gives 168.52
    ("12.21", "0.5", "6.11"),      # 6.105
    ("12.20", "7.25", "88.45"),    # 88.45 exactly
    ("9.99", "3.3", "32.97"),      # 32.967
    ("16.05", "0.1", "1.61"),      # 1.605 (0.1 as a float would be 1.6049999…)
    ("0.03", "0.5", "0.02"),       # 0.015
])
def test_R_F4_R_K10_weekly_cost_is_rounded_half_up_from_exact_decimals(rate: str, hours: str, weekly: str) -> None:
    assert purchasing.weekly_cost(Decimal(rate), Decimal(hours)) == Decimal(weekly)
    assert purchasing.line_costs({"hourly_rate": float(rate), "hours_per_week": float(hours)}).weekly_cost == Decimal(
        weekly)  # a float from JSON is read as the decimal it prints as, never its binary value


def test_R_F4_R_K10_the_annual_total_is_the_sum_of_each_lines_pence_not_of_unrounded_costs() -> None:
    # three lines of 0.335 a week: each shows 0.34; the total is 1.02 (not 1.005 → 1.01)
    lines = [purchasing.line_costs({"hourly_rate": "0.67", "hours_per_week": "0.5"}) for _ in range(3)]
    total = purchasing.total_costs(lines)
    assert [c.weekly_cost for c in lines] == [Decimal("0.34")] * 3
    assert (total.weekly_cost, total.annual_cost) == (Decimal("1.02"), Decimal("53.04"))


# --- R-F5: the rate card, and care costed per night, session or week ----------------------------------------


def _orders(engine: Engine, step_id: str, packs: PackRegistry) -> dict[str, PurchaseOrderRequested]:
    step = engine.steps[step_id]
    sent = [purchasing.SentAction(a.next_action_id, a.action, a.reason, a.note, a.assignee_kind, a.assignee_id,
                                  sent=True) for a in step.next_actions]
    orders = purchasing.orders_of_step(packs.step(step.step_type), step.step_id, step.person_id, step.state,
                                       step.values, sent, requested_by="sw")
    return {o.event.kind: o.event for o in orders}


def test_R_F5_the_shipped_rate_card_holds_the_guides_rates_and_units(shipped: PackRegistry) -> None:
    card = {service: (entry.unit, entry.rate) for service, entry in shipped.rates.items()}
    assert card["Domiciliary care"] == ("hour", Decimal("16.05"))
    assert card["Care provider via direct payment"] == ("hour", Decimal("16.05"))
    assert card["Personal assistant (PA) support"] == ("hour", Decimal("12.20"))
    assert (card["Respite"][0], card["Day centre"][0], card["Telecare"][0]) == ("night", "session", "week")


def test_R_F5_a_service_twice_on_the_rate_card_does_not_load(tmp_path: Path) -> None:
    for path in DEFINITIONS_DIR.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "more_rates.yaml").write_text(
        "name: more_rates\nversion: 1\nrate_card:\n  - {service: Domiciliary care, unit: hour, rate: '17.00'}\n")
    with pytest.raises(PackError, match="R-F5"):
        load_packs(tmp_path)


def test_R_F5_the_rate_card_fills_the_rate_and_unit_of_a_line_that_gives_none(shipped: PackRegistry) -> None:
    engine = Engine(packs=shipped)
    plan = _started(engine, PLAN)
    rows = [{"service": "Domiciliary care", "hours_per_week": "10.5", "respite_weeks": 6},
            {"service": "Personal assistant (PA) support", "hours_per_week": 7},
            {"service": "Care provider via direct payment", "hours_per_week": 3}]
    engine.send("step.save", SW, step_id=plan, values={"planned_services": rows})
    saved = engine.steps[plan].values["planned_services"]
    assert [(r["unit"], r["hourly_rate"], r["weekly_cost"], r["annual_cost"]) for r in saved] == [
        ("hour", "16.05", "168.53", "7752.38"), ("hour", "12.20", "85.40", "4440.80"),
        ("hour", "16.05", "48.15", "2503.80")]
    assert engine.steps[plan].values["total_weekly_cost"] == "302.08"


def test_R_F5_another_rate_than_the_cards_needs_a_reason_which_goes_with_the_order(shipped: PackRegistry) -> None:
    engine = Engine(packs=shipped)
    plan = _started(engine, PLAN)
    dearer = {"service": "Domiciliary care", "hourly_rate": "17.50", "hours_per_week": 10}
    [r] = engine.refused("step.save", SW, step_id=plan, values={"planned_services": [dearer]})
    assert (r.code, r.field) == ("missing", "planned_services[0].rate_override_reason")
    assert "16.05" in r.message
    reason = "Rural call: only provider covering the village"
    engine.send("step.save", SW, step_id=plan, values={
        "planned_services": [{**dearer, "rate_override_reason": reason}], "care_start_date": "2024-06-10"})
    [line] = engine.steps[plan].values["planned_services"]
    assert (line["hourly_rate"], line["weekly_cost"]) == ("17.50", "175.00")
    engine.send("step.add_next_action", SW, step_id=plan, action="Brokerage purchasing request")
    order = _orders(engine, plan, shipped)["brokerage"]
    assert order.hourly_rate == "17.50" and reason in order.note


def test_R_F5_respite_is_costed_per_night_day_centre_per_session_telecare_per_week(shipped: PackRegistry) -> None:
    engine = Engine(packs=shipped)
    plan = _started(engine, PLAN)
    rows = [{"service": "Respite", "hourly_rate": "95.00", "hours_per_week": 2},
            {"service": "Day centre", "hourly_rate": "38.55", "hours_per_week": 3, "respite_weeks": 2},
            {"service": "Telecare", "hourly_rate": "4.75", "hours_per_week": 1}]
    engine.send("step.save", SW, step_id=plan, values={"planned_services": rows, "care_start_date": "2024-06-10"})
    saved = engine.steps[plan].values["planned_services"]
    assert [(r["unit"], r["weekly_cost"], r["annual_cost"]) for r in saved] == [
        ("night", "190.00", "9880.00"), ("session", "115.65", "5782.50"), ("week", "4.75", "247.00")]
    engine.send("step.add_next_action", SW, step_id=plan, action="Brokerage purchasing request")
    engine.send("step.add_next_action", SW, step_id=plan, action="Telecare")
    orders = _orders(engine, plan, shipped)
    telecare = orders["telecare"]
    assert (telecare.unit, telecare.unit_rate, telecare.units_per_week, telecare.weekly_cost, telecare.annual_cost,
            telecare.hourly_rate, telecare.weekly_hours) == ("week", "4.75", "1", "4.75", "247.00", None, None)
    assert "Not recorded" not in telecare.note
    both = orders["brokerage"]  # respite and day centre: two units, so per line only
    assert (both.unit, both.unit_rate, both.weekly_hours, both.weekly_cost, both.annual_cost) == (
        None, None, None, "305.65", "15662.50")
    assert "2 night(s)/week at £95.00 per night" in both.service_description


def test_R_F4_R_F5_a_line_in_another_unit_than_the_cards_or_beyond_a_week_is_refused(shipped: PackRegistry) -> None:
    engine = Engine(packs=shipped)
    plan = _started(engine, PLAN)
    rows = [{"service": "Respite", "unit": "hour", "hourly_rate": "20", "hours_per_week": 10},
            {"service": "Respite", "hourly_rate": "95", "hours_per_week": 8},
            {"service": "Telecare", "hourly_rate": "4.75", "hours_per_week": 2}]
    reasons = engine.refused("step.save", SW, step_id=plan, values={"planned_services": rows})
    assert {r.field for r in reasons} == {"planned_services[0].unit", "planned_services[1].hours_per_week",
                                          "planned_services[2].hours_per_week"}


# --- R-F6: orders carry what was agreed ---------------------------------------------------------------------

BROKERAGE_ORDER = PurchaseOrderRequested(
    po_request_id="11111111-1111-4111-8111-111111111111", person_id="p", step_id="s", kind="brokerage",
    service_description="Domiciliary care", start_date=date(2024, 6, 10), weekly_hours="10.5", hourly_rate="16.05",
    weeks_per_year="46", weekly_cost="168.53", annual_cost="7752.38", requested_by="cc-1", note="", unit="hour",
    unit_rate="16.05", units_per_week="10.5")


def test_R_F6_the_long_term_order_is_costed_at_the_providers_rate() -> None:
    pvi = purchasing.pvi_order(BROKERAGE_ORDER, provider="Acme PVI", start_date=date(2024, 8, 1),
                               requested_by="b", rate=Decimal("17.25")).event
    # 17.25 × 10.5 = 181.125 → 181.13 (half up); × 46 weeks = 8331.98
    assert (pvi.hourly_rate, pvi.unit_rate, pvi.weekly_hours, pvi.weekly_cost, pvi.annual_cost) == (
        "17.25", "17.25", "10.5", "181.13", "8331.98")
    assert "requested £16.05" in pvi.note
    same = purchasing.pvi_order(BROKERAGE_ORDER, provider="Acme PVI", start_date=date(2024, 8, 1), requested_by="b")
    assert (same.event.hourly_rate, same.event.annual_cost) == ("16.05", "7752.38")
    assert "rate was not given" in same.event.note


def test_R_F6_the_brokerage_and_interim_orders_end_the_day_before_the_provider_starts() -> None:
    start = date(2024, 8, 1)
    interim = purchasing.interim_end("22222222-2222-4222-8222-222222222222", provider="Acme PVI", start_date=start)
    brokerage = purchasing.brokerage_end(BROKERAGE_ORDER.po_request_id, provider="Acme PVI", start_date=start)
    assert (interim.end_date, brokerage.end_date) == (date(2024, 7, 31), date(2024, 7, 31))
    assert purchasing.day_before(date(2024, 3, 1)) == date(2024, 2, 29)  # a leap year


def test_R_F6_direct_payments_chosen_from_an_interim_support_plan_carry_its_dp_lines(shipped: PackRegistry) -> None:
    engine = Engine(packs=shipped)
    plan = _started(engine, "Interim Support Plan")
    rows = [{"service": "Domiciliary care", "hours_per_week": 5},
            {"service": "Personal assistant (PA) support", "hours_per_week": "7.5"}]
    engine.send("step.save", SW, step_id=plan, values={"planned_services": rows, "care_start_date": "2024-06-10"})
    engine.send("step.add_next_action", SW, step_id=plan, action="Brokerage purchasing request",
                assignee={"kind": "team", "id": "adult-direct-payments"})
    dp = _orders(engine, plan, shipped)["direct_payment"]
    assert (dp.hourly_rate, dp.weekly_hours, dp.weekly_cost, dp.annual_cost) == ("12.20", "7.5", "91.50", "4758.00")
    assert dp.service_description.startswith("Personal assistant")


def test_R_F6_a_carers_one_off_direct_payment_reaches_its_order(shipped: PackRegistry) -> None:
    engine = Engine(packs=shipped)
    plan = _started(engine, CARER_PLAN)
    engine.send("step.save", SW, step_id=plan, values={
        "one_off_dp_amount": "350.005", "one_off_dp_purpose": "Gym membership for a break from caring",
        "care_start_date": "2024-06-10"})
    engine.send("step.add_next_action", SW, step_id=plan, action="Purchase services – Carer Services",
                assignee={"kind": "team", "id": "adult-direct-payments"})
    dp = _orders(engine, plan, shipped)["direct_payment"]
    assert dp.one_off_amount == "350.01"  # half up to the penny
    assert "One-off payment £350.01" in dp.service_description and "costs not known" not in dp.note


# --- R-F7: a package through its life ------------------------------------------------------------------------


def _requested(**terms: Any) -> PurchaseOrderRequested:
    return BROKERAGE_ORDER.model_copy(update={"po_request_id": "33333333-3333-4333-8333-333333333333",
                                              "step_id": "review", **terms})


def test_R_F7_an_amendment_names_each_changed_term_and_the_cost_differences_to_the_penny() -> None:
    current = BROKERAGE_ORDER.model_dump(mode="json")
    # 16.05 × 10.25 h = 164.5125 → 164.51 a week (−4.02), × 46 = 7567.46 (−184.92)
    fewer = _requested(weekly_hours="10.25", units_per_week="10.25", weekly_cost="164.51", annual_cost="7567.46")
    changes, terms = purchasing.amendment("brokerage", current, fewer)
    assert changes == {
        "weekly_hours": {"from": "10.5", "to": "10.25"}, "units_per_week": {"from": "10.5", "to": "10.25"},
        "weekly_cost": {"from": "168.53", "to": "164.51", "difference": "-4.02"},
        "annual_cost": {"from": "7752.38", "to": "7567.46", "difference": "-184.92"}}
    assert (terms["po_request_id"], terms["weekly_cost"]) == (BROKERAGE_ORDER.po_request_id, "164.51")
    assert purchasing.amendment("brokerage", terms, fewer)[0] == {}  # the same plan again changes nothing


def test_R_F7_a_cancelled_amendment_is_amended_back_by_its_difference_to_the_penny() -> None:
    """The review's −£4.02 a week is undone by +£4.02 even after a later amendment (+£0.01, an odd penny) moved
    the costs; the hours go back only where nothing changed them since."""
    current = BROKERAGE_ORDER.model_dump(mode="json")
    fewer = _requested(weekly_hours="10.25", units_per_week="10.25", weekly_cost="164.51", annual_cost="7567.46")
    made, terms = purchasing.amendment("brokerage", current, fewer)
    changes, back = purchasing.reversal(terms, made)
    assert changes == {
        "weekly_hours": {"from": "10.25", "to": "10.5"}, "units_per_week": {"from": "10.25", "to": "10.5"},
        "weekly_cost": {"from": "164.51", "to": "168.53", "difference": "4.02"},
        "annual_cost": {"from": "7567.46", "to": "7752.38", "difference": "184.92"}}
    assert {k: back[k] for k in AMENDED} == {k: current[k] for k in AMENDED}
    later = {**terms, "weekly_hours": "11", "weekly_cost": "164.52", "annual_cost": "7567.47"}
    changes, back = purchasing.reversal(later, made)
    assert "weekly_hours" not in changes and back["weekly_hours"] == "11"
    assert (back["weekly_cost"], back["annual_cost"]) == ("168.54", "7752.39")


AMENDED = ("weekly_hours", "units_per_week", "weekly_cost", "annual_cost")


def test_R_F7_a_long_term_order_keeps_its_providers_rate_when_the_hours_change() -> None:
    pvi = purchasing.pvi_order(BROKERAGE_ORDER, provider="Acme PVI", start_date=date(2024, 8, 1), requested_by="b",
                               rate=Decimal("17.25")).event.model_dump(mode="json")
    more = _requested(weekly_hours="12", units_per_week="12", weekly_cost="192.60", annual_cost="8859.60")
    changes, terms = purchasing.amendment("long_term_homecare", pvi, more)
    # 17.25 × 12 = 207.00 a week (+25.87 on 181.13), × 46 = 9522.00 (+1190.02); the rate does not change
    assert "hourly_rate" not in changes and terms["hourly_rate"] == "17.25"
    assert changes["weekly_cost"] == {"from": "181.13", "to": "207.00", "difference": "25.87"}
    assert changes["annual_cost"]["difference"] == "1190.02"


def test_R_F7_brokerage_care_amends_the_long_term_order_and_one_offs_and_childrens_purchases_are_their_own() -> None:
    order = purchasing.Order("k", BROKERAGE_ORDER)
    assert purchasing.amends(order) == ("long_term_homecare", "brokerage")
    one_off = purchasing.Order("k", BROKERAGE_ORDER.model_copy(update={"kind": "direct_payment",
                                                                        "one_off_amount": "350.00"}))
    children = purchasing.Order("k", BROKERAGE_ORDER.model_copy(update={"kind": "purchase_services_children"}))
    assert purchasing.amends(one_off) == purchasing.amends(children) == ()


ISP = "Interim Support Plan"
PACKAGE = [{"service": "Domiciliary care", "hourly_rate": "16.05", "hours_per_week": "10.5", "respite_weeks": 6},
           {"service": "Day centre", "hourly_rate": "35.00", "hours_per_week": "2"}]


def _signed_off_plan(engine: Engine) -> None:
    """The person's Care and Support Plan, saved (the engine costs it) and signed off earlier."""
    from dataclasses import replace

    plan = _started(engine, PLAN)
    engine.send("step.save", SW, step_id=plan, values={"planned_services": PACKAGE, "care_start_date": "2024-06-10",
                                                       "annual_review_date": "2025-04-01"})
    engine.steps[plan] = replace(engine.steps[plan], state="finished")


def test_R_F7_an_interim_support_plan_opens_with_the_whole_package_and_the_original_review_date(
        shipped: PackRegistry) -> None:
    """Seed 001 §3.3: an ISP is "a small increase/reduction of the care package" with "the original review date":
    it starts from the last signed-off plan, so the worker changes a line rather than listing the package again."""
    engine = Engine(packs=shipped)
    _signed_off_plan(engine)
    isp = engine.steps[_started(engine, ISP)]
    assert [(r["service"], r["hours_per_week"], r["weekly_cost"]) for r in isp.values["planned_services"]] == [
        ("Domiciliary care", "10.5", "168.53"), ("Day centre", "2", "70.00")]
    assert (isp.values["total_weekly_cost"], isp.values["annual_review_date"]) == ("238.53", "2025-04-01")


def test_R_F7_R_K10_one_more_hour_on_the_interim_plan_amends_the_package_by_its_cost_to_the_penny(
        shipped: PackRegistry) -> None:
    engine = Engine(packs=shipped)
    _signed_off_plan(engine)
    plan = engine.only(PLAN)
    brokerage = shipped.step(PLAN).next_action("Brokerage purchasing request")
    sent = purchasing.SentAction("na-1", brokerage.action, None, None, "team", "adult-brokerage", sent=True)
    old = purchasing.order_for(plan.step_id, PID, plan.values, brokerage, sent, requested_by="sw")
    isp = _started(engine, ISP)
    rows = [dict(r) for r in engine.steps[isp].values["planned_services"]]
    rows[0]["hours_per_week"] = "11.5"  # the worker changes the one line that changes
    engine.send("step.save", SW, step_id=isp, values={"planned_services": rows, "isp_reason": "One more hour"})
    engine.send("step.add_next_action", SW, step_id=isp, action="Brokerage purchasing request")
    new = _orders(engine, isp, shipped)["brokerage"]
    assert old is not None
    changes, _ = purchasing.amendment("brokerage", old.event.model_dump(mode="json"), new)
    # 16.05 × 11.5 h = 184.575 → 184.58 (+16.05 a week); × 46 weeks = 8490.68 (+738.30); the day centre stays
    assert changes["weekly_cost"] == {"from": "238.53", "to": "254.58", "difference": "16.05"}
    assert changes["annual_cost"] == {"from": "11392.38", "to": "12130.68", "difference": "738.30"}
    assert "Day centre" in new.service_description


def test_R_F7_a_cancelled_purchasing_step_and_a_duplicate_order_end_naming_why_and_no_personal_data() -> None:
    end = purchasing.ended("po-1", date(2024, 6, 3), purchasing.support_cancelled("Direct payments", "step-9"))
    assert (end.po_request_id, end.end_date, end.reason) == (
        "po-1", date(2024, 6, 3), "The Direct payments step step-9 this order was raised with was cancelled")
    assert purchasing.duplicate_of("po-2") == "A duplicate of purchase order po-2, which carries the package"
