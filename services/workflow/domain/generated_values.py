"""System-generated values (R-W6): budgets and their costs (R-K10), the assignee, the authoriser,
the person summary and the latest budget total, filled by the system rather than typed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

from services.workflow import purchasing
from services.workflow.domain.forms import person_value, writable_fields
from services.workflow.domain.model import Context, Step
from services.workflow.pack import MOST_UNITS_A_WEEK, Field, RateCardEntry, StepDefinition, costed_fields
from shared import bounds
from shared.commands.base import Reason, reason

# R-K10: the named rule.
BUDGET_RULE = "budget_costs"


def cost_line(line: Mapping[str, Any], *, weeks_generated: bool) -> dict[str, Any]:
    """R-K10 on one service line, as strings for the form: weeks per year, weekly and annual cost.

    Unknown inputs leave the costs empty; `purchasing.line_costs` is the one arithmetic.
    """
    costs = purchasing.line_costs(line if weeks_generated else {**line, "respite_weeks": None})
    weeks_known = weeks_generated or purchasing.as_decimal(line.get("weeks_per_year")) is not None
    out: dict[str, Any] = {"weekly_cost": purchasing.money_string(costs.weekly_cost),
                           "annual_cost": purchasing.money_string(costs.annual_cost) if weeks_known else None}
    if weeks_generated:
        out["weeks_per_year"] = purchasing.decimal_string(costs.weeks_per_year)
    return out


def _costed_tables(defn: StepDefinition) -> list[Field]:
    return [f for s in defn.form_sections if not s.read_only for f in s.fields
            if f.type == "table" and costed_fields(f.columns)]


# R-K10, R-F4 inputs and their ranges: (key, least, most, whether the least is allowed, message). An amount,
# a rate, hours or weeks of care is more than nothing (issue #17: £0 or −£16.05 an hour is not a care
# package), and within sensible bounds (issue #20: 1e308 hours is not one either).
_COST_INPUT_LIMITS: tuple[tuple[str, Decimal, Decimal, bool, str], ...] = (
    ("respite_weeks", Decimal(0), purchasing.WEEKS_IN_YEAR, True,
     "weeks of respite must be at least 0 and fewer than 52 (R-K10)"),
    ("hours_per_week", Decimal(0), bounds.MAX_WEEKLY_HOURS, False,
     "hours a week must be more than 0 and at most 168 (R-F4)"),
    ("weekly_hours", Decimal(0), bounds.MAX_WEEKLY_HOURS, False,
     "hours a week must be more than 0 and at most 168 (R-F4)"),
    ("hourly_rate", Decimal(0), bounds.MAX_HOURLY_RATE, False,
     "a rate must be more than £0 and at most £10,000 (R-F4)"),
    ("weeks_per_year", Decimal(0), purchasing.WEEKS_IN_YEAR, False,
     "weeks a year must be more than 0 and at most 52 (R-F4)"),
    ("one_off_dp_amount", Decimal(0), bounds.MAX_ONE_OFF_AMOUNT, False,
     "a one-off amount must be more than £0 and at most £100,000 (R-F4)"),
)


def budget_problems(defn: StepDefinition, values: Mapping[str, Any],
                    rates: Mapping[str, RateCardEntry] | None = None) -> list[Reason]:
    """R-K10, R-F4, R-F5: every amount, rate, hours and weeks more than nothing and in range, a service line
    in the unit of the rate card and at its rate unless a reason is recorded; each field at fault named."""
    if BUDGET_RULE not in defn.rules:
        return []
    reasons = _cost_input_problems(values, "")
    for table in _costed_tables(defn):
        rows = values.get(table.key)
        for index, row in enumerate(rows if isinstance(rows, list) else []):
            if isinstance(row, Mapping):
                prefix = f"{table.key}[{index}]."
                found = _cost_input_problems(row, prefix)
                at_fault = {r.field for r in found}
                card = _rate_card_problems(row, prefix, rates or {}, rate_at_fault=f"{prefix}hourly_rate" in at_fault)
                reasons += found + [r for r in card if r.field not in at_fault]
    return reasons


def _rate_card_problems(line: Mapping[str, Any], prefix: str, rates: Mapping[str, RateCardEntry], *,
                        rate_at_fault: bool) -> list[Reason]:
    """R-F5: the card's unit, at most the units a week holds, and the card's rate or a reason for another."""
    entry = rates.get(str(line.get("service")))
    unit = line.get("unit") or (entry.unit if entry else None) or "hour"
    reasons = []
    if entry is not None and entry.unit is not None and line.get("unit") not in (None, "", entry.unit):
        reasons.append(reason("invalid_value", f"{entry.service} is costed per {entry.unit} on the rate card (R-F5)",
                              field=f"{prefix}unit"))
    units = purchasing.as_decimal(line.get("hours_per_week"))
    most = MOST_UNITS_A_WEEK.get(str(unit))
    if units is not None and most is not None and units > most:
        reasons.append(reason("invalid_value", f"a week holds at most {most} {unit}s (R-F4)",
                              field=f"{prefix}hours_per_week"))
    rate = purchasing.as_decimal(line.get("hourly_rate"))
    explained = str(line.get("rate_override_reason") or "").strip()
    if (entry is not None and entry.rate is not None and rate is not None and not rate_at_fault
            and rate != entry.rate and not explained):
        reasons.append(reason(
            "missing", f"the rate card's rate for {entry.service} is £{entry.rate} per {entry.unit or 'hour'}:"
            " record why this line's rate differs (R-F5)", field=f"{prefix}rate_override_reason"))
    return reasons


def with_rate_card(line: Mapping[str, Any], rates: Mapping[str, RateCardEntry]) -> dict[str, Any]:
    """R-F5: a service line with the rate card's unit and rate where the line does not say them."""
    entry = rates.get(str(line.get("service")))
    out = dict(line)
    if entry is None:
        return out
    if entry.unit is not None and not out.get("unit"):
        out["unit"] = entry.unit
    if entry.rate is not None and out.get("hourly_rate") in (None, ""):
        out["hourly_rate"] = purchasing.money_string(entry.rate)
    return out


