"""Issue #21 §1: identity is verified at every hop, not asserted (docs/contracts.md "Who sent it").

Forgeries go straight to the broker, as anyone on the network could send them: unsigned, signed by a key
nobody trusts, a genuine signature over an edited `data.actor` or `data`, an expired signature, one from a
producer that may not write that topic, and a replay. Not one is acted on: a command is answered
`command.rejected` code `unauthenticated` with its reason, an event is dead-lettered by every consumer with its
reason, and each refusal is in the consumer's audit chain. The same message signed by its real sender is acted
on (the control: verification does not simply refuse everything).
"""

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from joserfc.jwk import OKPKey

from shared import producers, signing, topics
from shared.envelope import new_message
from shared.testing import EventLog, poll_until, publish, signed_as_sender, signer_of

HOS = {"worker_id": "hos-1", "roles": ["head_of_service"], "team_ids": []}
UNTRUSTED = signing.Signer(producers.DESK, OKPKey.generate_key("Ed25519"))
COMMANDS = {  # a command each service refuses for a reason of its own when it is genuine (unknown step, …)
    topics.WORKFLOW_COMMANDS: ("step.start", lambda: {"step_id": str(uuid.uuid4())}),
    topics.ALLOCATION_COMMANDS: ("worker_relationship.end", lambda: {"relationship_id": str(uuid.uuid4())}),
    topics.REFERRALS_COMMANDS: ("case_note.add", lambda: {
        "person_id": str(uuid.uuid4()), "title": "Visit", "type": "Visit", "text": "seen at home"}),
    topics.NOTIFICATIONS_COMMANDS: ("task.complete", lambda: {"task_id": str(uuid.uuid4())}),  # R-RQ8
}


def _command(topic: str, subject: str | None = None) -> bytes:
    command_type, data = COMMANDS[topic]
    return new_message(command_type, producers.DESK, {"actor": HOS, **data()},
                       subject=subject or str(uuid.uuid4())).to_bytes()


