"""The PII canary scan (issue #11 §3) cannot pass silently: values planted in a log or message are found."""

import json
from pathlib import Path

from tests.factories import person_data, unique_seed
from tests.pii_canary import REGISTRY, TRACEBACK, Record, Registry, scan_files, scan_records


def _kinds(hits: set) -> set[str]:
    return {hit.kind for hit in hits}


def test_every_kind_of_factory_value_planted_in_a_log_is_found_however_it_is_written(tmp_path: Path) -> None:
    p = person_data(unique_seed())
    nhs, (y, m, d) = p["nhs_number"], p["date_of_birth"].split("-")
    planted = [
        f'{{"msg": "matched", "nhs": "{nhs[:3]} {nhs[3:6]} {nhs[6:]}"}}',
        f"born {d}/{m}/{y}", f"dob={p['date_of_birth']}", f"pc={p['address']['postcode'].replace(' ', '').lower()}",
        f"to +44{p['phone'][1:].replace(' ', '')}", f"mail {p['email'].upper()}", f"hello {p['first_name']}",
        f"<b>{p['last_name'].upper()}</b>", f"at {p['address']['line1']}, {p['address']['town']}",
    ]
    (tmp_path / "referrals.log").write_text("\n".join(planted))
    hits = scan_files(REGISTRY, tmp_path)
    assert _kinds(hits) == {"NHS number", "date of birth", "postcode", "phone", "email", "first name",
                            "last name", "address line", "town"}
    assert {hit.where for hit in hits} == {"referrals.log"}


def test_a_log_of_ids_timestamps_and_digests_has_no_hits(tmp_path: Path) -> None:
    person_data(unique_seed())
    clean = {"ts": "2026-11-23T22:46:20.123Z", "message_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
             "person_id": "0f4c2d8e-9b1a-4c7e-8f3d-5a6b7c8d9e0f", "offset": 12345678901234, "level": "INFO",
             "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "msg": "referral accepted"}
    (tmp_path / "workflow.log").write_text(json.dumps(clean))
    (tmp_path / "workflow.metrics").write_text('tessera_messages_total{service="workflow",topic="workflow.events"} 3\n')
    assert scan_files(REGISTRY, tmp_path) == set()


def test_a_uuid_whose_digits_spell_a_registered_nhs_number_is_not_a_hit_but_the_number_itself_is(
        tmp_path: Path) -> None:
    """Found by make faults: a message id ending "-9995-010801…" read as the NHS number 999 501 0801."""
    registry = Registry()
    registry.add("NHS number", "9995010801")
    (tmp_path / "scheduler.log").write_text('{"message_id": "5b0e7c3a-41d2-4c6f-9995-010801234567"}')
    assert scan_files(registry, tmp_path) == set()
    (tmp_path / "scheduler.log").write_text('{"nhs": "999-501-0801"}')
    assert _kinds(scan_files(registry, tmp_path)) == {"NHS number"}


def test_a_factory_name_that_skipped_the_registry_is_still_found(tmp_path: Path) -> None:
    (tmp_path / "documents.log").write_text("rendering letter for TestpersonWhoever")
    [hit] = scan_files(Registry(), tmp_path)
    assert hit.kind == "factory-made name (unregistered)"


def test_dead_letter_reasons_rejections_and_stack_traces_in_events_are_reported() -> None:
    p = person_data(unique_seed())
    rejected = json.dumps({"type": "command.rejected",
                           "data": {"code": "invalid", "message": f"bad nhs_number {p['nhs_number']}"}}).encode()
    accepted = json.dumps({"type": "person.created", "data": {"last_name": p["last_name"]}}).encode()
    crashed = json.dumps({"type": "step.saved", "data": {"note": f"{TRACEBACK}:\n  File x"}}).encode()
    findings = scan_records(REGISTRY, [
        Record("referrals.intake.dlq", 7, {"dlq_error": f"invalid: person.postcode {p['address']['postcode']}"},
               b"{}"),
        Record("referrals.events", 3, {}, rejected),
        Record("referrals.events", 4, {}, accepted),  # events may carry a name: only rejections are scanned
        Record("workflow.events", 9, {}, crashed),
    ])
    assert findings == [
        f"referrals.intake.dlq@7: postcode {p['address']['postcode']!r} (dlq_error)",
        f"referrals.events@3: NHS number {p['nhs_number']!r} (rejection)",
        "workflow.events@9: stack trace in an event",
    ]


def test_hostile_deeply_nested_json_on_an_events_topic_is_scanned_not_a_crash() -> None:
    """The hostile-input tests put 100,000-deep JSON on consumed topics; the scan must still finish."""
    p = person_data(unique_seed())
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    named = json.dumps({"type": "step.created", "data": {"name": p["last_name"]}}).encode()
    records = [Record("workflow.events", 0, {}, deep), Record("workflow.events", 1, {}, named)]
    assert scan_records(REGISTRY, records) == []  # events may name people; only rejections may not
