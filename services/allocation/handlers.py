"""Subscribers of the allocation service: decode, call the domain, persist, emit."""

import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
from faststream.kafka import KafkaRouter
from pydantic import ValidationError

from services.allocation import domain, store
from services.allocation.clients import WorkReader
from services.allocation.localities import Localities
from shared import access_reasons, audit, inbox, metrics, outbox, topics
from shared.actor import above_teams
from shared.broker import Context, KafkaMessage, subscriber
from shared.commands import allocation as cmd
from shared.commands.base import CommandRejected, RuleBroken, parse_command, reason
from shared.commands.referrals import AddCaseNote
from shared.envelope import Envelope, Undecodable, decode, describe_errors, parse
from shared.events.referrals import ReferralAccepted
from shared.events.scheduler import TimerCancel, TimerDue, TimerSet
from shared.events.workflow import CaseClosed, StepRescheduled
from shared.readers import PersonReader

EMIT = outbox.Emitter("tessera/allocation")
GROUP = "allocation"
SYSTEM = domain.Actor("system:allocation")
log = logging.getLogger(__name__)
router = KafkaRouter()
_WorkflowEvent = TypeVar("_WorkflowEvent", StepRescheduled, CaseClosed)


@dataclass
class Readers:
    """What a command may need from other services, read before its transaction opens."""

    people: PersonReader | None = None
    work: WorkReader | None = None
    team_contact_numbers: dict[str, str] | None = None
    localities: Localities | None = None


@dataclass
class Looked:
    """What was read for one command: the person's steps, their record, whether they exist."""

    person_id: str | None = None
    steps: list[domain.Step] | None = None
    person: dict[str, Any] | None = None
    person_missing: bool = False
    steps_unavailable: bool = False


# --- referrals: the small local view of a person's urgency and residence ----------------------


@subscriber(router, GROUP, topics.REFERRALS_EVENTS, types={ReferralAccepted.TYPE})
async def on_referral_event(msg: KafkaMessage, pool: asyncpg.Pool = Context("pool")) -> None:
    """`referral.accepted` keeps the person's urgency, service and residence (R-T2); others are not ours."""
    envelope = decode(msg.body)
    if envelope.type != ReferralAccepted.TYPE:
        return
    accepted = parse(ReferralAccepted, envelope)
    resident = envelope.data.get("ordinarily_resident")
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, envelope.id, topics.REFERRALS_EVENTS):
            return
        await store.record_referral(conn, accepted.person_id, accepted.urgency, accepted.service,
                                    resident if isinstance(resident, bool) else None, envelope.time)
    metrics.MESSAGES.labels(GROUP, topics.REFERRALS_EVENTS, "handled").inc()


# --- commands ----------------------------------------------------------------------------------


@subscriber(router, GROUP, topics.ALLOCATION_COMMANDS)
async def on_command(
    msg: KafkaMessage, pool: asyncpg.Pool = Context("pool"), readers: Readers = Context("readers"),
) -> None:
    """An allocation command: exactly one outcome, its events or `command.rejected`."""
    envelope = decode(msg.body)
    outcome = await handle_command(pool, readers, envelope)
    metrics.MESSAGES.labels(GROUP, topics.ALLOCATION_COMMANDS, outcome).inc()


async def handle_command(pool: asyncpg.Pool, readers: Readers, envelope: Envelope) -> str:
    """Validate and read, then in one transaction: inbox, lock the case, decide, save, outbox."""
    command: cmd.Command | None = None
    refused: RuleBroken | None = None
    looked = Looked()
    try:
        command = parse_command(cmd.COMMANDS, envelope.type, envelope.data)
        looked = await _look(pool, readers, command)
    except RuleBroken as early:
        refused = early
    key = looked.person_id or envelope.subject or str(envelope.id)
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, envelope.id, topics.ALLOCATION_COMMANDS):
            return "duplicate"
        if command is not None and refused is None:
            try:
                async with conn.transaction():  # savepoint: a lost race undoes its writes, keeps the inbox
                    case, decision = await _decide(conn, readers, command, looked)
                    await _save(conn, case, decision)
                    await audit.append(conn, audit.access_reason(command, envelope, key))
                    await _keep_reason(conn, command, envelope, looked.person_id)
            except RuleBroken as late:
                refused = late
            except asyncpg.UniqueViolationError:
                refused = RuleBroken([reason("conflict", "another command changed this case at the same time;"
                                                       " look again and retry")])
            else:
                await outbox.add(conn, _messages(decision, envelope, key, command.actor))
                return "handled"
        assert refused is not None
        rejected = CommandRejected.because(envelope.type, refused.reasons)
        await outbox.add(conn, EMIT.outcome(topics.ALLOCATION_EVENTS, [rejected], envelope, key))
    log.info("command rejected", extra={"message_id": str(envelope.id), "type": envelope.type[:100],
                                        "codes": sorted({r.code for r in refused.reasons})})
    return "rejected"


