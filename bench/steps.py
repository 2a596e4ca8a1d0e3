"""Step transitions through the broker and database, beside the same-run DB-only floor.

`python -m bench.steps [--steps S] [--per-step K]`: starts its own embedded broker and PostgreSQL
and the workflow service as a process; S steps each get K `step.save` commands with
`expected_version` (inbox, version check, decide, save, outbox in one transaction). Prints
transitions/s (burst, command in → event out) and p50/p99 latency (burst and paced), then the
same transaction called directly on the database, without Kafka (the floor), and, alternated, that floor
with and without the audit append (the difference is what the audit costs; issue #18 §2 wants the
audited floor at 0.9x the unaudited or better).

Signing (issue #21): there is deliberately no switch that turns verification off in a service, so the broker run
is always signed. `signed_floor` measures what signing adds to a transition in process, on the same floor: each
command signed as the desk signs it, verified as the workflow's SignatureMiddleware does, handled, and its
outcome signed as the outbox relay signs it; beside the same run without those three calls.
"""

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from bench.common import infrastructure, percentile, running
from services.workflow.handlers import handle_command
from services.workflow.pack import load_packs
from shared import db, signing, topics
from shared.envelope import Envelope, decode, new_message
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


@dataclass(frozen=True)
class Keys:
    """The desk's key (signs commands), the workflow's (signs what it publishes) and the public keys (verify)."""

    desk: signing.Signer
    workflow: signing.Signer
    verifier: signing.Verifier

    @classmethod
    def made(cls) -> "Keys":
        keys = Path(tempfile.mkdtemp(prefix="tessera-bench-keys-")) / "keys"
        signing.make_keys(keys, ("web", "workflow"))
        return cls(signing.load_signer(keys, "web"), signing.load_signer(keys, "workflow"),
                   signing.load_verifier(keys))

    def verified_command(self, envelope: Envelope) -> Envelope:
        """Signed as the desk, then verified as the consumer's middleware does before the handler runs."""
        value = self.desk.signed(envelope.to_bytes(), with_actor=True)
        self.verifier.verify(json.loads(value), topics.WORKFLOW_COMMANDS, time.time())
        return decode(value)


def as_desk(envelope: Envelope) -> Envelope:
    """The same command as the desk sends it: its source is the producer that signs it."""
    return new_message(envelope.type, signing.issuer_of("web"), envelope.data, subject=envelope.subject)


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
    with contextlib.nullcontext() if audited else mock.patch("shared.audit.entries_for", _no_audit):
        return await _floor_run(dsn, n_steps, per_step, concurrency)


def _no_audit(*_: object) -> list[object]:
    """The bench's stand-in for the audit entries, to measure what the append costs."""
    return []


async def _floor_run(dsn: str, n_steps: int, per_step: int, concurrency: int,
                     keys: Keys | None = None) -> tuple[float, list[float]]:
    packs = load_packs()
    pool = await db.open_pool(dsn, "workflow", 1, concurrency + 1)
    try:
        people = [str(uuid.uuid4()) for _ in range(n_steps)]
        for p in people:
            await handle_command(pool, packs, None, start_new(p))
        steps = await _step_ids(dsn, people)
        latency: list[float] = []
        # what the relay signs for each transition: its step.saved, as the service writes it to the outbox
        saved = new_message("step.saved", signing.issuer_of("workflow"), {
            "step_id": str(uuid.uuid4()), "person_id": people[0], "actor": ACTOR["worker_id"], "version": 3,
            "fields": ["covid_details"], "changed_fields": ["covid_details"], "completed_sections": []}).to_bytes()

        async def worker(mine: list[str]) -> None:
            for i in range(per_step):
                for p in mine:
                    t0 = time.monotonic()
                    command = as_desk(save(p, steps[p], 2 + i, i))
                    if keys is not None:
                        command = keys.verified_command(command)
                    outcome = await handle_command(pool, packs, None, command)
                    if keys is not None:
                        keys.workflow.signed(saved)
                    assert outcome == "handled", outcome
                    latency.append(time.monotonic() - t0)

        start = time.monotonic()
        await asyncio.gather(*(worker(people[k::concurrency]) for k in range(concurrency)))
        seconds = time.monotonic() - start
    finally:
        await pool.close()
    return seconds, latency


async def audit_floor(dsn: str, n_steps: int, per_step: int, rounds: int = 3) -> tuple[float, float]:
    """Transitions/s on the floor, 4 at a time, with the audit append and without; alternated `rounds` times (the
    best of each), so that a busy machine slows both alike (one pair of runs moved from 0.75x to 0.92x)."""
    best = {True: 0.0, False: 0.0}
    for _ in range(rounds):
        for audited in (True, False):
            seconds, _ = await floor_run(dsn, n_steps, per_step, 4, audited=audited)
            best[audited] = max(best[audited], n_steps * per_step / seconds)
    return best[True], best[False]


