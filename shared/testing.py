"""Watching topics on the real broker: used by the tests, the benchmarks and the CLI."""

import asyncio
import functools
import json
import subprocess
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared import bearer, fetch_wait, producers, signing
from shared.envelope import Envelope
from shared.log_ends import log_ends
from shared.settings import Settings

KEYS_ENV = "SIGNING_KEYS_DIR"


@dataclass
class Seen:
    """One message read back from a topic."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    headers: dict[str, str]
    received: float

    @property
    def envelope(self) -> Envelope:
        return Envelope.model_validate_json(self.value)

    @functools.cached_property
    def body(self) -> dict[str, Any]:
        """The JSON object, or {} for a value that is not one (dead letters can be anything)."""
        try:
            body = json.loads(self.value)
        except (ValueError, RecursionError):
            return {}
        return body if isinstance(body, dict) else {}

    @property
    def type(self) -> str | None:
        return self.body.get("type")

    @property
    def data(self) -> dict[str, Any]:
        return self.body.get("data", {})

    def caused_by(self, message_id: object) -> bool:
        return str(message_id) in (self.body.get("causationid"), self.body.get("correlationid"))


class TopicTail:
    """Reads every partition of some topics (no consumer group), handing each record to `note`."""

    def __init__(self, bootstrap: str, topics: Iterable[str], *, from_beginning: bool = False,
                 **consumer_options: Any) -> None:
        self._bootstrap = bootstrap
        self._topics = list(topics)
        self._from_beginning = from_beginning
        self._options = {"fetch_max_wait_ms": Settings().kafka_fetch_max_wait_ms, **consumer_options}
        self._changed = asyncio.Condition()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    def note(self, record: Any, now: float) -> None:
        """Keep what matters of one record; called with every new batch under the condition."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False,
                                          **self._options)
        await self._consumer.start()
        fetch_wait.follow_traffic(self._consumer, Settings())
        partitions = []
        for topic in self._topics:
            for p in self._consumer.partitions_for_topic(topic) or await self._partitions(topic):
                partitions.append(TopicPartition(topic, p))
        self._consumer.assign(partitions)
        if self._from_beginning:
            await self._consumer.seek_to_beginning(*partitions)
        else:
            await self._consumer.seek_to_end(*partitions)
            for tp in partitions:  # resolve the lazy seek now, so later messages are all seen
                await self._consumer.position(tp)
        self._task = asyncio.create_task(self._read())
        return self

    async def _partitions(self, topic: str) -> set[int]:
        assert self._consumer is not None
        await self._consumer._client.force_metadata_update()  # noqa: SLF001
        return self._consumer.partitions_for_topic(topic) or {0}

    async def __aexit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer:
            await self._consumer.stop()

    async def _read(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            if not batch:
                continue
            now = time.monotonic()
            async with self._changed:
                for records in batch.values():
                    for r in records:
                        self.note(r, now)
                self._changed.notify_all()

    async def rewind(self) -> None:
        """Read every partition again from its start (after a broker restart emptied and refilled them)."""
        assert self._consumer is not None
        await self._consumer.seek_to_beginning(*self._consumer.assignment())

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
        """Wait until `condition` holds over what has been seen, re-checked on every new batch."""
        async def holds() -> None:
            async with self._changed:
                await self._changed.wait_for(condition)

        try:
            await asyncio.wait_for(holds(), timeout)
        except TimeoutError:
            raise TimeoutError(f"{what} did not hold within {timeout}s") from None


class EventLog(TopicTail):
    """Keeps every message it saw, to be matched by predicates."""

    def __init__(self, bootstrap: str, topics: Iterable[str], *, from_beginning: bool = False) -> None:
        super().__init__(bootstrap, topics, from_beginning=from_beginning)
        self.seen: list[Seen] = []

    def note(self, record: Any, now: float) -> None:
        self.seen.append(Seen(
            record.topic, record.partition, record.offset,
            record.key.decode() if record.key is not None else None, record.value or b"",
            {k: v.decode("utf-8", "replace") for k, v in (record.headers or ())}, now))

    def matching(self, predicate: Callable[[Seen], bool]) -> list[Seen]:
        return [s for s in self.seen if predicate(s)]

    async def wait_for(self, predicate: Callable[[Seen], bool], timeout: float = 30.0, count: int = 1) -> list[Seen]:
        """Wait until `count` messages match; raise TimeoutError naming what was missing."""
        try:
            await self.wait_until(lambda: len(self.matching(predicate)) >= count, timeout)
        except TimeoutError:
            got = len(self.matching(predicate))
            raise TimeoutError(f"saw {got} of {count} expected messages within {timeout}s") from None
        return self.matching(predicate)



# --- signing as a Tessera component would (shared/signing.py) -------------------------------------------


def use_development_keys(folder: Path) -> Path:
    """Keys for every component in `folder`, named by SIGNING_KEYS_DIR for this process and those it starts."""
    import os

    signing.make_keys(folder)
    os.environ[KEYS_ENV] = str(folder)
    return folder


@functools.cache
def signer_of(producer: str) -> signing.Signer:
    """The development key of `tessera/<component>` (or `<component>`)."""
    import os

    return signing.load_signer(Path(os.environ[KEYS_ENV]), producer.removeprefix("tessera/"))


class BearerAuth(httpx.Auth):
    """`bearer.Tokens` for the tests' and tools' httpx clients (the services read over aiohttp)."""

    def __init__(self, signer: Callable[[], signing.Signer | None], *,
                 actor: Mapping[str, Any] | None = None, grant: bearer.Grant | None = None) -> None:
        self._tokens = bearer.Tokens(signer, actor=actor, grant=grant)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        authorization = self._tokens.authorization()
        if authorization is not None:
            request.headers["Authorization"] = authorization
        yield request


def service_auth(component: str = "workflow") -> BearerAuth:
    """httpx auth that reads a service's endpoints as `component` does (any record)."""
    return BearerAuth(lambda: signer_of(component))


def worker_auth(worker_id: str, roles: Iterable[str] = (), team_ids: Iterable[str] = (), *,
                person_id: object = None) -> BearerAuth:
    """httpx auth that reads as the desk does for one signed-in worker (with the desk's grant for one person)."""
    actor = {"worker_id": worker_id, "roles": list(roles), "team_ids": list(team_ids)}
    grant = bearer.Grant(str(person_id), "relationship") if person_id is not None else None
    return BearerAuth(lambda: signer_of("web"), actor=actor, grant=grant)


def signed_as_sender(topic: str, value: bytes) -> bytes:
    """A message signed by who would send it: its own `source` if that component may, else the topic's writer
    (the desk for a command, with `data.actor` as the signed-in worker). Not an envelope: left as it is."""
    if not producers.is_signed(topic):
        return value
    try:
        body = json.loads(value)
    except (ValueError, RecursionError):
        return value
    if not isinstance(body, dict) or "signature" in body or not isinstance(body.get("type"), str):
        return value
    sender = body.get("source")
    if not (isinstance(sender, str) and producers.may_write(sender, topic, body["type"])):
        sender = producers.writer_of(topic, body["type"])
        if isinstance(body.get("source"), str) and 0 < len(body["source"]) <= 200:  # a bad one stays bad
            body["source"] = sender
    with_actor = sender == producers.DESK and isinstance(body.get("data"), dict)
    return signer_of(sender).signed(json.dumps(body).encode(), with_actor=with_actor)


class SigningProducer(AIOKafkaProducer):
    """A producer that signs what it sends as its usual sender would (raw AIOKafkaProducer for forgeries)."""

    async def send(self, topic: str, value: Any = None, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, bytes):
            value = signed_as_sender(topic, value)
        return await super().send(topic, value, *args, **kwargs)


async def publish(bootstrap: str, topic: str, messages: Iterable[tuple[str | None, bytes]], *,
                  signed: bool = True) -> None:
    """Publish (key, value) pairs, signed as their sender unless `signed=False`; wait until the broker has all."""
    kind = SigningProducer if signed else AIOKafkaProducer
    producer = kind(bootstrap_servers=bootstrap, acks="all", max_request_size=4_000_000)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=v, key=k.encode() if k else None) for k, v in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServiceProcess:
    """One service as its own process (`python -m services.<name>`), as production runs it."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path, port: int | None = None) -> None:
        self.name = name
        self.port = port or free_port()
        self._env = {**env, "HTTP_PORT": str(self.port)}
        self._log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def with_settings(self, **env: str) -> "ServiceProcess":
        """The same service on the same port and log, with some settings changed; the caller starts it."""
        return ServiceProcess(self.name, {**self._env, **env}, self._log_path.parent, port=self.port)

    def start(self) -> None:
        import os
        import sys

        log = open(self._log_path, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.name}"],
            env={**os.environ, **self._env}, stdout=log, stderr=subprocess.STDOUT,
        )

    async def ready(self, timeout: float = 60.0) -> None:
        from shared.embedded import wait_until_ready

        try:
            await wait_until_ready([f"{self.url}/readyz"], timeout)
        except TimeoutError as exc:  # CI keeps no logs: say what the service was doing (its log holds ids only)
            exited = self.process.poll() if self.process is not None else None
            tail = "\n".join(self.log_text().splitlines()[-25:])
            raise TimeoutError(f"{self.name} (exit code {exited}): {exc}\nits log ends:\n{tail}") from None

    def kill(self) -> None:
        """kill -9: no shutdown, no commit, no flush."""
        import signal

        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        from shared.embedded import stop_process

        if self.process is not None:
            stop_process(self.process)

    def log_text(self) -> str:
        return self._log_path.read_text(errors="replace")


async def poll_until(check: Callable[[], Awaitable[Any]], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll a database condition (not a topic: wait on messages with EventLog) until it holds."""
    deadline = time.monotonic() + timeout
    while not (value := await check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not hold within {timeout}s")
        await asyncio.sleep(0.05)
    return value


class BackgroundLoad:
    """A producer sending from `_run` in the background until stopped; subclasses write `_run` and append
    each message to `sent`."""

    progress_timeout = 120.0

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self.sent: list[Any] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._producer = SigningProducer(bootstrap_servers=self._bootstrap, acks="all", linger_ms=5)
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
        """Returns once the load has sent `messages` more (fault injection timing)."""
        target = len(self.sent) + messages

        async def reached() -> bool:
            return len(self.sent) >= target

        await poll_until(reached, self.progress_timeout, "load progress")

    async def _run(self) -> None:
        raise NotImplementedError


async def group_caught_up(bootstrap: str, group: str, topic: str) -> bool:
    """The consumer group has committed every partition of `topic` up to its end: no backlog of earlier messages."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        await consumer.topics()  # the cluster's metadata, partitions included
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = await log_ends(consumer, partitions)
        done = await admin.list_consumer_group_offsets(group, partitions=partitions)
    finally:
        await consumer.stop()
        await admin.close()
    return all(max(done[tp].offset if tp in done else 0, 0) >= end for tp, end in ends.items())


async def create_database(dsn: str, prefix: str) -> str:
    """A new empty database on the server of `dsn`, named `<prefix>_<random>`; its DSN."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(dsn)._replace(path=f"/{name}"))
