"""Subscribers of the referrals service: decode, call the domain, persist, emit."""

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

import asyncpg
from faststream.kafka import KafkaRouter

from services.referrals import domain, store
from shared import access_reasons, inbox, metrics, outbox, producers, topics
from shared.access import RelationshipReader
from shared.actor import above_teams
from shared.broker import Context, KafkaMessage, subscriber
from shared.commands import referrals as commands
from shared.commands.base import Command, CommandRejected, Reason, RuleBroken, parse_command
from shared.envelope import Envelope, decode, decode_either_mode
from shared.events.base import Event
from shared.events.referrals import (
    CaseNoteAdded,
    PersonCreated,
    PersonDetails,
    PersonRelationshipAdded,
    PersonRelationshipEnded,
    PersonUpdated,
    ReferralAcceptedV2,
    ReferralReceived,
    ReferralRejected,
)

EMIT = outbox.Emitter("tessera/referrals")
GROUP = "referrals"
log = logging.getLogger(__name__)
router = KafkaRouter()


@subscriber(router, GROUP, topics.REFERRALS_INTAKE)
async def on_referral_received(msg: KafkaMessage, pool: asyncpg.Pool = Context("pool")) -> None:
    """A referral from an upstream system, in either CloudEvents content mode: accepted or rejected."""
    envelope = decode_either_mode(msg.body, msg.raw_message.headers)  # type: ignore[union-attr]  # faststream types raw_message for batches too; this subscriber is not one
    if envelope.type != ReferralReceived.TYPE:
        metrics.MESSAGES.labels(GROUP, topics.REFERRALS_INTAKE, "ignored").inc()
        return
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, envelope.id, topics.REFERRALS_INTAKE):
            metrics.MESSAGES.labels(GROUP, topics.REFERRALS_INTAKE, "duplicate").inc()
            return
        await outbox.add(conn, await _receive(conn, envelope))
    metrics.MESSAGES.labels(GROUP, topics.REFERRALS_INTAKE, "handled").inc()


async def _receive(conn: asyncpg.Connection, envelope: Envelope) -> list[outbox.Outgoing]:
    try:
        referral = domain.validate_referral(envelope.data)
    except RuleBroken as invalid:
        errors = domain.field_errors(invalid)
        rejected = ReferralRejected(referral_id=domain.referral_id_of(envelope.data), errors=errors)
        log.info("referral rejected", extra={"message_id": str(envelope.id), "fields": [e.field for e in errors]})
        return [EMIT.event(topics.REFERRALS_EVENTS, rejected, envelope, rejected.referral_id or str(envelope.id))]
    keys = domain.match_keys(referral.person)
    # the referral and its person locked in one round trip, then both looked up in one
    await store.lock_identity(conn, f"referral:{envelope.source}:{referral.referral_id}", *keys.present())
    received, by_nhs, by_name = await store.referral_and_matches(conn, envelope.source, referral.referral_id,
                                                                 keys.nhs_number, keys.name_key)
    if received:
        log.info("duplicate referral ignored", extra={"message_id": str(envelope.id)})
        metrics.MESSAGES.labels(GROUP, topics.REFERRALS_INTAKE, "duplicate_referral").inc()
        return []
    return await _accept(conn, envelope, referral, keys, domain.choose_match(keys, _text(by_nhs), _text(by_name)))