async def _keep_reason(conn: asyncpg.Connection, command: cmd.Command, envelope: Envelope,
                       person_id: str | None) -> None:
    """Issue #21: a reason given to act on a person (break-glass) is kept for GET /people/{id}/access-reasons."""
    why = getattr(command, "access_reason", None)
    if not why or person_id is None:
        return
    await access_reasons.keep(conn, command, envelope.id, person_id, why)


async def _look(pool: asyncpg.Pool, readers: Readers, command: cmd.Command) -> Looked:
    """Whose case it is, and what other services must tell us first (R-A3, R-A6, R-T2, R-T4)."""
    looked = await _look_up(pool, readers, command)
    if looked.steps is None and _needs_grounds(command):
        assert looked.person_id is not None
        looked.steps = await _steps(readers, looked.person_id)
    return looked


def _needs_grounds(command: cmd.Command) -> bool:
    """R-A6, R-A7: the actor's grounds with the person are checked, and may lie in the person's work."""
    if above_teams(command.actor.roles) or getattr(command, "access_reason", None):
        return False
    return isinstance(command, cmd.AddWorkerRelationship | cmd.AddOrgRelationship | cmd.EndOrgRelationship)


async def _steps(readers: Readers, person_id: str) -> list[domain.Step]:
    steps = await readers.work.steps(person_id) if readers.work is not None else []
    if steps is None:
        raise RuleBroken([reason("unavailable", "the person's work could not be read from the workflow"
                                              " service; nothing was changed, try again")])
    return steps


async def _look_up(pool: asyncpg.Pool, readers: Readers, command: cmd.Command) -> Looked:
    match command:
        case cmd.EndWorkerRelationship() | cmd.EndOrgRelationship():
            kind = "worker" if isinstance(command, cmd.EndWorkerRelationship) else "org"
            pid = await store.person_of_relationship(pool, kind, command.relationship_id)
            if pid is None:
                raise RuleBroken([reason("not_found", "no such relationship", "relationship_id")])
            return Looked(person_id=pid)
        case cmd.ReviewTrayEntry() | cmd.RemoveFromTray() | cmd.SetTrayNextReview():
            pid = await store.person_of_entry(pool, command.entry_id)
            if pid is None:
                raise RuleBroken([reason("not_found", "no such tray entry", "entry_id")])
            return Looked(person_id=pid)
        case cmd.RemoveFromReviewTray():
            pid = await store.person_of_review_entry(pool, command.entry_id)
            if pid is None:
                raise RuleBroken([reason("not_found", "no such Review tray entry", "entry_id")])
            return Looked(person_id=pid)
    pid = str(command.person_id)  # type: ignore[attr-defined]
    looked = Looked(person_id=pid)
    needs_person = isinstance(command, cmd.AddToTray | cmd.AllocateCase)
    if readers.people is not None and (needs_person or not await store.case_known(pool, pid)):
        found, looked.person = await readers.people.get(pid)
        looked.person_missing = found == "missing" and not await store.case_known(pool, pid)
    if looked.person_missing:
        raise RuleBroken([reason("not_found", "no such person", "person_id")])
    if isinstance(command, cmd.AllocateCase | cmd.ReassignCase):
        looked.steps = await _steps(readers, pid)
    return looked


