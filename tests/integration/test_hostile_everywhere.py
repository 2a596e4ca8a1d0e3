"""Hostile and malformed input on every consumed topic: dead-lettered or ignored, never a crash or a stall.

For each topic a service consumes, a batch is published to one partition: undecodable messages
(invalid JSON or UTF-8, empty, not an object, a 4,300+-digit number, 1.5 MB, 50,000-deep
nesting, envelopes with a missing id, an infinite time, an empty or over-long source, CRLF/ANSI,
SQL or template strings where a UUID or time belongs, no key, forged dlq_* headers) must each
reach `<topic>.dlq` once per consuming service with `dlq_error` and their true original
topic/partition/offset; well-formed envelopes of unknown types, or of a type that belongs on
another topic (a newer producer's events), must NOT be dead-lettered; known types with hostile
field values get their usual answer (a command: `command.rejected`). Then one good message on the
same partition must get its normal outcome, every consumer group must commit past it, and every
consuming service must still be alive and ready.

Signatures: every payload that parses as an envelope is signed by its usual sender before it is sent
(shared.testing.signed_as_sender), so what is tested here is what lies behind verification; forged and
unsigned messages are tests/integration/test_signed_identity.py's.

Default: about 20 messages a topic. FAULTS_FULL=1 (`make faults`): 1,000 a topic.
For an independent check with other payloads: HOSTILE_SEED picks the junk, keys and partition
(printed with each topic's result; random by default), HOSTILE_PER_TOPIC the batch size, and
HOSTILE_FILE names a file of extra payloads, one a line (`b64:` + base64 for raw bytes, else the
line's UTF-8), sent on every topic; without it, tests/hostile/payloads.jsonl is, a third of it per topic in turn
except under FAULTS_FULL (issue #20: year-1 and year-9999 dates, NaN, 1e308, 100 kB strings, deep nesting,
DST-gap times, a well-formed envelope of every command type). Each payload is classified on every topic and
checked: on a command topic it is
answered (its events, or `command.rejected` with reasons) or dead-lettered; on an event topic it is
dead-lettered or handled/ignored; every dead letter carries a reason that echoes none of the payload's
values. A payload that is a well-formed envelope gets a fresh id on each topic (its UUID replaced
wherever it occurs), so that a service's inbox, which remembers ids across its topics, does not
take it for a redelivery. The good message after them must still get its normal outcome.
"""

import asyncio
import base64
import json
import os
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared import topics
from shared.envelope import new_message
from shared.testing import EventLog, Seen, ServiceProcess, poll_until, publish, service_auth, signed_as_sender
from tests.factories import actor, referral_message, unique_referral
from tests.workflow_harness import SCREENING
from tools.kafka_acls import consumed

FAULTS_FULL = os.environ.get("FAULTS_FULL") == "1"
PER_TOPIC = int(os.environ.get("HOSTILE_PER_TOPIC", 1000 if FAULTS_FULL else 20))
SEED = os.environ.get("HOSTILE_SEED")
SAMPLE_FILE = Path(__file__).parent.parent / "hostile" / "payloads.jsonl"
EXTRA_FILE = os.environ.get("HOSTILE_FILE") or str(SAMPLE_FILE)
pytestmark = [pytest.mark.faults] if FAULTS_FULL else []



def _consumers() -> dict[str, tuple[str, ...]]:
    """topic -> the services consuming it (their consumer group is "<service>.<topic>"), read from their handlers
    as tools.kafka_acls reads them: a new consumer is in the suite without anyone remembering to add it."""
    by_topic: dict[str, list[str]] = {}
    for service, pairs in sorted(consumed().items()):
        for _, topic in sorted(pairs):
            by_topic.setdefault(topic, []).append(service)
    return {topic: tuple(services) for topic, services in sorted(by_topic.items())}


CONSUMERS = _consumers()
COMMAND_TOPICS = {topics.REFERRALS_COMMANDS: topics.REFERRALS_EVENTS,
                  topics.WORKFLOW_COMMANDS: topics.WORKFLOW_EVENTS,
                  topics.ALLOCATION_COMMANDS: topics.ALLOCATION_EVENTS,
                  topics.NOTIFICATIONS_COMMANDS: topics.NOTIFICATIONS_EVENTS}
