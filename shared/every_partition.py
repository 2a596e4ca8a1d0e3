"""KAFKA_ASSIGNMENT=all: one replica reads every partition of its topic, with no consumer group to join.

A restart then waits for nothing but the process's own start (on the embedded broker a group join takes ~6 s
of fixed pauses). Offsets are still committed under the group's name, by a consumer that is no member of it.

What the group protocol gave for free is done here: knowing when the broker forgot. The embedded broker keeps
everything in memory, so after its restart the relays publish again into new, shorter logs, and a consumer must
read those from the beginning (its inbox drops what it handled). A member learns of it because its group is
gone; this consumer checks after every new connection to the broker, before it handles or commits anything
fetched over it: its committed offsets still there (as it committed them) mean the same broker, so it goes on;
gone, it reads from the beginning. For that proof no commit may reach a broker that restarted: each commit is
sent once, only over a connection already checked (aiokafka would send one again over a new connection).
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.client import ConnectionGroup
from aiokafka.conn import AIOKafkaConnection
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

log = logging.getLogger("tessera.consumer")

RETRY_SECONDS = 1.0


def commit_failed(exc: KafkaError, partition: TopicPartition) -> None:
    """An offset not committed: the records are read again, and the inbox drops what was handled."""
    log.warning("offset commit failed; the records will be read again", extra={
        "error": type(exc).__name__, "topic": partition.topic, "partition": partition.partition})


class EveryPartition:
    """The check of the broker's memory for a consumer that assigned itself every partition."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer
        # the connections open now: the positions a start takes are the broker's own committed offsets
        self._checked = self._connected()
        self._committed: dict[TopicPartition, int] = {}  # what this process committed, by partition
        self._check_due = False

    def check_due(self) -> bool:
        """A connection not yet checked is open (the broker may be another), or a commit found none to use."""
        return self._check_due or bool(self._connected() - self._checked)

    async def commit(self, partition: TopicPartition, offset: int) -> bool:
        """Commit once, over a checked connection; False if it was not sent (a check is due) or failed."""
        coordinator = self._consumer._coordinator  # noqa: SLF001  aiokafka's commit would retry over a new connection
        try:
            await coordinator.ensure_coordinator_known()
            connection = self._client_connections().get((coordinator.coordinator_id, ConnectionGroup.COORDINATION))
            if connection is None or not connection.connected() or self.check_due():
                self._check_due = True
                return False
            # sent at once, with no await before it reaches the socket: it cannot go to a broker not checked
            await coordinator._do_commit_offsets(None, {partition: OffsetAndMetadata(offset, "")})  # noqa: SLF001
        except KafkaError as exc:
            commit_failed(exc, partition)
            return False
        self._committed[partition] = offset
        return True

    async def check(self) -> None:
        """Go on from the broker's committed offsets where they are what this process committed; read from the
        beginning where they are gone (a broker that restarted and forgot) or were never committed."""
        consumer = self._consumer
        partitions = sorted(consumer.assignment())
        while True:
            connections = self._connected()
            try:
                committed = await consumer._coordinator.fetch_committed_offsets(partitions)  # noqa: SLF001
                break
            except KafkaError as exc:
                log.warning("reading committed offsets failed, retrying", extra={"error": type(exc).__name__})
                await asyncio.sleep(RETRY_SECONDS)
        again, forgotten = [], []
        for partition in partitions:
            theirs = committed.get(partition)
            ours = self._committed.pop(partition, None)
            if theirs is not None and theirs.offset >= 0 and ours in (None, theirs.offset):
                consumer.seek(partition, theirs.offset)
                self._committed[partition] = theirs.offset
                continue
            again.append(partition)
            if ours is not None:
                forgotten.append(partition.partition)
        if again:
            await consumer.seek_to_beginning(*again)
        if forgotten:
            log.warning("the broker forgot committed offsets: reading its partitions again from the beginning",
                        extra={"topic": partitions[0].topic, "partitions": forgotten})
        self._checked = connections
        self._check_due = False

    def _client_connections(self) -> dict[tuple[int, int], AIOKafkaConnection]:
        return self._consumer._client._conns  # type: ignore[no-any-return]  # noqa: SLF001

    def _connected(self) -> set[AIOKafkaConnection]:
        return {conn for conn in self._client_connections().values() if conn.connected()}