def _ids() -> Iterator[str]:
    return (str(uuid.uuid4()) for _ in itertools.count())


def _resident(case: domain.Case, person: dict[str, Any] | None) -> domain.Case:
    """The person record's ordinary residence, where it says, wins over the referral's (R-A3, R-T2)."""
    if person is not None and isinstance(person.get("ordinarily_resident"), bool):
        return domain.Case(**{**case.__dict__, "ordinarily_resident": person["ordinarily_resident"]})
    return case


async def _decide(conn: asyncpg.Connection, readers: Readers, command: cmd.Command,
                  looked: Looked) -> tuple[domain.Case, domain.Decision]:
    """Lock the person's case, load what the command touches, and ask the domain."""
    assert looked.person_id is not None
    case = _resident(await store.lock_case(conn, looked.person_id), looked.person)
    person = looked.person or {}
    ctx = domain.Context(now=datetime.now(UTC), actor=domain.Actor.of(command.actor), ids=_ids(),
                         channel=person.get("preferred_contact"),
                         team_contact_number=(readers.team_contact_numbers or {}).get(
                             getattr(command, "team_id", ""), None))
    if readers.localities is not None and isinstance(command, cmd.AllocateCase | cmd.AddToTray):
        # R-A3 locality team finder, by the postcode of the person's address
        address = person.get("address")
        postcode = address.get("postcode") if isinstance(address, dict) else None
        ctx.locality_team = readers.localities.team_for(postcode if isinstance(postcode, str) else None)
        ctx.locality_teams = readers.localities.teams
    return case, _decision(conn_entry=await _entry_for(conn, command), ctx=ctx, case=case, command=command,
                           looked=looked)


async def _entry_for(conn: asyncpg.Connection,
                     command: cmd.Command) -> domain.TrayEntry | domain.ReviewTrayEntry | None:
    if isinstance(command, cmd.ReviewTrayEntry | cmd.RemoveFromTray | cmd.SetTrayNextReview):
        return await store.load_entry(conn, command.entry_id)
    if isinstance(command, cmd.RemoveFromReviewTray):
        return await store.load_review_entry(conn, command.entry_id)
    return None


def _decision(conn_entry: domain.TrayEntry | domain.ReviewTrayEntry | None, ctx: domain.Context, case: domain.Case,
              command: cmd.Command, looked: Looked) -> domain.Decision:
    match command:
        case cmd.AddWorkerRelationship():
            return domain.add_worker_relationship(ctx, case, command, looked.steps or [])
        case cmd.EndWorkerRelationship():
            rel = next(r for r in case.worker_relationships if r.relationship_id == str(command.relationship_id))
            return domain.end_worker_relationship(ctx, rel, command)
        case cmd.AddOrgRelationship():
            return domain.add_org_relationship(ctx, case, command, looked.steps or [])
        case cmd.EndOrgRelationship():
            org = next(r for r in case.org_relationships if r.relationship_id == str(command.relationship_id))
            return domain.end_org_relationship(ctx, case, org, command, looked.steps or [])
        case cmd.AllocateCase():
            return domain.allocate(ctx, case, command, looked.steps or [])
        case cmd.ReassignCase():
            return domain.reassign(ctx, case, command, looked.steps or [])
        case cmd.AddToTray():
            return domain.tray_add(ctx, case, command)
        case cmd.ReviewTrayEntry():
            return domain.tray_review(ctx, conn_entry, command)  # type: ignore[arg-type]
        case cmd.RemoveFromTray():
            return domain.tray_remove(ctx, conn_entry, command)  # type: ignore[arg-type]
        case cmd.SetTrayNextReview():
            return domain.tray_set_next_review(ctx, conn_entry, command)  # type: ignore[arg-type]
        case cmd.RecordUrgentActionsDone():
            return domain.record_urgent_actions(ctx, case, command)
        case cmd.AddToReviewTray():
            return domain.review_tray_add(ctx, case, command)
        case cmd.RemoveFromReviewTray():
            return domain.review_tray_remove(ctx, conn_entry, command)  # type: ignore[arg-type]
    raise AssertionError(f"unhandled command {type(command).__name__}")


