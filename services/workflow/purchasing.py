"""Purchase orders, pure (R-F1, R-F2, R-K10): which next actions ask for one, and what it costs.

No I/O, no clock, no uuid4: the handler passes `now` and loads the rows; ids are derived from
the next action (or the confirmed order), so the same decision always names the same order.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from services.workflow.pack import NextActionDefinition, PurchaseOrderKind, StepDefinition
from shared.events.purchasing import PurchaseOrderAmended, PurchaseOrderEndRequested, PurchaseOrderRequested

WEEKS_IN_YEAR = Decimal(52)
PENNY = Decimal("0.01")
SERVICES_TABLE = "planned_services"
# R-F2: a brokerage order with no provider offer for this long puts the person on the lack-of-provision list.
LACK_OF_PROVISION_AFTER = timedelta(hours=48)
LACK_OF_PROVISION_TIMER = "lack-of-provision"
# the namespace of po_request_ids: uuid5 of the next action (or of the confirmed order)
PO_NAMESPACE = uuid.UUID("0b8f3c43-8a3e-4a55-9d61-6d7c1f1f7a01")


# --- cost arithmetic (R-K10) ------------------------------------------------------------------


def as_decimal(value: Any) -> Decimal | None:
    """A number or decimal string as an exact Decimal (16.05 → Decimal("16.05")); None if not one."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def pence(amount: Decimal) -> Decimal:
    """Rounded half up to the penny: 168.525 → 168.53."""
    return amount.quantize(PENNY, rounding=ROUND_HALF_UP)


def weeks_per_year(respite_weeks: Decimal | None) -> Decimal:
    """R-K10: respite (or day centre) weeks are taken out of 52: 6 → 46."""
    return WEEKS_IN_YEAR - (respite_weeks or Decimal(0))


def weekly_cost(hourly_rate: Decimal, weekly_hours: Decimal) -> Decimal:
    """R-K10: rate × hours, to the penny (£16.05 × 10.5 h = £168.53)."""
    return pence(hourly_rate * weekly_hours)


def annual_cost(weekly: Decimal, weeks: Decimal) -> Decimal:
    """R-K10: the weekly cost (already in pence) × weeks per year, so annual = weekly shown × weeks shown."""
    return pence(weekly * weeks)


def decimal_string(amount: Decimal | None) -> str | None:
    """A quantity as the contract's decimal string: no exponent, no trailing zeros (46, 10.5)."""
    if amount is None:
        return None
    return format(amount.normalize(), "f")


def money_string(amount: Decimal | None) -> str | None:
    """An amount of money as the contract's decimal string, always in pence ("7752.38")."""
    return None if amount is None else str(pence(amount))


def rate_string(rate: Decimal | None) -> str | None:
    """An hourly rate in pence ("12.20"), or exactly as recorded where it has fractions of a penny."""
    if rate is None:
        return None
    return money_string(rate) if pence(rate) == rate else decimal_string(rate)


@dataclass(frozen=True)
class Costs:
    """What one order (or one service line) costs; None where the step did not record it."""

    weekly_hours: Decimal | None = None  # the units a week: hours unless `unit` says otherwise (R-F5)
    hourly_rate: Decimal | None = None  # the rate per unit
    weeks_per_year: Decimal | None = None
    weekly_cost: Decimal | None = None
    annual_cost: Decimal | None = None
    unit: str = "hour"

    @property
    def hourly(self) -> bool:
        return self.unit == "hour"


def line_costs(line: Mapping[str, Any]) -> Costs:
    """R-K10 for one service line: `hours_per_week` (or `weekly_hours`), `hourly_rate`, and
    `respite_weeks` (weeks = 52 − respite) or a recorded `weeks_per_year` where there is no respite field.
    R-F5: with a `unit` other than hour, the hours and rate are nights, sessions or weeks and their rate."""
    rate = as_decimal(line.get("hourly_rate"))
    hours = as_decimal(line.get("hours_per_week", line.get("weekly_hours")))
    respite = as_decimal(line.get("respite_weeks"))
    recorded_weeks = as_decimal(line.get("weeks_per_year"))
    weeks = weeks_per_year(respite) if respite is not None or recorded_weeks is None else recorded_weeks
    weekly = weekly_cost(rate, hours) if rate is not None and hours is not None else None
    annual = annual_cost(weekly, weeks) if weekly is not None else None
    return Costs(weekly_hours=hours, hourly_rate=rate, weeks_per_year=weeks, weekly_cost=weekly, annual_cost=annual,
                 unit=str(line.get("unit") or "hour"))


