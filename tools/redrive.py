"""Re-drive dead letters: publish messages from `<topic>.dlq` back to `<topic>`, untouched.

    python -m tools.redrive referrals.intake --dry-run
    python -m tools.redrive referrals.intake --original-offsets 120-180 --error "handler failed" --service workflow

Each selected dead letter is published to its original topic with its original key, its
original value (byte for byte) and its original headers without the `dlq_*` ones the
dead-letter middleware added. Consumers drop a message they have already handled (their
inbox holds its id), so re-driving twice, or a message several services dead-lettered, has
no second effect. A truncated dead letter (`dlq_truncated`: its original was over 900 kB) is
never re-driven. Reads the dead-letter topic from the beginning up to its end when the tool
starts; prints offsets, services and reasons only (never values: they may hold personal data).
See deploy/runbooks/dlq-redrive.md.
"""

import argparse
import asyncio
import sys
from collections import Counter
from dataclasses import dataclass, replace

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared import topics
from shared.broker import connection_options, producer_options
from shared.log_ends import log_ends
from shared.settings import Settings


@dataclass(frozen=True)
class Letter:
    """One dead letter and what the tool did with it."""

    dlq_partition: int
    dlq_offset: int
    original_partition: int | None
    original_offset: int | None
    service: str | None
    error: str
    action: str  # "redriven", "would redrive", "skipped: <why>"


@dataclass(frozen=True)
class Selection:
    """Which dead letters to re-drive; every condition given must hold."""

    original_partition: int | None = None
    from_offset: int | None = None  # original offsets, inclusive
    to_offset: int | None = None
    error_contains: str | None = None
    service: str | None = None

    def picks(self, partition: int | None, offset: int | None, error: str, service: str | None) -> bool:
        if self.original_partition is not None and partition != self.original_partition:
            return False
        if self.from_offset is not None and (offset is None or offset < self.from_offset):
            return False
        if self.to_offset is not None and (offset is None or offset > self.to_offset):
            return False
        if self.error_contains is not None and self.error_contains.lower() not in error.lower():
            return False
        return self.service is None or service == self.service


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


async def redrive(topic: str, selection: Selection = Selection(), *, dry_run: bool = False,
                  settings: Settings | None = None) -> list[Letter]:
    """Re-publish the selected dead letters of `topic`; with dry_run, only say what would be re-driven."""
    settings = settings or Settings(service_name="redrive")
    dlq = topics.dlq(topic)
    consumer = AIOKafkaConsumer(**connection_options(settings), enable_auto_commit=False,
                                max_partition_fetch_bytes=4_000_000)
    producer = None if dry_run else AIOKafkaProducer(**producer_options(settings), max_request_size=4_000_000)
    await consumer.start()
    if producer is not None:
        await producer.start()
    letters: list[Letter] = []
    try:
        partitions = [TopicPartition(dlq, p) for p in sorted(consumer.partitions_for_topic(dlq) or ())]
        if not partitions:
            raise SystemExit(f"no such topic: {dlq}")
        ends = await log_ends(consumer, partitions)  # what is there now; later dead letters wait for the next run
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        pending = {tp for tp in partitions if ends[tp] > await consumer.position(tp)}
        sends = []
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=1000)
            for tp, records in batch.items():
                for r in records:
                    if r.offset >= ends[tp]:
                        continue
                    headers = {k: v for k, v in (r.headers or ())}
                    text = {k: v.decode("utf-8", "replace") for k, v in headers.items()}
                    found = Letter(tp.partition, r.offset, _int(text.get("dlq_original_partition")),
                                   _int(text.get("dlq_original_offset")), text.get("dlq_service"),
                                   text.get("dlq_error", ""), action="")
                    if text.get("dlq_original_topic", topic) != topic or not selection.picks(
                            found.original_partition, found.original_offset, found.error, found.service):
                        continue
                    if text.get("dlq_truncated") == "true":
                        letters.append(replace(found, action="skipped: truncated"))
                    elif producer is None:
                        letters.append(replace(found, action="would redrive"))
                    else:
                        original = [(k, v) for k, v in headers.items() if not k.startswith("dlq_")]
                        sends.append(await producer.send(topic, value=r.value, key=r.key, headers=original))
                        letters.append(replace(found, action="redriven"))
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        await asyncio.gather(*sends)
    finally:
        await consumer.stop()
        if producer is not None:
            await producer.stop()
    return letters


def _range(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    return int(low), int(high or low)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.redrive", description=__doc__.splitlines()[0])
    parser.add_argument("topic", help="the original topic, e.g. referrals.intake (reads referrals.intake.dlq)")
    parser.add_argument("--original-partition", type=int)
    parser.add_argument("--original-offsets", type=_range, metavar="FROM-TO",
                        help="original offsets, inclusive (one number for one offset)")
    parser.add_argument("--error", help="only dead letters whose dlq_error contains this text")
    parser.add_argument("--service", help="only those this service dead-lettered (dlq_service)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be re-driven; publish nothing")
    args = parser.parse_args(argv)
    low, high = args.original_offsets or (None, None)
    selection = Selection(args.original_partition, low, high, args.error, args.service)
    letters = asyncio.run(redrive(args.topic, selection, dry_run=args.dry_run))
    for letter in letters:
        sys.stdout.write(f"{letter.action:<20} dlq {letter.dlq_partition}/{letter.dlq_offset}  original "
                         f"{letter.original_partition}/{letter.original_offset}  {letter.service or '-'}  "
                         f"{letter.error[:120]}\n")
    summary = Counter(letter.action for letter in letters)
    sys.stdout.write(f"{args.topic}.dlq: {dict(summary) or 'nothing selected'}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
