"""KAFKA_ASSIGNMENT=all: a subscriber reads as many partitions as the broker's topic has, not the configured count."""

from types import SimpleNamespace
from typing import Any, cast

from faststream.kafka import TopicPartition

from shared.broker import assign_every_partition


def _broker(*subscribers: object) -> Any:
    return cast(Any, SimpleNamespace(subscribers=list(subscribers)))


def test_a_topic_made_with_more_partitions_than_configured_is_read_whole():
    declared = SimpleNamespace(_partitions=[TopicPartition("referrals.intake", p) for p in range(4)])
    member = SimpleNamespace(_partitions=[])  # a group member declares none: the group assigns them
    assign_every_partition(_broker(declared, member), {"referrals.intake": 6})
    assert [(p.topic, p.partition) for p in declared._partitions] == [("referrals.intake", p) for p in range(6)]
    assert member._partitions == []


def test_a_topic_the_broker_describes_with_no_partitions_keeps_the_declared_ones():
    declared = SimpleNamespace(_partitions=[TopicPartition("referrals.intake", p) for p in range(4)])
    assign_every_partition(_broker(declared), {"referrals.intake": 0})
    assert len(declared._partitions) == 4
