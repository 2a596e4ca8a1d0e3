"""Tamper-evident audit: a hash-chained row per change, written in the transaction that decides it.

A change is an event a service publishes (a message to a `*.events` topic), so `outbox.add`
records it: no handler has to remember. Who acted comes from the message being handled
(`CauseMiddleware` keeps it for the handler): its `data.actor` (worker id and roles) when a
command caused the change, else the event's own `actor`, else `system:<service>`. A service's
acts that publish nothing (the desk's sign-ins, account changes and break-glass reasons) are
appended with `append`, naming their actor.
"""

import asyncio
import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, TypeGuard

import asyncpg
from faststream import BaseMiddleware

from shared.envelope import Headers, Undecodable, decode_binary, is_binary_mode
from shared.health import JobHealth
from shared.signing import Signer, Unauthenticated, Verifier, issuer_of

log = logging.getLogger(__name__)
GENESIS = "0" * 64
AUDITED_TOPIC_SUFFIX = ".events"
# the thing changed, besides the person (the subject): the first of these the event names
OBJECT_FIELDS = ("document_id", "step_id", "request_id", "entry_id", "relationship_id", "next_action_id",
                 "po_request_id", "referral_id", "workflow_id", "message_id", "timer_key")

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
    """A row of the one chain written before migration 0007: sha256 of the previous hash and the row's canonical
    JSON (sorted keys, no spaces, ASCII) with its seq; a row without details hashes as it did before details."""
    return _digest(prev_hash, entry, {"seq": seq})


def link_hash(prev_hash: str, chain: int, chain_seq: int, entry: Entry) -> str:
    """A row of one of the chains (migration 0007): sha256 of the previous hash, its chain, its place in it and
    its content hash, joined by ':' — made by the database's audit_append, remade here to verify."""
    return sha256(f"{prev_hash}:{chain}:{chain_seq}:{content_hash(entry)}")


def content_hash(entry: Entry) -> str:
    """sha256 of the row's canonical JSON (sorted keys, no spaces, ASCII), without the details it lacks."""
    return sha256(_canonical(_row(entry)))


def _digest(prev_hash: str, entry: Entry, place: dict[str, int]) -> str:
    return sha256(prev_hash + _canonical({**_row(entry), **place}))


def _row(entry: Entry) -> dict[str, Any]:
    """The entry as its canonical JSON has it (no `details` key when it has none); built by hand, not by
    `dataclasses.asdict`, which deep-copies and cost a fifth of the audit's time in a step transition."""
    row: dict[str, Any] = {
        "at": entry.at.astimezone(UTC).isoformat(timespec="microseconds"), "actor_id": entry.actor_id,
        "actor_roles": list(entry.actor_roles), "action": entry.action, "subject": entry.subject,
        "object_id": entry.object_id, "message_id": entry.message_id, "causation_id": entry.causation_id,
        "cause_type": entry.cause_type, "source": entry.source}
    if entry.details is not None:
        row["details"] = dict(entry.details)
    return row


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


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


def entries_for(messages: Iterable[tuple[str, bytes]]) -> list[Entry]:
    """An entry per event among the messages (topic, value), caused by the message being handled, if any."""
    cause = _CAUSE.get()
    return [entry_of(value, cause) for topic, value in messages if topic.endswith(AUDITED_TOPIC_SUFFIX)]


async def append(conn: asyncpg.Connection, entries: Sequence[Entry]) -> None:
    """Append the entries to one chain, in the caller's transaction, in one round trip.

    `audit_append()` claims a chain no other transaction holds (this connection's own first) with an advisory
    lock until commit, and continues it from its last row: concurrent writers append to different chains instead
    of queueing, and two appends never start from the same row. It links each row to the one before (`link_hash`).
    """
    if entries:
        await conn.execute("SELECT audit_append($1::text[], $2::text::jsonb)", *append_arguments(entries))


