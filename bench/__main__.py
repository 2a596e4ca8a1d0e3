"""`python -m bench [--quick] [--timers N]`: every benchmark in one run, as one table.

One embedded broker and PostgreSQL serve the whole run; each section starts the services it
drives as their own processes, measures, notes their memory, and stops them, so no section's
consumers load another's. Every figure stands beside a baseline measured in the same run.
The table is printed and written to bench/results/latest.md and latest.json (or to --out).
"""

import argparse
import asyncio
import json
import math
import os
import platform
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from bench import clocks, desk, intake, relay, signing, steps, timers, trays
from bench.common import Infrastructure, infrastructure, percentile, rss_mib, running, tree_pss_mib
from shared.testing import ServiceProcess

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Sizes:
    referrals: int
    paced: int
    steps: int
    per_step: int
    timers: int
    window: int
    window_seconds: float
    entries: int
    requests: int
    sets: int
    relay_rows: int
    open_steps: int
    clocks: int
    clock_teams: int
    clock_window: int
    entries_per_team: int
    gap: float = 0.02


FULL = Sizes(referrals=2000, paced=200, steps=200, per_step=10, timers=1_000_000, window=20_000,
             window_seconds=10, entries=50_000, requests=200, sets=2000, relay_rows=20_000, open_steps=5_000,
             clocks=100_000, clock_teams=100, clock_window=2_000, entries_per_team=300)
QUICK = Sizes(referrals=100, paced=30, steps=20, per_step=3, timers=3_000, window=300, window_seconds=2,
              entries=2_000, requests=30, sets=300, relay_rows=2_000, open_steps=300, clocks=2_000, clock_teams=20,
              clock_window=100, entries_per_team=50)


@dataclass(frozen=True)
class Row:
    key: str
    figure: str
    unit: str
    value: float
    baseline: float
    baseline_is: str


@dataclass
class Run:
    """What the sections found: rows, how long each took, memory of the broker and PostgreSQL."""

    infra: Infrastructure
    sizes: Sizes
    rows: list[Row] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    broker_idle: float = 0.0
    postgres_idle: float = 0.0
    broker_peak: float = 0.0
    postgres_peak: float = 0.0

    def note_infra_memory(self) -> None:
        self.broker_peak = max(self.broker_peak, rss_mib(self.infra.broker.pid))
        self.postgres_peak = max(self.postgres_peak, tree_pss_mib(self.infra.postgres_pid))

    def note_service_memory(self, services: dict[str, ServiceProcess], idle: dict[str, float]) -> None:
        """RSS of each service now, after its load, beside its RSS when it had just started."""
        self.note_infra_memory()
        for name, service in services.items():
            self.rows.append(Row(f"rss_{name}", f"RSS of the {name} service after its load", "MiB",
                                 process_rss(service), idle[name], "the same process idle, just started"))


def process_rss(service: ServiceProcess) -> float:
    assert service.process is not None
    return rss_mib(service.process.pid)


def idle_rss(services: dict[str, ServiceProcess]) -> dict[str, float]:
    return {name: process_rss(service) for name, service in services.items()}


def ms(values: list[float], p: float) -> float:
    return percentile(values, p) * 1000


async def tray_section(run: Run) -> None:
    infra, sizes = run.infra, run.sizes
    async with running(trays.SERVICES, infra.env(), infra.work) as services:
        idle = idle_rss(services)
        await trays.load(infra.dsn, sizes.entries)
        http, sql = await trays.default_query(services["allocation"].url, infra.dsn, sizes.requests)
        run.rows.append(Row(
            "tray_p99", f"tray query p99 at {sizes.entries:,} entries (GET /teams/{{id}}/tray, default sort, "
            f"first 100; {sizes.requests} requests)", "ms", percentile(http, 99), percentile(sql, 99),
            "the same query's SQL straight on PostgreSQL"))
        run.note_service_memory(services, idle)


