"""Where a partition's log really ends, on Apache Kafka and on the embedded Tansu alike.

Tansu answers ListOffsets (`end_offsets`) with its last batch's FIRST offset + 1, short by the rest of that
batch; the high watermark in its fetch answers is the true end. A reader that stops at the ListOffsets
answer misses the tail of the last batch, and a check that compares it with offsets it was acknowledged
sees a log that went back when it did not.
"""

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition

FETCH_TIMEOUT_SECONDS = 10.0


async def log_ends(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    """The offset after each partition's last message.

    Assigns the partitions to `consumer` to fetch them, then unassigns them: pass a consumer nothing else
    reads with meanwhile.
    """
    return await high_watermarks(consumer, await consumer.end_offsets(partitions))


async def high_watermarks(consumer: AIOKafkaConsumer, listed: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
    """The true ends of partitions whose ListOffsets answers are `listed`, read from one fetch of each last batch.

    An answer of 0 is an empty log on either broker and needs no fetch. Raises TimeoutError when the broker
    does not answer the fetch within FETCH_TIMEOUT_SECONDS.
    """
    doubtful = [tp for tp, end in listed.items() if end > 0]
    if not doubtful:
        return dict(listed)
    consumer.assign(doubtful)
    try:
        for tp in doubtful:
            consumer.seek(tp, listed[tp] - 1)  # a fetch from here answers with the last batch, never waits
        async with asyncio.timeout(FETCH_TIMEOUT_SECONDS):
            while any(consumer.highwater(tp) is None for tp in doubtful):
                await consumer.getmany(*doubtful, timeout_ms=100)
        fetched = {tp: consumer.highwater(tp) or 0 for tp in doubtful}
        return {tp: max(end, fetched.get(tp, 0)) for tp, end in listed.items()}
    finally:
        consumer.unsubscribe()
