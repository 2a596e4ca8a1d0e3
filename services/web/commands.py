"""Commands to Kafka with the signed-in user as actor, and each one's outcome read back by causationid."""

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from services.web import refusals
from shared import fetch_wait, topics
from shared.broker import connection_options
from shared.commands import allocation, notifications, referrals, workflow
from shared.commands.base import Command
from shared.envelope import new_message
from shared.settings import Settings
from shared.signing import Signer, Unauthenticated, Verifier

log = logging.getLogger(__name__)
SOURCE = "tessera/web"
# the broker did not confirm a command: it may or may not have landed, so the worker looks before sending it again
NOT_CONFIRMED = {"code": "not_confirmed",
                 "message": "The message service did not confirm it took your change, so it may not have been sent."
                            " Reload the page to see whether it was done before you send it again."}
ROUTES: dict[str, tuple[str, str, dict[str, type[Command]]]] = {
    "workflow": (topics.WORKFLOW_COMMANDS, topics.WORKFLOW_EVENTS, workflow.COMMANDS),
    "allocation": (topics.ALLOCATION_COMMANDS, topics.ALLOCATION_EVENTS, allocation.COMMANDS),
    "referrals": (topics.REFERRALS_COMMANDS, topics.REFERRALS_EVENTS, referrals.COMMANDS),
    "notifications": (topics.NOTIFICATIONS_COMMANDS, topics.NOTIFICATIONS_EVENTS, notifications.COMMANDS),
}
ANSWERS = [answers for _, answers, _ in ROUTES.values()]


def route(command_type: str) -> tuple[str, str, dict[str, type[Command]]]:
    for commands_topic, answers, models in ROUTES.values():
        if command_type in models:
            return commands_topic, answers, models
    raise KeyError(command_type)


@dataclass
class Outcome:
    """What one command caused: its events, or one `command.rejected`; `pending` if none came in time."""

    command_id: str
    command_type: str
    events: list[dict[str, Any]] = field(default_factory=list)
    pending: bool = False
    local_reasons: list[dict[str, Any]] = field(default_factory=list)
    unconfirmed: bool = False  # the broker did not confirm it took the command: it may or may not have been sent

    @property
    def types(self) -> list[str]:
        return [e.get("type", "") for e in self.events]

    @property
    def rejected(self) -> bool:
        return self.unconfirmed or bool(self.local_reasons) or "command.rejected" in self.types

    @property
    def ok(self) -> bool:
        return not self.pending and not self.rejected

    @property
    def reasons(self) -> list[dict[str, Any]]:
        if self.unconfirmed:
            return [NOT_CONFIRMED]
        if self.local_reasons:
            return self.local_reasons
        for event in self.events:
            if event.get("type") == "command.rejected":
                data = event.get("data", {})
                return data.get("reasons") or [{"code": data.get("code", "rejected"),
                                                "message": data.get("message", "")}]
        return []

    def of(self, type_: str) -> dict[str, Any] | None:
        return next((e.get("data", {}) for e in self.events if e.get("type") == type_), None)


class _Waiter:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.done = asyncio.Event()

    def add(self, body: dict[str, Any]) -> None:
        self.events.append(body)
        if len(self.events) >= int(body.get("outcomecount", 1) or 1):
            self.done.set()


class CommandBus:
    """Publishes commands and reads every partition of the answer topics (no group: each replica sees all)."""

    def __init__(self, settings: Settings, producer: AIOKafkaProducer, signer: Signer, verifier: Verifier) -> None:
        self._settings = settings
        self._producer = producer
        self._signer = signer  # the desk's key: the signed-in worker is the actor inside what is signed
        self._verifier = verifier
        self._consumer: AIOKafkaConsumer | None = None
        self._waiters: dict[str, _Waiter] = {}
        self.listening = asyncio.Event()

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(**connection_options(self._settings), enable_auto_commit=False,
                                          fetch_max_wait_ms=self._settings.kafka_fetch_max_wait_ms,
                                          client_id=f"tessera-{self._settings.service_name}-outcomes")
        await self._consumer.start()
        fetch_wait.follow_traffic(self._consumer, self._settings)
        partitions = [TopicPartition(t, p) for t in ANSWERS
                      for p in (self._consumer.partitions_for_topic(t) or {0})]
        self._consumer.assign(partitions)
        await self._consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve the lazy seek now: an outcome published after this is seen
            await self._consumer.position(tp)
        self.listening.set()

    async def run(self) -> None:
        assert self._consumer is not None
        try:
            while True:
                batch = await self._consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for record in records:
                        self._seen(record)
        finally:
            with contextlib.suppress(Exception):
                await self._consumer.stop()

    def _seen(self, record: Any) -> None:
        if not record.value or not self._waiters:
            return
        try:
            body = json.loads(record.value)
        except ValueError:
            return
        if not isinstance(body, dict):
            return
        waiter = self._waiters.get(str(body.get("causationid")))
        if waiter is None:
            return
        try:  # an outcome the owning service did not sign is not shown to the worker
            self._verifier.verify(body, record.topic, record.timestamp / 1000)
        except Unauthenticated as refused:
            log.warning("outcome refused: unauthenticated", extra={"topic": record.topic, "reason": refused.reason})
            return
        waiter.add(body)

    async def send(self, type_: str, actor: dict[str, Any], *, key: str | None, timeout: float,
                   **arguments: Any) -> Outcome:
        """Validate, publish and await the single outcome of one command."""
        commands_topic, _, models = route(type_)
        data = {"actor": actor, **{k: v for k, v in arguments.items() if v is not None}}
        try:
            models[type_].model_validate(data)
        except ValidationError as refused:  # in the words of the worker's form, never pydantic's
            return Outcome("", type_, local_reasons=refusals.in_words(type_, refused))
        envelope = new_message(type_, SOURCE, data, subject=key)
        command_id = str(envelope.id)
        waiter = self._waiters[command_id] = _Waiter()
        try:
            signed = self._signer.signed(envelope.to_bytes(), with_actor=True)
            try:
                # within the page's own wait, not the producer's 40 s: the message may still go out later, which
                # is what "not confirmed" says (the worker looks before sending again)
                await asyncio.wait_for(
                    self._producer.send_and_wait(commands_topic, signed, key=key.encode() if key else None), timeout)
            except (KafkaError, TimeoutError) as failed:  # the broker away, refusing or slow: told, not a 500
                log.warning("command not confirmed by the broker", extra={
                    "command_type": type_, "command_id": command_id, "error": type(failed).__name__})
                return Outcome(command_id, type_, unconfirmed=True)
            log.info("command sent", extra={"command_type": type_, "command_id": command_id})
            try:
                await asyncio.wait_for(waiter.done.wait(), timeout)
            except TimeoutError:
                return Outcome(command_id, type_, waiter.events, pending=True)
            return Outcome(command_id, type_, waiter.events)
        finally:
            self._waiters.pop(command_id, None)