async def _accept(conn: asyncpg.Connection, envelope: Envelope, referral: ReferralReceived, keys: domain.MatchKeys,
                  match: str | None) -> list[outbox.Outgoing]:
    now = datetime.now(UTC)
    actor = f"referral:{envelope.source}"
    events: list[outbox.Outgoing] = []
    person_id, matched = await _found_or_created(conn, referral, referral.person, keys, match, envelope, actor, now,
                                                 events)
    cared_for_id = None
    if referral.cared_for_person is not None:
        cared_for_id, _ = await _find_or_create(conn, referral, referral.cared_for_person, envelope, actor,
                                                now, events)
        events.append(await _link_carer(conn, person_id, cared_for_id, envelope, actor, now))
    first_step_type = domain.first_step_for(referral.service, referral.category)
    accepted = ReferralAcceptedV2(
        referral_id=referral.referral_id, person_id=str(person_id), matched=matched,
        workflow_id=str(uuid.uuid4()), first_step_type=first_step_type, service=referral.service,
        category=referral.category, urgency=referral.urgency,
        cared_for_person_id=str(cared_for_id) if cared_for_id else None,
        ordinarily_resident=referral.ordinarily_resident, referrer=referral.referrer,
    )
    await store.insert_referral(conn, {
        "source": envelope.source, "referral_id": referral.referral_id, "message_id": envelope.id,
        "person_id": person_id, "cared_for_person_id": cared_for_id,
        "workflow_id": uuid.UUID(accepted.workflow_id), "service": referral.service,
        "category": referral.category, "urgency": referral.urgency, "first_step_type": first_step_type,
        "received_at": referral.received_at, "details": referral.model_dump(mode="json"),
        "accepted_at": now,
    })
    log.info("referral accepted", extra={"message_id": str(envelope.id), "person_id": str(person_id),
                                         "matched": matched, "workflow_id": accepted.workflow_id})
    return [*events, EMIT.event(topics.REFERRALS_EVENTS, accepted, envelope, str(person_id))]


async def _find_or_create(
    conn: asyncpg.Connection, referral: ReferralReceived, person: PersonDetails, envelope: Envelope,
    actor: str, now: datetime, events: list[outbox.Outgoing],
) -> tuple[uuid.UUID, bool]:
    keys = domain.match_keys(person)
    await store.lock_identity(conn, *keys.present())
    by_nhs, by_name = await store.people_matching(conn, keys.nhs_number, keys.name_key)
    match = domain.choose_match(keys, _text(by_nhs), _text(by_name))
    return await _found_or_created(conn, referral, person, keys, match, envelope, actor, now, events)


async def _found_or_created(
    conn: asyncpg.Connection, referral: ReferralReceived, person: PersonDetails, keys: domain.MatchKeys,
    match: str | None, envelope: Envelope, actor: str, now: datetime, events: list[outbox.Outgoing],
) -> tuple[uuid.UUID, bool]:
    """The matched person (its identity `keys` locked and looked up by the caller), or a new record."""
    if match is not None:
        return uuid.UUID(match), True
    person_id = uuid.uuid4()
    record = {**domain.person_record(person), "ordinarily_resident": referral.ordinarily_resident}
    await store.insert_person(conn, person_id, record, nhs_number=keys.nhs_number,
                              name_key=keys.name_key, actor=actor, at=now, message_id=envelope.id)
    created = PersonCreated(person_id=str(person_id), source_referral_id=referral.referral_id)
    events.append(EMIT.event(topics.REFERRALS_EVENTS, created, envelope, str(person_id)))
    return person_id, False


def _text(person_id: uuid.UUID | None) -> str | None:
    return str(person_id) if person_id else None


async def _link_carer(
    conn: asyncpg.Connection, carer_id: uuid.UUID, cared_for_id: uuid.UUID, envelope: Envelope,
    actor: str, now: datetime,
) -> outbox.Outgoing:
    relationship_id = uuid.uuid4()
    await store.insert_relationship(conn, relationship_id, carer_id, cared_for_id, "Carer of",
                                    is_main_carer=True, start_date=now.date(), actor=actor, at=now)
    added = PersonRelationshipAdded(
        relationship_id=str(relationship_id), person_id=str(carer_id),
        other_person_id=str(cared_for_id), relationship="Carer of", is_main_carer=True,
        start_date=now.date(), actor=actor,
    )
    return EMIT.event(topics.REFERRALS_EVENTS, added, envelope, str(carer_id))


