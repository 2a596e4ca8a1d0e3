"""Subscribers of the notifications service: decode, call the domain, persist, emit."""

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
from faststream.kafka import KafkaRouter
from pydantic import BaseModel, ValidationError

from services.notifications import domain, store
from services.notifications.senders import EmailSender, NotifySender, with_retries
from shared import inbox, metrics, outbox, topics
from shared.broker import Context, KafkaMessage, subscriber
from shared.commands import notifications as cmd
from shared.commands.base import CommandRejected, Reason, RuleBroken, parse_command
from shared.envelope import Envelope, Undecodable, decode, describe_errors, parse
from shared.events.allocation import (
    MessageRequested,
    SafeAndWellCheckRequested,
    TrayEntryAdded,
    TrayEntryEscalated,
    TrayEntryRemoved,
    TrayEntryReviewed,
    TrayReviewDue,
)
from shared.events.base import Event
from shared.events.clocks import ClockBreached, ClockStopped, ClockWarning
from shared.events.notifications import (
    Addressee,
    MessageFailed,
    MessageSent,
    NotificationDelivered,
    Recipient,
    RequestReminder,
    TaskCompleted,
    TaskCreated,
)
from shared.events.referrals import CaseNoteAdded, ReferralAccepted, upcast_referral_accepted
from shared.events.scheduler import TimerCancel, TimerDue, TimerSet
from shared.events.workflow import (
    CaseClosed,
    CaseClosureWithdrawn,
    NotificationSent,
    PersonDeathRecorded,
    RequestCompleted,
    RequestRaised,
    StepAssigned,
    StepCancelled,
    StepCreated,
    StepFinished,
    StepRenewalDue,
    StepReturned,
)
from shared.readers import PersonReader

EMIT = outbox.Emitter("tessera/notifications")
GROUP = "notifications"
log = logging.getLogger(__name__)
router = KafkaRouter()
M = TypeVar("M", bound=BaseModel)


@dataclass
class Outbound:
    """What the handlers reach outside the database: the person record, the senders, the team table.

    With GOV.UK Notify every message leaves through it; without, email goes over SMTP, letters to the print
    queue, and there is no SMS (R-T4: a text falls back, it is never recorded as sent)."""

    people: PersonReader
    email: EmailSender
    teams: domain.TeamDirectory
    notify: NotifySender | None = None
    request_due_days: int = 5
    send_attempts: int = 3
    retry_backoff_seconds: float = 0.5

    @property
    def reach(self) -> domain.Reach:
        return domain.Reach(sms=self.notify is not None, any_letter=self.notify is not None)


# --- inboxes: workflow.events (R-RQ1, R-RQ2, R-S2) --------------------------------------------

INBOX_EVENTS: dict[str, type[Event]] = {
    m.TYPE: m for m in (RequestRaised, NotificationSent, RequestCompleted, StepCancelled, StepReturned,
                        StepFinished, StepCreated, StepRenewalDue, PersonDeathRecorded, StepAssigned, CaseClosed,
                        CaseClosureWithdrawn)
}
STEP_TASKS: tuple[domain.TaskCode, ...] = ("open_step_after_death", "renewal_due")


