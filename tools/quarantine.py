"""See, re-drive and discard what a service set aside in its `dead_letters` table.

    python -m tools.quarantine list --service scheduler            # open dead letters, newest last
    python -m tools.quarantine redrive --service workflow --id 12 --by jsmith
    python -m tools.quarantine redrive --service scheduler --id 7 --due-at 2026-12-03T09:00:00Z --by jsmith
    python -m tools.quarantine discard --service scheduler --id 7 --reason "test data" --by jsmith

A message dead letter (a consumer's, or a row the outbox relay could not publish) is re-driven by
publishing its original bytes, key and headers (minus `dlq_*`) to its topic: consumers drop a copy
they already handled (inbox). A timer dead letter (a row the scheduler's firing job could not fire)
is re-driven by putting the timer back in the scheduler's table, due at `--due-at` (default: now, so
it fires at once). Either way the row is marked resolved, by whom and when; nothing is deleted.
Prints ids, jobs and reasons only, never values (they may hold personal data).
See deploy/runbooks/quarantine.md. Settings: DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS as for the services.
"""

import argparse
import asyncio
import json
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from shared.broker import producer_options
from shared.settings import Settings


async def open_letters(conn: asyncpg.Connection, include_resolved: bool = False) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, job, kind, topic, set_aside_at, error, resolved_at, resolution, resolved_by FROM dead_letters"
        " WHERE $1 OR resolved_at IS NULL ORDER BY id", include_resolved)


async def redrive(conn: asyncpg.Connection, settings: Settings, letter_id: int, by: str,
                  due_at: datetime | None = None) -> str:
    """Re-drive one open dead letter; what was done."""
    async with conn.transaction():
        letter = await conn.fetchrow("SELECT * FROM dead_letters WHERE id = $1 AND resolved_at IS NULL FOR UPDATE",
                                     letter_id)
        if letter is None:
            raise SystemExit(f"no open dead letter {letter_id}")
        if letter["kind"] == "timer":
            await _restore_timer(conn, json.loads(letter["value"]), due_at or datetime.now(UTC))
        else:
            await _publish(settings, letter)
        await _resolve(conn, letter_id, "redriven", by)
    return f"{letter['kind']} {letter_id} re-driven to {letter['topic']}"


async def discard(conn: asyncpg.Connection, letter_id: int, reason: str, by: str) -> str:
    status = await conn.execute(
        "UPDATE dead_letters SET resolved_at = now(), resolution = $2, resolved_by = $3"
        " WHERE id = $1 AND resolved_at IS NULL", letter_id, f"discarded: {reason}", by)
    if status.endswith(" 0"):
        raise SystemExit(f"no open dead letter {letter_id}")
    return f"{letter_id} discarded"


async def _resolve(conn: asyncpg.Connection, letter_id: int, resolution: str, by: str) -> None:
    await conn.execute("UPDATE dead_letters SET resolved_at = now(), resolution = $2, resolved_by = $3"
                       " WHERE id = $1", letter_id, resolution, by)


async def _restore_timer(conn: asyncpg.Connection, row: dict[str, Any], due_at: datetime) -> None:
    """The timer back in the scheduler's table (the tool runs against the scheduler's schema)."""
    now = datetime.now(UTC)
    await conn.execute(
        "INSERT INTO timers (key, due_at, owner, payload, subject, set_by, correlation_id, generation,"
        " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)"
        " ON CONFLICT (key) DO NOTHING",
        row["key"], due_at, row["owner"], row["payload"], row["subject"], uuid.UUID(row["set_by"]),
        row.get("correlation_id"), row.get("generation") or 1, now)


async def _publish(settings: Settings, letter: asyncpg.Record) -> None:
    producer = AIOKafkaProducer(**producer_options(settings), max_request_size=4_000_000)
    await producer.start()
    try:
        headers = [(k, v.encode()) for k, v in letter["headers"].items() if not k.startswith("dlq_")]
        key = letter["key"].encode() if letter["key"] is not None else None
        await producer.send_and_wait(letter["topic"], value=letter["value"], key=key, headers=headers)
    finally:
        await producer.stop()


async def connect(settings: Settings) -> asyncpg.Connection:
    conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": settings.schema})
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    return conn


async def _run(args: argparse.Namespace) -> list[str]:
    settings = Settings(service_name=args.service)
    conn = await connect(settings)
    try:
        if args.command == "list":
            return [f"{r['id']:>6}  {r['set_aside_at']:%Y-%m-%d %H:%M:%S}  {r['job']:<24} {r['kind']:<7} "
                    f"{r['resolution'] or 'open':<12} {r['error'][:120]}"
                    for r in await open_letters(conn, args.all)]
        if args.command == "redrive":
            return [await redrive(conn, settings, args.id, args.by, args.due_at)]
        return [await discard(conn, args.id, args.reason, args.by)]
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.quarantine", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="open dead letters (ids, jobs, reasons; never values)")
    listing.add_argument("--all", action="store_true", help="resolved ones too")
    again = commands.add_parser("redrive", help="publish a message again, or put a timer back")
    again.add_argument("--due-at", type=datetime.fromisoformat, help="a timer's new due time (default: now)")
    away = commands.add_parser("discard", help="mark resolved without re-driving")
    away.add_argument("--reason", required=True)
    for sub in (listing, again, away):
        sub.add_argument("--service", required=True, help="whose dead_letters (its schema), e.g. scheduler")
    for sub in (again, away):
        sub.add_argument("--id", type=int, required=True)
        sub.add_argument("--by", required=True, help="who does it (recorded as resolved_by)")
    args = parser.parse_args(argv)
    if getattr(args, "due_at", None) is not None and args.due_at.tzinfo is None:
        parser.error("--due-at needs a time zone, e.g. 2026-12-03T09:00:00Z")
    for line in asyncio.run(_run(args)):
        sys.stdout.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
