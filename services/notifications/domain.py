"""Pure rules of the notifications service: inbox items, overdue reminders and messages to people.

No broker, no database, no clock: times and ids are passed in.
"""

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from shared.actor import worker_of
from shared.calendar import LONDON
from shared.commands.base import RuleBroken, reason
from shared.events.notifications import Addressee, Channel
from shared.events.workflow import NotificationSent, RequestRaised

OWNER = "notifications"
OVERDUE_TIMER = "request-overdue"

Kind = Literal["request", "notification", "task"]
ItemState = Literal["open", "completed", "read", "withdrawn"]
ITEM_STATES: tuple[ItemState, ...] = ("open", "completed", "read", "withdrawn")
# phone_call_task: the team was asked to phone (R-T4); never "sent"
MessageStatus = Literal["pending", "sent", "failed", "queued_for_print", "phone_call_task"]
FINAL_STATUSES = frozenset({"sent", "failed", "queued_for_print", "phone_call_task"})


# --- inbox items (R-RQ1, R-RQ2) ---------------------------------------------------------------


@dataclass(frozen=True)
class InboxItem:
    """A request, notification or task in a worker's or team's inbox; a request or task stays open until done."""

    request_id: str
    kind: Kind
    recipient_kind: Literal["worker", "team"]
    recipient_id: str
    person_id: str
    step_id: str | None
    step_type: str | None
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
    # tasks only: what the task is for, the rule it comes from, and what completes it (see `Task`)
    task_code: str | None = None
    rule: str | None = None
    subject: str | None = None

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
    # R-T6: the Strategic Service Manager team of each team's service area, and of teams in no area
    escalation: Mapping[str, str] = field(default_factory=dict)
    default_escalation: str = "strategic-service-managers"

    def escalation_team(self, team_id: str) -> str:
        """The team of the Strategic Service Managers a case on this team's tray escalates to (R-T6)."""
        return self.escalation.get(team_id, self.default_escalation)

    def team(self, team_id: str | None, number: str | None = None) -> Team:
        """The team's entry; a number the request carries (the allocation service's setting) wins."""
        found = self.teams.get(team_id or "", self.default)
        return Team(found.name, number) if number else found

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], names: Mapping[str, str]) -> "TeamDirectory":
        """From teams.yaml: each team's number (its name from `names`, the catalogue shared/teams.yaml)."""
        default = data.get("default") or {}
        escalation = {str(team): str(area["strategic_service_manager_team"])
                      for area in (data.get("service_areas") or {}).values() for team in area.get("teams") or ()}
        return cls(
            teams={str(k): Team(names.get(str(k), str(k)), str(v["number"]))
                   for k, v in (data.get("teams") or {}).items()},
            default=Team(str(default.get("name", "Adult Social Care")), str(default.get("number", "0116 496 0999"))),
            escalation=escalation,
            default_escalation=str(default.get("strategic_service_manager_team", "strategic-service-managers")),
        )


@dataclass(frozen=True)
class Needs:
    """How written words must reach someone: their record's communication needs (R-P1, seed 004)."""

    large_print: bool = False
    easy_read: bool = False
    interpreter: bool = False


def needs_of(written: object) -> Needs:
    """Communication needs as workers write them ("Large print", "Easy Read", "Interpreter - Polish", "BSL")."""
    text = " | ".join(w.lower() for w in written if isinstance(w, str)) if isinstance(written, list) else ""
    return Needs(
        large_print=bool(re.search(r"large\s*(print|font|type)|big\s*print", text)),
        easy_read=bool(re.search(r"easy\s*-?\s*read", text)),
        interpreter=bool(re.search(r"interpret|\bbsl\b|sign language|translat", text)),
    )


@dataclass(frozen=True)
class Contact:
    """How someone can be reached, from their record (R-P1). Personal data: never logged or emitted."""

    name: str | None
    email: str | None
    phone: str | None
    address: tuple[str, ...]  # postal lines, postcode last; empty when the record has no usable address
    preferred: str | None
    needs: Needs = Needs()

    @property
    def has_address(self) -> bool:
        return bool(self.address)


