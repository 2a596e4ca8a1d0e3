"""Pure workflow rules: state changes as functions of state + command, no I/O, no clock."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from services.workflow import purchasing
from services.workflow.pack import (
    CARERS_FIELD,
    CARERS_TABLE,
    YOUNG_CARER_REFERRAL,
    Field,
    NextActionDefinition,
    PackRegistry,
    StepDefinition,
    costed_fields,
)
from shared import bounds
from shared.actor import Actor
from shared.commands import workflow as cmd
from shared.commands.base import Reason, Refused
from shared.events.workflow import (
    Assignee,
    CaseClosed,
    FinishedAction,
    NextActionAdded,
    NextActionRemoved,
    NextActionSent,
    NotificationSent,
    OpenStepListed,
    PersonDeathRecorded,
    RequestCompleted,
    RequestRaised,
    StepAssigned,
    StepCancelled,
    StepCreated,
    StepDue,
    StepFinished,
    StepFormAdded,
    StepPrepopulatedRefreshed,
    StepRenewalDue,
    StepRescheduled,
    StepReturned,
    StepSaved,
    StepStarted,
    StepWarning,
    WorkflowStarted,
)

Priority = Literal["normal", "high", "urgent"]

# Team inbox of each first step of docs/contracts.md "Referral intake", used until the step's
# pack names a default team.
FIRST_STEP_TEAMS = {
    "WB Wellbeing Screening": "wellbeing-service-hub",
    "Adult Contact": "adult-front-door",
    "Adult Safeguarding Triage": "adult-safeguarding",
    "Adult Carer Triage": "adult-carers",
    "Child and Family Assessment and Plan": "children-response",
    "Significant Information on an Open Case": "children-response",
}

OPEN_STATES = frozenset({"incoming", "incomplete", "returned", "awaiting_authorisation"})
WORKING_STATES = frozenset({"incomplete", "returned", "awaiting_authorisation"})
MANAGER_ROLES = frozenset(
    {"senior_officer", "team_manager", "assistant_team_manager", "team_leader", "head_of_service"}
)
CLOSURE_GUARD = "case_closure_guard"
OTHER_WORKFLOW_CONTINUES = "No further action – other workflow continues"
# Dates (due dates, working days) are Europe/London; every timestamp is UTC.
LONDON = ZoneInfo("Europe/London")
FUTURE_WORK_TIMER = "future-work"
RENEWAL_TIMER = "renewal"
# R-K5: the named rule, and the face-to-face way forward its refusal names.
TWR_RULE = "two_twr_limit"
TWR_WAY_FORWARD = "Review Planning"
# R-K7: the named rule; the assessment it counts from, that assessment's date field, the days.
CIN_ROUTING_RULE = "cin_45_day_routing"
CIN_ASSESSMENT = "Child and Family Assessment and Plan"
CIN_DATE_FIELD = "date_assessment_started"
CIN_DAYS = 45
# R-K9, R-K10: the named rules.
CARERS_RULE = "carers_checklist"
SINGLE_CARERS_ASSESSMENT = "Single Carers Assessment"
BUDGET_RULE = "budget_costs"


# --- state ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workflow:
    """A chain of steps about one person (R-W1)."""

    workflow_id: str
    person_id: str
    origin: dict[str, Any]
    started_at: datetime
    started_by: str
    status: Literal["open", "closed"] = "open"


@dataclass(frozen=True)
class NextAction:
    """A next action added to a step (R-NA2); `created_step_id` once its step exists."""

    next_action_id: str
    action: str
    nfa: bool
    target_step_type: str | None
    assignee_kind: str  # worker | team | self | none
    assignee_id: str | None
    send_immediately: bool
    scheduled_date: date | None
    reason: str | None
    note: str | None
    priority: Priority
    added_by: str
    added_at: datetime
    created_step_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "next_action_id": self.next_action_id, "action": self.action, "nfa": self.nfa,
            "target_step_type": self.target_step_type, "assignee_kind": self.assignee_kind,
            "assignee_id": self.assignee_id, "send_immediately": self.send_immediately,
            "scheduled_date": self.scheduled_date.isoformat() if self.scheduled_date else None,
            "reason": self.reason, "note": self.note, "priority": self.priority,
            "added_by": self.added_by, "added_at": self.added_at.isoformat(),
            "created_step_id": self.created_step_id,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> NextAction:
        return cls(
            next_action_id=raw["next_action_id"], action=raw["action"], nfa=raw["nfa"],
            target_step_type=raw["target_step_type"], assignee_kind=raw["assignee_kind"],
            assignee_id=raw["assignee_id"], send_immediately=raw["send_immediately"],
            scheduled_date=date.fromisoformat(raw["scheduled_date"]) if raw["scheduled_date"] else None,
            reason=raw["reason"], note=raw["note"], priority=raw["priority"],
            added_by=raw["added_by"], added_at=datetime.fromisoformat(raw["added_at"]),
            created_step_id=raw.get("created_step_id"),
        )


@dataclass(frozen=True)
class Step:
    """One workflow step: its type, state, assignee and form values (R-W2, R-W3)."""

    step_id: str
    workflow_id: str
    person_id: str
    step_type: str
    pack_version: int
    state: str
    assignee_kind: Literal["worker", "team"]
    assignee_id: str
    priority: Priority
    created_at: datetime
    created_by: str
    provenance: dict[str, Any]
    due_date: date | None = None
    linked_person_id: str | None = None
    version: int = 1
    values: dict[str, Any] = field(default_factory=dict)
    completed_sections: tuple[int, ...] = ()
    next_actions: tuple[NextAction, ...] = ()
    forms: tuple[str, ...] = ()
    return_note: str | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None

    @property
    def assignee(self) -> Assignee:
        return Assignee(kind=self.assignee_kind, id=self.assignee_id)


@dataclass(frozen=True)
class Request:
    """A request or notification sent from a step (R-RQ1); a request is open until completed."""

    request_id: str
    step_id: str
    person_id: str
    name: str
    kind: Literal["request", "notification"]
    required: bool
    to_kind: Literal["worker", "team"]
    to_id: str
    note: str | None
    state: Literal["open", "completed", "returned", "cancelled", "sent"]
    sent_by: str
    sent_at: datetime
    completed_by: str | None = None
    completed_at: datetime | None = None
    completion_note: str | None = None


@dataclass(frozen=True)
class OtherStep:
    """A step of the same person, as case-level rules see it (R-K1, R-NA6)."""

    step_id: str
    step_type: str
    state: str
    pack_version: int
    workflow_id: str
    due_date: date | None = None


@dataclass(frozen=True)
class LatestStep:
    """The person's latest step of a type: when it was created (a London date) and its values."""

    step_id: str
    created_on: date
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CaseView:
    """What case-level rules need: the person's other steps and latest finished values.

    `finished_due_dates`: step type → due date of its latest finished step that had one (R-K4).
    """

    other_steps: tuple[OtherStep, ...] = ()
    finished_values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    workflow_ids: tuple[str, ...] = ()
    finished_due_dates: Mapping[str, date] = field(default_factory=dict)
    # R-K5: the step types of the person's finished steps, in the order they finished.
    finished_sequence: tuple[str, ...] = ()
    # R-K7: step type → the person's latest step of that type that was not cancelled.
    latest: Mapping[str, LatestStep] = field(default_factory=dict)
    # R-K9: of the carers the step lists (`carer_person_id`), those whose own record has a step
    # of a `carers_assessment` type (Carers Assessment, On-going Carer Review) not cancelled.
    carers_assessed: frozenset[str] = frozenset()


@dataclass(frozen=True)
class History:
    """One line of a step's history: who, when, what (R-W2 audit)."""

    step_id: str
    at: datetime
    actor: str
    what: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """Everything a decision may read besides the step: time, actor, ids, packs, person, case."""

    now: datetime
    actor: Actor
    ids: Iterator[str]
    packs: PackRegistry
    person: Mapping[str, Any] | None = None
    case: CaseView = CaseView()

    @property
    def today(self) -> date:
        """The date in Europe/London at `now` (dates are local, timestamps UTC)."""
        return london_date(self.now)


@dataclass(frozen=True)
class Timer:
    """A `timer.set` the handler sends to the scheduler (owner workflow) for a step."""

    key: str
    due_at: datetime
    step_id: str
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """What a command decided: the changed step, new steps and requests, history and events."""

    events: tuple[BaseModel, ...]
    step: Step | None = None
    created: tuple[Step, ...] = ()
    workflows: tuple[Workflow, ...] = ()
    requests: tuple[Request, ...] = ()
    history: tuple[History, ...] = ()
    closed_workflow_ids: tuple[str, ...] = ()
    finished_future: tuple[Step, ...] = ()
    timers: tuple[Timer, ...] = ()
    cancelled_timers: tuple[str, ...] = ()


class RuleBroken(Refused):
    """A command broke one or more rules; `reasons` lists every one."""


def reason(code: str, message: str, **where: Any) -> Reason:
    return Reason(code=code, message=message, **where)


def _check(reasons: list[Reason]) -> None:
    if reasons:
        raise RuleBroken(reasons)


# --- dates and timers (Europe/London dates, UTC instants) --------------------------------------


def london_date(at: datetime) -> date:
    """The calendar date in Europe/London at an instant."""
    return at.astimezone(LONDON).date()


def start_of_day(day: date) -> datetime:
    """Midnight at the start of `day` in Europe/London, as a UTC instant (GMT or BST)."""
    return datetime.combine(day, time(0), LONDON).astimezone(UTC)


