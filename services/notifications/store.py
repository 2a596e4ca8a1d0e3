"""Queries of the notifications schema: inbox items and message delivery records."""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from services.notifications.domain import InboxItem, MessageStatus, Referrer
from shared.events.notifications import Addressee, Channel

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool
ITEM_COLUMNS = (
    "request_id, kind, recipient_kind, recipient_id, person_id, step_id, step_type, name, note, required,"
    " sent_by, sent_at, state, due_at, overdue, reminded_at, closed_at, closed_by, closed_reason, task_code, rule,"
    " subject"
)


def _item(row: Mapping[str, Any]) -> InboxItem:
    return InboxItem(**{k: row[k] for k in ITEM_COLUMNS.replace(" ", "").split(",")})


async def insert_item(conn: asyncpg.Connection, item: InboxItem) -> bool:
    """False when the item is already there (a redelivered or re-emitted event)."""
    return bool(await conn.fetchval(
        f"INSERT INTO inbox_items ({ITEM_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
        " $13, $14, $15, $16, $17, $18, $19, $20, $21, $22) ON CONFLICT (request_id) DO NOTHING RETURNING true",
        item.request_id, item.kind, item.recipient_kind, item.recipient_id, item.person_id, item.step_id,
        item.step_type, item.name, item.note, item.required, item.sent_by, item.sent_at, item.state,
        item.due_at, item.overdue, item.reminded_at, item.closed_at, item.closed_by, item.closed_reason,
        item.task_code, item.rule, item.subject,
    ))


async def update_item(conn: asyncpg.Connection, item: InboxItem) -> None:
    await conn.execute(
        "UPDATE inbox_items SET state = $2, overdue = $3, reminded_at = $4, closed_at = $5, closed_by = $6,"
        " closed_reason = $7 WHERE request_id = $1",
        item.request_id, item.state, item.overdue, item.reminded_at, item.closed_at, item.closed_by,
        item.closed_reason,
    )


async def load_item(conn: Conn, request_id: str, *, for_update: bool = False) -> InboxItem | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {ITEM_COLUMNS} FROM inbox_items WHERE request_id = $1{lock}", request_id)
    return _item(row) if row else None


async def open_items_of_step(conn: asyncpg.Connection, step_id: str) -> list[InboxItem]:
    rows = await conn.fetch(
        f"SELECT {ITEM_COLUMNS} FROM inbox_items WHERE step_id = $1 AND state = 'open'"
        " ORDER BY sent_at FOR UPDATE", step_id)
    return [_item(r) for r in rows]


async def open_tasks_of(conn: asyncpg.Connection, subjects: list[str]) -> list[InboxItem]:
    """Open tasks that what was done elsewhere may complete: by subject ("step:<id>", "entry:<id>"…), locked."""
    rows = await conn.fetch(
        f"SELECT {ITEM_COLUMNS} FROM inbox_items WHERE subject = ANY($1::text[]) AND state = 'open'"
        " AND kind = 'task' ORDER BY sent_at FOR UPDATE", subjects)
    return [_item(r) for r in rows]


async def inbox_of(conn: Conn, recipient_kind: str, recipient_id: str, state: str | None,
                   limit: int, kind: str | None = None) -> list[InboxItem]:
    """A worker's or team's inbox: open items first, newest first; optionally one kind (tasks only…)."""
    rows = await conn.fetch(
        f"SELECT {ITEM_COLUMNS} FROM inbox_items WHERE recipient_kind = $1 AND recipient_id = $2"
        " AND ($3::text IS NULL OR state = $3) AND ($5::text IS NULL OR kind = $5)"
        " ORDER BY (state = 'open') DESC, sent_at DESC LIMIT $4",
        recipient_kind, recipient_id, state, limit, kind)
    return [_item(r) for r in rows]


async def inbox_items_about(conn: Conn, person_id: str, worker_id: str, team_ids: list[str],
                            limit: int) -> list[InboxItem]:
    """Items about the person sent to the worker or to any of the teams, in any state, newest first."""
    rows = await conn.fetch(
        f"SELECT {ITEM_COLUMNS} FROM inbox_items WHERE person_id = $1"
        " AND ((recipient_kind = 'worker' AND recipient_id = $2)"
        " OR (recipient_kind = 'team' AND recipient_id = ANY($3::text[])))"
        " ORDER BY sent_at DESC LIMIT $4", person_id, worker_id, team_ids, limit)
    return [_item(r) for r in rows]


# --- messages to people ------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageRecord:
    """The delivery record of one message to a person: ids, channel and outcome only."""

    message_id: uuid.UUID
    source_message_id: uuid.UUID
    recipient: Addressee  # (R-T4) the message is about `person_id` either way
    person_id: str
    team_id: str | None
    reason: str
    template: str
    channel: Channel | None
    status: MessageStatus
    attempts: int
    error_code: str | None
    provider_ref: str | None
    params: dict[str, Any]
    requested_at: datetime
    updated_at: datetime
    # who took it (notify, smtp, print_queue, team), and the preferred channel not used, and why (R-T4)
    provider: str | None = None
    fallback_from: Channel | None = None
    fallback_reason: str | None = None
    task_id: str | None = None
    delivered_at: datetime | None = None  # when the provider's receipt said it reached the recipient