def contact_of(person: Mapping[str, Any]) -> Contact:
    names = [person.get("first_name"), person.get("last_name")]
    return Contact(
        name=" ".join(n.strip() for n in names if isinstance(n, str) and n.strip()) or None,
        email=_text(person.get("email")),
        phone=_text(person.get("phone")),
        address=_address(person.get("address")),
        preferred=_text(person.get("preferred_contact")),
        needs=needs_of(person.get("communication_needs")),
    )


def _address(address: object) -> tuple[str, ...]:
    if not isinstance(address, dict):
        return ()
    lines = tuple(line for line in (_text(address.get(k)) for k in ("line1", "line2", "town", "postcode")) if line)
    return lines if _text(address.get("line1")) and (_text(address.get("postcode")) or _text(address.get("town"))) \
        else ()


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def representative_of(person: Mapping[str, Any]) -> str | None:
    """The person id of whoever represents the person (R-T4, seed 004: "the person or their representative").

    A representative is a person record related to this one (R-P2) by an open relationship: "<them>
    Representative of <person>" (the label names the first person's role, as "Carer of" does), or "<person>
    Represented by <them>".
    """
    me = person.get("person_id")
    for link in person.get("relationships") or ():
        if not isinstance(link, dict) or link.get("end_date"):
            continue
        label = str(link.get("relationship") or "").lower()
        if "represented by" in label and link.get("person_id") == me:
            return str(link["other_person_id"])
        if "representative" in label and link.get("other_person_id") == me:
            return str(link["person_id"])
    return None


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


@dataclass(frozen=True)
class Reach:
    """What the configured providers deliver. SMS only through a real provider (GOV.UK Notify); letters in any
    format and to anyone through Notify, else only the standard letter to the person, which the print queue
    (the documents service) prints."""

    sms: bool = False
    any_letter: bool = False


WAITING_LIST = "pwt_waiting_list"
EASY_READ = "pwt_waiting_list_easy_read"
LARGE_PRINT = "pwt_waiting_list_large_print"
REFERRER_COPY = "pwt_waiting_list_referrer"
TEMPLATES = {"pwt_added": WAITING_LIST}
REFERRER_TEMPLATES = {"pwt_added": REFERRER_COPY}
# every template and channel a message can go out on: each needs a GOV.UK Notify template id (NOTIFY_TEMPLATES)
PROVIDER_TEMPLATES: tuple[str, ...] = (
    f"{WAITING_LIST}:email", f"{WAITING_LIST}:sms", f"{WAITING_LIST}:letter",
    f"{EASY_READ}:email", f"{EASY_READ}:sms", f"{EASY_READ}:letter", f"{LARGE_PRINT}:letter",
    f"{REFERRER_COPY}:email", f"{REFERRER_COPY}:sms",
)
# R-T5 (seed 004): how often someone on the tray is contacted, by RAG; "at least monthly" whatever else
REGULAR_CONTACT = {"red": "at least once a week", "amber": "at least once every two weeks",
                   "green": "at least once a month"}


def regular_contact(rag: str | None) -> str:
    """What regular contact the person can expect while on the waiting list (seed 004)."""
    return REGULAR_CONTACT.get(rag or "", REGULAR_CONTACT["green"])


@dataclass(frozen=True)
class Rendered:
    """A message ready to leave: where to, subject and text. Holds personal data: never log it."""

    channel: Channel
    to: str | None
    subject: str
    body: str
    address: tuple[str, ...] = ()  # a letter's: the addressee's name, then the postal lines


@dataclass(frozen=True)
class Plan:
    """What to do with a message request: send on a channel, queue a letter, ask the team to phone, or fail.

    `fallback_from` is the channel wanted (the preference) when another is used, `fallback_reason` why.
    """

    template: str
    status: MessageStatus
    channel: Channel | None = None
    rendered: Rendered | None = None
    error_code: str | None = None
    fallback_from: Channel | None = None
    fallback_reason: str | None = None