def add_months(day: date, months: int) -> date:
    """The same day `months` later; the 29th–31st clamp to the month's last day (29 Feb → 28 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    next_first = date(year + (month == 12), month % 12 + 1, 1)
    return date(year, month, min(day.day, (next_first - timedelta(days=1)).day))


def annual_review_date(
    today: date, *, previous_due: date | None = None, recorded: date | None = None, months: int = 12,
) -> date | None:
    """R-K4: the next review keeps the original annual date, never one counted from today.

    From the previous Future Work's due date (the review just done), the next is `months` later;
    else a recorded annual review date is the next one itself. Either way, a date already past
    rolls on by whole intervals from that anchor. None when there is nothing to keep.
    """
    if previous_due is not None:
        anchor, step = previous_due, 1
    elif recorded is not None:
        anchor, step = recorded, 0
    else:
        return None
    due = add_months(anchor, months * step)
    while due <= today:
        step += 1
        due = add_months(anchor, months * step)
    return due


def scheduled_window(start: date, window: tuple[int, int]) -> tuple[date, date]:
    """The first and last allowed dates, `window` days after `start`."""
    return start + timedelta(days=window[0]), start + timedelta(days=window[1])


def initial_review_window(care_start: date) -> tuple[date, date]:
    """R-S2: an initial review is due 4–6 weeks after new care starts."""
    return scheduled_window(care_start, (28, 42))


def next_renewal_date(opened_on: date, today: date, every_days: int) -> date:
    """R-K6: the first renewal date after `today`, every `every_days` from when the step opened."""
    done = max((today - opened_on).days, 0) // every_days
    return opened_on + timedelta(days=every_days * (done + 1))


def timer_key(kind: str, step_id: str) -> str:
    return f"{kind}:{step_id}"


def step_timer_keys(step_id: str) -> tuple[str, ...]:
    """Every timer a step may have; the handler cancels only those it actually set."""
    return (timer_key(FUTURE_WORK_TIMER, step_id), timer_key(RENEWAL_TIMER, step_id))


def future_work_timer(step: Step) -> Timer:
    """R-S1: fires at the start of the due date (Europe/London)."""
    assert step.due_date is not None
    return Timer(timer_key(FUTURE_WORK_TIMER, step.step_id), start_of_day(step.due_date), step.step_id,
                 FUTURE_WORK_TIMER, {"step_id": step.step_id, "due_date": step.due_date.isoformat()})


def renewal_timer(step: Step, opened_on: date, today: date, every_days: int) -> Timer:
    """R-K6: the next renewal of an open step, counted from the date it opened."""
    due = next_renewal_date(opened_on, today, every_days)
    return Timer(timer_key(RENEWAL_TIMER, step.step_id), start_of_day(due), step.step_id, RENEWAL_TIMER,
                 {"step_id": step.step_id, "opened_on": opened_on.isoformat(), "every_days": every_days,
                  "renewal_due_date": due.isoformat()})


def timers_of_new_step(ctx: Context, step: Step) -> list[Timer]:
    """Future work waits for its due date; an open step whose type renews gets its first renewal."""
    if step.state == "future":
        return [future_work_timer(step)]
    every = ctx.packs.step(step.step_type, step.pack_version).renewal_days
    if every and step.state in OPEN_STATES:
        return [renewal_timer(step, ctx.today, ctx.today, every)]
    return []


# --- referral intake -----------------------------------------------------------------------


@dataclass(frozen=True)
class ReferralToStart:
    """What an accepted referral tells the workflow service."""

    referral_id: str
    person_id: str
    workflow_id: str
    first_step_type: str
    urgency: Literal["urgent", "normal"]
    cared_for_person_id: str | None = None


def start_from_referral(
    referral: ReferralToStart, *, step_id: str, now: datetime, actor: str, pack_version: int,
    team: str | None = None,
) -> tuple[Workflow, Step]:
    """An accepted referral opens a workflow whose first step waits in the team's inbox."""
    workflow = Workflow(
        workflow_id=referral.workflow_id,
        person_id=referral.person_id,
        origin={"kind": "referral", "referral_id": referral.referral_id},
        started_at=now,
        started_by=actor,
    )
    step = Step(
        step_id=step_id,
        workflow_id=referral.workflow_id,
        person_id=referral.person_id,
        step_type=referral.first_step_type,
        pack_version=pack_version,
        state="incoming",
        assignee_kind="team",
        assignee_id=team or FIRST_STEP_TEAMS[referral.first_step_type],
        priority="urgent" if referral.urgency == "urgent" else "normal",
        created_at=now,
        created_by=actor,
        provenance={"rule": "referral intake", "referral_id": referral.referral_id,
                    "pack_version": pack_version},
        linked_person_id=referral.cared_for_person_id,
    )
    return workflow, step


# --- forms: prepopulation, carried sections, validation, mandatory fields ---------------------


def _person_value(person: Mapping[str, Any], path: str) -> Any:
    value: Any = person
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    if isinstance(value, Mapping):
        return ", ".join(str(v) for v in value.values() if v not in (None, "")) or None
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or None
    return value


def prepopulated(defn: StepDefinition, person: Mapping[str, Any], *, cogs: frozenset[str]) -> dict[str, Any]:
    """R-W5: the values of the step's cog fields of the given colours, from the person record."""
    return {
        f.key: _person_value(person, f.prepopulate_from)
        for section in defn.form_sections
        for f in section.fields
        if f.cog in cogs and f.prepopulate_from
    }


