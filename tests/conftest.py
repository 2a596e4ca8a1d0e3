"""Session fixtures: the real broker and database, picked as docs/architecture.md says."""

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path

import asyncpg
import pytest

from shared import embedded, topics
from shared.broker import ensure_topics
from shared.db import open_pool
from shared.settings import Settings
from shared.testing import EventLog, ServiceProcess, SigningProducer, create_database, free_port, use_development_keys
from tests import allocation_harness, pii_canary
from tests.scheduler_clock import SchedulerClock
from tests.workflow_harness import Commands

# every component signs what it publishes: keys for this run, named for the services the tests start
use_development_keys(Path(tempfile.mkdtemp(prefix="tessera-test-keys-")) / "keys")

@dataclass(frozen=True)
class Infra:
    """Where the tests' broker and database are."""

    bootstrap: str
    dsn: str
    log_dir: Path
    # processes a test started in place of the broker (a restart): stopped after the end-of-session scan
    replacements: list[Callable[[], None]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "DATABASE_URL": self.dsn,
                "LOG_LEVEL": "INFO", "OUTBOX_POLL_SECONDS": "0.2"}


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    work = Path(tempfile.mkdtemp(prefix="tessera-tests-"))
    log_dir = work / "logs"
    log_dir.mkdir()
    stoppers = []
    if "KAFKA_BOOTSTRAP_SERVERS" in os.environ and "DATABASE_URL" in os.environ:
        bootstrap, dsn = os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["DATABASE_URL"]
    elif _docker_answers():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer

        kafka = KafkaContainer().with_kraft().start()
        postgres = PostgresContainer("postgres:16").start()
        stoppers += [kafka.stop, postgres.stop]
        bootstrap = kafka.get_bootstrap_server()
        dsn = postgres.get_connection_url(driver=None)
    else:
        broker = embedded.start_broker(free_port(), log_dir / "broker.log")
        bootstrap = embedded.bootstrap_of(broker)
        database = embedded.Database(work / "pgdata")
        stoppers += [lambda: embedded.stop_process(broker), database.stop]
        dsn = database.dsn
    asyncio.run(ensure_topics(Settings(kafka_bootstrap_servers=bootstrap)))
    infra = Infra(bootstrap, dsn, log_dir)
    yield infra
    try:  # the PII canary run (issue #11 §3): services have stopped, the broker still answers
        pii_canary.check_session(bootstrap, log_dir, topics.all_with_dlqs())
    finally:
        for stop in [*infra.replacements, *reversed(stoppers)]:
            stop()
        shutil.rmtree(work, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in pii_canary.SUMMARY:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def services(infra: Infra) -> Iterator[dict[str, ServiceProcess]]:
    """Service processes started on first use and shared by the session's tests."""
    running: dict[str, ServiceProcess] = {}
    yield running
    pii_canary.save_metrics({name: process.url for name, process in running.items()}, infra.log_dir)
    for process in running.values():
        process.stop()


# each service's port, fixed on first mention: referrals names allocation's and workflow's URLs, which name its
PORTS: dict[str, int] = {}


def service_url(name: str) -> str:
    return f"http://127.0.0.1:{PORTS.setdefault(name, free_port())}"


def membership(name: str) -> dict[str, str]:
    """How the session's services get their partitions: `make test` keeps dynamic group members; `make faults`
    runs them as deploy/k8s does, each a static member under a name of its own (FAULTS_STATIC_MEMBERS=1), and its
    kill suite as `make run` does, each reading every partition itself with no group (FAULTS_ASSIGNMENT=all)."""
    if os.environ.get("FAULTS_ASSIGNMENT") == "all":
        return {"KAFKA_ASSIGNMENT": "all"}
    return {"KAFKA_GROUP_INSTANCE_ID": f"{name}-0"} if os.environ.get("FAULTS_STATIC_MEMBERS") == "1" else {}


async def start_service(services: dict[str, ServiceProcess], infra: Infra, name: str,
                        **env: str) -> ServiceProcess:
    if name not in services:
        services[name] = ServiceProcess(name, {**infra.env, **membership(name), **env}, infra.log_dir,
                                        port=PORTS.setdefault(name, free_port()))
        services[name].start()
    await services[name].ready()
    return services[name]


@pytest.fixture
async def referrals(services: dict[str, ServiceProcess], infra: Infra) -> ServiceProcess:
    """Person commands are checked against allocation and workflow (issue #11 §3): start those to send any."""
    return await start_service(services, infra, "referrals", ALLOCATION_URL=service_url("allocation"),
                               WORKFLOW_URL=service_url("workflow"))


@pytest.fixture
async def workflow(services: dict[str, ServiceProcess], infra: Infra, referrals: ServiceProcess) -> ServiceProcess:
    """The workflow service, reading person records from the referrals process (R-W5)."""
    return await start_service(services, infra, "workflow", REFERRALS_URL=referrals.url,
                               ALLOCATION_URL=service_url("allocation"))


@pytest.fixture
async def allocation(services: dict[str, ServiceProcess], infra: Infra, referrals: ServiceProcess,
                     workflow: ServiceProcess) -> ServiceProcess:
    """The allocation service, reading people from referrals and a person's steps from workflow."""
    return await start_service(services, infra, "allocation", REFERRALS_URL=referrals.url,
                               WORKFLOW_URL=workflow.url)


@pytest.fixture
async def documents(services: dict[str, ServiceProcess], infra: Infra, referrals: ServiceProcess,
                    workflow: ServiceProcess) -> ServiceProcess:
    """The documents service, reading steps from workflow and names and addresses from referrals."""
    return await start_service(services, infra, "documents", REFERRALS_URL=referrals.url,
                               WORKFLOW_URL=workflow.url, UPLOAD_MAX_BYTES=str(1024 * 1024))


class MailCatcher:
    """An SMTP server on a free loopback port, in a process of its own (tessera/mail_catcher.py), that keeps every
    mail it is handed; `mails` reads them back in the order they came."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self._read: dict[str, EmailMessage] = {}
        self._process = subprocess.Popen([sys.executable, "-m", "tessera.mail_catcher", str(folder), str(self.port)])

    @property
    def mails(self) -> list[EmailMessage]:
        for path in sorted(self.folder.glob("*.eml")):
            if path.name not in self._read:
                self._read[path.name] = message_from_bytes(path.read_bytes(), policy=email_policy.default)  # type: ignore[assignment]
        return list(self._read.values())

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(10)


@pytest.fixture(scope="session")
def mail() -> Iterator[MailCatcher]:
    catcher = MailCatcher(Path(tempfile.mkdtemp(prefix="tessera-test-mail-")))
    embedded.wait_for_port("127.0.0.1", catcher.port)
    yield catcher
    catcher.stop()
    shutil.rmtree(catcher.folder, ignore_errors=True)


@pytest.fixture
async def notifications(services: dict[str, ServiceProcess], infra: Infra, referrals: ServiceProcess,
                        mail: MailCatcher) -> ServiceProcess:
    """The notifications service, reading people from referrals and sending email to the test's catcher."""
    return await start_service(services, infra, "notifications", REFERRALS_URL=referrals.url,
                               SMTP_HOST="127.0.0.1", SMTP_PORT=str(mail.port),
                               MESSAGE_RETRY_BACKOFF_SECONDS="0.05")


@pytest.fixture
async def web(services: dict[str, ServiceProcess], infra: Infra, referrals: ServiceProcess, workflow: ServiceProcess,
              allocation: ServiceProcess, notifications: ServiceProcess, documents: ServiceProcess,
              clocks: ServiceProcess) -> ServiceProcess:
    """Tessera desk in development (the demo accounts seeded), reading every other service over HTTP."""
    return await start_service(services, infra, "web", REFERRALS_URL=referrals.url, WORKFLOW_URL=workflow.url,
                               ALLOCATION_URL=allocation.url, NOTIFICATIONS_URL=notifications.url,
                               DOCUMENTS_URL=documents.url, CLOCKS_URL=clocks.url, TESSERA_ENVIRONMENT="development")


@pytest.fixture
async def clocks(services: dict[str, ServiceProcess], infra: Infra) -> ServiceProcess:
    """The clocks service: it reads only topics, so it needs no other service's URL."""
    return await start_service(services, infra, "clocks")


@pytest.fixture(scope="session")
async def scheduler_dsn(infra: Infra) -> str:
    """A database of the tests' scheduler alone: moving its test clock fires no one else's timers."""
    return await create_database(infra.dsn, "tessera_scheduler")


@pytest.fixture
async def scheduler(services: dict[str, ServiceProcess], infra: Infra, scheduler_dsn: str) -> ServiceProcess:
    """The scheduler (the session's only one: one consumer group) on a clock tests can move."""
    return await start_service(services, infra, "scheduler", DATABASE_URL=scheduler_dsn,
                               SCHEDULER_TEST_CLOCK="true", SCHEDULER_POLL_SECONDS="0.2")


@pytest.fixture
async def scheduler_clock(scheduler: ServiceProcess, scheduler_dsn: str) -> AsyncIterator[SchedulerClock]:
    """Move the scheduler's clock forward; it is put back after the test."""
    pool = await asyncpg.create_pool(scheduler_dsn, min_size=1, max_size=2)
    assert pool is not None
    clock = SchedulerClock(pool)
    try:
        yield clock
    finally:
        await clock.reset()
        await pool.close()


@pytest.fixture
async def events(infra: Infra) -> AsyncIterator[EventLog]:
    watched = [topics.REFERRALS_EVENTS, topics.WORKFLOW_EVENTS, topics.dlq(topics.REFERRALS_INTAKE),
               topics.ALLOCATION_EVENTS, topics.NOTIFICATIONS_EVENTS, topics.SCHEDULER_TIMERS]
    async with EventLog(infra.bootstrap, watched) as log:
        yield log


@pytest.fixture(scope="session")
async def db(infra: Infra) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(infra.dsn, min_size=1, max_size=3)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def workflow_db(infra: Infra) -> AsyncIterator[asyncpg.Pool]:
    """The workflow service's own schema, as its pool sees it (for `given_step` set-ups)."""
    pool = await open_pool(infra.dsn, "workflow", max_size=2)
    yield pool
    await pool.close()


@pytest.fixture
async def signing_producer(infra: Infra) -> AsyncIterator[SigningProducer]:
    """A started producer that signs what it sends with the tests' development keys (acks=all)."""
    producer = SigningProducer(bootstrap_servers=infra.bootstrap, acks="all")
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


@pytest.fixture
def commands(signing_producer: SigningProducer, events: EventLog, workflow_db: asyncpg.Pool) -> Commands:
    """Send workflow commands and await each one's whole outcome."""
    return Commands(signing_producer, events, db=workflow_db)


@pytest.fixture
async def out(infra: Infra) -> AsyncIterator[EventLog]:
    """Everything allocation answers or sends on: its events and the commands it issues."""
    async with EventLog(infra.bootstrap, allocation_harness.OUT) as log:
        yield log


@pytest.fixture
def alloc(signing_producer: SigningProducer, out: EventLog) -> allocation_harness.AllocationCommands:
    return allocation_harness.AllocationCommands(signing_producer, out)


@pytest.fixture
async def own_broker(tmp_path: Path) -> AsyncIterator[list[subprocess.Popen[bytes]]]:
    """A Tansu of the test's own, for tests that restart it or want no other consumer; a restart appends."""
    processes = [embedded.start_broker(free_port(), tmp_path / "broker.log")]
    yield processes
    for process in processes:
        embedded.stop_process(process)


@pytest.fixture(scope="session")
async def handlers_dsn(infra: Infra) -> str:
    """A database of the in-process handler tests alone (tests/in_process.py): no service relays its outbox."""
    return await create_database(infra.dsn, "tessera_handlers")
