"""`python -m bench.recovery`: how long a service takes to handle messages again after it stops (issue #18 §3).

For each service measured, on the embedded broker and PostgreSQL: a cold start (spawn → /readyz 200), then
a kill -9 and a SIGTERM, each followed at once by a restart. A message is published while the service is
down; the figure is spawn → that message handled (its id in the service's inbox). Allocation reads four
topics, the scheduler one: the gap between them is what joining consumer groups one after another costs.
Notifications' probe is a stale overdue-request timer; documents' is a letter queued for print, rendered from a
person record a stand-in for referrals answers, so the figure includes the first PDF a new process renders.
"""

import argparse
import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import asyncpg

from bench.common import Infrastructure, infrastructure, percentile
from shared import topics
from shared.envelope import Envelope, new_message
from shared.testing import ServiceProcess, free_port, poll_until, publish


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


def _stale_overdue_timer() -> Envelope:
    now = datetime.now(UTC).isoformat()
    return new_message("timer.due", "tessera/scheduler", {"key": f"request-overdue:{uuid.uuid4()}", "due_at": now,
                                                          "owner": "notifications", "payload": {}, "fired_at": now})


def _queued_letter() -> Envelope:
    person_id = str(uuid.uuid4())
    return new_message("message.sent", "tessera/notifications", {
        "message_id": str(uuid.uuid4()), "person_id": person_id, "channel": "letter", "status": "queued_for_print",
        "reason": "pwt_added", "team_id": "wellbeing-service-hub", "template": "pwt_waiting_list", "attempts": 1,
        "team_name": "Wellbeing Service Hub", "team_number": "0100 000 0000", "provider": "print_queue"},
        subject=person_id)


PROBES = {"allocation": Probe(topics.SCHEDULER_DUE, _stale_tray_timer),
          "scheduler": Probe(topics.SCHEDULER_TIMERS, _far_timer),
          "notifications": Probe(topics.SCHEDULER_DUE, _stale_overdue_timer),
          "documents": Probe(topics.NOTIFICATIONS_EVENTS, _queued_letter)}


class _People(BaseHTTPRequestHandler):
    """Referrals' `GET /people/{id}`, answering the same made-up person for any id (the bearer token unchecked)."""

    def do_GET(self) -> None:  # noqa: N802  (http.server's name)
        body = json.dumps({"person_id": self.path.rsplit("/", 1)[-1], "first_name": "Bench", "last_name": "Person",
                           "date_of_birth": "1950-01-01",
                           "address": {"line1": "1 High Street", "town": "Town", "postcode": "AB1 2CD"}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class Referrals:
    """A stand-in for the referrals service's person reads on a free port, which can go away and come back on it
    (the fault suite kills referrals too, often within seconds of the service measured)."""

    def __init__(self) -> None:
        self.port = free_port()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        if self._server is None:
            self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _People)
            threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@contextlib.contextmanager
def _referrals() -> Iterator[Referrals]:
    referrals = Referrals()
    referrals.up()
    try:
        yield referrals
    finally:
        referrals.down()


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


async def measure(service: str, rounds: int, env: dict[str, str], timeout: float = 240,
                  peer_down: float = 0.0) -> dict[str, list[float]]:
    """Seconds from spawn to ready (cold) and to a message handled after kill -9 / SIGTERM; with `peer_down`, the
    referrals stand-in goes away with each stop and answers again that many seconds after the spawn."""
    figures: dict[str, list[float]] = {"cold start → ready": [], "kill -9 → handled": [], "SIGTERM → handled": []}
    async with infrastructure("tessera-recovery-") as infra:
        pool = await asyncpg.create_pool(infra.dsn, min_size=1, max_size=2)
        with _referrals() as referrals:
            process = ServiceProcess(service, infra.env(**{"REFERRALS_URL": referrals.url, **env}), infra.work)
            try:
                started = time.monotonic()
                process.start()
                await process.ready(timeout)
                figures["cold start → ready"].append(time.monotonic() - started)
                await _probe(infra, pool, service, started, timeout)
                for _ in range(rounds):
                    for fault, stop in (("kill -9 → handled", process.kill), ("SIGTERM → handled", process.stop)):
                        stop()
                        if peer_down:
                            referrals.down()
                        started = time.monotonic()
                        process.start()
                        if peer_down:
                            asyncio.get_running_loop().call_later(peer_down, referrals.up)
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
    parser.add_argument("--all-partitions", action="store_true",
                        help="no group: the service reads every partition itself (KAFKA_ASSIGNMENT=all, make run)")
    parser.add_argument("--peer-down", type=float, default=0.0, metavar="SECONDS",
                        help="referrals (a stand-in) restarts too: it answers again this long after the spawn")
    args = parser.parse_args()
    env = {"KAFKA_GROUP_INSTANCE_ID": "bench-0"} if args.static else {}
    if args.all_partitions:
        env["KAFKA_ASSIGNMENT"] = "all"
    print(f"{'service':<12} {'measure':<22} {'min':>7} {'median':>7} {'max':>7}  (seconds, {args.rounds} rounds)")
    for service in args.services.split(","):
        for name, values in asyncio.run(measure(service, args.rounds, env, peer_down=args.peer_down)).items():
            print(f"{service:<12} {name:<22} {min(values):7.1f} {percentile(values, 50):7.1f} {max(values):7.1f}")


if __name__ == "__main__":
    main()
