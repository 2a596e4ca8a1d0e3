"""Issue #20 §2: a timer.due a service cannot act on is set aside alone, and the next one is handled.

Each owner of timers (workflow: Future Work, renewals and the lack-of-provision watch; allocation: tray
reviews, escalations and Review trays; notifications: overdue requests) gets poison timer.due messages of
its own kind, then a good one on the same partition. The poison lands in that service's dead_letters and
on scheduler.due.dlq with the reason; the good one is handled (its id in the service's inbox).
"""

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from shared import topics
from shared.envelope import Envelope, new_message
from shared.testing import EventLog, poll_until, publish, signed_as_sender

NOW = datetime.now(UTC).isoformat()


def _due(owner: str, key: str, **data: Any) -> Envelope:
    body = {"key": key, "due_at": NOW, "owner": owner, "payload": {}, "fired_at": NOW, **data}
    return new_message("timer.due", "tessera/scheduler", {k: v for k, v in body.items() if v is not None},
                       subject=f"poison-{uuid.uuid4().hex[:8]}")


# owner: (poison timer.due messages and the reason each names, a good one the owner handles as stale)
CASES = {
    "workflow": ([(_due("workflow", "future-work:x", due_at=None), "due_at"),
                  (_due("workflow", "renewal:x", fired_at="0001-13-01"), "fired_at")],
                 _due("workflow", f"future-work:{uuid.uuid4()}")),
    "allocation": ([(_due("allocation", "review-tray:not-an-entry"), "entry_id"),
                    (_due("allocation", "tray-review:x", payload=[1]), "payload")],
                   _due("allocation", f"tray-review:{uuid.uuid4()}")),
    "notifications": ([(_due("notifications", "something-else:x"), "key"),
                       (_due("notifications", "request-overdue:x", due_at="yesterday"), "due_at")],
                      _due("notifications", f"request-overdue:{uuid.uuid4()}")),
}


@pytest.mark.parametrize("owner", CASES)
async def test_a_poison_timer_due_is_set_aside_and_the_next_timer_due_is_handled(
        infra, db, workflow, allocation, notifications, owner):
    poison, good = CASES[owner]
    key = good.subject
    async with EventLog(infra.bootstrap, [topics.dlq(topics.SCHEDULER_DUE)]) as dead:
        values = [signed_as_sender(topics.SCHEDULER_DUE, m.to_bytes()) for m, _ in poison]  # as the DLQ keeps them
        await publish(infra.bootstrap, topics.SCHEDULER_DUE, [(key, v) for v in values] + [(key, good.to_bytes())])
        ids = {str(m.id) for m, _ in poison}
        letters = await dead.wait_for(lambda s: s.body.get("id") in ids and s.headers.get("dlq_service") == owner,
                                      count=len(poison), timeout=60)
    reasons = {s.body["id"]: s.headers["dlq_error"] for s in letters}
    for message, field in poison:
        assert field in reasons[str(message.id)], reasons[str(message.id)]
    await poll_until(lambda: db.fetchval(f"SELECT count(*) = 1 FROM {owner}.inbox WHERE message_id = $1", good.id),
                     60, f"{owner} handled the good timer.due")
    kept = await db.fetch(f"SELECT job, kind, error FROM {owner}.dead_letters WHERE value = ANY($1::bytea[])",
                          values)
    assert len(kept) == len(poison) and {r["job"] for r in kept} == {topics.SCHEDULER_DUE}