@dataclass(frozen=True)
class WaitingList:
    """What a waiting-list message says, whoever reads it: the team, its number, the regular contact to expect,
    and the person's name when it is written to their representative."""

    team: Team
    regular: str
    person_name: str | None = None
    to_representative: bool = False


def template_for(channel: Channel, needs: Needs) -> str:
    """The person's communication format (seed 004): easy read in every written form, large print on paper."""
    if needs.easy_read:
        return EASY_READ
    if needs.large_print and channel == "letter":
        return LARGE_PRINT
    return WAITING_LIST


def waiting_list_text(about: WaitingList, name: str | None, channel: Channel,
                      template: str = WAITING_LIST) -> tuple[str, str]:
    """R-T4 (seed 004): you are on the waiting list for <team>; the team will be in touch <how often>; if your
    situation changes, call <number>. To a representative it speaks of the person."""
    team, rep = about.team, about.to_representative
    subject = f"{'The person you represent is' if rep else 'You are'} on the waiting list for {team.name}"
    if channel == "sms":
        return subject, (f"{'The person you represent is' if rep else 'You are'} on the waiting list for"
                         f" {team.name}. We will contact {'them' if rep else 'you'} {about.regular} while"
                         f" {'they wait' if rep else 'you wait'}. If {'their' if rep else 'your'} situation changes"
                         f" call {team.number}.")
    who = about.person_name or "The person you represent" if rep else "You"
    them, their = ("them", "their") if rep else ("you", "your")
    if template == EASY_READ:
        paragraphs = [
            f"{who} {'is' if rep else 'are'} on the waiting list for help from {team.name}.",
            f"A worker will contact {them} when one is free.",
            f"We will phone or write to {them + ' or you' if rep else them} {about.regular} to check"
            f" {'they are' if rep else 'you are'} safe and well.",
            f"If things change for {them}, please phone us on {team.number}.",
        ]
    else:
        paragraphs = [
            f"{who} {'is' if rep else 'are'} on the waiting list for {team.name}. A worker from the team will"
            f" contact {them} as soon as one is available.",
            f"While {'they wait' if rep else 'you wait'}, someone from the team will contact"
            f" {them + ' or you' if rep else them} {about.regular} to check that {'they are' if rep else 'you are'}"
            " safe and well and whether anything has changed.",
            f"If {their} situation changes, please call {team.number}.",
        ]
    body = f"Dear {name or 'Sir or Madam'},\n\n" + "\n\n".join(paragraphs) + f"\n\n{team.name}\n"
    return subject, body


def plan_message(reason: str, about: WaitingList, contact: Contact | None, requested_channel: str | None,
                 reach: Reach = Reach()) -> Plan:
    """Decide how the person, or their representative, is told (R-T4): by their preferred method where it can
    go, in their communication format; a phone-call task for the team where they prefer the phone, need an
    interpreter, or can be reached no other way; or why it cannot be sent."""
    template = TEMPLATES.get(reason)
    if template is None:
        return Plan(template="none", status="failed", error_code="unknown_reason")
    if contact is None:
        return Plan(template=template, status="failed", error_code="person_not_found")
    wanted = preference(contact.preferred) or preference(requested_channel)
    if contact.needs.interpreter:
        return _call(template, wanted, "interpreter_needed")
    if wanted == "phone" and contact.phone:
        return Plan(template=template, status="phone_call_task", channel="phone")
    usable = {
        "email": contact.email is not None,
        "sms": is_mobile(contact.phone) and reach.sms,
        "letter": contact.has_address and (reach.any_letter or (
            not about.to_representative and template_for("letter", contact.needs) == WAITING_LIST)),
    }
    channel = next((c for c in _order(wanted) if usable[c]), None)
    if channel is None:
        return _call(template, wanted, _unusable(wanted or "letter", contact, reach)) if contact.phone else Plan(
            template=template, status="failed", error_code="no_contact_details")
    chosen = template_for(channel, contact.needs)
    subject, body = waiting_list_text(about, contact.name, channel, chosen)
    plan = _ready(chosen, channel, contact, subject, body, reach)
    if wanted is not None and wanted != channel:
        return replace(plan, fallback_from=wanted, fallback_reason=_unusable(wanted, contact, reach))
    return plan


