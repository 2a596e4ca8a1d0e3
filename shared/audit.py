"""Tamper-evident audit: a hash-chained row per change, written in the transaction that decides it.

A change is an event a service publishes (a message to a `*.events` topic), so `outbox.add`
records it: no handler has to remember. Who acted comes from the message being handled
(`CauseMiddleware` keeps it for the handler): its `data.actor` (worker id and roles) when a
command caused the change, else the event's own `actor`, else `system:<service>`. A service's
acts that publish nothing (the desk's sign-ins, account changes and break-glass reasons) are
appended with `append`, naming their actor.
"""

import hashlib
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, TypeGuard

import asyncpg
from faststream import BaseMiddleware

from shared.envelope import Headers, Undecodable, decode_binary, is_binary_mode

GENESIS = "0" * 64
AUDITED_TOPIC_SUFFIX = ".events"
# the thing changed, besides the person (the subject): the first of these the event names
OBJECT_FIELDS = ("document_id", "step_id", "request_id", "entry_id", "relationship_id", "next_action_id",
                 "po_request_id", "referral_id", "workflow_id", "message_id", "timer_key")

_INSERT = (
    "INSERT INTO audit_log (seq, at, actor_id, actor_roles, action, subject, object_id, message_id,"
    " causation_id, cause_type, source, prev_hash, hash, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
    " $10, $11, $12, $13, $14::text::jsonb)"
)


@dataclass(frozen=True)
class Entry:
    """One change: who (id and roles), what (event type, subject, object), when, and what caused it."""

    at: datetime
    actor_id: str
    actor_roles: tuple[str, ...]
    action: str
    subject: str | None
    object_id: str | None
    message_id: str
    causation_id: str | None
    cause_type: str | None
    source: str
    # what else the act needs to be understood (a break-glass reason, the address of a sign-in); text values
    details: dict[str, str] | None = None


def chain_hash(prev_hash: str, seq: int, entry: Entry) -> str:
    """sha256 of the previous hash and the row's canonical JSON (sorted keys, no spaces, ASCII); a row without
    details hashes as it did before details existed."""
    row = {**asdict(entry), "seq": seq, "at": entry.at.astimezone(UTC).isoformat(timespec="microseconds"),
           "actor_roles": list(entry.actor_roles)}
    if entry.details is None:
        del row["details"]
    canonical = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


# --- who acts: the message being handled ------------------------------------------------------


class Cause:
    """The message a handler is handling, read only if the handler records a change."""

    def __init__(self, raw: bytes | None, headers: Headers = None) -> None:
        self._raw = raw
        self._headers = headers

    @cached_property
    def body(self) -> dict[str, Any]:
        if is_binary_mode(self._headers):  # issue #20: the attributes are headers, the value only the data
            try:
                return decode_binary(self._raw, self._headers).model_dump(mode="json")
            except Undecodable:
                return {}
        try:
            body = json.loads(self._raw or b"")
        except (ValueError, RecursionError):
            return {}
        return body if isinstance(body, dict) else {}

    @property
    def data(self) -> dict[str, Any]:
        data = self.body.get("data")
        return data if isinstance(data, dict) else {}

    def worker(self) -> tuple[str, tuple[str, ...]] | None:
        """The command's `data.actor` (worker id and roles), if it has one."""
        actor = self.data.get("actor")
        if not isinstance(actor, dict) or not _text(actor.get("worker_id")):
            return None
        roles = actor.get("roles")
        return actor["worker_id"], tuple(r for r in roles if isinstance(r, str)) if isinstance(roles, list) else ()

    def text(self, name: str) -> str | None:
        value = self.body.get(name)
        return value if _text(value) else None


_CAUSE: ContextVar[Cause | None] = ContextVar("tessera_audit_cause", default=None)


class CauseMiddleware(BaseMiddleware):
    """Keeps the consumed message for `record`, for as long as its handler runs."""

    async def consume_scope(self, call_next: Any, msg: Any) -> Any:
        token = _CAUSE.set(Cause(msg.body, msg.raw_message.headers))
        try:
            return await call_next(msg)
        finally:
            _CAUSE.reset(token)


def _text(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value)


# --- writing -----------------------------------------------------------------------------------


