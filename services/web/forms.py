"""A step's form as the page shows it and as a save sends it: built from `GET /steps/{id}` only."""

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.teams import team_name

CELL = re.compile(r"^(?P<key>[a-z][a-z0-9_]*)\[(?P<row>\d+)\]\.(?P<col>[a-z][a-z0-9_]*)$")


def anchor(key: str) -> str:
    """The id of a field's input (table cells: `support_delivery[0].exit_score` → its cell)."""
    cell = CELL.match(key)
    if cell:
        return f"f-{cell['key']}-{cell['row']}-{cell['col']}"
    return "f-" + re.sub(r"[^A-Za-z0-9_-]", "-", key)


@dataclass(frozen=True)
class Access:
    """How one field shows for this user: editable, or read-only and why."""

    editable: bool
    why: str = ""


def field_access(f: Mapping[str, Any], section: Mapping[str, Any], roles: Sequence[str], step_open: bool,
                 logging_only: bool = False, team_ids: Sequence[str] = (), answering_only: bool = False) -> Access:
    """Whether the person may write the field; `logging_only`: they are involved with the person but the step is
    not theirs, so only its activity logs (R-W13); `team_ids`: their teams, for a section a request's team answers
    (R-C5); `answering_only`: the step is not theirs, a request answered in a section went to them, so only that
    section (R-C5)."""
    if not step_open:
        return Access(False, "the step is not open for recording")
    if logging_only and not f.get("activity_log"):
        return Access(False, "the step's assignee completes this; you add to the activity log")
    if section.get("read_only"):
        return Access(False, "carried read-only from an earlier step")
    if answering_only and not section.get("answered_by"):
        return Access(False, "completed by the step's worker: you complete the section that answers the request"
                             " sent to you")
    answering = answering_team(section)
    if answering is not None and answering not in team_ids:
        return Access(False, f"completed by {team_name(answering)}, to whom the request"
                             f" '{section['answered_by']['request']}' goes")
    if section.get("writable") is False:  # issue #22 §9: workflow says who may write it (R-W10, R-C5)
        return Access(False, "completed by the step's worker and those the guide names for it")
    if f.get("cog") == "blue":
        return Access(False, "from the person record: change the record, then refresh")
    if f.get("system_generated"):
        return Access(False, "filled by the system")
    owner = f.get("owner_role")
    if owner and owner not in roles:
        return Access(False, f"completed by the {owner.replace('_', ' ')}")
    return Access(True)


def answering_team(section: Mapping[str, Any]) -> str | None:
    """R-C5: the team a section is answered by (the team its request goes to), if any."""
    answered = section.get("answered_by")
    to = answered.get("to") if isinstance(answered, Mapping) else None
    return to.get("id") if isinstance(to, Mapping) and to.get("kind") == "team" else None


def prefilled(step: Mapping[str, Any], key: str) -> str | None:
    """R-C5: where the step started a field answered Yes from the person's live purchase orders (its
    `provenance.prefilled`), which orders, in words."""
    source = ((step.get("provenance") or {}).get("prefilled") or {}).get(key)
    if not isinstance(source, Mapping) or not source.get("po_request_ids"):
        return None
    kinds = " or ".join(str(k).replace("_", " ") for k in source.get("kinds") or ()) or "purchase"
    orders = ", ".join(str(i) for i in source["po_request_ids"])
    plural = "s" if len(source["po_request_ids"]) > 1 else ""
    return (f"Answered Yes when the step began: the person has a live {kinds} purchase order{plural} raised in"
            f" Tessera (order{plural} {orders}). Change it if that is not right.")


def column_editable(column: Mapping[str, Any]) -> bool:
    return not column.get("system_generated") and column.get("cog") != "blue"


def display(value: Any) -> str:
    """A value as read-only text: addresses and lists flattened."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, Mapping):
        return ", ".join(str(v) for v in value.values() if v not in (None, ""))
    if isinstance(value, list):
        return ", ".join(display(v) for v in value)
    return str(value)


def input_value(f: Mapping[str, Any], value: Any) -> str:
    """A value as an input's `value` attribute."""
    if value is None:
        return ""
    if f.get("type") == "bool":
        return "true" if value is True else "false" if value is False else ""
    if f.get("type") == "datetime" and isinstance(value, str):
        return value[:16]
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return display(value) if isinstance(value, Mapping | list) else str(value)


