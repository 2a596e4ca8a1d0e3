"""A person's chronology and their work "as at" a past moment, derived from what the services keep.

Pure functions over the JSON the other services answer with: step histories (workflow), case notes
and record changes (referrals), relationships with the ended ones (allocation), documents.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from shared.actor import who_did
from shared.calendar import LONDON
from shared.teams import team_name

FINISHED = ("step.finished", "step.authorised_and_finished")
# the state a step is in after each history entry that changes it (services/workflow/domain/)
STATE_AFTER = {"step.started": "incomplete", "step.due": "incoming", "step.returned": "returned",
               "step.finished": "finished", "step.authorised_and_finished": "finished",
               "step.cancelled": "cancelled"}


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_as_at(value: str | None) -> datetime | None:
    """`YYYY-MM-DD` is the end of that day in London; a full ISO date-time is taken as it is."""
    value = (value or "").strip()
    if not value:
        return None
    if len(value) == 10:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return None
        return datetime.combine(day + timedelta(days=1), time(), LONDON) - timedelta(microseconds=1)
    try:
        parsed = datetime.fromisoformat(value.replace(" ", "T").replace("Z", "+00:00"))
    except ValueError:
        return None
    if len(value) == 16:  # YYYY-MM-DDTHH:MM from the form: everything in that minute counts, as in the list
        parsed += timedelta(minutes=1, microseconds=-1)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=LONDON)  # a time typed in is London time


# Times are shown to the minute, London time, everywhere: that is how a practitioner records and reads a
# contact ("3 Jun 2024 14:05"); seconds add noise to a chronology read in court or at a review. The exact
# instant stays in each row's <time datetime> and orders the rows, so events in one minute keep their order.
MINUTE_FORMAT = "%d %b %Y %H:%M"


def format_when(value: datetime | str | None) -> str:
    """A moment as the desk shows it: day, month, year, hours and minutes, London time; a date alone as a date."""
    if isinstance(value, str) and len(value) == 10:
        return format_day(value)
    moment = parse_time(value) if isinstance(value, str) or value is None else value
    if moment is None:
        return str(value or "")
    return moment.astimezone(LONDON).strftime(MINUTE_FORMAT)


def format_day(value: date | str | None) -> str:
    """A date (no time) as the desk shows it: "03 Jun 2024"."""
    try:
        day = date.fromisoformat(value) if isinstance(value, str) else value
    except ValueError:
        return str(value)
    return day.strftime("%d %b %Y") if day else ""


def as_at_label(moment: datetime) -> str:
    """The as-at moment in words, exactly as precise as it was asked: the end of a day, a minute, or a second."""
    local = moment.astimezone(LONDON)
    end_of_minute = local.second == 59 and local.microsecond == 999_999
    if end_of_minute and (local.hour, local.minute) == (23, 59):
        return f"the end of {local.day} {local:%B %Y}"
    if end_of_minute or (local.second == 0 and local.microsecond == 0):
        return f"{local.day} {local:%B %Y} {local:%H:%M}"
    return f"{local.day} {local:%B %Y} {local:%H:%M:%S}"


@dataclass(frozen=True)
class Entry:
    """One line of the chronology."""

    at: datetime
    who: str
    kind: str  # step, note, record, relationship
    what: str
    href: str | None = None

    @property
    def when(self) -> str:
        return format_when(self.at)

    @property
    def iso(self) -> str:
        return self.at.isoformat()


def assignee_words(value: Any, names: Mapping[str, str] | None = None) -> str:
    """Whom a step or request is with, in words: a team by its name (shared/teams.yaml), a worker by name when
    `names` knows them, else by id."""
    if isinstance(value, Mapping):
        if value.get("kind") == "team":
            return team_name(value.get("id"))
        if value.get("kind") == "worker" and value.get("id") in (names or {}):
            return (names or {})[value["id"]]
        return f"{value.get('kind', '')} {value.get('id', '')}".strip()
    return str(value or "")


def field_labels(step: Mapping[str, Any]) -> dict[str, str]:
    """Each field key of the step's form by the label the form shows: a step in full has its form, a step of the
    person's chronology read (`/people/{id}/steps?history=true`) its `field_labels`."""
    if "field_labels" in step:
        return dict(step["field_labels"])
    return {f["key"]: f["label"] for s in (step.get("form") or {}).get("sections", []) for f in s.get("fields", [])}


