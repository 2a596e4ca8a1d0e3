"""Issue #18: a subscriber calls its handler itself (shared/broker.py `PartitionedSubscriber._process`), batched or
not, giving it the message and its `Context(...)` values only: every handler of every service takes nothing else, so
none would fail on its first message in production."""

import importlib
from pathlib import Path

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


def test_a_handler_with_another_parameter_is_refused_before_any_message():
    from faststream.kafka import KafkaRouter

    from shared.broker import subscriber

    router = KafkaRouter()

    @subscriber(router, "tests", "tests.topic")
    async def handler(msg, pool=None) -> None:  # a plain default: nothing would give it a value
        return None

    [created] = router.subscribers
    with pytest.raises(TypeError, match="Context"):
        created._direct_handler()
