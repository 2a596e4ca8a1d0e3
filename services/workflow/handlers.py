"""Subscribers of the workflow service: decode, call the domain, persist, emit."""

import itertools
import logging
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka.structs import ConsumerRecord
from faststream.kafka import KafkaRouter

from services.workflow import brokerage, domain, store
from services.workflow.involvement import locality_team, open_relationships
from services.workflow.pack import PackRegistry, Recipient
from shared import access_reasons, audit, inbox, metrics, outbox, topics
from shared.access import RelationshipReader
from shared.actor import above_teams, worker_of
from shared.broker import Context, KafkaMessage, subscriber
from shared.commands import workflow as cmd
from shared.commands.base import CommandRejected, Reason, RuleBroken, parse_command
from shared.envelope import Envelope, Undecodable, decode, parse
from shared.events.referrals import PersonUpdated, ReferralAccepted
from shared.events.scheduler import TimerCancel, TimerDue, TimerSet
from shared.events.web import AccountListed
from shared.events.workflow import WorkflowStarted
from shared.readers import PersonReader, ServiceReader

EMIT = outbox.Emitter("tessera/workflow")
GROUP = "workflow"
OWNER = "workflow"  # the `owner` of this service's timers on scheduler.timers / scheduler.due
SYSTEM = domain.Actor("system:scheduler")
# the step commands whose step is looked at before the transaction (person record, relationships, locality)
READS_BEFORE = (cmd.SaveStep, cmd.FinishStep, cmd.AuthoriseStep, cmd.RefreshPrepopulated, cmd.AddNextAction)
PACK_VERSION = 1
log = logging.getLogger(__name__)
router = KafkaRouter()


# --- the desk's staff directory (R-RQ9, R-RQ10) ------------------------------------------------------


@subscriber(router, GROUP, topics.WEB_EVENTS, types={AccountListed.TYPE})
async def on_account_listed(msg: KafkaMessage, pool: asyncpg.Pool = Context("pool")) -> None:
    """An account as the desk lists it: who may sign, in which teams, and whether it is enabled."""
    envelope = decode(msg.body)
    if envelope.type != AccountListed.TYPE:
        return
    listed = parse(AccountListed, envelope)
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, envelope.id, topics.WEB_EVENTS):
            metrics.MESSAGES.labels(GROUP, topics.WEB_EVENTS, "duplicate").inc()
            return
        await store.list_worker(conn, listed)
        await store.hold_unheld_steps(conn, listed)
    metrics.MESSAGES.labels(GROUP, topics.WEB_EVENTS, "handled").inc()


# --- referral intake ---------------------------------------------------------------------------


def _accepted_workflow(record: ConsumerRecord) -> str | None:
    """The workflow a referral.accepted record starts (a canonical UUID), None for any other record."""
    try:
        envelope = decode(record.value)
    except Undecodable:
        return None
    workflow_id = envelope.data.get("workflow_id") if envelope.type == ReferralAccepted.TYPE else None
    try:
        return workflow_id if isinstance(workflow_id, str) and str(uuid.UUID(workflow_id)) == workflow_id else None
    except ValueError:
        return None


async def _read_starts_ahead(records: list[ConsumerRecord], context: Any) -> None:
    """R-W5: what the first steps of a batch's accepted referrals are prefilled from, in one read of referrals."""
    workflow_ids = [w for w in map(_accepted_workflow, records) if w is not None]
    if len(workflow_ids) > 1:
        people: PersonReader = context.get("people")
        await people.read_starts_ahead(workflow_ids)


@subscriber(router, GROUP, topics.REFERRALS_EVENTS, types={PersonUpdated.TYPE, ReferralAccepted.TYPE},
            read_ahead=_read_starts_ahead)