async def desk_section(run: Run) -> None:
    """Issue #18 §5: the desk's Team work and person page with a team's open steps, each beside the read of the
    service it shows alone (the desk adds its session, the other reads, names and the page)."""
    infra, sizes = run.infra, run.sizes
    tray = min(sizes.entries, 1_000)  # what the desk once read whole for every person page of a tray's manager
    got = await desk.measure(infra, sizes.open_steps, tray, sizes.requests)
    on_team = f"{sizes.open_steps:,} open steps on the team, {tray:,} on its tray; {sizes.requests} requests"
    run.rows.append(Row(
        "desk_team_work_p99", f"Team work page p99 on the desk ({on_team}; first page of each list, named)", "ms",
        percentile(got.team_work, 99), percentile(got.team_work_read, 99),
        "workflow's read of the same page alone (GET /teams/{id}/work)"))
    run.rows.append(Row(
        "desk_person_page_p99", f"person page p99 on the desk, as the team's manager ({on_team})", "ms",
        percentile(got.person_page, 99), percentile(got.person_read, 99),
        "referrals' read of the person's record alone (GET /people/{id})"))
    run.note_infra_memory()


async def timer_section(run: Run) -> None:
    infra, sizes = run.infra, run.sizes
    dsn = await timers.own_database(infra.dsn)
    async with running(("scheduler",), timers.scheduler_env(infra.bootstrap, dsn, 0.2), infra.work) as services:
        idle = idle_rss(services)
        conn = await timers.connect(dsn)
        try:
            alone, _ = await timers.window_lateness(conn, infra.bootstrap, sizes.window, sizes.window,
                                                    sizes.window_seconds)
            among, load_seconds = await timers.window_lateness(conn, infra.bootstrap, sizes.timers, sizes.window,
                                                               sizes.window_seconds)
        finally:
            await conn.close()
        run.seconds[f"COPY of {sizes.timers:,} timers"] = load_seconds
        window = f"{sizes.window:,} due over {sizes.window_seconds:g}s"
        for p, name in ((50, "p50"), (99, "p99"), (100, "max")):
            run.rows.append(Row(
                f"timer_lateness_{name}", f"timer lateness {name} at {sizes.timers:,} timers ({window})", "ms",
                ms(among, p), ms(alone, p), f"the same {sizes.window:,} timers with no others"))
        run.note_service_memory(services, idle)
    batched = await timers.timer_set_rate(infra.bootstrap, infra.dsn, sizes.sets, infra.work, 100)
    one_each = await timers.timer_set_rate(infra.bootstrap, infra.dsn, sizes.sets, infra.work, 1)
    run.rows.append(Row(
        "timer_set_rate", f"timer.set handled/s ({sizes.sets:,} signed, published at once → stored), "
        "a transaction per fetch and partition", "per s", batched, one_each,
        "the same, a transaction per message (CONSUMER_BATCH_SIZE=1)"))