# a type each topic's consumers act on, to carry hostile field values
KNOWN_TYPE = {
    topics.REFERRALS_INTAKE: "referral.received", topics.REFERRALS_COMMANDS: "case_note.add",
    topics.REFERRALS_EVENTS: "referral.accepted", topics.WORKFLOW_COMMANDS: "step.start",
    topics.WORKFLOW_EVENTS: "request.raised", topics.ALLOCATION_COMMANDS: "worker_relationship.add",
    topics.ALLOCATION_EVENTS: "message.requested", topics.NOTIFICATIONS_EVENTS: "message.sent",
    topics.NOTIFICATIONS_COMMANDS: "task.complete",
    topics.SCHEDULER_TIMERS: "timer.set",
    topics.SCHEDULER_DUE: "timer.due", topics.BROKERAGE_EVENTS: "provider.offered",
    topics.WEB_EVENTS: "account.listed", topics.CLOCKS_EVENTS: "clock.warning",
}
HANDLED = {
    topics.WORKFLOW_EVENTS: {"request.raised", "notification.sent", "request.completed", "step.cancelled",
                             "step.returned", "step.finished"},
    topics.SCHEDULER_TIMERS: {"timer.set", "timer.cancel"},
    topics.BROKERAGE_EVENTS: {"provider.offered", "provider.confirmed"},
}
WATCHED = [topics.REFERRALS_EVENTS, topics.WORKFLOW_EVENTS, topics.ALLOCATION_EVENTS, topics.NOTIFICATIONS_EVENTS,
           topics.DOCUMENTS_EVENTS, topics.SCHEDULER_DUE]
HOSTILE_STRINGS = ["\r\nX-Injected: yes\r\n", "\x1b[31m\x1b[2J", "'; DROP TABLE inbox; --", "{{7*7}}", "${jndi:ldap://x}",
                   "<script>alert(1)</script>", "%s%s%n", "../../etc/passwd", "\u202eevil", "\x00nul"]


@dataclass
class Hostile:
    """One message to publish: what it is, and what must become of it."""

    name: str
    value: bytes
    key: str | None
    expect: str  # "dlq": dead-lettered by every consumer; "kept": never dead-lettered; "answered": any fate
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    message_id: str | None = None
    partition: int = -1
    offset: int = -1


def _envelope(**fields: Any) -> dict[str, Any]:
    base = {"specversion": "1.0", "id": str(uuid.uuid4()), "type": "x.unknown", "source": "tests/hostile",
            "time": datetime.now(UTC).isoformat(), "data": {}}
    return {**base, **fields}


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def _undecodable(rng: random.Random, key: str, big: bool) -> list[Hostile]:
    junk = rng.choice(HOSTILE_STRINGS)
    dump = json.dumps
    messages = [
        Hostile("not json", b"{not json " + junk.encode(), key, "dlq"),
        Hostile("invalid utf-8", b'{"specversion": "1.0", "type": "\xc3\x28\xff"}', key, "dlq"),
        Hostile("empty", b"", key, "dlq"),
        Hostile("a json array", b"[1, 2, 3]", key, "dlq"),
        Hostile("a 5,000-digit number", b"9" * 5000, key, "dlq"),
        Hostile("deep nesting", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, key, "dlq"),
        Hostile("envelope without id", dump({k: v for k, v in _envelope().items() if k != "id"}).encode(), key, "dlq"),
        Hostile("time of 1e400", dump(_envelope()).encode().replace(b'"time": "', b'"time": 1e400, "x": "'),
                key, "dlq"),
        Hostile("spoofed empty source", dump(_envelope(source="", type=rng.choice(list(KNOWN_TYPE.values()))))
                .encode(), key, "dlq"),
        Hostile("over-long source", dump(_envelope(source="tessera/referrals" + "x" * 500)).encode(), key, "dlq"),
        Hostile("specversion 0.3", dump(_envelope(specversion="0.3")).encode(), key, "dlq"),
        Hostile("CRLF and ANSI as the id", dump(_envelope(id="1\r\n\x1b[31m" + junk)).encode(), key, "dlq"),
        Hostile("SQL as the id", dump(_envelope(id="1'; DROP TABLE inbox; --")).encode(), key, "dlq"),
        # PostgreSQL text cannot hold NUL: such a message can never be stored, whatever its type
        Hostile("NUL in a well-formed envelope", dump(_envelope(subject="a\x00b")).encode(), key, "dlq"),
        Hostile("template as the time", dump(_envelope(time="{{7*7}}")).encode(), key, "dlq"),
        # issue #20: bounds every consumer relies on, whatever the type
        Hostile("time in year 1", dump(_envelope(time="0001-01-01T00:00:00Z")).encode(), key, "dlq"),
        Hostile("NaN in data", dump(_envelope(data={"n": float("nan")})).encode(), key, "dlq"),
        Hostile("data nested 40 deep", dump(_envelope(data=_nested(40))).encode(), key, "dlq"),
        Hostile("no key, not json", b"\x00\x01\x02" + junk.encode(), None, "dlq"),
        Hostile("forged dlq headers", b"nope", key, "dlq",
                headers=[("dlq_error", b"forged"), ("dlq_original_offset", b"-5"), ("dlq_service", b"forged")]),
    ]
    if big:
        messages.append(Hostile("1.5 MB", dump(_envelope(data={"x": "a" * 1_500_000})).encode(), key, "dlq"))
    return messages