async def on_referral_event(
    msg: KafkaMessage, pool: asyncpg.Pool = Context("pool"), packs: PackRegistry = Context("packs"),
    people: PersonReader = Context("people"),
) -> None:
    """An accepted referral starts a workflow with its first step; a recorded death closes future work."""
    envelope = decode(msg.body)
    if envelope.type == PersonUpdated.TYPE:
        await _on_person_updated(pool, packs, people, envelope)
        return
    if envelope.type != ReferralAccepted.TYPE:
        return
    accepted = parse(ReferralAccepted, envelope)
    start, person = await people.start(accepted.workflow_id), None
    if start is not None and start["person"].get("person_id") == accepted.person_id:
        # R-W5: the person record and the referral's own details prefill the first step's cog fields
        person = {**start["person"], "referral": domain.referral_values(start["referral"])}
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, envelope.id, topics.REFERRALS_EVENTS):
            metrics.MESSAGES.labels(GROUP, topics.REFERRALS_EVENTS, "duplicate").inc()
            return
        if await store.workflow_exists(conn, accepted.workflow_id):
            return
        await outbox.add(conn, await _start(conn, envelope, accepted, packs, person))
    metrics.MESSAGES.labels(GROUP, topics.REFERRALS_EVENTS, "handled").inc()


async def _on_person_updated(
    pool: asyncpg.Pool, packs: PackRegistry, people: PersonReader, envelope: Envelope,
) -> None:
    """R-K8: a date of death written on the person record does what `person.record_death` does."""
    updated = parse(PersonUpdated, envelope)
    if "date_of_death" not in updated.fields:
        return
    record = await people.record(updated.person_id)
    died = (record or {}).get("date_of_death")
    if not died:
        return  # the date was removed, or the record cannot be read: nothing to close
    command = cmd.RecordDeath.model_validate({"actor": {"worker_id": worker_of(updated.actor)},
                                              "person_id": updated.person_id,
                                              "date_of_death": died})
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, envelope.id, topics.REFERRALS_EVENTS):
            return
        try:
            key, decision = await _decide(conn, packs, command, record)
        except RuleBroken as refused:
            log.warning("recorded death not applied", extra={"person_id": updated.person_id,
                                                            "code": refused.reasons[0].code})
            return
        await _save(conn, decision)
        await outbox.add(conn, EMIT.outcome(topics.WORKFLOW_EVENTS, decision.events, envelope, key))
        await outbox.add(conn, await _timers(conn, decision, envelope, key))
    metrics.MESSAGES.labels(GROUP, topics.REFERRALS_EVENTS, "handled").inc()


async def _start(
    conn: asyncpg.Connection, cause: Envelope, accepted: ReferralAccepted, packs: PackRegistry,
    person: dict[str, Any] | None,
) -> list[outbox.Outgoing]:
    referral = domain.ReferralToStart(
        referral_id=accepted.referral_id, person_id=accepted.person_id,
        workflow_id=accepted.workflow_id, first_step_type=accepted.first_step_type,
        urgency=accepted.urgency, cared_for_person_id=accepted.cared_for_person_id,
        received_date=(person or {}).get("referral", {}).get("received_date"),
    )
    now, actor = datetime.now(UTC), f"system:{cause.source}"
    version, team, defn = PACK_VERSION, None, None
    if accepted.first_step_type in packs.step_types():
        version = packs.latest_version(accepted.first_step_type)
        defn = packs.step(accepted.first_step_type, version)
        team = defn.default_team
    workflow, step = domain.start_from_referral(
        referral, step_id=str(uuid.uuid4()), now=now, actor=actor, pack_version=version, team=team)
    note = "no pack defines the step type: nothing to prepopulate"
    if defn is not None and person is not None:
        step = replace(step, values=domain.prepopulated(defn, person, cogs=frozenset({"blue", "yellow"})))
        note = "prepopulated from the person record"
    elif defn is not None:
        note = "person record unavailable: prepopulated fields left empty (refresh later)"
    await store.insert_workflow(conn, workflow)
    await store.insert_step(conn, step)
    await store.add_history(conn, step.step_id, at=now, actor=actor, what="prepopulated",
                            details={"note": note, "fields": sorted(step.values)})
    log.info("workflow started", extra={"workflow_id": workflow.workflow_id, "step_id": step.step_id,
                                        "person_id": step.person_id})
    started = WorkflowStarted(workflow_id=workflow.workflow_id, person_id=workflow.person_id,
                              first_step_type=step.step_type, origin="referral",
                              referral_id=accepted.referral_id)
    return EMIT.outcome(topics.WORKFLOW_EVENTS, [started, domain.created_event(step)], cause, step.person_id)


