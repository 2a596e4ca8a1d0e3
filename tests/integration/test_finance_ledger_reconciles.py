"""The finance ledger equals each person's current package after every change (R-F7, R-F4, R-K10).

A seeded random sequence of support plans and their reviews (Create and Review Support Plan, seed
002: hours up and down, services added, dropped and brought back) and case closures (Close Case,
authorised by the team manager) for a few people goes through the
workflow service; the orders, amendments and ends are read back from purchasing.orders on the real
broker into tools/finance_ledger.py after each change and compared with the package worked out here,
independently of the code under test. The ledger CLI then reads the whole topic once and prints the
same totals per person.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import sys
import uuid
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from shared import topics
from shared.testing import EventLog
from tests.purchasing_harness import BROKERAGE, SOURCE_PVI, coordinator, plan_values, support_plan
from tests.workflow_harness import Commands, actor
from tools import finance_ledger

SEED = 17
CHANGES = 12
CLOSE_AT = {5, 10}  # these changes close the case of a person with live orders (the rest at random: none)
REPO = Path(__file__).resolve().parents[2]
# kind → (the plan's service line, the next action asking for it, rate from the rate card, unit)
PACKAGES = {
    "brokerage": ("Domiciliary care", {"action": BROKERAGE, "reason": SOURCE_PVI}, "16.05"),
    "direct_payment": ("Personal assistant (PA) support", {"action": "Direct payments"}, "12.20"),
    "telecare": ("Telecare", {"action": "Telecare"}, "3.75"),
}


def _costs(rate: str, units: str, respite: int) -> tuple[str, str]:
    """R-K10 worked here, not by the code under test: weekly to the penny (half up), then × (52 − respite)."""
    weekly = (Decimal(rate) * Decimal(units)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return str(weekly), str((weekly * (52 - respite)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _draw(rng: random.Random, live: dict[str, tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """The next plan of a person: each service kept, changed, dropped or added at random (never none at all)."""
    while True:
        lines = {}
        for kind, (service, _, rate) in PACKAGES.items():
            if rng.random() < (0.75 if kind in live else 0.5):
                units = "1" if kind == "telecare" else str(Decimal(rng.randint(2, 60)) / 4)
                lines[kind] = {"service": service, "hourly_rate": rate, "hours_per_week": units,
                               "respite_weeks": rng.choice([0, 0, 2, 6])}
        if lines:
            return lines


async def test_R_F7_R_K10_the_ledger_equals_each_persons_package_after_every_review_plan_change_and_closure(
        workflow, commands: Commands, infra, tmp_path: Path):
    rng = random.Random(SEED)
    worker = coordinator()
    people = [str(uuid.uuid4()) for _ in range(3)]
    package: dict[str, dict[str, tuple[str, str]]] = {p: {} for p in people}  # person → kind → (weekly, annual)
    expected_messages = dict.fromkeys(people, 0)
    done: list[str] = []
    open_steps: dict[str, list[tuple[str, str]]] = {}  # the purchasing teams' steps (id, team) per person
    ledger = finance_ledger.open_ledger(tmp_path / "ledger.sqlite")
    async with EventLog(infra.bootstrap, [topics.PURCHASING_ORDERS]) as orders:
        for change in range(CHANGES):
            person = people[change % len(people)] if change < len(people) else rng.choice(people)
            if change in CLOSE_AT:
                person = next(p for p in rng.sample(people, len(people)) if package[p])
                expected_messages[person] += len(package[person])  # R-F7: each live order ends
                await _close_case(commands, worker, person, open_steps.pop(person, []), f"{SEED}-{change}")
                package[person] = {}
            else:
                live = package[person]
                lines = _draw(rng, live)
                # ask for each service the plan has, and for each live one it drops (R-F7: that ends it)
                actions = [PACKAGES[kind][1] for kind in PACKAGES if kind in lines or kind in live]
                now = {kind: _costs(line["hourly_rate"], line["hours_per_week"], line["respite_weeks"])
                       for kind, line in lines.items()}
                expected_messages[person] += sum(1 for kind in PACKAGES if (kind in now or kind in live)
                                                 and now.get(kind) != live.get(kind))
                # the first plan is a Create Support Plan; later ones are its review (seed 002, same form)
                step_type = "Review Support Plan" if person in done else "Create Support Plan"
                step = await support_plan(commands, worker, person, plan_values(*lines.values()), actions,
                                          step_type=step_type)
                done.append(person)
                finished = (await commands.send("step.finish", worker, key=person, step_id=step)).ok()
                open_steps.setdefault(person, []).extend((s["step_id"], s["assignee"]["id"])
                                                          for s in finished.all("step.created"))
                package[person] = now

            want_count = expected_messages[person]

            def mine(s: Any, person: str = person) -> bool:
                return s.key == person
            await orders.wait_until(lambda mine=mine, n=want_count: len(orders.matching(mine)) >= n, 30)
            finance_ledger.apply(ledger, [s.value for s in orders.seen])
            held = finance_ledger.people(ledger)
            for who in people:
                want = package[who]
                got = held.get(who, {"orders": [], "weekly": Decimal(0), "annual": Decimal(0)})
                assert sorted((o["kind"], o["weekly_cost"], o["annual_cost"]) for o in got["orders"]) == sorted(
                    (kind, *costs) for kind, costs in want.items()), (change, who)
                assert got["weekly"] == sum((Decimal(w) for w, _ in want.values()), Decimal(0))
                assert got["annual"] == sum((Decimal(a) for _, a in want.values()), Decimal(0))
        counts = {p: len(orders.matching(lambda s, p=p: s.key == p)) for p in people}
    assert counts == expected_messages  # nothing more than the changes asked for: no order for a whole package
    kinds_seen = {s.type for s in orders.seen}
    assert {"purchase_order.requested", "purchase_order.amended", "purchase_order.end_requested"} <= kinds_seen

    printed = await _ledger_cli(infra, tmp_path / "cli.sqlite")
    for person, want in ((p, w) for p, w in package.items() if w):
        weekly = sum((Decimal(w) for w, _ in want.values()), Decimal(0))
        annual = sum((Decimal(a) for _, a in want.values()), Decimal(0))
        assert f"{person}: {len(want)} live orders, weekly £{weekly:.2f}, annual £{annual:.2f}" in printed
    cli = sqlite3.connect(tmp_path / "cli.sqlite")
    assert {p: r["weekly"] for p, r in finance_ledger.people(cli).items() if p in package} == {
        p: sum((Decimal(w) for w, _ in want.values()), Decimal(0)) for p, want in package.items() if want}
    cli.close()


async def _close_case(commands: Commands, worker: dict[str, Any], person: str,
                      open_steps: list[tuple[str, str]], run: str) -> None:
    """Close Case (R-K1: nothing else open): each purchasing step is cancelled by a manager of the team that holds
    it (R-W14) as the services have ended — which ends the order each one's next action raised (R-F7) — then
    the worker's Close Case is reviewed and authorised by the team manager, ending any order still live."""
    manager = actor(f"tm-{run}", "team_manager", teams=("short-term-service",))
    for step_id, team in open_steps:
        (await commands.send("step.cancel", actor(f"tm-{team}-{run}", "team_manager", teams=(team,)), key=person,
                             step_id=step_id, reason="Services ended: the case is closing")).ok()
    close = await commands.given_step(worker, person, "Close Case")
    (await commands.send("step.save", worker, key=person, step_id=close, values={
        "closure_reason": "No further involvement required", "closing_summary": "Needs met",
        "services_ended": True, "reviews_sent": True, "worker_relationship_end_date": "2024-07-01"})).ok()
    raised = (await commands.send("step.send_request", worker, key=person, step_id=close,
                                  name="REQUIRED Please review information and confirm outcome",
                                  to={"kind": "worker", "id": manager["worker_id"]})).ok()
    (await commands.send("step.add_next_action", worker, key=person, step_id=close,
                         action="Case closed (NFA)")).ok()
    (await commands.send("request.complete", manager, key=person,
                         request_id=raised.of("request.raised")["request_id"])).ok()
    (await commands.send("step.authorise", manager, key=person, step_id=close)).ok().of("case.closed")


async def _ledger_cli(infra: Any, ledger: Path) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tools.finance_ledger", "--bootstrap", infra.bootstrap, "--ledger", str(ledger),
        "--group", f"finance-ledger-test-{uuid.uuid4().hex[:8]}", "--once", "--people", cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, out.decode()
    return out.decode()