def entry_of(value: bytes, cause: Cause | None) -> Entry:
    """The audit entry of one published event, attributed to whoever caused it."""
    event = Cause(value)
    data, source = event.data, event.text("source") or "unknown"
    service = source.rsplit("/", 1)[-1]
    actor = cause.worker() if cause is not None else None
    if actor is None:
        named = data.get("actor")
        actor = (named, ()) if _text(named) else (f"system:{service}", ())
    object_id = next((str(data[f]) for f in OBJECT_FIELDS if data.get(f) is not None), None)
    time = event.text("time")
    return Entry(
        at=datetime.fromisoformat(time) if time else datetime.now(UTC),
        actor_id=actor[0], actor_roles=actor[1], action=event.text("type") or "unknown",
        subject=event.text("subject"), object_id=object_id, message_id=event.text("id") or "",
        causation_id=event.text("causationid"),
        cause_type=cause.text("type") if cause is not None else None,
        source=(cause.text("source") if cause is not None else None) or source,
    )


async def record(conn: asyncpg.Connection, messages: Iterable[tuple[str, bytes]]) -> None:
    """Append an entry per event to the chain, in the caller's transaction.

    The head is read under a transaction-level advisory lock, held until commit: concurrent
    writers of one service append one after another, never from the same head.
    """
    cause = _CAUSE.get()
    await append(conn, [entry_of(value, cause) for topic, value in messages if topic.endswith(AUDITED_TOPIC_SUFFIX)])


async def append(conn: asyncpg.Connection, entries: Sequence[Entry]) -> None:
    """Append the entries to the chain, in the caller's transaction, under the chain's lock (see `record`)."""
    if not entries:
        return
    head = await conn.fetchrow("SELECT seq, hash FROM audit_head()")
    seq, prev = (head["seq"] or 0), (head["hash"] or GENESIS)
    rows = []
    for entry in entries:
        seq += 1
        digest = chain_hash(prev, seq, entry)
        rows.append((seq, entry.at, entry.actor_id, list(entry.actor_roles), entry.action, entry.subject,
                     entry.object_id, entry.message_id, entry.causation_id, entry.cause_type, entry.source,
                     prev, digest, None if entry.details is None else json.dumps(entry.details)))
        prev = digest
    await conn.executemany(_INSERT, rows)


# --- verifying ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """The outcome of recomputing one chain: rows read, the head, and the first break if any."""

    rows: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


def _entry(row: asyncpg.Record) -> Entry:
    return Entry(at=row["at"], actor_id=row["actor_id"], actor_roles=tuple(row["actor_roles"]),
                 action=row["action"], subject=row["subject"], object_id=row["object_id"],
                 message_id=str(row["message_id"]), causation_id=row["causation_id"],
                 cause_type=row["cause_type"], source=row["source"], details=_details(row["details"]))


def _details(stored: str | dict[str, str] | None) -> dict[str, str] | None:
    """The row's details, whether or not the connection decodes jsonb (the verify command's does not)."""
    return json.loads(stored) if isinstance(stored, str) else stored


async def _rows(conn: asyncpg.Connection, schema: str) -> AsyncIterator[asyncpg.Record]:
    query = f'SELECT * FROM "{schema}".audit_log ORDER BY seq'
    async for row in conn.cursor(query, prefetch=1000):
        yield row


async def verify(conn: asyncpg.Connection, schema: str, expect: tuple[int, str] | None = None) -> Verdict:
    """Recompute the chain of `schema` from its first row; `expect` is a (seq, hash) kept elsewhere earlier."""
    count, seq, prev = 0, 0, GENESIS
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        async for row in _rows(conn, schema):
            count += 1
            if row["seq"] != seq + 1:
                return Verdict(count, seq, prev, seq + 1, f"row {seq + 1} is missing (deleted)")
            if row["prev_hash"] != prev:
                return Verdict(count, seq, prev, row["seq"], "prev_hash does not match the row before")
            if chain_hash(prev, row["seq"], _entry(row)) != row["hash"]:
                return Verdict(count, seq, prev, row["seq"], "hash does not match the row (changed after writing)")
            seq, prev = row["seq"], row["hash"]
            if expect is not None and seq == expect[0] and prev != expect[1]:
                return Verdict(count, seq, prev, seq, "hash differs from the one kept (chain rewritten)")
    if expect is not None and seq < expect[0]:
        return Verdict(count, seq, prev, seq + 1, f"chain ends at {seq}, before the kept row {expect[0]} (truncated)")
    return Verdict(count, seq, prev)


def access_reason(command: Any, envelope: Any, subject: str) -> list[Entry]:
    """The break-glass reason a command gave (`access_reason`), as an entry of the chain: kept there, never in the
    log (it may name the person). None given: no entry."""
    reason = getattr(command, "access_reason", None)
    if not reason:
        return []
    return [Entry(
        at=datetime.now(UTC), actor_id=command.actor.worker_id, actor_roles=tuple(command.actor.roles),
        action="record.access_reason", subject=subject, object_id=None, message_id=str(envelope.id),
        causation_id=None, cause_type=envelope.type, source=envelope.source,
        details={"command_type": envelope.type, "reason": reason})]