def _common(values: Sequence[Decimal | None]) -> Decimal | None:
    first = values[0] if values else None
    return first if all(v == first for v in values) else None


def _sum(values: Sequence[Decimal | None]) -> Decimal | None:
    present = [v for v in values if v is not None]
    return sum(present, Decimal(0)) if values and len(present) == len(values) else None


def total_costs(lines: Sequence[Costs]) -> Costs:
    """Several lines in one order: weekly and annual costs add up; units where all are in one unit; rate and
    weeks where common."""
    units = {c.unit for c in lines}
    one_unit = len(units) == 1
    return Costs(
        weekly_hours=_sum([c.weekly_hours for c in lines]) if one_unit else None,
        hourly_rate=_common([c.hourly_rate for c in lines]) if one_unit else None,
        weeks_per_year=_common([c.weeks_per_year for c in lines]),
        weekly_cost=_sum([c.weekly_cost for c in lines]),
        annual_cost=_sum([c.annual_cost for c in lines]),
        unit=units.pop() if one_unit else "mixed",
    )


# --- which next actions ask for an order (R-F1) ---------------------------------------------------


@dataclass(frozen=True)
class SentAction:
    """A next action of a step as the purchase order needs it (domain.NextAction's fields)."""

    next_action_id: str
    action: str
    reason: str | None
    note: str | None
    assignee_kind: str
    assignee_id: str | None
    sent: bool


@dataclass(frozen=True)
class Order:
    """A `purchase_order.requested` to publish once, under its unique `source_key`."""

    source_key: str
    event: PurchaseOrderRequested
    # R-F7: the plan has no service line for the order any more: the package it would amend ends
    ends_package: bool = False


def po_request_id(source_key: str) -> str:
    """The order's id, derived from what asked for it: the same next action always names the same order."""
    return str(uuid.uuid5(PO_NAMESPACE, source_key))


def kind_of(action: NextActionDefinition, sent: SentAction) -> PurchaseOrderKind | None:
    """The order kind the pack gives the action: by its reason, by its team, else its own kind."""
    spec = action.purchase_order
    if spec is None:
        return None
    if sent.reason is not None and sent.reason in spec.by_reason:
        return spec.by_reason[sent.reason]
    if sent.assignee_kind == "team" and sent.assignee_id in spec.by_team:
        return spec.by_team[sent.assignee_id]
    return spec.kind


def _date(value: Any) -> date | None:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return value if isinstance(value, date) else None


def _lines(values: Mapping[str, Any], services: Sequence[str]) -> list[Mapping[str, Any]] | None:
    rows = values.get(SERVICES_TABLE)
    if not isinstance(rows, list):
        return None
    return [r for r in rows if isinstance(r, Mapping) and (not services or r.get("service") in services)]