def append_arguments(entries: Sequence[Entry]) -> tuple[list[str], str]:
    """What `audit_append()` takes: each entry's content hash, and the entries as JSON rows."""
    rows = [_row(e) for e in entries]
    hashes = [sha256(_canonical(row)) for row in rows]
    return hashes, json.dumps([{"i": i, **row} for i, row in enumerate(rows, start=1)])


# --- checkpoints -------------------------------------------------------------------------------


# each chain's committed last row becomes its head (appends do not move audit_heads: migration 0009)
MOVE_HEADS = (
    "WITH last AS (SELECT h.chain, coalesce(l.chain_seq, h.seq) AS seq, coalesce(l.hash, h.hash) AS hash"
    " FROM audit_heads h LEFT JOIN LATERAL (SELECT a.chain_seq, a.hash FROM audit_log a WHERE a.chain = h.chain"
    " ORDER BY a.chain_seq DESC LIMIT 1) l ON true),"
    " moved AS (UPDATE audit_heads h SET seq = last.seq, hash = last.hash FROM last"
    " WHERE h.chain = last.chain AND h.seq < last.seq)"
    " SELECT chain, seq, hash FROM last ORDER BY chain")


def checkpoint_digest(prev_digest: str, at: datetime, heads: list[list[Any]]) -> str:
    return sha256(prev_digest + _canonical({"at": at.astimezone(UTC).isoformat(timespec="microseconds"),
                                            "heads": heads}))


async def checkpoint(conn: asyncpg.Connection, signer: Signer | None = None) -> str | None:
    """Record every chain's committed head, hashed and linked to the last checkpoint and signed by the service's
    key; its digest, or None when nothing was appended since that one."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('audit-checkpoint:' || current_schema()))")
        heads = [[r["chain"], r["seq"], r["hash"]] for r in await conn.fetch(MOVE_HEADS)]
        last = await conn.fetchrow("SELECT heads, digest FROM audit_checkpoints ORDER BY id DESC LIMIT 1")
        if last is not None and _heads(last["heads"]) == heads:
            return None
        at = datetime.now(UTC)
        digest = checkpoint_digest(last["digest"] if last else GENESIS, at, heads)
        signature = signer.seal(await _sealed(conn, digest)) if signer is not None else None
        await conn.execute("INSERT INTO audit_checkpoints (at, heads, prev_digest, digest, signature)"
                           " VALUES ($1, $2::text::jsonb, $3, $4, $5)",
                           at, json.dumps(heads), last["digest"] if last else GENESIS, digest, signature)
    return digest


async def _sealed(conn: asyncpg.Connection, digest: str) -> dict[str, str]:
    """What a checkpoint's signature covers: its digest (which covers every head and the checkpoints before) and
    the schema, so that a signed checkpoint cannot be copied into another service's log."""
    return {"schema": await conn.fetchval("SELECT current_schema()"), "digest": digest}


def _heads(stored: str | list[list[Any]]) -> list[list[Any]]:
    """The checkpoint's heads, whether or not the connection decodes jsonb (the verify command's does not)."""
    return json.loads(stored) if isinstance(stored, str) else stored


async def keep_checkpointed(pool: asyncpg.Pool, every_seconds: float, signer: Signer,
                            health: JobHealth | None = None) -> None:
    """A signed checkpoint now and then until cancelled; a failure only delays it, and shows in `health` if it
    persists."""
    while True:
        await asyncio.sleep(every_seconds)  # housekeeping interval, not a wait for a message
        try:
            async with pool.acquire() as conn:
                await checkpoint(conn, signer)
            if health is not None:
                health.succeeded("audit-checkpoint")
        except Exception as exc:  # retried next round
            log.warning("audit checkpoint failed, will try again", extra={"error": type(exc).__name__})
            if health is not None:
                health.failed("audit-checkpoint", exc)