def _kept(rng: random.Random, topic: str, key: str) -> list[Hostile]:
    """Well-formed envelopes of types the consumers do not handle: ignored (commands: rejected), never dead-lettered."""
    junk = rng.choice(HOSTILE_STRINGS)
    other = rng.choice([t for tp, t in KNOWN_TYPE.items() if tp != topic and t not in _handled_on(topic)])
    envelopes = [
        ("unknown type from a newer producer", _envelope(type=f"thing.happened_v{rng.randrange(2, 99)}",
                                                          data={"new_field": [1, 2, 3]}, newextension="v2")),
        ("a type that belongs on another topic", _envelope(type=other, data={"step_id": str(uuid.uuid4())})),
        ("CRLF and ANSI in the type", _envelope(type="evil\r\n\x1b[31m" + junk.replace("\x00", "")[:50])),
        ("SQL and templates in data and subject", _envelope(
            type="x.sql", subject="'; DROP TABLE outbox; --", data={"q": "{{7*7}} ${x} '; DELETE FROM inbox; --"})),
        ("spoofed source, unknown type", _envelope(type="referral.exploded", source="tessera/referrals")),
        ("huge numbers and nesting in data", _envelope(type="x.big", data={"n": 10**300, "f": 1e308,
                                                                           "deep": _nested(30)})),
    ]
    messages = [Hostile(name, json.dumps(e).encode(), key, "kept", message_id=e["id"]) for name, e in envelopes]
    e = _envelope(type="x.keyless")
    messages.append(Hostile("unknown type without a key", json.dumps(e).encode(), None, "kept", message_id=e["id"]))
    return messages


def _handled_on(topic: str) -> set[str]:
    """Types some consumer of `topic` acts on (a 'wrong topic' type must be none of them)."""
    return HANDLED.get(topic, set()) | {KNOWN_TYPE[topic]}


def _answered(rng: random.Random, topic: str, key: str) -> list[Hostile]:
    """Known types with hostile field values: a command gets command.rejected, an event is ignored or dead-lettered."""
    junk = rng.choice(HOSTILE_STRINGS)
    kind = KNOWN_TYPE[topic]
    datas = {
        "wrong field types": {"actor": 7, "person_id": ["x"], "step_id": {"a": 1}, "key": 5, "due_at": True,
                              "referral_id": 1.5, "owner": None, "po_request_id": [], "service": 7},
        "hostile strings in every field": {name: junk for name in (
            "person_id", "step_id", "referral_id", "workflow_id", "key", "owner", "po_request_id", "provider",
            "title", "type", "text", "worker_id", "team_id", "first_step_type", "request_id")},
        "huge numbers": {"person_id": 10**200, "version": 10**100, "due_at": 1e308, "expected_version": -10**50},
    }
    messages = []
    for name, data in datas.items():
        e = _envelope(type=kind, source=rng.choice(["tests/hostile", "tessera/referrals"]), data=data,
                      subject=junk[:100])
        messages.append(Hostile(f"{kind}: {name}", json.dumps(e).encode(), key, "answered", message_id=e["id"]))
    return messages