def order_for(
    step_id: str, person_id: str, values: Mapping[str, Any], action: NextActionDefinition, sent: SentAction,
    *, requested_by: str,
) -> Order | None:
    """R-F1: the order a sent purchasing next action asks for, costed from the step's values (R-K10).

    From the `planned_services` rows of the services the pack names, else from the step's own
    fields (`service_description`, `provider`, `start_date`, `weekly_hours`, `hourly_rate`,
    `weeks_per_year`). What the step does not hold is null, and the note says so.
    """
    kind = kind_of(action, sent)
    if kind is None or action.purchase_order is None:
        return None
    notes = [n for n in (sent.note, f"Reason: {sent.reason}" if sent.reason else None) if n]
    spec = action.purchase_order
    lines = _lines(values, spec.services_by_kind.get(kind, spec.services))
    one_off = as_decimal(values.get(spec.one_off_field)) if spec.one_off_field else None
    provider: str | None = None
    if lines is None and one_off is not None:  # R-F6: a plan with a one-off payment and no service lines
        lines = []
    ends_package = lines == [] and one_off is None
    if lines is not None:
        if not lines and one_off is None:
            wanted = ", ".join(spec.services_by_kind.get(kind, spec.services)) or "any service"
            notes.append(f"No support plan service line for {wanted}: costs not known.")
            costs, description = Costs(), action.action
        elif not lines:  # R-F6: a one-off payment only
            costs, description = Costs(), ""
        else:
            each = [line_costs(line) for line in lines]
            costs = total_costs(each)
            description = "; ".join(_describe(line, c) for line, c in zip(lines, each, strict=True))
            providers = {str(line["provider"]) for line in lines if line.get("provider")}
            provider = providers.pop() if len(providers) == 1 else None
            if len(lines) > 1 and costs.unit == "mixed":
                notes.append("Service lines in different units: units and rate are per line (see the service).")
            elif len(lines) > 1 and costs.hourly_rate is None:
                notes.append("Several service lines at different rates: hourly_rate is per line (see the service).")
            notes += [_override_note(line) for line in lines if str(line.get("rate_override_reason") or "").strip()]
            if len(lines) > 1 and costs.weeks_per_year is None:
                notes.append("Several service lines with different weeks per year: weeks_per_year is per line.")
        if one_off is not None:
            purpose = str(values.get("one_off_dp_purpose") or "").strip()
            description = "; ".join(d for d in (description, f"One-off payment £{money_string(one_off)}"
                                                + (f": {purpose}" if purpose else "")) if d)
        start = _date(values.get("care_start_date", values.get("start_date")))
    else:
        costs = line_costs(values)
        description = str(values.get("service_description") or action.action)
        provider = str(values["provider"]) if values.get("provider") else None
        start = _date(values.get("start_date", values.get("care_start_date")))
    known = (("weekly_hours", costs.weekly_hours), ("hourly_rate", costs.hourly_rate), ("start_date", start))
    missing = [name for name, value in known if value is None and (lines != [] or name == "start_date")
               and (costs.hourly or name == "start_date") and (one_off is None or name == "start_date")]
    if missing:
        notes.append(f"Not recorded on the step: {', '.join(missing)}.")
    source_key = f"next-action:{sent.next_action_id}"
    event = PurchaseOrderRequested(
        po_request_id=po_request_id(source_key), person_id=person_id, step_id=step_id, kind=kind,
        service_description=description, provider=provider, start_date=start,
        weeks_per_year=decimal_string(costs.weeks_per_year), weekly_cost=money_string(costs.weekly_cost),
        annual_cost=money_string(costs.annual_cost), requested_by=requested_by, note=" ".join(notes),
        one_off_amount=money_string(one_off), **unit_fields(costs),
    )
    return Order(source_key, event, ends_package=ends_package)


def unit_fields(costs: Costs) -> dict[str, Any]:
    """R-F5: hours and hourly rate for hourly care; the unit, its rate and units a week for any one unit."""
    hourly = costs.hourly
    one_unit = costs.unit != "mixed" and (costs.weekly_hours is not None or costs.hourly_rate is not None)
    return {"weekly_hours": decimal_string(costs.weekly_hours) if hourly else None,
            "hourly_rate": rate_string(costs.hourly_rate) if hourly else None,
            "unit": costs.unit if one_unit else None,
            "unit_rate": rate_string(costs.hourly_rate) if one_unit else None,
            "units_per_week": decimal_string(costs.weekly_hours) if one_unit else None}


def _override_note(line: Mapping[str, Any]) -> str:
    """R-F5: a rate other than the rate card's goes to finance with its reason."""
    return (f"{line.get('service') or 'Service'} at £{rate_string(as_decimal(line.get('hourly_rate')))}"
            f" rather than the rate card's: {str(line['rate_override_reason']).strip()}.")


def _describe(line: Mapping[str, Any], costs: Costs) -> str:
    service = str(line.get("service") or "Service")
    if costs.weekly_hours is None or costs.hourly_rate is None:
        return service
    if costs.hourly:
        return f"{service} {decimal_string(costs.weekly_hours)} h/week at £{rate_string(costs.hourly_rate)}"
    return (f"{service} {decimal_string(costs.weekly_hours)} {costs.unit}(s)/week"
            f" at £{rate_string(costs.hourly_rate)} per {costs.unit}")


def orders_of_step(
    defn: StepDefinition, step_id: str, person_id: str, state: str, values: Mapping[str, Any],
    actions: Sequence[SentAction], *, requested_by: str,
) -> list[Order]:
    """R-F1: an order for each purchasing next action that is sent: sent at once, or the step finished.

    Asked again (a redelivered or repeated command) it names the same orders: the handler keeps
    each `source_key` once, so each is published once.
    """
    orders = []
    for sent in actions:
        if not (sent.sent or state == "finished"):
            continue
        try:
            action = defn.next_action(sent.action)
        except KeyError:
            continue
        order = order_for(step_id, person_id, values, action, sent, requested_by=requested_by)
        if order is not None:
            orders.append(order)
    return orders


# --- a package through its life (R-F7) --------------------------------------------------------------------

# R-F7: the live orders a new order of a kind changes instead of adding to, first found first: brokerage
# care is the long-term (PVI) order once there is one, else the brokerage order still sourcing it.
_AMENDS: dict[str, tuple[str, ...]] = {
    "brokerage": ("long_term_homecare", "brokerage"), "direct_payment": ("direct_payment",),
    "telecare": ("telecare",), "interim_homecare": ("interim_homecare",),
}
AMENDED_FIELDS = ("service_description", "weekly_hours", "hourly_rate", "weeks_per_year", "weekly_cost",
                  "annual_cost", "unit", "unit_rate", "units_per_week")
