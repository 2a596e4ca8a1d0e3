"""Statutory clocks at scale: `python -m bench.clocks [--clocks N] [--teams T] [--window W] [--requests R]`.

Loads N running Child and Family Assessment clocks over T teams (COPY into the clocks service's table and its
dashboard read model, with each team's Planned Work Tray entries, their RAG changes and allocations), and their
2N warning and breach timers into the scheduler's table, then, with the clocks service and the scheduler as
processes:
  - the team dashboard (GET /teams/{id}/dashboard, R-CL7) p50/p99, beside the same figures computed in process
    straight on PostgreSQL (its SQL and arithmetic, no HTTP);
  - the clock timers' lateness: W clocks warn at the same London midnight; from that instant to each
    `clock.warning` read on clocks.events, beside the same timers' `timer.due` read on scheduler.due (the
    scheduler alone) in the same run.
Prints figures, asserts nothing. Starts the embedded broker and PostgreSQL in a temporary directory.
"""

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.common import Infrastructure, infrastructure, percentile, rss_mib, running
from bench.timers import COLUMNS as TIMER_COLUMNS
from bench.timers import LEAD_SECONDS, own_database, scheduler_env
from services.clocks import definitions, domain, queries
from services.clocks.calendar import WorkingDays, bank_holidays
from shared import topics
from shared.calendar import start_of_day
from shared.log_ends import log_ends
from shared.testing import ServiceProcess, service_auth

CFA = next(d for d in definitions.load().clocks if d.name == "child_and_family_assessment")
TEAM = "bench-team-0"
DAYS = WorkingDays(bank_holidays())
CLOCK_COLUMNS = ["clock_id", "name", "definition", "definition_version", "subject_key", "person_id", "team_id",
                 "state", "started_at", "due_date", "fired", "version", "updated_at"]


@dataclass(frozen=True)
class Layout:
    """Where the load puts things: the window's clocks warn at `warn_at`; every other clock later."""

    clocks: int
    teams: int
    window: int
    warn_at: datetime
    window_due: date


def layout(clocks: int, teams: int, window: int, today: date | None = None) -> Layout:
    # a working day: the service warns five working days before the due date, never on a weekend or holiday
    warn_day = DAYS.add((today or datetime.now(UTC).date()) + timedelta(days=399), 1)
    return Layout(clocks, teams, min(window, clocks), start_of_day(warn_day), DAYS.add(warn_day, 5))


def clock_rows(at: Layout) -> Iterator[tuple[object, ...]]:
    now, definition = datetime.now(UTC), json.dumps(CFA.model_dump(mode="json"))
    for i in range(at.clocks):
        due = at.window_due if i < at.window else at.window_due + timedelta(days=1 + i % 365)
        yield (str(uuid.uuid4()), CFA.name, definition, 1, f"step-{i}", str(uuid.uuid4()),
               f"bench-team-{i % at.teams}", "running", now, due, [], 1, now)


async def load(dsn: str, scheduler: asyncpg.Connection, at: Layout, entries_per_team: int) -> float:
    """COPY the clocks, their read model, the teams' trays and the timers; the seconds it took."""
    began = time.perf_counter()
    clocks = list(clock_rows(at))
    conn = await asyncpg.connect(dsn, server_settings={"search_path": "clocks"})
    try:
        await conn.copy_records_to_table("clocks", records=clocks, columns=CLOCK_COLUMNS)
        await conn.copy_records_to_table("insight_clocks", columns=["clock_id", "team_id", "person_id", "title",
                                                                     "due_date"],
                                         records=[(c[0], c[6], c[5], CFA.title, c[9]) for c in clocks])
        await load_trays(conn, at.teams, entries_per_team)
        for table in ("clocks", "insight_clocks", "insight_tray_entries", "insight_rag_changes",
                      "insight_allocations"):
            await conn.execute(f"ANALYZE {table}")
    finally:
        await conn.close()
    await scheduler.copy_records_to_table("timers", records=timer_rows(clocks), columns=TIMER_COLUMNS)
    await scheduler.execute("ANALYZE timers")
    return time.perf_counter() - began


def timer_rows(clocks: list[tuple[object, ...]]) -> Iterator[tuple[object, ...]]:
    now = datetime.now(UTC)
    for row in clocks:
        clock = domain.Clock(str(row[0]), CFA, 1, str(row[4]), str(row[5]), str(row[6]), "running", now,
                             row[9])  # type: ignore[arg-type]
        for point in domain.points(clock, DAYS):
            set_by = uuid.uuid4()
            yield (domain.timer_key(clock.clock_id, point.name), point.at, domain.OWNER,
                   json.dumps({"clock_id": clock.clock_id, "point": point.name}), clock.person_id, set_by,
                   str(set_by), 1, now, now)


