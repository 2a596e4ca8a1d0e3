"""Pure rules of the notifications service: inbox items, overdue reminders and messages to people.

No broker, no database, no clock: times and ids are passed in.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from shared.events.notifications import Channel
from shared.events.workflow import NotificationSent, RequestRaised

LONDON = ZoneInfo("Europe/London")
OWNER = "notifications"
OVERDUE_TIMER = "request-overdue"

Kind = Literal["request", "notification"]
ItemState = Literal["open", "completed", "read", "withdrawn"]
ITEM_STATES: tuple[ItemState, ...] = ("open", "completed", "read", "withdrawn")
MessageStatus = Literal["pending", "sent", "failed", "queued_for_print"]
FINAL_STATUSES = frozenset({"sent", "failed", "queued_for_print"})


# --- inbox items (R-RQ1, R-RQ2) ---------------------------------------------------------------


@dataclass(frozen=True)
class InboxItem:
    """A request or notification in a worker's or team's inbox; a request stays open until completed."""

    request_id: str
    kind: Kind
    recipient_kind: Literal["worker", "team"]
    recipient_id: str
    person_id: str
    step_id: str
    step_type: str
    name: str
    note: str | None
    required: bool
    sent_by: str
    sent_at: datetime
    state: ItemState = "open"
    due_at: datetime | None = None
    overdue: bool = False
    reminded_at: datetime | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    closed_reason: str | None = None

    @property
    def is_open(self) -> bool:
        return self.state == "open"


def due_at(sent_at: datetime, due_days: int, due: date | datetime | None = None) -> datetime:
    """When an open request becomes overdue (R-S2): its own due date if it has one, else `due_days` after sending.

    A due *date* is overdue once that day is over in Europe/London, whatever the clocks do.
    """
    if isinstance(due, datetime):
        return due
    if isinstance(due, date):
        return datetime.combine(due + timedelta(days=1), time(0), LONDON).astimezone(sent_at.tzinfo)
    return sent_at + timedelta(days=due_days)


def requested_due(data: Mapping[str, Any]) -> date | datetime | None:
    """The due date or time a `request.raised` carries, if any (an optional field); unreadable ones are ignored."""
    raw_at, raw_date = data.get("due_at"), data.get("due_date")
    if isinstance(raw_at, str):
        try:
            parsed = datetime.fromisoformat(raw_at)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    if isinstance(raw_date, str):
        try:
            return date.fromisoformat(raw_date[:10])
        except ValueError:
            return None
    return None


def delivered(
    event: RequestRaised | NotificationSent, *, sent_at: datetime, due_days: int,
    due: date | datetime | None = None,
) -> InboxItem:
    """The inbox item a raised request or a sent notification becomes; only a request falls due."""
    is_request = isinstance(event, RequestRaised)
    return InboxItem(
        request_id=event.request_id, kind="request" if is_request else "notification",
        recipient_kind=event.to.kind, recipient_id=event.to.id, person_id=event.person_id,
        step_id=event.step_id, step_type=event.step_type, name=event.name, note=event.note,
        required=event.required if isinstance(event, RequestRaised) else False,
        sent_by=event.actor, sent_at=sent_at,
        due_at=due_at(sent_at, due_days, due) if is_request else None,
    )


def complete(item: InboxItem | None, *, by: str, at: datetime) -> InboxItem | None:
    """The recipient completed the request (workflow decided it): the item leaves the open inbox."""
    if item is None or not item.is_open:
        return None
    return replace(item, state="completed", closed_at=at, closed_by=by, closed_reason="completed")


def withdraw(items: Iterable[InboxItem], *, by: str, at: datetime, why: Literal["step_cancelled", "step_returned"],
             required_only: bool = False) -> list[InboxItem]:
    """Open requests of a cancelled step (all) or a returned step (the required ones) leave the inbox.

    Mirrors the workflow's own rule: a cancelled step withdraws its open requests (R-W2), a returned
    step closes its open REQUIRED requests, to be re-sent (R-RQ4).
    """
    return [
        replace(item, state="withdrawn", closed_at=at, closed_by=by, closed_reason=why)
        for item in items
        if item.is_open and item.kind == "request" and (item.required or not required_only)
    ]


def timer_key(request_id: str) -> str:
    return f"{OVERDUE_TIMER}:{request_id}"


def request_of_timer(key: str) -> str | None:
    kind, sep, request_id = key.partition(":")
    return request_id if kind == OVERDUE_TIMER and sep and request_id else None


def remind(item: InboxItem | None, *, timer_due_at: datetime, now: datetime) -> InboxItem | None:
    """R-S2: an open request past its due date is marked overdue and reminded, once.

    A stale timer (the request was completed or withdrawn, already reminded, or the timer was
    set for another due time) does nothing.
    """
    if item is None or not item.is_open or item.kind != "request" or item.reminded_at is not None:
        return None
    if item.due_at is None or item.due_at != timer_due_at:
        return None
    return replace(item, overdue=True, reminded_at=now)


# --- messages to people (R-T4) ----------------------------------------------------------------


@dataclass(frozen=True)
class Team:
    """What a person is told about a team: its name and the number to call."""

    name: str
    number: str


@dataclass(frozen=True)
class TeamDirectory:
    """Team names and contact numbers by team id, with a default for teams not listed."""

    teams: Mapping[str, Team]
    default: Team

    def team(self, team_id: str | None, number: str | None = None) -> Team:
        """The team's entry; a number the request carries (the allocation service's setting) wins."""
        found = self.teams.get(team_id or "", self.default)
        return Team(found.name, number) if number else found

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> "TeamDirectory":
        default = data.get("default") or {}
        return cls(
            teams={str(k): Team(str(v["name"]), str(v["number"])) for k, v in (data.get("teams") or {}).items()},
            default=Team(str(default.get("name", "Adult Social Care")), str(default.get("number", "0116 496 0999"))),
        )


@dataclass(frozen=True)
class Contact:
    """How a person can be reached, from their record (R-P1). Personal data: never logged or emitted."""

    name: str | None
    email: str | None
    phone: str | None
    has_address: bool
    preferred: str | None


def contact_of(person: Mapping[str, Any]) -> Contact:
    names = [person.get("first_name"), person.get("last_name")]
    address = person.get("address")
    return Contact(
        name=" ".join(n.strip() for n in names if isinstance(n, str) and n.strip()) or None,
        email=_text(person.get("email")),
        phone=_text(person.get("phone")),
        has_address=isinstance(address, dict) and bool(_text(address.get("line1"))) and bool(
            _text(address.get("postcode")) or _text(address.get("town"))),
        preferred=_text(person.get("preferred_contact")),
    )


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def is_mobile(phone: str | None) -> bool:
    """A UK mobile number (07…, +447…), the only kind an SMS can reach."""
    if not phone:
        return False
    digits = re.sub(r"[\s().-]", "", phone)
    return bool(re.fullmatch(r"(07\d{9}|\+447\d{9}|00447\d{9})", digits))


Preference = Literal["email", "sms", "letter", "phone"]


def preference(value: str | None) -> Preference | None:
    """A preferred contact method as people write it ("E-mail", "Text message", "Post") → a channel."""
    if not value:
        return None
    words = value.strip().lower()
    if re.search(r"e-?mail", words):
        return "email"
    if re.search(r"\b(sms|text|texts|mobile)\b", words):
        return "sms"
    if re.search(r"\b(letter|post|postal|writing|mail)\b", words):
        return "letter"
    if re.search(r"\b(phone|telephone|call|landline)\b", words):
        return "phone"
    return None


def channel_for(contact: Contact, fallback: str | None = None) -> Channel | None:
    """R-T4: the person's preferred method where their record makes it possible, else the next that is.

    A telephone preference is met by SMS on a mobile number and otherwise by letter (the system does
    not make calls); with no preference at all a letter is the safe default.
    """
    usable: dict[Channel, bool] = {
        "email": contact.email is not None, "sms": is_mobile(contact.phone), "letter": contact.has_address,
    }
    wanted = preference(contact.preferred) or preference(fallback)
    order: list[Channel]
    match wanted:
        case "email":
            order = ["email", "letter", "sms"]
        case "sms" | "phone":
            order = ["sms", "letter", "email"]
        case _:
            order = ["letter", "email", "sms"]
    return next((c for c in order if usable[c]), None)


WAITING_LIST = "pwt_waiting_list"
TEMPLATES = {"pwt_added": WAITING_LIST}
REFERRER_TEMPLATES = {"pwt_added": "pwt_waiting_list_referrer"}


@dataclass(frozen=True)
class Rendered:
    """A message ready to leave: where to, subject and text. Holds personal data: never log it."""

    channel: Channel
    to: str | None
    subject: str
    body: str


@dataclass(frozen=True)
class Plan:
    """What to do with a message request: send on a channel, queue a letter, or fail with a code."""

    template: str
    status: MessageStatus
    channel: Channel | None = None
    rendered: Rendered | None = None
    error_code: str | None = None


def waiting_list_text(team: Team, name: str | None, channel: Channel) -> tuple[str, str]:
    """R-T4 (seed 004): "you are on the waiting list for <team>; if your situation changes call <number>"."""
    subject = f"You are on the waiting list for {team.name}"
    if channel == "sms":
        return subject, (f"You are on the waiting list for {team.name}. "
                         f"If your situation changes call {team.number}.")
    body = (
        f"Dear {name or 'Sir or Madam'},\n\n"
        f"You are on the waiting list for {team.name}. A worker from the team will contact you"
        " as soon as one is available.\n\n"
        f"If your situation changes, please call {team.number}.\n\n"
        f"{team.name}\n"
    )
    return subject, body


def plan_message(reason: str, team: Team, contact: Contact | None, requested_channel: str | None) -> Plan:
    """Decide how a person is told (R-T4): the channel, the text, or why it cannot be sent."""
    template = TEMPLATES.get(reason)
    if template is None:
        return Plan(template="none", status="failed", error_code="unknown_reason")
    if contact is None:
        return Plan(template=template, status="failed", error_code="person_not_found")
    channel = channel_for(contact, requested_channel)
    if channel is None:
        return Plan(template=template, status="failed", error_code="no_contact_details")
    subject, body = waiting_list_text(team, contact.name, channel)
    return _ready(template, channel, contact, subject, body)


def _ready(template: str, channel: Channel, contact: Contact, subject: str, body: str) -> Plan:
    to = {"email": contact.email, "sms": contact.phone, "letter": None}[channel]
    status: MessageStatus = "queued_for_print" if channel == "letter" else "pending"
    return Plan(template=template, status=status, channel=channel, rendered=Rendered(channel, to, subject, body))


# --- the referrer's copy (R-T4) ---------------------------------------------------------------


@dataclass(frozen=True)
class Referrer:
    """Who referred the person (their latest accepted referral). Personal data: never logged or emitted."""

    referral_id: str
    name: str | None
    email: str | None
    phone: str | None


def referrer_waiting_list_text(team: Team, referrer: Referrer, channel: Channel) -> tuple[str, str]:
    """R-T4 (seed 004): the referrer hears where the referral went, by their own reference, with the team's number.

    The person is named only by the referral reference: the referrer knows whom they referred.
    """
    subject = f"Your referral {referrer.referral_id}: on the waiting list for {team.name}"
    if channel == "sms":
        return subject, (f"The person you referred (ref {referrer.referral_id}) is on the waiting list for "
                         f"{team.name}. If their situation changes call {team.number}.")
    body = (
        f"Dear {referrer.name or 'Sir or Madam'},\n\n"
        f"The person you referred to us (your reference {referrer.referral_id}) is on the waiting list for"
        f" {team.name}. A worker from the team will contact them as soon as one is available.\n\n"
        f"If their situation changes, please call {team.number}.\n\n"
        f"{team.name}\n"
    )
    return subject, body


def plan_referrer_message(reason: str, team: Team, referrer: Referrer | None) -> Plan | None:
    """R-T4: a copy for the referrer, where there is one: by email, else by SMS to a mobile number.

    None when there is nothing to copy (no referrer, or a reason the referrer is not told of).
    """
    template = REFERRER_TEMPLATES.get(reason)
    if template is None or referrer is None:
        return None
    contact = Contact(name=referrer.name, email=referrer.email, phone=referrer.phone, has_address=False,
                      preferred="email")
    channel = channel_for(contact)
    if channel is None:
        return Plan(template=template, status="failed", error_code="no_contact_details")
    subject, body = referrer_waiting_list_text(team, referrer, channel)
    return _ready(template, channel, contact, subject, body)