def _order(wanted: Preference | None) -> list[Channel]:
    match wanted:
        case "email":
            return ["email", "letter", "sms"]
        case "sms" | "phone":
            return ["sms", "letter", "email"]
        case _:
            return ["letter", "email", "sms"]


def _unusable(wanted: Preference, contact: Contact, reach: Reach) -> str:
    """Why the wanted channel cannot carry the message: a code, never the address."""
    match wanted:
        case "email":
            return "no_email_address"
        case "sms":
            return "no_sms_provider" if is_mobile(contact.phone) else "no_mobile_number"
        case "letter":
            return "letter_not_printable" if contact.has_address else "no_address"
        case _:
            return "no_phone_number"


def _call(template: str, wanted: Preference | None, why: str) -> Plan:
    """The team phones instead: a task in its inbox, never recorded as sent."""
    return Plan(template=template, status="phone_call_task", channel="phone",
                fallback_from=wanted if wanted != "phone" else None, fallback_reason=why)


def _ready(template: str, channel: Channel, contact: Contact, subject: str, body: str, reach: Reach) -> Plan:
    to = {"email": contact.email, "sms": contact.phone, "letter": None, "phone": None}[channel]
    # without a letter provider the letter is queued for the documents service to print; it is not "sent"
    status: MessageStatus = "queued_for_print" if channel == "letter" and not reach.any_letter else "pending"
    address = (contact.name or "The occupier", *contact.address) if channel == "letter" else ()
    return Plan(template=template, status=status, channel=channel,
                rendered=Rendered(channel, to, subject, body, address))


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


def plan_referrer_message(reason: str, team: Team, referrer: Referrer | None, reach: Reach = Reach()) -> Plan | None:
    """R-T4: a copy for the referrer, where there is one: by email, else by SMS to a mobile number where a real
    SMS provider is configured, else a phone-call task for the team.

    None when there is nothing to copy (no referrer, or a reason the referrer is not told of).
    """
    template = REFERRER_TEMPLATES.get(reason)
    if template is None or referrer is None:
        return None
    contact = Contact(name=referrer.name, email=referrer.email, phone=referrer.phone, address=(), preferred="email")
    if contact.email is not None or (is_mobile(contact.phone) and reach.sms):
        channel: Channel = "email" if contact.email is not None else "sms"
        subject, body = referrer_waiting_list_text(team, referrer, channel)
        return _ready(template, channel, contact, subject, body, reach)
    if contact.phone:
        return _call(template, "sms" if is_mobile(contact.phone) else None,
                     "no_sms_provider" if is_mobile(contact.phone) else "no_email_or_mobile")
    return Plan(template=template, status="failed", error_code="no_contact_details")


UNDELIVERED = "undelivered"  # why a team phones: the email, text or letter failed (R-T4)


def phone_call_task(*, message_id: str, person_id: str, team_id: str, entry_id: str | None, addressee: Addressee,
                    about: WaitingList, why: str | None, at: datetime) -> InboxItem:
    """R-T4 (seed 004): the tray's team phones the person, their representative or the referrer to tell them they
    are on the waiting list, what regular contact to expect and the number to call; done when a member says so,
    or moot when the case leaves the tray first (the task is about its tray entry).

    Names and numbers are on the person's record (the link): the task carries none.
    """
    who = {"person": "the person", "representative": "the person's representative",
           "referrer": "the person's referrer"}[addressee]
    because = {
        "interpreter_needed": " Their record says they need an interpreter: arrange one for the call.",
        "no_sms_provider": " A text message cannot be sent (no text message service is set up).",
        UNDELIVERED: " The message in writing could not be sent or was not delivered.",
    }.get(why or "", "" if why is None else " They cannot be reached in writing.")
    tell = ("that the person is on the waiting list for" if addressee != "person" else
            "that they are on the waiting list for")
    return task(
        "phone_call", message_id, to=("team", team_id), person_id=person_id,
        title=f"Phone {who}: on the waiting list",
        why=(f"Phone {who} to tell them {tell} {about.team.name}, that someone from the team will contact them"
             f" {about.regular} while they wait, and that they should call {about.team.number} if the situation"
             f" changes.{because if why else ' They prefer to be phoned.'}"),
        rule="R-T4", subject=f"entry:{entry_id}" if entry_id else f"message:{message_id}", at=at)