def parse_value(f: Mapping[str, Any], raw: Any) -> tuple[Any, str | None]:
    """A submitted value converted to the field's type, or a problem naming what is wrong."""
    kind = f.get("type")
    if kind == "multiselect":
        values = [v for v in (raw if isinstance(raw, list) else [raw]) if v]
        return (values or None), None
    text = raw if isinstance(raw, str) else ("" if raw is None else str(raw))
    text = text.replace("\r\n", "\n")
    if kind not in ("textarea",):
        text = text.strip()
    if text == "":
        return None, None
    match kind:
        case "number":
            try:
                number = float(text)
            except ValueError:
                return text, "must be a number"
            if not math.isfinite(number):
                return text, "must be a number"
            return (int(number) if number.is_integer() and "." not in text else number), None
        case "bool":
            if text in ("true", "false"):
                return text == "true", None
            return text, "must be Yes or No"
        case "select":
            options = f.get("options") or []
            return text, (None if not options or text in options else "must be one of the options")
        case "datetime":
            return (text + ":00" if len(text) == 16 else text), None
    return text, None


@dataclass
class Parsed:
    """What a save sends: the changed values, the section markers, and problems found before sending."""

    values: dict[str, Any] = field(default_factory=dict)
    completed_sections: list[int] | None = None
    problems: list[dict[str, Any]] = field(default_factory=list)


def all_sections(step: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], Mapping[str, Any] | None]]:
    """(section, optional form or None) for the step's form and each added optional form."""
    out: list[tuple[Mapping[str, Any], Mapping[str, Any] | None]] = [
        (s, None) for s in step.get("form", {}).get("sections", [])]
    for form in step.get("forms", []) or []:
        out += [(s, form) for s in form.get("sections", [])]
    return out


def may_save(step: Mapping[str, Any]) -> bool:
    """Issue #22 §9: Save is offered when the signed-in worker may write some section (workflow's `writable`)."""
    return any(s.get("writable") is not False for s, _ in all_sections(step))


def _same(a: Any, b: Any) -> bool:
    return (a in (None, "", [], {}) and b in (None, "", [], {})) or a == b