@subscriber(router, GROUP, topics.WORKFLOW_EVENTS, types=INBOX_EVENTS.keys())
async def on_workflow_event(
    msg: KafkaMessage, pool: asyncpg.Pool = Context("pool"), out: Outbound = Context("outbound"),
) -> None:
    """Requests, notifications and the workflow's prompts (R-K3, R-K6, R-K8) enter inboxes; what finishes,
    cancels, returns or completes their subject closes them."""
    envelope = decode(msg.body)
    model = INBOX_EVENTS.get(envelope.type)
    if model is None:
        return  # not ours
    event = parse(model, envelope)
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, envelope.id, topics.WORKFLOW_EVENTS):
            metrics.MESSAGES.labels(GROUP, topics.WORKFLOW_EVENTS, "duplicate").inc()
            return
        match event:
            case RequestRaised() | NotificationSent():
                messages = await _deliver(conn, envelope, event, out.request_due_days)
            case RequestCompleted():
                messages = await _complete(conn, envelope, event)
                messages += await _settle(conn, envelope, [f"request:{event.request_id}"], ("request_overdue",),
                                          "request_completed", event.actor)
            case StepCancelled() | StepReturned():
                messages = await _withdraw(conn, envelope, event)
                if isinstance(event, StepCancelled):
                    messages += await _settle(conn, envelope, [f"step:{event.step_id}"], STEP_TASKS,
                                              "step_cancelled", event.actor)
            case StepFinished():
                messages = await _settle(conn, envelope, [f"step:{event.step_id}"], STEP_TASKS, "step_finished",
                                         event.actor)
                if event.send_to_person is not None:  # R-K11
                    messages += await _add_tasks(conn, envelope, [domain.send_to_person_task(
                        step_id=event.step_id, person_id=event.person_id, step_type=event.step_type,
                        to=(event.send_to_person.kind, event.send_to_person.id), signed_off_by=event.actor,
                        at=envelope.time)])
                if event.told_of_closure:  # R-K1: other teams still involved are told the case is closing
                    messages += await _add_tasks(conn, envelope, domain.closing_tasks(
                        step_id=event.step_id, workflow_id=event.workflow_id, person_id=event.person_id,
                        step_type=event.step_type, closer=event.actor,
                        told=[(t.kind, t.id) for t in event.told_of_closure], at=envelope.time))
                if any(w.code == "no_future_work" for w in event.warnings):  # R-K3
                    messages += await _add_tasks(conn, envelope, domain.no_future_work_tasks(
                        step_id=event.step_id, person_id=event.person_id, step_type=event.step_type,
                        warned_worker_ids=event.warned_worker_ids, at=envelope.time))
            case StepCreated() if event.state == "future" or "future work" in event.step_type.lower():
                messages = await _settle(conn, envelope, [f"person:{event.person_id}"], ("no_future_work",),
                                         "future_work_created", domain.SYSTEM)
            case StepRenewalDue():  # R-K6: the earlier renewal, if still open, is overtaken by this one
                messages = await _settle(conn, envelope, [f"step:{event.step_id}"], ("renewal_due",), "superseded",
                                         domain.SYSTEM)
                messages += await _add_tasks(conn, envelope, [domain.renewal_task(
                    step_id=event.step_id, person_id=event.person_id, step_type=event.step_type,
                    assignee=(event.assignee.kind, event.assignee.id), renewal_due_date=event.renewal_due_date,
                    renewal_number=event.renewal_number, next_renewal_date=event.next_renewal_date,
                    at=envelope.time)])
            case StepAssigned():  # R-A4: the step's renewal goes with it
                withdrawn, moved = domain.follow_step(
                    await store.open_tasks_of(conn, [f"step:{event.step_id}"]),
                    to=(event.assignee.kind, event.assignee.id), by=event.actor, at=envelope.time)
                for item in withdrawn:
                    await store.update_item(conn, item)
                messages = [_task_completed(i, envelope) for i in withdrawn]
                messages += await _add_tasks(conn, envelope, moved)
            case CaseClosed():  # R-K1: the case closed; whoever was told it was closing has nothing left to say
                messages = await _settle(conn, envelope, [f"closure:{w}" for w in event.workflow_ids],
                                         ("case_closing",), "case_closed", event.actor)
            case CaseClosureWithdrawn():  # R-K1: not closing after all; their involvement goes on
                messages = await _settle(conn, envelope, [f"closure:{event.workflow_id}"], ("case_closing",),
                                         "closure_cancelled", event.actor)
            case PersonDeathRecorded():  # R-K8
                messages = await _add_tasks(conn, envelope, domain.death_tasks(
                    person_id=event.person_id, date_of_death=event.date_of_death, actor=event.actor,
                    open_steps=[(s.step_id, s.step_type) for s in event.open_steps], at=envelope.time))
            case _:
                messages = []
        await outbox.add(conn, messages)
    metrics.MESSAGES.labels(GROUP, topics.WORKFLOW_EVENTS, "handled").inc()


async def _deliver(conn: asyncpg.Connection, cause: Envelope, event: RequestRaised | NotificationSent,
                   due_days: int) -> list[outbox.Outgoing]:
    """One item per request id (a re-emitted event adds nothing); a request also sets its overdue timer."""
    item = domain.delivered(event, sent_at=cause.time, due_days=due_days, due=domain.requested_due(cause.data))
    if not await store.insert_item(conn, item):
        return []
    log.info("inbox item delivered", extra={"request_id": item.request_id, "kind": item.kind,
                                            "recipient_kind": item.recipient_kind})
    assert item.kind != "task" and item.step_id is not None  # a request or notification is always of a step
    delivered = NotificationDelivered(
        request_id=item.request_id, kind=item.kind, step_id=item.step_id, person_id=item.person_id,
        recipient=Recipient(kind=item.recipient_kind, id=item.recipient_id), due_at=item.due_at)
    messages = [EMIT.event(topics.NOTIFICATIONS_EVENTS, delivered, cause, item.person_id)]
    if item.due_at is not None:
        timer = TimerSet(key=domain.timer_key(item.request_id), due_at=item.due_at, owner=domain.OWNER,
                         payload={"request_id": item.request_id})
        messages.append(EMIT.timer(timer, cause, item.person_id))
    return messages