# --- tasks: every system prompt reaches a named worker or team (issue #22 §1) ------------------

SYSTEM = "system"
TASK_NAMESPACE = uuid.UUID("6f1d0c2e-2b1a-4f4e-9a57-6a3b7f0c2d22")
TaskCode = Literal[
    "request_overdue", "tray_review_due", "case_note", "open_step_after_death", "renewal_due",
    "no_future_work", "escalation", "safe_and_well_check", "phone_call", "clock_warning",
    "clock_breached", "send_to_person", "case_closing",
]
TASK_CODES: tuple[TaskCode, ...] = (
    "request_overdue", "tray_review_due", "case_note", "open_step_after_death", "renewal_due",
    "no_future_work", "escalation", "safe_and_well_check", "phone_call", "clock_warning",
    "clock_breached", "send_to_person", "case_closing",
)
CLOCK_TASKS: tuple[TaskCode, ...] = ("clock_warning", "clock_breached")
RAG_WORDS = {"red": "Red", "amber": "Amber", "green": "Green"}


def task_id(code: TaskCode, *parts: str) -> str:
    """One task per prompt and recipient, whatever message carried it: its id is derived from what it is about."""
    return str(uuid.uuid5(TASK_NAMESPACE, ":".join((code, *parts))))


def uk_date(moment: date | datetime) -> str:
    """A date as people in the UK write it (3 December 2026), in Europe/London."""
    day = moment.astimezone(LONDON).date() if isinstance(moment, datetime) else moment
    return f"{day.day} {day.strftime('%B %Y')}"


def end_of_day(day: date) -> datetime:
    """A due date is met while that day lasts in Europe/London."""
    return datetime.combine(day + timedelta(days=1), time(0), LONDON)


def task(code: TaskCode, key: str, *, to: tuple[Literal["worker", "team"], str], person_id: str, title: str,
         why: str, rule: str, subject: str, at: datetime, by: str = SYSTEM, step_id: str | None = None,
         step_type: str | None = None, due: datetime | None = None) -> InboxItem:
    """A task in a worker's or team's inbox: who (`to`), why (the guide's words), the person and step, when due."""
    return InboxItem(
        request_id=task_id(code, key, to[0], to[1]), kind="task", recipient_kind=to[0], recipient_id=to[1],
        person_id=person_id, step_id=step_id, step_type=step_type, name=title, note=why, required=False,
        sent_by=by, sent_at=at, due_at=due, task_code=code, rule=rule, subject=subject)


def overdue_request_task(item: InboxItem, *, at: datetime) -> InboxItem:
    """R-S2: an open request passed its due time: its recipient gets a task to answer it, done when it is completed."""
    assert item.due_at is not None
    return task(
        "request_overdue", item.request_id, to=(item.recipient_kind, item.recipient_id), person_id=item.person_id,
        title=f"Overdue: {item.name}",
        why=(f"This request was sent on {uk_date(item.sent_at)} and was due by {uk_date(item.due_at)}. "
             "It is still waiting for you to complete it."),
        rule="R-S2", subject=f"request:{item.request_id}", at=at, step_id=item.step_id, step_type=item.step_type,
        due=item.due_at)


