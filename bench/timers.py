"""Scheduler lateness with a million timers: `python -m bench.timers [--timers N]`.

Loads N timers straight into the scheduler's table (COPY), then moves the scheduler's test
clock so that a window of them falls due, and reads what arrives on `scheduler.due`:
  - on-time window: `--window` timers due evenly over `--window-seconds` → lateness p50/p99/max;
  - burst: `--burst` timers all due at one instant → fire rate (timer.due written per second)
    and delivery rate (received on scheduler.due per second);
  - the same-run raw baselines: producing the same number of similar messages straight to Kafka,
    and claiming (SELECT … FOR UPDATE SKIP LOCKED + DELETE) timers in bare SQL, with no envelope
    and no outbox;
  - timer.set handling: `--sets` signed timer.set published at once, until the scheduler has stored
    them all, batched (a transaction per fetch and partition) beside a transaction per message
    (CONSUMER_BATCH_SIZE=1), each on a scheduler of its own.
Prints figures, asserts nothing. Uses KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL when both are set,
else starts the embedded broker and PostgreSQL in a temporary directory.
"""

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.common import infrastructure as embedded_infrastructure
from bench.common import percentile, running
from shared import topics
from shared.broker import ensure_topics
from shared.envelope import new_message
from shared.events.scheduler import TimerSet
from shared.settings import Settings
from shared.testing import SigningProducer

RAW_TOPIC = "bench.timers.raw"
LEAD_SECONDS = 3.0
COLUMNS = ["key", "due_at", "owner", "payload", "subject", "set_by", "correlation_id", "generation",
           "created_at", "updated_at"]