COST_FIELDS = ("weekly_cost", "annual_cost")  # an amendment carries their difference
CASE_CLOSED_REASON = "The case was closed"


def amends(order: Order) -> tuple[str, ...]:
    """R-F7: the kinds of live order this one changes; none for a one-off payment (always an order of its own)
    or a children's purchase (each service its own order)."""
    return () if order.event.one_off_amount is not None else _AMENDS.get(order.event.kind, ())


def _at_providers_rate(new: PurchaseOrderRequested, current: Mapping[str, Any]) -> PurchaseOrderRequested:
    """R-F6, R-F7: a long-term order keeps its provider's rate: the plan changes the units, not the rate."""
    rate = as_decimal(current.get("unit_rate"))
    units = as_decimal(new.units_per_week)
    weeks = as_decimal(new.weeks_per_year)
    if rate is None or units is None or new.unit is None or new.unit != current.get("unit"):
        return new
    weekly = weekly_cost(rate, units)
    costs = Costs(weekly_hours=units, hourly_rate=rate, weeks_per_year=weeks, weekly_cost=weekly,
                  annual_cost=annual_cost(weekly, weeks) if weeks is not None else None, unit=new.unit)
    return new.model_copy(update={"weekly_cost": money_string(costs.weekly_cost),
                                  "annual_cost": money_string(costs.annual_cost), **unit_fields(costs)})


