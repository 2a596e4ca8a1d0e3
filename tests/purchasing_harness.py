"""Purchase orders through the real broker (R-F1, R-F2): support plans that ask for orders, brokerage's answers."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from shared import topics
from shared.envelope import Envelope, new_message
from shared.testing import EventLog, Seen, publish
from tests.workflow_harness import Commands, actor

CSP = "Create Support Plan"
BROKERAGE = "Brokerage purchasing request"
SOURCE_PVI = "Source PVI care and support"
INTERIM_REASON = "Long-term PO for the interim service (pass straight to the Purchase Support Team)"


def coordinator() -> dict[str, Any]:
    """The STS case co-ordinator (seed 002), a worker id of their own per test."""
    return actor(f"cc-{uuid.uuid4().hex[:8]}", "social_worker", teams=("short-term-service",))


def plan_values(*rows: dict[str, Any], may_co_fund: bool = False, start: str | None = "2024-06-10") -> dict[str, Any]:
    return {"planned_services": list(rows), "annual_review_date": "2025-06-03", "care_start_date": start,
            "may_co_fund": may_co_fund}


DOM_CARE = {"service": "Domiciliary care", "hourly_rate": 16.05, "hours_per_week": 10.5, "respite_weeks": 6}
PA = {"service": "Personal assistant (PA) support", "hourly_rate": 12.20, "hours_per_week": 7}
TELECARE = {"service": "Telecare", "hourly_rate": 3.50, "hours_per_week": 1}


def orders_of(log: EventLog, person_id: str, type_: str = "purchase_order.requested") -> list[Seen]:
    return log.matching(lambda s: s.topic == topics.PURCHASING_ORDERS and s.key == person_id and s.type == type_)


async def support_plan(commands: Commands, worker: dict[str, Any], person_id: str, values: dict[str, Any],
                       actions: list[dict[str, Any]], step_type: str = CSP) -> str:
    """A support plan started by the worker, filled in, with its next actions added (not finished)."""
    step_id = await commands.given_step(worker, person_id, step_type)
    (await commands.send("step.save", worker, key=person_id, step_id=step_id, values=values)).ok()
    for action in actions:
        (await commands.send("step.add_next_action", worker, key=person_id, step_id=step_id, **action)).ok()
    return step_id


def brokerage_message(type_: str, po_request_id: str, provider: str, start_date: date | None,
                      person_id: str, rate: str | None = None) -> Envelope:
    data: dict[str, Any] = {"po_request_id": po_request_id, "provider": provider}
    if start_date is not None:
        data["start_date"] = start_date.isoformat()
    if rate is not None:
        data["rate"] = rate
    return new_message(type_, "test-brokerage", data, subject=person_id)


async def from_brokerage(bootstrap: str, person_id: str, *envelopes: Envelope) -> None:
    await publish(bootstrap, topics.BROKERAGE_EVENTS, [(person_id, e.to_bytes()) for e in envelopes])
