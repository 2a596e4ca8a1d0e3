"""A service run with timers around its stages, for `python -m bench.profile` (never in production).

`python bench/profiled.py <service>` runs `services.<service>` as `python -m` would, after wrapping: every
asyncpg round trip (by where it ran: a consumer's batch, the outbox relay, anything else; and by its first SQL
word), the consumers' fetches and offset commits, and the relay's rounds and publishing. SIGUSR1 appends a
snapshot of the totals, with the process's CPU seconds, to $PROFILE_OUT (one JSON line); with PROFILE_CPROFILE
set, the first SIGUSR1 starts cProfile and the second writes its statistics to $PROFILE_OUT.pstats.
"""

import contextvars
import cProfile
import functools
import json
import os
import runpy
import signal
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import asyncpg
import fast_depends.utils
from aiokafka import AIOKafkaConsumer

from shared import broker, metrics, relay

STAGE: contextvars.ContextVar[str] = contextvars.ContextVar("stage", default="other")
TOTALS: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])  # name → [count, seconds]


def timed(owner: Any, name: str, label: Callable[..., str], stage: str | None = None) -> None:
    """Replace owner.name (a coroutine function) by one that adds its count and wall time under label(...)."""
    original = getattr(owner, name)

    @functools.wraps(original)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = STAGE.set(stage) if stage else None
        began = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            total = TOTALS[label(*args, **kwargs)]
            total[0] += 1
            total[1] += time.perf_counter() - began
            if token is not None:
                STAGE.reset(token)

    setattr(owner, name, wrapper)


def sql_label(_conn: Any, query: str = "", *_: Any, **__: Any) -> str:
    return f"db {STAGE.get()} {query.split(None, 1)[0].upper() if query.strip() else '?'}"


def install() -> None:
    for method in ("execute", "executemany", "fetch", "fetchrow", "fetchval"):
        timed(asyncpg.connection.Connection, method, sql_label)
    timed(broker.BatchedSubscriber, "_handle_batch", lambda *_: "consumer batch (transaction)", "consumer")
    timed(broker, "_commit", lambda *_: "consumer offset commit")
    timed(AIOKafkaConsumer, "getmany", lambda *_a, **_k: "consumer fetch (getmany, waits included)")
    timed(relay.OutboxRelay, "relay_once", lambda *_: "relay round", "relay")
    # before issue #18's pipelining the relay published in _publish; after, _publish_marking marks meanwhile
    for publishing in ("_publish", "_publish_marking"):
        if hasattr(relay.OutboxRelay, publishing):
            timed(relay.OutboxRelay, publishing, lambda *_, named=publishing: f"relay {named} (send → acknowledged)")
    # fast_depends runs every sync dependency (faststream's Context(...) fields among them) in a worker thread
    timed(fast_depends.utils, "run_in_threadpool", lambda *_a, **_k: "thread hop (a sync dependency)")
    signal.signal(signal.SIGUSR1, snapshot)


PROFILER: list[cProfile.Profile] = []


def snapshot(*_: Any) -> None:
    handler = {f"{s.name}:{s.labels.get('topic')}": s.value for family in metrics.HANDLER_SECONDS.collect()
               for s in family.samples if s.name.endswith(("_sum", "_count"))}
    line = {"cpu": time.process_time(), "wall": time.monotonic(), "totals": dict(TOTALS), "handler": handler}
    with open(os.environ["PROFILE_OUT"], "a") as out:
        out.write(json.dumps(line) + "\n")
    if os.environ.get("PROFILE_CPROFILE"):
        if not PROFILER:
            PROFILER.append(cProfile.Profile(time.process_time))  # CPU, not wall: waiting costs nothing
            PROFILER[0].enable()
        else:
            PROFILER[0].disable()
            PROFILER[0].dump_stats(os.environ["PROFILE_OUT"] + ".pstats")


if __name__ == "__main__":
    install()
    service = sys.argv[1]
    sys.argv = [f"services.{service}"]
    runpy.run_module(f"services.{service}", run_name="__main__", alter_sys=True)