async def _complete(conn: asyncpg.Connection, cause: Envelope, event: RequestCompleted) -> list[outbox.Outgoing]:
    done = domain.complete(await store.load_item(conn, event.request_id, for_update=True),
                           by=event.actor, at=cause.time)
    if done is None:
        return []
    await store.update_item(conn, done)
    return _cancel_timers([done], cause)


async def _withdraw(conn: asyncpg.Connection, cause: Envelope,
                    event: StepCancelled | StepReturned) -> list[outbox.Outgoing]:
    returned = isinstance(event, StepReturned)
    withdrawn = domain.withdraw(await store.open_items_of_step(conn, event.step_id), by=event.actor,
                                at=cause.time, why="step_returned" if returned else "step_cancelled",
                                required_only=returned)
    for item in withdrawn:
        await store.update_item(conn, item)
    settled = await _settle(conn, cause, [f"request:{i.request_id}" for i in withdrawn], ("request_overdue",),
                            "request_withdrawn", event.actor) if withdrawn else []
    return _cancel_timers(withdrawn, cause) + settled


def _cancel_timers(items: list[domain.InboxItem], cause: Envelope) -> list[outbox.Outgoing]:
    return [EMIT.timer(TimerCancel(key=domain.timer_key(i.request_id)), cause, i.person_id)
            for i in items if i.due_at is not None]


# --- overdue reminders: scheduler.due (R-S2) --------------------------------------------------


@subscriber(router, GROUP, topics.SCHEDULER_DUE)
async def on_timer_due(msg: KafkaMessage, pool: asyncpg.Pool = Context("pool")) -> None:
    """An overdue timer of an open request marks it overdue and reminds, once; a stale one does nothing."""
    envelope = decode(msg.body)
    if envelope.type != TimerDue.TYPE or envelope.data.get("owner") != domain.OWNER:
        return  # another service's timer
    due = parse(TimerDue, envelope)
    request_id = domain.request_of_timer(due.key)
    if request_id is None:
        raise Undecodable("invalid timer.due: key: not an overdue-request timer")
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, envelope.id, topics.SCHEDULER_DUE):
            return
        reminded = domain.remind(await store.load_item(conn, request_id, for_update=True),
                                 timer_due_at=due.due_at, now=datetime.now(UTC))
        if reminded is None:
            metrics.MESSAGES.labels(GROUP, topics.SCHEDULER_DUE, "stale").inc()
            return
        await store.update_item(conn, reminded)
        assert reminded.due_at is not None and reminded.step_id is not None
        reminder = RequestReminder(
            request_id=reminded.request_id, step_id=reminded.step_id, person_id=reminded.person_id,
            recipient=Recipient(kind=reminded.recipient_kind, id=reminded.recipient_id),
            due_at=reminded.due_at, sent_at=reminded.sent_at)
        task = domain.overdue_request_task(reminded, at=envelope.time)  # R-S2: the reminder is a task
        await outbox.add(conn, [EMIT.event(topics.NOTIFICATIONS_EVENTS, reminder, envelope, reminded.person_id),
                                *await _add_tasks(conn, envelope, [task])])
    log.info("overdue request reminded", extra={"request_id": request_id})
    metrics.MESSAGES.labels(GROUP, topics.SCHEDULER_DUE, "handled").inc()


# --- messages to people: allocation.events (R-T4) ---------------------------------------------


TRAY_EVENTS: dict[str, type[Event]] = {
    m.TYPE: m for m in (TrayReviewDue, TrayEntryReviewed, SafeAndWellCheckRequested, TrayEntryEscalated,
                        TrayEntryRemoved, TrayEntryAdded)
}