def hostile_batch(topic: str, n: int, seed: int) -> list[Hostile]:
    """About n messages: every kind at least once; for large n, repeated with other junk (few large ones)."""
    rng = random.Random(seed)
    out: list[Hostile] = []
    round_ = 0
    while len(out) < n or round_ == 0:
        key = f"hostile-{seed}-{round_ % 7}"
        batch = [*_undecodable(rng, key, big=round_ % 50 == 0), *_kept(rng, topic, key), *_answered(rng, topic, key)]
        if round_ > 0:
            batch = [m for m in batch if m.name != "deep nesting" or round_ % 10 == 0]
        out += batch
        round_ += 1
    return out if round_ == 1 else out[:n]


def extra_payloads(path: str, key: str, topic: str) -> list[Hostile]:
    """A file's payloads (HOSTILE_FILE, else the sample): classified and checked on every topic. The sample in a
    short run (`make test`): a third of it per topic, in turn, so every line still meets three or four topics."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    share = 1 if FAULTS_FULL or os.environ.get("HOSTILE_FILE") else 3
    turn = list(CONSUMERS).index(topic) % share
    payloads = []
    for number, line in enumerate(lines, 1):
        if not line or number % share != turn:
            continue
        value = base64.b64decode(line[4:]) if line.startswith("b64:") else line.encode()
        value, message_id = _fresh_id(value)
        payloads.append(Hostile(f"{Path(path).name} line {number}", value, key, "file", message_id=message_id))
    return payloads


def _fresh_id(value: bytes) -> tuple[bytes, str | None]:
    """A well-formed envelope's bytes with a new UUID for its id (wherever it occurs), and that id."""
    try:
        body = json.loads(value)
        old = str(uuid.UUID(body["id"])) if isinstance(body, dict) and isinstance(body.get("id"), str) else None
    except (ValueError, RecursionError):
        return value, None
    if old is None or body["id"] != old:
        return value, None
    new = str(uuid.uuid4())
    return value.replace(old.encode(), new.encode()), new


def _data_strings(value: bytes) -> set[str]:
    """The longer string values in a payload's `data`: a dead letter's reason must echo none of them."""
    try:
        body = json.loads(value)
    except (ValueError, RecursionError):
        return set()
    found: set[str] = set()
    stack = [body.get("data")] if isinstance(body, dict) else []
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack += node.values()
        elif isinstance(node, list):
            stack += node
        elif isinstance(node, str) and len(node) >= 12:
            found.add(node)
    return found


async def publish_to(bootstrap: str, topic: str, partition: int, messages: list[Hostile]) -> None:
    """Publish to one partition, noting each message's offset."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=4_000_000)
    await producer.start()
    try:
        for m in messages:  # signed by its usual sender: what is tested here is what lies behind verification
            m.value = signed_as_sender(topic, m.value)
        futures = [await producer.send(topic, value=m.value, key=m.key.encode() if m.key else None,
                                       partition=partition, headers=m.headers) for m in messages]
        for m, meta in zip(messages, await asyncio.gather(*futures), strict=True):
            m.partition, m.offset = meta.partition, meta.offset
    finally:
        await producer.stop()


async def committed(bootstrap: str, group: str, tp: TopicPartition) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=[tp])
    finally:
        await admin.close()
    found = offsets.get(tp)
    return found.offset if found is not None else -1


# --- the good message after the batch, and how to know it had its normal outcome -------------------------

Check = Callable[[EventLog, asyncpg.Pool], Awaitable[None]]


def _caused(message_id: str, topic: str, kinds: set[str] | None = None) -> Callable[[Seen], bool]:
    return lambda s: s.topic == topic and s.caused_by(message_id) and (kinds is None or s.type in kinds)


def _answer(answers: list[Seen]) -> str:
    """A command's outcome: its events, or `command.rejected` whose every reason has a code and a message."""
    rejected = [s for s in answers if s.type == "command.rejected"]
    if not rejected:
        return "handled: " + ", ".join(sorted({s.type for s in answers}))
    reasons = rejected[0].data.get("reasons") or []
    assert reasons and all(r.get("code") and r.get("message") for r in reasons), "a rejection without reasons"
    return "rejected: " + ", ".join(sorted({f"{r['code']}({r.get('field') or '-'})" for r in reasons}))[:300]


