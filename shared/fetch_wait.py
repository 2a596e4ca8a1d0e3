"""How long a consumer lets the broker hold a fetch that finds nothing: short while messages flow, long when idle.

Tansu (the embedded broker) answers a fetch only when its wait runs out, never when data arrives, so the wait is
both the latency of each hop of a message and the rate of empty fetches of an idle consumer. One fixed wait trades
one for the other: 20 ms cost ~0.8 of a core idle for the whole system (docs/architecture.md "Delivery"). So the
wait follows the traffic: the minimum right after a fetch brought records, growing with the time since (a tenth
of it) up to the maximum. A consumer receiving a message every 10 ms fetches with the minimum wait; one idle for
half a second or more with the maximum. Apache Kafka answers as data arrives: there both are set to 500 ms.
"""

import time
from typing import Any

from aiokafka import AIOKafkaConsumer

from shared.settings import Settings

# the wait grows by this share of the time since a fetch last brought records
GROWTH = 0.1


def wait_ms(idle_seconds: float, minimum_ms: int, maximum_ms: int) -> int:
    """The fetch wait after `idle_seconds` without records."""
    return int(min(maximum_ms, max(minimum_ms, idle_seconds * 1000 * GROWTH)))


def follow_traffic(consumer: AIOKafkaConsumer, settings: Settings) -> None:
    """Make a started consumer's fetch wait follow its traffic (see the module's docstring).

    aiokafka reads the wait from its fetcher when it builds each fetch request (`_get_actions_per_node`), and
    keeps the records a fetch brought in `_records` until they are consumed: both private, pinned by the lock
    file and checked by tests/unit/test_fetch_wait.py."""
    minimum, maximum = settings.kafka_fetch_min_wait_ms, settings.kafka_fetch_max_wait_ms
    if minimum >= maximum:
        return  # a fixed wait, as aiokafka was started with
    fetcher: Any = consumer._fetcher  # noqa: SLF001
    if getattr(fetcher, "follows_traffic", False):
        return
    fetcher.follows_traffic = True
    build_requests = fetcher._get_actions_per_node  # noqa: SLF001
    last_records = time.monotonic()

    def actions_per_node(assignment: Any) -> Any:
        nonlocal last_records
        now = time.monotonic()
        if fetcher._records:  # noqa: SLF001  (a fetch just brought records)
            last_records = now
        fetcher._fetch_max_wait_ms = wait_ms(now - last_records, minimum, maximum)  # noqa: SLF001
        return build_requests(assignment)

    fetcher._get_actions_per_node = actions_per_node  # noqa: SLF001