def amendment(
    live_kind: str, current: Mapping[str, Any], new: PurchaseOrderRequested,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """R-F7: what a new plan's order changes of the live one (field → from, to; costs with the difference,
    pence exact) and the live order's terms after it. Nothing changed: no changes."""
    if live_kind == "long_term_homecare":
        new = _at_providers_rate(new, current)
    proposed = new.model_dump(mode="json")
    changes: dict[str, Any] = {}
    for field in AMENDED_FIELDS:
        before, after = current.get(field), proposed.get(field)
        if before == after:
            continue
        change: dict[str, Any] = {"from": before, "to": after}
        if field in COST_FIELDS and before is not None and after is not None:
            change["difference"] = money_string(Decimal(after) - Decimal(before))
        changes[field] = change
    terms = {**current, **{field: proposed.get(field) for field in AMENDED_FIELDS}}
    return changes, terms


def reversal(current: Mapping[str, Any], made: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """R-F7: what undoes the amendment `made` of an order whose terms are now `current` (its step cancelled):
    each cost back by the amendment's difference, pence exact, whatever changed it since; each other term back
    to what it was, where nothing changed it since. The changes (as `amendment` gives them) and the terms."""
    changes: dict[str, Any] = {}
    terms = dict(current)
    for field in AMENDED_FIELDS:
        change, now = made.get(field), current.get(field)
        if not isinstance(change, Mapping):
            continue
        if field in COST_FIELDS and change.get("difference") is not None and now is not None:
            back = money_string(Decimal(now) - Decimal(change["difference"]))
        elif now == change.get("to"):
            back = change.get("from")
        else:
            continue
        if back == now:
            continue
        changes[field] = {"from": now, "to": back}
        if field in COST_FIELDS and now is not None and back is not None:
            changes[field]["difference"] = money_string(Decimal(back) - Decimal(now))
        terms[field] = back
    return changes, terms


def amended(po_id: str, changes: Mapping[str, Any], new: PurchaseOrderRequested) -> PurchaseOrderAmended:
    return PurchaseOrderAmended(po_request_id=po_id, changes=dict(changes), step_id=new.step_id,
                                effective_date=new.start_date)


def package_end(po_id: str, new: PurchaseOrderRequested, today: date) -> PurchaseOrderEndRequested:
    """R-F7: the plan has no service line for the package any more: it ends the day before the plan's care
    starts (today when the plan gives no start)."""
    end = day_before(new.start_date) if new.start_date is not None else today
    return PurchaseOrderEndRequested(po_request_id=po_id, end_date=end,
                                     reason=f"The support plan (step {new.step_id}) no longer has this service")


def ended(po_id: str, end_date: date, reason: str) -> PurchaseOrderEndRequested:
    return PurchaseOrderEndRequested(po_request_id=po_id, end_date=end_date, reason=reason)


def support_cancelled(step_type: str, step_id: str) -> str:
    """R-F7: why the order a cancelled purchasing step was opened for ends."""
    return f"The {step_type} step {step_id} this order was raised with was cancelled"


def duplicate_of(po_id: str) -> str:
    """R-F7: why an order raised again for a package another order carries ends."""
    return f"A duplicate of purchase order {po_id}, which carries the package"


def case_end(po_id: str, today: date) -> PurchaseOrderEndRequested:
    """R-F7: the case closed: each live order ends on the day of closure."""
    return PurchaseOrderEndRequested(po_request_id=po_id, end_date=today, reason=CASE_CLOSED_REASON)


# --- interim homecare → PVI (R-F2) -------------------------------------------------------------------


def lack_of_provision_key(po_id: str) -> str:
    return f"{LACK_OF_PROVISION_TIMER}:{po_id}"


def lack_of_provision_due(requested_at: datetime) -> datetime:
    """R-F2: when a brokerage order with no offer puts the person on the lack-of-provision list."""
    return requested_at + LACK_OF_PROVISION_AFTER


def watches_provision(kind: str) -> bool:
    """R-F2: brokerage sources a provider for these orders, so 48 hours without an offer counts."""
    return kind == "brokerage"


def pvi_order(confirmed: PurchaseOrderRequested, *, provider: str, start_date: date, requested_by: str,
              rate: Decimal | None = None) -> Order:
    """R-F2, R-F6: the long-term (PVI) order once brokerage confirms a provider and start date for `confirmed`,
    costed at the provider's rate where brokerage gives it (the units and weeks are the plan's)."""
    source_key = f"pvi:{confirmed.po_request_id}"
    notes = [f"PVI provider confirmed by brokerage for purchase order {confirmed.po_request_id};"
             " the brokerage and interim homecare orders end the day before the start date."]
    update: dict[str, Any] = {"po_request_id": po_request_id(source_key), "kind": "long_term_homecare",
                              "provider": provider, "start_date": start_date, "requested_by": requested_by}
    unit = confirmed.unit or ("hour" if confirmed.weekly_hours is not None else None)
    units = as_decimal(confirmed.units_per_week if confirmed.unit else confirmed.weekly_hours)
    weeks = as_decimal(confirmed.weeks_per_year)
    if rate is None:
        notes.append("The provider's rate was not given: the requested rate stands.")
    elif unit is None or units is None:
        notes.append(f"The provider's rate is £{rate_string(rate)}; the order's lines are in different units,"
                     " so its costs are as requested.")
    else:
        weekly = weekly_cost(rate, units)
        costs = Costs(weekly_hours=units, hourly_rate=rate, weeks_per_year=weeks, weekly_cost=weekly,
                      annual_cost=annual_cost(weekly, weeks) if weeks is not None else None, unit=unit)
        update |= {"weekly_cost": money_string(costs.weekly_cost), "annual_cost": money_string(costs.annual_cost),
                   **unit_fields(costs)}
        if confirmed.unit_rate or confirmed.hourly_rate:
            notes.append(f"Provider's rate £{rate_string(rate)} per {unit}"
                         f" (requested £{confirmed.unit_rate or confirmed.hourly_rate}).")
    update["note"] = " ".join(notes)
    event = confirmed.model_copy(update=update)
    return Order(source_key, PurchaseOrderRequested.model_validate(event.model_dump()))


def day_before(start_date: date) -> date:
    """R-F6: an order replaced by one starting on `start_date` ends the day before, so never both are live."""
    return start_date - timedelta(days=1)


def interim_end(interim_po_id: str, *, provider: str, start_date: date) -> PurchaseOrderEndRequested:
    """R-F2, R-F6: the interim homecare order ends the day before the PVI provider starts."""
    return PurchaseOrderEndRequested(po_request_id=interim_po_id, end_date=day_before(start_date),
                                     reason=pvi_starts(provider, start_date))


def pvi_starts(provider: str, start_date: date) -> str:
    """R-F2: why an interim homecare order ends."""
    return f"PVI provider {provider} starts on {start_date.isoformat()}"


def brokerage_end(brokerage_po_id: str, *, provider: str, start_date: date) -> PurchaseOrderEndRequested:
    """R-F6: the brokerage order is replaced by the long-term one: it ends the day before that starts."""
    return PurchaseOrderEndRequested(
        po_request_id=brokerage_po_id, end_date=day_before(start_date),
        reason=f"Replaced by the long-term order with PVI provider {provider} from {start_date.isoformat()}")


def confirms_pvi(kind: str) -> bool:
    """R-F2: a provider confirmed for a brokerage order is the PVI placement."""
    return kind == "brokerage"
