"""Hostile and malformed intake: every bad message is answered or dead-lettered, none stops intake."""

import json

from shared import topics
from shared.testing import EventLog, publish
from tests.factories import referral_message, unique_referral

DLQ = topics.dlq(topics.REFERRALS_INTAKE)


def _deeply_nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


UNDECODABLE = {
    "two megabytes": b'{"x": "' + b"a" * 2_000_000 + b'"}',
    "deep nesting": _deeply_nested(100_000),
    "invalid utf-8": b'{"specversion": "1.0", "type": "\xc3\x28"}',
    "empty": b"",
    "a number": b"12345678901234567890123456789",
    "cloudevent without id": json.dumps({"specversion": "1.0", "type": "referral.received", "source": "x",
                                         "time": "2026-01-01T00:00:00Z", "data": {}}).encode(),
}


async def test_undecodable_messages_are_dead_lettered_with_their_reason_and_intake_goes_on(infra, referrals,
                                                                                            events: EventLog):
    await publish(infra.bootstrap, topics.REFERRALS_INTAKE, [("hostile", v) for v in UNDECODABLE.values()])
    good = referral_message(unique_referral())
    await publish(infra.bootstrap, topics.REFERRALS_INTAKE, [("hostile", good.to_bytes())])
    await events.wait_for(lambda s: s.caused_by(good.id) and s.type == "referral.accepted", 60)
    dead = events.matching(lambda s: s.topic == DLQ and s.key == "hostile")
    assert len(dead) == len(UNDECODABLE)
    assert all(d.headers["dlq_error"] for d in dead)
    small = {v for v in UNDECODABLE.values() if len(v) < 900_000}
    assert small <= {d.value for d in dead}  # the original bytes, untouched
    [big] = [d for d in dead if d.headers.get("dlq_truncated") == "true"]
    assert int(big.headers["dlq_original_size"]) == len(UNDECODABLE["two megabytes"])


async def test_hostile_field_values_are_rejected_by_field_without_echoing_them(infra, referrals, events):
    cases = {
        "ansi escape in a name": {"person": {"first_name": "\x1b[31mRed"}},
        "crlf in a name": {"person": {"last_name": "Smith\r\nInjected: header"}},
        "huge number as a date": {"person": {"date_of_birth": 10**30}},
        "wrong types everywhere": {"service": 7, "urgency": ["urgent"], "consent_to_share": "perhaps"},
        "template string as category": {"category": "{{7*7}}"},
    }
    sent = {}
    for name, change in cases.items():
        data = unique_referral()
        for key, value in change.items():
            data[key] = {**data[key], **value} if isinstance(value, dict) else value
        sent[name] = referral_message(data)
    await publish(infra.bootstrap, topics.REFERRALS_INTAKE,
                  [(m.data["referral_id"], m.to_bytes()) for m in sent.values()])
    for name, message in sent.items():
        [outcome] = await events.wait_for(lambda s, m=message: s.caused_by(m.id) and s.type.startswith("referral."))
        assert outcome.type == "referral.rejected", name
        assert outcome.data["errors"], name
        for bad in ("\x1b[31m", "Injected", "{{7*7}}", "perhaps"):
            assert bad not in outcome.value.decode(), name


async def test_sql_in_free_text_is_stored_as_text(infra, referrals, events, db):
    data = unique_referral(reason="Robert'); DROP TABLE referrals.people;-- needs help at home")
    message = referral_message(data)
    await publish(infra.bootstrap, topics.REFERRALS_INTAKE, [(data["referral_id"], message.to_bytes())])
    [accepted] = await events.wait_for(lambda s: s.caused_by(message.id) and s.type == "referral.accepted")
    stored = await db.fetchval("SELECT details->>'reason' FROM referrals.referrals WHERE referral_id = $1",
                               data["referral_id"])
    assert stored == data["reason"]
    assert await db.fetchval("SELECT count(*) FROM referrals.people") > 0


async def test_a_burst_of_300_referrals_is_answered_once_each(infra, referrals, events):
    burst = [referral_message(unique_referral()) for _ in range(300)]
    ids = {str(m.id) for m in burst}
    await publish(infra.bootstrap, topics.REFERRALS_INTAKE, [(m.data["referral_id"], m.to_bytes()) for m in burst])
    answers = await events.wait_for(lambda s: s.type == "referral.accepted" and s.body.get("causationid") in ids,
                                    120, 300)
    assert {a.body["causationid"] for a in answers} == ids