async def load_trays(conn: asyncpg.Connection, teams: int, per_team: int) -> None:
    """Each team's tray: entries placed over the last 90 days, rated on placing and again on a review."""
    now, entries, rags, allocations = datetime.now(UTC), [], [], []
    for i in range(teams * per_team):
        team, entry = f"bench-team-{i % teams}", str(uuid.uuid4())
        placed = now - timedelta(minutes=(i * 7919) % (90 * 24 * 60))
        removed = placed + timedelta(days=20) if i % 3 == 0 and placed + timedelta(days=20) < now else None
        entries.append((entry, team, str(uuid.uuid4()), placed, removed, placed + timedelta(days=14), placed))
        rags.append((uuid.uuid4(), entry, team, ("red", "amber", "green")[i % 3], placed))
        rags.append((uuid.uuid4(), entry, team, ("amber", "red", "green")[i % 3], placed + timedelta(days=7)))
        allocations.append((str(uuid.uuid4()), team, f"worker-{i % 12}", str(uuid.uuid4()), placed, None))
    await conn.copy_records_to_table("insight_tray_entries", records=entries, columns=[
        "entry_id", "team_id", "person_id", "placed_at", "removed_at", "next_review_at", "next_review_as_of"])
    await conn.copy_records_to_table("insight_rag_changes", records=rags,
                                     columns=["event_id", "entry_id", "team_id", "rag", "at"])
    await conn.copy_records_to_table("insight_allocations", records=allocations, columns=[
        "relationship_id", "team_id", "worker_id", "person_id", "allocated_at", "ended_at"])


async def dashboard_latencies(url: str, dsn: str, requests: int) -> tuple[list[float], list[float]]:
    """ms of the team dashboard through HTTP, and of the same figures in process on PostgreSQL."""
    http_ms: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=60, auth=service_auth()) as http:
        await http.get(f"/teams/{TEAM}/dashboard")  # warm
        for _ in range(requests):
            began = time.perf_counter()
            (await http.get(f"/teams/{TEAM}/dashboard")).raise_for_status()
            http_ms.append((time.perf_counter() - began) * 1000)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1, server_settings={"search_path": "clocks"})
    assert pool is not None
    direct_ms: list[float] = []
    try:
        for _ in range(requests + 1):  # the first one warms
            began = time.perf_counter()
            await queries.dashboard_figures(pool, [TEAM], 28, datetime.now(UTC))
            direct_ms.append((time.perf_counter() - began) * 1000)
    finally:
        await pool.close()
    return http_ms, direct_ms[1:]


CONSUMED = (topics.WORKFLOW_EVENTS, topics.ALLOCATION_EVENTS, topics.SCHEDULER_DUE, topics.CLOCKS_EVENTS)


async def caught_up(bootstrap: str, timeout: float = 900) -> float:
    """Wait until the clocks service has committed every record already on the topics it consumes (a bench run's
    earlier sections leave thousands there), so that the window measures firing, not catching up; the seconds
    it took."""
    began = time.perf_counter()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await consumer.start()
    await admin.start()
    try:
        ends = await log_ends(consumer, [TopicPartition(t, p) for t in CONSUMED
                                         for p in consumer.partitions_for_topic(t) or {0}])
        while time.perf_counter() - began < timeout:
            behind = 0
            for topic in CONSUMED:
                wanted = [tp for tp in ends if tp.topic == topic]
                done = await admin.list_consumer_group_offsets(f"clocks.{topic}", partitions=wanted)
                behind += sum(ends[tp] - (done[tp].offset if tp in done and done[tp].offset >= 0 else 0)
                              for tp in wanted)
            if behind <= 0:
                break
            await asyncio.sleep(0.5)  # the broker's committed offsets polled, as poll_until does a database
    finally:
        await consumer.stop()
        await admin.close()
    return time.perf_counter() - began