# --- verifying ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """The outcome of recomputing a service's chains: rows read, the latest checkpoint, and the first break."""

    rows: int
    chains: int
    checkpoint: str | None = None  # the latest checkpoint's digest, to keep elsewhere
    signed_by: str | None = None  # the producer whose key signed the latest checkpoint, when signatures were checked
    broken_at: str | None = None  # "seq N", or "chain C row N" for a row that is missing
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None


class Broken(Exception):
    def __init__(self, at: str, reason: str) -> None:
        super().__init__(reason)
        self.at, self.reason = at, reason


def _entry(row: asyncpg.Record) -> Entry:
    return Entry(at=row["at"], actor_id=row["actor_id"], actor_roles=tuple(row["actor_roles"]),
                 action=row["action"], subject=row["subject"], object_id=row["object_id"],
                 message_id=str(row["message_id"]), causation_id=row["causation_id"],
                 cause_type=row["cause_type"], source=row["source"], details=_details(row["details"]))


def _details(stored: str | dict[str, str] | None) -> dict[str, str] | None:
    """The row's details, whether or not the connection decodes jsonb (the verify command's does not)."""
    return json.loads(stored) if isinstance(stored, str) else stored


@dataclass
class _Walk:
    """Where the recomputation is: the old chain's head, then each chain's last row and its hash so far."""

    rows: int = 0
    legacy_seq: int = 0
    legacy_hash: str = GENESIS
    chains: dict[int, tuple[int, str]] = field(default_factory=dict)
    hashes: dict[tuple[int, int], str] = field(default_factory=dict)  # (chain, chain_seq) → hash, for checkpoints

    def legacy(self, row: asyncpg.Record) -> None:
        seq = row["seq"]
        if seq != self.legacy_seq + 1:
            raise Broken(f"seq {self.legacy_seq + 1}", f"row {self.legacy_seq + 1} is missing (deleted)")
        self._check(row, self.legacy_hash, chain_hash(self.legacy_hash, seq, _entry(row)))
        self.legacy_seq, self.legacy_hash = seq, row["hash"]

    def link(self, row: asyncpg.Record) -> None:
        chain, n = row["chain"], row["chain_seq"]
        last, prev = self.chains.get(chain, (0, self.legacy_hash))
        if n != last + 1:
            raise Broken(f"chain {chain} row {last + 1}", f"row {last + 1} of chain {chain} is missing (deleted)")
        self._check(row, prev, link_hash(prev, chain, n, _entry(row)))
        self.chains[chain] = (n, row["hash"])
        self.hashes[(chain, n)] = row["hash"]

    def _check(self, row: asyncpg.Record, prev: str, recomputed: str) -> None:
        self.rows += 1
        if row["prev_hash"] != prev:
            raise Broken(f"seq {row['seq']}", "prev_hash does not match the row before")
        if recomputed != row["hash"]:
            raise Broken(f"seq {row['seq']}", "hash does not match the row (changed after writing)")

    def head(self, chain: int) -> tuple[int, str]:
        return self.chains.get(chain, (0, self.legacy_hash))

    def hash_at(self, chain: int, n: int) -> str | None:
        return self.legacy_hash if n == 0 else self.hashes.get((chain, n))


async def verify(conn: asyncpg.Connection, schema: str, expect: str | None = None,
                 verifier: Verifier | None = None) -> Verdict:
    """Recompute every chain of `schema` (the one before migration 0007, then each of its chains), compare
    the heads and every checkpoint with them; `expect` is a checkpoint digest kept elsewhere earlier. With the
    trusted keys (`verifier`), the checkpoints must also be signed by the service's own key (_Signatures)."""
    walk = _Walk()
    signatures = _Signatures(schema, verifier) if verifier is not None else None
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        try:
            async for row in conn.cursor(f'SELECT * FROM "{schema}".audit_log ORDER BY chain NULLS FIRST,'
                                         ' chain_seq, seq', prefetch=1000):
                if row["chain"] is None:
                    walk.legacy(row)
                else:
                    walk.link(row)
            await _check_heads(conn, schema, walk)
            latest = await _check_checkpoints(conn, schema, walk, expect, signatures)
        except Broken as broken:
            return Verdict(walk.rows, len(walk.chains), None, None, broken.at, broken.reason)
    return Verdict(walk.rows, len(walk.chains), latest, signatures.signer if signatures else None)