@subscriber(router, GROUP, topics.REFERRALS_COMMANDS)
async def on_command(msg: KafkaMessage, pool: asyncpg.Pool = Context("pool"),
                     access: RelationshipReader = Context("access")) -> None:
    """A person-record command: exactly one outcome, its events or `command.rejected`."""
    envelope = decode(msg.body)
    try:  # before the transaction: the access check reads allocation and workflow over HTTP
        checked: tuple[commands.PersonCommand, Grant] | RuleBroken = await _checked(pool, access, envelope)
    except RuleBroken as refused:
        checked = refused
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, envelope.id, topics.REFERRALS_COMMANDS):
            metrics.MESSAGES.labels(GROUP, topics.REFERRALS_COMMANDS, "duplicate").inc()
            return
        key = envelope.subject or str(envelope.id)
        try:
            async with conn.transaction():  # a refusal undoes whatever the command began
                if isinstance(checked, RuleBroken):
                    raise checked
                key, events = await _run(conn, checked[0], envelope)
                await _record_reason(conn, checked[0], checked[1], envelope)
        except RuleBroken as refused:
            rejected = CommandRejected.because(envelope.type, refused.reasons)
            events = [rejected]
            log.info("command rejected", extra={"message_id": str(envelope.id), "code": rejected.code})
        await outbox.add(conn, [EMIT.event(topics.REFERRALS_EVENTS, e, envelope, key) for e in events])
    metrics.MESSAGES.labels(GROUP, topics.REFERRALS_COMMANDS, "handled").inc()


# --- who may act on the person (issue #11 §3) ---------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """Why the actor may act on the person; `reason` is a break-glass reason, to be recorded."""

    why: str
    person_id: uuid.UUID | None = None
    reason: str | None = None


async def _checked(pool: asyncpg.Pool, access: RelationshipReader,
                   envelope: Envelope) -> tuple[commands.PersonCommand, Grant]:
    """The valid command and why its actor may act; RuleBroken otherwise; Unavailable (retried) if unsure."""
    command = cast(commands.PersonCommand, parse_command(commands.COMMANDS, envelope.type, envelope.data))
    return command, await _grant(pool, access, command, envelope)


async def _grant(pool: asyncpg.Pool, access: RelationshipReader, command: commands.PersonCommand,
                 envelope: Envelope) -> Grant:
    actor = command.actor
    if envelope.source != producers.DESK:  # a service, verified, that shared/producers.py lets send this command
        return Grant(f"sent on by {envelope.source}")
    if above_teams(actor.roles):
        return Grant("a manager above teams")
    person_id = await _person_of(pool, command)
    if person_id is None:
        return Grant("no such record")  # the command itself is refused: not_found
    if command.access_reason:
        return Grant("a recorded reason", person_id, command.access_reason)
    why = await access.why_allowed(worker_id=actor.worker_id, team_ids=actor.team_ids, person_id=str(person_id),
                                   roles=actor.roles)
    if why is None:
        field = "relationship_id" if isinstance(command, commands.EndPersonRelationship) else "person_id"
        raise RuleBroken([Reason(code="no_relationship", field=field, message=(
            f"worker {actor.worker_id} has no relationship with person {person_id} and no work for them:"
            " give an access_reason (break-glass), which is recorded"))])
    return Grant(why, person_id)


async def _person_of(pool: asyncpg.Pool, command: commands.PersonCommand) -> uuid.UUID | None:
    match command:
        case commands.EndPersonRelationship():
            return await store.relationship_person(pool, command.relationship_id)
        case commands.UpdatePerson() | commands.AddPersonRelationship() | commands.AddCaseNote():
            return command.person_id
    return None


async def _record_reason(conn: asyncpg.Connection, command: commands.PersonCommand, grant: Grant,
                         envelope: Envelope) -> None:
    if grant.reason is None or grant.person_id is None:
        return
    await access_reasons.keep(conn, command, envelope.id, grant.person_id, grant.reason)
    log.info("person command allowed on a recorded reason",  # the reason itself stays in the table
             extra={"message_id": str(envelope.id), "person_id": str(grant.person_id),
                    "worker_id": command.actor.worker_id})


async def _run(conn: asyncpg.Connection, command: Command, envelope: Envelope) -> tuple[str, list[Event]]:
    actor, now = f"worker:{command.actor.worker_id}", datetime.now(UTC)
    match command:
        case commands.UpdatePerson():
            return await _update_person(conn, command, actor, now, envelope)
        case commands.AddPersonRelationship():
            return await _add_relationship(conn, command, actor, now)
        case commands.EndPersonRelationship():
            return await _end_relationship(conn, command, actor)
        case commands.AddCaseNote():
            return await _add_case_note(conn, command, actor, now)
    raise AssertionError(f"unhandled command {command.TYPE}")


