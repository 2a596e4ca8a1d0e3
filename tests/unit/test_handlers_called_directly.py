"""Issue #18: a subscriber calls its handler itself (shared/broker.py `PartitionedSubscriber._process`), batched or
not, giving it the message and its `Context(...)` values only: every handler of every service takes nothing else, so
none would fail on its first message in production."""

import importlib
from pathlib import Path
from types import SimpleNamespace

import pytest

from shared.broker import PartitionedSubscriber

SERVICES = Path(__file__).parents[2] / "services"
# every module that declares a router of consumers
ROUTERS = sorted(".".join(p.relative_to(SERVICES.parent).with_suffix("").parts) for p in SERVICES.rglob("*.py")
                 if "router = KafkaRouter()" in p.read_text())


def test_the_routers_are_found():
    assert "services.workflow.handlers" in ROUTERS and len(ROUTERS) >= 9


@pytest.mark.parametrize("module", ROUTERS)
def test_every_handler_takes_the_message_and_context_values_only(module):
    subscribers = importlib.import_module(module).router.subscribers
    assert subscribers and all(isinstance(s, PartitionedSubscriber) for s in subscribers), module
    for subscriber in subscribers:
        handler, names = subscriber._direct_handler()
        assert "pool" in names.values(), f"{handler.__name__} is given the consumer pool"


def _a_subscriber() -> PartitionedSubscriber:
    """A subscriber whose handler takes `pool` as a plain default: nothing would give it a value."""
    from faststream.kafka import KafkaRouter

    from shared.broker import subscriber

    router = KafkaRouter()

    @subscriber(router, "tests", "tests.topic")
    async def handler(msg, pool=None) -> None:
        return None

    [created] = router.subscribers
    return created


def test_a_handler_with_another_parameter_is_refused_before_any_message():
    with pytest.raises(TypeError, match="Context"):
        _a_subscriber()._direct_handler()


async def test_a_restarted_consume_loop_does_not_fetch_a_partition_still_being_handled():
    """faststream starts a consume loop again after it raised; the partition tasks of the loop that died still
    run, and fetching their partitions again would handle one partition's messages twice at once, out of order."""
    import asyncio

    from aiokafka import TopicPartition
    loop = _a_subscriber()
    partition, other, held = TopicPartition("tests.topic", 0), TopicPartition("tests.topic", 1), asyncio.Event()
    asked: list[tuple[TopicPartition, ...]] = []

    class Consumer:
        _fetcher = type("Fetcher", (), {"follows_traffic": True})()
        _coordinator = SimpleNamespace(generation=1)
        _subscription = SimpleNamespace(reassignment_in_progress=False, partitions_auto_assigned=lambda: True)

        def assignment(self) -> set[TopicPartition]:
            return {partition, other}

        async def getmany(self, *partitions: TopicPartition, timeout_ms: int) -> dict:
            asked.append(partitions)
            if len(asked) == 1:
                return {partition: ["a record"]}
            if len(asked) == 2:
                raise RuntimeError("the loop dies")
            loop.running = False
            return {}

    async def handle_partition(*_: object) -> None:
        await held.wait()

    loop.running = True
    loop._handle_partition = handle_partition
    loop.fetches_when_all_done = False
    with pytest.raises(RuntimeError):
        await loop._run_consume_loop(Consumer())
    await loop._run_consume_loop(Consumer())  # as faststream's supervisor starts it again
    held.set()
    await asyncio.gather(*loop._busy.values())
    assert asked[2] == (other,), "the partition still being handled was fetched again"


async def test_a_partition_handled_while_its_group_is_joined_again_is_not_committed_but_read_again():
    """A commit sent while the consumer rejoins carries no generation; the broker refuses it as from an unknown
    member and aiokafka joins once more. After a broker restart notifications committed in every join (6 s each
    on the embedded broker) and never recovered. Handled then, a record is left to be read again (the inbox drops
    the copy)."""
    from aiokafka import TopicPartition
    loop = _a_subscriber()
    partition = TopicPartition("tests.topic", 0)
    commits: list[dict] = []
    seeks: list[tuple[TopicPartition, int]] = []
    coordinator = SimpleNamespace(generation=3)

    class Consumer:
        _coordinator = coordinator
        _subscription = SimpleNamespace(reassignment_in_progress=False, partitions_auto_assigned=lambda: True)

        def assignment(self) -> set[TopicPartition]:
            return {partition}

        async def commit(self, offsets: dict) -> None:
            commits.append(offsets)

        def seek(self, tp: TopicPartition, offset: int) -> None:
            seeks.append((tp, offset))

    async def handle_batch(records: list) -> tuple[int, None]:
        coordinator.generation = -1  # a heartbeat found the member unknown while the record was handled
        return len(records), None

    loop.running = True
    loop._handle_batch = handle_batch
    await loop._handle_partition(Consumer(), partition, [SimpleNamespace(offset=41), SimpleNamespace(offset=42)])
    assert commits == [], "committed while the group was being joined again"
    assert seeks == [(partition, 41)], "the records are to be read again after the join"
