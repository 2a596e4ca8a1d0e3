"""PII canary run (issue #11 §3): every synthetic personal value the factories hand out is registered
here, and at the end of the session the service logs, the scraped /metrics, the dead-letter reasons
and the rejections are scanned for any of them; events must carry no stack trace either.

Values are looked up by shape, not by substring search of each value: the text is cut into words,
digit runs, dates, postcodes and email addresses once, and each piece normalised and looked up, so an
NHS number written "999 012 3456", a birth date written 14/03/1948 or a postcode written "le11aa" is
still found, and thousands of registered values cost one pass over the text.
"""

import asyncio
import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

TRACEBACK = "Traceback (most recent call last)"
# Prefixes of every factory-made name: found even when a value never went through the registry.
FACTORY_NAME_PREFIXES = ("testfirst", "testperson", "testreferrer")

_WORD = re.compile(r"[A-Za-z]+")
_DIGITS = re.compile(r"\+?\d(?:[ -]?\d)*")
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE)
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_UK_DATE = re.compile(r"(?<!\d)(\d{1,2})/(\d{1,2})/(\d{4})(?!\d)")
_POSTCODE = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{1,2}\d[A-Za-z\d]?) ?(\d[A-Za-z]{2})(?![A-Za-z0-9])")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_TEXT_KINDS = frozenset({"first name", "last name", "referrer name", "address line", "town"})


@dataclass(frozen=True)
class Hit:
    """A registered personal value found somewhere it must never be."""

    where: str
    kind: str
    value: str

    def __str__(self) -> str:
        return f"{self.where}: {self.kind} {self.value!r}"


class Registry:
    """The personal values handed out this session, by normalised lookup key."""

    def __init__(self) -> None:
        self._by_key: dict[str, tuple[str, str]] = {}

    def __len__(self) -> int:
        return len(self._by_key)

    def add(self, kind: str, value: object) -> None:
        """Register one value; names and addresses by each word of 6+ letters ("Sam", "Lane" are too common)."""
        if not isinstance(value, str) or not value.strip():
            return
        for key in _keys_of(kind, value):
            self._by_key.setdefault(key, (kind, value))

    def find(self, text: str, where: str) -> set[Hit]:
        """Every registered value (and every factory-made name) in `text`; UUIDs are ids, not read as digits
        (the digit groups of "…-9995-010801…" would otherwise make a registered NHS number)."""
        hits = set()
        for key in _candidate_keys(_UUID.sub(" ", text)):
            if key in self._by_key:
                hits.add(Hit(where, *self._by_key[key]))
            elif key.startswith("w:") and key[2:].startswith(FACTORY_NAME_PREFIXES):
                hits.add(Hit(where, "factory-made name (unregistered)", key[2:]))
        return hits


def _keys_of(kind: str, value: str) -> list[str]:
    if kind in _TEXT_KINDS:
        return [f"w:{w.casefold()}" for w in _WORD.findall(value) if len(w) >= 6]
    digits = re.sub(r"\D", "", value)
    if kind == "NHS number":
        return [f"d:{digits}"]
    if kind == "phone":
        return [f"d:{digits}", f"d:44{digits[1:]}"] if digits.startswith("0") else [f"d:{digits}"]
    if kind == "date of birth":
        return [f"date:{value.strip()}"]  # ISO, as the factories write it
    if kind == "postcode":
        return [f"pc:{''.join(value.split()).upper()}"]
    if kind == "email":
        return [f"e:{value.strip().casefold()}"]
    raise ValueError(f"unknown kind of personal value: {kind}")


def _candidate_keys(text: str) -> Iterator[str]:
    for word in _WORD.findall(text):
        yield f"w:{word.casefold()}"
    for run in _DIGITS.findall(text):
        digits = re.sub(r"\D", "", run)
        for width in (10, 11, 12):  # NHS number, UK phone, phone with +44
            for start in range(len(digits) - width + 1):
                yield f"d:{digits[start:start + width]}"
    for y, m, d in _ISO_DATE.findall(text):
        yield f"date:{y}-{m}-{d}"
    for d, m, y in _UK_DATE.findall(text):
        yield f"date:{y}-{int(m):02d}-{int(d):02d}"
    for outward, inward in _POSTCODE.findall(text):
        yield f"pc:{outward.upper()}{inward.upper()}"
    for email in _EMAIL.findall(text):
        yield f"e:{email.casefold()}"