# a transaction per message: a message's pending record commits before the email or SMS goes (send_message)
@subscriber(router, GROUP, topics.ALLOCATION_EVENTS, types={*TRAY_EVENTS, MessageRequested.TYPE}, batched=False)
async def on_allocation_event(
    msg: KafkaMessage, pool: asyncpg.Pool = Context("pool"), out: Outbound = Context("outbound"),
) -> None:
    """`message.requested` tells a person by their preferred method; the tray's prompts become tasks."""
    envelope = decode(msg.body)
    if envelope.type in TRAY_EVENTS:
        await _on_tray_event(pool, out, envelope, parse(TRAY_EVENTS[envelope.type], envelope))
        return
    if envelope.type != MessageRequested.TYPE:
        return
    outcome = await send_message(pool, out, envelope, parse(MessageRequested, envelope))
    metrics.MESSAGES.labels(GROUP, topics.ALLOCATION_EVENTS, outcome).inc()


# a case leaving the tray (removed, allocated, closed) settles these; a waiting-list phone call is moot then
ENTRY_TASKS: tuple[domain.TaskCode, ...] = ("tray_review_due", "safe_and_well_check", "escalation", "phone_call")


async def _on_tray_event(pool: asyncpg.Pool, out: Outbound, envelope: Envelope, event: BaseModel) -> None:
    """R-T5, R-T6: a review due, a safe and well check and an escalation are tasks; a review or removal settles them."""
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, envelope.id, topics.ALLOCATION_EVENTS):
            metrics.MESSAGES.labels(GROUP, topics.ALLOCATION_EVENTS, "duplicate").inc()
            return
        at = envelope.time
        match event:
            case TrayReviewDue():
                messages = await _add_tasks(conn, envelope, [domain.tray_review_due_task(
                    entry_id=event.entry_id, person_id=event.person_id, team_id=event.team_id, rag=event.rag,
                    due_at=event.due_at, at=at)])
            case TrayEntryReviewed():
                done: tuple[domain.TaskCode, ...] = ("tray_review_due", "safe_and_well_check") \
                    if event.contacted else ("tray_review_due",)
                messages = await _settle(conn, envelope, [f"entry:{event.entry_id}"], done, "reviewed", event.actor)
            case SafeAndWellCheckRequested():
                check = domain.safe_and_well_task(entry_id=event.entry_id, person_id=event.person_id,
                                                  team_id=event.team_id, key=str(envelope.id), actor=event.actor,
                                                  at=at)
                open_ones = await store.open_tasks_of(conn, [f"entry:{event.entry_id}"])
                messages = await _add_tasks(conn, envelope, domain.unless_already_open(check, open_ones))
            case TrayEntryEscalated():
                key = f"{event.entry_id}:{event.reason}" if event.reason == "red_over_a_month" else str(envelope.id)
                messages = await _add_tasks(conn, envelope, [domain.escalation_task(
                    entry_id=event.entry_id, person_id=event.person_id,
                    team_name=out.teams.team(event.team_id).name, to_team=out.teams.escalation_team(event.team_id),
                    reason=event.reason, placed_at=event.placed_at, key=key, actor=event.actor, at=at)])
            case TrayEntryRemoved():
                messages = await _settle(conn, envelope, [f"entry:{event.entry_id}"], ENTRY_TASKS,
                                         "removed_from_tray", event.actor)
            case TrayEntryAdded():  # R-T4: its RAG says what regular contact the waiting-list message promises
                await store.keep_placement(conn, event.entry_id, event.rag)
                messages = []
            case _:
                messages = []
        await outbox.add(conn, messages)
    metrics.MESSAGES.labels(GROUP, topics.ALLOCATION_EVENTS, "handled").inc()


# --- statutory clocks: clocks.events (R-CL6) ----------------------------------------------------

CLOCK_EVENTS: dict[str, type[Event]] = {
    m.TYPE: m for m in (ClockWarning, ClockBreached, ClockStopped)
}