# --- commands ----------------------------------------------------------------------------------


@subscriber(router, GROUP, topics.WORKFLOW_COMMANDS)
async def on_command(
    msg: KafkaMessage, pool: asyncpg.Pool = Context("pool"), packs: PackRegistry = Context("packs"),
    people: PersonReader = Context("people"), allocation: ServiceReader = Context("allocation"),
    access: RelationshipReader = Context("access"),
) -> None:
    """A workflow command: exactly one outcome, its events or `command.rejected`."""
    envelope = decode(msg.body)
    outcome = await handle_command(pool, packs, people, envelope, access, allocation=allocation)
    metrics.MESSAGES.labels(GROUP, topics.WORKFLOW_COMMANDS, outcome).inc()


async def handle_command(
    pool: asyncpg.Pool, packs: PackRegistry, people: PersonReader | None, envelope: Envelope,
    access: RelationshipReader | None = None, *, allocation: ServiceReader | None = None,
) -> str:
    """Validate, then in one transaction: inbox, load with version check, decide, save, outbox."""
    command: cmd.Command | None = None
    try:
        command = parse_command(cmd.COMMANDS, envelope.type, envelope.data)
        if isinstance(command, cmd.RecordDeath):
            await _check_grounds(pool, access, command)
    except RuleBroken as invalid:
        refused: RuleBroken = invalid
        command = None
    # before the transaction: what other services must tell, read once for the step the command names
    step_row = await store.person_of_step(pool, command.step_id) if isinstance(command, READS_BEFORE) else None
    person = await _person_for(people, command, step_row) if command is not None else None
    relationships = await _relationships_for(packs, allocation, command, step_row)
    locality = await _locality_for(packs, people, allocation, command, step_row, person)
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, envelope.id, topics.WORKFLOW_COMMANDS):
            return "duplicate"
        key = envelope.subject or str(envelope.id)
        if command is not None and command.actor.roles:  # R-RQ9: the roles and teams the signed actor acts with
            await store.saw_worker(conn, domain.Actor.of(command.actor), datetime.now(UTC))
        if command is not None:
            try:
                key, decision = await _decide(conn, packs, command, person, relationships, locality)
            except RuleBroken as broken:
                refused = broken
            else:
                await _save(conn, decision)
                await audit.append(conn, audit.access_reason(command, envelope, key))
                await _keep_reason(conn, command, envelope)
                outcome = EMIT.outcome(topics.WORKFLOW_EVENTS, decision.events, envelope, key)
                timers = await _timers(conn, decision, envelope, key)
                # R-F1: purchase orders of sent purchasing next actions, each once
                orders = await brokerage.issue_orders(conn, packs, decision, envelope, command.actor.worker_id)
                await outbox.add(conn, [*outcome, *timers, *orders])  # in this order, in one round trip
                return "handled"
        rejected = CommandRejected.because(envelope.type, refused.reasons)
        await outbox.add(conn, EMIT.outcome(topics.WORKFLOW_EVENTS, [rejected], envelope, refused.key or key))
    log.info("command rejected", extra={"message_id": str(envelope.id), "code": rejected.code})
    return "rejected"


async def _keep_reason(conn: asyncpg.Connection, command: cmd.Command, envelope: Envelope) -> None:
    """Issue #21: a reason given to act on a person (break-glass) is kept for GET /people/{id}/access-reasons."""
    if not isinstance(command, cmd.RecordDeath) or not command.access_reason:
        return
    await access_reasons.keep(conn, command, envelope.id, command.person_id, command.access_reason)