async def _save(conn: asyncpg.Connection, case: domain.Case, decision: domain.Decision) -> None:
    """Write the decision; a stale case or entry version (a lost race) refuses it as a conflict."""
    if decision.entry is not None and not decision.new_entry:
        loaded = await store.load_entry(conn, decision.entry.entry_id)
        if loaded is None or not await store.update_entry(conn, decision.entry, loaded.version):
            raise RuleBroken([reason("conflict", "the tray entry changed meanwhile", "entry_id")])
    elif decision.entry is not None:
        await store.insert_entry(conn, decision.entry)
    if decision.review_entry is not None and not decision.new_review_entry:
        loaded_review = await store.load_review_entry(conn, decision.review_entry.entry_id)
        if loaded_review is None or not await store.update_entry(conn, decision.review_entry, loaded_review.version):
            raise RuleBroken([reason("conflict", "the Review tray entry changed meanwhile", "entry_id")])
    elif decision.review_entry is not None:
        await store.insert_entry(conn, decision.review_entry)
    for rel in decision.worker_relationships:
        await store.save_worker_relationship(conn, rel)
    for org in decision.org_relationships:
        await store.save_org_relationship(conn, org)
    if decision.urgent_actions_done is not None:
        await store.record_urgent_actions_done(conn, case.person_id, *decision.urgent_actions_done)
    if not await store.bump_case(conn, case.person_id, case.version):
        raise RuleBroken([reason("conflict", "the case changed meanwhile")])


# --- workflow: a rescheduled review feeds the Review tray (R-T8); a closed case ends everything (R-A5) ---


@subscriber(router, GROUP, topics.WORKFLOW_EVENTS, types={StepRescheduled.TYPE, CaseClosed.TYPE})
async def on_workflow_event(msg: KafkaMessage, pool: asyncpg.Pool = Context("pool")) -> None:
    """`step.rescheduled` feeds the Review tray (R-T8); `case.closed` ends the involvement (R-A5); others: not ours."""
    envelope = decode(msg.body)
    match envelope.type:
        case StepRescheduled.TYPE:
            rescheduled = _workflow_event(StepRescheduled, envelope)
            changed = await _decide_on_workflow_event(
                pool, envelope, rescheduled.person_id, rescheduled.actor,
                lambda ctx, case: domain.review_rescheduled(ctx, case, rescheduled))
        case CaseClosed.TYPE:
            closed = _workflow_event(CaseClosed, envelope)
            closed_on = domain.closure_date(envelope.time)
            changed = await _decide_on_workflow_event(
                pool, envelope, closed.person_id, closed.actor,
                lambda ctx, case: domain.close_case(ctx, case, closed_on))
        case _:
            return
    metrics.MESSAGES.labels(GROUP, topics.WORKFLOW_EVENTS, "handled" if changed else "no_change").inc()


def _workflow_event(schema: type[_WorkflowEvent], envelope: Envelope) -> _WorkflowEvent:
    """The event validated, its actor a worker id and its person a UUID; else it goes to the DLQ (named field)."""
    event = parse(schema, envelope)
    try:
        cmd.Actor(worker_id=event.actor)
    except ValidationError as exc:
        raise Undecodable(f"invalid {schema.TYPE}: {describe_errors(exc)}") from None
    try:
        uuid.UUID(event.person_id)
    except ValueError:
        raise Undecodable(f"invalid {schema.TYPE}: person_id is not a UUID") from None
    return event


async def _decide_on_workflow_event(pool: asyncpg.Pool, envelope: Envelope, person_id: str, actor_id: str,
                                    decide: Callable[[domain.Context, domain.Case], domain.Decision]) -> bool:
    """Once per message id, under the case lock: the decision saved and its events in the outbox, one transaction."""
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, envelope.id, topics.WORKFLOW_EVENTS):
            return False
        case = await store.lock_case(conn, person_id)
        ctx = domain.Context(now=datetime.now(UTC), actor=domain.Actor(actor_id), ids=_ids())
        decision = decide(ctx, case)
        if decision.events:
            await _save(conn, case, decision)
            await outbox.add(conn, _messages(decision, envelope, person_id, cmd.Actor(worker_id=actor_id)))
    return bool(decision.events)