@subscriber(router, GROUP, topics.CLOCKS_EVENTS, types=CLOCK_EVENTS.keys())
async def on_clock_event(msg: KafkaMessage, pool: asyncpg.Pool = Context("pool")) -> None:
    """A clock at risk or breached is a task for its team's manager; the clock stopping settles them (R-CL6)."""
    envelope = decode(msg.body)
    model = CLOCK_EVENTS.get(envelope.type)
    if model is None:
        return  # started, paused, resumed: no one is asked anything
    event = parse(model, envelope)
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, envelope.id, topics.CLOCKS_EVENTS):
            metrics.MESSAGES.labels(GROUP, topics.CLOCKS_EVENTS, "duplicate").inc()
            return
        subject = [f"clock:{event.clock_id}"]  # type: ignore[attr-defined]
        match event:
            case ClockStopped():
                messages = await _settle(conn, envelope, subject, domain.CLOCK_TASKS, "clock_stopped", domain.SYSTEM)
            case ClockWarning() | ClockBreached() if event.team_id is not None:
                breached = isinstance(event, ClockBreached)
                messages = await _settle(conn, envelope, subject, ("clock_warning",), "clock_breached",
                                         domain.SYSTEM) if breached else []
                messages += await _add_tasks(conn, envelope, [domain.clock_task(
                    "clock_breached" if breached else "clock_warning", clock_id=event.clock_id, title=event.title,
                    rule=event.rule, person_id=event.person_id, team_id=event.team_id, due_date=event.due_date,
                    days_before=getattr(event, "days_before", None), unit=getattr(event, "unit", None),
                    at=envelope.time)])
            case _:
                messages = []
        await outbox.add(conn, messages)
    metrics.MESSAGES.labels(GROUP, topics.CLOCKS_EVENTS, "handled").inc()


# --- tasks: what every prompt becomes, and what completes it (issue #22 §1) ---------------------


async def _add_tasks(conn: asyncpg.Connection, cause: Envelope | None,
                     tasks: list[domain.InboxItem]) -> list[outbox.Outgoing]:
    """Each task once (its id comes from what it is about): `task.created` for the new ones."""
    messages = []
    for item in tasks:
        if not await store.insert_item(conn, item):
            continue
        log.info("task created", extra={"task_id": item.request_id, "code": item.task_code,
                                        "recipient_kind": item.recipient_kind})
        assert item.task_code is not None and item.rule is not None
        created = TaskCreated(task_id=item.request_id, code=item.task_code, rule=item.rule,
                              recipient=Recipient(kind=item.recipient_kind, id=item.recipient_id),
                              person_id=item.person_id, step_id=item.step_id, due_at=item.due_at)
        messages.append(EMIT.event(topics.NOTIFICATIONS_EVENTS, created, cause, item.person_id))
    return messages


async def _settle(conn: asyncpg.Connection, cause: Envelope, subjects: list[str], codes: tuple[domain.TaskCode, ...],
                  how: str, by: str) -> list[outbox.Outgoing]:
    """Open tasks of these subjects and kinds are done: what they asked for happened elsewhere."""
    done = domain.settle(await store.open_tasks_of(conn, subjects), codes=codes, reason=how, by=by, at=cause.time)
    for item in done:
        await store.update_item(conn, item)
    return [_task_completed(item, cause) for item in done]


def _task_completed(item: domain.InboxItem, cause: Envelope, note: str | None = None) -> outbox.Outgoing:
    assert item.closed_by is not None and item.closed_reason is not None and item.task_code is not None
    return EMIT.event(topics.NOTIFICATIONS_EVENTS, TaskCompleted(task_id=item.request_id, code=item.task_code,
                                recipient=Recipient(kind=item.recipient_kind, id=item.recipient_id),
                                person_id=item.person_id, by=item.closed_by, how=item.closed_reason, note=note),
                  cause, item.person_id)


@subscriber(router, GROUP, topics.NOTIFICATIONS_COMMANDS)
async def on_command(msg: KafkaMessage, pool: asyncpg.Pool = Context("pool")) -> None:
    """`task.complete`: the task's recipient says it is done; exactly one outcome, `task.completed` or
    `command.rejected`."""
    envelope = decode(msg.body)
    command: cmd.Command | None = None
    refused: list[Reason] = []
    try:
        command = parse_command(cmd.COMMANDS, envelope.type, envelope.data)
    except RuleBroken as early:
        refused = early.reasons
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, envelope.id, topics.NOTIFICATIONS_COMMANDS):
            return
        key = envelope.subject or str(envelope.id)
        if isinstance(command, cmd.CompleteTask):
            item = await store.load_item(conn, command.task_id, for_update=True)
            key = item.person_id if item is not None else key
            try:
                done = domain.complete_task(item, worker_id=command.actor.worker_id, team_ids=command.actor.team_ids,
                                            at=envelope.time)
            except RuleBroken as no:
                refused = no.reasons
            else:
                await store.update_item(conn, done)
                await outbox.add(conn, [_task_completed(done, envelope, command.note)])
                log.info("task completed", extra={"task_id": done.request_id, "code": done.task_code})
                metrics.MESSAGES.labels(GROUP, topics.NOTIFICATIONS_COMMANDS, "handled").inc()
                return
        rejected = CommandRejected.because(envelope.type, refused)
        await outbox.add(conn, [EMIT.event(topics.NOTIFICATIONS_EVENTS, rejected, envelope, key)])
    log.info("command rejected", extra={"message_id": str(envelope.id), "type": envelope.type[:100],
                                        "codes": sorted({r.code for r in refused})})
    metrics.MESSAGES.labels(GROUP, topics.NOTIFICATIONS_COMMANDS, "rejected").inc()


