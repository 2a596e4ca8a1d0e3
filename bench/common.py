"""What the benchmarks share: the embedded broker and PostgreSQL, service processes, percentiles, memory."""

import math
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

from shared import embedded
from shared.broker import ensure_topics
from shared.settings import Settings
from shared.testing import ServiceProcess, free_port, use_development_keys

# no service listens here: where a benchmark does not run a service, its readers find nobody (`running` points
# them at the services it does run: workflow reads referrals for every referral it starts)
NOBODY = "http://127.0.0.1:9"


def percentile(values: Iterable[float], p: float) -> float:
    """The p-th percentile (0-100) by rank, in the values' unit; NaN when there are none."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


@dataclass(frozen=True)
class Infrastructure:
    """One embedded broker and PostgreSQL, and the folder holding their data and the services' logs."""

    bootstrap: str
    dsn: str
    work: Path
    broker: Popen[bytes]

    @property
    def postgres_pid(self) -> int:
        return int((self.work / "pgdata" / "postmaster.pid").read_text().split()[0])

    def env(self, **extra: str) -> dict[str, str]:
        return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "DATABASE_URL": self.dsn, "LOG_LEVEL": "WARNING",
                "OUTBOX_POLL_SECONDS": "0.2", "REFERRALS_URL": NOBODY, "WORKFLOW_URL": NOBODY, **extra}


@asynccontextmanager
async def infrastructure(prefix: str = "tessera-bench-") -> AsyncIterator[Infrastructure]:
    """Start the broker and PostgreSQL on free ports; the folder is removed unless the run failed."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    use_development_keys(work / "keys")
    broker = embedded.start_broker(free_port(), work / "broker.log")
    database = embedded.Database(work / "pgdata")
    bootstrap = broker.args[-1].removeprefix("tcp://")
    failed = True
    try:
        await ensure_topics(Settings(kafka_bootstrap_servers=bootstrap))
        yield Infrastructure(bootstrap, database.dsn, work, broker)
        failed = False
    finally:
        embedded.stop_process(broker)
        database.stop()
        if failed:
            print(f"benchmark failed: logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


@asynccontextmanager
async def running(names: Iterable[str], env: dict[str, str], work: Path,
                  timeout: float = 120) -> AsyncIterator[dict[str, ServiceProcess]]:
    """Services as their own processes, each told where the others listen, ready (/readyz) on entry, stopped on
    exit."""
    ports = {name: free_port() for name in names}
    urls = {f"{name.upper()}_URL": f"http://127.0.0.1:{port}" for name, port in ports.items()}
    services = {name: ServiceProcess(name, {**env, **urls}, work, port) for name, port in ports.items()}
    try:
        for service in services.values():
            service.start()
        for service in services.values():
            await service.ready(timeout)
        yield services
    finally:
        for service in services.values():
            service.stop()


def _proc_kib(path: Path, field: str) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def rss_mib(pid: int) -> float:
    """Resident set size of one process (/proc/<pid>/status VmRSS)."""
    return _proc_kib(Path(f"/proc/{pid}/status"), "VmRSS") / 1024


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid …: comm may hold spaces, so split after its closing parenthesis
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def tree_pss_mib(pid: int) -> float:
    """Memory of a process and its children, shared pages counted once (sum of PSS).

    PostgreSQL's backends each map the same shared buffers, so summing their RSS would count it many times.
    """
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            total += _proc_kib(Path(f"/proc/{current}/smaps_rollup"), "Pss")
        except OSError:
            continue
        pending += _children(current)
    return total / 1024
