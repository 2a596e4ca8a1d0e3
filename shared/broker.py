"""Kafka with house defaults: safe producers, manual commits, retry-then-dead-letter."""

import asyncio
import contextlib
import functools
import inspect
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Annotated, Any, cast

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import ConsumerStoppedError, KafkaError, TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from aiokafka.structs import ConsumerRecord
from faststream import AckPolicy, BaseMiddleware
from faststream._internal.context import Context as FaststreamContext
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.kafka import TopicPartition as FaststreamTopicPartition
from faststream.kafka.message import KafkaMessage as FaststreamKafkaMessage
from faststream.kafka.security import parse_security
from faststream.kafka.subscriber.usecase import DefaultSubscriber
from faststream.security import BaseSecurity, SASLScram256, SASLScram512

from shared import audit, batching, fetch_wait, metrics, quarantine, topics
from shared.envelope import Undecodable
from shared.every_partition import EveryPartition, commit_failed
from shared.health import JobHealth
from shared.identity import SignatureMiddleware
from shared.log_ends import high_watermarks
from shared.relay import OutboxRelay
from shared.settings import Settings
from shared.signing import Signer

log = logging.getLogger(__name__)

# a database restart answers "shutting down" / "starting up" (CannotConnectNow) and ends sessions (AdminShutdown)
TRANSIENT = (OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
             asyncpg.SerializationError, asyncpg.DeadlockDetectedError, asyncpg.CannotConnectNowError,
             asyncpg.AdminShutdownError, asyncpg.CrashShutdownError, KafkaError)
BUG_RETRIES = 3
# the most records one fetch hands an unbatched consumer (a batched one: CONSUMER_BATCH_SIZE)
MAX_POLL_RECORDS = 100
# how long a stopping consumer waits for its batch in hand to commit (uvicorn allows 10 s in all)
STOP_GRACE_SECONDS = 8.0
# how soon a partition whose handling ended is fetched again while others are still being handled
BUSY_POLL_MS = 10
# how often a consume loop looks whether its consumer has joined its group again
REJOIN_POLL_SECONDS = 0.1
# The longest wait between tries of a transient failure. Most are another service restarting (documents and
# notifications read referrals before they claim a message): at 5 s a service found its peer back up to 5 s
# late, which the fault suite's overlapping kills measured as its own recovery. A try a second per blocked
# partition costs a peer or the database nothing.
RETRY_BACKOFF_MAX_SECONDS = 1.0


def retry_backoff(attempt: int) -> float:
    """Seconds to wait before try `attempt + 1` of a transient failure: 0.2, 0.4, 0.8, then every second."""
    return min(0.1 * 2**attempt, RETRY_BACKOFF_MAX_SECONDS)