def tray_review_due_task(*, entry_id: str, person_id: str, team_id: str, rag: str, due_at: datetime,
                         at: datetime) -> InboxItem:
    """R-T5: a Planned Work Tray review fell due: the team contacts the person, done when the review is recorded."""
    return task(
        "tray_review_due", f"{entry_id}:{due_at.isoformat()}", to=("team", team_id), person_id=person_id,
        title="Planned Work Tray review due",
        why=(f"This {RAG_WORDS.get(rag, rag)} case on the Planned Work Tray is due its review: contact the person to"
             " check they are safe and well, whether anything has changed and whether the priority, complexity"
             " or RAG rating needs updating (if the RAG changes, tell them how often the team will now contact"
             " them: no new letter is sent), and record it on a \"PWT\" case note with a TM/TL notified."),
        rule="R-T5", subject=f"entry:{entry_id}", at=at, due=due_at)


def case_note_tasks(*, note_id: str, person_id: str, title: str, note_type: str, author: str,
                    notify_worker_ids: Iterable[str], at: datetime) -> list[InboxItem]:
    """R-P3, R-T5: each worker notified on a case note (not its author) is asked to read it; done when they say so.

    A tray review's "PWT" note notifies the TM/TL: this is how they hear of every review.
    """
    author = worker_of(author)
    review = title == "PWT" and note_type == "PWT"
    why = (f"A Planned Work Tray review was recorded on a \"PWT\" case note by {author} and you were notified:"
           " read it on the person's record and decide with the worker what happens next."
           if review else
           f"{author} wrote a \"{note_type}\" case note titled \"{title}\" and notified you: read it on the"
           " person's record.")
    return [task("case_note", note_id, to=("worker", worker), person_id=person_id, title=f"Case note: {title}",
                 why=why, rule="R-T5" if review else "R-P3", subject=f"note:{note_id}", at=at, by=author)
            for worker in dict.fromkeys(notify_worker_ids) if worker != author]


def death_tasks(*, person_id: str, date_of_death: date, actor: str, open_steps: Iterable[tuple[str, str]],
                at: datetime) -> list[InboxItem]:
    """R-K8: each step still open when a death is recorded is listed for the manager who recorded it, one task each,
    done when the step is finished or cancelled."""
    return [task(
        "open_step_after_death", step_id, to=("worker", actor), person_id=person_id,
        title=f"Person has died: close {step_type}",
        why=(f"The person's death on {uk_date(date_of_death)} was recorded while this {step_type} was still open."
             " Finish it with the right outcome, or cancel it, or pass it to whoever should."),
        rule="R-K8", subject=f"step:{step_id}", at=at, by=actor, step_id=step_id, step_type=step_type)
        for step_id, step_type in open_steps]


def renewal_task(*, step_id: str, person_id: str, step_type: str, assignee: tuple[Literal["worker", "team"], str],
                 renewal_due_date: date, renewal_number: int, next_renewal_date: date, at: datetime) -> InboxItem:
    """R-K6: Professional Support is renewed or closed every 4 weeks: its worker is asked, by the renewal date."""
    return task(
        "renewal_due", f"{step_id}:{renewal_number}", to=assignee, person_id=person_id,
        title=f"Renew or close {step_type}",
        why=(f"{step_type} must be renewed or closed every 4 weeks: renewal {renewal_number} is due on"
             f" {uk_date(renewal_due_date)} (the next on {uk_date(next_renewal_date)}). Renew it if it is still"
             " needed, or finish it."),
        rule="R-K6", subject=f"step:{step_id}", at=at, step_id=step_id, step_type=step_type,
        due=end_of_day(renewal_due_date))


def no_future_work_tasks(*, step_id: str, person_id: str, step_type: str, warned_worker_ids: Iterable[str],
                         at: datetime) -> list[InboxItem]:
    """R-K3: the person's last open work ended with nothing leading to a Future Work; the finisher and the
    authoriser are each asked to make one follow, done when a Future Work is created for the person."""
    return [task(
        "no_future_work", step_id, to=("worker", worker), person_id=person_id,
        title="Make sure a Future Work follows",
        why=(f"{step_type} was the last open work of a person with ongoing services, and nothing leads to a Future"
             " Work: one of the workflows must lead to a Future Work."),
        rule="R-K3", subject=f"person:{person_id}", at=at, step_id=step_id, step_type=step_type)
        for worker in dict.fromkeys(warned_worker_ids)]


