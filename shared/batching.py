"""Batched handling: the records one fetch returns for a partition are handled in one database transaction.

Handlers stay written for one message: they take `pool` from the broker's context and open
`async with pool.acquire() as conn, conn.transaction()` as before. That `pool` is a `ConsumerPool`:
outside a batch it is the service's pool; inside one (`ConsumerPool.batch`, run by the batched
subscriber in shared/broker.py) every acquire hands out the batch's connection, already in its
transaction, so a handler's `conn.transaction()` is a savepoint. Each message runs inside a savepoint
of its own (`savepoint`, entered by the dead-letter middleware): a message that fails is rolled back
alone and set aside, the others of the batch commit together, and only then is the offset committed.
"""

import contextlib
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import asyncpg


@dataclass
class Batch:
    """The transaction a batch of messages shares, what to do once it commits, and why it stopped early."""

    conn: asyncpg.Connection
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    # a transient failure (database, broker, a service read): the batch commits what came before it
    failure: BaseException | None = None


_BATCH: ContextVar[Batch | None] = ContextVar("tessera_batch", default=None)


def current() -> Batch | None:
    """The batch whose message is being handled, if any."""
    return _BATCH.get()


def after_commit(action: Callable[[], None]) -> None:
    """Run `action` once what the handler wrote is committed: now outside a batch, after the batch's commit in one."""
    batch = _BATCH.get()
    if batch is None:
        action()
    else:
        batch.after_commit.append(action)


def savepoint() -> contextlib.AbstractAsyncContextManager[Any]:
    """One message's share of the batch: rolled back alone if the message fails (nothing outside a batch)."""
    batch = _BATCH.get()
    return batch.conn.transaction() if batch is not None else contextlib.nullcontext()


class _Borrowed:
    """`pool.acquire()` inside a batch: the batch's connection, not released at the end of the block."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def __aenter__(self) -> Any:
        return _InMessage(self._conn)

    async def __aexit__(self, *exc: object) -> None:
        return None


class _InMessage:
    """The batch's connection as a handler borrows it. The handler's own transaction opens no savepoint: the
    message's savepoint (`savepoint`, entered around the whole handler) already undoes everything the handler
    wrote if it fails, and no handler goes on after its own transaction failed. A transaction inside that one
    is a savepoint as before (a refusal that undoes what a command began and keeps its inbox claim).
    Two round trips a message fewer (SAVEPOINT, RELEASE)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self._open = 0

    def transaction(self, **options: Any) -> Any:
        return self._conn.transaction(**options) if self._open else self._handlers_own()

    @contextlib.asynccontextmanager
    async def _handlers_own(self) -> AsyncIterator[None]:
        self._open += 1
        try:
            yield
        finally:
            self._open -= 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class ConsumerPool:
    """The pool the consumers' handlers are given: the service's pool, or the batch's connection in a batch."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    def acquire(self) -> Any:
        batch = _BATCH.get()
        return _Borrowed(batch.conn) if batch is not None else self._pool.acquire()

    def _target(self) -> asyncpg.Pool | asyncpg.Connection:
        batch = _BATCH.get()
        return batch.conn if batch is not None else self._pool

    async def execute(self, query: str, *args: Any, **kwargs: Any) -> str:
        return await self._target().execute(query, *args, **kwargs)

    async def executemany(self, query: str, args: Any, **kwargs: Any) -> None:
        await self._target().executemany(query, args, **kwargs)

    async def fetch(self, query: str, *args: Any, **kwargs: Any) -> list[asyncpg.Record]:
        return await self._target().fetch(query, *args, **kwargs)

    async def fetchrow(self, query: str, *args: Any, **kwargs: Any) -> asyncpg.Record | None:
        return await self._target().fetchrow(query, *args, **kwargs)

    async def fetchval(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return await self._target().fetchval(query, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)

    @contextlib.asynccontextmanager
    async def batch(self) -> AsyncIterator[Batch]:
        """One transaction for the messages handled inside the block; committed when it ends without error."""
        async with self._pool.acquire() as conn, conn.transaction():
            batch = Batch(conn)
            token = _BATCH.set(batch)
            try:
                yield batch
            finally:
                _BATCH.reset(token)
        for action in batch.after_commit:
            action()
