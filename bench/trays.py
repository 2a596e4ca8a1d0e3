"""Planned Work Tray at scale: `python -m bench.trays [--entries N] [--requests R] [--timers T]`.

Loads N open entries into one team's tray (COPY), then, through the allocation service as a process:
  - `GET /teams/{id}/tray` p50/p99 for several sorts and filters (R requests each, first page of 100),
    and the default query's own SQL run straight on PostgreSQL as the same-run baseline;
  - `GET /teams/{id}/tray/report` p50/p99;
  - review-timer throughput: T `timer.due` on scheduler.due → T `tray.review_due` on allocation.events,
    with the same-run raw broker baseline (T similar messages produced and read back with no service).
Prints figures, asserts nothing. Starts the embedded broker and PostgreSQL in a temporary directory.
"""

import argparse
import asyncio
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from bench.common import infrastructure, percentile, running
from services.allocation import domain, store
from shared import topics
from shared.broker import ensure_topics
from shared.envelope import new_message
from shared.settings import Settings
from shared.testing import EventLog, publish, service_auth

SERVICES = ("allocation",)
TEAM = "bench-team"
DEFAULT_SORT = ["priority", "rag", "-days_waiting"]
QUERIES = {
    "default (priority,rag,-days_waiting)": {},
    "sort=-days_waiting": {"sort": "-days_waiting"},
    "rag=red sort=-days_waiting": {"rag": "red", "sort": "-days_waiting"},
    "priority=high&complexity=high sort=rag": {"priority": "high", "complexity": "high", "sort": "rag"},
    "review_overdue=true sort=next_review_at": {"review_overdue": "true", "sort": "next_review_at"},
    "past_target=true sort=priority,-days_waiting": {"past_target": "true", "sort": "priority,-days_waiting"},
}


async def load(dsn: str, n: int, team: str = TEAM) -> list[tuple[uuid.UUID, uuid.UUID, datetime]]:
    now = datetime.now(UTC)
    rng = random.Random(4)
    entries, cases = [], []
    for _ in range(n):
        person, entry = uuid.uuid4(), uuid.uuid4()
        support, risk = rng.choice(["none", "moderate", "full"]), rng.choice(["high", "moderate", "low"])
        rag = domain.rag_rating(support, risk)
        placed = now - timedelta(minutes=rng.randrange(0, 90 * 24 * 60))
        review = domain.next_review_at(rag, placed + timedelta(days=rng.randrange(0, 20)))
        cases.append((person, 1))
        entries.append((entry, person, team, rng.choice(["high", "medium", "low"]), False,
                        rng.choice(["high", "medium", "low"]), support, risk, rag, "bench", placed, "tm-bench",
                        review, 1, False, 0))
    conn = await asyncpg.connect(dsn, server_settings={"search_path": "allocation"})
    try:
        await conn.copy_records_to_table("cases", records=cases, columns=["person_id", "version"])
        await conn.copy_records_to_table("tray_entries", records=entries, columns=[
            "entry_id", "person_id", "team_id", "priority", "urgent", "complexity", "support", "risk", "rag",
            "rationale", "placed_at", "placed_by", "next_review_at", "version", "review_overdue", "reviews"])
        await conn.execute("ANALYZE tray_entries")
    finally:
        await conn.close()
    return [(e[0], e[1], e[12]) for e in entries]


async def http_latencies(url: str, path: str, params: dict[str, str], requests: int) -> tuple[list[float], int]:
    samples: list[float] = []
    total = 0
    async with httpx.AsyncClient(base_url=url, timeout=30, auth=service_auth()) as http:
        await http.get(path, params=params)  # warm
        for _ in range(requests):
            started = time.perf_counter()
            response = await http.get(path, params=params)
            samples.append((time.perf_counter() - started) * 1000)
            total = response.json().get("total", 0)
    return samples, total


