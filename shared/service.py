"""The composition every service shares: pool, migrations, broker, outbox relay and HTTP probes."""

import asyncio
import contextlib
import gc
import logging
import os
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.specification import AsyncAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared import audit, batching, bearer, db, inbox, readers, signing, watch
from shared import logging as json_logging
from shared.broker import assign_every_partition, ensure_topics, make_broker, make_producer, make_relay, retry_backoff
from shared.health import JobHealth
from shared.relay import OutboxRelay
from shared.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
Hook = Callable[["Runtime"], Awaitable[None]]
# a background job that ran this long before it stopped counts its crashes afresh
JOB_STEADY_SECONDS = 60
# how long an idle kept-alive HTTP connection is held open: longer than any client holds one (httpx: 5 s), so a
# client never sends a request on a connection the server is closing at that moment (uvicorn's default is 5 s too:
# the two timers raced, and a read failed with "server disconnected" once in a while under load)
KEEP_ALIVE_SECONDS = 65


@dataclass
class Runtime:
    """What a running service holds: its settings, pool, broker and background tasks."""

    settings: Settings
    broker: KafkaBroker
    pool: asyncpg.Pool | None = None
    relay: OutboxRelay | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    ready: bool = False
    signer: signing.Signer | None = None
    verifier: signing.Verifier | None = None
    health: JobHealth = field(init=False)

    def __post_init__(self) -> None:
        self.health = JobHealth(self.settings.service_name)

    def run_in_background(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run a job for the service's life. One that ends with an error is logged and started again after a
        backoff, never left dead: a relay that stopped unseen would publish nothing more (a lost referral)."""
        self.tasks.append(asyncio.create_task(self._keep_running(name, run), name=name))

    async def _keep_running(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        crashes = 0
        while True:
            began = time.monotonic()
            try:
                await run()
                error: BaseException | str = "ended"
                frames: list[str] = []
            except Exception as exc:  # whatever stopped it, the job must go on
                error, frames = exc, traceback.format_tb(exc.__traceback__)[-3:]
            log.error("background job stopped, starting it again", extra={
                "job": name, "error": error if isinstance(error, str) else type(error).__name__, "frames": frames})
            crashes = 1 if time.monotonic() - began > JOB_STEADY_SECONDS else crashes + 1
            self.health.failed(name, error)
            await asyncio.sleep(retry_backoff(crashes))

    async def is_ready(self) -> bool:
        return not await self.not_ready_because()

    async def not_ready_because(self) -> list[str]:
        """Why the service is not serving, for /readyz and operations; empty when it is."""
        if not self.ready or self.pool is None:
            return ["starting"]
        timeout = self.settings.readiness_broker_timeout_seconds
        try:  # bounded: a pool with no free connection is an answer, not a hung probe
            await asyncio.wait_for(self.pool.fetchval("SELECT 1"), timeout)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            return [f"database: {type(exc).__name__}"]
        try:
            if not await self.broker.ping(timeout=timeout):
                return ["broker: no answer"]
        except (OSError, KafkaError, TimeoutError) as exc:
            return [f"broker: {type(exc).__name__}"]
        return [*(f"job failing: {job}" for job in self.health.failing()),
                *(f"not in its consumer group: {topic}" for topic in _unsubscribed(self.broker.subscribers))]


class _Phases:
    """Seconds each start-up phase took, logged with "started": where a restart after kill -9 spends its time."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        # the interpreter's start and the imports, up to here: in a process of its own, a restart's first seconds
        if (age := seconds_since_process_start()) is not None:
            self.seconds["process"] = round(age, 3)
        self._last = time.monotonic()

    def mark(self, phase: str) -> None:
        now = time.monotonic()
        self.seconds[phase] = round(now - self._last, 3)
        self._last = now


def seconds_since_process_start() -> float | None:
    """How long ago this process was started (Linux's /proc, to 10 ms); None where that cannot be read."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        return time.clock_gettime(time.CLOCK_BOOTTIME) - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _unsubscribed(subscribers: Sequence[object]) -> list[str]:
    return [", ".join(getattr(sub, "topic_names_for_subscribe", ())) or "?" for sub in subscribers
            if not _subscribed(sub)]


def _subscribed(subscriber: object) -> bool:
    """Started and holding an assignment from its group (empty for a replica beyond the partition count)."""
    consumer = getattr(subscriber, "consumer", None)
    if consumer is None:
        return False
    # aiokafka keeps the assignment of the last completed join here; None while (re)joining
    subscription = consumer._subscription.subscription
    return subscription is not None and subscription.assignment is not None


def create_app(
    settings: Settings,
    *,
    service_dir: Path,
    routers: Sequence[KafkaRouter] = (),
    queries: APIRouter | None = None,
    on_pool_ready: Sequence[Hook] = (),
    on_stopping: Sequence[Hook] = (),
    description: str = "",
) -> FastAPI:
    """A FastAPI app whose lifespan runs the service; probes, metrics and AsyncAPI included."""
    json_logging.configure(settings.service_name, settings.log_level)
    broker = make_broker(settings)
    for router in routers:
        broker.include_router(router)
    runtime = Runtime(settings=settings, broker=broker)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with _running(runtime, service_dir, on_pool_ready, on_stopping):
            yield

    # the interactive API pages only in development: outside it they tell a stranger what to try (issue #21 §3)
    pages: dict[str, Any] = {} if settings.development else {"docs_url": None, "redoc_url": None, "openapi_url": None}
    app = FastAPI(title=f"tessera {settings.service_name}", description=description, lifespan=lifespan, **pages)
    app.state.runtime = runtime
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.include_router(_probes(runtime, description))
    if queries is not None:
        app.include_router(queries, dependencies=[Depends(bearer.require_reader)])
    return app


async def _invalid_request(request: Request, error: Exception) -> JSONResponse:
    """Every field at fault, by name, without FastAPI's echo of the value (it may be personal data)."""
    assert isinstance(error, RequestValidationError)
    detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in error.errors()]
    return JSONResponse(status_code=422, content={"detail": detail})


