"""One load harness for the fault and replica tests (issue #16 §6): a load paced at a steady rate that notes
what it sent, a tally of every event on the watched topics indexed by the message that caused it, and the count
of what was lost or doubled.

tests/integration/test_faults.py (kills, a database and a broker restart) and test_replicas.py (scale-out and
rolling restarts) each say only what their load sends and when a message counts as answered.
"""

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from shared.testing import BackgroundLoad, TopicTail


class PacedLoad(BackgroundLoad):
    """Messages at `rate` a second until stopped: `send_next(i)` sends the i-th and appends it to `sent`."""

    def __init__(self, bootstrap: str, rate: int) -> None:
        super().__init__(bootstrap)
        self.rate = rate

    async def send_next(self, i: int) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        began, i = time.monotonic(), 0
        while not self._stop.is_set():
            await self.send_next(i)
            i += 1
            delay = began + i / self.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing the load, not waiting for messages


class Tally(TopicTail):
    """Every event on the watched topics (no consumer group), indexed by what caused it and by business key.

    An effect is an event of one type (for a message, to one recipient; for a timer, of one key) caused by one
    message: two distinct event ids for one effect are a duplicate; the same id again is a copy (a relay
    re-send or a re-published window), which consumers drop through their inbox.
    """

    def __init__(self, bootstrap: str, watched: Iterable[str], **consumer_options: Any) -> None:
        super().__init__(bootstrap, watched, max_partition_fetch_bytes=4_000_000, **consumer_options)
        self.copies: list[float] = []  # when a copy of an already-seen event arrived
        self.seen_ids: set[str] = set()
        self.data_of: dict[str, tuple[str, dict[str, Any]]] = {}  # event id -> (type, data)
        # causation (the message that caused it) -> {effect -> distinct event ids}
        self.by_cause: dict[str, dict[tuple[str, str], set[str]]] = defaultdict(lambda: defaultdict(set))
        self.accepted: dict[str, set[str]] = defaultdict(set)  # referral id -> distinct referral.accepted ids
        self.accepted_first: list[tuple[str, int, float, str]] = []  # event id, partition, arrival, person id
        self.workflow_of: dict[str, str] = {}  # referral id -> workflow id
        self.person_of: dict[str, str] = {}  # referral id -> person id
        self.created: dict[str, set[str]] = defaultdict(set)  # workflow id -> distinct step.created ids
        self.fired: dict[str, set[str]] = defaultdict(set)  # timer key -> distinct timer.due ids
        self.rendered: dict[str, set[str]] = defaultdict(set)  # notifications message id -> document.rendered ids

    def note(self, record: Any, now: float) -> None:
        body = json.loads(record.value)
        kind, event_id, data = body.get("type"), body.get("id"), body.get("data", {})
        if event_id in self.seen_ids:
            self.copies.append(now)
            return
        self.seen_ids.add(event_id)
        self.data_of[event_id] = (kind, data)
        effect = (kind, str(data.get("recipient") or data.get("key") or ""))
        self.by_cause[body.get("causationid")][effect].add(event_id)
        if kind == "referral.accepted":
            self.accepted[data["referral_id"]].add(event_id)
            self.accepted_first.append((event_id, record.partition, now, data["person_id"]))
            self.workflow_of[data["referral_id"]] = data["workflow_id"]
            self.person_of[data["referral_id"]] = data["person_id"]
        elif kind == "step.created" and data.get("workflow_id"):
            self.created[data["workflow_id"]].add(event_id)
        elif kind == "timer.due":
            self.fired[data["key"]].add(event_id)
        elif kind == "document.rendered" and data.get("message_id"):
            self.rendered[data["message_id"]].add(event_id)

    def copies_between(self, start: float, end: float) -> int:
        return sum(1 for at in self.copies if start <= at <= end)

    def caused(self, cause: str, kind: str) -> list[str]:
        """Ids of the events of `kind` that `cause` caused."""
        return [i for (k, _), ids in self.by_cause.get(cause, {}).items() if k == kind for i in ids]

    def doubled_effects(self, cause: str) -> bool:
        """Some effect of `cause` happened twice (two distinct events)."""
        return any(len(ids) > 1 for ids in self.by_cause.get(cause, {}).values())

    def effects(self, cause: str, depth: int = 4) -> list[set[str]]:
        """Every effect `cause` led to, through the events it caused, as sets of distinct event ids."""
        found = list(self.by_cause.get(cause, {}).values())
        if depth > 1:
            for ids in list(found):
                for event_id in ids:
                    found += self.effects(event_id, depth - 1)
        return found


def lost_and_doubled(keys: Iterable[str], index: Mapping[str, set[str]]) -> tuple[list[str], list[str]]:
    """The keys with no outcome in `index` (lost), and those with two distinct ones (doubled)."""
    keys = list(keys)
    return [k for k in keys if not index.get(k)], [k for k in keys if len(index.get(k, ())) > 1]