async def intake_and_steps_section(run: Run) -> None:
    infra, sizes = run.infra, run.sizes
    async with running(intake.SERVICES, infra.env(), infra.work) as services:
        idle = idle_rss(services)
        got = await intake.measure(infra.bootstrap, sizes.referrals, sizes.paced, sizes.gap)
        run.rows.append(Row(
            "intake_rate", f"intake referrals/s ({sizes.referrals:,} in a burst, publish → referral.accepted)",
            "per s", sizes.referrals / got.accepted_seconds, sizes.referrals / got.raw_seconds,
            "raw aiokafka produce → consume, same broker"))
        run.rows.append(Row(
            "intake_p99", f"intake p99 publish → referral.accepted ({sizes.paced} paced, "
            f"one per {sizes.gap * 1000:g} ms)", "ms", ms(got.to_accepted, 99), ms(got.raw_latency, 99),
            "raw aiokafka produce → consume p99"))
        figures = await steps.measure(infra.bootstrap, infra.dsn, sizes.steps, sizes.per_step)
        n = figures.transitions
        run.rows.append(Row(
            "step_rate", f"step transitions/s ({sizes.steps} steps × {sizes.per_step} step.save, "
            "command → step.saved)", "per s", n / figures.burst_seconds, n / figures.floor1_seconds,
            "DB floor: the same transition's transaction, no Kafka, 1 at a time"))
        run.rows.append(Row(
            "step_rate_vs_concurrent_floor", "step transitions/s (as above)", "per s",
            n / figures.burst_seconds, n / figures.floor4_seconds, "DB floor, 4 transactions at a time"))
        audited, bare = await steps.audit_floor(infra.dsn, sizes.steps, sizes.per_step)
        run.rows.append(Row(
            "audit_cost", "step transaction with its audit append, 4 at a time, no Kafka (best of 3, alternated;"
            " target ≥ 0.9× the reference)", "per s", audited, bare, "the same without the audit append"))
        signed, plain = await steps.signed_floor(infra.dsn, sizes.steps, sizes.per_step)
        run.rows.append(Row(
            "step_rate_signed", "step transitions/s, in process, 4 at a time: command signed by the desk and"
            " verified, outcome signed (issue #21; target ≥ 0.9× the reference)", "per s", signed, plain,
            "the same transitions without signing or verifying"))
        two, one = await steps.two_replicas_rate(infra.bootstrap, infra.dsn, infra.env(), infra.work, sizes.steps,
                                                 sizes.per_step)
        run.rows.append(Row(
            "step_rate_two_replicas", "step transitions/s in a burst with 2 workflow replicas (one group)", "per s",
            two, one, "the same burst with 1 replica, just before"))
        run.note_service_memory(services, idle)


async def signing_section(run: Run) -> None:
    signed, plain = signing.per_message_us(200 if run.sizes is QUICK else 2000)
    run.rows.append(Row("sign_verify_us", "sign + verify of one desk command (Ed25519, in process); the step and"
                        " intake rows run with every message signed and verified", "µs", signed, plain,
                        "JSON decode + encode of the same message"))


async def relay_section(run: Run) -> None:
    rows = run.sizes.relay_rows
    relayed = await relay.relay_rate(run.infra.bootstrap, run.infra.dsn, rows)
    raw = await relay.raw_rate(run.infra.bootstrap, rows)
    run.rows.append(Row(
        "relay_rate", f"outbox rows published and marked/s by the relay ({rows:,} waiting, rounds of 500, each "
        "round marked while the next is published)", "per s", relayed, raw,
        "a bare aiokafka producer sending the same values, same broker"))


async def clock_section(run: Run) -> None:
    sizes = run.sizes
    f = await clocks.measure(run.infra, sizes.clocks, sizes.clock_teams, sizes.clock_window, sizes.entries_per_team,
                             sizes.requests)
    run.seconds[f"COPY of {sizes.clocks:,} clocks"] = f.load_seconds
    run.seconds["clocks catching up with the earlier sections' events"] = f.catch_up_seconds
    team = f"{sizes.clocks // sizes.clock_teams:,} clocks and {sizes.entries_per_team} tray entries of its own"
    run.rows.append(Row(
        "dashboard_p99", f"team dashboard p99 at {sizes.clocks:,} running clocks (GET /teams/{{id}}/dashboard, R-CL7;"
        f" the team has {team}; {sizes.requests} requests)", "ms", percentile(f.dashboard_http_ms, 99),
        percentile(f.dashboard_direct_ms, 99), "the same figures computed in process on PostgreSQL, no HTTP"))
    for p, name in ((50, "p50"), (99, "p99")):
        run.rows.append(Row(
            f"clock_lateness_{name}", f"clock warning lateness {name} at {sizes.clocks:,} running clocks"
            f" ({sizes.clock_window:,} due at one instant → clock.warning on clocks.events)", "ms",
            ms(f.warning_lateness, p), ms(f.timer_due_lateness, p),
            "the same timers' timer.due on scheduler.due (the scheduler alone)"))
    for name, (after, idle) in f.rss_mib.items():
        run.rows.append(Row(f"rss_{name}",
                            f"RSS of the {name} service after the clocks load", "MiB", after, idle,
                            "the same process idle, just started"))
    run.note_infra_memory()


