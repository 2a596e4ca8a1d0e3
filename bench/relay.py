"""The outbox relay draining a backlog: `python -m bench.relay [--rows N]`.

N rows (about the size of a step.saved, over 64 keys) are written to an outbox of a schema of the
bench's own; the relay (shared/relay.py, production settings: batches of 500, published rows kept
and marked with their offsets) publishes them all. The figure is rows published and marked per
second; the same run's baseline is a bare aiokafka producer sending the same values to the same
broker (no database). Prints figures, asserts nothing. Uses KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL
when both are set, else starts the embedded broker and PostgreSQL.
"""

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer

from bench.common import infrastructure
from shared import db
from shared.broker import ensure_topics, make_relay
from shared.settings import Settings

TOPIC = "bench.relay"
KEYS = 64
VALUE_BYTES = 600


@asynccontextmanager
async def outbox_of_its_own(dsn: str) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    schema = f"bench_relay_{uuid.uuid4().hex[:8]}"
    pool = await db.open_pool(dsn, schema)
    try:
        await db.migrate(pool, schema, Path("/nonexistent"))  # the shared tables only: outbox, dead letters
        yield schema, pool
    finally:
        await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()


async def relay_rate(bootstrap: str, dsn: str, rows: int) -> float:
    """Rows published and marked per second by the relay, from a backlog of `rows`."""
    async with outbox_of_its_own(dsn) as (schema, pool):
        settings = Settings(service_name=schema, kafka_bootstrap_servers=bootstrap, database_url=dsn)
        await ensure_topics(settings, [TOPIC])
        value = b"x" * VALUE_BYTES
        await pool.copy_records_to_table("outbox", records=[(TOPIC, f"person-{i % KEYS}", value)
                                                            for i in range(rows)],
                                         columns=["topic", "key", "value"])
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
        await producer.start()
        relay = make_relay(pool, producer, settings)
        try:
            began = time.perf_counter()
            task = asyncio.create_task(relay.run())
            while await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") > 0:
                await asyncio.sleep(0.02)  # a database condition polled, as shared.testing.poll_until does
            seconds = time.perf_counter() - began
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return rows / seconds
        finally:
            await producer.stop()


async def raw_rate(bootstrap: str, rows: int) -> float:
    """The same values sent by a bare producer to the same broker, all acknowledged."""
    await ensure_topics(Settings(kafka_bootstrap_servers=bootstrap), [TOPIC])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await producer.start()
    try:
        value = b"x" * VALUE_BYTES
        began = time.perf_counter()
        futures = [await producer.send(TOPIC, value=value, key=f"person-{i % KEYS}".encode()) for i in range(rows)]
        await asyncio.gather(*futures)
        return rows / (time.perf_counter() - began)
    finally:
        await producer.stop()


async def run(rows: int) -> None:
    if "KAFKA_BOOTSTRAP_SERVERS" in os.environ and "DATABASE_URL" in os.environ:
        bootstrap, dsn = os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["DATABASE_URL"]
        await report(bootstrap, dsn, rows)
        return
    async with infrastructure("tessera-bench-relay-") as infra:
        await report(infra.bootstrap, infra.dsn, rows)


async def report(bootstrap: str, dsn: str, rows: int) -> None:
    relayed = await relay_rate(bootstrap, dsn, rows)
    raw = await raw_rate(bootstrap, rows)
    print(f"relay: {rows:,} outbox rows published and marked at {relayed:,.0f}/s; "
          f"a bare producer, same values: {raw:,.0f}/s ({relayed / raw:.2f}×); load {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.relay", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    asyncio.run(run(parser.parse_args().rows))


if __name__ == "__main__":
    main()
