"""Tessera desk at a team's size (issue #18 §5): `python -m bench.desk [--steps N] [--entries E] [--requests R]
[--against DIR]`.

Loads N open steps on one team (COPY: each for its own person, whom referrals knows by name) and E entries on the
team's Planned Work Tray, sends one referral through intake for the person page, then, signed in to the desk as
the team's manager:
  - Team work (`GET /teams/{id}/work` on the desk: the first page of each list, sorted by priority, named) p50/p99,
    beside workflow's own read of that page alone (`GET /teams/{id}/work`, bearer token);
  - the person page (`GET /people/{id}`) p50/p99, beside referrals' read of the person's record alone.
Prints figures, asserts nothing. Starts the embedded broker and PostgreSQL and the six services it reads.

`--against DIR` also runs a desk from another checkout (DIR: main, say) beside this one, against the same services
and data, and reads each page from both in turns, with the service's read alone in each turn: on a machine whose
load comes and goes, a before and an after run one after the other measure the load as much as the desk.
"""

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

from bench import trays
from bench.common import Infrastructure, infrastructure, percentile
from shared import topics
from shared.testing import EventLog, ServiceProcess, free_port, publish, service_auth
from tests.factories import referral_message, unique_referral

TEAM = "adult-front-door"
MANAGER = "tm"  # the demo Team Manager of adult-front-door: runs its tray, so the person page reads it too
STEP_TYPES = ("Adult Contact", "Pause and Go", "Adult Safeguarding Triage", "Supported Self Assessment")
READS = ("referrals", "workflow", "allocation", "notifications", "documents", "clocks")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class DeskFigures:
    team_work: list[float]
    team_work_read: list[float]
    person_page: list[float]
    person_read: list[float]


class DeskFrom(ServiceProcess):
    """The desk run from another checkout, its own code against the same services (`--against`)."""

    def __init__(self, code: Path, env: dict[str, str], log_dir: Path) -> None:
        log_dir.mkdir(exist_ok=True)
        super().__init__("web", {**env, "PYTHONPATH": str(code)}, log_dir)
        self.code = code

    def start(self) -> None:
        log = open(self._log_path, "ab")  # noqa: SIM115
        self.process = subprocess.Popen([sys.executable, "-m", "services.web"], cwd=self.code,
                                        env={**os.environ, **self._env}, stdout=log, stderr=subprocess.STDOUT)


@asynccontextmanager
async def desk_services(env: dict[str, str], work: Path,
                        against: Path | None = None) -> AsyncIterator[dict[str, ServiceProcess]]:
    """The desk and the six services it reads, each told where the others listen, ready on entry; with
    `against`, a second desk ("against") from that checkout."""
    ports = {name: free_port() for name in (*READS, "web")}
    urls = {f"{name.upper()}_URL": f"http://127.0.0.1:{port}" for name, port in ports.items() if name != "web"}
    desk_env = {**env, **urls, "TESSERA_ENVIRONMENT": "development"}
    services = {name: ServiceProcess(name, desk_env, work, port=port) for name, port in ports.items()}
    if against is not None:
        services["against"] = DeskFrom(against, desk_env, work / "against")
    try:
        for service in services.values():
            service.start()
        for service in services.values():
            await service.ready(180)
        yield services
    finally:
        for service in services.values():
            service.stop()


