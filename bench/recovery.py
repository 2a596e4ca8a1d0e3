"""`python -m bench.recovery`: how long a service takes to handle messages again after it stops (issue #18 §3).

For each service measured, on the embedded broker and PostgreSQL: a cold start (spawn → /readyz 200), then
a kill -9 and a SIGTERM, each followed at once by a restart. A message is published while the service is
down; the figure is spawn → that message handled (its id in the service's inbox). Allocation reads four
topics, the scheduler one: the gap between them is what joining consumer groups one after another costs.
"""

import argparse
import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from bench.common import Infrastructure, infrastructure, percentile
from shared import topics
from shared.envelope import Envelope, new_message
from shared.testing import ServiceProcess, poll_until, publish


@dataclass(frozen=True)
class Probe:
    """A message the service handles with no other service running, and the topic it goes to."""

    topic: str
    message: Callable[[], Envelope]


def _stale_tray_timer() -> Envelope:
    now = datetime.now(UTC).isoformat()
    return new_message("timer.due", "tessera/scheduler", {"key": f"tray-review:{uuid.uuid4()}", "due_at": now,
                                                          "owner": "allocation", "payload": {}, "fired_at": now})


def _far_timer() -> Envelope:
    return new_message("timer.set", "bench", {"key": f"recovery-{uuid.uuid4()}", "owner": "bench",
                                              "due_at": "2100-01-01T00:00:00Z"})


PROBES = {"allocation": Probe(topics.SCHEDULER_DUE, _stale_tray_timer),
          "scheduler": Probe(topics.SCHEDULER_TIMERS, _far_timer)}


async def _handled(pool: asyncpg.Pool, service: str, message: Envelope, timeout: float) -> None:
    await poll_until(lambda: pool.fetchval(f"SELECT count(*) = 1 FROM {service}.inbox WHERE message_id = $1",
                                           message.id), timeout, f"{service} handled {message.id}")


async def _probe(infra: Infrastructure, pool: asyncpg.Pool, service: str, started: float,
                 timeout: float) -> float:
    probe = PROBES[service]
    message = probe.message()
    await publish(infra.bootstrap, probe.topic, [(str(message.id), message.to_bytes())])
    await _handled(pool, service, message, timeout)
    return time.monotonic() - started


async def measure(service: str, rounds: int, env: dict[str, str], timeout: float = 240) -> dict[str, list[float]]:
    """Seconds from spawn to ready (cold) and to a message handled after kill -9 / SIGTERM."""
    figures: dict[str, list[float]] = {"cold start → ready": [], "kill -9 → handled": [], "SIGTERM → handled": []}
    async with infrastructure("tessera-recovery-") as infra:
        pool = await asyncpg.create_pool(infra.dsn, min_size=1, max_size=2)
        process = ServiceProcess(service, infra.env(**env), infra.work)
        try:
            started = time.monotonic()
            process.start()
            await process.ready(timeout)
            figures["cold start → ready"].append(time.monotonic() - started)
            await _probe(infra, pool, service, started, timeout)
            for _ in range(rounds):
                for fault, stop in (("kill -9 → handled", process.kill), ("SIGTERM → handled", process.stop)):
                    stop()
                    started = time.monotonic()
                    process.start()
                    figures[fault].append(await _probe(infra, pool, service, started, timeout))
        finally:
            process.stop()
            await pool.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.recovery", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--services", default="scheduler,allocation")
    parser.add_argument("--static", action="store_true",
                        help="static group membership (KAFKA_GROUP_INSTANCE_ID), as a StatefulSet pod has")
    args = parser.parse_args()
    env = {"KAFKA_GROUP_INSTANCE_ID": "bench-0"} if args.static else {}
    print(f"{'service':<12} {'measure':<22} {'min':>7} {'median':>7} {'max':>7}  (seconds, {args.rounds} rounds)")
    for service in args.services.split(","):
        for name, values in asyncio.run(measure(service, args.rounds, env)).items():
            print(f"{service:<12} {name:<22} {min(values):7.1f} {percentile(values, 50):7.1f} {max(values):7.1f}")


if __name__ == "__main__":
    main()