# --- referrers: referrals.events (R-T4), the v2 consumer of referral.accepted --------------------


@subscriber(router, GROUP, topics.REFERRALS_EVENTS, types={CaseNoteAdded.TYPE, ReferralAccepted.TYPE})
async def on_referral_event(msg: KafkaMessage, pool: asyncpg.Pool = Context("pool")) -> None:
    """`referral.accepted`, any version (upcast to v2): its referrer is the one a tray message is copied to;
    `case_note.added`: each worker notified on the note gets a task to read it (R-P3, R-T5)."""
    envelope = decode(msg.body)
    if envelope.type == CaseNoteAdded.TYPE:
        await _on_case_note(pool, envelope, parse(CaseNoteAdded, envelope))
        return
    if envelope.type != ReferralAccepted.TYPE:
        return  # not ours
    try:
        accepted = upcast_referral_accepted(envelope)
    except ValueError as exc:  # a ValidationError, or a dataschema of another type
        raise Undecodable(f"invalid {ReferralAccepted.TYPE}: {_why(exc)}") from None
    given = accepted.referrer
    referrer = domain.Referrer(accepted.referral_id, given.name if given else None,
                               given.email if given else None, given.phone if given else None)
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, envelope.id, topics.REFERRALS_EVENTS):
            metrics.MESSAGES.labels(GROUP, topics.REFERRALS_EVENTS, "duplicate").inc()
            return
        await store.keep_referrer(conn, accepted.person_id, envelope.time, referrer)
    metrics.MESSAGES.labels(GROUP, topics.REFERRALS_EVENTS, "handled").inc()


async def _on_case_note(pool: asyncpg.Pool, envelope: Envelope, note: CaseNoteAdded) -> None:
    tasks = domain.case_note_tasks(note_id=note.note_id, person_id=note.person_id, title=note.title,
                                   note_type=note.type, author=note.author, notify_worker_ids=note.notify_worker_ids,
                                   at=envelope.time)
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, envelope.id, topics.REFERRALS_EVENTS):
            metrics.MESSAGES.labels(GROUP, topics.REFERRALS_EVENTS, "duplicate").inc()
            return
        await outbox.add(conn, await _add_tasks(conn, envelope, tasks))
    metrics.MESSAGES.labels(GROUP, topics.REFERRALS_EVENTS, "handled").inc()


def _why(exc: ValueError) -> str:
    return describe_errors(exc) if isinstance(exc, ValidationError) else str(exc)


async def send_message(pool: asyncpg.Pool, out: Outbound, envelope: Envelope, requested: MessageRequested) -> str:
    """Record, send outside any transaction, then record the outcomes, their events and any phone-call task with
    the inbox row.

    One record per recipient of the source message (the person or their representative, and the referrer's
    copy, R-T4): a redelivery after the outcome does nothing, and one after a crash mid-send sends again (at
    least once) under the same message ids.
    """
    earlier = await store.messages_of_source(pool, envelope.id)
    if any(r.status in domain.FINAL_STATUSES for r in earlier.values()):
        return "duplicate"
    found, person = await out.people.get(requested.person_id)
    if found == "unavailable":  # transient: the middleware retries with backoff, nothing recorded as failed
        raise ConnectionError("the referrals service did not answer")
    team = out.teams.team(requested.team_id, requested.team_contact_number)
    about = domain.WaitingList(team, domain.regular_contact(await store.placement_rag(pool, requested.entry_id)))
    addressee, contact, about = await _addressee(out, person, about)
    plans: dict[Addressee, domain.Plan] = {
        addressee: domain.plan_message(requested.reason, about, contact, requested.channel, out.reach)}
    referrer = await _referrer(pool, out, requested.person_id)
    copy = domain.plan_referrer_message(requested.reason, team, referrer, out.reach)
    if copy is not None:
        plans["referrer"] = copy
    records, calls = [], []
    for recipient, plan in plans.items():
        record = earlier.get(recipient) or _new_record(envelope, requested, about, recipient, plan, referrer)
        record = await _send_message(pool, out, replace(record, channel=plan.channel, template=plan.template), plan)
        if record.status in ("phone_call_task", "failed"):  # the person is still told: the team phones (R-T4)
            why = plan.fallback_reason if record.status == "phone_call_task" else domain.UNDELIVERED
            calls.append(domain.phone_call_task(
                message_id=str(record.message_id), person_id=record.person_id, team_id=requested.team_id,
                entry_id=requested.entry_id, addressee=recipient, about=about, why=why, at=envelope.time))
            record = replace(record, task_id=calls[-1].request_id)
        records.append(record)
    if not await _record_outcomes(pool, envelope, records, calls):
        return "duplicate"
    return records[0].status