async def load_open_steps(dsn: str, n: int) -> None:
    """N open steps on the team, one workflow and one named person each, incoming, incomplete and future."""
    now = datetime.now(UTC)
    people, workflows, steps = [], [], []
    for i in range(n):
        person, workflow, step = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        record = json.dumps({"first_name": f"Benchfirst{i}", "last_name": f"Benchlast{i}"})
        people.append((person, record, now, "bench", now, "bench"))
        workflows.append((workflow, person, json.dumps({"origin": "bench"}), now, "bench"))
        created = now - timedelta(minutes=i)
        state = ("incoming", "incomplete", "returned", "future")[i % 4]
        steps.append((step, workflow, person, STEP_TYPES[i % len(STEP_TYPES)], 1, state, "team", TEAM,
                      ("normal", "high", "urgent")[i % 3], (now + timedelta(days=i % 90)).date(), "{}",
                      created, "bench", created, "bench"))
    referrals = await asyncpg.connect(dsn, server_settings={"search_path": "referrals"})
    workflow_db = await asyncpg.connect(dsn, server_settings={"search_path": "workflow"})
    try:
        await referrals.copy_records_to_table("people", records=people, columns=[
            "person_id", "record", "created_at", "created_by", "updated_at", "updated_by"])
        await workflow_db.copy_records_to_table("workflows", records=workflows, columns=[
            "workflow_id", "person_id", "origin", "started_at", "started_by"])
        await workflow_db.copy_records_to_table("steps", records=steps, columns=[
            "step_id", "workflow_id", "person_id", "step_type", "pack_version", "state", "assignee_kind",
            "assignee_id", "priority", "due_date", "provenance", "created_at", "created_by", "updated_at",
            "updated_by"])
        await workflow_db.execute("ANALYZE steps")
        await referrals.execute("ANALYZE people")
    finally:
        await referrals.close()
        await workflow_db.close()


async def referred_person(bootstrap: str) -> str:
    """One assessment referral through intake: its person, whose first step is in the team's work."""
    data = unique_referral(category="assessment")
    envelope = referral_message(data)
    async with EventLog(bootstrap, [topics.REFERRALS_EVENTS, topics.WORKFLOW_EVENTS]) as log:
        await publish(bootstrap, topics.REFERRALS_INTAKE, [(data["referral_id"], envelope.to_bytes())])
        [accepted] = await log.wait_for(lambda s: s.caused_by(envelope.id) and s.type == "referral.accepted", 120)
        await log.wait_for(lambda s: s.type == "step.created"
                           and s.data.get("workflow_id") == accepted.data["workflow_id"], 120)
    return str(accepted.data["person_id"])


async def signed_in(desk_url: str, user: str) -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=desk_url, follow_redirects=True, timeout=60)
    token = CSRF.search((await http.get("/login")).text)
    assert token, "the desk's sign-in page has no CSRF token"
    signed = await http.post("/login", data={"username": user, "password": "tessera-demo",
                                             "csrf_token": token.group(1), "next": "/work"})
    assert signed.url.path == "/work", f"{user} could not sign in to the desk"
    return http


async def latencies(http: httpx.AsyncClient, path: str, requests: int, params: dict[str, str] | None = None
                    ) -> list[float]:
    """Milliseconds of `requests` GETs of `path` after one to warm; each must answer 200."""
    samples: list[float] = []
    for _ in range(requests + 1):
        started = time.perf_counter()
        response = await http.get(path, params=params)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, f"{path}: {response.status_code} {said(response)}"
    return samples[1:]


def said(response: httpx.Response) -> str:
    """The desk's own words on an error page (which service could not be read), not the whole page."""
    found = re.search(r'<p class="govuk-body">([^<]*)</p>', response.text)
    return found.group(1).strip() if found else response.text[:200]


async def measure(infra: Infrastructure, n: int, entries: int, requests: int) -> DeskFigures:
    async with desk_services(infra.env(), infra.work) as services:
        await load_open_steps(infra.dsn, n)
        await trays.load(infra.dsn, entries, TEAM)
        person_id = await referred_person(infra.bootstrap)
        desk = await signed_in(services["web"].url, MANAGER)
        try:
            async with httpx.AsyncClient(auth=service_auth(), timeout=60) as reads:
                team_work = await latencies(desk, f"/teams/{TEAM}/work", requests)
                team_read = await latencies(reads, f"{services['workflow'].url}/teams/{TEAM}/work", requests,
                                            {"sort": "priority", "size": "50"})
                page = await latencies(desk, f"/people/{person_id}", requests)
                record = await latencies(reads, f"{services['referrals'].url}/people/{person_id}", requests)
        except AssertionError as failed:  # the desk's log says which read failed and how (ids only)
            tail = "\n".join(services["web"].log_text().splitlines()[-15:])
            raise AssertionError(f"{failed}\nthe desk's log ends:\n{tail}") from None
        finally:
            await desk.aclose()
    return DeskFigures(team_work, team_read, page, record)


