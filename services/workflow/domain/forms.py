"""A step's form values: prepopulation (R-W5), carried sections and rows (R-W7, R-W8), what a save
may write and whether each value fits its field (R-W4..R-W9), mandatory fields still empty (R-W4).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from services.workflow import purchasing
from services.workflow.domain.model import Step
from services.workflow.pack import Field, Section, StepDefinition
from shared import bounds
from shared.actor import Actor, held_roles, role_name
from shared.commands.base import Reason, reason


def person_value(person: Mapping[str, Any], path: str) -> Any:
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
        f.key: _as_option(f, person_value(person, f.prepopulate_from))
        for section in defn.form_sections
        for f in section.fields
        if f.cog in cogs and f.prepopulate_from
    }


def _as_option(f: Field, value: Any) -> Any:
    """R-W5: a value the field maps (`prepopulate_values`) becomes its option; one it does not map, nothing."""
    if not f.prepopulate_values:
        return value
    return f.prepopulate_values.get(value) if isinstance(value, str) else None


def yes_from_orders(defn: StepDefinition, live_orders: Mapping[str, Sequence[str]]
                    ) -> tuple[dict[str, bool], dict[str, dict[str, Any]]]:
    """R-C5: each `yes_from_orders` field answered Yes where the person has a live purchase order of one of its
    kinds (a direct payment), and the orders it was read from; a field with none is left to the worker (workflow
    knows only the orders Tessera raised)."""
    values: dict[str, bool] = {}
    sources: dict[str, dict[str, Any]] = {}
    for section in defn.form_sections:
        for f in section.fields:
            ids = [order for kind in f.yes_from_orders for order in live_orders.get(kind, ())]
            if ids:
                values[f.key] = True
                sources[f.key] = {"source": "purchase_orders", "kinds": list(f.yes_from_orders),
                                  "po_request_ids": ids}
    return values, sources


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


def is_empty(value: Any) -> bool:
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


def writable_fields(defn: StepDefinition, forms: Sequence[str]) -> dict[str, tuple[int | None, Field, bool]]:
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
    defn: StepDefinition, step: Step, values: Mapping[str, Any], actor: Actor, *, contributor: bool = False,
) -> list[Reason]:
    """Every reason the values cannot be saved (R-W4, R-W5, R-W6, R-W7, R-W8, R-W9)."""
    fields = writable_fields(defn, step.forms)
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
        where: dict[str, Any] = {"field": key, "section": section}
        refusal = kind_refusal(f, read_only, where) or role_refusal(defn, f, actor, contributor, where)
        if refusal:
            reasons.append(refusal)
        else:
            problem = value_problem(f, value)
            if problem:
                reasons.append(reason("invalid_value", f"{f.label!r} {problem}", **where))
            elif f.type == "table" and value:
                reasons += _row_problems(f, value, step.values.get(key), section)
    return reasons


def kind_refusal(f: Field, read_only: bool, where: Mapping[str, Any]) -> Reason | None:
    """A field nobody writes on this step: carried (R-W7), from the person record (R-W5) or the system's (R-W6)."""
    if read_only:
        return reason("read_only", f"{f.label!r} is carried read-only from an earlier step (R-W7)", **where)
    if f.cog == "blue":
        return reason("read_only", f"{f.label!r} comes from the person record: change the record and refresh"
                      " (R-W5)", **where)
    if f.system_generated:
        return reason("read_only", f"{f.label!r} is filled by the system (R-W6)", **where)
    return None


def role_refusal(defn: StepDefinition, f: Field, actor: Actor, contributor: bool,
                 where: Mapping[str, Any]) -> Reason | None:
    """A field of another role (R-W6), or, for a contributor, not of their role (R-W10)."""
    if f.owner_role and f.owner_role not in held_roles(actor.roles):
        return reason("role", f"only a {role_name(f.owner_role)} may write {f.label!r} (R-W6)", **where)
    if contributor and f.owner_role not in defn.contributors:
        return reason("role", f"{f.label!r} is written by the worker the step is assigned to; a contributor"
                      " writes only the fields of their role (R-W10)", **where)
    return None


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


def log_problems(defn: StepDefinition, step: Step, values: Mapping[str, Any], actor: Actor) -> list[Reason]:
    """R-W13: in an activity log a row keeps its author: another worker's rows stay as they were (they may be
    moved, not changed or deleted), and a row is recorded by the worker who adds or edits it."""
    reasons: list[Reason] = []
    for key in defn.activity_logs & set(values):
        rows, before = values[key], step.values.get(key)
        if not isinstance(rows, list):
            continue
        label = defn.field_map()[key].label
        kept = list(rows)
        for old in before if isinstance(before, list) else []:
            if not isinstance(old, Mapping) or old.get("recorded_by") in (None, actor.worker_id):
                continue
            if old in kept:
                kept.remove(old)
            else:
                reasons.append(reason("not_your_row", f"a row of {label!r} recorded by {old['recorded_by']} can be"
                                      " changed or deleted only by them (R-W13)", field=key))
        for index, row in enumerate(rows):
            if row in kept and isinstance(row, Mapping) and row.get("recorded_by") not in (None, actor.worker_id):
                reasons.append(reason("not_your_row", f"a row of {label!r} is recorded by the worker who adds it"
                                      " (R-W13)", field=f"{key}[{index}].recorded_by"))
    return reasons


def fill_system_columns(defn: StepDefinition, values: dict[str, Any], actor: Actor) -> dict[str, Any]:
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


def missing_fields(defn: StepDefinition, step: Step) -> list[Reason]:
    """R-W4: every mandatory field still empty, by section, all at once."""
    sections: list[tuple[int | None, Section]] = [(s.number, s) for s in defn.form_sections if not s.read_only
                                                  and _asked(defn, s, step.values)]
    sections += [(None, s) for form in defn.optional_forms if form.name in step.forms for s in form.sections]
    return _missing_in(sections, step.values)


def _asked(defn: StepDefinition, section: Section, values: Mapping[str, Any]) -> bool:
    """R-C5: a section answered by a request is checked only where that request is REQUIRED."""
    return section.answered_by is None or defn.request(section.answered_by).required_for(values)


def _missing_in(sections: Sequence[tuple[int | None, Any]], values: Mapping[str, Any]) -> list[Reason]:
    reasons: list[Reason] = []
    for number, section in sections:
        for f in section.fields:
            if f.system_generated or f.cog == "blue":
                continue
            value = values.get(f.key)
            label = f"section {section.number} {section.title!r}" if number else f"form {section.title!r}"
            if f.mandatory and is_empty(value):
                reasons.append(reason("missing_field", f"{f.label!r} in {label} is mandatory",
                                      section=number, field=f.key))
            elif f.must_be_yes and value is not True:
                reasons.append(reason("check_not_done", f"{f.label!r} in {label} must be Yes before the"
                                      " step finishes (R-K1)", section=number, field=f.key))
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
            if is_empty(row.get(column.key)):
                reasons.append(reason("missing_field", f"{column.label!r} is mandatory in row"
                                      f" {index + 1} of {f.label!r}", section=section,
                                      field=f"{f.key}[{index}].{column.key}"))
    return reasons


def form_complete(defn: StepDefinition, step: Step, form: str) -> bool:
    if form not in step.forms:
        return False
    return not _missing_in([(None, s) for s in defn.form(form).sections], step.values)


def date_value(values: Mapping[str, Any], key: str | None) -> date | None:
    value = values.get(key) if key else None
    if isinstance(value, str) and _date_ok(value, date):
        return date.fromisoformat(value)
    return None