@asynccontextmanager
async def infrastructure() -> AsyncIterator[tuple[str, str]]:
    if "KAFKA_BOOTSTRAP_SERVERS" in os.environ and "DATABASE_URL" in os.environ:
        await ensure_topics(Settings(kafka_bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"]))
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["DATABASE_URL"]
        return
    async with embedded_infrastructure("tessera-bench-timers-") as infra:
        yield infra.bootstrap, infra.dsn


def scheduler_env(bootstrap: str, dsn: str, poll: float, batch_size: int = 100) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "DATABASE_URL": dsn, "LOG_LEVEL": "WARNING",
            "SCHEDULER_TEST_CLOCK": "true", "OUTBOX_POLL_SECONDS": "0.2", "SCHEDULER_POLL_SECONDS": str(poll),
            "CONSUMER_BATCH_SIZE": str(batch_size)}


async def connect(dsn: str) -> asyncpg.Connection:
    return await asyncpg.connect(dsn, server_settings={"search_path": "scheduler"})


async def own_database(dsn: str) -> str:
    name = f"tessera_bench_timers_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(dsn)._replace(path=f"/{name}"))


def layout(n: int, window: int, window_seconds: float, burst: int, base: datetime) -> Iterator[tuple]:
    """Rows: the window evenly over window_seconds, then the burst at one instant, the rest a year on."""
    now = datetime.now(UTC)
    burst_at = base + timedelta(seconds=window_seconds + 5)
    for i in range(n):
        if i < window:
            due = base + timedelta(seconds=window_seconds * i / window)
            key = f"w-{i}"
        elif i < window + burst:
            due, key = burst_at, f"b-{i}"
        else:
            due = base + timedelta(days=1, seconds=(i * 31_536_000) / n)
            key = f"f-{i}"
        set_by = uuid.uuid4()
        yield (key, due, "bench", json.dumps({"n": i}), f"person-{i % 5000}", set_by, str(set_by), 1, now, now)


async def read_dues(bootstrap: str, window: int, burst: int, timeout: float,
                    started: asyncio.Event) -> dict[str, list[tuple[float, float, float]]]:
    """(due_at, fired_at, received) per kind ('w' window, 'b' burst), all in clock seconds - wall added later."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topics.SCHEDULER_DUE, p)
                 for p in consumer.partitions_for_topic(topics.SCHEDULER_DUE) or {0}]
        consumer.assign(parts)
        await consumer.seek_to_end(*parts)
        for tp in parts:
            await consumer.position(tp)
        started.set()
        got: dict[str, dict[str, tuple[float, float, float]]] = {"w": {}, "b": {}}
        deadline = time.monotonic() + timeout
        while (len(got["w"]) < window or len(got["b"]) < burst) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            received = time.time()
            for records in batch.values():
                for r in records:
                    data = json.loads(r.value)["data"]
                    kind = data["key"][0]
                    if kind in got:
                        got[kind].setdefault(data["key"], (
                            datetime.fromisoformat(data["due_at"]).timestamp(),
                            datetime.fromisoformat(data["fired_at"]).timestamp(), received))
        return {k: list(v.values()) for k, v in got.items()}
    finally:
        await consumer.stop()


async def raw_kafka_rate(bootstrap: str, count: int, size: int) -> float:
    await ensure_topics(Settings(kafka_bootstrap_servers=bootstrap), [RAW_TOPIC])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await producer.start()
    try:
        value = b"x" * size
        began = time.perf_counter()
        futures = [await producer.send(RAW_TOPIC, value=value, key=f"person-{i % 5000}".encode())
                   for i in range(count)]
        await asyncio.gather(*futures)
        return count / (time.perf_counter() - began)
    finally:
        await producer.stop()


async def raw_claim_rate(conn: asyncpg.Connection, count: int, batch: int) -> float:
    """Claim and delete far-future timers in bare SQL, as fast as it goes."""
    began, done = time.perf_counter(), 0
    while done < count:
        async with conn.transaction():
            rows = await conn.fetch(
                "WITH c AS (SELECT key FROM timers WHERE key LIKE 'f-%' ORDER BY due_at LIMIT $1"
                " FOR UPDATE SKIP LOCKED) DELETE FROM timers t USING c WHERE t.key = c.key RETURNING t.*",
                batch)
        if not rows:
            break
        done += len(rows)
    return done / (time.perf_counter() - began)


async def load_timers(conn: asyncpg.Connection, n: int, window: int, window_seconds: float, burst: int,
                      base: datetime) -> float:
    """COPY n timers laid out as `layout` says into the scheduler's table; the seconds it took."""
    began = time.perf_counter()
    await conn.copy_records_to_table("timers", records=layout(n, window, window_seconds, burst, base),
                                     columns=COLUMNS)
    seconds = time.perf_counter() - began
    await conn.execute("ANALYZE timers")
    return seconds


@dataclass(frozen=True)
class Fired:
    """(due_at, fired_at, received) of the window's and the burst's timers; received is on the wall clock."""

    window: list[tuple[float, float, float]]
    burst: list[tuple[float, float, float]]
    offset: float  # scheduler clock minus wall clock while they fired


async def fire(conn: asyncpg.Connection, bootstrap: str, base: datetime, window: int, burst: int,
               window_seconds: float) -> Fired:
    """Move the scheduler's test clock so the window opens in LEAD_SECONDS; read what falls due."""
    started = asyncio.Event()
    reader = asyncio.create_task(read_dues(bootstrap, window, burst, LEAD_SECONDS + window_seconds + 300, started))
    await started.wait()
    offset = (base - timedelta(seconds=LEAD_SECONDS)).timestamp() - time.time()
    await conn.execute("UPDATE clock SET offset_seconds = $1", offset)
    got = await reader
    await conn.execute("UPDATE clock SET offset_seconds = 0")
    return Fired(got["w"], got["b"], offset)


async def timer_set_rate(bootstrap: str, dsn: str, count: int, work: Path, batch_size: int) -> float:
    """timer.set handled per second: `count` signed commands over 64 keys published at once, timed until the
    scheduler (its own database, CONSUMER_BATCH_SIZE=batch_size) has stored them all."""
    dsn = await own_database(dsn)
    async with running(("scheduler",), scheduler_env(bootstrap, dsn, 1.0, batch_size), work):
        conn = await connect(dsn)
        producer = SigningProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            due, run = datetime.now(UTC) + timedelta(days=30), uuid.uuid4().hex[:8]
            sets = [new_message(TimerSet.TYPE, "bench", TimerSet(key=f"{run}-{i}", due_at=due, owner="bench"),
                                subject=f"person-{i % 64}") for i in range(count)]
            began = time.perf_counter()
            for m in sets:
                await producer.send(topics.SCHEDULER_TIMERS, m.to_bytes(), key=m.subject.encode())  # type: ignore[union-attr]
            await producer.flush()
            while await conn.fetchval("SELECT count(*) FROM timers WHERE key LIKE $1", f"{run}-%") < count:
                await asyncio.sleep(0.05)  # a database condition polled, as shared.testing.poll_until does
            return count / (time.perf_counter() - began)
        finally:
            await producer.stop()
            await conn.close()


def lateness(fired: list[tuple[float, float, float]]) -> list[float]:
    """fired_at - due_at of each timer, in seconds."""
    return [f - d for d, f, _ in fired]


async def window_lateness(conn: asyncpg.Connection, bootstrap: str, n: int, window: int,
                          window_seconds: float) -> tuple[list[float], float]:
    """Empty the table, load n timers of which `window` fall due over window_seconds (the rest a day or
    more later); the window's lateness in seconds, and the seconds the load took."""
    await conn.execute("TRUNCATE timers")
    base = datetime.now(UTC) + timedelta(days=400)
    load_seconds = await load_timers(conn, n, window, window_seconds, 0, base)
    fired = await fire(conn, bootstrap, base, min(window, n), 0, window_seconds)
    return lateness(fired.window), load_seconds


def ms(values: list[float], p: float) -> float:
    return percentile(values, p) * 1000


async def run(args: argparse.Namespace) -> None:
    window, burst = min(args.window, args.timers), min(args.burst, max(0, args.timers - args.window))
    async with infrastructure() as (bootstrap, dsn):
        dsn = await own_database(dsn)
        work = Path(tempfile.mkdtemp(prefix="tessera-bench-timers-logs-"))
        async with running(("scheduler",), scheduler_env(bootstrap, dsn, args.poll), work):
            conn = await connect(dsn)
            base = datetime.now(UTC) + timedelta(days=400)
            insert_seconds = await load_timers(conn, args.timers, window, args.window_seconds, burst, base)
            print(f"timers: {args.timers:,} loaded by COPY in {insert_seconds:.1f}s "
                  f"= {args.timers / insert_seconds:,.0f} timers/s"
                  " (generated in Python as it goes; due_at and owner indexes kept)")
            fired = await fire(conn, bootstrap, base, window, burst, args.window_seconds)
            report_window(fired, window, args)
            report_burst(fired, burst)
            await report_baselines(conn, bootstrap, min(args.baseline, max(0, args.timers - window - burst)),
                                   args.baseline)
            await conn.close()
        batched = await timer_set_rate(bootstrap, dsn, args.sets, work, 100)
        alone = await timer_set_rate(bootstrap, dsn, args.sets, work, 1)
        print(f"timer.set: {args.sets:,} signed, published at once, until stored: batched {batched:,.0f}/s, "
              f"a transaction per message {alone:,.0f}/s ({batched / alone:.1f}×)")
        shutil.rmtree(work, ignore_errors=True)


def report_window(fired: Fired, window: int, args: argparse.Namespace) -> None:
    late = lateness(fired.window)
    delivered = [r + fired.offset - d for d, _, r in fired.window]
    print(f"on-time window: {len(fired.window):,}/{window:,} timers due over {args.window_seconds:.0f}s "
          f"({window / args.window_seconds:,.0f}/s) among {args.timers:,}")
    print(f"  lateness fired_at - due_at: p50 {ms(late, 50):.0f} ms, p99 {ms(late, 99):.0f} ms, "
          f"max {ms(late, 100):.0f} ms")
    print(f"  due_at to received on scheduler.due: p50 {ms(delivered, 50):.0f} ms, "
          f"p99 {ms(delivered, 99):.0f} ms, max {ms(delivered, 100):.0f} ms")


def report_burst(fired: Fired, burst: int) -> None:
    if not fired.burst:
        return
    b = fired.burst
    due = b[0][0]
    fire_span = max(f for _, f, _ in b) - due
    recv_span = max(r for _, _, r in b) + fired.offset - due
    print(f"burst: {len(b):,}/{burst:,} timers due at one instant")
    print(f"  fire rate {len(b) / fire_span:,.0f} timers/s (last fired {fire_span:.2f}s after due); "
          f"delivered {len(b) / recv_span:,.0f}/s (last received {recv_span:.2f}s after due)")
    late = lateness(b)
    print(f"  lateness fired_at - due_at: p50 {percentile(late, 50):.2f}s, "
          f"p99 {percentile(late, 99):.2f}s, max {fire_span:.2f}s")


async def report_baselines(conn: asyncpg.Connection, bootstrap: str, claim: int, produce: int) -> None:
    if claim:
        rate = await raw_claim_rate(conn, claim, 500)
        print(f"baseline, bare SQL claim + delete of {claim:,} timers (500 a transaction): {rate:,.0f}/s")
    size = 420  # about the size of a timer.due envelope
    print(f"baseline, raw Kafka produce of {produce:,} messages of {size} B (acks=all): "
          f"{await raw_kafka_rate(bootstrap, produce, size):,.0f}/s")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.timers", description=__doc__.splitlines()[0])
    parser.add_argument("--timers", type=int, default=1_000_000, help="timers in the table (default 1,000,000)")
    parser.add_argument("--window", type=int, default=20_000, help="timers due evenly over --window-seconds")
    parser.add_argument("--window-seconds", type=float, default=10.0)
    parser.add_argument("--burst", type=int, default=50_000, help="timers due at one instant after the window")
    parser.add_argument("--baseline", type=int, default=50_000, help="messages / rows for the raw baselines")
    parser.add_argument("--poll", type=float, default=0.2, help="SCHEDULER_POLL_SECONDS")
    parser.add_argument("--sets", type=int, default=2_000, help="timer.set published for the handling rate")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