def _cost_input_problems(line: Mapping[str, Any], prefix: str) -> list[Reason]:
    reasons = []
    for key, least, most, least_allowed, message in _COST_INPUT_LIMITS:
        number = purchasing.as_decimal(line.get(key))
        if number is None:
            continue
        above = number >= least if least_allowed else number > least
        # respite: 52 weeks would leave no weeks of care
        below = number < most if key == "respite_weeks" else number <= most
        if not (above and below):
            reasons.append(reason("invalid_value", message, field=f"{prefix}{key}"))
    return reasons


def budget_values(defn: StepDefinition, values: Mapping[str, Any],
                  rates: Mapping[str, RateCardEntry] | None = None) -> dict[str, Any]:
    """R-K10, R-F5: each costed row with the rate card's unit and rate where it says none, its costs, the
    totals, and flat costs, pence exact."""
    if BUDGET_RULE not in defn.rules:
        return {}
    fields = defn.field_map()
    out: dict[str, Any] = {}
    for table in _costed_tables(defn):
        rows = values.get(table.key)
        if not isinstance(rows, list):
            continue
        columns = {c.key: c for c in table.columns}
        generated = "weeks_per_year" in columns and columns["weeks_per_year"].system_generated
        filled = [with_rate_card(row, rates or {}) if "unit" in columns else dict(row)
                  for row in rows if isinstance(row, Mapping)]
        costed = [{**row, **cost_line(row, weeks_generated=generated)} for row in filled]
        out[table.key] = costed
        for total, column in (("total_weekly_cost", "weekly_cost"), ("total_annual_cost", "annual_cost")):
            if total in fields and fields[total].system_generated:
                out[total] = purchasing.money_string(sum((Decimal(r[column]) for r in costed if r[column] is not None),
                                        Decimal(0)))
    if costed_fields(fields.values()):
        generated = "weeks_per_year" in fields and fields["weeks_per_year"].system_generated
        out.update(cost_line(values, weeks_generated=generated))
    return out


def person_summary(person: Mapping[str, Any]) -> str:
    """R-W6: who the record is about, in one line: name, date of birth, gender, address."""
    name = " ".join(str(person[k]) for k in ("first_name", "last_name") if person.get(k))
    parts = [name or "Name not recorded"]
    if person.get("date_of_birth"):
        parts.append(f"born {person['date_of_birth']}")
    if person.get("gender"):
        parts.append(str(person["gender"]))
    address = person_value(person, "address")
    if address:
        parts.append(str(address))
    return ", ".join(parts)


def latest_budget_total(ctx: Context) -> str | None:
    """R-W6 `budget_total`: the weekly total of the person's latest finished costed support plan."""
    for step_type in reversed(ctx.case.finished_sequence):
        try:
            rules = ctx.packs.step(step_type).rules
        except KeyError:
            continue
        total = ctx.case.finished_values.get(step_type, {}).get("total_weekly_cost")
        if BUDGET_RULE in rules and total is not None:
            return str(total)
    return None


def system_values(ctx: Context, step: Step, defn: StepDefinition, *, acting: bool = True) -> dict[str, Any]:
    """R-W6: the system-generated fields the system can fill now, from where the pack says.

    `assignee`: the worker the step is assigned to; `authoriser`: the acting worker if they hold
    an authorising role of the step; `person_summary`: from the person record, when it was read;
    `budget_total`: the latest finished costed plan's weekly total. Others are left as they are.
    """
    out: dict[str, Any] = {}
    for key, (_, f, read_only) in writable_fields(defn, step.forms).items():
        if read_only or not f.system_generated or f.system_value is None:
            continue
        value: Any = None
        match f.system_value:
            case "assignee":
                value = step.assignee_id if step.assignee_kind == "worker" else None
            case "authoriser":
                value = ctx.actor.worker_id if acting and ctx.actor.roles & set(defn.authorisers) else None
            case "person_summary":
                value = person_summary(ctx.person) if ctx.person is not None else None
            case "budget_total":
                value = latest_budget_total(ctx)
        if value is not None:
            out[key] = value
    return out


def with_system(ctx: Context, step: Step, defn: StepDefinition) -> Step:
    fresh = system_values(ctx, step, defn)
    if all(step.values.get(k) == v for k, v in fresh.items()):
        return step
    return replace(step, values={**step.values, **fresh})