def describe_step_event(step_type: str, what: str, details: Mapping[str, Any],
                        labels: Mapping[str, str] | None = None, names: Mapping[str, str] | None = None) -> str:
    """A step history entry in words."""
    match what:
        case "step.created":
            return f"{step_type} created ({str(details.get('state', '')).replace('_', ' ')})"
        case "step.started":
            return f"{step_type} started"
        case "step.saved":
            fields = [(labels or {}).get(key, key) for key in details.get("fields") or []]
            return f"{step_type} saved" + (f": {', '.join(fields)}" if fields else "")
        case "step.assigned":
            return f"{step_type} assigned to {assignee_words(details.get('assignee'), names)}"
        case "step.finished":
            return f"{step_type} finished"
        case "step.authorised_and_finished":
            return f"{step_type} authorised and finished"
        case "step.returned":
            return f"{step_type} returned" + (f": {details['note']}" if details.get("note") else "")
        case "step.cancelled":
            return f"{step_type} cancelled" + (f": {details['reason']}" if details.get("reason") else "")
        case "request.sent" | "notification.sent":
            kind = what.split(".")[0]
            return f"{step_type}: {kind} {details.get('name', '')} sent to {assignee_words(details.get('to'), names)}"
        case "request.completed":
            return f"{step_type}: request {details.get('name', '')} completed"
        case "next_action.added":
            return f"{step_type}: next action {details.get('action', '')} added"
        case "next_action.removed":
            return f"{step_type}: next action removed"
        case "step.form_added":
            return f"{step_type}: form {details.get('form', '')} added"
        case "step.rescheduled":
            return f"{step_type} rescheduled to {format_day(details.get('due_date'))}"
        case "step.due":
            return f"{step_type} fell due"
        case "case.closed":
            return f"{step_type}: case closed"
    return f"{step_type}: {what.replace('_', ' ').replace('.', ' ')}"


def build(*, steps: Iterable[Mapping[str, Any]], notes: Iterable[Mapping[str, Any]] = (),
          record_history: Iterable[Mapping[str, Any]] = (), relationships: Mapping[str, Any] | None = None,
          until: datetime | None = None, names: Mapping[str, str] | None = None) -> list[Entry]:
    """Every step event, case note, record change and relationship change, oldest first; people by name
    (`names`: worker id → name), fields by their labels, dates as the desk shows them (§9)."""
    entries: list[Entry] = []
    names = names or {}

    def add(at: str | None, who: str | None, kind: str, what: str, href: str | None = None) -> None:
        moment = parse_time(at)
        if moment is not None and (until is None or moment <= until):
            entries.append(Entry(moment, who_did(who, names), kind, what, href))

    for step in steps:
        labels = field_labels(step)
        for h in step.get("history") or []:
            if h.get("what") == "prepopulated":
                continue  # the blue cogs filled on creation: part of "created"
            add(h.get("time"), h.get("actor"), "step",
                describe_step_event(step["step_type"], str(h.get("what", "")), h.get("details") or {}, labels, names),
                f"/steps/{step['step_id']}")
    for n in notes:
        add(n.get("written_at"), n.get("author"), "note", f"Case note: {n.get('title', '')} ({n.get('type', '')})",
            "#notes")
    for c in record_history:
        fields = [str(key).replace("_", " ").capitalize() for key in c.get("fields") or []]
        add(c.get("at"), c.get("actor"), "record",
            f"Record: {str(c.get('what', '')).replace('_', ' ')}" + (f" ({', '.join(fields)})" if fields else ""))
    relationships = relationships or {}
    for kind, label, who in (("worker_relationships", "Worker", "worker_id"),
                             ("organisational_relationships", "Team", "team_id")):
        for r in relationships.get(kind, []):
            party = team_name(r.get(who)) if who == "team_id" else names.get(r.get(who) or "", r.get(who))
            named = f"{label} {party}: {r.get('relationship')}"
            add(r.get("created_at"), r.get("created_by"), "relationship",
                f"{named} from {format_day(r.get('start_date'))}")
            if r.get("ended_at"):
                add(r.get("ended_at"), r.get("ended_by") or "", "relationship",
                    f"{named} ended" + (f" ({r['end_reason']})" if r.get("end_reason") else ""))
    entries.sort(key=lambda e: e.at)
    return entries


