"""Money of purchase orders, pure (R-F4, R-K10): amounts refused unless more than nothing, pence exact, half up."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from services.workflow import purchasing
from services.workflow.pack import PackRegistry
from tests.workflow_harness import PERSON, Engine, actor, shipped_packs

PID = PERSON["person_id"]
SW = actor("sw", "social_worker", teams=("adult-review",))
RSW = actor("rsw", "response_social_worker", teams=("children-response",))
PLAN = "Care and Support Plan"
CARER_PLAN = "Carer Support Plan"
CHILDREN = "Purchase Services: Children's"


@pytest.fixture(scope="module")
def shipped() -> PackRegistry:
    return shipped_packs()


def _started(engine: Engine, step_type: str, who: dict[str, Any] = SW) -> str:
    return engine.send("step.start_new", who, person_id=PID, step_type=step_type).created[0].step_id


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
    rows = [{"service": "Domiciliary care", "hourly_rate": "0.01", "hours_per_week": "0.5", "respite_weeks": 0}]
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