class _ResolvedOnTheLoop(FaststreamContext):
    async def use(self, /, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        return super().use(**kwargs)


def Context(real_name: str = "", **options: Any) -> Any:  # noqa: N802  (faststream's name, as it spells it)
    """A handler's parameter from the broker's context (`pool`, readers), resolved on the event loop.

    fast_depends runs a dependency whose resolver is synchronous in a worker thread: faststream's own Context
    cost a thread hop per parameter, six a message for workflow's commands (docs/profile.md)."""
    return _ResolvedOnTheLoop(real_name, **options)


# the consumed message, as faststream's kafka annotation gives it, without the thread hop
KafkaMessage = Annotated[FaststreamKafkaMessage, Context("message")]


def kafka_security(settings: Settings) -> BaseSecurity | None:
    """How this component connects to the broker: plain (embedded), TLS, or SASL/SCRAM with or without TLS."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = None
    if protocol.endswith("SSL"):
        context = create_ssl_context(cafile=settings.kafka_ssl_cafile and str(settings.kafka_ssl_cafile),
                                     certfile=settings.kafka_ssl_certfile and str(settings.kafka_ssl_certfile),
                                     keyfile=settings.kafka_ssl_keyfile and str(settings.kafka_ssl_keyfile))
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    scram = SASLScram512 if settings.kafka_sasl_mechanism == "SCRAM-SHA-512" else SASLScram256
    return scram(settings.kafka_sasl_username, settings.kafka_sasl_password.get_secret_value(),
                 ssl_context=context, use_ssl=protocol == "SASL_SSL")


def connection_options(settings: Settings) -> dict[str, Any]:
    """What every aiokafka client of this component needs to reach the broker (consumers and admin too)."""
    return {"bootstrap_servers": settings.kafka_bootstrap_servers, **parse_security(kafka_security(settings))}


def producer_options(settings: Settings) -> dict[str, Any]:
    return {
        **connection_options(settings),
        "acks": settings.kafka_acks if settings.kafka_acks == "all" else int(settings.kafka_acks),
        "enable_idempotence": settings.kafka_enable_idempotence,
        "client_id": f"tessera-{settings.service_name}",
    }


def make_producer(settings: Settings) -> AIOKafkaProducer:
    """A service's producer (its outbox relay's; the desk's commands). No linger: a lone message is sent at once, and
    a relay round queues its rows without yielding, so they are batched anyway (the relay lingers in a burst)."""
    return AIOKafkaProducer(**producer_options(settings), linger_ms=0)


class ConcurrentStartBroker(KafkaBroker):
    """Starts every subscriber at once: each consumer's start waits for its group assignment, and faststream
    starts them one after another, so a service reading four topics took four joins to be ready."""

    join_seconds: dict[str, float] | None = None  # each subscriber's start, by topic (logged with "started")

    async def start(self) -> None:
        await self.connect()
        joins: dict[str, float] = {}
        await asyncio.gather(*(_timed_start(sub, joins) for sub in self.subscribers))
        self.join_seconds = joins
        for publisher in self.publishers:
            await publisher.start()
        self.running = True


async def _timed_start(subscriber: Any, joins: dict[str, float]) -> None:
    began = time.monotonic()
    await subscriber.start()
    joins[",".join(subscriber.topic_names_for_subscribe)] = round(time.monotonic() - began, 3)


def make_broker(settings: Settings) -> KafkaBroker:
    return ConcurrentStartBroker(
        settings.kafka_bootstrap_servers,
        middlewares=[DeadLetterMiddleware, SignatureMiddleware, audit.CauseMiddleware],
        logger=logging.getLogger(f"tessera.{settings.service_name}.broker"),
        # faststream's "Received"/"Processed" lines, two a message, at DEBUG: they name no envelope, only an
        # offset; at INFO they were most of every log (the MESSAGES metric counts messages instead)
        log_level=logging.DEBUG,
        security=kafka_security(settings),
        acks=settings.kafka_acks if settings.kafka_acks == "all" else int(settings.kafka_acks),
        enable_idempotence=settings.kafka_enable_idempotence,
        client_id=f"tessera-{settings.service_name}",
    )


# reads for a whole batch before it is handled, given its records and the broker's context (see `subscriber`)
ReadAhead = Callable[[list[ConsumerRecord], Any], Awaitable[None]]


def subscriber(router: KafkaRouter, service: str, topic: str, *, types: Collection[str] | None = None,
               batched: bool = True, read_ahead: ReadAhead | None = None) -> Any:
    """A consumer group per service and topic; offsets committed only once what the handler did is committed.

    Each partition is handled by a task of its own, in its own order (PartitionedSubscriber).
    Batched (the default): the records one fetch returns for a partition are handled in one transaction,
    a savepoint per message (shared/batching.py, BatchedSubscriber). Unbatched (PerMessageSubscriber): a
    transaction per message, for a handler that must commit before it acts outside the database (sending an email).
    `types`: the CloudEvents types the handler acts on. A record whose `ce_type` header names another type is
    passed over before it is verified, decoded or given a savepoint: most of what a service reads of another's
    events is not its to act on (two thirds of notifications' workflow.events). A record without the header
    goes to the handler, which decides. Skipping one costs nothing a sender could abuse: it is not acted on.
    `read_ahead`, batched only: reads another service once for the whole batch (the records are not yet
    verified, so it may only read, never act); the handler still reads for itself what was not read ahead."""
    settings = Settings()  # the KAFKA_* settings every service shares, read when the handlers are defined
    instance = settings.kafka_group_instance_id
    batched = batched and settings.consumer_batch_size > 1
    # KAFKA_ASSIGNMENT=all: the configured partitions are declared, then the broker's own count at start-up
    # (`assign_every_partition`); shared/every_partition.py
    every_partition = settings.kafka_assignment == "all"
    created = router.subscriber(
        *(() if every_partition else (topic,)),
        partitions=[FaststreamTopicPartition(topic, p) for p in range(settings.topic_partitions)]
        if every_partition else (),
        group_id=f"{service}.{topic}",
        group_instance_id=f"{instance}.{topic}" if instance and not every_partition else None,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        auto_offset_reset="earliest",
        # the subscriber commits the offset itself, once the message's (or the batch's) transaction has committed
        ack_policy=AckPolicy.MANUAL,
        max_poll_records=settings.consumer_batch_size if batched else MAX_POLL_RECORDS,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
    )
    # faststream builds its subscriber itself; these differ only in how they run their consume loop
    created.__class__ = BatchedSubscriber if batched else PerMessageSubscriber
    cast(PartitionedSubscriber, created).types = frozenset(types) if types is not None else None
    if batched:
        cast(BatchedSubscriber, created).read_ahead = read_ahead
    return created


class PartitionedSubscriber(DefaultSubscriber):
    """Each partition is handled by a task of its own, in its own order, and its offset committed after what
    was handled of it: a partition busy with a slow message (an email the mail server is slow to take, a batch's
    round trips) holds up only itself, as it would with a replica for each partition. What makes two replicas
    safe (identity locks, row locks and versions, the audit's chains) makes this safe.

    The fetch asks only for the partitions no task is handling; what the broker already sent for a busy one
    waits in aiokafka's buffer (one fetch's worth). A transient failure (the database, the broker, a service
    read) stops the partition at that message: what came before it is committed, the rest is tried again after
    a backoff. The fetch wait follows the traffic (shared/fetch_wait.py). How a partition's records are
    handled: `_handle_batch`.
    """

    __slots__ = ()  # the same layout as faststream's class (see `subscriber`); state goes in the instance dict
    types: frozenset[str] | None = None  # see `subscriber`
    _every: EveryPartition | None = None  # KAFKA_ASSIGNMENT=all: the check of the broker's memory
    # fetch again only once every partition of the last fetch is handled (BatchedSubscriber: see there)
    fetches_when_all_done = False

    @property
    def topic_names_for_subscribe(self) -> list[str]:
        """The topic, whether it is subscribed to (a group's) or its partitions assigned (KAFKA_ASSIGNMENT=all)."""
        return super().topic_names_for_subscribe or sorted({partition.topic for partition in self.partitions})

    async def _run_consume_loop(self, consumer: AIOKafkaConsumer) -> None:
        fetch_wait.follow_traffic(consumer, Settings())
        # kept if faststream restarts this loop after an error: a partition still being handled is not fetched again
        self._busy: dict[TopicPartition, asyncio.Task[None]] = getattr(self, "_busy", {})
        if not consumer._subscription.partitions_auto_assigned():  # noqa: SLF001  KAFKA_ASSIGNMENT=all
            self._every = EveryPartition(consumer)
        while self.running:
            if _rejoining(consumer):  # what is fetched now may be another member's by the time it is handled
                await asyncio.sleep(REJOIN_POLL_SECONDS)
                continue
            if self._every is not None and self._every.check_due():  # a new connection: the broker may be another
                await self._check_broker_remembers()
                continue
            free = [partition for partition in consumer.assignment() if partition not in self._busy]
            try:
                # getmany() with no partitions means all of them: with every one busy, wait on the tasks instead
                fetched = await consumer.getmany(*free, timeout_ms=BUSY_POLL_MS if self._busy else 1000) \
                    if free or not self._busy else await self._one_done(BUSY_POLL_MS)
            except ConsumerStoppedError:
                return
            except KafkaError as exc:
                log.warning("fetch failed, retrying", extra={"error": type(exc).__name__})
                await asyncio.sleep(1)
                continue
            if self._every is not None and self._every.check_due():
                continue  # fetched over a connection not yet checked: read again after the check
            started = []
            for partition, records in fetched.items():
                task = asyncio.create_task(self._handle_partition(consumer, partition, records))
                self._busy[partition] = task
                task.add_done_callback(functools.partial(self._done, partition))
                started.append(task)
            if started and self.fetches_when_all_done:
                await asyncio.wait(started)

    async def _check_broker_remembers(self) -> None:
        """Once what is in hand is done (none of it commits now), see whether the broker kept the offsets."""
        if self._busy:
            await asyncio.wait(list(self._busy.values()))
        assert self._every is not None
        await self._every.check()

    async def _one_done(self, timeout_ms: int) -> dict[TopicPartition, list[ConsumerRecord]]:
        await asyncio.wait(list(self._busy.values()), timeout=timeout_ms / 1000, return_when=asyncio.FIRST_COMPLETED)
        return {}

    def _done(self, partition: TopicPartition, task: asyncio.Task[None]) -> None:
        if self._busy.get(partition) is task:
            del self._busy[partition]
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            log.error("partition handling failed", extra={"error": type(error).__name__, "topic": partition.topic})

    async def stop(self) -> None:
        """Stop after the message in hand: what was handled so far commits, and its offset (a SIGTERM)."""
        self.running = False
        busy = list(getattr(self, "_busy", {}).values())
        if busy:
            await asyncio.wait(busy, timeout=STOP_GRACE_SECONDS)
        for task in busy:
            task.cancel()
        await super().stop()

    async def _handle_partition(self, consumer: AIOKafkaConsumer, partition: TopicPartition,
                                records: list[ConsumerRecord]) -> None:
        attempt = 0
        try:
            # a partition the group gave to another member meanwhile is theirs to handle (its inbox drops copies)
            while records and self.running and partition in consumer.assignment() and not self._paused(consumer):
                handled, failure = await self._handle_batch(records)
                if handled:
                    if self._paused(consumer):
                        break  # not committed: after the join the records are read again, and the inbox drops them
                    if self._every is not None:
                        if not await self._every.commit(partition, records[handled - 1].offset + 1):
                            break  # read again after the broker's check (the inbox drops what was handled)
                    else:
                        await _commit(consumer, partition, records[handled - 1].offset + 1)
                    records = records[handled:]
                if failure is not None:
                    attempt += 1
                    metrics.MESSAGES.labels(self._service, partition.topic, "retried").inc()
                    log.warning("transient failure, retrying", extra={
                        "error": type(failure).__name__, "attempt": attempt, "topic": partition.topic})
                    await asyncio.sleep(retry_backoff(attempt))
        finally:
            if records and partition in consumer.assignment():  # the next fetch starts at the first not handled
                consumer.seek(partition, records[0].offset)

    def _paused(self, consumer: AIOKafkaConsumer) -> bool:
        """Joining the group again, or (KAFKA_ASSIGNMENT=all) a check of the broker due: nothing commits now."""
        return _rejoining(consumer) or (self._every is not None and self._every.check_due())

    @property
    def _service(self) -> str:
        return str(self._outer_config.context.get("service", "tessera"))

    async def _handle_batch(self, records: list[ConsumerRecord]) -> tuple[int, BaseException | None]:
        """How many records from the first were handled and committed, and the transient failure that stopped it."""
        raise NotImplementedError

    def _not_ours(self, record: ConsumerRecord) -> bool:
        """A record of a type the handler does not act on, by its `ce_type` header."""
        if self.types is None:
            return False
        declared = next((value for name, value in record.headers if name == "ce_type"), None)
        return declared is not None and declared.decode("utf-8", "replace") not in self.types

    def _passed_over(self, topic: str, count: int = 1) -> None:
        metrics.MESSAGES.labels(self._service, topic, "passed_over").inc(count)

    async def _process(self, record: ConsumerRecord) -> None:
        """The record through the broker's middlewares to the handler, as faststream's process_message calls them,
        without the rest of its per-message machinery (context scopes, parser, fast_depends' argument solving):
        ~19 % of a service's CPU (docs/profile.md). The handler is given the message (`body`, `raw_message`) and
        the values its `Context(...)` parameters name."""
        context = self._outer_config.context
        handler, names = self._direct_handler()
        consumed = Consumed(record)

        async def handle(message: Consumed) -> Any:
            return await handler(message, **{param: context.get(name) for param, name in names.items()})

        call: Callable[[Consumed], Awaitable[Any]] = handle
        for middleware in reversed(self._broker_middlewares):
            call = functools.partial(middleware(consumed, context=context).consume_scope, call)
        await call(consumed)

    def _direct_handler(self) -> tuple[Callable[..., Awaitable[Any]], dict[str, str]]:
        """The handler function and its context parameters (parameter → context name), found once."""
        found: tuple[Callable[..., Awaitable[Any]], dict[str, str]] | None = getattr(self, "_direct", None)
        if found is None:
            [item] = self.calls  # one handler a subscriber (`subscriber` decorates one function)
            handler = item.handler._declared_call
            message, *rest = inspect.signature(handler).parameters.values()
            names = {p.name: p.default.name for p in rest if isinstance(p.default, FaststreamContext)}
            if len(names) != len(rest):
                raise TypeError(f"{handler.__name__}: a subscriber's handler takes the message and Context(...) values")
            found = self._direct = (handler, names)
        return found


class PerMessageSubscriber(PartitionedSubscriber):
    """A transaction per message: the handler commits what it wrote before it acts outside the database (an email
    goes only once its pending record is committed), and the offset is committed after each message."""

    __slots__ = ()

    async def _handle_batch(self, records: list[ConsumerRecord]) -> tuple[int, BaseException | None]:
        if self._not_ours(records[0]):
            self._passed_over(records[0].topic)
            return 1, None
        try:  # the dead-letter middleware retries a transient failure of the handler in place
            await self._process(records[0])
        except Exception as exc:  # the dead-lettering itself failed: the message is tried again, nothing skipped
            log.error("message failed", extra={"error": type(exc).__name__, "topic": records[0].topic,
                                               "frames": traceback.format_tb(exc.__traceback__)[-3:]})
            return 0, exc
        return 1, None


class BatchedSubscriber(PartitionedSubscriber):
    """Handles what one fetch returns for a partition in one transaction, then commits the offset once.

    Every message still goes through the middlewares one by one (dead-lettering, signature
    verification, the audit cause) inside a savepoint of its own. A transient failure stops the batch
    at that message: what came before it commits, the rest is tried again after a backoff, with no
    transaction held open while waiting.
    """

    __slots__ = ()
    read_ahead: ReadAhead | None = None
    # Batches hold a pool connection each through their round trips: fetching again as each partition's batch
    # ended kept every connection busy and starved the service's HTTP reads (the role matrix's 612 commands:
    # workflow's reads timed out at 2 s). Waiting for the fetch's batches leaves the pool a gap between fetches.
    fetches_when_all_done = True

    async def _handle_batch(self, records: list[ConsumerRecord]) -> tuple[int, BaseException | None]:
        """How many records from the first were handled and committed, and the transient failure that stopped it."""
        not_ours = [self._not_ours(record) for record in records]
        if all(not_ours):  # no transaction for records not ours
            self._passed_over(records[0].topic, len(records))
            return len(records), None
        pool: batching.ConsumerPool = self._outer_config.context.get("pool")
        await self._read_ahead_of(records)
        handled = 0
        try:
            async with pool.batch() as batch:
                for record, passed_over in zip(records, not_ours, strict=True):
                    if not self.running:
                        break
                    if passed_over:
                        self._passed_over(record.topic)
                        handled += 1
                        continue
                    await self._process(record)
                    if batch.failure is not None:
                        break
                    handled += 1
        except TRANSIENT as exc:  # the commit (or the connection) failed: none of the batch counts
            return 0, exc
        except Exception as exc:  # the dead-lettering itself failed: the batch is tried again, nothing skipped
            log.error("batch failed", extra={"error": type(exc).__name__, "topic": records[0].topic,
                                             "frames": traceback.format_tb(exc.__traceback__)[-3:]})
            return 0, exc
        metrics.BATCH_SIZE.labels(self._service, records[0].topic).observe(handled)
        return handled, batch.failure

    async def _read_ahead_of(self, records: list[ConsumerRecord]) -> None:
        if self.read_ahead is None:
            return
        try:
            await self.read_ahead(records, self._outer_config.context)
        except Exception as exc:  # only a saving: each handler reads what it needs for itself
            log.warning("read ahead failed", extra={"error": type(exc).__name__, "topic": records[0].topic})


@dataclass(frozen=True)
class Consumed:
    """A consumed record as a batched handler and the middlewares read it (what they use of faststream's
    KafkaMessage)."""

    raw_message: ConsumerRecord

    @property
    def body(self) -> bytes:
        return self.raw_message.value or b""


def _rejoining(consumer: AIOKafkaConsumer) -> bool:
    """The consumer is joining its group again (a rebalance, a broker that restarted and forgot the group).

    A commit sent now carries no generation: the broker refuses it as from an unknown member, and aiokafka then
    resets the generation and joins once more, after the join under way. On the embedded broker a static
    member's join takes ~6 s (3 s JoinGroup, 3 s SyncGroup); notifications' per-message subscriber committed
    within every one of them after a broker restart and never got out (the fault suite: no recovery in 300 s).
    Handling pauses until the new assignment instead."""
    if not consumer._subscription.partitions_auto_assigned():  # noqa: SLF001  KAFKA_ASSIGNMENT=all: no group
        return False
    coordinator = consumer._coordinator  # noqa: SLF001  aiokafka keeps the generation only here
    return consumer._subscription.reassignment_in_progress or coordinator is None or coordinator.generation < 0  # noqa: SLF001


async def _commit(consumer: AIOKafkaConsumer, partition: TopicPartition, offset: int) -> None:
    """Commit the offset after the batch's transaction; if the group took the partition away meanwhile, its
    new owner reads these records again and the inbox drops them."""
    try:
        await consumer.commit({partition: offset})
    except KafkaError as exc:
        commit_failed(exc, partition)


async def ensure_topics(settings: Settings, names: list[str] | None = None) -> dict[str, int]:
    """Create the topics (and their .dlq) with the configured partitions; existing ones are kept.
    Returns how many partitions each has on the broker."""
    admin = AIOKafkaAdminClient(**connection_options(settings))
    await admin.start()
    try:
        names = names or topics.all_with_dlqs()
        existing = set(await admin.list_topics())
        wanted = [t for t in names if t not in existing]
        if wanted:
            # with replicas, acks=all only means something if two must have the write
            configs = {"min.insync.replicas": "2"} if settings.topic_replication_factor >= 3 else {}
            new = [NewTopic(t, settings.topic_partitions, settings.topic_replication_factor, topic_configs=configs)
                   for t in wanted]
            with contextlib.suppress(TopicAlreadyExistsError):  # another service made them first
                await admin.create_topics(new)
        return {found["topic"]: len(found["partitions"]) for found in await admin.describe_topics(names)}
    finally:
        await admin.close()


def assign_every_partition(broker: KafkaBroker, partitions: dict[str, int]) -> None:
    """KAFKA_ASSIGNMENT=all: each subscriber reads its topic's partitions as the broker has them, which may be
    other than TOPIC_PARTITIONS (a topic made before, or by operations): one left out would never be read."""
    for subscriber in cast(list[Any], broker.subscribers):
        declared = getattr(subscriber, "_partitions", None)
        if declared:
            topic = declared[0].topic
            subscriber._partitions = [FaststreamTopicPartition(topic, number)  # noqa: SLF001  faststream's own
                                      for number in range(partitions.get(topic) or len(declared))]


class BrokerLogWatch:
    """The outbox relay's view of the broker's log: what it still holds (no consumer group), and topic re-creation."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._consumer: AIOKafkaConsumer | None = None

    async def missing(self, offsets: dict[tuple[str, int], int]) -> set[tuple[str, int]]:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(**connection_options(self._settings), enable_auto_commit=False,
                                        client_id=f"tessera-{self._settings.service_name}-outbox-watch")
            await consumer.start()
            self._consumer = consumer
        wanted = {TopicPartition(t, p): offset for (t, p), offset in offsets.items()}
        listed = await self._consumer.end_offsets(list(wanted))
        # an end past the offset settles it; one at or below it may be Tansu's short answer, so it is fetched
        doubtful = {tp: listed.get(tp, 0) for tp, offset in wanted.items() if listed.get(tp, 0) <= offset}
        ends = await high_watermarks(self._consumer, doubtful)
        return {(tp.topic, tp.partition) for tp, end in ends.items() if end <= wanted[tp]}

    async def recreate_topics(self) -> None:
        await ensure_topics(self._settings)

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None


def make_relay(pool: asyncpg.Pool, producer: AIOKafkaProducer, settings: Settings,
               health: JobHealth | None = None, signer: Signer | None = None) -> OutboxRelay:
    """The service's outbox relay: retains published rows and re-publishes them if the broker lost its log."""
    return OutboxRelay(
        pool, producer, settings.schema,
        poll_seconds=settings.outbox_poll_seconds,
        batch_size=settings.outbox_batch_size,
        linger_seconds=settings.outbox_linger_seconds,
        retention_seconds=settings.outbox_retention_hours * 3600,
        broker_log=BrokerLogWatch(settings),
        log_check_seconds=settings.outbox_log_check_seconds,
        health=health,
        signer=signer,
    )


class DeadLetterMiddleware(BaseMiddleware):
    """Retries transient failures with backoff (blocking), dead-letters what can never succeed.

    In a batch, the message runs in a savepoint of its own, so a failure undoes only its writes;
    a transient failure stops the batch there (BatchedSubscriber retries from that message).
    """

    async def consume_scope(self, call_next: Any, msg: Any) -> Any:
        record = msg.raw_message
        service = self.context.get("service", "tessera")
        attempt = 0
        while True:
            try:
                with metrics.HANDLER_SECONDS.labels(service, record.topic).time():
                    async with batching.savepoint():
                        return await call_next(msg)
            except Undecodable as exc:
                reason = exc.reason
            except TRANSIENT as exc:
                batch = batching.current()
                if batch is not None:
                    batch.failure = exc
                    return None
                attempt += 1
                metrics.MESSAGES.labels(service, record.topic, "retried").inc()
                log.warning("transient failure, retrying",
                            extra={"error": type(exc).__name__, "attempt": attempt, "topic": record.topic})
                await asyncio.sleep(retry_backoff(attempt))
                continue
            except Exception as exc:
                attempt += 1
                if attempt < BUG_RETRIES:
                    await asyncio.sleep(0.05 * attempt)
                    continue
                reason = f"handler failed: {type(exc).__name__}"
                # frames only: the exception text may carry field values
                log.error("handler failed, dead-lettering",
                          extra={"error": type(exc).__name__, "topic": record.topic,
                                 "frames": traceback.format_tb(exc.__traceback__)[-3:]})
            await dead_letter(self.context.get("pool"), record, reason, service)
            metrics.MESSAGES.labels(service, record.topic, "dead_lettered").inc()
            return None


async def dead_letter(pool: asyncpg.Pool, record: Any, reason: str, service: str | None = None) -> None:
    """The original bytes, untouched, set aside with the error, where it came from and who gave up on it."""
    async with pool.acquire() as conn, conn.transaction():
        await quarantine.set_aside(conn, quarantine.of_record(record, reason), service or "tessera")
    log.warning("message dead-lettered",
                extra={"topic": record.topic, "partition": record.partition, "offset": record.offset,
                       "reason": reason[:200]})