def _edited(value: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    """Changed, with an id of its own: each try has its own answer."""
    body = json.loads(value)
    change(body)
    body["id"] = str(uuid.uuid4())
    return json.dumps(body).encode()


def _promoted(body: dict[str, Any]) -> None:
    body["data"]["actor"] = {**HOS, "worker_id": "tm-1"}


def _resigned(value: bytes, signer: signing.Signer, **signature: Any) -> bytes:
    body = json.loads(value)
    body["id"] = str(uuid.uuid4())
    body["signature"] = signer.signature(body, actor=body["data"].get("actor"), **signature)
    return json.dumps(body).encode()


def forgeries(genuine: bytes, topic: str) -> dict[str, bytes]:
    """Each way an impostor might try, named by the reason it must be refused with."""
    unsigned = {**json.loads(genuine), "id": str(uuid.uuid4())}
    del unsigned["signature"]
    other = "documents" if topic != topics.DOCUMENTS_EVENTS else "scheduler"
    as_other = _edited(json.dumps(unsigned).encode(), lambda b: b.update(source=f"tessera/{other}"))
    return {
        "not signed": json.dumps(unsigned).encode(),
        "signed by a key nobody trusts": _resigned(json.dumps(unsigned).encode(), UNTRUSTED),
        "changed after signing": _edited(genuine, lambda b: b["data"].update(note="edited")),
        "signature expired": _resigned(json.dumps(unsigned).encode(), signer_of(unsigned["source"]),
                                       now=time.time() - 3600),
        "may not send": _resigned(as_other, signer_of(f"tessera/{other}")),
    }


@pytest.mark.parametrize("topic", sorted(COMMANDS))
async def test_forged_commands_are_answered_unauthenticated_and_change_nothing(
        infra, db, workflow, allocation, referrals, notifications, topic):
    answers = producers.ANSWERS[topic]
    genuine = signed_as_sender(topic, _command(topic))
    promoted = _edited(genuine, _promoted)
    tries = {**forgeries(genuine, topic), "data.actor differs from the signed actor": promoted}
    # the marker's answer is keyed by the genuine's subject, so it comes after the genuine's (and a replay's)
    replay_marker = signed_as_sender(topic, _command(topic, subject=json.loads(genuine)["subject"]))
    async with EventLog(infra.bootstrap, [answers]) as answered:
        await publish(infra.bootstrap, topic, [("k", value) for value in tries.values()], signed=False)
        await publish(infra.bootstrap, topic, [("k", genuine), ("k", genuine), ("k", replay_marker)], signed=False)
        await answered.wait_for(lambda s: s.body.get("causationid") == json.loads(replay_marker)["id"], timeout=60)
        for reason, value in tries.items():
            outcome = [s.body for s in answered.seen if s.body.get("causationid") == json.loads(value)["id"]]
            assert len(outcome) == 1 and outcome[0]["type"] == "command.rejected", (reason, outcome)
            assert outcome[0]["data"]["code"] == "unauthenticated" and reason in outcome[0]["data"]["message"]
        genuine_outcomes = [s.body["data"] for s in answered.seen if s.body.get("causationid") ==
                            json.loads(genuine)["id"]]
    assert len(genuine_outcomes) == 1, "the genuine command is handled once, its replay is a duplicate"
    assert genuine_outcomes[0].get("code") not in ("unauthenticated", None), genuine_outcomes  # refused by a rule
    service = topic.split(".")[0]
    refused = await db.fetch(f"SELECT action, actor_id, details FROM {service}.audit_log WHERE message_id = ANY($1)",
                             [json.loads(v)["id"] for v in tries.values()])
    assert len(refused) == len(tries)
    assert {(r["action"], r["actor_id"]) for r in refused} == {("message.refused_unauthenticated", "unauthenticated")}


# each signed events topic and the services that consume it
CONSUMERS = {
    topics.WORKFLOW_EVENTS: ("allocation", "documents", "notifications", "clocks"),
    topics.REFERRALS_EVENTS: ("workflow", "allocation", "notifications"),
    topics.SCHEDULER_DUE: ("workflow", "allocation", "notifications", "clocks"),
    topics.CLOCKS_EVENTS: ("notifications",),
    topics.SCHEDULER_TIMERS: ("scheduler",),
}
EVENTS = {
    topics.WORKFLOW_EVENTS: ("step.created", "tessera/workflow"),
    topics.REFERRALS_EVENTS: ("referral.accepted", "tessera/referrals"),
    topics.SCHEDULER_DUE: ("timer.due", "tessera/scheduler"),
    topics.CLOCKS_EVENTS: ("clock.warning", "tessera/clocks"),
    topics.SCHEDULER_TIMERS: ("timer.set", "tessera/workflow"),
}


@pytest.mark.parametrize("topic", sorted(CONSUMERS))
async def test_forged_events_are_dead_lettered_by_every_consumer_with_their_reason(
        infra, db, scheduler_dsn, workflow, allocation, referrals, notifications, documents, scheduler, clocks, topic):
    event_type, source = EVENTS[topic]
    genuine = signed_as_sender(topic, new_message(event_type, source, {"note": "forged"},
                                                  subject=str(uuid.uuid4())).to_bytes())
    tries = forgeries(genuine, topic)
    await publish(infra.bootstrap, topic, [(None, value) for value in tries.values()], signed=False)
    scheduler_db = await asyncpg.create_pool(scheduler_dsn, min_size=1, max_size=1)
    try:
        for service in CONSUMERS[topic]:
            await _each_set_aside_and_audited(scheduler_db if service == "scheduler" else db, service, tries)
    finally:
        await scheduler_db.close()


async def _each_set_aside_and_audited(db: asyncpg.Pool, service: str, tries: dict[str, bytes]) -> None:
    # 180 s: a consumer may first work through a backlog (the scheduler tests fire thousands of timer.due)
    async def all_set_aside() -> list[Any] | None:
        rows = await db.fetch(f"SELECT value, error FROM {service}.dead_letters WHERE value = ANY($1::bytea[])",
                              list(tries.values()))
        return rows if len(rows) == len(tries) else None

    errors = {bytes(r["value"]): r["error"] for r in await poll_until(all_set_aside, 180, f"{service} set aside all")}
    for reason, value in tries.items():
        assert errors[value].startswith("unauthenticated: ") and reason in errors[value], (service, errors[value])
    ids = [json.loads(value)["id"] for value in tries.values()]
    refused = await db.fetchval(f"SELECT count(*) FROM {service}.audit_log WHERE action = $1 AND message_id ="
                                " ANY($2::uuid[])", "message.refused_unauthenticated", ids)
    assert refused == len(tries)