async def _addressee(out: Outbound, person: dict[str, Any] | None,
                     about: domain.WaitingList) -> tuple[Addressee, domain.Contact | None, domain.WaitingList]:
    """The person, or their representative where they have one (seed 004: "the person or their representative"),
    with what the message says of the person. A representative referrals cannot find: the person is told."""
    contact = domain.contact_of(person) if person else None
    representative_id = domain.representative_of(person) if person else None
    if representative_id is None:
        return "person", contact, about
    found, representative = await out.people.get(representative_id)
    if found == "unavailable":
        raise ConnectionError("the referrals service did not answer")
    if representative is None:
        return "person", contact, about
    return "representative", domain.contact_of(representative), replace(
        about, person_name=contact.name if contact else None, to_representative=True)


async def _referrer(pool: asyncpg.Pool, out: Outbound, person_id: str) -> domain.Referrer | None:
    """Who referred the person, from their referral.accepted; if that has not been read yet (the tray event
    can come first after an outage: two topics), referrals is asked, and its answer kept (R-T4)."""
    known, referrer = await store.referrer_of(pool, person_id)
    if known:
        return referrer
    latest = await out.people.latest_referral(person_id)  # Unavailable: retried with backoff
    if latest is None:
        return None
    given = latest.get("referrer") or {}
    referrer = domain.Referrer(str(latest["referral_id"]), given.get("name"), given.get("email"), given.get("phone"))
    async with pool.acquire() as conn, conn.transaction():
        await store.keep_referrer(conn, person_id, datetime.fromisoformat(latest["accepted_at"]), referrer)
    return referrer if any((referrer.name, referrer.email, referrer.phone)) else None


def _new_record(envelope: Envelope, requested: MessageRequested, about: domain.WaitingList, recipient: Addressee,
                plan: domain.Plan, referrer: domain.Referrer | None) -> store.MessageRecord:
    now = datetime.now(UTC)
    params = {"team_id": requested.team_id, "team_name": about.team.name, "team_number": about.team.number,
              "regular_contact": about.regular, "entry_id": requested.entry_id}
    if recipient == "referrer" and referrer is not None:
        params["referral_id"] = referrer.referral_id
    return store.MessageRecord(
        message_id=uuid.uuid4(), source_message_id=envelope.id, recipient=recipient,
        person_id=requested.person_id, team_id=requested.team_id, reason=requested.reason, template=plan.template,
        channel=plan.channel, status="pending", attempts=0, error_code=None, provider_ref=None, params=params,
        requested_at=now, updated_at=now, fallback_from=plan.fallback_from, fallback_reason=plan.fallback_reason)


SETTLED_BY = {"queued_for_print": "print_queue", "phone_call_task": "team"}


async def _send_message(pool: asyncpg.Pool, out: Outbound, record: store.MessageRecord,
                        plan: domain.Plan) -> store.MessageRecord:
    """Send through Notify or SMTP (its pending record written first), or settle a queued letter, a phone call
    for the team or a failure at once."""
    if plan.status != "pending":
        return replace(record, status=plan.status, error_code=plan.error_code, updated_at=datetime.now(UTC),
                       provider=SETTLED_BY.get(plan.status))
    async with pool.acquire() as conn, conn.transaction():
        await store.insert_message(conn, record)
    tries, reference, error = await _send(out, str(record.message_id), plan)
    return replace(record, attempts=record.attempts + tries, provider_ref=reference, error_code=error,
                   status="sent" if error is None else "failed", updated_at=datetime.now(UTC),
                   provider="notify" if out.notify is not None else "smtp")


