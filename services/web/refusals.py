"""Issue #19 §4 (R-W4): a form the desk refuses before sending it, in words a worker reads. The desk checks a
command's shape against its model first; what the model says of a field ("Field required", "String should have at
least 1 character") is never shown: each field is named as its form names it, with what to do."""

from collections.abc import Mapping
from typing import Any, get_args

from pydantic import ValidationError
from pydantic_core.core_schema import ErrorType

# what to do about a field left empty, in the words of the form the worker filled, by command and field
WHEN_EMPTY: dict[str, dict[str, str]] = {
    "step.return": {"note": "Say why you are returning this step: the worker reads your note"},
    "step.cancel": {"reason": "Say why this step is cancelled (only when there is no other option)"},
    "step.assign": {"to": "Choose the worker or team to assign this step to"},
    "step.add_next_action": {"action": "Choose the next action", "assignee": "Choose whom the next action goes to"},
    "step.send_request": {"name": "Choose the request to send", "to": "Choose the worker or team it goes to"},
    "step.send_notification": {"name": "Choose the notification to send", "to": "Choose the worker or team it goes to"},
    "step.add_form": {"form": "Choose the form or letter to add"},
    "step.start_new": {"step_type": "Choose the step to start"},
    "case_note.add": {"title": "Give the case note a title", "text": "Write the case note"},
    "urgent_actions.record": {"note": "Say which urgent actions were done"},
    "tray.remove": {"reason": "Say why the case comes off the tray"},
    "tray.add": {"rationale": "Say why the case waits on the tray"},
    "tray.review": {"note": "Say what the review found"},
    "case.allocate": {"worker_id": "Choose the worker to allocate the case to"},
    "task.complete": {"note": "Say what was done"},
}
# a field's name as people say it, where its key does not say it
LABELS = {"to": "who it goes to", "assignee": "whom it goes to", "worker_id": "the worker", "team_id": "the team",
          "step_type": "the step", "nhs_number": "NHS number", "email": "email address", "phone": "phone number",
          "rag_override_reason": "the reason for the RAG", "next_review_on": "the next check-in date"}
EMPTY = {"missing", "string_too_short", "too_short"}
PYDANTICS = frozenset(get_args(ErrorType))  # any other error type is the house's own, in its own words


def in_words(command_type: str, exc: ValidationError) -> list[dict[str, Any]]:
    """One reason per field at fault, named by its path in the command (as the form maps it to an input), never
    echoing what was typed."""
    reasons: dict[str, dict[str, Any]] = {}
    for error in exc.errors(include_input=False, include_url=False):
        path = [str(p) for p in error["loc"] if not (isinstance(p, str) and "[" in p)]  # no union branch names
        field = ".".join(path) or "data"
        named = next((p for p in reversed(path) if not p.isdigit()), "data")
        reasons.setdefault(field, {"code": "invalid", "field": field, "message": _said(
            command_type, field, LABELS.get(named, named.replace("_", " ")), error["type"], error["msg"],
            error.get("ctx") or {})})
    return list(reasons.values())


def _said(command_type: str, field: str, label: str, kind: str, msg: str, ctx: Mapping[str, Any]) -> str:
    if field.startswith("actor"):
        return "Your sign-in could not be read: sign out, sign in again and try once more"
    if kind not in PYDANTICS:
        return f"{label[:1].upper()}{label[1:]} {msg}"
    if kind in EMPTY:
        return WHEN_EMPTY.get(command_type, {}).get(field) or f"Give {label}"
    if kind == "string_too_long":
        return f"Shorten {label}: at most {ctx.get('max_length')} characters"
    if kind == "too_long":
        return f"Choose fewer for {label}: at most {ctx.get('max_length')}"
    if kind.startswith("date"):
        return f"Give {label} as a date, for example 27 3 2027"
    if kind in ("literal_error", "enum", "uuid_parsing", "uuid_type"):
        return f"Choose {label} from the options offered"
    if kind == "string_pattern_mismatch":
        return f"Check how {label} is written"
    return f"Check {label}: it is not written in a way the desk can send"