async def _locked_person(conn: asyncpg.Connection, person_id: uuid.UUID, expected: int | None) -> asyncpg.Record:
    person = await store.lock_person(conn, person_id)
    if person is None:
        raise RuleBroken([Reason(code="not_found", field="person_id", message="no such person")])
    if expected is not None and expected != person["version"]:
        raise RuleBroken([Reason(code="conflict", field="expected_version",
                              message=f"the record is at version {person['version']}, not {expected}")])
    return person


async def _update_person(conn: asyncpg.Connection, command: commands.UpdatePerson, actor: str, now: datetime,
                         envelope: Envelope) -> tuple[str, list[Event]]:
    person = await _locked_person(conn, command.person_id, command.expected_version)
    record, changed = domain.apply_changes(person["record"], command.changed())
    keys = domain.match_keys(PersonDetails.model_validate(record))
    if keys.nhs_number and await store.nhs_number_taken(conn, keys.nhs_number, command.person_id):
        raise RuleBroken([Reason(code="conflict", field="changes.nhs_number",
                              message="another person record has this NHS number")])
    version = person["version"]
    if changed:
        version = await store.save_person(conn, command.person_id, record, nhs_number=keys.nhs_number,
                                          name_key=keys.name_key, actor=actor, at=now)
        await store.record_change(conn, command.person_id, actor=actor, at=now, what=command.TYPE,
                                  message_id=envelope.id, fields=changed)
    key = str(command.person_id)
    return key, [PersonUpdated(person_id=key, fields=changed, version=version, actor=actor)]


async def _add_relationship(conn: asyncpg.Connection, command: commands.AddPersonRelationship, actor: str,
                            now: datetime) -> tuple[str, list[Event]]:
    await _locked_person(conn, command.person_id, None)
    other = await store.load_person(conn, command.other_person_id)
    domain.check_relationship(str(command.person_id), str(command.other_person_id), other_exists=other is not None)
    relationship_id = uuid.uuid4()
    await store.insert_relationship(conn, relationship_id, command.person_id, command.other_person_id,
                                    command.relationship, is_main_carer=command.is_main_carer,
                                    start_date=command.start_date, actor=actor, at=now)
    key = str(command.person_id)
    return key, [PersonRelationshipAdded(
        relationship_id=str(relationship_id), person_id=key, other_person_id=str(command.other_person_id),
        relationship=command.relationship, is_main_carer=command.is_main_carer, start_date=command.start_date,
        actor=actor)]


async def _end_relationship(conn: asyncpg.Connection, command: commands.EndPersonRelationship,
                            actor: str) -> tuple[str, list[Event]]:
    relationship = await store.lock_relationship(conn, command.relationship_id)
    if relationship is None:
        raise RuleBroken([Reason(code="not_found", field="relationship_id", message="no such relationship")])
    domain.check_relationship_end(relationship["start_date"], relationship["end_date"] is not None,
                                  command.end_date)
    await store.end_relationship(conn, command.relationship_id, command.end_date, command.end_reason, actor)
    key = str(relationship["person_id"])
    return key, [PersonRelationshipEnded(
        relationship_id=str(command.relationship_id), person_id=key,
        other_person_id=str(relationship["other_person_id"]), end_date=command.end_date, actor=actor)]


async def _add_case_note(conn: asyncpg.Connection, command: commands.AddCaseNote, actor: str,
                         now: datetime) -> tuple[str, list[Event]]:
    await _locked_person(conn, command.person_id, None)
    note_id = uuid.uuid4()
    await store.insert_case_note(conn, {
        "note_id": note_id, "person_id": command.person_id, "title": command.title, "type": command.type,
        "text": command.text, "author": actor, "notify_worker_ids": command.notify_worker_ids, "written_at": now})
    key = str(command.person_id)
    return key, [CaseNoteAdded(note_id=str(note_id), person_id=key, title=command.title, type=command.type,
                               author=actor, notify_worker_ids=command.notify_worker_ids)]