async def _send(out: Outbound, message_id: str, plan: domain.Plan) -> tuple[int, str | None, str | None]:
    rendered = plan.rendered
    assert rendered is not None
    notify = out.notify

    async def once() -> str:
        if notify is not None:
            return await notify.send(message_id, plan.template, rendered)
        assert rendered.channel == "email"  # without Notify there is no SMS, and letters are queued for print
        return await out.email.send(message_id, rendered.to or "", rendered.subject, rendered.body)

    return await with_retries(once, out.send_attempts, out.retry_backoff_seconds)


async def _record_outcomes(pool: asyncpg.Pool, cause: Envelope, records: list[store.MessageRecord],
                           calls: list[domain.InboxItem]) -> bool:
    """The outcomes, their events, the phone-call tasks and the inbox row in one transaction; False if another
    copy got there first."""
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, cause.id, topics.ALLOCATION_EVENTS):
            return False
        for record in records:
            if not await store.insert_message(conn, record):
                await store.update_message(conn, record)
        await outbox.add(conn, [EMIT.event(topics.NOTIFICATIONS_EVENTS, _message_event(r), cause, r.person_id)
                                for r in records])
        await outbox.add(conn, await _add_tasks(conn, cause, calls))
    for record in records:
        log.info("message about a person recorded", extra={
            "message_id": str(record.message_id), "person_id": record.person_id, "recipient": record.recipient,
            "channel": record.channel, "status": record.status, "attempts": record.attempts,
            "error_code": record.error_code, "provider": record.provider, "fallback_from": record.fallback_from,
            "fallback_reason": record.fallback_reason})
    return True


def _message_event(record: store.MessageRecord) -> Event:
    if record.status == "failed":
        return MessageFailed(message_id=str(record.message_id), person_id=record.person_id,
                             recipient=record.recipient, channel=record.channel, reason=record.reason,
                             team_id=record.team_id, error_code=record.error_code or "not_sent",
                             attempts=record.attempts, task_id=record.task_id)
    assert record.status != "pending" and record.channel is not None  # sent or settled, on a channel
    return MessageSent(message_id=str(record.message_id), person_id=record.person_id, recipient=record.recipient,
                       channel=record.channel, status=record.status, reason=record.reason, team_id=record.team_id,
                       template=record.template, attempts=record.attempts,
                       team_name=record.params.get("team_name"), team_number=record.params.get("team_number"),
                       regular_contact=record.params.get("regular_contact"), provider=record.provider,
                       fallback_from=record.fallback_from, fallback_reason=record.fallback_reason,
                       task_id=record.task_id)


# --- what goes out -----------------------------------------------------------------------------


# --- what came of it: the provider's delivery receipts -------------------------------------------


async def take_receipt(pool: asyncpg.Pool, provider_ref: str, delivered: bool, status: str,
                       at: datetime) -> str:
    """A provider's word on a message it took: delivered is kept with its time; not delivered makes the message
    failed, with the phone call for the tray's team that a failed send gets (R-T4), and `message.failed`. A
    receipt repeated or late (the message already settled) changes nothing. What became of it, for the caller."""
    async with pool.acquire() as conn, conn.transaction():
        record = await store.message_sent_as(conn, provider_ref)
        if record is None:
            return "unknown"
        if record.status != "sent" or record.delivered_at is not None:
            return "unchanged"
        if delivered:
            await store.update_message(conn, replace(record, delivered_at=at, updated_at=at))
            return "delivered"
        call = _undelivered_call(record, at)
        failed = replace(record, status="failed", error_code=f"notify_{status}", updated_at=at,
                         task_id=call.request_id if call else None)
        await store.update_message(conn, failed)
        await outbox.add(conn, [EMIT.event(topics.NOTIFICATIONS_EVENTS, _message_event(failed), None,
                                           failed.person_id)])
        await outbox.add(conn, await _add_tasks(conn, None, [call] if call else []))
    log.info("message not delivered", extra={"message_id": str(record.message_id), "error_code": failed.error_code,
                                             "task_id": failed.task_id})
    return "failed"


def _undelivered_call(record: store.MessageRecord, at: datetime) -> domain.InboxItem | None:
    """The phone call for the team the message was from, told what it tells the person (kept with the record)."""
    if record.team_id is None:
        return None
    params = record.params
    about = domain.WaitingList(domain.Team(params.get("team_name") or "the team", params.get("team_number") or ""),
                               params.get("regular_contact") or "regularly")
    return domain.phone_call_task(message_id=str(record.message_id), person_id=record.person_id,
                                  team_id=record.team_id, entry_id=params.get("entry_id"),
                                  addressee=record.recipient, about=about, why=domain.UNDELIVERED, at=at)
