"""A reference finance consumer of `purchasing.orders`: a ledger of purchase orders, each counted once.

Copy it: it needs only aiokafka and the standard library, not Tessera. It reads the topic from the
beginning with its own consumer group, drops a message it has seen (by CloudEvents `id`) and an
order it holds (by `po_request_id`), keeps the ledger in its own SQLite file, and commits its Kafka
offsets only after the ledger transaction, so a crash at any point re-reads and re-drops.

    python -m tools.finance_ledger --bootstrap 127.0.0.1:9092 --ledger finance.sqlite
    python -m tools.finance_ledger --bootstrap 127.0.0.1:9092 --ledger finance.sqlite --once

`--once` reads what is on the topic when it starts, prints the totals and exits; `--people` prints,
per person, the live orders (no end asked for, or ending on or after `--as-of`) with their weekly and
annual totals (R-F7). An amendment changes the order's costs to its new ones.

    python -m tools.finance_ledger --bootstrap 127.0.0.1:9092 --ledger finance.sqlite --once --people
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

TOPIC = "purchasing.orders"
REQUESTED = "purchase_order.requested"
AMENDED = "purchase_order.amended"
END_REQUESTED = "purchase_order.end_requested"

SCHEMA = """
CREATE TABLE IF NOT EXISTS seen_messages (message_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS ledger (
    po_request_id  TEXT PRIMARY KEY,
    person_id      TEXT NOT NULL,
    step_id        TEXT NOT NULL,
    kind           TEXT NOT NULL,
    provider       TEXT,
    start_date     TEXT,
    weekly_cost    TEXT,           -- decimal string, pence exact: summed as Decimal, never float
    annual_cost    TEXT,
    requested_by   TEXT NOT NULL,
    message_id     TEXT NOT NULL,
    requested      TEXT NOT NULL,  -- the purchase_order.requested data as received
    end_date       TEXT,
    end_reason     TEXT,
    amendments     TEXT NOT NULL DEFAULT '[]'
);
"""


def open_ledger(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(SCHEMA)
    return conn


def apply(conn: sqlite3.Connection, values: Iterable[bytes | None]) -> int:
    """Apply a batch of message values in one transaction; returns how many changed the ledger."""
    changed = 0
    conn.execute("BEGIN")
    try:
        for value in values:
            changed += _apply_one(conn, value)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return changed


def _apply_one(conn: sqlite3.Connection, value: bytes | None) -> int:
    try:
        event = json.loads(value or b"")
    except ValueError:
        return 0  # not ours to judge: a producer's dead-letter topic holds what it could not send
    if not isinstance(event, dict) or not isinstance(event.get("data"), dict) or "id" not in event:
        return 0
    if conn.execute("INSERT OR IGNORE INTO seen_messages VALUES (?)", (str(event["id"]),)).rowcount == 0:
        return 0  # the same message again (a redelivery)
    data: dict[str, Any] = event["data"]
    match event.get("type"):
        case "purchase_order.requested":
            return conn.execute(
                "INSERT OR IGNORE INTO ledger (po_request_id, person_id, step_id, kind, provider, start_date,"
                " weekly_cost, annual_cost, requested_by, message_id, requested)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (data["po_request_id"], data["person_id"], data["step_id"], data["kind"], data.get("provider"),
                 data.get("start_date"), data.get("weekly_cost"), data.get("annual_cost"), data["requested_by"],
                 str(event["id"]), json.dumps(data)),
            ).rowcount  # 0: an order already held (the same order published again)
        case "purchase_order.end_requested":
            return conn.execute(
                "UPDATE ledger SET end_date = ?, end_reason = ? WHERE po_request_id = ? AND end_date IS NULL",
                (data["end_date"], data.get("reason"), data["po_request_id"])).rowcount
        case "purchase_order.amended":
            row = conn.execute("SELECT amendments, weekly_cost, annual_cost FROM ledger WHERE po_request_id = ?",
                               (data["po_request_id"],)).fetchone()
            if row is None:
                return 0
            amendments = [*json.loads(row[0]), data]
            found = data.get("changes")
            changes: dict[str, Any] = found if isinstance(found, dict) else {}
            weekly, annual = (_to(changes, "weekly_cost", row[1]), _to(changes, "annual_cost", row[2]))
            return conn.execute("UPDATE ledger SET amendments = ?, weekly_cost = ?, annual_cost = ?"
                                " WHERE po_request_id = ?",
                                (json.dumps(amendments), weekly, annual, data["po_request_id"])).rowcount
    return 0


def _to(changes: dict[str, Any], field: str, before: str | None) -> str | None:
    """The amended value of a cost (`changes[field]["to"]`), else the one held."""
    change = changes.get(field)
    return change.get("to") if isinstance(change, dict) and "to" in change else before


def people(conn: sqlite3.Connection, as_of: str | None = None) -> dict[str, dict[str, Any]]:
    """R-F7: per person, the live orders (no end asked for, or ending on or after `as_of`, an ISO date) and
    their weekly and annual totals, exact decimals."""
    out: dict[str, dict[str, Any]] = {}
    for po, person, kind, weekly, annual, end_date in conn.execute(
            "SELECT po_request_id, person_id, kind, weekly_cost, annual_cost, end_date FROM ledger"
            " ORDER BY person_id, po_request_id"):
        if end_date is not None and (as_of is None or end_date < as_of):
            continue
        row = out.setdefault(person, {"orders": [], "weekly": Decimal(0), "annual": Decimal(0)})
        row["orders"].append({"po_request_id": po, "kind": kind, "weekly_cost": weekly, "annual_cost": annual,
                              "end_date": end_date})
        row["weekly"] += Decimal(weekly) if weekly is not None else Decimal(0)
        row["annual"] += Decimal(annual) if annual is not None else Decimal(0)
    return out


def people_report(conn: sqlite3.Connection, as_of: str | None = None) -> str:
    lines = []
    for person, row in people(conn, as_of).items():
        lines.append(f"{person}: {len(row['orders'])} live orders, weekly £{row['weekly']:.2f},"
                     f" annual £{row['annual']:.2f}")
        for order in row["orders"]:
            ends = f", ends {order['end_date']}" if order["end_date"] else ""
            lines.append(f"  {order['po_request_id']} {order['kind']}: weekly £{order['weekly_cost']},"
                         f" annual £{order['annual_cost']}{ends}")
    return "\n".join(lines)


def totals(conn: sqlite3.Connection) -> dict[str, Any]:
    """Orders, ended orders, and the weekly and annual sums (exact decimals) overall and per kind."""
    per_kind: dict[str, dict[str, Any]] = {}
    for kind, weekly, annual, end_date in conn.execute("SELECT kind, weekly_cost, annual_cost, end_date FROM ledger"):
        row = per_kind.setdefault(kind, {"orders": 0, "ended": 0, "weekly": Decimal(0), "annual": Decimal(0)})
        row["orders"] += 1
        row["ended"] += end_date is not None
        row["weekly"] += Decimal(weekly) if weekly is not None else Decimal(0)
        row["annual"] += Decimal(annual) if annual is not None else Decimal(0)
    return {
        "orders": sum(r["orders"] for r in per_kind.values()),
        "ended": sum(r["ended"] for r in per_kind.values()),
        "weekly": sum((r["weekly"] for r in per_kind.values()), Decimal(0)),
        "annual": sum((r["annual"] for r in per_kind.values()), Decimal(0)),
        "per_kind": per_kind,
    }


def report(conn: sqlite3.Connection) -> str:
    t = totals(conn)
    lines = [f"orders {t['orders']} (ended {t['ended']}), weekly £{t['weekly']:.2f}, annual £{t['annual']:.2f}"]
    for kind, row in sorted(t["per_kind"].items()):
        lines.append(f"  {kind}: {row['orders']} orders, weekly £{row['weekly']:.2f}, annual £{row['annual']:.2f}")
    return "\n".join(lines)


async def run(bootstrap: str, ledger: Path, group: str, *, once: bool, topic: str = TOPIC, by_person: bool = False,
              as_of: str | None = None) -> None:
    conn = open_ledger(ledger)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                auto_offset_reset="earliest", fetch_max_wait_ms=100)
    await consumer.start()
    try:
        if once:
            partitions = [TopicPartition(topic, p) for p in await _partitions(consumer, topic)]
            consumer.assign(partitions)
            ends = await consumer.end_offsets(partitions)
        else:
            consumer.subscribe([topic])
            ends = {}
        while True:
            if once and await _caught_up(consumer, ends):
                break
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            records = [r for rs in batch.values() for r in rs]
            if records:
                apply(conn, (r.value for r in records))
                await consumer.commit()  # after the ledger commit: a crash re-reads, and re-drops
            elif not once:
                print(report(conn), flush=True)
    finally:
        await consumer.stop()
    print(report(conn), flush=True)
    if by_person:
        print(people_report(conn, as_of), flush=True)
    conn.close()


async def _caught_up(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    for _ in range(50):
        found = consumer.partitions_for_topic(topic)
        if found:
            return found
        await consumer._client.force_metadata_update()  # noqa: SLF001
        await asyncio.sleep(0.1)
    raise SystemExit(f"no topic {topic!r} on the broker")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.finance_ledger", description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers, host:port")
    parser.add_argument("--ledger", type=Path, default=Path("finance_ledger.sqlite"), help="the SQLite ledger file")
    parser.add_argument("--group", default="finance-ledger", help="this consumer's own consumer group")
    parser.add_argument("--topic", default=TOPIC)
    parser.add_argument("--once", action="store_true", help="read what is on the topic now, print totals, exit")
    parser.add_argument("--people", action="store_true", help="also print each person's live orders and totals")
    parser.add_argument("--as-of", help="an ISO date: orders ending on or after it count as live")
    args = parser.parse_args(argv)
    try:
        asyncio.run(run(args.bootstrap, args.ledger, args.group, once=args.once, topic=args.topic,
                        by_person=args.people, as_of=args.as_of))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