async def _check_grounds(pool: asyncpg.Pool, access: RelationshipReader | None, command: cmd.RecordDeath) -> None:
    """Issue #21 §6: a death is recorded by a worker with grounds to act on the person (their work, their
    team's, work they assigned, an allocation, their team's tray or involvement), a manager above teams, or on a
    recorded reason; RuleBroken `no_relationship` otherwise; Unavailable (retried) when allocation cannot say."""
    actor = command.actor
    if command.access_reason or above_teams(actor.roles) or access is None:
        return
    steps = [{"state": r["state"], "step_type": r["step_type"], "assigned_by": r["assigned_by"],
              "assignee": {"kind": r["assignee_kind"], "id": r["assignee_id"]}}
             for r in await store.steps_of_person(pool, command.person_id)]
    why = await access.why_allowed(worker_id=actor.worker_id, team_ids=actor.team_ids,
                                   person_id=str(command.person_id), roles=actor.roles, steps=steps)
    if why is None:
        raise RuleBroken([Reason(code="no_relationship", field="person_id", message=(
            f"worker {actor.worker_id} has no relationship with person {command.person_id} and no work for them:"
            " give an access_reason (break-glass), which is recorded"))])


async def _person_for(people: PersonReader | None, command: cmd.Command,
                      step_row: asyncpg.Record | None) -> dict[str, Any] | None:
    """R-W5: the person record, read before the transaction, where the command may need it."""
    if people is None:
        return None
    if isinstance(command, cmd.StartNewStep):
        return await people.record(str(command.person_id))
    finishing = isinstance(command, cmd.FinishStep | cmd.AuthoriseStep)
    if not (finishing or isinstance(command, cmd.RefreshPrepopulated)
            or (isinstance(command, cmd.AddNextAction) and command.send_immediately)):
        return None
    if step_row is None:
        return None
    if finishing and not any(not a["nfa"] and not a.get("created_step_id") for a in step_row["next_actions"]):
        return None  # nothing to create: no need to read the record
    return await people.record(str(step_row["person_id"]))


async def _relationships_for(
    packs: PackRegistry, allocation: ServiceReader | None, command: cmd.Command | None,
    step_row: asyncpg.Record | None,
) -> tuple[domain.Involvement, ...] | None:
    """The person's open relationships from allocation, where a rule reads them: a save of a step with an
    activity log (R-W13) or the finish of a closure step (R-K1: other teams' involvement is named); None when
    allocation cannot answer (no allow; the closure's warning says it could not check)."""
    if allocation is None or step_row is None or not isinstance(command, cmd.SaveStep | cmd.FinishStep
                                                                    | cmd.AuthoriseStep):
        return ()
    defn = packs.step(step_row["step_type"], step_row["pack_version"])
    wanted = defn.activity_logs if isinstance(command, cmd.SaveStep) else domain.CLOSURE_GUARD in defn.rules
    if not wanted:
        return ()
    return await open_relationships(allocation, step_row["person_id"])


async def _locality_for(
    packs: PackRegistry, people: PersonReader | None, allocation: ServiceReader | None,
    command: cmd.Command | None, step_row: asyncpg.Record | None, person: dict[str, Any] | None,
) -> str | None:
    """R-C5: the person's locality team, where a next action without an assignee goes to a team by locality
    (Adult Case Closure in Progress: the admin team for where the person lives); `person` if already read."""
    if (people is None or allocation is None or step_row is None or not isinstance(command, cmd.AddNextAction)
            or command.assignee):
        return None
    action = next((a for a in packs.step(step_row["step_type"], step_row["pack_version"]).next_actions
                   if a.action == command.action), None)
    if action is None or not action.team_by_locality:
        return None
    return await locality_team(allocation, person or await people.record(str(step_row["person_id"])))


def _ids() -> Iterator[str]:
    return (str(uuid.uuid4()) for _ in itertools.count())


def _context(command: cmd.Command, packs: PackRegistry, person: dict[str, Any] | None,
             case: domain.CaseView | None = None, involved: frozenset[str] = frozenset(),
             relationships: tuple[domain.Involvement, ...] | None = (), locality: str | None = None,
             known: Mapping[str, domain.Actor] | None = None,
             disabled: frozenset[str] = frozenset()) -> domain.Context:
    return domain.Context(now=datetime.now(UTC), actor=domain.Actor.of(command.actor), ids=_ids(),
                          packs=packs, person=person, case=case or domain.CaseView(), involved=involved,
                          relationships=relationships, locality_team=locality, known_workers=known or {},
                          disabled_workers=disabled)