def carried_values(defn: StepDefinition, finished: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """R-W7: values of sections carried from the latest finished step of the earlier type."""
    values: dict[str, Any] = {}
    by_number = {s.number: s for s in defn.form_sections}
    for spec in defn.carried_sections:
        source = finished.get(spec.from_step_type, {})
        for number in range(spec.from_section, spec.to_section + 1):
            for f in by_number[number].fields:
                if f.key in source:
                    values[f.key] = source[f.key]
    # R-W8: a table with rows_from starts with one row per source row, system columns filled
    for section in defn.form_sections:
        for f in section.fields:
            if f.rows_from and isinstance(values.get(f.rows_from), list):
                system = [c.key for c in f.columns if c.system_generated]
                values[f.key] = [
                    {k: row.get(k) for k in system if k in row}
                    for row in values[f.rows_from] if isinstance(row, Mapping)
                ]
    return values


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _date_ok(value: Any, kind: type[date]) -> bool:
    if not isinstance(value, str):
        return False
    try:
        kind.fromisoformat(value)
    except ValueError:
        return False
    return True


def _number_problem(value: Any) -> str | None:
    number = purchasing.as_decimal(value)
    return "must be a number" if number is None else bounds.number_problem(number)


def _date_problem(value: Any) -> str | None:
    if not _date_ok(value, date):
        return "must be a date (YYYY-MM-DD)"
    return bounds.date_problem(date.fromisoformat(value))


def _datetime_problem(value: Any) -> str | None:
    """Issue #20: a date and time without an offset is Europe/London wall time; one in a DST gap never was."""
    if not _date_ok(value, datetime):
        return "must be a date and time (ISO 8601)"
    return bounds.local_time_problem(datetime.fromisoformat(value))


def value_problem(f: Field, value: Any) -> str | None:
    """Why a value does not fit its field, or None; null always clears a field."""
    if value is None:
        return None
    match f.type:
        case "text" | "textarea" | "person_ref":
            return None if isinstance(value, str) else "must be text"
        case "number":  # a decimal string ("16.05") keeps pence exact (R-K10)
            return _number_problem(value)
        case "bool":
            return None if isinstance(value, bool) else "must be true or false"
        case "date":
            return _date_problem(value)
        case "datetime":
            return _datetime_problem(value)
        case "select":
            return None if value in f.options else f"must be one of {list(f.options)}"
        case "multiselect":
            ok = isinstance(value, list) and all(v in f.options for v in value)
            return None if ok else f"must be a list of {list(f.options)}"
        case "table":
            if not isinstance(value, list) or not all(isinstance(r, Mapping) for r in value):
                return "must be a list of rows"
            return None
    return None


def _writable_fields(defn: StepDefinition, forms: Sequence[str]) -> dict[str, tuple[int | None, Field, bool]]:
    """key → (section, field, read only) of the step's form and its added optional forms."""
    fields: dict[str, tuple[int | None, Field, bool]] = {}
    for section in defn.form_sections:
        for f in section.fields:
            fields[f.key] = (section.number, f, section.read_only)
    for form in defn.optional_forms:
        if form.name in forms:
            for section in form.sections:
                for f in section.fields:
                    fields.setdefault(f.key, (None, f, section.read_only))
    return fields


def _form_field_keys(defn: StepDefinition) -> dict[str, str]:
    return {f.key: form.name for form in defn.optional_forms for s in form.sections for f in s.fields}


def save_problems(
    defn: StepDefinition, step: Step, values: Mapping[str, Any], actor: Actor
) -> list[Reason]:
    """Every reason the values cannot be saved (R-W4, R-W5, R-W6, R-W7, R-W8, R-W9)."""
    fields = _writable_fields(defn, step.forms)
    form_keys = _form_field_keys(defn)
    reasons: list[Reason] = []
    for key, value in values.items():
        if key not in fields:
            if key in form_keys:
                reasons.append(reason("form_not_added", f"add the form {form_keys[key]!r} before"
                                      f" writing {key!r} (R-W9)", field=key))
            else:
                reasons.append(reason("unknown_field", f"{step.step_type} has no field {key!r}",
                                      field=key))
            continue
        section, f, read_only = fields[key]
        where = {"field": key, "section": section}
        if read_only:
            reasons.append(reason("read_only", f"{f.label!r} is carried read-only from an earlier"
                                  " step (R-W7)", **where))
        elif f.cog == "blue":
            reasons.append(reason("read_only", f"{f.label!r} comes from the person record: change"
                                  " the record and refresh (R-W5)", **where))
        elif f.system_generated:
            reasons.append(reason("read_only", f"{f.label!r} is filled by the system (R-W6)", **where))
        elif f.owner_role and f.owner_role not in actor.roles:
            reasons.append(reason("role", f"only a {f.owner_role} may write {f.label!r} (R-W6)",
                                  **where))
        else:
            problem = value_problem(f, value)
            if problem:
                reasons.append(reason("invalid_value", f"{f.label!r} {problem}", **where))
            elif f.type == "table" and value:
                reasons += _row_problems(f, value, step.values.get(key), section)
    return reasons


def _row_problems(f: Field, rows: list[Mapping[str, Any]], before: Any, section: int | None) -> list[Reason]:
    columns = {c.key: c for c in f.columns}
    old = before if isinstance(before, list) else []
    reasons: list[Reason] = []
    if f.rows_from and len(rows) != len(old):
        reasons.append(reason("invalid_value", f"the rows of {f.label!r} come from an earlier step:"
                              " edit them, do not add or delete (R-W8)", field=f.key, section=section))
    for index, row in enumerate(rows):
        for key, value in row.items():
            at = f"{f.key}[{index}].{key}"
            column = columns.get(key)
            if column is None:
                reasons.append(reason("unknown_field", f"{f.label!r} has no column {key!r}",
                                      field=at, section=section))
                continue
            if column.system_generated:
                previous = old[index].get(key) if index < len(old) and isinstance(old[index], Mapping) else None
                if value != previous and key != "recorded_by":
                    reasons.append(reason("read_only", f"{column.label!r} is filled by the system",
                                          field=at, section=section))
                continue
            problem = value_problem(column, value)
            if problem:
                reasons.append(reason("invalid_value", f"{column.label!r} {problem}", field=at,
                                      section=section))
    return reasons


def _fill_system_columns(defn: StepDefinition, values: dict[str, Any], actor: Actor) -> dict[str, Any]:
    """System-generated columns: the recording worker of a new activity row (R-W8)."""
    fields = {f.key: f for s in defn.form_sections for f in s.fields}
    out = dict(values)
    for key, rows in values.items():
        f = fields.get(key)
        if f is None or f.type != "table" or not isinstance(rows, list):
            continue
        if any(c.key == "recorded_by" and c.system_generated for c in f.columns):
            out[key] = [{**row, "recorded_by": row.get("recorded_by") or actor.worker_id} for row in rows]
    return out


# --- budgets (R-K10) and other system-generated values (R-W6) ------------------------------------


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


# R-K10 inputs and their sensible ranges (issue #20: 1e308 hours is not a care package)
_COST_INPUT_LIMITS = (
    ("respite_weeks", purchasing.WEEKS_IN_YEAR, "weeks of respite must be between 0 and 52 (R-K10)"),
    ("hours_per_week", bounds.MAX_WEEKLY_HOURS, "hours a week must be between 0 and 168 (R-K10)"),
    ("weekly_hours", bounds.MAX_WEEKLY_HOURS, "hours a week must be between 0 and 168 (R-K10)"),
    ("hourly_rate", bounds.MAX_HOURLY_RATE, "an hourly rate must be between 0 and 10,000 (R-K10)"),
)


def budget_problems(defn: StepDefinition, values: Mapping[str, Any]) -> list[Reason]:
    """R-K10: respite weeks are taken out of 52, so between 0 and 52; hours a week and rates in sensible ranges."""
    if BUDGET_RULE not in defn.rules:
        return []
    reasons = _cost_input_problems(values, "")
    for table in _costed_tables(defn):
        rows = values.get(table.key)
        for index, row in enumerate(rows if isinstance(rows, list) else []):
            if isinstance(row, Mapping):
                reasons += _cost_input_problems(row, f"{table.key}[{index}].")
    return reasons


def _cost_input_problems(line: Mapping[str, Any], prefix: str) -> list[Reason]:
    reasons = []
    for key, most, message in _COST_INPUT_LIMITS:
        number = purchasing.as_decimal(line.get(key))
        if number is not None and not 0 <= number <= most:
            reasons.append(reason("invalid_value", message, field=f"{prefix}{key}"))
    return reasons


def budget_values(defn: StepDefinition, values: Mapping[str, Any]) -> dict[str, Any]:
    """R-K10: the system-generated costs of each costed row, the totals, and flat costs, pence exact."""
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
        costed = [{**row, **cost_line(row, weeks_generated=generated)} for row in rows if isinstance(row, Mapping)]
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
    address = _person_value(person, "address")
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
    for key, (_, f, read_only) in _writable_fields(defn, step.forms).items():
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


def _with_system(ctx: Context, step: Step, defn: StepDefinition) -> Step:
    fresh = system_values(ctx, step, defn)
    if all(step.values.get(k) == v for k, v in fresh.items()):
        return step
    return replace(step, values={**step.values, **fresh})


def missing_fields(defn: StepDefinition, step: Step) -> list[Reason]:
    """R-W4: every mandatory field still empty, by section, all at once."""
    sections = [(s.number, s) for s in defn.form_sections if not s.read_only]
    sections += [(None, s) for form in defn.optional_forms if form.name in step.forms for s in form.sections]
    return _missing_in(sections, step.values)


def _missing_in(sections: Sequence[tuple[int | None, Any]], values: Mapping[str, Any]) -> list[Reason]:
    reasons: list[Reason] = []
    for number, section in sections:
        for f in section.fields:
            if f.system_generated or f.cog == "blue":
                continue
            value = values.get(f.key)
            label = f"section {section.number} {section.title!r}" if number else f"form {section.title!r}"
            if f.mandatory and _empty(value):
                reasons.append(reason("missing_field", f"{f.label!r} in {label} is mandatory",
                                      section=number, field=f.key))
            if f.type == "table" and isinstance(value, list):
                reasons += _missing_in_rows(f, value, number)
    return reasons


def _missing_in_rows(f: Field, rows: list[Any], section: int | None) -> list[Reason]:
    reasons: list[Reason] = []
    seen: dict[str, set[Any]] = {}
    for index, row in enumerate(rows):
        row = row if isinstance(row, Mapping) else {}
        for column in f.columns:
            if not column.mandatory or column.system_generated:
                continue
            if column.once_per:
                group = seen.setdefault(column.key, set())
                key = row.get(column.once_per)
                if key in group:
                    continue  # R-W8: recorded once per group, on its first row
                group.add(key)
            if _empty(row.get(column.key)):
                reasons.append(reason("missing_field", f"{column.label!r} is mandatory in row"
                                      f" {index + 1} of {f.label!r}", section=section,
                                      field=f"{f.key}[{index}].{column.key}"))
    return reasons


# --- who may do what -------------------------------------------------------------------------


def _is_assignee(step: Step, actor: Actor) -> bool:
    if step.assignee_kind == "worker":
        return step.assignee_id == actor.worker_id
    return step.assignee_id in actor.team_ids


def may_work(step: Step, defn: StepDefinition, actor: Actor) -> bool:
    """The assignee (worker, or member of the team) or an authoriser of the step type."""
    return _is_assignee(step, actor) or bool(actor.roles & set(defn.authorisers))


def own_work(step: Step, actor: Actor, requests: Sequence[Request]) -> bool:
    """R-RQ4: the actor's own work: the step is assigned to them, or they sent its REQUIRED request."""
    if step.assignee_kind == "worker" and step.assignee_id == actor.worker_id:
        return True
    return any(r.required and r.kind == "request" and r.sent_by == actor.worker_id and r.state != "cancelled"
               for r in requests)


def authorise_problems(
    ctx: Context, step: Step, defn: StepDefinition, requests: Sequence[Request],
) -> list[Reason]:
    """R-RQ4..R-RQ6: who may authorise this step now.

    An authorising role of the step type (R-RQ5), never on one's own work (R-RQ4); except that
    a step type with `self_authorise` is authorised by its own assignee (R-RQ6 "green tick").
    """
    if defn.self_authorise and _is_assignee(step, ctx.actor):
        return []
    if not ctx.actor.roles & set(defn.authorisers):
        who = ", ".join(defn.authorisers) or "nobody"
        return [reason("role", f"only {who} may authorise a {step.step_type} (R-RQ5)")]
    if not defn.self_authorise and own_work(step, ctx.actor, requests):
        return [reason("own_work", f"no one authorises their own work: another {', '.join(defn.authorisers)}"
                       f" must authorise this {step.step_type} (R-RQ4)")]
    return []


def two_part(defn: StepDefinition) -> bool:
    """R-RQ7: the worker sends a required request and closes; an authoriser finishes."""
    return bool(defn.authorisers) and any(r.required and r.kind == "request" for r in defn.requests)


def _not_assignee(step: Step) -> Reason:
    return reason("not_assignee", f"this step is assigned to {step.assignee_kind} {step.assignee_id!r}")


def _state(step: Step, allowed: frozenset[str] | set[str], doing: str) -> list[Reason]:
    if step.state in allowed:
        return []
    if step.state == "incoming":
        return [reason("not_started", f"start the step before you {doing} (R-W2)")]
    return [reason("invalid_state", f"cannot {doing} a step that is {step.state}")]


def _bump(step: Step, ctx: Context, **changes: Any) -> Step:
    return replace(step, version=step.version + 1, updated_at=ctx.now, updated_by=ctx.actor.worker_id,
                   **changes)


def _history(step: Step, ctx: Context, what: str, **details: Any) -> History:
    return History(step.step_id, ctx.now, ctx.actor.worker_id, what, details)


def _base(step: Step, ctx: Context) -> dict[str, Any]:
    return {"step_id": step.step_id, "person_id": step.person_id, "actor": ctx.actor.worker_id,
            "version": step.version}


# --- creating steps ----------------------------------------------------------------------------


def new_step(
    ctx: Context, *, step_type: str, workflow_id: str, person_id: str, assignee: tuple[str, str],
    priority: Priority, provenance: dict[str, Any], due_date: date | None = None,
    source_values: Mapping[str, Mapping[str, Any]] | None = None, from_step: Step | None = None,
) -> tuple[Step, History]:
    """A step created as incoming (or future) work, prepopulated and with carried sections.

    A step type naming `cin_45_day_routing` is routed by R-K7; system-generated fields the
    system can fill now are filled (R-W6).
    """
    version = ctx.packs.latest_version(step_type)
    defn = ctx.packs.step(step_type, version)
    values = carried_values(defn, source_values if source_values is not None else ctx.case.finished_values)
    if ctx.person is not None:
        values.update(prepopulated(defn, ctx.person, cogs=frozenset({"blue", "yellow"})))
        note = "prepopulated from the person record"
    else:
        note = "person record unavailable: prepopulated fields left empty (refresh later)"
    state = "future" if due_date is not None and due_date > ctx.today else "incoming"
    assignee, routing = cin_routing(ctx, defn, assignee, due_date or ctx.today, from_step)
    if routing is not None:
        provenance = {**provenance, "routing": routing}
    step = Step(
        step_id=next(ctx.ids), workflow_id=workflow_id, person_id=person_id, step_type=step_type,
        pack_version=version, state=state, assignee_kind=assignee[0],  # type: ignore[arg-type]
        assignee_id=assignee[1], priority=priority, created_at=ctx.now, created_by=ctx.actor.worker_id,
        provenance={**provenance, "pack_version": version}, due_date=due_date,
        values=values, updated_at=ctx.now, updated_by=ctx.actor.worker_id,
    )
    step = replace(step, values={**values, **system_values(ctx, step, defn, acting=False)})
    return step, History(step.step_id, ctx.now, ctx.actor.worker_id, "prepopulated",
                         {"note": note, "fields": sorted(step.values)})


def assessment_started(ctx: Context, from_step: Step | None) -> date | None:
    """R-K7: when the person's Child and Family Assessment and Plan started: its
    `date_assessment_started`, else the date it was created. The creating step if it is one."""
    if from_step is not None and from_step.step_type == CIN_ASSESSMENT:
        values, created = from_step.values, london_date(from_step.created_at)
    elif CIN_ASSESSMENT in ctx.case.latest:
        latest = ctx.case.latest[CIN_ASSESSMENT]
        values, created = latest.values, latest.created_on
    else:
        return None
    return _date_value(values, CIN_DATE_FIELD) or created


def cin_routing(
    ctx: Context, defn: StepDefinition, assignee: tuple[str, str], on: date, from_step: Step | None,
) -> tuple[tuple[str, str], dict[str, Any] | None]:
    """R-K7: a team step of a type naming `cin_45_day_routing`, held within 45 days of the
    assessment, goes to the assessment's team (Response); after that, to the team it was
    given, or the step type's default team rather than the assessment's (Locality).
    Days are London calendar dates: day 45 is within, day 46 is not."""
    if CIN_ROUTING_RULE not in defn.rules or assignee[0] != "team":
        return assignee, None
    started = assessment_started(ctx, from_step)
    if started is None:
        return assignee, None
    response = ctx.packs.step(CIN_ASSESSMENT).default_team
    days = (on - started).days
    team = assignee[1]
    if days <= CIN_DAYS and response is not None:
        team = response
    elif team == response and defn.default_team is not None:
        team = defn.default_team
    return ("team", team), {"rule": "R-K7", "assessment_started": started.isoformat(),
                            "meeting_date": on.isoformat(), "days": days, "team": team}


def created_event(step: Step) -> StepCreated:
    return StepCreated(
        step_id=step.step_id, workflow_id=step.workflow_id, person_id=step.person_id,
        step_type=step.step_type, assignee=step.assignee, state=step.state,  # type: ignore[arg-type]
        priority=step.priority, due_date=step.due_date, linked_person_id=step.linked_person_id,
        pack_version=step.pack_version, provenance=step.provenance,
    )


# --- Future Work: one per person (R-K2), the annual date kept (R-K4), warnings (R-K3) -----------


def is_future_work(packs: PackRegistry, step_type: str | None, version: int | None = None) -> bool:
    """Whether the pack flags the step type as Future Work (R-K2)."""
    if step_type is None:
        return False
    try:
        return packs.step(step_type, version).is_future_work
    except KeyError:
        return False


def open_future_work(ctx: Context, *, excluding: str | None = None) -> OtherStep | None:
    """The person's Future Work still open or waiting (R-K2), other than `excluding`."""
    for other in ctx.case.other_steps:
        if other.step_id == excluding or other.state not in OPEN_STATES | {"future"}:
            continue
        if is_future_work(ctx.packs, other.step_type, other.pack_version):
            return other
    return None


def one_future_work(existing: OtherStep, **where: Any) -> Reason:
    """R-K2: the refusal names the existing Future Work, to allocate from it instead."""
    due = f", due {existing.due_date.isoformat()}" if existing.due_date else ""
    return reason("one_future_work", f"the person already has {existing.step_type!r} (step"
                  f" {existing.step_id}, {existing.state}{due}): allocate from it rather than"
                  " creating another (R-K2)", step_id=existing.step_id, **where)


def previous_future_work_due(ctx: Context, step: Step) -> date | None:
    """R-K4: the due date of the Future Work the review came from: this step's, else the latest finished."""
    if step.due_date is not None and is_future_work(ctx.packs, step.step_type, step.pack_version):
        return step.due_date
    dates = [d for t, d in ctx.case.finished_due_dates.items() if is_future_work(ctx.packs, t)]
    return max(dates, default=None)


def _date_value(values: Mapping[str, Any], key: str | None) -> date | None:
    value = values.get(key) if key else None
    if isinstance(value, str) and _date_ok(value, date):
        return date.fromisoformat(value)
    return None


def has_ongoing_services(ctx: Context, step: Step, defn: StepDefinition) -> bool:
    """R-K3: a finished step of an `ongoing_services` type (a support plan), or care packages on the record."""
    if defn.ongoing_services:
        return True
    if ctx.person is not None and ctx.person.get("care_packages"):
        return True
    return any(t in ctx.packs.step_types() and ctx.packs.step(t).ongoing_services
               for t in ctx.case.finished_values)


def future_work_warnings(
    ctx: Context, step: Step, defn: StepDefinition, *, continuing: bool,
) -> list[Reason]:
    """R-K3: the last open work of a person with ongoing services ends and no Future Work is left.

    `continuing`: the step's next actions create further work, so its workflow goes on. A case
    closure is meant to end everything and is not warned about.
    """
    if continuing or CLOSURE_GUARD in defn.rules:
        return []
    others = [o for o in ctx.case.other_steps
              if o.step_id != step.step_id and o.state in OPEN_STATES | {"future"}]
    if others or not has_ongoing_services(ctx, step, defn):
        return []
    return [reason("no_future_work", "this is the person's last open work and they have ongoing"
                   " services, but nothing leads to a Future Work: one of the workflows must lead to a"
                   " Future Work (R-K3)", step_id=step.step_id)]


def start_new(ctx: Context, command: cmd.StartNewStep, *, workflow_id: str) -> Decision:
    """R-W1: Start > New opens a new workflow; assigned to self it is started at once."""
    step_type = command.step_type
    if step_type not in ctx.packs.step_types():
        raise RuleBroken([reason("unknown_step_type", f"no pack defines step type {step_type!r}",
                                 field="step_type")])
    existing = open_future_work(ctx) if is_future_work(ctx.packs, step_type) else None
    if existing is not None:
        raise RuleBroken([one_future_work(existing, field="step_type")])
    _check(twr_limit(ctx, step_type, field="step_type"))
    target = command.assignee or cmd.Target(kind="worker", id=ctx.actor.worker_id)
    person_id = str(command.person_id)
    workflow = Workflow(workflow_id, person_id, {"kind": "start_new"}, ctx.now, ctx.actor.worker_id)
    step, prepop = new_step(
        ctx, step_type=step_type, workflow_id=workflow_id, person_id=person_id,
        assignee=(target.kind, target.id), priority="normal",
        provenance={"rule": "R-W1 start new", "action": None, "from_step_id": None},
    )
    events: list[BaseModel] = [
        WorkflowStarted(workflow_id=workflow_id, person_id=person_id, first_step_type=step_type,
                        origin="start_new"),
        created_event(step),
    ]
    history = [History(step.step_id, ctx.now, ctx.actor.worker_id, "step.created",
                       {"state": step.state, "provenance": step.provenance}), prepop]
    if target.kind == "worker" and target.id == ctx.actor.worker_id:
        step = replace(step, state="incomplete", version=2)
        events.append(StepStarted(**_base(step, ctx), assignee=step.assignee))
        history.append(_history(step, ctx, "step.started"))
    return Decision(events=tuple(events), created=(step,), workflows=(workflow,), history=tuple(history),
                    timers=tuple(timers_of_new_step(ctx, step)))


# --- the step lifecycle (R-W2..R-W9) -----------------------------------------------------------


def start(ctx: Context, step: Step, defn: StepDefinition) -> Decision:
    """R-W2: incoming → incomplete; a team member who starts a team step takes it."""
    reasons: list[Reason] = []
    if step.state not in ("incoming", "future"):
        reasons.append(reason("invalid_state", f"only incoming or future work can be started; this step is"
                              f" {step.state}"))
    if not _is_assignee(step, ctx.actor):
        reasons.append(_not_assignee(step))
    _check(reasons)
    new = _with_system(ctx, _bump(step, ctx, state="incomplete", assignee_kind="worker",
                                  assignee_id=ctx.actor.worker_id), defn)
    details: dict[str, Any] = {"assignee": new.assignee.model_dump()}
    timers: list[Timer] = []
    cancelled: tuple[str, ...] = ()
    if step.state == "future":
        # brought forward for earlier involvement (seed 001 §2.2): its due-date timer is withdrawn
        details["brought_forward_from"] = step.due_date.isoformat() if step.due_date else None
        cancelled = (timer_key(FUTURE_WORK_TIMER, step.step_id),)
        if defn.renewal_days:
            timers.append(renewal_timer(new, ctx.today, ctx.today, defn.renewal_days))
    return Decision(events=(StepStarted(**_base(new, ctx), assignee=new.assignee),), step=new,
                    history=(_history(new, ctx, "step.started", **details),), timers=tuple(timers),
                    cancelled_timers=cancelled)


def assign(ctx: Context, step: Step, defn: StepDefinition, to: cmd.Target) -> Decision:
    """R-W3: to a worker or a team, or on from a team to a worker."""
    reasons = _state(step, OPEN_STATES | {"future"}, "assign")
    if not (_is_assignee(step, ctx.actor) or ctx.actor.roles & (MANAGER_ROLES | set(defn.authorisers))):
        reasons.append(reason("role", "only the assignee, a member of the assigned team or a manager"
                              " may assign this step (R-W3)"))
    _check(reasons)
    new = _with_system(ctx, _bump(step, ctx, assignee_kind=to.kind, assignee_id=to.id), defn)
    event = StepAssigned(**_base(new, ctx), previous=step.assignee, assignee=new.assignee, state=new.state)
    return Decision(events=(event,), step=new, history=(_history(
        new, ctx, "step.assigned", previous=step.assignee.model_dump(), assignee=new.assignee.model_dump()),))


def save(ctx: Context, step: Step, defn: StepDefinition, command: cmd.SaveStep) -> Decision:
    """R-W4: partial saves at any time; "section completed" is a marker only."""
    reasons = _state(step, WORKING_STATES, "save")
    if not may_work(step, defn, ctx.actor):
        reasons.append(_not_assignee(step))
    reasons += save_problems(defn, step, command.values, ctx.actor)
    at_fault = {r.field for r in reasons}
    reasons += [r for r in budget_problems(defn, command.values) if r.field not in at_fault]
    numbers = {s.number for s in defn.form_sections}
    for number in command.completed_sections or ():
        if number not in numbers:
            reasons.append(reason("unknown_section", f"{step.step_type} has no section {number}",
                                  section=number))
    _check(reasons)
    values = {**step.values, **_fill_system_columns(defn, dict(command.values), ctx.actor)}
    values.update(budget_values(defn, values))  # R-K10
    completed = step.completed_sections
    if command.completed_sections is not None:
        completed = tuple(sorted(set(command.completed_sections)))
    new = _with_system(ctx, _bump(step, ctx, values=values, completed_sections=completed), defn)
    changes = value_changes(step.values, new.values)
    event = StepSaved(**_base(new, ctx), fields=sorted(command.values), completed_sections=list(completed),
                      changed_fields=[c["field"] for c in changes])
    return Decision(events=(event,), step=new, history=(_history(
        new, ctx, "step.saved", fields=sorted(command.values), completed_sections=list(completed),
        changes=changes),))


def value_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """#20: each field whose value a save changed, from what to what (for the step's history only).

    The values are personal data: they go to the step's own record, never to logs or events.
    """
    return [{"field": key, "from": before.get(key), "to": after.get(key)}
            for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]


def refresh_prepopulated(ctx: Context, step: Step, defn: StepDefinition) -> Decision:
    """R-W5: blue cog fields copied again from the record; yellow ones only where still empty."""
    reasons = _state(step, OPEN_STATES, "refresh")
    if not may_work(step, defn, ctx.actor):
        reasons.append(_not_assignee(step))
    if ctx.person is None:
        reasons.append(reason("person_record_unavailable", "the person record cannot be read now; try again"))
    _check(reasons)
    assert ctx.person is not None
    fresh = prepopulated(defn, ctx.person, cogs=frozenset({"blue"}))
    for key, value in prepopulated(defn, ctx.person, cogs=frozenset({"yellow"})).items():
        if _empty(step.values.get(key)):
            fresh[key] = value
    fresh.update(system_values(ctx, step, defn))
    changed = sorted(k for k, v in fresh.items() if step.values.get(k) != v)
    new = _bump(step, ctx, values={**step.values, **fresh})
    return Decision(events=(StepPrepopulatedRefreshed(**_base(new, ctx), fields=changed),), step=new,
                    history=(_history(new, ctx, "step.prepopulated_refreshed", fields=changed),))


def add_form(ctx: Context, step: Step, defn: StepDefinition, name: str) -> Decision:
    """R-W9: an optional form or letter of the step type."""
    reasons = _state(step, WORKING_STATES, "add a form to")
    if not may_work(step, defn, ctx.actor):
        reasons.append(_not_assignee(step))
    try:
        form = defn.form(name)
    except KeyError:
        reasons.append(reason("unknown_form", f"{step.step_type} has no optional form {name!r}", field="form"))
    else:
        if name in step.forms:
            reasons.append(reason("already_added", f"{name!r} is already on the step", field="form"))
    _check(reasons)
    new = _with_system(ctx, _bump(step, ctx, forms=(*step.forms, name)), defn)
    return Decision(events=(StepFormAdded(**_base(new, ctx), form=name, kind=form.kind),), step=new,
                    history=(_history(new, ctx, "step.form_added", form=name),))


# --- next actions (R-NA1..R-NA6) ------------------------------------------------------------


def _closure_in_progress(ctx: Context, step: Step) -> bool:
    for other in ctx.case.other_steps:
        if other.step_id == step.step_id or other.state not in OPEN_STATES:
            continue
        try:
            rules = ctx.packs.step(other.step_type, other.pack_version).rules
        except KeyError:
            continue
        if CLOSURE_GUARD in rules:
            return True
    return False


def _form_complete(defn: StepDefinition, step: Step, form: str) -> bool:
    if form not in step.forms:
        return False
    return not _missing_in([(None, s) for s in defn.form(form).sections], step.values)


def _action_problems(
    ctx: Context, step: Step, defn: StepDefinition, action: NextActionDefinition,
    command: cmd.AddNextAction,
) -> list[Reason]:
    reasons: list[Reason] = []
    roles = ctx.actor.roles
    if action.added_by_roles and not roles & set(action.added_by_roles):
        reasons.append(reason("role", f"only {', '.join(action.added_by_roles)} may add"
                              f" {action.action!r} (R-NA5)", field="action"))
    if action.allowed_when == "case_closure_in_progress" and not _closure_in_progress(ctx, step):
        reasons.append(reason("not_allowed_in_case_state", f"{action.action!r} needs an Adult Proposed"
                              " Case Closure or Adult Case Closure in Progress in current work (R-NA6)",
                              field="action"))
    if action.allowed_when == "no_case_closure_in_progress" and _closure_in_progress(ctx, step):
        reasons.append(reason("not_allowed_in_case_state", "a case closure is already in progress: use"
                              " 'Adult Case Closure Already Started (NFA)' (R-NA6)", field="action"))
    kind = action.assignee_kind
    given = command.assignee
    if kind == "none" and given is not None:
        reasons.append(reason("assignee_not_allowed", f"{action.action!r} is NFA and needs no assignee"
                              " (R-NA4)", field="assignee"))
    elif kind == "self" and given is not None and (given.kind, given.id) != ("worker", ctx.actor.worker_id):
        reasons.append(reason("assignee_kind", f"{action.action!r} is assigned to self ('Assign to me')"
                              " (R-NA5)", field="assignee"))
    elif kind in ("worker", "team") and given is not None and given.kind != kind:
        reasons.append(reason("assignee_kind", f"{action.action!r} goes to a {kind}, not a {given.kind}"
                              " (R-NA5)", field="assignee"))
    elif kind == "worker" and given is None:
        reasons.append(reason("assignee_required", f"{action.action!r} needs a worker to assign to",
                              field="assignee"))
    elif kind == "team" and given is None and action.default_team is None:
        reasons.append(reason("assignee_required", f"{action.action!r} needs a team to pass to",
                              field="assignee"))
    if command.send_immediately and action.send_immediately == "forbidden":
        reasons.append(reason("send_immediately_not_allowed", f"{action.action!r} cannot be sent"
                              " immediately (R-NA2)", field="send_immediately"))
    if not command.send_immediately and action.send_immediately == "required":
        reasons.append(reason("send_immediately_required", f"{action.action!r} must be sent immediately",
                              field="send_immediately"))
    if command.scheduled_date is not None:
        schedulable = action.scheduled_offset_days is not None or action.scheduled_window_days is not None
        if action.nfa or not schedulable:
            reasons.append(reason("scheduling_not_allowed", f"{action.action!r} cannot be scheduled"
                                  " (R-NA2)", field="scheduled_date"))
        elif command.send_immediately:
            reasons.append(reason("scheduling_not_allowed", "an action sent immediately cannot be"
                                  " scheduled", field="scheduled_date"))
        elif action.scheduled_window_days is not None:
            first, last = _window(ctx, step, action)
            if not first <= command.scheduled_date <= last:
                reasons.append(reason("outside_window", f"{action.action!r} is due"
                                      f" {action.scheduled_window_days[0]}–{action.scheduled_window_days[1]}"
                                      f" days after {action.window_from_field or 'today'}: between"
                                      f" {first.isoformat()} and {last.isoformat()} (R-S2)",
                                      field="scheduled_date"))
    if is_future_work(ctx.packs, action.target_step_type):
        reasons += _future_work_problems(ctx, step, action, command)
    queued = sum(1 for a in step.next_actions if a.created_step_id is None and a.target_step_type
                 and twr_limited(ctx.packs, a.target_step_type))
    reasons += twr_limit(ctx, action.target_step_type, pending=queued, field="action")
    if action.reasons and command.reason is not None and command.reason not in action.reasons:
        reasons.append(reason("invalid_reason", f"the reason must be one of {list(action.reasons)}",
                              field="reason"))
    if action.reason_required and command.reason is None:
        reasons.append(reason("reason_required", f"{action.action!r} needs a reason (R-NA2)",
                              field="reason"))
    if command.priority != "normal" and command.note is None:
        reasons.append(reason("note_required", "a priority other than normal needs a note (R-NA2)",
                              field="note"))
    if action.requires_form and not _form_complete(defn, step, action.requires_form):
        reasons.append(reason("form_required", f"{action.action!r} needs the form"
                              f" {action.requires_form!r} added and completed first (R-W9)",
                              field="action"))
    return reasons


def _window(ctx: Context, step: Step, action: NextActionDefinition) -> tuple[date, date]:
    assert action.scheduled_window_days is not None
    start = _date_value(step.values, action.window_from_field) or ctx.today
    return scheduled_window(start, action.scheduled_window_days)


def _annual_date(ctx: Context, step: Step, action: NextActionDefinition) -> date | None:
    """R-K4: the annual review date a Future Work created by this action must keep."""
    assert action.target_step_type is not None
    months = ctx.packs.step(action.target_step_type).review_interval_months
    if months is None:
        return None
    return annual_review_date(ctx.today, previous_due=previous_future_work_due(ctx, step),
                              recorded=_date_value(step.values, action.review_date_field), months=months)


def _future_work_problems(
    ctx: Context, step: Step, action: NextActionDefinition, command: cmd.AddNextAction,
) -> list[Reason]:
    """R-K2: no second Future Work; R-K4: another date than the annual review date needs a note."""
    reasons: list[Reason] = []
    existing = open_future_work(ctx, excluding=step.step_id)
    if existing is not None:
        reasons.append(one_future_work(existing, field="action"))
    pending = next((a for a in step.next_actions if a.created_step_id is None
                    and is_future_work(ctx.packs, a.target_step_type)), None)
    if pending is not None:
        reasons.append(reason("one_future_work", f"{pending.action!r} is already a next action of this"
                              " step: one Future Work per person (R-K2)", field="action",
                              step_id=step.step_id))
    annual = _annual_date(ctx, step, action)
    if (annual is not None and command.scheduled_date is not None and command.scheduled_date != annual
            and command.note is None):
        reasons.append(reason("note_required", f"the annual review date is {annual.isoformat()} (R-K4):"
                              " a different date needs a note saying why", field="note"))
    return reasons


def _resolve_assignee(action: NextAction) -> tuple[str, str]:
    """"Assign to me" is the worker who added the action, whoever later finishes the step (R-NA5)."""
    if action.assignee_kind == "self":
        return ("worker", action.added_by)
    assert action.assignee_id is not None
    return (action.assignee_kind, action.assignee_id)


def _create_from(ctx: Context, step: Step, action: NextAction, rule: str) -> tuple[Step, History]:
    assert action.target_step_type is not None
    sources = {**ctx.case.finished_values, step.step_type: step.values}
    due = action.scheduled_date
    return new_step(
        ctx, step_type=action.target_step_type, workflow_id=step.workflow_id, person_id=step.person_id,
        assignee=_resolve_assignee(action), priority=action.priority, due_date=due,
        provenance={"rule": rule, "action": action.action, "from_step_id": step.step_id,
                    "next_action_id": action.next_action_id, "from_pack_version": step.pack_version},
        source_values=sources, from_step=step,
    )


def add_next_action(ctx: Context, step: Step, defn: StepDefinition, command: cmd.AddNextAction) -> Decision:
    """R-NA2: an allowed action with its assignee, reason, note and priority; sent at once if asked."""
    reasons = _state(step, WORKING_STATES, "add a next action to")
    if not may_work(step, defn, ctx.actor):
        reasons.append(_not_assignee(step))
    try:
        action = defn.next_action(command.action)
    except KeyError:
        reasons.append(reason("unknown_action", f"{step.step_type} has no next action {command.action!r}",
                              field="action"))
        raise RuleBroken(reasons) from None
    reasons += _action_problems(ctx, step, defn, action, command)
    _check(reasons)
    assignee_kind, assignee_id = action.assignee_kind, None
    if command.assignee is not None:
        assignee_id = command.assignee.id
    elif action.assignee_kind == "team":
        assignee_id = action.default_team
    scheduled = command.scheduled_date
    if scheduled is None and not command.send_immediately and not action.nfa:
        if is_future_work(ctx.packs, action.target_step_type):
            scheduled = _annual_date(ctx, step, action)  # R-K4
        if scheduled is None and action.scheduled_window_days is not None:
            scheduled = _window(ctx, step, action)[0]  # R-S2: the start of the window
        if scheduled is None and action.scheduled_offset_days:
            scheduled = ctx.today + timedelta(days=action.scheduled_offset_days)
    added = NextAction(
        next_action_id=next(ctx.ids), action=action.action, nfa=action.nfa,
        target_step_type=action.target_step_type, assignee_kind=assignee_kind, assignee_id=assignee_id,
        send_immediately=command.send_immediately, scheduled_date=scheduled, reason=command.reason,
        note=command.note, priority=command.priority, added_by=ctx.actor.worker_id, added_at=ctx.now,
    )
    created: tuple[Step, ...] = ()
    history: list[History] = []
    events: list[BaseModel] = []
    timers: list[Timer] = []
    if command.send_immediately:
        target, prepop = _create_from(ctx, step, added, "R-NA3 send immediately")
        added = replace(added, created_step_id=target.step_id)
        created = (target,)
        timers = timers_of_new_step(ctx, target)
        history += [History(target.step_id, ctx.now, ctx.actor.worker_id, "step.created",
                            {"state": target.state, "provenance": target.provenance}), prepop]
    new = _bump(step, ctx, next_actions=(*step.next_actions, added))
    events.append(NextActionAdded(
        **_base(new, ctx), next_action_id=added.next_action_id, action=added.action, nfa=added.nfa,
        target_step_type=added.target_step_type, assignee=_assignee_of(added),
        send_immediately=added.send_immediately, scheduled_date=added.scheduled_date,
        reason=added.reason, priority=added.priority,
    ))
    if created:
        events += [NextActionSent(**_base(new, ctx), next_action_id=added.next_action_id,
                                  action=added.action, created_step_id=created[0].step_id),
                   created_event(created[0])]
    history.insert(0, _history(new, ctx, "next_action.added", next_action_id=added.next_action_id,
                               action=added.action, sent=created[0].step_id if created else None,
                               scheduled_date=scheduled.isoformat() if scheduled else None))
    return Decision(events=tuple(events), step=new, created=created, history=tuple(history),
                    timers=tuple(timers))


def _assignee_of(action: NextAction) -> Assignee | None:
    if action.assignee_kind in ("worker", "team") and action.assignee_id:
        return Assignee(kind=action.assignee_kind, id=action.assignee_id)  # type: ignore[arg-type]
    return None


def remove_next_action(ctx: Context, step: Step, defn: StepDefinition, next_action_id: str) -> Decision:
    """A next action can be removed until it has been sent."""
    reasons = _state(step, WORKING_STATES, "remove a next action from")
    if not may_work(step, defn, ctx.actor):
        reasons.append(_not_assignee(step))
    found = next((a for a in step.next_actions if a.next_action_id == next_action_id), None)
    if found is None:
        reasons.append(reason("not_found", "the step has no such next action", field="next_action_id"))
    elif found.created_step_id is not None:
        reasons.append(reason("already_sent", f"{found.action!r} was sent immediately and cannot be"
                              " removed", field="next_action_id"))
    _check(reasons)
    assert found is not None
    new = _bump(step, ctx, next_actions=tuple(a for a in step.next_actions if a is not found))
    return Decision(events=(NextActionRemoved(**_base(new, ctx), next_action_id=next_action_id,
                                              action=found.action),), step=new,
                    history=(_history(new, ctx, "next_action.removed", next_action_id=next_action_id,
                                      action=found.action),))


# --- requests and notifications (R-RQ1..R-RQ7) ------------------------------------------------


def send_request(
    ctx: Context, step: Step, defn: StepDefinition, requests: Sequence[Request],
    command: cmd.SendRequest | cmd.SendNotification, kind: Literal["request", "notification"],
) -> Decision:
    """R-RQ1: a request or notification of the step type to a team or worker, with a note."""
    reasons = _state(step, WORKING_STATES, f"send a {kind} from")
    if not may_work(step, defn, ctx.actor):
        reasons.append(_not_assignee(step))
    try:
        spec = defn.request(command.name)
    except KeyError:
        reasons.append(reason("unknown_request", f"{step.step_type} has no {kind} {command.name!r}",
                              field="name"))
        raise RuleBroken(reasons) from None
    if spec.kind != kind:
        reasons.append(reason("wrong_kind", f"{command.name!r} is a {spec.kind}, not a {kind}", field="name"))
    to = command.to
    if to is None and spec.default_to is not None and spec.default_to.kind in ("worker", "team"):
        to = cmd.Target(kind=spec.default_to.kind, id=spec.default_to.id)  # type: ignore[arg-type]
    if to is None:
        reasons.append(reason("recipient_required", f"say which team or worker {command.name!r} goes to",
                              field="to"))
    if kind == "request" and any(r.name == spec.name and r.state == "open" for r in requests):
        reasons.append(reason("already_open", f"{spec.name!r} was sent and is not completed yet",
                              field="name"))
    _check(reasons)
    assert to is not None
    request = Request(
        request_id=next(ctx.ids), step_id=step.step_id, person_id=step.person_id, name=spec.name,
        kind=kind, required=spec.required, to_kind=to.kind, to_id=to.id, note=command.note,
        state="open" if kind == "request" else "sent", sent_by=ctx.actor.worker_id, sent_at=ctx.now,
    )
    state = step.state
    if kind == "request" and spec.required and defn.authorisers:
        state = "awaiting_authorisation"  # R-RQ4/R-RQ7: the worker's part is done
    new = _bump(step, ctx, state=state)
    to_assignee = Assignee(kind=to.kind, id=to.id)
    event: BaseModel
    if kind == "request":
        event = RequestRaised(**_base(new, ctx), request_id=request.request_id, step_type=step.step_type,
                              name=spec.name, required=spec.required, to=to_assignee, note=command.note,
                              step_state=state)
    else:
        event = NotificationSent(**_base(new, ctx), request_id=request.request_id,
                                 step_type=step.step_type, name=spec.name, to=to_assignee,
                                 note=command.note)
    return Decision(events=(event,), step=new, requests=(request,), history=(_history(
        new, ctx, f"{kind}.sent", request_id=request.request_id, name=spec.name,
        to=to_assignee.model_dump()),))


def complete_request(
    ctx: Context, step: Step, request: Request, note: str | None,
) -> Decision:
    """The recipient completes a request; the sending step may then finish (R-RQ2)."""
    reasons: list[Reason] = []
    if request.kind != "request":
        reasons.append(reason("not_a_request", "a notification needs no completion", field="request_id"))
    elif request.state != "open":
        reasons.append(reason("not_open", f"the request is {request.state}", field="request_id",
                              request_id=request.request_id))
    recipient = (request.to_kind == "worker" and request.to_id == ctx.actor.worker_id) or (
        request.to_kind == "team" and request.to_id in ctx.actor.team_ids)
    if not recipient:
        reasons.append(reason("not_recipient", f"the request was sent to {request.to_kind}"
                              f" {request.to_id!r}", request_id=request.request_id))
    _check(reasons)
    done = replace(request, state="completed", completed_by=ctx.actor.worker_id, completed_at=ctx.now,
                   completion_note=note)
    new = _bump(step, ctx)
    return Decision(
        events=(RequestCompleted(**_base(new, ctx), request_id=request.request_id, name=request.name,
                                 note=note),),
        step=new, requests=(done,),
        history=(_history(new, ctx, "request.completed", request_id=request.request_id,
                          name=request.name),))


# --- finishing, authorising, returning, cancelling --------------------------------------------


def closure_blockers(ctx: Context, step: Step, defn: StepDefinition) -> list[Reason]:
    """R-K1: a closure step cannot finish while any other step of the person is open."""
    if CLOSURE_GUARD not in defn.rules:
        return []
    return [
        reason("open_step", f"{other.step_type!r} is still {other.state}: the case cannot close while"
               f" it is open; finish it, or use '{OTHER_WORKFLOW_CONTINUES}' (R-K1)",
               step_id=other.step_id)
        for other in ctx.case.other_steps
        if other.step_id != step.step_id and other.state in OPEN_STATES
    ]


def finish_blockers(
    ctx: Context, step: Step, defn: StepDefinition, requests: Sequence[Request],
    *, authorising: bool = False, check_actor: bool = True,
) -> list[Reason]:
    """Every reason the step cannot finish now (R-W4, R-NA1, R-RQ2, R-RQ3, R-RQ7, R-K1)."""
    reasons = _state(step, WORKING_STATES, "finish")
    if check_actor:
        if authorising:
            reasons += authorise_problems(ctx, step, defn, requests)
        elif two_part(defn) and not ctx.actor.roles & set(defn.authorisers):
            reasons.append(reason("role", f"a {', '.join(defn.authorisers)} finishes a {step.step_type}:"
                                  " send the required request and close the step (R-RQ7)"))
        elif two_part(defn):  # the authoriser signs it off by finishing: never their own work (R-RQ4)
            reasons += authorise_problems(ctx, step, defn, requests)
        elif not may_work(step, defn, ctx.actor):
            reasons.append(_not_assignee(step))
    missing = missing_fields(defn, step)
    reasons += missing
    if not step.next_actions:
        reasons.append(reason("no_next_action", "add at least one next action before finishing (R-NA1)"))
    for added in step.next_actions:
        spec = next((a for a in defn.next_actions if a.action == added.action), None)
        if spec and spec.requires_form and not _form_complete(defn, step, spec.requires_form):
            reasons.append(reason("form_required", f"{added.action!r} needs the form"
                                  f" {spec.requires_form!r} completed (R-W9)"))
    for request in requests:
        if request.kind == "request" and request.state == "open":
            reasons.append(reason("open_request", f"the request {request.name!r} sent to"
                                  f" {request.to_kind} {request.to_id!r} is not completed (R-RQ2)",
                                  request_id=request.request_id))
    for spec in defn.requests:
        sent = {r.state for r in requests if r.name == spec.name}
        required = spec.required or (spec.required_when is not None and step.values.get(spec.required_when) is True)
        if required and not sent & {"completed", "open"}:  # an open one is reported above (R-F3: required_when)
            reasons.append(reason("required_request", f"the REQUIRED request {spec.name!r} must be"
                                  " sent and completed (R-RQ3)"))
    reasons += closure_blockers(ctx, step, defn)
    pending = [a for a in step.next_actions if not a.nfa and a.created_step_id is None]
    if any(is_future_work(ctx.packs, a.target_step_type) for a in pending):
        existing = open_future_work(ctx, excluding=step.step_id)
        if existing is not None:  # created since the action was added (R-K2)
            reasons.append(one_future_work(existing))
    earlier = 0
    for added in pending:  # R-K5: finished since the action was added
        if twr_limited(ctx.packs, added.target_step_type):
            reasons += twr_limit(ctx, added.target_step_type, pending=earlier)
            earlier += 1
    reported = {r.field for r in missing}
    reasons += [r for r in carers_blockers(ctx, step, defn, requests) if r.field not in reported]
    return reasons


# --- R-K9 carers checklist -------------------------------------------------------------------


def listed_carers(step: Step, defn: StepDefinition) -> tuple[str, ...]:
    """R-K9: the carers' own record ids the checklist lists, for the handler to look up."""
    if CARERS_RULE not in defn.rules:
        return ()
    rows = step.values.get(CARERS_TABLE)
    ids = [row.get("carer_person_id") for row in rows if isinstance(row, Mapping)] if isinstance(rows, list) else []
    return tuple(sorted({i for i in ids if isinstance(i, str) and i}))


def carers_assessment_types(packs: PackRegistry) -> tuple[str, ...]:
    """R-K9: the step types that are a carer's own assessment (pack flag `carers_assessment`)."""
    return tuple(sorted(t for t in packs.step_types() if packs.step(t).carers_assessment))


def carers_blockers(
    ctx: Context, step: Step, defn: StepDefinition, requests: Sequence[Request],
) -> list[Reason]:
    """R-K9: for each carer row: offered yes/no; declined → a reason; accepted → joint or single;
    single → a carer's assessment on the carer's own record; a young carer → the referral to
    children's services sent. All at once."""
    if CARERS_RULE not in defn.rules:
        return []
    section = next((s.number for s in defn.form_sections for f in s.fields if f.key == CARERS_TABLE), None)
    raw = step.values.get(CARERS_TABLE)
    rows = [r if isinstance(r, Mapping) else {} for r in raw] if isinstance(raw, list) else []
    has = step.values.get(CARERS_FIELD)
    reasons: list[Reason] = []

    def block(message: str, at: str) -> None:
        reasons.append(reason("carers_checklist", f"{message} (R-K9)", section=section, field=at))

    if has is True and not rows:
        block("the person has informal carers: add each carer's details", CARERS_TABLE)
    if has is False and rows:
        block("the person is recorded as having no informal carers, yet carers are listed", CARERS_FIELD)
    assessed = ", ".join(carers_assessment_types(ctx.packs)) or "carer's assessment"
    young: list[str] = []
    for index, row in enumerate(rows):
        at = f"{CARERS_TABLE}[{index}]."
        name = str(row.get("carer_name") or f"the carer in row {index + 1}")
        offered, accepted, kind = row.get("assessment_offered"), row.get("offer_accepted"), row.get("assessment_type")
        if not isinstance(offered, bool):
            block(f"say whether a carer's assessment was offered to {name}", at + "assessment_offered")
        elif offered and not isinstance(accepted, bool):
            block(f"say whether {name} accepted the offer of a carer's assessment", at + "offer_accepted")
        elif offered and accepted is False and _empty(row.get("reason_not_accepted")):
            block(f"{name} declined a carer's assessment: give the reason", at + "reason_not_accepted")
        elif offered and accepted and _empty(kind):
            block(f"{name} accepted a carer's assessment: say whether joint or single", at + "assessment_type")
        elif offered and accepted and kind == SINGLE_CARERS_ASSESSMENT:
            carer = row.get("carer_person_id")
            if _empty(carer):
                block(f"a single carer's assessment for {name} is on the carer's own record: link it",
                      at + "carer_person_id")
            elif carer not in ctx.case.carers_assessed:
                block(f"a single carer's assessment for {name} needs a separate {assessed} on the carer's"
                      " own record", at + "carer_person_id")
        if row.get("young_carer") is True:
            young.append(name)
    sent = any(r.name == YOUNG_CARER_REFERRAL and r.state in ("open", "completed") for r in requests)
    if young and not sent:
        reasons.append(reason("young_carer_referral", f"{', '.join(young)}: a young carer needs the"
                              f" {YOUNG_CARER_REFERRAL!r} request sent (R-K9)", section=section,
                              field=CARERS_TABLE))
    return reasons


# --- R-K5 no third Telephone Wellbeing Review in a row ----------------------------------------


def twr_limited(packs: PackRegistry, step_type: str | None) -> bool:
    """Whether the step type names the `two_twr_limit` rule (R-K5)."""
    if step_type is None:
        return False
    try:
        return TWR_RULE in packs.step(step_type).rules
    except KeyError:
        return False


def _is_review(packs: PackRegistry, step_type: str) -> bool:
    try:
        return packs.step(step_type).review
    except KeyError:
        return False


def twr_in_a_row(ctx: Context) -> int:
    """R-K5: the person's limited reviews in a row: the finished ones since the last other review
    (a Planned Short Review or Assessment Review resets the count), and any still open or waiting."""
    run = 0
    for step_type in ctx.case.finished_sequence:
        if twr_limited(ctx.packs, step_type):
            run += 1
        elif _is_review(ctx.packs, step_type):
            run = 0
    waiting = sum(1 for o in ctx.case.other_steps
                  if o.state in OPEN_STATES | {"future"} and twr_limited(ctx.packs, o.step_type))
    return run + waiting


def twr_limit(ctx: Context, step_type: str | None, *, pending: int = 0, **where: Any) -> list[Reason]:
    """R-K5: a third review of a `two_twr_limit` type in a row is refused; the way forward is named."""
    if not twr_limited(ctx.packs, step_type):
        return []
    count = twr_in_a_row(ctx) + pending
    if count < 2:
        return []
    forward = (f" use {TWR_WAY_FORWARD!r} for a face-to-face review" if TWR_WAY_FORWARD in ctx.packs.step_types()
               else " a face-to-face review is needed")
    return [reason("two_twr_limit", f"the person has had {count} {step_type}s in a row: no more than 2;"
                   f"{forward} (R-K5)", **where)]


def finish_warnings(ctx: Context, step: Step, defn: StepDefinition) -> list[Reason]:
    """What finishing now would warn about, without stopping it (R-K3)."""
    continuing = any(not a.nfa for a in step.next_actions)
    return future_work_warnings(ctx, step, defn, continuing=continuing)


def finish(
    ctx: Context, step: Step, defn: StepDefinition, requests: Sequence[Request],
    *, authorising: bool = False,
) -> Decision:
    """R-NA3: finished and locked; each action not yet sent creates its step; a closure closes."""
    _check(finish_blockers(ctx, step, defn, requests, authorising=authorising))
    warnings = finish_warnings(ctx, step, defn)
    created: list[Step] = []
    history: list[History] = []
    actions: list[NextAction] = []
    timers: list[Timer] = []
    for added in step.next_actions:
        if not added.nfa and added.created_step_id is None:
            target, prepop = _create_from(ctx, step, added, "R-NA3 next action on finish")
            created.append(target)
            timers += timers_of_new_step(ctx, target)
            history += [History(target.step_id, ctx.now, ctx.actor.worker_id, "step.created",
                                {"state": target.state, "provenance": target.provenance}), prepop]
            added = replace(added, created_step_id=target.step_id)
        actions.append(added)
    new = _with_system(ctx, _bump(step, ctx, state="finished", next_actions=tuple(actions)), defn)
    what = "step.authorised_and_finished" if authorising else "step.finished"
    history.insert(0, _history(new, ctx, what, next_actions=[a.action for a in actions],
                               **({"warnings": [w.code for w in warnings]} if warnings else {})))
    warned = sorted({ctx.actor.worker_id, *([step.assignee_id] if step.assignee_kind == "worker" else [])}
                    ) if warnings else []
    events: list[BaseModel] = [StepFinished(
        **_base(new, ctx), workflow_id=step.workflow_id, step_type=step.step_type, authorised=authorising,
        next_actions=[FinishedAction(
            next_action_id=a.next_action_id, action=a.action, nfa=a.nfa,
            target_step_type=a.target_step_type,
            assignee=_assignee_of(a) if a.assignee_kind != "self" else Assignee(kind="worker", id=a.added_by),
            reason=a.reason, created_step_id=a.created_step_id, sent_immediately=a.send_immediately,
        ) for a in actions],
        warnings=[StepWarning(code=w.code, message=w.message, step_id=w.step_id) for w in warnings],
        warned_worker_ids=warned,
    )]
    events += [created_event(s) for s in created]
    closed: tuple[str, ...] = ()
    if CLOSURE_GUARD in defn.rules and all(a.nfa for a in actions):
        closed = tuple(sorted({*ctx.case.workflow_ids, step.workflow_id}))
        events.append(CaseClosed(person_id=step.person_id, closed_by_step_id=step.step_id,
                                 actor=ctx.actor.worker_id, workflow_ids=list(closed)))
        history.append(_history(new, ctx, "case.closed", workflow_ids=list(closed)))
    return Decision(events=tuple(events), step=new, created=tuple(created), history=tuple(history),
                    closed_workflow_ids=closed, timers=tuple(timers),
                    cancelled_timers=step_timer_keys(step.step_id))


def return_step(ctx: Context, step: Step, defn: StepDefinition, requests: Sequence[Request], note: str) -> Decision:
    """R-RQ4: a manager returns the step with a note; its worker re-sends the required request."""
    reasons = _state(step, {"incomplete", "awaiting_authorisation"}, "return")
    if not ctx.actor.roles & (set(defn.authorisers) | MANAGER_ROLES):
        reasons.append(reason("role", "only a manager or an authoriser of the step may return it (R-RQ4)"))
    _check(reasons)
    closed = tuple(
        replace(r, state="returned", completed_by=ctx.actor.worker_id, completed_at=ctx.now,
                completion_note=note)
        for r in requests if r.state == "open" and r.required
    )
    new = _bump(step, ctx, state="returned", return_note=note)
    return Decision(events=(StepReturned(**_base(new, ctx), note=note, assignee=new.assignee),), step=new,
                    requests=closed, history=(_history(new, ctx, "step.returned", note=note),))


def cancel(ctx: Context, step: Step, defn: StepDefinition, requests: Sequence[Request], why: str) -> Decision:
    """R-W2: cancelled with a reason; its open requests are withdrawn."""
    reasons = _state(step, OPEN_STATES | {"future"}, "cancel")
    if step.state == "incoming":
        reasons = []
    if not (may_work(step, defn, ctx.actor) or ctx.actor.roles & MANAGER_ROLES):
        reasons.append(_not_assignee(step))
    _check(reasons)
    withdrawn = tuple(replace(r, state="cancelled") for r in requests if r.state == "open")
    new = _bump(step, ctx, state="cancelled")
    return Decision(events=(StepCancelled(**_base(new, ctx), reason=why),), step=new, requests=withdrawn,
                    history=(_history(new, ctx, "step.cancelled", reason=why),),
                    cancelled_timers=step_timer_keys(step.step_id))


def record_death(ctx: Context, command: cmd.RecordDeath, steps: Sequence[Step]) -> Decision:
    """R-K8: future work closed with an NFA and a reason; steps still open listed for the manager."""
    if command.date_of_death > ctx.today:
        raise RuleBroken([reason("invalid_value", "the date of death cannot be in the future",
                                 field="date_of_death")])
    closed: list[Step] = []
    history: list[History] = []
    for s in steps:
        # waiting work, and Future Work (R-K2) that fell due or was started but is still open
        future_work = s.state in OPEN_STATES and is_future_work(ctx.packs, s.step_type, s.pack_version)
        if s.state != "future" and not future_work:
            continue
        nfa = NextAction(
            next_action_id=next(ctx.ids), action="NFA – person has died", nfa=True,
            target_step_type=None, assignee_kind="none", assignee_id=None, send_immediately=False,
            scheduled_date=None, reason=f"Person died on {command.date_of_death.isoformat()}",
            note=None, priority="normal", added_by=ctx.actor.worker_id, added_at=ctx.now,
        )
        done = _bump(s, ctx, state="finished", next_actions=(nfa,))
        closed.append(done)
        history.append(_history(done, ctx, "step.finished", reason=nfa.reason, rule="R-K8"))
    event = PersonDeathRecorded(
        person_id=str(command.person_id), date_of_death=command.date_of_death, actor=ctx.actor.worker_id,
        closed_future_step_ids=[s.step_id for s in closed],
        open_steps=[OpenStepListed(step_id=s.step_id, step_type=s.step_type, state=s.state)
                    for s in steps if s.state in OPEN_STATES and s.step_id not in {c.step_id for c in closed}],
    )
    return Decision(events=(event,), finished_future=tuple(closed), history=tuple(history),
                    cancelled_timers=tuple(k for s in closed for k in step_timer_keys(s.step_id)))


# --- future work falling due, rescheduling, renewals (R-S1, R-K6) ---------------------------------


def reschedule(ctx: Context, step: Step, defn: StepDefinition, command: cmd.RescheduleStep) -> Decision:
    """R-S1: future work moves to another due date (its timer moves); due by today it is incoming now."""
    reasons = [] if step.state == "future" else [
        reason("invalid_state", f"only future work can be rescheduled; this step is {step.state}")]
    if not (_is_assignee(step, ctx.actor) or ctx.actor.roles & (MANAGER_ROLES | set(defn.authorisers))):
        reasons.append(reason("role", "only the assignee, a member of the assigned team or a manager may"
                              " reschedule this step"))
    _check(reasons)
    due = command.due_date
    state = "future" if due > ctx.today else "incoming"
    new = _bump(step, ctx, due_date=due, state=state)
    timers: tuple[Timer, ...] = ()
    cancelled: tuple[str, ...] = ()
    if state == "future":
        timers = (future_work_timer(new),)  # same key: the scheduler moves it
    else:
        cancelled = (timer_key(FUTURE_WORK_TIMER, step.step_id),)
        timers = tuple(timers_of_new_step(ctx, new))
    event = StepRescheduled(**_base(new, ctx), step_type=step.step_type, assignee=new.assignee,
                            previous_due_date=step.due_date, due_date=due, state=state,  # type: ignore[arg-type]
                            note=command.note)
    return Decision(events=(event,), step=new, timers=timers, cancelled_timers=cancelled, history=(_history(
        new, ctx, "step.rescheduled", previous_due_date=step.due_date.isoformat() if step.due_date else None,
        due_date=due.isoformat(), state=state, note=command.note),))


def timer_due(ctx: Context, step: Step, kind: str, payload: Mapping[str, Any]) -> Decision:
    """A timer the workflow set fell due: future work becomes incoming (R-S1), or a renewal (R-K6)."""
    if kind == FUTURE_WORK_TIMER:
        if step.state != "future":
            return Decision(events=())  # started, rescheduled or closed meanwhile
        new = _bump(step, ctx, state="incoming")
        event = StepDue(**_base(new, ctx), workflow_id=step.workflow_id, step_type=step.step_type,
                        assignee=new.assignee, priority=new.priority, due_date=new.due_date)
        return Decision(events=(event,), step=new, timers=tuple(timers_of_new_step(ctx, new)),
                        history=(_history(new, ctx, "step.due", due_date=new.due_date.isoformat()
                                          if new.due_date else None, rule="R-S1"),))
    if kind == RENEWAL_TIMER:
        if step.state not in OPEN_STATES:
            return Decision(events=())
        opened_on = date.fromisoformat(str(payload["opened_on"]))
        every = int(payload["every_days"])
        due = date.fromisoformat(str(payload["renewal_due_date"]))
        following = renewal_timer(step, opened_on, max(due, ctx.today), every)
        number = (due - opened_on).days // every
        event = StepRenewalDue(**_base(step, ctx), step_type=step.step_type, assignee=step.assignee,
                               renewal_due_date=due, renewal_number=number,
                               next_renewal_date=london_date(following.due_at))
        return Decision(events=(event,), timers=(following,), history=(_history(
            step, ctx, "step.renewal_due", renewal_due_date=due.isoformat(), renewal_number=number,
            rule="R-K6"),))
    return Decision(events=())


# --- one entry point ------------------------------------------------------------------------------


def check_version(command: cmd.Command, step: Step) -> None:
    """Optimistic locking: a stale `expected_version` is a conflict."""
    if command.expected_version is not None and command.expected_version != step.version:
        raise RuleBroken([reason(
            "conflict", f"the step is at version {step.version}, not {command.expected_version}:"
            " reload it and try again", field="expected_version", step_id=step.step_id)])


def decide(
    ctx: Context, command: cmd.Command, *, step: Step | None = None, requests: Sequence[Request] = (),
    request: Request | None = None, person_steps: Sequence[Step] = (), new_workflow_id: str | None = None,
) -> Decision:
    """Any workflow command against the state the handler loaded: the decision or RuleBroken."""
    if isinstance(command, cmd.StartNewStep):
        assert new_workflow_id is not None
        return start_new(ctx, command, workflow_id=new_workflow_id)
    if isinstance(command, cmd.RecordDeath):
        return record_death(ctx, command, person_steps)
    assert step is not None
    check_version(command, step)
    if isinstance(command, cmd.CompleteRequest):
        assert request is not None
        return complete_request(ctx, step, request, command.note)
    defn = ctx.packs.step(step.step_type, step.pack_version)
    match command:
        case cmd.StartStep():
            return start(ctx, step, defn)
        case cmd.AssignStep():
            return assign(ctx, step, defn, command.to)
        case cmd.SaveStep():
            return save(ctx, step, defn, command)
        case cmd.RefreshPrepopulated():
            return refresh_prepopulated(ctx, step, defn)
        case cmd.AddForm():
            return add_form(ctx, step, defn, command.form)
        case cmd.AddNextAction():
            return add_next_action(ctx, step, defn, command)
        case cmd.RemoveNextAction():
            return remove_next_action(ctx, step, defn, str(command.next_action_id))
        case cmd.SendRequest():
            return send_request(ctx, step, defn, requests, command, "request")
        case cmd.SendNotification():
            return send_request(ctx, step, defn, requests, command, "notification")
        case cmd.FinishStep() | cmd.AuthoriseStep():
            return finish(ctx, step, defn, requests, authorising=isinstance(command, cmd.AuthoriseStep))
        case cmd.ReturnStep():
            return return_step(ctx, step, defn, requests, command.note)
        case cmd.CancelStep():
            return cancel(ctx, step, defn, requests, command.reason)
        case cmd.RescheduleStep():
            return reschedule(ctx, step, defn, command)
    raise AssertionError(f"unhandled command {type(command).__name__}")


NEEDS_CASE = (cmd.FinishStep, cmd.AuthoriseStep, cmd.AddNextAction, cmd.StartNewStep)
