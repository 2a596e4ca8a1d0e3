"""Where the time of one step transition goes: `python -m bench.profile [--steps S] [--per-step K] [--paced N]`.

Starts the embedded broker and PostgreSQL and the workflow service under bench/profiled.py (timers around
its database round trips, fetches, offset commits and relay rounds), drives step.save commands through the
broker as bench/steps.py does — a burst of S × K, then N one at a time — and prints, per transition, the
service's CPU, its database round trips by stage and statement, offset commits and the relay's publishing.
--code DIR runs the service from another checkout (e.g. main, for a before/after); --cprofile adds the
functions that took the CPU in the burst. Figures only; docs/profile.md says what they showed.
"""

import argparse
import asyncio
import json
import os
import pstats
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from bench.common import infrastructure, percentile
from bench.steps import Outcomes, _step_ids, save, start_new
from shared import topics
from shared.embedded import wait_until_ready
from shared.testing import SigningProducer, free_port

ROOT = Path(__file__).resolve().parents[1]
PROFILED = Path(__file__).with_name("profiled.py")
RESULTS = ROOT / "bench" / "results"  # profile.pstats is kept there for `python -m pstats`


def start_service(env: dict[str, str], code: Path, log: Path) -> subprocess.Popen[bytes]:
    launch = f"import runpy, sys; sys.argv = ['profiled', 'workflow']; runpy.run_path({str(PROFILED)!r}, " \
             "run_name='__main__')"
    return subprocess.Popen([sys.executable, "-c", launch], cwd=code, env={**os.environ, **env},
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def snapshot(process: subprocess.Popen[bytes], out: Path) -> dict:
    lines = len(out.read_text().splitlines()) if out.exists() else 0
    process.send_signal(signal.SIGUSR1)
    while not out.exists() or len(out.read_text().splitlines()) <= lines:
        await asyncio.sleep(0.05)
    return json.loads(out.read_text().splitlines()[-1])


async def drive(bootstrap: str, dsn: str, process: subprocess.Popen[bytes], out: Path, n_steps: int,
                per_step: int, paced_n: int) -> dict:
    async with Outcomes(bootstrap) as log:
        producer = SigningProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            people = [str(uuid.uuid4()) for _ in range(n_steps)]
            setup = [start_new(p) for p in people]
            for m in setup:
                await producer.send(topics.WORKFLOW_COMMANDS, m.to_bytes(), key=m.subject.encode())  # type: ignore[union-attr]
            await producer.flush()
            await log.wait([str(m.id) for m in setup], 300)
            steps = await _step_ids(dsn, people)
            before = await snapshot(process, out)
            burst = [save(p, steps[p], 2 + i, i) for i in range(per_step) for p in people]
            began = time.monotonic()
            for m in burst:
                await producer.send(topics.WORKFLOW_COMMANDS, m.to_bytes(), key=m.subject.encode())  # type: ignore[union-attr]
            await producer.flush()
            await log.wait([str(m.id) for m in burst], 600)
            burst_seconds = time.monotonic() - began
            after_burst = await snapshot(process, out)
            person, paced = people[0], []
            for i in range(paced_n):
                m = save(person, steps[person], 2 + per_step + i, i)
                t0 = time.monotonic()
                await producer.send_and_wait(topics.WORKFLOW_COMMANDS, m.to_bytes(), key=person.encode())
                await log.wait([str(m.id)], 30)
                paced.append(time.monotonic() - t0)
            after_paced = await snapshot(process, out)
        finally:
            await producer.stop()
    return {"burst": (before, after_burst, len(burst), burst_seconds),
            "paced": (after_burst, after_paced, paced_n, sum(paced), paced)}


def per_transition(start: dict, end: dict, n: int) -> list[tuple[str, float, float]]:
    """(what, calls per transition, ms per transition) for every timed stage, CPU first."""
    rows = [("service CPU (process time)", 0.0, (end["cpu"] - start["cpu"]) * 1000 / n)]
    handled = [k for k in end["handler"] if k.endswith(f":{topics.WORKFLOW_COMMANDS}")]
    count = sum(end["handler"][k] - start["handler"].get(k, 0) for k in handled if "_count" in k)
    seconds = sum(end["handler"][k] - start["handler"].get(k, 0) for k in handled if "_sum" in k)
    rows.append(("handler, wall (middlewares + handler, DB waits included)", count / n, seconds * 1000 / n))
    for name in sorted(end["totals"]):
        calls, spent = end["totals"][name]
        calls0, spent0 = start["totals"].get(name, [0, 0.0])
        if calls > calls0:
            rows.append((name, (calls - calls0) / n, (spent - spent0) * 1000 / n))
    return rows


def report(found: dict, cprofile: Path | None) -> None:
    start, end, n, seconds = found["burst"]
    print(f"\nburst: {n:,} transitions in {seconds:.1f}s = {n / seconds:,.0f}/s, wall {seconds * 1000 / n:.2f} ms each")
    print_rows(per_transition(start, end, n))
    start, end, n, seconds, paced = found["paced"]
    print(f"\none at a time: {n} transitions, command → step.saved p50 {percentile(paced, 50) * 1000:.1f} ms, "
          f"p99 {percentile(paced, 99) * 1000:.1f} ms")
    print_rows(per_transition(start, end, n))
    if cprofile is not None and cprofile.exists():
        print("\nCPU in the burst, by function (cProfile on process time; its overhead inflates Python code):")
        stats = pstats.Stats(str(cprofile))
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(40)
        RESULTS.mkdir(parents=True, exist_ok=True)
        stats.dump_stats(RESULTS / "profile.pstats")


def print_rows(rows: list[tuple[str, float, float]]) -> None:
    print(f"  {'stage':<72} {'calls/transition':>16} {'ms/transition':>14}")
    for name, calls, ms in rows:
        print(f"  {name:<72} {calls:>16.2f} {ms:>14.3f}")


async def run(args: argparse.Namespace) -> None:
    print(f"load average at start {os.getloadavg()}", flush=True)
    async with infrastructure("tessera-bench-profile-") as infra:
        out = infra.work / "profile.jsonl"
        port = free_port()
        env = {**infra.env(), "PROFILE_OUT": str(out), "HTTP_PORT": str(port), "PYTHONPATH": str(args.code)}
        if args.cprofile:
            env["PROFILE_CPROFILE"] = "1"
        process = start_service(env, args.code, infra.work / "workflow.log")
        try:
            await wait_until_ready([f"http://127.0.0.1:{port}/readyz"], 120)
            found = await drive(infra.bootstrap, infra.dsn, process, out, args.steps, args.per_step, args.paced)
        finally:
            process.terminate()
            process.wait(30)
        report(found, Path(f"{out}.pstats") if args.cprofile else None)
    print(f"load average at end {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--per-step", type=int, default=10)
    parser.add_argument("--paced", type=int, default=100)
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout the service runs from")
    parser.add_argument("--cprofile", action="store_true")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