MESSAGE_COLUMNS = (
    "message_id, source_message_id, recipient, person_id, team_id, reason, template, channel, status, attempts,"
    " error_code, provider_ref, params, requested_at, updated_at, provider, fallback_from, fallback_reason, task_id,"
    " delivered_at"
)


def _message(row: Mapping[str, Any]) -> MessageRecord:
    return MessageRecord(**{k: row[k] for k in MESSAGE_COLUMNS.replace(" ", "").split(",")})


async def messages_of_source(conn: Conn, source_message_id: uuid.UUID) -> dict[str, MessageRecord]:
    """The delivery records of one message request, by recipient."""
    rows = await conn.fetch(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE source_message_id = $1",
                            source_message_id)
    return {r["recipient"]: _message(r) for r in rows}


async def insert_message(conn: asyncpg.Connection, record: MessageRecord) -> bool:
    """False when this recipient's record of the source message exists already (unique per both)."""
    return bool(await conn.fetchval(
        f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
        " $13, $14, $15, $16, $17, $18, $19, $20) ON CONFLICT (source_message_id, recipient) DO NOTHING"
        " RETURNING true",
        record.message_id, record.source_message_id, record.recipient, record.person_id, record.team_id,
        record.reason,
        record.template, record.channel, record.status, record.attempts, record.error_code,
        record.provider_ref, record.params, record.requested_at, record.updated_at, record.provider,
        record.fallback_from, record.fallback_reason, record.task_id, record.delivered_at,
    ))


async def update_message(conn: asyncpg.Connection, record: MessageRecord) -> None:
    await conn.execute(
        "UPDATE messages SET channel = $2, status = $3, attempts = $4, error_code = $5, provider_ref = $6,"
        " params = $7, updated_at = $8, template = $9, provider = $10, fallback_from = $11, fallback_reason = $12,"
        " task_id = $13, delivered_at = $14 WHERE message_id = $1",
        record.message_id, record.channel, record.status, record.attempts, record.error_code,
        record.provider_ref, record.params, record.updated_at, record.template, record.provider,
        record.fallback_from, record.fallback_reason, record.task_id, record.delivered_at,
    )


async def message_sent_as(conn: asyncpg.Connection, provider_ref: str) -> MessageRecord | None:
    """The record of the message a provider knows by `provider_ref` (Notify's notification id), locked."""
    row = await conn.fetchrow(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE provider_ref = $1 FOR UPDATE",
                              provider_ref)
    return _message(row) if row is not None else None


async def messages_of(conn: Conn, person_id: str, limit: int) -> list[MessageRecord]:
    rows = await conn.fetch(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE person_id = $1 ORDER BY requested_at DESC LIMIT $2",
        person_id, limit)
    return [_message(r) for r in rows]


# --- referrers (R-T4) -------------------------------------------------------------------------


async def keep_referrer(conn: asyncpg.Connection, person_id: str, accepted_at: datetime, referrer: Referrer) -> None:
    """The referrer of the person's latest accepted referral; an older referral arriving late changes nothing."""
    await conn.execute(
        "INSERT INTO referrers (person_id, referral_id, accepted_at, name, email, phone)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (person_id) DO UPDATE SET referral_id = EXCLUDED.referral_id,"
        " accepted_at = EXCLUDED.accepted_at, name = EXCLUDED.name, email = EXCLUDED.email,"
        " phone = EXCLUDED.phone WHERE referrers.accepted_at <= EXCLUDED.accepted_at",
        person_id, referrer.referral_id, accepted_at, referrer.name, referrer.email, referrer.phone)


async def referrer_of(conn: Conn, person_id: str) -> tuple[bool, Referrer | None]:
    """Whether a referral of the person has been read, and who referred them last (None: no one named)."""
    row = await conn.fetchrow("SELECT referral_id, name, email, phone FROM referrers WHERE person_id = $1",
                              person_id)
    if row is None:
        return False, None
    if not any((row["name"], row["email"], row["phone"])):
        return True, None
    return True, Referrer(row["referral_id"], row["name"], row["email"], row["phone"])


# --- the RAG a case was placed with (R-T4, seed 004: what regular contact to expect) -------------


async def keep_placement(conn: asyncpg.Connection, entry_id: str, rag: str) -> None:
    await conn.execute("INSERT INTO tray_placements (entry_id, rag) VALUES ($1, $2) ON CONFLICT (entry_id) DO NOTHING",
                       entry_id, rag)


async def placement_rag(conn: Conn, entry_id: str | None) -> str | None:
    """The RAG the tray entry was placed with; None when unknown (the message then promises monthly contact)."""
    if entry_id is None:
        return None
    rag: str | None = await conn.fetchval("SELECT rag FROM tray_placements WHERE entry_id = $1", entry_id)
    return rag