@dataclass
class StepAsAt:
    """A step as it stood at a moment: its state and assignee then, and what of its form can be shown."""

    step_id: str
    step_type: str
    state: str
    assignee: dict[str, Any]
    since: datetime
    finished_at: datetime | None = None
    document: Mapping[str, Any] | None = None  # the kept PDF of the form, when finished by then
    saves: list[Entry] = field(default_factory=list)  # who saved which fields up to then


def _required_request(step: Mapping[str, Any], name: str) -> bool:
    return any(r.get("name") == name and r.get("kind", "request") == "request" and r.get("required")
               for r in step.get("requests") or [])


def steps_as_at(steps: Iterable[Mapping[str, Any]], at: datetime,
                documents: Iterable[Mapping[str, Any]] = (),
                needs_authorising: Callable[[Mapping[str, Any]], bool] = lambda step: False) -> list[StepAsAt]:
    """Each step created by `at`, replayed from its history to that moment, oldest first.

    `needs_authorising(step)` says whether sending the step's REQUIRED request puts it in
    awaiting authorisation (its type has authorisers in the pack).
    """
    by_step = {d["step_id"]: d for d in documents if d.get("kind") == "form" and d.get("step_id")}
    found = []
    for step in steps:
        history = sorted(((parse_time(h.get("time")), h) for h in step.get("history") or []),
                         key=lambda pair: pair[0] or datetime.min.replace(tzinfo=UTC))
        state: str | None = None
        # the assignee it was created with: before the first re-assignment, else the one it has now
        first = next((h for _, h in history if h.get("what") == "step.assigned"), None)
        assignee: dict[str, Any] = dict(((first or {}).get("details") or {}).get("previous")
                                        or step.get("assignee") or {})
        since = None
        finished_at = None
        saves = []
        for moment, h in history:
            if moment is None or moment > at:
                break
            what, details = h.get("what"), h.get("details") or {}
            new_state = STATE_AFTER.get(str(what))
            if what in ("step.created", "step.rescheduled"):
                new_state = details.get("state") or new_state
            if what == "request.sent" and _required_request(step, str(details.get("name"))) \
                    and needs_authorising(step):
                new_state = "awaiting_authorisation"
            if what == "step.assigned":
                assignee = dict(details.get("assignee") or assignee)
            if what in FINISHED:
                finished_at = moment
            if what == "step.saved":
                fields = details.get("fields") or []
                saves.append(Entry(moment, h.get("actor") or "", "step",
                                   "saved " + (", ".join(fields) if fields else "section markers")))
            if new_state and new_state != state:
                state, since = new_state, moment
        if state is None or since is None:
            continue  # created after the moment
        found.append(StepAsAt(step["step_id"], step["step_type"], state, assignee, since, finished_at,
                              by_step.get(step["step_id"]) if finished_at else None, saves))
    found.sort(key=lambda s: s.since)
    return found


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def open_on(relationships: Iterable[Mapping[str, Any]], moment: datetime) -> list[Mapping[str, Any]]:
    """The relationships that had started and not yet ended on the moment's (London) day."""
    day = moment.astimezone(LONDON).date()
    found = []
    for r in relationships:
        start, end = _day(r.get("start_date")), _day(r.get("end_date"))
        if (start is None or start <= day) and (end is None or end > day):
            found.append(r)
    return found


def made_by(items: Iterable[Mapping[str, Any]], moment: datetime, *keys: str) -> list[Mapping[str, Any]]:
    """The items whose time (the first of `keys` present) is at or before the moment."""
    found = []
    for item in items:
        at = parse_time(next((item[k] for k in keys if item.get(k)), None))
        if at is not None and at <= moment:
            found.append(item)
    return found


def changed_since(record_history: Iterable[Mapping[str, Any]], moment: datetime) -> list[Entry]:
    """The record's changes after the moment: the details shown now may differ from then in these fields."""
    later = [c for c in record_history if (parse_time(c.get("at")) or moment) > moment]
    return build(steps=(), record_history=later)
