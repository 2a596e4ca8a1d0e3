"""Step transitions through the broker and database, beside the same-run DB-only floor.

`python -m bench.steps [--steps S] [--per-step K]`: starts its own embedded broker and PostgreSQL
and the workflow service as a process; S steps each get K `step.save` commands with
`expected_version` (inbox, version check, decide, save, outbox in one transaction). Prints
transitions/s (burst, command in → event out) and p50/p99 latency (burst and paced), then the
same transaction called directly on the database, without Kafka (the floor), and that floor
again without the audit append (the difference is what the audit costs; issue #18 §2 wants the
audited floor at 0.9x the unaudited or better).
"""

import argparse
import asyncio
import contextlib
import json
import statistics
import time
import uuid
from dataclasses import dataclass
from typing import Any
from unittest import mock

from bench.common import infrastructure, percentile, running
from services.workflow.handlers import handle_command
from services.workflow.pack import load_packs
from shared import db, topics
from shared.envelope import Envelope, new_message
from shared.testing import SigningProducer, TopicTail

SERVICES = ("workflow",)

STEP_TYPE = "WB Covid 19 Response"
ACTOR = {"worker_id": "bench-worker", "roles": ["gso"], "team_ids": ["wellbeing-service-hub"]}


def start_new(person_id: str) -> Envelope:
    return new_message("step.start_new", "bench", {"actor": ACTOR, "person_id": person_id,
                                                   "step_type": STEP_TYPE}, subject=person_id)


def save(person_id: str, step_id: str, version: int, i: int) -> Envelope:
    return new_message("step.save", "bench", {
        "actor": ACTOR, "step_id": step_id, "expected_version": version,
        "values": {"covid_details": f"call {i}"}}, subject=person_id)


class Outcomes(TopicTail):
    """Notes when each causationid first arrives on workflow.events (O(1) each)."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap, (topics.WORKFLOW_EVENTS,))
        self.seen: dict[str, tuple[float, str, dict]] = {}

    def note(self, record: Any, now: float) -> None:
        body = json.loads(record.value)
        self.seen.setdefault(body.get("causationid"), (now, body["type"], body["data"]))

    async def wait(self, ids: list[str], timeout: float) -> list[tuple[float, str, dict]]:
        deadline = time.monotonic() + timeout
        pending = set(ids)
        while pending:
            pending = {i for i in pending if i not in self.seen}
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(ids) - len(pending)} of {len(ids)} outcomes")
            await asyncio.sleep(0.001 if len(ids) == 1 else 0.05)
        return [self.seen[i] for i in ids]


async def broker_run(bootstrap: str, dsn: str, n_steps: int, per_step: int,
                     paced_n: int = 200) -> tuple[float, list[float], list[float]]:
    async with Outcomes(bootstrap) as log:
        producer = SigningProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            # set-up: one started step per person
            people = [str(uuid.uuid4()) for _ in range(n_steps)]
            setup = [start_new(p) for p in people]
            for m in setup:
                await producer.send(topics.WORKFLOW_COMMANDS, m.to_bytes(), key=m.subject.encode())  # type: ignore[union-attr]
            await producer.flush()
            await log.wait([str(m.id) for m in setup], 300)
            step_ids = await _step_ids(dsn, people)
            # burst: every transition published at once, ordered per step by the key
            sent: dict[str, float] = {}
            messages = [save(p, step_ids[p], 2 + i, i) for i in range(per_step) for p in people]
            start = time.monotonic()
            for m in messages:
                sent[str(m.id)] = time.monotonic()
                await producer.send(topics.WORKFLOW_COMMANDS, m.to_bytes(), key=m.subject.encode())  # type: ignore[union-attr]
            await producer.flush()
            done = await log.wait(list(sent), 600)
            rejected = [d for d in done if d[1] != "step.saved"]
            assert not rejected, rejected[0]
            burst_seconds = max(d[0] for d in done) - start
            burst_latency = [log.seen[i][0] - t for i, t in sent.items()]
            # paced: one command at a time, unloaded latency
            paced: list[float] = []
            person = people[0]
            for i in range(paced_n):
                m = save(person, step_ids[person], 2 + per_step + i, i)
                t0 = time.monotonic()
                await producer.send_and_wait(topics.WORKFLOW_COMMANDS, m.to_bytes(), key=person.encode())
                [(at, kind, _)] = await log.wait([str(m.id)], 30)
                assert kind == "step.saved", kind
                paced.append(at - t0)
        finally:
            await producer.stop()
    return burst_seconds, burst_latency, paced


async def _step_ids(dsn: str, people: list[str]) -> dict[str, str]:
    """person → their step's id, read from the workflow schema."""
    pool = await db.open_pool(dsn, "workflow", 1, 1)
    try:
        rows = await pool.fetch("SELECT person_id, step_id FROM steps WHERE person_id = ANY($1::uuid[])", people)
    finally:
        await pool.close()
    return {str(r["person_id"]): str(r["step_id"]) for r in rows}