def closing_tasks(*, step_id: str, workflow_id: str, person_id: str, step_type: str, closer: str,
                  told: Iterable[tuple[Literal["worker", "team"], str]], at: datetime) -> list[InboxItem]:
    """R-K1: a full case closure names another team still involved with the person: that team (or the worker whose
    relationship names no team) is told before the closure ends its involvement (R-A5), once per closure; done when
    a member of the team says so, since only they know whether they still have work with the person, or, the chance
    to speak before the closure being over, when the case closes (by its closer) or the closure step is cancelled
    (by whoever cancelled it)."""
    return [task(
        "case_closing", workflow_id, to=to, person_id=person_id, title="Case closing: your involvement will end",
        why=(f"{closer} finished {step_type} for a full case closure while"
             f" {'your team is' if to[0] == 'team' else 'you are'} still involved with the person. Closing the case"
             " ends every worker and organisational relationship of the person, yours included. If you still have"
             " work with the person, tell the closing worker before the case closes; otherwise mark this done."),
        rule="R-K1", subject=f"closure:{workflow_id}", at=at, by=closer, step_id=step_id, step_type=step_type)
        for to in dict.fromkeys(told)]


def send_to_person_task(*, step_id: str, person_id: str, step_type: str, to: tuple[Literal["worker", "team"], str],
                        signed_off_by: str, at: datetime) -> InboxItem:
    """R-K11: a signed-off statement of need, support plan or review goes to the person: its worker is asked to send
    it, done when they mark it done."""
    return task(
        "send_to_person", step_id, to=to, person_id=person_id, title=f"Send the {step_type} to the person",
        why=(f"The {step_type} was signed off on {uk_date(at)}. Send it to the person and their significant others:"
             " the statement of need and the care and support plan are the documents that go out to service users,"
             " and reviews are always sent out."),
        rule="R-K11", subject=f"step:{step_id}", at=at, by=signed_off_by, step_id=step_id, step_type=step_type)


def escalation_task(*, entry_id: str, person_id: str, team_name: str, to_team: str,
                    reason: Literal["red_over_a_month", "increased_risk"], placed_at: datetime, key: str,
                    actor: str, at: datetime) -> InboxItem:
    """R-T6: a case on a Planned Work Tray is escalated to the Strategic Service Manager of the team's service
    area, done when they record that it was discussed (explicitly) or the case leaves the tray."""
    because = (f"A Red case has been on the Planned Work Tray of {team_name} for over a month (since"
               f" {uk_date(placed_at)})." if reason == "red_over_a_month" else
               f"A Team Manager or Team Leader of {team_name} believes the person on their Planned Work Tray is at"
               " increased risk of harm.")
    return task(
        "escalation", key, to=("team", to_team), person_id=person_id,
        title="Escalation from the Planned Work Tray",
        why=(f"{because} Discuss the case with the Team Manager or Team Leader and record the discussion on a"
             " Management Discussion / Decision case note."),
        rule="R-T6", subject=f"entry:{entry_id}", at=at, by=actor)


def safe_and_well_task(*, entry_id: str, person_id: str, team_id: str, key: str, actor: str,
                       at: datetime) -> InboxItem:
    """R-T5: the person on the tray could not be contacted at a review: the team considers a safe and well check,
    done when a later review reaches the person, the case leaves the tray, or the team says so."""
    return task(
        "safe_and_well_check", key, to=("team", team_id), person_id=person_id,
        title="Consider a safe and well check",
        why=("It has not been possible to contact the person, or anyone relevant to them, at their Planned Work"
             " Tray review: consider a safe and well check."),
        rule="R-T5", subject=f"entry:{entry_id}", at=at, by=actor)