async def timer_throughput(bootstrap: str, entries: list[tuple[uuid.UUID, uuid.UUID, datetime]],
                           count: int) -> tuple[float, float]:
    chosen = entries[:count]
    messages = []
    for entry_id, person_id, due in chosen:
        data = {"key": f"tray-review:{entry_id}", "due_at": due.isoformat(), "owner": "allocation",
                "payload": {"entry_id": str(entry_id), "person_id": str(person_id)},
                "fired_at": datetime.now(UTC).isoformat()}
        messages.append((str(person_id), new_message("timer.due", "bench", data, subject=str(person_id)).to_bytes()))
    async with EventLog(bootstrap, [topics.ALLOCATION_EVENTS]) as log:
        started = time.perf_counter()
        await publish(bootstrap, topics.SCHEDULER_DUE, messages)
        await log.wait_for(lambda s: s.type == "tray.review_due", timeout=600, count=count)
        service = count / (time.perf_counter() - started)
    raw_topic = "bench.trays.raw"
    await ensure_topics(Settings(kafka_bootstrap_servers=bootstrap), [raw_topic])
    async with EventLog(bootstrap, [raw_topic]) as log:
        started = time.perf_counter()
        await publish(bootstrap, raw_topic, messages)
        await log.wait_for(lambda s: True, timeout=600, count=count)
        raw = count / (time.perf_counter() - started)
    return service, raw


async def raw_sql_latencies(dsn: str, requests: int) -> list[float]:
    """The default tray query's own SQL (count, then the first page) on one connection: no HTTP, no JSON."""
    conn = await asyncpg.connect(dsn, server_settings={"search_path": "allocation"})
    samples: list[float] = []
    try:
        for _ in range(requests + 1):  # the first one warms
            started = time.perf_counter()
            await store.tray(conn, TEAM, datetime.now(UTC), sort=DEFAULT_SORT, rag=[], priority=[], complexity=[],
                             review_overdue=None, min_days_waiting=None, max_days_waiting=None, limit=100, offset=0)
            samples.append((time.perf_counter() - started) * 1000)
    finally:
        await conn.close()
    return samples[1:]


async def default_query(url: str, dsn: str, requests: int) -> tuple[list[float], list[float]]:
    """Latencies (ms) of the default tray query through HTTP and as bare SQL, in the same run."""
    http, _ = await http_latencies(url, f"/teams/{TEAM}/tray", {}, requests)
    return http, await raw_sql_latencies(dsn, requests)


async def main(n: int, requests: int, timers: int) -> None:
    async with infrastructure("tessera-bench-trays-") as infra, \
            running(SERVICES, infra.env(), infra.work) as services:
        url = services["allocation"].url
        started = time.perf_counter()
        entries = await load(infra.dsn, n)
        print(f"tray of {n} entries loaded in {time.perf_counter() - started:.1f}s (COPY)")
        print(f"{'query (first page of 100)':48} {'matching':>9} {'p50 ms':>8} {'p99 ms':>8}")
        for name, params in QUERIES.items():
            samples, total = await http_latencies(url, f"/teams/{TEAM}/tray", params, requests)
            print(f"{name:48} {total:>9} {statistics.median(samples):>8.1f} {percentile(samples, 99):>8.1f}")
        samples = await raw_sql_latencies(infra.dsn, requests)
        print(f"{'baseline: default query as bare SQL':48} {n:>9} {statistics.median(samples):>8.1f}"
              f" {percentile(samples, 99):>8.1f}")
        samples, _ = await http_latencies(url, f"/teams/{TEAM}/tray/report", {}, requests)
        print(f"{'report (waiting well)':48} {n:>9} {statistics.median(samples):>8.1f}"
              f" {percentile(samples, 99):>8.1f}")
        through, raw = await timer_throughput(infra.bootstrap, entries, timers)
        print(f"review timers: {timers} timer.due → tray.review_due at {through:.0f}/s "
              f"(raw broker produce+read baseline, same run: {raw:.0f}/s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--timers", type=int, default=2_000)
    args = parser.parse_args()
    asyncio.run(main(args.entries, args.requests, args.timers))