@contextlib.asynccontextmanager
async def _running(runtime: Runtime, service_dir: Path, on_pool_ready: Sequence[Hook],
                   on_stopping: Sequence[Hook]) -> AsyncIterator[None]:
    """Pool, migrations, relay, then the consumers; stopped in reverse.

    `on_pool_ready` hooks run before the consumers start: joining a consumer group after a
    kill -9 waits out the dead member's session, and database-only work need not wait too.
    """
    settings = runtime.settings
    took = _Phases()
    runtime.signer = signer = signing.load_signer(
        settings.signing_keys_dir, settings.service_name, settings.signature_lifetime_seconds)
    runtime.verifier = verifier = signing.load_verifier(settings.signing_keys_dir)
    bearer.sign_reads_with(signer)
    runtime.pool = pool = await _until_reachable(settings.startup_wait_seconds, lambda: db.open_pool(
        settings.database_url, settings.schema, settings.db_pool_min, settings.db_pool_max))
    took.mark("database")
    applied = await db.migrate(runtime.pool, settings.schema, service_dir)
    log.info("migrated", extra={"applied": applied})
    took.mark("migrations")
    partitions = await _until_reachable(settings.startup_wait_seconds, lambda: ensure_topics(settings))
    assign_every_partition(runtime.broker, partitions)
    took.mark("topics")
    producer = make_producer(settings)
    await producer.start()
    took.mark("producer")
    runtime.relay = relay = make_relay(runtime.pool, producer, settings, runtime.health, signer)
    runtime.run_in_background("outbox-relay", relay.run)
    runtime.run_in_background("inbox-pruning", lambda: inbox.keep_pruned(
        pool, settings.inbox_retention_days * 86400, settings.inbox_prune_seconds, runtime.health))
    runtime.run_in_background("audit-checkpoint", lambda: audit.keep_checkpointed(
        pool, settings.audit_checkpoint_seconds, signer, runtime.health))
    # the consumers' handlers share one transaction per batch through it (shared/batching.py)
    runtime.broker.context.set_global("pool", batching.ConsumerPool(runtime.pool))
    runtime.broker.context.set_global("verifier", verifier)
    runtime.broker.context.set_global("service", settings.service_name)
    runtime.broker.context.set_global("runtime", runtime)
    runtime.broker.context.set_global("health", runtime.health)
    for hook in on_pool_ready:
        await hook(runtime)
    took.mark("hooks")
    await runtime.broker.start()
    took.mark("consumers")
    # what start-up made lives as long as the service: ~115,000 objects that every full collection walked, 30 ms
    # on an idle core and 100-200 ms on a busy one, once in a few dozen pages of work read by the desk or by
    # workflow (issue #18 §5). Frozen, the collector walks only what came after; collected first so no garbage
    # is kept, thawed at the stop for a process that starts another service (the in-process tests)
    gc.collect()
    gc.freeze()
    runtime.ready = True
    watch.became_ready(settings.service_name)
    sampler = watch.Watch(settings.service_name, pool, lambda: runtime.broker.subscribers, runtime.is_ready)
    runtime.run_in_background(watch.JOB, lambda: sampler.run(settings.ops_sample_seconds))
    took.mark("gc")
    log.info("started", extra={"port": settings.port, "seconds": took.seconds,
                               "joins": getattr(runtime.broker, "join_seconds", None)})
    try:
        yield
    finally:
        gc.unfreeze()
        runtime.ready = False
        for hook in on_stopping:
            await hook(runtime)
        await runtime.broker.stop()
        for task in runtime.tasks:
            task.cancel()
        await asyncio.gather(*runtime.tasks, return_exceptions=True)
        await readers.close_all()
        await producer.stop()
        await pool.close()
        log.info("stopped")


async def _until_reachable(attempts: int, connect: Callable[[], Awaitable[T]]) -> T:
    """Wait for the broker or database a while at start-up (they may be starting too), a second a try."""
    for attempt in range(1, attempts + 1):
        try:
            return await connect()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, KafkaError) as exc:
            if attempt == attempts:
                raise
            log.warning("waiting for a dependency", extra={"error": type(exc).__name__})
            await asyncio.sleep(1)
    raise AssertionError("unreachable")


def _probes(runtime: Runtime, description: str) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "up"}

    @router.get("/readyz")
    async def readyz(response: Response) -> dict[str, object]:
        """200 when serving; 503 otherwise, with the reasons (and any background job that keeps failing)."""
        reasons = await runtime.not_ready_because()
        response.status_code = 503 if reasons else 200
        if not reasons:
            return {"ready": True}
        failing = runtime.health.failing()
        return {"ready": False, "reasons": reasons, **({"failing_jobs": failing} if failing else {})}

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @router.get("/asyncapi.json")
    async def asyncapi() -> Response:
        spec = AsyncAPI(runtime.broker, title=f"tessera {runtime.settings.service_name}",
                        description=description)
        return Response(spec.to_specification().to_json(), media_type="application/json")

    return router


def serve(app: FastAPI, settings: Settings) -> None:
    """Run the service in the foreground; SIGTERM stops it cleanly."""
    import uvicorn

    uvicorn.run(app, host=settings.http_host, port=settings.port, log_config=None, http="httptools",
                access_log=False, timeout_graceful_shutdown=10, timeout_keep_alive=KEEP_ALIVE_SECONDS)