async def _check_heads(conn: asyncpg.Connection, schema: str, walk: _Walk) -> None:
    """The heads table names a row each chain must still reach (its last row at the last checkpoint): a chain
    that ends before it, or holds another hash there, lost its tail or was rewritten."""
    for head in await conn.fetch(f'SELECT chain, seq, hash FROM "{schema}".audit_heads ORDER BY chain'):
        if walk.hash_at(head["chain"], head["seq"]) != head["hash"]:
            raise Broken(f"chain {head['chain']} row {walk.head(head['chain'])[0] + 1}",
                         f"chain {head['chain']} ends before its head {head['seq']} (truncated) or was rewritten")


async def _check_checkpoints(conn: asyncpg.Connection, schema: str, walk: _Walk, expect: str | None,
                             signatures: "_Signatures | None") -> str | None:
    """Each checkpoint recomputes, links to the one before, names heads the chains still hold and, when
    `signatures` are checked, is signed by the service."""
    prev, found = GENESIS, expect is None
    async for cp in conn.cursor(f'SELECT * FROM "{schema}".audit_checkpoints ORDER BY id'):
        heads = _heads(cp["heads"])
        if cp["prev_digest"] != prev or checkpoint_digest(prev, cp["at"], heads) != cp["digest"]:
            raise Broken(f"checkpoint {cp['id']}", "the checkpoint does not recompute (changed, or one before it"
                                                   " deleted)")
        if signatures is not None:
            signatures.check(cp)
        for chain, n, digest in heads:
            if walk.hash_at(chain, n) != digest:
                raise Broken(f"chain {chain} row {n}", f"checkpoint {cp['id']} names row {n} of chain {chain} with"
                                                       " another hash or the chain no longer reaches it (truncated)")
        prev, found = cp["digest"], found or cp["digest"] == expect
    if not found:
        raise Broken("checkpoint", "no checkpoint has the kept digest (checkpoints deleted or rewritten)")
    if signatures is not None:
        signatures.check_latest()
    return None if prev == GENESIS else prev


@dataclass
class _Signatures:
    """Checkpoints signed by the service whose log it is: a database owner can recompute every hash but not sign.

    Checkpoints from before migration 0008 are unsigned; from the first signed one on, every checkpoint must be,
    and so must the latest, so that deleting the signed ones and writing unsigned ones is caught too.
    """

    schema: str
    verifier: Verifier
    signer: str | None = None
    latest: tuple[int, bool] | None = None  # (id, signed)

    def check(self, cp: asyncpg.Record) -> None:
        where = f"checkpoint {cp['id']}"
        if cp["signature"] is None:
            if self.signer is not None:
                raise Broken(where, f"not signed, after checkpoints signed by {self.signer}")
        else:
            self.signer = self._signed_by(where, cp["signature"], cp["digest"])
        self.latest = (cp["id"], cp["signature"] is not None)

    def _signed_by(self, where: str, signature: str, digest: str) -> str:
        try:
            claims, producer = self.verifier.claims_of(signature)
        except Unauthenticated as refused:
            raise Broken(where, f"signature: {refused.reason}") from None
        if producer != issuer_of(self.schema):
            raise Broken(where, f"signed by {producer}, not by the service {issuer_of(self.schema)}")
        if claims.get("schema") != self.schema or claims.get("digest") != digest:
            raise Broken(where, "the signature is of another checkpoint")
        return producer

    def check_latest(self) -> None:
        if self.latest is not None and not self.latest[1]:
            raise Broken(f"checkpoint {self.latest[0]}", "the latest checkpoint is not signed by the service")


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
