"""Copies are dropped by id before they are decoded (shared/broker.py `_copies`): the id must be read exactly as
decoding would read it, and nothing else may pass for one."""

import json
import uuid

from shared.envelope import decode, decode_binary, message_id_of, new_message

MESSAGE = new_message("timer.set", "tests", {"key": "k"}, subject="s")


def test_a_structured_message_gives_the_id_decoding_gives():
    assert message_id_of(MESSAGE.to_bytes(), None) == decode(MESSAGE.to_bytes()).id == MESSAGE.id


def test_a_binary_mode_message_gives_its_ce_id_header():
    headers = [("ce_specversion", b"1.0"), ("ce_id", str(MESSAGE.id).encode()), ("ce_type", b"timer.set"),
               ("ce_source", b"tests"), ("ce_time", b"2026-12-04T10:00:00Z"),
               ("content-type", b"application/json")]
    assert message_id_of(b'{"key": "k"}', headers) == decode_binary(b'{"key": "k"}', headers).id == MESSAGE.id


def test_anything_but_a_canonical_uuid_string_is_no_id():
    body = json.loads(MESSAGE.to_bytes())
    for odd in (f"urn:uuid:{MESSAGE.id}", f"{{{MESSAGE.id}}}", MESSAGE.id.hex, 12, None, ["x"], "x" * 36):
        assert message_id_of(json.dumps({**body, "id": odd}).encode(), None) is None, odd
    assert message_id_of(json.dumps({**body, "id": str(MESSAGE.id).upper()}).encode(), None) == MESSAGE.id


def test_an_undecodable_value_is_no_id():
    for raw in (None, b"", b"not json", b"[1, 2]", b'{"id": "\\u0000"}', b"\xff\xfe", b"[" * 100_000):
        assert message_id_of(raw, None) is None, raw[:20] if raw else raw


def test_a_fresh_id_is_read_as_it_is():
    fresh = uuid.uuid4()
    assert message_id_of(json.dumps({"id": str(fresh)}).encode(), None) == fresh