def _not_found(what: str, field: str) -> RuleBroken:
    return RuleBroken([Reason(code="not_found", message=f"no such {what}", field=field)])


async def _decide(
    conn: asyncpg.Connection, packs: PackRegistry, command: cmd.Command, person: dict[str, Any] | None,
    relationships: tuple[domain.Involvement, ...] | None = (), locality: str | None = None,
) -> tuple[str, domain.Decision]:
    """Load what the command touches (the step locked), then ask the domain."""
    if isinstance(command, cmd.StartNewStep | cmd.RecordDeath):
        pid = str(command.person_id)
        case = await store.case_view(conn, pid) if isinstance(command, cmd.StartNewStep) else None
        steps = await store.steps_of(conn, command.person_id, for_update=True) \
            if isinstance(command, cmd.RecordDeath) else []
        known, disabled = await _known_workers(conn, packs, command, None)
        ctx = _context(command, packs, person, case, known=known, disabled=disabled)
        return pid, domain.decide(ctx, command, person_steps=steps, new_workflow_id=str(uuid.uuid4()))
    request = None
    if isinstance(command, cmd.CompleteRequest):
        request = await store.load_request(conn, command.request_id)
        if request is None:
            raise _not_found("request", "request_id")
        step_id = uuid.UUID(request.step_id)
    else:
        step_id = command.step_id  # type: ignore[attr-defined]
    step = await store.load_step(conn, step_id, for_update=True)
    if step is None:
        raise _not_found("step", "step_id")
    if request is not None:
        request = await store.load_request(conn, uuid.UUID(request.request_id))  # re-read under the step lock
    needs_case = isinstance(command, domain.NEEDS_CASE)
    case = await store.case_of_step(conn, packs, step) if needs_case else None
    needs_requests = isinstance(command, cmd.SendRequest | cmd.SendNotification | cmd.FinishStep
                                | cmd.AuthoriseStep | cmd.ReturnStep | cmd.CancelStep) or (
        isinstance(command, cmd.SaveStep) and bool(packs.step(step.step_type, step.pack_version).answered_sections))
    requests = await store.requests_of(conn, step.step_id) if needs_requests else []
    known, disabled = await _known_workers(conn, packs, command, step)
    involved: frozenset[str] = frozenset()
    if isinstance(command, cmd.SaveStep) and packs.step(step.step_type, step.pack_version).activity_logs:
        assignees = await store.assignees_of_person(conn, step.person_id)
        involved = frozenset({r.key for r in relationships or ()}) | assignees  # R-W13
    assignments = await store.assignments_of(conn, step_id) \
        if type(command) in domain.TEAM_SCOPED and step.assignee_kind == "worker" else []
    try:
        ctx = _context(command, packs, person, case, involved, relationships, locality, known, disabled)
        decision = domain.decide(ctx, command, step=step, requests=requests, request=request,
                                 assignments=assignments)
    except RuleBroken as broken:
        broken.key = step.person_id
        raise
    return step.person_id, decision


async def _known_workers(conn: asyncpg.Connection, packs: PackRegistry, command: cmd.Command,
                         step: domain.Step | None) -> tuple[dict[str, domain.Actor], frozenset[str]]:
    """R-RQ9, R-RQ10: for a request or notification, its recipient (as sent, or the pack's default) and the
    members of its team and of the sender's teams; for work handed to a worker, that worker; and the disabled
    among them."""
    nobody: tuple[dict[str, domain.Actor], frozenset[str]] = ({}, frozenset())
    handed = _handed_to(command)
    if handed is not None:
        return await store.known_workers(conn, handed.id, ()) if handed.kind == "worker" else nobody
    if not isinstance(command, cmd.SendRequest | cmd.SendNotification) or step is None:
        return nobody
    to: cmd.Target | Recipient | None = command.to
    if to is None:
        try:
            to = packs.step(step.step_type, step.pack_version).request(command.name).default_to
        except KeyError:
            return nobody  # refused by the domain: no such request
    if to is None:
        return nobody
    teams = {*command.actor.team_ids, *([to.id] if to.kind == "team" else [])}
    return await store.known_workers(conn, to.id, teams)


