"""CloudEvents binary content mode on the topics outside systems write (issue #20 §6), decoded without I/O.

The Kafka protocol binding: a `content-type` of application/cloudevents* is structured mode, else a
`ce_specversion` header is binary mode (attributes in `ce_<name>` headers, the data as the value), else
structured (the value is the whole event).
"""

import uuid

import pytest

from shared.audit import Cause, entry_of
from shared.envelope import Undecodable, decode, decode_either_mode, is_binary_mode, new_message
from tests.factories import binary_mode, referral_message, unique_referral


def referral():
    envelope = referral_message(unique_referral())
    return envelope.model_copy(update={"correlationid": "upstream-trace-7", "subject": "R-42"})


def reason_of(raw, headers) -> str:
    with pytest.raises(Undecodable) as refused:
        decode_either_mode(raw, headers)
    return refused.value.reason


def without(headers, *names):
    return [(k, v) for k, v in headers if k not in names]


@pytest.mark.parametrize(("headers", "binary"), [
    ([("ce_specversion", b"1.0")], True),
    ([("ce_specversion", b"1.0"), ("content-type", b"application/json")], True),
    ([("ce_specversion", b"1.0"), ("Content-Type", b"Application/CloudEvents+JSON; charset=utf-8")], False),
    ([("content-type", b"application/cloudevents+json"), ("ce_id", b"x"), ("ce_type", b"t")], False),
    ([("content-type", b"application/json")], False),  # no ce_specversion: a structured value
    ([], False),
    (None, False),  # existing producers send no headers
])
def test_the_mode_is_chosen_as_the_kafka_binding_says(headers, binary):
    assert is_binary_mode(headers) is binary


def test_a_binary_mode_referral_decodes_to_the_same_event_as_its_structured_form():
    envelope = referral()
    headers, value = binary_mode(envelope)
    assert decode_either_mode(value, headers) == envelope == decode_either_mode(envelope.to_bytes(), None)
    assert decode_either_mode(value, headers).correlationid == "upstream-trace-7"  # an extension attribute


def test_the_content_type_may_carry_parameters_or_be_absent():
    envelope = referral()
    headers, value = binary_mode(envelope, "application/json; charset=utf-8")
    assert decode_either_mode(value, headers) == envelope
    headers, value = binary_mode(envelope, None)
    assert decode_either_mode(value, headers) == envelope


def test_a_structured_value_with_the_cloudevents_content_type_is_still_structured():
    envelope = referral()
    headers = [("content-type", b"application/cloudevents+json"), ("ce_id", str(envelope.id).encode())]
    assert decode_either_mode(envelope.to_bytes(), headers) == envelope


def test_every_missing_or_bad_attribute_is_named_without_its_value():
    headers, value = binary_mode(referral())
    headers = [*without(headers, "ce_id", "ce_source", "ce_time"), ("ce_time", b"yesterday-at-noon-9434765918")]
    reason = reason_of(value, headers)
    assert reason.startswith("not a CloudEvent (binary mode): ")
    for attribute in ("ce_id: Field required", "ce_source: Field required", "ce_time: "):
        assert attribute in reason
    assert "9434765918" not in reason and "yesterday" not in reason


def test_a_bad_value_and_bad_attributes_are_named_together():
    headers, _ = binary_mode(referral())
    reason = reason_of(b"<referral>9434765918</referral>", [*without(headers, "ce_type"), ("ce_specversion", b"0.3")])
    assert "value: not JSON" in reason and "ce_type: Field required" in reason
    assert "ce_specversion: given more than once" in reason
    assert "9434765918" not in reason


@pytest.mark.parametrize(("change", "named"), [
    (lambda h, v: (h, b"[1, 2, 3]"), "value: the data is not a JSON object"),
    (lambda h, v: (h, b'{"a": "\\u0000"}'), "value: contains a NUL character"),
    (lambda h, v: ([*without(h, "content-type"), ("content-type", b"application/xml")], v), "content-type: "),
    (lambda h, v: ([*h, ("ce_id", str(uuid.uuid4()).encode())], v), "ce_id: given more than once"),
    (lambda h, v: ([*without(h, "ce_source"), ("ce_source", b"\xff\xfe")], v), "ce_source: not a UTF-8 string"),
    (lambda h, v: ([*without(h, "ce_source"), ("ce_source", None)], v), "ce_source: not a UTF-8 string"),
    (lambda h, v: ([*h, ("ce_data", b"{}")], v), "ce_data: not an attribute header in binary mode"),
    (lambda h, v: ([*h, ("ce_Jane Smith 9434765918", b"x")], v), "a ce_ header whose name is not 1-20 of a-z0-9"),
    (lambda h, v: ([*without(h, "ce_specversion"), ("ce_specversion", b"0.3")], v), "ce_specversion: Input"),
    (lambda h, v: ([*without(h, "ce_id"), ("ce_id", b"not-a-uuid")], v), "ce_id: "),
])
def test_an_invalid_binary_message_is_undecodable_with_the_fault_named(change, named):
    headers, value = change(*binary_mode(referral()))
    assert named in reason_of(value, headers)


def test_a_header_name_that_is_not_an_attribute_name_is_not_echoed():
    headers, value = binary_mode(referral())
    reason = reason_of(value, [*headers, ("ce_Jane Smith 9434765918", b"x")])
    assert "Jane" not in reason and "9434765918" not in reason


def test_a_binary_message_without_a_value_is_an_event_without_data():
    """A valid CloudEvent: an invalid referral, which intake rejects naming every field (not a dead letter)."""
    envelope = referral()
    headers, _ = binary_mode(envelope)
    assert decode_either_mode(None, headers).data == {} == decode_either_mode(b"", headers).data


def test_internal_topics_stay_structured_a_binary_message_there_is_undecodable():
    headers, value = binary_mode(referral())
    with pytest.raises(Undecodable, match="not a CloudEvent"):
        decode(value)  # what every internal subscriber calls: the headers are not read


def test_the_audit_names_a_binary_causes_type_and_source():
    referral_event = referral_message({"referral_id": "R-1", "source": "not-the-event-source"}, source="hospital-a")
    headers, value = binary_mode(referral_event)
    person_created = new_message("person.created", "tessera/referrals", {"person_id": "p-1"}).to_bytes()
    entry = entry_of(person_created, Cause(value, headers))
    assert (entry.cause_type, entry.source, entry.actor_id) == ("referral.received", "hospital-a", "system:referrals")