SECTIONS: dict[str, Callable[[Run], Awaitable[None]]] = {"signing": signing_section, "relay": relay_section,
    "trays": tray_section, "desk": desk_section, "timers": timer_section, "intake+steps": intake_and_steps_section,
    "clocks": clock_section}


async def measure(sizes: Sizes) -> tuple[list[Row], dict[str, float]]:
    async with infrastructure() as infra:
        run = Run(infra, sizes, broker_idle=rss_mib(infra.broker.pid),
                  postgres_idle=tree_pss_mib(infra.postgres_pid))
        for name, section in SECTIONS.items():
            began = time.monotonic()
            await section(run)
            run.seconds[name] = time.monotonic() - began
            print(f"{name}: done in {run.seconds[name]:.0f}s", flush=True)
        run.rows.append(Row("rss_broker", "RSS of the broker (Tansu) at its peak after a section", "MiB",
                            run.broker_peak, run.broker_idle, "the broker idle, just started"))
        run.rows.append(Row("rss_postgres", "PostgreSQL memory at its peak after a section (postmaster and "
                            "backends, PSS: shared buffers once)", "MiB", run.postgres_peak, run.postgres_idle,
                            "the same, just started"))
    figures_then_memory = sorted(run.rows, key=lambda row: row.key.startswith("rss_"))
    return figures_then_memory, run.seconds


def git_commit() -> str:
    """HEAD's commit, read from .git without running git."""
    git = ROOT / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head.removeprefix("ref: ")
        if (git / ref).exists():
            return (git / ref).read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(f" {ref}"):
                return line.split()[0]
    except OSError:
        pass
    return "unknown"


def number(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}"


def ratio(row: Row) -> str:
    return f"{row.value / row.baseline:.2f}×" if row.baseline else "n/a"


def markdown(meta: dict, rows: list[Row]) -> str:
    lines = [
        f"# Tessera benchmarks ({meta['mode']})", "",
        f"date {meta['date']} · commit {meta['commit']} · {meta['machine']['cores']} cores · "
        f"load average at start {' '.join(f'{x:.2f}' for x in meta['machine']['load_average_at_start'])} · "
        f"{meta['machine']['platform']}",
        "section seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in meta["seconds"].items()), "",
        "| figure | unit | Tessera | baseline | Tessera / baseline | baseline is (same run) |",
        "|---|---|---:|---:|---:|---|",
    ]
    lines += [f"| {r.figure} | {r.unit} | {number(r.value)} | {number(r.baseline)} | {ratio(r)} | {r.baseline_is} |"
              for r in rows]
    return "\n".join(lines) + "\n"


def write(out: Path, meta: dict, rows: list[Row], table: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.md").write_text(table)
    document = {**meta, "rows": [{k: None if isinstance(v, float) and math.isnan(v) else v
                                  for k, v in asdict(r).items()} for r in rows]}
    (out / "latest.json").write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts: seconds, not minutes")
    parser.add_argument("--timers", type=int, help="timers in the scheduler's table (default 1,000,000; "
                                                   f"{QUICK.timers:,} with --quick)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results",
                        help="where latest.md and latest.json go (default bench/results)")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    if args.timers is not None:
        sizes = replace(sizes, timers=args.timers)
    meta = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "commit": git_commit(),
            "mode": "quick" if args.quick else "full",
            "machine": {"cores": os.cpu_count(), "load_average_at_start": list(os.getloadavg()),
                        "platform": platform.platform()},
            "sizes": asdict(sizes)}
    rows, seconds = asyncio.run(measure(sizes))
    meta["seconds"] = seconds
    table = markdown(meta, rows)
    print("\n" + table)
    write(args.out, meta, rows, table)


if __name__ == "__main__":
    main()