async def warn_window(bootstrap: str, scheduler: asyncpg.Connection, at: Layout) -> tuple[list[float], list[float]]:
    """Move the scheduler's clock so the window's warning instant comes in LEAD_SECONDS; seconds from it to each
    clock.warning on clocks.events, and to each of the same timers' timer.due on scheduler.due."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(t, p) for t in (topics.CLOCKS_EVENTS, topics.SCHEDULER_DUE)
                 for p in consumer.partitions_for_topic(t) or {0}]
        consumer.assign(parts)
        await consumer.seek_to_end(*parts)
        for tp in parts:
            await consumer.position(tp)
        offset = (at.warn_at - timedelta(seconds=LEAD_SECONDS)).timestamp() - time.time()
        await scheduler.execute("UPDATE clock SET offset_seconds = $1", offset)
        warned: dict[str, float] = {}
        due: dict[str, float] = {}
        deadline = time.monotonic() + LEAD_SECONDS + 600
        while (len(warned) < at.window or len(due) < at.window) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            received = time.time() + offset - at.warn_at.timestamp()
            for records in batch.values():
                for r in records:
                    body = json.loads(r.value)
                    if body.get("type") == "clock.warning":
                        warned.setdefault(body["data"]["clock_id"], received)
                    elif body.get("type") == "timer.due" and body["data"].get("owner") == domain.OWNER:
                        due.setdefault(body["data"]["key"], received)
        await scheduler.execute("UPDATE clock SET offset_seconds = 0")
        return list(warned.values()), list(due.values())
    finally:
        await consumer.stop()


@dataclass(frozen=True)
class Figures:
    load_seconds: float
    catch_up_seconds: float  # the clocks service reading what earlier sections left on its topics
    dashboard_http_ms: list[float]
    dashboard_direct_ms: list[float]
    warning_lateness: list[float]
    timer_due_lateness: list[float]
    rss_mib: dict[str, tuple[float, float]]  # each service: after its load, and just started


async def measure(infra: Infrastructure, clocks: int, teams: int, window: int, entries_per_team: int,
                  requests: int) -> Figures:
    at = layout(clocks, teams, window)
    scheduler_dsn = await own_database(infra.dsn)
    async with running(("scheduler",), scheduler_env(infra.bootstrap, scheduler_dsn, 0.2), infra.work), \
            running(("clocks",), infra.env(LOG_LEVEL="WARNING"), infra.work) as services:
        idle = _rss(services)
        scheduler = await asyncpg.connect(scheduler_dsn, server_settings={"search_path": "scheduler"})
        try:
            load_seconds = await load(infra.dsn, scheduler, at, entries_per_team)
            catch_up = await caught_up(infra.bootstrap)
            http_ms, direct_ms = await dashboard_latencies(services["clocks"].url, infra.dsn, requests)
            warned, due = await warn_window(infra.bootstrap, scheduler, at)
        finally:
            await scheduler.close()
        after = _rss(services)
    return Figures(load_seconds, catch_up, http_ms, direct_ms, warned, due,
                   {name: (after[name], idle[name]) for name in services})


def _rss(services: dict[str, ServiceProcess]) -> dict[str, float]:
    return {name: rss_mib(s.process.pid) for name, s in services.items() if s.process is not None}


async def main(args: argparse.Namespace) -> None:
    async with infrastructure("tessera-bench-clocks-") as infra:
        f = await measure(infra, args.clocks, args.teams, args.window, args.entries, args.requests)
    print(f"{args.clocks:,} running clocks over {args.teams} teams and their {2 * args.clocks:,} timers loaded"
          f" in {f.load_seconds:.1f}s (COPY); the service caught up with its topics in {f.catch_up_seconds:.1f}s")
    print(f"team dashboard ({args.clocks // args.teams:,} clocks, {args.entries:,} tray entries): p50"
          f" {percentile(f.dashboard_http_ms, 50):.1f} ms, p99 {percentile(f.dashboard_http_ms, 99):.1f} ms;"
          f" in process on PostgreSQL p50 {percentile(f.dashboard_direct_ms, 50):.1f} ms,"
          f" p99 {percentile(f.dashboard_direct_ms, 99):.1f} ms")
    for name, values in (("clock.warning on clocks.events", f.warning_lateness),
                         ("timer.due on scheduler.due (baseline)", f.timer_due_lateness)):
        print(f"{len(values):,}/{args.window:,} due at one instant → {name}: p50 {percentile(values, 50) * 1000:.0f}"
              f" ms, p99 {percentile(values, 99) * 1000:.0f} ms, max {max(values, default=0) * 1000:.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.clocks", description=__doc__.splitlines()[0])
    parser.add_argument("--clocks", type=int, default=100_000)
    parser.add_argument("--teams", type=int, default=100)
    parser.add_argument("--window", type=int, default=2_000, help="clocks warning at the same instant")
    parser.add_argument("--entries", type=int, default=300, help="tray entries per team")
    parser.add_argument("--requests", type=int, default=200)
    asyncio.run(main(parser.parse_args()))