async def floor_run(dsn: str, n_steps: int, per_step: int, concurrency: int,
                    audited: bool = True) -> tuple[float, list[float]]:
    """The same transaction (inbox, load with version check, decide, save, outbox, audit) without Kafka."""
    with contextlib.nullcontext() if audited else mock.patch("shared.audit.record", _no_audit):
        return await _floor_run(dsn, n_steps, per_step, concurrency)


async def _no_audit(*_: object) -> None:
    """The bench's stand-in for the audit append, to measure what the append costs."""


async def _floor_run(dsn: str, n_steps: int, per_step: int, concurrency: int) -> tuple[float, list[float]]:
    packs = load_packs()
    pool = await db.open_pool(dsn, "workflow", 1, concurrency + 1)
    try:
        people = [str(uuid.uuid4()) for _ in range(n_steps)]
        for p in people:
            await handle_command(pool, packs, None, start_new(p))
        steps = await _step_ids(dsn, people)
        latency: list[float] = []

        async def worker(mine: list[str]) -> None:
            for i in range(per_step):
                for p in mine:
                    t0 = time.monotonic()
                    outcome = await handle_command(pool, packs, None, save(p, steps[p], 2 + i, i))
                    assert outcome == "handled", outcome
                    latency.append(time.monotonic() - t0)

        start = time.monotonic()
        await asyncio.gather(*(worker(people[k::concurrency]) for k in range(concurrency)))
        seconds = time.monotonic() - start
    finally:
        await pool.close()
    return seconds, latency


@dataclass(frozen=True)
class StepFigures:
    steps: int
    per_step: int
    burst_seconds: float
    burst_latency: list[float]
    paced: list[float]
    floor1_seconds: float
    floor1_latency: list[float]
    floor4_seconds: float
    floor4_latency: list[float]
    unaudited4_seconds: float
    unaudited4_latency: list[float]

    @property
    def transitions(self) -> int:
        return self.steps * self.per_step


async def measure(bootstrap: str, dsn: str, n_steps: int, per_step: int) -> StepFigures:
    """With the workflow service running: warm-up, the broker run, then the DB-only floors."""
    await broker_run(bootstrap, dsn, min(20, n_steps), min(5, per_step), 10)  # warm-up
    burst_s, burst_latency, paced = await broker_run(bootstrap, dsn, n_steps, per_step, min(200, 50 * per_step))
    floor1_s, floor1_latency = await floor_run(dsn, n_steps, per_step, 1)
    floor4_s, floor4_latency = await floor_run(dsn, n_steps, per_step, 4)
    bare4_s, bare4_latency = await floor_run(dsn, n_steps, per_step, 4, audited=False)
    return StepFigures(n_steps, per_step, burst_s, burst_latency, paced, floor1_s, floor1_latency,
                       floor4_s, floor4_latency, bare4_s, bare4_latency)


def report(f: StepFigures) -> None:
    def ms(values: list[float], p: float) -> float:
        return percentile(values, p) * 1000

    n = f.transitions
    print(f"\nstep transitions: {f.steps} steps x {f.per_step} step.save each = {n} transitions")
    print(f"{'path':<52}{'per second':>12}{'p50 ms':>10}{'p99 ms':>10}")
    for path, rate, latency in (
            ("broker + DB, burst (command in -> event out)", n / f.burst_seconds, f.burst_latency),
            ("broker + DB, paced one at a time", 1 / statistics.mean(f.paced), f.paced),
            ("DB-only floor, 1 at a time (same transaction)", n / f.floor1_seconds, f.floor1_latency),
            ("DB-only floor, 4 concurrent", n / f.floor4_seconds, f.floor4_latency),
            ("DB-only floor, 4 concurrent, no audit append", n / f.unaudited4_seconds, f.unaudited4_latency)):
        print(f"{path:<52}{rate:>12.0f}{ms(latency, 50):>10.1f}{ms(latency, 99):>10.1f}")
    print(f"broker + DB burst throughput is {100 * f.floor1_seconds / f.burst_seconds:.1f}% of the 1-at-a-time"
          f" floor, {100 * f.floor4_seconds / f.burst_seconds:.1f}% of the 4-concurrent floor")


async def main(n_steps: int, per_step: int) -> None:
    async with infrastructure("tessera-bench-steps-") as infra, running(SERVICES, infra.env(), infra.work):
        figures = await measure(infra.bootstrap, infra.dsn, n_steps, per_step)
    report(figures)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--per-step", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.steps, args.per_step))