def _rows(f: Mapping[str, Any], form: Any, old: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    key = f["key"]
    order = form.getlist(f"t.{key}.__row")
    old_rows = old if isinstance(old, list) else []
    rows: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    for index, row_id in enumerate(order):
        before = old_rows[int(row_id)] if row_id.isdigit() and int(row_id) < len(old_rows) else {}
        before = before if isinstance(before, Mapping) else {}
        row: dict[str, Any] = {}
        for column in f.get("columns", []):
            name = f"t.{key}.{row_id}.{column['key']}"
            if not column_editable(column) or name not in form:
                if column["key"] in before:
                    row[column["key"]] = before[column["key"]]
                continue
            raw = form.getlist(name) if column.get("type") == "multiselect" else form.get(name)
            value, problem = parse_value(column, raw)
            if problem:
                problems.append({"code": "invalid_value", "field": f"{key}[{index}].{column['key']}",
                                 "message": f"{column['label']!r} in row {index + 1} {problem}"})
            if value is None and column["key"] not in before:
                continue
            row[column["key"]] = value
        for extra, value in before.items():  # keys the form does not show are kept as they were
            row.setdefault(extra, value)
        rows.append(row)
    return rows, problems


RENDERED = "rendered"


def activity_logs(step: Mapping[str, Any]) -> set[str]:
    """R-W13: the keys of the step's activity-log tables."""
    return {f["key"] for s, _ in all_sections(step) for f in s.get("fields", []) if f.get("activity_log")}


def rendered(step: Mapping[str, Any], roles: Sequence[str], logging_only: bool = False,
             team_ids: Sequence[str] = (), answering_only: bool = False) -> dict[str, Any]:
    """#20: what the form shows for editing: a save is compared with this, not with whatever is newer."""
    values = step.get("values") or {}
    return {"values": {f["key"]: values.get(f["key"]) for s, _ in all_sections(step) for f in s.get("fields", [])
                       if field_access(f, s, roles, True, logging_only, team_ids, answering_only).editable},
            "completed_sections": list(step.get("completed_sections") or [])}


def _as_rendered(step: Mapping[str, Any], form: Any) -> tuple[dict[str, Any], list[int]] | None:
    """The values the submitted form was rendered with (the step's own without the marker); None if damaged."""
    values = dict(step.get("values") or {})
    if RENDERED not in form:
        return values, list(step.get("completed_sections") or [])
    try:
        shown = json.loads(form[RENDERED])
    except ValueError:
        return None
    if not (isinstance(shown, dict) and isinstance(shown.get("values"), dict)
            and isinstance(shown.get("completed_sections"), list)):
        return None
    return {**values, **shown["values"]}, shown["completed_sections"]


def parse_save(step: Mapping[str, Any], form: Any, roles: Sequence[str], logging_only: bool = False,
               team_ids: Sequence[str] = (), answering_only: bool = False) -> Parsed:
    """The values a save sends: only editable fields the person changed on the form (partial saves, R-W4, #20).

    "Changed" is against the values the form was rendered with, so a field the person did not touch is never
    sent, however the step has moved on since (another tab's save is not blanked).
    """
    parsed = Parsed()
    shown = _as_rendered(step, form)
    if shown is None:
        parsed.problems.append({"code": "invalid_form", "field": RENDERED,
                                "message": "the form was damaged in the browser: reload the page and try again"})
        return parsed
    values, sections = shown
    for section, _form in all_sections(step):
        for f in section.get("fields", []):
            if not field_access(f, section, roles, True, logging_only, team_ids, answering_only).editable:
                continue
            key = f["key"]
            if f.get("type") == "table":
                if f"t.{key}.__present" not in form:
                    continue
                rows, problems = _rows(f, form, values.get(key))
                parsed.problems += problems
                if not _same(rows, values.get(key) or []):
                    parsed.values[key] = rows
                continue
            name = f"v.{key}"
            if name not in form and f.get("type") != "multiselect":
                continue
            if f.get("type") == "multiselect" and f"v.{key}.__present" not in form:
                continue
            raw = form.getlist(name) if f.get("type") == "multiselect" else form.get(name)
            value, problem = parse_value(f, raw)
            if problem:
                parsed.problems.append({"code": "invalid_value", "field": key, "section": section.get("number"),
                                        "message": f"{f['label']!r} {problem}"})
                continue
            if not _same(value, values.get(key)):
                parsed.values[key] = value
    if "completed_sections.__present" in form and not (logging_only or answering_only):
        marked = sorted({int(n) for n in form.getlist("completed_sections") if str(n).isdigit()})
        if marked != sorted(n for n in sections if isinstance(n, int)):
            parsed.completed_sections = marked
    return parsed


def link_for(reason: Mapping[str, Any], step_id: str) -> str | None:
    """Where on the page (or which page) fixes this blocker."""
    if reason.get("step_id") and reason["step_id"] != step_id:
        return f"/steps/{reason['step_id']}"
    if reason.get("field") and reason.get("code") not in ("assignee_required", "note_required"):
        return "#" + anchor(str(reason["field"]))
    if reason.get("request_id"):
        return f"#request-{reason['request_id']}"
    code = reason.get("code")
    if code in ("required_request", "open_request"):
        return "#requests"
    if code in ("no_next_action", "form_required"):
        return "#next-actions"
    if reason.get("section"):
        return f"#s-{reason['section']}"
    return None


def inline_errors(reasons: Sequence[Mapping[str, Any]], step_id: str) -> dict[str, list[str]]:
    """Issue #19 §4: each message said beside the field (or row cell) at fault, by the id of its input."""
    errors: dict[str, list[str]] = {}
    for r in reasons:
        link = link_for(r, step_id)
        if link and link.startswith("#f-"):
            errors.setdefault(link[1:], []).append(str(r.get("message", "")))
    return errors


def merge_reasons(*groups: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every reason once, in the order first seen."""
    seen: set[tuple[Any, ...]] = set()
    out: list[dict[str, Any]] = []
    for group in groups:
        for r in group:
            key = (r.get("code"), r.get("field"), r.get("request_id"), r.get("step_id"), r.get("message"))
            if key not in seen:
                seen.add(key)
                out.append(dict(r))
    return out


def saved_changes(step: Mapping[str, Any], details: Mapping[str, Any]) -> list[dict[str, str]]:
    """#20: a save's history entry in words: each changed field's label, from what, to what."""
    labels = {f["key"]: f.get("label") or f["key"] for s, _ in all_sections(step) for f in s.get("fields", [])}
    return [{"label": labels.get(str(c.get("field")), str(c.get("field"))),
             "from": display(c.get("from")) or "—", "to": display(c.get("to")) or "—"}
            for c in details.get("changes") or [] if isinstance(c, Mapping)]