REGISTRY = Registry()


def scan_files(registry: Registry, root: Path) -> set[Hit]:
    """Every registered value in any file under `root` (service logs, broker log, scraped metrics)."""
    hits: set[Hit] = set()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        hits |= registry.find(path.read_text(errors="replace"), path.name)
    return hits


@dataclass(frozen=True)
class Record:
    """One message read back from a topic, as much of it as the scan needs."""

    topic: str
    offset: int
    headers: dict[str, str]
    value: bytes


def scan_records(registry: Registry, records: Iterable[Record]) -> list[str]:
    """Findings in dead-letter reasons, rejections and events: personal values and stack traces."""
    findings: list[str] = []
    for r in records:
        where = f"{r.topic}@{r.offset}"
        if r.topic.endswith(".dlq"):
            reason = r.headers.get("dlq_error", "")
            findings += [f"{hit} (dlq_error)" for hit in registry.find(reason, where)]
            findings += [f"{where}: stack trace in dlq_error"] if TRACEBACK in reason else []
        elif r.topic.endswith(".events"):
            text = r.value.decode("utf-8", "replace")
            findings += [f"{where}: stack trace in an event"] if TRACEBACK in text else []
            findings += [f"{hit} (rejection)" for hit in registry.find(_rejection_text(r.value), where)]
    return findings


def _rejection_text(value: bytes) -> str:
    """The data of a `*.rejected` event (its reasons and messages), else nothing: events may name people."""
    try:
        body = json.loads(value)
    except (ValueError, RecursionError):  # hostile input on an events topic: not a rejection of ours
        return ""
    if isinstance(body, dict) and str(body.get("type", "")).endswith(".rejected"):
        return json.dumps(body.get("data"), ensure_ascii=False)
    return ""


async def read_topics(bootstrap: str, names: Iterable[str], timeout: float = 120.0) -> list[Record]:
    """Everything on the named topics, from the beginning up to their end offsets now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        existing = await consumer.topics()
        parts = [TopicPartition(t, p) for t in names if t in existing for p in consumer.partitions_for_topic(t) or ()]
        if not parts:
            return []
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        return await asyncio.wait_for(_read_until(consumer, ends), timeout)
    finally:
        await consumer.stop()


async def _read_until(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> list[Record]:
    records: list[Record] = []
    while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
        for batch in (await consumer.getmany(timeout_ms=500)).values():
            records += [Record(m.topic, m.offset, {k: v.decode("utf-8", "replace") for k, v in m.headers or ()},
                               m.value or b"") for m in batch]
    return records


def save_metrics(urls: dict[str, str], log_dir: Path) -> None:
    """Keep each running service's /metrics text next to its log, for the end-of-session scan."""
    for name, url in urls.items():
        try:
            text = httpx.get(f"{url}/metrics", timeout=5).text
        except httpx.HTTPError:
            continue  # a service a test killed has no metrics left to leak
        (log_dir / f"{name}.metrics").write_text(text)


SUMMARY: list[str] = []  # what the end-of-session scan covered, for the terminal summary


def check_session(bootstrap: str, log_dir: Path, topic_names: Iterable[str],
                  registry: Registry = REGISTRY) -> None:
    """Fail the run, naming where and what, if any registered value or stack trace leaked."""
    started = time.monotonic()
    files = [p.name for p in sorted(log_dir.rglob("*")) if p.is_file()]
    records = asyncio.run(read_topics(bootstrap, topic_names))
    findings = [str(hit) for hit in sorted(scan_files(registry, log_dir), key=str)]
    findings += scan_records(registry, records)
    SUMMARY.append(f"PII canary: {len(registry)} registered lookup keys; scanned {len(files)} files "
                   f"({', '.join(files)}) and {len(records)} messages in {time.monotonic() - started:.1f}s: "
                   f"{len(findings)} leak(s)")
    if findings:
        raise AssertionError(f"PII canary: {len(findings)} leak(s) of {len(registry)} registered lookup keys:\n"
                             + "\n".join(findings))