async def one_read(http: httpx.AsyncClient, path: str, params: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    response = await http.get(path, params=params)
    assert response.status_code == 200, f"{path}: {response.status_code}"
    return (time.perf_counter() - started) * 1000


async def in_turns(reads: dict[str, Callable[[], Awaitable[float]]], requests: int) -> dict[str, list[float]]:
    """Milliseconds of each read, once a turn for `requests` turns after one to warm, the order reversed every
    other turn: what the machine's load does in a turn falls on all of them."""
    samples: dict[str, list[float]] = {name: [] for name in reads}
    for turn in range(requests + 1):
        for name in (list(reads) if turn % 2 else list(reads)[::-1]):
            took = await reads[name]()
            if turn:
                samples[name].append(took)
    return samples


async def measure_against(infra: Infrastructure, n: int, entries: int, requests: int,
                          other: Path) -> dict[str, list[float]]:
    """Each page from this desk and from the one in `other`, in turns, with the service's read alone."""
    async with desk_services(infra.env(), infra.work, other) as services:
        await load_open_steps(infra.dsn, n)
        await trays.load(infra.dsn, entries, TEAM)
        person_id = await referred_person(infra.bootstrap)
        this, that = await signed_in(services["web"].url, MANAGER), await signed_in(services["against"].url, MANAGER)
        try:
            async with httpx.AsyncClient(auth=service_auth(), timeout=60) as reads:
                work, person = f"/teams/{TEAM}/work", f"/people/{person_id}"
                listing = {"sort": "priority", "size": "50"}
                figures = await in_turns({
                    "Team work page (this desk)": lambda: one_read(this, work),
                    f"Team work page ({other.name})": lambda: one_read(that, work),
                    "  workflow's read of that page alone": lambda: one_read(
                        reads, f"{services['workflow'].url}{work}", listing)}, requests)
                figures |= await in_turns({
                    "person page (this desk)": lambda: one_read(this, person),
                    f"person page ({other.name})": lambda: one_read(that, person),
                    "  referrals' read of the person alone": lambda: one_read(
                        reads, f"{services['referrals'].url}{person}")}, requests)
        finally:
            await this.aclose()
            await that.aclose()
    return figures


def report(n: int, f: DeskFigures) -> None:
    print(f"{'desk at ' + format(n, ',') + ' open steps on the team':44} {'p50 ms':>8} {'p99 ms':>8}")
    for name, samples in (("Team work page (desk)", f.team_work), ("  workflow's read of that page alone",
                          f.team_work_read), ("person page (desk)", f.person_page),
                          ("  referrals' read of the person alone", f.person_read)):
        print(f"{name:44} {statistics.median(samples):>8.1f} {percentile(samples, 99):>8.1f}")


async def main(n: int, entries: int, requests: int, against: Path | None) -> None:
    async with infrastructure("tessera-bench-desk-") as infra:
        if against is None:
            report(n, await measure(infra, n, entries, requests))
            return
        figures = await measure_against(infra, n, entries, requests, against)
    print(f"{'desks at ' + format(n, ',') + ' open steps, in turns':44} {'p50 ms':>8} {'p99 ms':>8}")
    for name, samples in figures.items():
        print(f"{name:44} {statistics.median(samples):>8.1f} {percentile(samples, 99):>8.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=5_000)
    parser.add_argument("--entries", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--against", type=Path, help="another checkout whose desk runs beside this one")
    args = parser.parse_args()
    asyncio.run(main(args.steps, args.entries, args.requests, args.against and args.against.resolve()))