def _handed_to(command: cmd.Command) -> cmd.Target | None:
    """R-RQ10: whom a command hands work to (assigning a step, a next action, Start > New), if anyone."""
    match command:
        case cmd.AssignStep():
            return command.to
        case cmd.AddNextAction() | cmd.StartNewStep():
            return command.assignee
    return None


async def _save(conn: asyncpg.Connection, decision: domain.Decision) -> None:
    for workflow in decision.workflows:
        await store.insert_workflow(conn, workflow)
    for created in decision.created:
        await store.insert_step(conn, created, history=False)
    if decision.step is not None:
        await store.update_step(conn, decision.step)
    for finished in decision.finished_future:
        await store.update_step(conn, finished)
    await store.save_requests(conn, decision.requests)
    await store.add_histories(conn, decision.history)
    if decision.closed_workflow_ids:
        await store.close_workflows(conn, decision.closed_workflow_ids, datetime.now(UTC))


# --- timers (R-S1, R-K6) ----------------------------------------------------------------------------


@subscriber(router, GROUP, topics.SCHEDULER_DUE)
async def on_timer_due(
    msg: KafkaMessage, pool: asyncpg.Pool = Context("pool"), packs: PackRegistry = Context("packs"),
) -> None:
    """A workflow timer fell due: future work becomes incoming, or a renewal is due; others' are skipped."""
    envelope = decode(msg.body)
    if envelope.type != TimerDue.TYPE or envelope.data.get("owner") != OWNER:
        return
    due = parse(TimerDue, envelope)  # set aside if invalid, never silently dropped: Future Work may hang on it
    if brokerage.is_lack_of_provision(due):  # R-F2
        outcome = await brokerage.handle_lack_of_provision_due(pool, envelope, due)
    else:
        outcome = await handle_timer_due(pool, packs, envelope, due)
    metrics.MESSAGES.labels(GROUP, topics.SCHEDULER_DUE, outcome).inc()


async def handle_timer_due(pool: asyncpg.Pool, packs: PackRegistry, envelope: Envelope, due: TimerDue) -> str:
    """Only the latest timer.set of a key counts: a due caused by an older (moved) or cancelled one is stale."""
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, envelope.id, topics.SCHEDULER_DUE):
            return "duplicate"
        timer = await store.load_timer(conn, due.key)
        if timer is None or str(timer["set_message_id"]) != envelope.causationid:
            log.info("stale timer.due ignored", extra={"message_id": str(envelope.id)})
            return "stale"
        await store.delete_timers(conn, [due.key])
        step = await store.load_step(conn, timer["step_id"], for_update=True)
        if step is None:
            return "stale"
        ctx = domain.Context(now=datetime.now(UTC), actor=SYSTEM, ids=_ids(), packs=packs)
        decision = domain.timer_due(ctx, step, timer["kind"], due.payload)
        await _save(conn, decision)
        if decision.events:
            await outbox.add(conn, EMIT.outcome(topics.WORKFLOW_EVENTS, decision.events, envelope, step.person_id))
        await outbox.add(conn, await _timers(conn, decision, envelope, step.person_id))
    return "handled"


async def _timers(
    conn: asyncpg.Connection, decision: domain.Decision, cause: Envelope, key: str,
) -> list[outbox.Outgoing]:
    """timer.cancel for each timer that was set, timer.set for each new one (its message id kept)."""
    messages = []
    now = datetime.now(UTC)
    for timer_key in await store.delete_timers(conn, decision.cancelled_timers):
        messages.append(EMIT.timer(TimerCancel(key=timer_key), cause, key))
    for timer in decision.timers:
        message = EMIT.timer(TimerSet(key=timer.key, due_at=timer.due_at, owner=OWNER, payload=timer.payload),
                             cause, key)
        await store.save_timer(conn, timer, set_message_id=message.message_id, at=now)
        messages.append(message)
    return messages


