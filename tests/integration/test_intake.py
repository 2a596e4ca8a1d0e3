"""Referral intake through the real broker and database (docs/contracts.md "Referral intake")."""

import json

import asyncpg
import httpx

from shared import topics
from shared.testing import EventLog, ServiceProcess, publish, service_auth
from tests.factories import person_data, referral_message, unique_referral, unique_seed, valid_nhs_number


async def send(infra, data, *, source="test-contact-centre", key=None):
    envelope = referral_message(data, source=source)
    await publish(infra.bootstrap, topics.REFERRALS_INTAKE, [(key or data.get("referral_id"), envelope.to_bytes())])
    return envelope


async def answer(events: EventLog, envelope, timeout=30.0):
    [seen] = await events.wait_for(
        lambda s: s.caused_by(envelope.id) and s.type in ("referral.accepted", "referral.rejected"), timeout)
    return seen


async def test_accepted_referral_creates_a_person_record(infra, referrals: ServiceProcess, events: EventLog):
    data = unique_referral()
    envelope = await send(infra, data)
    accepted = await answer(events, envelope)
    assert accepted.type == "referral.accepted"
    assert accepted.data["matched"] is False
    assert accepted.data["first_step_type"] == "WB Wellbeing Screening"
    assert accepted.envelope.correlationid == str(envelope.id)
    assert accepted.key == accepted.data["person_id"]
    created = await events.wait_for(lambda s: s.caused_by(envelope.id) and s.type == "person.created")
    assert created[0].data == {"person_id": accepted.data["person_id"], "source_referral_id": data["referral_id"]}
    async with httpx.AsyncClient(auth=service_auth(), base_url=referrals.url) as http:
        person = (await http.get(f"/people/{accepted.data['person_id']}")).json()
        by_nhs = (await http.get("/people", params={"nhs_number": data["person"]["nhs_number"]})).json()
    assert person["last_name"] == data["person"]["last_name"]
    assert person["nhs_number"] == data["person"]["nhs_number"]
    assert person["created_by"] == "referral:test-contact-centre"
    assert person["ordinarily_resident"] is True and accepted.data["ordinarily_resident"] is True
    assert [p["person_id"] for p in by_nhs] == [accepted.data["person_id"]]


async def test_a_person_not_ordinarily_resident_is_recorded_so(infra, referrals, events):
    accepted = await answer(events, await send(infra, unique_referral(ordinarily_resident=False)))
    assert accepted.data["ordinarily_resident"] is False
    async with httpx.AsyncClient(auth=service_auth(), base_url=referrals.url) as http:
        person = (await http.get(f"/people/{accepted.data['person_id']}")).json()
    assert person["ordinarily_resident"] is False


async def test_R_P4_second_referral_is_matched_by_nhs_number(infra, referrals, events):
    first = unique_referral()
    second = unique_referral(person={**first["person"], "last_name": "Changedname"})
    a = await answer(events, await send(infra, first))
    b = await answer(events, await send(infra, second))
    assert b.data["matched"] is True
    assert b.data["person_id"] == a.data["person_id"]
    assert b.data["workflow_id"] != a.data["workflow_id"]


async def test_referral_without_nhs_number_is_matched_by_name_birth_date_and_postcode(infra, referrals, events):
    person = person_data(unique_seed(), nhs_number=None)
    a = await answer(events, await send(infra, unique_referral(person=person)))
    spaced = {**person, "last_name": person["last_name"].upper(),
              "address": {**person["address"], "postcode": person["address"]["postcode"].replace(" ", "").lower()}}
    b = await answer(events, await send(infra, unique_referral(person=spaced)))
    assert (a.data["matched"], b.data["matched"]) == (False, True)
    assert b.data["person_id"] == a.data["person_id"]


async def test_rejection_names_every_field_at_fault(infra, referrals, events):
    data = unique_referral(category="hospital_discharge", service="children", reason="  ")
    data["person"] = {**data["person"], "nhs_number": "9434765918"}
    del data["person"]["date_of_birth"]
    rejected = await answer(events, await send(infra, data))
    assert rejected.type == "referral.rejected"
    fields = {e["field"]: e["code"] for e in rejected.data["errors"]}
    assert fields == {
        "category": "unsupported_combination",
        "reason": "missing",
        "person.nhs_number": "invalid_nhs_number",
        "person.date_of_birth": "missing",
    }
    assert rejected.data["referral_id"] == data["referral_id"]
    assert "9434765918" not in rejected.value.decode()