def clock_task(code: Literal["clock_warning", "clock_breached"], *, clock_id: str, title: str, rule: str,
               person_id: str, team_id: str, due_date: date, days_before: int | None, unit: str | None,
               at: datetime) -> InboxItem:
    """R-CL6: a statutory clock at risk or breached is a task for its team's manager (the team's inbox), done when
    the clock stops (the work is done); a breach also settles the warning."""
    if code == "clock_warning":
        left = f"{days_before} {'working days' if unit == 'working_days' else 'days'}"
        return task(code, clock_id, to=("team", team_id), person_id=person_id, title="A timescale is at risk",
                    why=f"{title}: due by {uk_date(due_date)}, {left} from now. Act before it is breached.",
                    rule=rule, subject=f"clock:{clock_id}", at=at, due=end_of_day(due_date))
    return task(code, clock_id, to=("team", team_id), person_id=person_id, title="A timescale was breached",
                why=f"{title}: it was due by {uk_date(due_date)} and the work is not done.",
                rule=rule, subject=f"clock:{clock_id}", at=at)


def unless_already_open(task: InboxItem, open_tasks: Iterable[InboxItem]) -> list[InboxItem]:
    """The task, unless the same kind of task about the same thing is still open for the same recipient (a second
    unreached review asks for the safe and well check already asked for)."""
    same = [i for i in open_tasks if i.is_open and i.task_code == task.task_code and i.subject == task.subject
            and (i.recipient_kind, i.recipient_id) == (task.recipient_kind, task.recipient_id)]
    return [] if same else [task]


# what, done elsewhere, completes which tasks: the closed_reason each gets
def settle(items: Iterable[InboxItem], *, codes: Iterable[TaskCode], reason: str, by: str,
           at: datetime) -> list[InboxItem]:
    """Open tasks of the given kinds whose subject was done elsewhere (the step finished, the request completed…)."""
    wanted = set(codes)
    return [replace(i, state="completed", closed_at=at, closed_by=by, closed_reason=reason)
            for i in items if i.is_open and i.kind == "task" and i.task_code in wanted]


FOLLOWS_STEP: tuple[TaskCode, ...] = ("renewal_due",)


def follow_step(items: Iterable[InboxItem], *, to: tuple[Literal["worker", "team"], str], by: str,
                at: datetime) -> tuple[list[InboxItem], list[InboxItem]]:
    """R-A4: a step reassigned takes its own open tasks (its renewal) to its new assignee: each is withdrawn
    (`reassigned`) and the same task made for the new assignee. Returns (withdrawn, new)."""
    moving = [i for i in items if i.is_open and i.kind == "task" and i.task_code in FOLLOWS_STEP
              and (i.recipient_kind, i.recipient_id) != to]
    withdrawn = [replace(i, state="withdrawn", closed_at=at, closed_by=by, closed_reason="reassigned")
                 for i in moving]
    moved = [replace(i, request_id=task_id(i.task_code, i.request_id, *to),  # type: ignore[arg-type]
                     recipient_kind=to[0], recipient_id=to[1], sent_at=at) for i in moving]
    return withdrawn, moved


def complete_task(item: InboxItem | None, *, worker_id: str, team_ids: Iterable[str], at: datetime) -> InboxItem:
    """The worker says the task is done: only its recipient worker, or a member of its recipient team."""
    if item is None or item.kind != "task":
        raise RuleBroken([reason("not_found", "there is no such task", "task_id")])
    if not item.is_open:
        raise RuleBroken([reason("not_open", f"the task is already {item.state}", "task_id")])
    mine = (item.recipient_kind == "worker" and item.recipient_id == worker_id) or (
        item.recipient_kind == "team" and item.recipient_id in set(team_ids))
    if not mine:
        raise RuleBroken([reason("forbidden", "only the worker or a member of the team the task is for may complete it",
                                "task_id")])
    return replace(item, state="completed", closed_at=at, closed_by=worker_id, closed_reason="done")