async def signed_floor(dsn: str, n_steps: int, per_step: int, concurrency: int = 4,
                       rounds: int = 2) -> tuple[float, float]:
    """Transitions/s on the floor with every command signed and verified and every outcome signed, and without;
    alternated `rounds` times (the best of each), so that a busy machine slows both alike."""
    keys = Keys.made()
    best = {True: 0.0, False: 0.0}
    for _ in range(rounds):
        for signed in (False, True):
            seconds, _ = await _floor_run(dsn, n_steps, per_step, concurrency, keys if signed else None)
            best[signed] = max(best[signed], n_steps * per_step / seconds)
    return best[True], best[False]


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

    @property
    def transitions(self) -> int:
        return self.steps * self.per_step


async def measure(bootstrap: str, dsn: str, n_steps: int, per_step: int) -> StepFigures:
    """With the workflow service running: warm-up, the broker run, then the DB-only floors."""
    await broker_run(bootstrap, dsn, min(20, n_steps), min(5, per_step), 10)  # warm-up
    burst_s, burst_latency, paced = await broker_run(bootstrap, dsn, n_steps, per_step, min(200, 50 * per_step))
    floor1_s, floor1_latency = await floor_run(dsn, n_steps, per_step, 1)
    floor4_s, floor4_latency = await floor_run(dsn, n_steps, per_step, 4)
    return StepFigures(n_steps, per_step, burst_s, burst_latency, paced, floor1_s, floor1_latency,
                       floor4_s, floor4_latency)


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
            ("DB-only floor, 4 concurrent", n / f.floor4_seconds, f.floor4_latency)):
        print(f"{path:<52}{rate:>12.0f}{ms(latency, 50):>10.1f}{ms(latency, 99):>10.1f}")
    print(f"broker + DB burst throughput is {100 * f.floor1_seconds / f.burst_seconds:.1f}% of the 1-at-a-time"
          f" floor, {100 * f.floor4_seconds / f.burst_seconds:.1f}% of the 4-concurrent floor")


async def two_replicas_rate(bootstrap: str, dsn: str, env: dict[str, str], work: Path, n_steps: int,
                            per_step: int) -> tuple[float, float]:
    """Burst transitions/s with one workflow replica, then with a second one started beside it (same group: the
    command topic's partitions split between them), on the same broker and database, one after the other."""
    one, _, _ = await broker_run(bootstrap, dsn, n_steps, per_step, 1)
    second_dir = work / "workflow-replica-2"
    second_dir.mkdir(exist_ok=True)
    async with running(SERVICES, env, second_dir):
        await broker_run(bootstrap, dsn, min(20, n_steps), min(5, per_step), 1)  # warm-up after the rebalance
        two, _, _ = await broker_run(bootstrap, dsn, n_steps, per_step, 1)
    transitions = n_steps * per_step
    return transitions / two, transitions / one


def report_audit(audited: float, bare: float) -> None:
    print(f"step transitions/s in process, 4 concurrent: {audited:.0f} with the audit append, {bare:.0f} without"
          f" ({audited / bare:.2f}x; target >= 0.9x)")


def report_signing(signed: float, plain: float) -> None:
    print(f"step transitions/s in process, 4 concurrent: {signed:.0f} signed and verified, {plain:.0f} without"
          f" ({signed / plain:.2f}x; target >= 0.9x)")


async def main(n_steps: int, per_step: int, signing_only: bool) -> None:
    if signing_only:  # the floor needs only PostgreSQL and the workflow schema, made by the service at start
        async with infrastructure("tessera-bench-steps-") as infra, running(SERVICES, infra.env(), infra.work):
            report_signing(*await signed_floor(infra.dsn, n_steps, per_step))
        return
    async with infrastructure("tessera-bench-steps-") as infra, running(SERVICES, infra.env(), infra.work):
        figures = await measure(infra.bootstrap, infra.dsn, n_steps, per_step)
        audit = await audit_floor(infra.dsn, n_steps, per_step)
        with_signing = await signed_floor(infra.dsn, n_steps, per_step)
        two, one = await two_replicas_rate(infra.bootstrap, infra.dsn, infra.env(), infra.work, n_steps, per_step)
    report(figures)
    report_audit(*audit)
    report_signing(*with_signing)
    print(f"step transitions/s in a burst, 2 workflow replicas: {two:.0f}; 1 replica: {one:.0f} ({two / one:.2f}x)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--per-step", type=int, default=10)
    parser.add_argument("--signing-only", action="store_true", help="only the signed and unsigned floors")
    args = parser.parse_args()
    asyncio.run(main(args.steps, args.per_step, args.signing_only))
