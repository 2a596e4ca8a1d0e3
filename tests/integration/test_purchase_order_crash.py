"""kill -9 of the workflow service during N purchase-order-producing finishes (R-F1): the finance ledger
(tools/finance_ledger.py, reading purchasing.orders from the beginning) holds exactly N orders and the
sums reconcile to the penny. N = 100 in `make test`, 1,000 with FAULTS_FULL=1."""

import asyncio
import itertools
import os
import random
import sqlite3
import sys
import uuid
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from shared import topics
from shared.envelope import Envelope, new_message
from shared.testing import EventLog, ServiceProcess, poll_until
from tests.purchasing_harness import BROKERAGE, CSP, SOURCE_PVI, coordinator, plan_values

pytestmark = pytest.mark.faults

N = 1_000 if os.environ.get("FAULTS_FULL") == "1" else 100
REPO = Path(__file__).resolve().parents[2]
# (action, service line of the plan): each kind of adult order
KINDS = [(BROKERAGE, "Domiciliary care", "brokerage"), ("Direct payments", "Personal assistant (PA) support",
                                                        "direct_payment"), ("Telecare", "Telecare", "telecare")]
RATES = ["16.05", "12.20", "17.33", "9.99", "21.125"]


def expected_costs(rate: str, hours: str, respite: int) -> tuple[Decimal, Decimal]:
    """R-K10 worked independently of the code under test: weekly to the penny, then × (52 − respite)."""
    weekly = (Decimal(rate) * Decimal(hours)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return weekly, (weekly * (52 - respite)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


async def _answered(events: EventLog, sent: list[Envelope], timeout: float = 300) -> dict[str, list[Any]]:
    """Every command's outcome (by causation id), awaited together."""
    ids = {str(e.id) for e in sent}
    answers: dict[str, list[Any]] = {}

    def complete() -> bool:
        return len({s.body.get("causationid") for s in events.seen if s.body.get("causationid") in ids}) == len(ids)

    await events.wait_until(complete, timeout)
    for s in events.seen:
        if s.body.get("causationid") in ids:
            answers.setdefault(s.body["causationid"], []).append(s)
    return answers


async def _send_all(commands: Any, events: EventLog, batch: list[tuple[str, dict[str, Any], str]]) -> dict[str, list]:
    sent = [await commands.publish(type_, data, key=key) for type_, data, key in batch]
    answers = await _answered(events, sent)
    rejected = [a[0].data for a in answers.values() if a[0].type == "command.rejected"]
    assert not rejected, rejected[:3]
    return {str(e.id): answers[str(e.id)] for e in sent}


async def _run_ledger(infra: Any, ledger: Path) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tools.finance_ledger", "--bootstrap", infra.bootstrap, "--ledger", str(ledger),
        "--group", f"finance-ledger-test-{uuid.uuid4().hex[:8]}", "--once", cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, out.decode()
    return out.decode()


async def test_R_F1_kill_9_during_purchase_order_finishes_the_ledger_holds_exactly_n_and_reconciles_to_the_penny(
        infra, workflow: ServiceProcess, events: EventLog, commands, db, tmp_path):
    worker = coordinator()
    rng = random.Random(20240603)
    people = [str(uuid.uuid4()) for _ in range(N)]
    plans: list[dict[str, Any]] = []
    for person_id, (action, service, kind) in zip(people, itertools.cycle(KINDS), strict=False):
        rate, hours, respite = rng.choice(RATES), str(Decimal(rng.randint(1, 80)) / 4), rng.randint(0, 8)
        hours = "1" if service == "Telecare" else hours  # R-F5: telecare is costed per week
        plans.append({"person_id": person_id, "action": action, "kind": kind, "expected": expected_costs(
            rate, hours, respite), "row": {"service": service, "hourly_rate": rate, "hours_per_week": hours,
                                          "respite_weeks": respite,
                                          "rate_override_reason": "Rate agreed for this test (R-F5)"}})
    for p in plans:
        p["step_id"] = await commands.given_step(worker, p["person_id"], CSP)
    await _send_all(commands, events, [
        cmd for p in plans for cmd in (
            ("step.save", {"actor": worker, "step_id": p["step_id"], "values": plan_values(p["row"])}, p["person_id"]),
            ("step.add_next_action", {"actor": worker, "step_id": p["step_id"], "action": p["action"],
                                      **({"reason": SOURCE_PVI} if p["action"] == BROKERAGE else {})},
             p["person_id"]))])

    steps = {p["step_id"] for p in plans}
    async with EventLog(infra.bootstrap, [topics.PURCHASING_ORDERS]) as orders:
        mine = lambda s: s.type == "purchase_order.requested" and s.data["step_id"] in steps  # noqa: E731
        finishes = [new_message("step.finish", "test-front-end", {"actor": worker, "step_id": p["step_id"]},
                                subject=p["person_id"]) for p in plans]
        for envelope, p in zip(finishes, plans, strict=True):
            await commands.publish_raw(envelope.to_bytes(), key=p["person_id"])
        await orders.wait_for(mine, timeout=120, count=max(1, N // 10))
        workflow.kill()
        published_before_kill = len({s.data["po_request_id"] for s in orders.matching(mine)})
        workflow.start()
        await workflow.ready()
        await orders.wait_until(lambda: {s.data["step_id"] for s in orders.matching(mine)} == steps, 300)
        copies = len(orders.matching(mine))
    await poll_until(lambda: _outbox_empty(db), 60, "the workflow outbox drained")

    ledger = tmp_path / "ledger.sqlite"
    printed = await _run_ledger(infra, ledger)
    conn = sqlite3.connect(ledger)
    rows = [r for r in conn.execute("SELECT step_id, kind, weekly_cost, annual_cost FROM ledger") if r[0] in steps]
    conn.close()
    weekly = sum((Decimal(r[2]) for r in rows), Decimal(0))
    annual = sum((Decimal(r[3]) for r in rows), Decimal(0))
    want_weekly = sum((p["expected"][0] for p in plans), Decimal(0))
    want_annual = sum((p["expected"][1] for p in plans), Decimal(0))
    in_db = await db.fetchval("SELECT count(*) FROM workflow.po_requests WHERE step_id = ANY($1::uuid[])",
                              [uuid.UUID(s) for s in steps])
    print(f"\npurchase-order crash: {N} finishes, {published_before_kill} orders published before kill -9, "
          f"{copies} purchase_order.requested copies on the topic, {len(rows)} in the ledger, "
          f"weekly £{weekly} (expected £{want_weekly}), annual £{annual} (expected £{want_annual})\n"
          f"ledger totals (whole topic):\n{printed}")

    assert published_before_kill < N, "the kill came after every order was published"
    assert len(rows) == N and len({r[0] for r in rows}) == N  # 0 lost, 0 doubled
    assert in_db == N
    assert {p["step_id"]: p["kind"] for p in plans} == {r[0]: r[1] for r in rows}
    assert (weekly, annual) == (want_weekly, want_annual)  # to the penny
    by_step = {r[0]: (Decimal(r[2]), Decimal(r[3])) for r in rows}
    assert all(by_step[p["step_id"]] == p["expected"] for p in plans)


async def _outbox_empty(db: Any) -> bool:
    return await db.fetchval("SELECT count(*) FROM workflow.outbox WHERE topic = $1 AND published_at IS NULL",
                            topics.PURCHASING_ORDERS) == 0