async def outboxed_dead_letters(db: asyncpg.Pool, scheduler_dsn: str, topic: str, partition: int) -> set[int]:
    """Offsets of `topic`/`partition` a consumer dead-lettered: in its outbox before it committed past them, so
    once every group is past a message, whether a dead letter of it is on its way is known."""
    offsets: set[int] = set()
    for service in CONSUMERS[topic]:
        # the tests' scheduler has a database of its own (conftest's scheduler_dsn)
        conn = await asyncpg.connect(scheduler_dsn) if service == "scheduler" else db
        try:
            rows = await conn.fetch(
                f"SELECT headers->>'dlq_original_offset' AS o FROM {service}.outbox WHERE topic = $1"
                " AND headers->>'dlq_original_topic' = $2 AND headers->>'dlq_original_partition' = $3",
                topics.dlq(topic), topic, str(partition))
        finally:
            if conn is not db:
                await conn.close()
        offsets |= {int(r["o"]) for r in rows}
    return offsets


async def _in_inbox(db: asyncpg.Pool, service: str, message_id: str) -> None:
    await poll_until(lambda: db.fetchval(f"SELECT true FROM {service}.inbox WHERE message_id = $1",
                                         uuid.UUID(message_id)), 60, f"{service} handled {message_id}")


def good_messages(topic: str, person_id: str) -> tuple[list[tuple[str, bytes]], Check]:
    """(key, value) pairs to send after the batch, and the check of their normal outcome."""
    now = datetime.now(UTC)
    hub = actor("w-hostile", "gso", teams=("wellbeing-service-hub",))
    if topic == topics.REFERRALS_INTAKE:
        m = referral_message(unique_referral())

        async def check(log: EventLog, db: asyncpg.Pool) -> None:
            await log.wait_for(_caused(str(m.id), topics.REFERRALS_EVENTS, {"referral.accepted"}), 60)
        return [(m.data["referral_id"], m.to_bytes())], check
    if topic == topics.REFERRALS_COMMANDS:
        m = new_message("case_note.add", "tests", {"actor": hub, "person_id": person_id, "title": "Visit",
                                                   "type": "Visit", "text": "Seen at home"}, subject=person_id)

        async def check(log: EventLog, db: asyncpg.Pool) -> None:
            await log.wait_for(_caused(str(m.id), topics.REFERRALS_EVENTS, {"case_note.added"}), 60)
        return [(person_id, m.to_bytes())], check
    if topic == topics.REFERRALS_EVENTS:
        workflow_id = str(uuid.uuid4())
        m = new_message("referral.accepted", "tessera/referrals", {
            "referral_id": f"REF-{uuid.uuid4().hex[:10]}", "person_id": person_id, "matched": True,
            "workflow_id": workflow_id, "first_step_type": SCREENING, "service": "adults", "category": "wellbeing",
            "urgency": "normal"}, subject=person_id)

        async def check(log: EventLog, db: asyncpg.Pool) -> None:
            await log.wait_for(lambda s: s.type == "step.created" and s.data.get("workflow_id") == workflow_id, 60)
            await _in_inbox(db, "allocation", str(m.id))
        return [(person_id, m.to_bytes())], check
    if topic == topics.WORKFLOW_COMMANDS:
        m = new_message("step.start_new", "tests", {"actor": hub, "person_id": person_id,
                                                    "step_type": "WB Covid 19 Response"}, subject=person_id)

        async def check(log: EventLog, db: asyncpg.Pool) -> None:
            first = (await log.wait_for(_caused(str(m.id), topics.WORKFLOW_EVENTS), 60, 1))[0]
            assert first.type != "command.rejected", first.data
        return [(person_id, m.to_bytes())], check
    if topic == topics.WORKFLOW_EVENTS:
        m = new_message("request.raised", "tessera/workflow", {
            "step_id": str(uuid.uuid4()), "person_id": person_id, "actor": "w-hostile", "version": 2,
            "request_id": str(uuid.uuid4()), "step_type": SCREENING, "name": "Hostile check", "required": False,
            "to": {"kind": "team", "id": "wellbeing-service-hub"}, "note": None, "step_state": "incomplete"},
            subject=person_id)

        async def check(log: EventLog, db: asyncpg.Pool) -> None:
            await log.wait_for(_caused(str(m.id), topics.NOTIFICATIONS_EVENTS), 60)
        return [(person_id, m.to_bytes())], check
    if topic == topics.ALLOCATION_COMMANDS:
        m = new_message("worker_relationship.add", "tests", {"actor": hub, "person_id": person_id,
                                                             "worker_id": "w-hostile"}, subject=person_id)

        async def check(log: EventLog, db: asyncpg.Pool) -> None:
            first = (await log.wait_for(_caused(str(m.id), topics.ALLOCATION_EVENTS), 60, 1))[0]
            assert first.type != "command.rejected", first.data
        return [(person_id, m.to_bytes())], check
    if topic == topics.ALLOCATION_EVENTS:
        m = new_message("message.requested", "tessera/allocation", {
            "person_id": person_id, "team_id": "wellbeing-service-hub", "reason": "pwt_added", "channel": None},
            subject=person_id)

        async def check(log: EventLog, db: asyncpg.Pool) -> None:
            await log.wait_for(_caused(str(m.id), topics.NOTIFICATIONS_EVENTS), 60)
        return [(person_id, m.to_bytes())], check
    if topic == topics.NOTIFICATIONS_COMMANDS:  # R-RQ8: no such task, so refused for that reason alone
        m = new_message("task.complete", "tests", {"actor": hub, "task_id": str(uuid.uuid4())}, subject=person_id)

        async def check(log: EventLog, db: asyncpg.Pool) -> None:
            [answer] = await log.wait_for(_caused(str(m.id), topics.NOTIFICATIONS_EVENTS), 60)
            assert (answer.type, answer.data["code"]) == ("command.rejected", "not_found"), answer.data
        return [(person_id, m.to_bytes())], check
    if topic == topics.NOTIFICATIONS_EVENTS:
        m = new_message("message.sent", "tessera/notifications", {
            "message_id": str(uuid.uuid4()), "person_id": person_id, "channel": "letter",
            "status": "queued_for_print", "reason": "pwt_added", "team_id": "wellbeing-service-hub",
            "template": "pwt_waiting_list", "attempts": 0, "team_name": "Wellbeing Service Hub",
            "team_number": "0161 000 0000"}, subject=person_id)

        async def check(log: EventLog, db: asyncpg.Pool) -> None:
            await log.wait_for(_caused(str(m.id), topics.DOCUMENTS_EVENTS, {"document.rendered"}), 60)
        return [(person_id, m.to_bytes())], check
    if topic == topics.SCHEDULER_TIMERS:
        key = f"hostile-{uuid.uuid4().hex[:10]}"
        m = new_message("timer.set", "tests", {"key": key, "due_at": now.isoformat(), "owner": "tests",
                                               "payload": {}}, subject=person_id)

        async def check(log: EventLog, db: asyncpg.Pool) -> None:
            await log.wait_for(lambda s: s.topic == topics.SCHEDULER_DUE and s.data.get("key") == key, 60)
        return [(person_id, m.to_bytes())], check
    if topic == topics.SCHEDULER_DUE:
        due = {"due_at": now.isoformat(), "fired_at": now.isoformat()}
        ms = {
            "workflow": new_message("timer.due", "tessera/scheduler", {
                **due, "key": f"future-work:{uuid.uuid4()}", "owner": "workflow"}),
            "allocation": new_message("timer.due", "tessera/scheduler", {
                **due, "key": f"tray-review:{uuid.uuid4()}", "owner": "allocation",
                "payload": {"entry_id": str(uuid.uuid4())}}),
            "notifications": new_message("timer.due", "tessera/scheduler", {
                **due, "key": f"request-overdue:{uuid.uuid4()}", "owner": "notifications"}),
        }

        async def check(log: EventLog, db: asyncpg.Pool) -> None:
            for service, message in ms.items():
                await _in_inbox(db, service, str(message.id))
        return [(person_id, m.to_bytes()) for m in ms.values()], check
    if topic == topics.BROKERAGE_EVENTS:
        m = new_message("provider.offered", "brokerage", {"po_request_id": str(uuid.uuid4()), "provider": "Care Co"},
                        subject=person_id)

        async def check(log: EventLog, db: asyncpg.Pool) -> None:
            await _in_inbox(db, "workflow", str(m.id))
        return [(person_id, m.to_bytes())], check
    if topic == topics.WEB_EVENTS:  # R-RQ9: the desk's listing of an account, kept by workflow
        worker = f"w-hostile-{uuid.uuid4().hex[:8]}"
        m = new_message("account.listed", "tessera/web", {
            "worker_id": worker, "roles": ["team_manager"], "team_ids": ["wellbeing-service-hub"], "active": True,
            "as_of": now.isoformat()}, subject=worker)

        async def check(log: EventLog, db: asyncpg.Pool) -> None:
            await _in_inbox(db, "workflow", str(m.id))
        return [(worker, m.to_bytes())], check
    if topic == topics.CLOCKS_EVENTS:  # R-CL6: a warning is a task for the clock's team (and a figure, R-CL7)
        m = new_message("clock.warning", "tessera/clocks", {
            "clock_id": str(uuid.uuid4()), "clock": "child_and_family_assessment", "title": "Hostile check",
            "rule": "R-CL3", "person_id": person_id, "team_id": "wellbeing-service-hub", "definition_version": 1,
            "unit": "working_days", "days_before": 5, "due_date": (now + timedelta(days=7)).date().isoformat(),
            "breach_at": (now + timedelta(days=8)).isoformat(), "concerns": "team_manager"}, subject=person_id)

        async def check(log: EventLog, db: asyncpg.Pool) -> None:
            await log.wait_for(_caused(str(m.id), topics.NOTIFICATIONS_EVENTS, {"task.created"}), 60)
        return [(person_id, m.to_bytes())], check
    raise AssertionError(f"no good message for {topic}")