async def test_repeated_message_id_has_no_second_effect(infra, referrals, events, db):
    data = unique_referral()
    envelope = referral_message(data)
    marker = referral_message(unique_referral())
    # same key: one partition, so the marker is handled after both copies
    await publish(infra.bootstrap, topics.REFERRALS_INTAKE,
                  [(data["referral_id"], envelope.to_bytes())] * 2 + [(data["referral_id"], marker.to_bytes())])
    await answer(events, envelope)  # keyed by person: on another partition than the marker's answer, maybe later
    await answer(events, marker)
    assert len(events.matching(lambda s: s.caused_by(envelope.id) and s.type == "referral.accepted")) == 1
    assert await people_with_nhs_number(db, data["person"]["nhs_number"]) == 1


async def test_same_referral_id_from_the_same_source_under_a_new_message_id_is_a_duplicate(
        infra, referrals, events, db):
    data = unique_referral()
    first, again, marker = referral_message(data), referral_message(data), referral_message(unique_referral())
    await publish(infra.bootstrap, topics.REFERRALS_INTAKE,
                  [(data["referral_id"], m.to_bytes()) for m in (first, again, marker)])
    assert (await answer(events, first)).type == "referral.accepted"
    # the marker, behind the copy on the same partition, answered: the copy was handled. Its answers are keyed by
    # person, so a reader may see them out of order: what the service decided is in its outbox
    await answer(events, marker)
    # searched as bytes: the outbox also holds the hostile suites' dead letters, not all UTF-8, some nested past
    # what jsonb parses
    rows = await db.fetch("SELECT value FROM referrals.outbox WHERE position(convert_to($1, 'UTF8') IN value) > 0",
                          data["referral_id"])
    decided = [m for m in map(json.loads, (r["value"] for r in rows))
               if isinstance(m, dict) and m.get("data", {}).get("referral_id") == data["referral_id"]]
    assert [m["type"] for m in decided] == ["referral.accepted"]
    assert await people_with_nhs_number(db, data["person"]["nhs_number"]) == 1


async def test_same_referral_id_from_another_source_is_another_referral(infra, referrals, events):
    data = unique_referral()
    a = await answer(events, await send(infra, data, source="hospital-a"))
    b = await answer(events, await send(infra, data, source="hospital-b"))
    assert a.type == b.type == "referral.accepted"
    assert b.data["matched"] is True


async def test_garbage_goes_to_the_dead_letter_topic_and_intake_keeps_going(infra, referrals, events):
    garbage = [b"not json at all", b"\xff\xfe\x00", b'{"hello": "world"}', b"[1, 2, 3]",
               b'{"specversion": "1.0", "id": "not-a-uuid", "type": "referral.received"}']
    await publish(infra.bootstrap, topics.REFERRALS_INTAKE, [("garbage", g) for g in garbage])
    dead = await events.wait_for(
        lambda s: s.topic == topics.dlq(topics.REFERRALS_INTAKE) and s.value in garbage, count=len(garbage))
    assert {d.value for d in dead} == set(garbage)
    for d in dead:
        assert d.headers["dlq_original_topic"] == topics.REFERRALS_INTAKE
        assert d.headers["dlq_error"]
        assert int(d.headers["dlq_original_offset"]) >= 0
    good = await answer(events, await send(infra, unique_referral()))
    assert good.type == "referral.accepted"


async def test_carer_referral_is_recorded_on_the_carer_and_linked_to_the_cared_for_person(infra, referrals, events):
    cared_for = person_data(unique_seed())
    data = unique_referral(category="carer", cared_for_person=cared_for)
    envelope = await send(infra, data)
    accepted = await answer(events, envelope)
    assert accepted.data["first_step_type"] == "Adult Carer Triage"
    link = await events.wait_for(lambda s: s.caused_by(envelope.id) and s.type == "person_relationship.added")
    assert link[0].data["person_id"] == accepted.data["person_id"]
    assert link[0].data["other_person_id"] == accepted.data["cared_for_person_id"]
    assert link[0].data["is_main_carer"] is True


async def people_with_nhs_number(db: asyncpg.Pool, nhs_number: str) -> int:
    return await db.fetchval("SELECT count(*) FROM referrals.people WHERE nhs_number = $1", nhs_number)


def test_factory_numbers_are_valid():
    from services.referrals.domain import nhs_number_is_valid

    assert all(nhs_number_is_valid(valid_nhs_number(n)) for n in range(0, 2000, 7))