# --- timers ------------------------------------------------------------------------------------


@subscriber(router, GROUP, topics.SCHEDULER_DUE)
async def on_timer_due(msg: KafkaMessage, pool: asyncpg.Pool = Context("pool")) -> None:
    """A tray review, escalation or Review tray timer fell due (R-T5, R-T6, R-T8); others' are not ours."""
    envelope = decode(msg.body)
    if envelope.type != TimerDue.TYPE or envelope.data.get("owner") != domain.OWNER:
        return
    due = parse(TimerDue, envelope)  # set aside if invalid, never silently dropped: a tray review may hang on it
    try:
        entry_id = uuid.UUID(str(due.payload.get("entry_id") or due.key.partition(":")[2]))
    except ValueError:
        raise Undecodable("invalid timer.due: payload.entry_id: not a tray entry id") from None
    if due.key.startswith(f"{domain.REVIEW_TRAY_TIMER}:"):  # R-T8: mark the Review tray entry due, once
        await _entry_timer_due(pool, envelope, entry_id, store.person_of_review_entry, store.load_review_entry,
                               lambda ctx, entry: domain.review_tray_timer_due(ctx, entry, due.due_at))
    else:
        await _entry_timer_due(pool, envelope, entry_id, store.person_of_entry, store.load_entry,
                               lambda ctx, entry: domain.timer_due(ctx, entry, due.key, due.due_at))


async def _entry_timer_due(pool: asyncpg.Pool, envelope: Envelope, entry_id: uuid.UUID,
                           person_of: Callable[[asyncpg.Connection, uuid.UUID], Awaitable[str | None]],
                           load: Callable[[asyncpg.Connection, uuid.UUID], Awaitable[Any]],
                           decide: Callable[[domain.Context, Any], domain.Decision]) -> None:
    """A tray entry's timer, handled once under the case lock: the entry as decided, and what it says."""
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, envelope.id, topics.SCHEDULER_DUE):
            return
        person_id = await person_of(conn, entry_id)
        if person_id is None:
            return
        await store.lock_case(conn, person_id)
        entry = await load(conn, entry_id)
        decision = decide(domain.Context(now=datetime.now(UTC), actor=SYSTEM, ids=_ids()), entry)
        changed = decision.entry or decision.review_entry
        if changed is not None and entry is not None:
            await store.update_entry(conn, changed, entry.version)
        await outbox.add(conn, _messages(decision, envelope, person_id, cmd.Actor(worker_id=SYSTEM.worker_id)))
    metrics.MESSAGES.labels(GROUP, topics.SCHEDULER_DUE, "handled").inc()


# --- what goes out -----------------------------------------------------------------------------


def _messages(decision: domain.Decision, cause: Envelope, key: str, actor: cmd.Actor) -> list[outbox.Outgoing]:
    """The outcome on allocation.events, then the commands it sends to workflow, referrals and the scheduler."""
    messages = EMIT.outcome(topics.ALLOCATION_EVENTS, decision.events, cause, key) if decision.events else []
    for assign in decision.step_assigns:
        messages.append(EMIT.command(topics.WORKFLOW_COMMANDS, "step.assign", {
            "actor": actor.model_dump(), "step_id": assign.step_id, "to": {"kind": assign.kind, "id": assign.id},
        }, cause, key))
    for note in decision.case_notes:
        add_note = AddCaseNote(actor=actor, person_id=uuid.UUID(note.person_id), title=note.title, type=note.type,
                               text=note.text, notify_worker_ids=list(note.notify_worker_ids))
        messages.append(EMIT.command(topics.REFERRALS_COMMANDS, AddCaseNote.TYPE, add_note, cause, key))
    for key_ in decision.cancelled_timers:
        messages.append(EMIT.timer(TimerCancel(key=key_), cause, key))
    for timer in decision.timers:
        messages.append(EMIT.timer(TimerSet(key=timer.key, due_at=timer.due_at, owner=domain.OWNER,
                                            payload=timer.payload), cause, key))
    return messages