# --- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture
async def consumers(referrals, workflow, allocation, notifications, documents, scheduler,
                    clocks) -> dict[str, ServiceProcess]:
    return {"referrals": referrals, "workflow": workflow, "allocation": allocation, "notifications": notifications,
            "documents": documents, "scheduler": scheduler, "clocks": clocks}


_people: dict[str, str] = {}


@pytest.fixture
async def person_id(infra, consumers) -> str:
    """A person created through intake (once a session), for the good commands after each batch."""
    if infra.bootstrap not in _people:
        message = referral_message(unique_referral())
        async with EventLog(infra.bootstrap, [topics.REFERRALS_EVENTS]) as log:
            await publish(infra.bootstrap, topics.REFERRALS_INTAKE,
                          [(message.data["referral_id"], message.to_bytes())])
            [accepted] = await log.wait_for(lambda s: s.caused_by(message.id) and s.type == "referral.accepted", 90)
        _people[infra.bootstrap] = accepted.data["person_id"]
    return _people[infra.bootstrap]


# --- the test -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("topic", list(CONSUMERS))
async def test_hostile_messages_are_dead_lettered_or_ignored_and_good_traffic_goes_on(
        topic, infra, consumers, person_id, db, scheduler_dsn):
    seed = int(SEED) if SEED else random.randrange(1_000_000)
    batch = [*hostile_batch(topic, PER_TOPIC, seed), *extra_payloads(EXTRA_FILE, f"hostile-{seed}-extra", topic)]
    partition = random.Random(seed).randrange(4)
    tp = TopicPartition(topic, partition)
    groups = [f"{service}.{topic}" for service in CONSUMERS[topic]]
    dlq = topics.dlq(topic)
    async with EventLog(infra.bootstrap, [dlq, *WATCHED]) as log:
        await publish_to(infra.bootstrap, topic, partition, batch)
        good, check_good = good_messages(topic, person_id)
        goods = [Hostile("good", value, key, "good") for key, value in good]
        await publish_to(infra.bootstrap, topic, partition, goods)
        last = goods[-1].offset
        timeout = 120 + len(batch) / 5
        for group in groups:  # every consumer went past the whole batch and the good message
            await poll_until(lambda g=group: _past(infra.bootstrap, g, tp, last), timeout, f"{group} past {last}")
        await check_good(log, db)

        mine = {m.offset: m for m in batch}
        expected = {(m.offset, service) for m in batch if m.expect == "dlq" for service in CONSUMERS[topic]}

        def dead() -> list[Seen]:
            return [s for s in log.seen if s.topic == dlq and s.headers.get("dlq_original_topic") == topic
                    and s.headers.get("dlq_original_partition") == str(partition)
                    and int(s.headers.get("dlq_original_offset", -1)) in mine]

        try:
            await log.wait_until(lambda: expected <= {(int(s.headers["dlq_original_offset"]), s.headers.get(
                "dlq_service")) for s in dead()}, 60)
        except TimeoutError:
            got = {(int(s.headers["dlq_original_offset"]), s.headers.get("dlq_service")) for s in dead()}
            missing = sorted({mine[o].name for o, _ in expected - got})
            raise AssertionError(f"not dead-lettered: {missing}") from None
        # a command with hostile values is answered (command.rejected) or, failing that, dead-lettered: never dropped
        questions = [m for m in batch if m.expect == "answered" and topic in COMMAND_TOPICS]
        files = [m for m in batch if m.expect == "file"]
        outboxed = await outboxed_dead_letters(db, scheduler_dsn, topic, partition)

        def fate(m: Hostile) -> str | None:
            """answered / dead-lettered; on an event topic, every consumer went past it: handled or ignored."""
            answers = log.matching(_caused(m.message_id, COMMAND_TOPICS[topic])) \
                if m.message_id is not None and topic in COMMAND_TOPICS else []
            if answers:
                return _answer(answers)
            reasons = [s.headers["dlq_error"] for s in dead() if int(s.headers["dlq_original_offset"]) == m.offset]
            if reasons:
                return f"dead-lettered: {reasons[0]}"
            return None if topic in COMMAND_TOPICS or m.offset in outboxed else "handled or ignored"

        try:
            await log.wait_until(lambda: all(fate(m) for m in [*questions, *files]), 60)
        except TimeoutError:
            late = [m.name for m in [*questions, *files] if not fate(m)]
            raise AssertionError(f"neither answered nor dead-lettered: {late}") from None
        fates = {m.name: fate(m) for m in questions}
        file_fates = Counter(str(fate(m)).split(":")[0] for m in files)

    letters = dead()
    for s in letters:
        original = mine[int(s.headers["dlq_original_offset"])]
        assert s.headers["dlq_error"] and s.headers["dlq_error"] != "forged", original.name
        assert s.headers["dlq_service"] in CONSUMERS[topic], original.name
        assert s.key == original.key, original.name
        if s.headers.get("dlq_truncated") == "true":
            assert int(s.headers["dlq_original_size"]) == len(original.value)
            assert original.value.startswith(s.value)
        else:
            assert s.value == original.value, original.name  # the original bytes, untouched
    for s in letters:  # a dead letter's reason names fields, never the values sent (personal data)
        original = mine[int(s.headers["dlq_original_offset"])]
        echoed = [v[:20] for v in _data_strings(original.value) if v in s.headers["dlq_error"]]
        assert echoed == [], f"{original.name}: the dead letter's reason echoes {echoed}"
    wrongly = sorted({mine[int(s.headers["dlq_original_offset"])].name for s in letters
                      if mine[int(s.headers["dlq_original_offset"])].expect == "kept"})
    assert wrongly == [], f"well-formed messages of unknown types were dead-lettered: {wrongly}"
    copies = [(int(s.headers["dlq_original_offset"]), s.headers["dlq_service"]) for s in letters
              if mine[int(s.headers["dlq_original_offset"])].expect == "dlq"]
    assert len(copies) == len(set(copies)), "a message was dead-lettered twice by one service"
    async with httpx.AsyncClient(auth=service_auth(), timeout=5) as http:
        for service in {*CONSUMERS[topic]}:
            process = consumers[service]
            assert process.process is not None and process.process.poll() is None, f"{service} died"
            assert (await http.get(f"{process.url}/readyz")).status_code == 200, f"{service} not ready"
    kinds = {k: sum(1 for m in batch if m.expect == k) for k in ("dlq", "kept", "answered", "file")}
    print(f"\n{topic} (HOSTILE_SEED={seed}, partition {partition}): {len(batch)} hostile ({kinds})"
          f" → {len(letters)} dead letters from {list(CONSUMERS[topic])}; good message handled; 0 crashes;"
          f" hostile commands: {fates or '-'}; file payloads: {dict(file_fates)}")


async def _past(bootstrap: str, group: str, tp: TopicPartition, offset: int) -> bool:
    return await committed(bootstrap, group, tp) > offset
