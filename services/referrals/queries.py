"""Read endpoints of the referrals service: a person's record, look-up by NHS number, notes and reasons."""

import uuid
from datetime import date
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, HTTPException, Query, Request

from services.referrals import store
from shared import access_reasons, bearer

router = APIRouter(tags=["people"])


def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.runtime.pool


def _person(row: asyncpg.Record, relationships: list[asyncpg.Record] | None = None) -> dict[str, Any]:
    person = {
        "person_id": str(row["person_id"]),
        **row["record"],
        "version": row["version"],
        "created_at": row["created_at"].isoformat(),
        "created_by": row["created_by"],
        "updated_at": row["updated_at"].isoformat(),
        "updated_by": row["updated_by"],
    }
    if relationships is not None:
        person["relationships"] = [
            {
                "relationship_id": str(r["relationship_id"]),
                "person_id": str(r["person_id"]),
                "other_person_id": str(r["other_person_id"]),
                "relationship": r["relationship"],
                "is_main_carer": r["is_main_carer"],
                "start_date": r["start_date"].isoformat(),
                "end_date": r["end_date"].isoformat() if r["end_date"] else None,
            }
            for r in relationships
        ]
    return person


SEARCH_LIMIT = 50


@router.get("/people/search")
async def search_people(
    request: Request,
    name: Annotated[str | None, Query(min_length=2, max_length=100, description="parts of the first or last name")]
    = None,
    date_of_birth: date | None = None,
    postcode: Annotated[str | None, Query(min_length=2, max_length=10)] = None,
) -> dict[str, Any]:
    """Find a person by name, date of birth and postcode (any of them, all that are given must match): at most
    50 people, with only what tells them apart; `more` says the search should be narrowed."""
    parts = (name or "").split()[:4]
    if not (parts or date_of_birth or postcode):
        raise HTTPException(422, "give a name, a date of birth or a postcode")
    rows = await store.search_people(_pool(request), name_parts=parts, date_of_birth=date_of_birth,
                                     postcode=postcode, limit=SEARCH_LIMIT + 1)
    return {"people": [_told_apart(r) for r in rows[:SEARCH_LIMIT]], "more": len(rows) > SEARCH_LIMIT}


def _told_apart(row: Any) -> dict[str, Any]:
    """What a search answers of a person: only what tells one person from another (issue #22 §9)."""
    return {"person_id": str(row["person_id"]), "first_name": row["first_name"], "last_name": row["last_name"],
            "date_of_birth": row["date_of_birth"], "date_of_death": row["date_of_death"],
            "postcode": row["postcode"], "town": row["town"]}


NAMES_LIMIT = 200


def _id_list(value: str, parameter: str, noun: str, limit: int) -> list[uuid.UUID]:
    """The distinct ids of a comma-separated query parameter, at most `limit`; 422 naming the parameter."""
    try:
        ids = sorted({uuid.UUID(i) for i in value.split(",") if i.strip()})
    except ValueError:
        raise HTTPException(422, f"`{parameter}`: {noun} ids (UUIDs), comma-separated") from None
    if len(ids) > limit:
        raise HTTPException(422, f"`{parameter}`: at most {limit} {noun} ids")
    return ids


@router.get("/people/names")
async def names_of_people(
    request: Request,
    ids: Annotated[str, Query(max_length=NAMES_LIMIT * 37,
                              description=f"comma-separated person ids, at most {NAMES_LIMIT}")],
) -> dict[str, str]:
    """Each person's name ("First Last") by id, for a page of work: one read for the page, nothing else of the
    record. An id with no person is left out. A worker's token reads only the person its grant names (as
    `/people/{person_id}`); the desk asks as itself for names beside work the worker already sees."""
    person_ids = _id_list(ids, "ids", "person", NAMES_LIMIT)
    reader = bearer.reader_of(request)
    for person_id in person_ids:
        bearer.require_person(reader, str(person_id))
    return _names(await store.names_of(_pool(request), person_ids))


def _names(rows: list[asyncpg.Record]) -> dict[str, str]:
    return {str(r["person_id"]): f"{r['first_name'] or ''} {r['last_name'] or ''}".strip() for r in rows}


@router.get("/people/{person_id}")
async def get_person(person_id: uuid.UUID, request: Request) -> dict[str, Any]:
    pool = _pool(request)
    row = await store.load_person(pool, person_id)
    if row is None:
        raise HTTPException(404, "no such person")
    return _person(row, await store.relationships_of(pool, [person_id]))


@router.get("/people/{person_id}/referrer")
async def referrer(person_id: uuid.UUID, request: Request) -> dict[str, Any]:
    """R-T4: who referred the person most recently (null when the referral named nobody), for the
    notifications service to copy them in; 404 when the person has no accepted referral."""
    row = await store.latest_referral(_pool(request), person_id)
    if row is None:
        raise HTTPException(404, "no accepted referral for this person")
    return {"referral_id": row["referral_id"], "accepted_at": row["accepted_at"].isoformat(),
            "referrer": row["referrer"]}


@router.get("/people/{person_id}/referrals")
async def referrals(person_id: uuid.UUID, request: Request) -> list[dict[str, Any]]:
    """The person's accepted referrals, newest first: reason, referrer, consent, when received (R-W5)."""
    return [_referral(r) for r in await store.referrals_of(_pool(request), person_id)]


def _referral(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "referral_id": row["referral_id"], "source": row["source"], "workflow_id": str(row["workflow_id"]),
        "service": row["service"], "category": row["category"], "urgency": row["urgency"],
        "first_step_type": row["first_step_type"], "received_at": row["received_at"].isoformat(),
        "accepted_at": row["accepted_at"].isoformat(), "reason": row["reason"],
        "consent_to_share": row["consent_to_share"], "referrer": row["referrer"],
    }


STARTS_LIMIT = 100


@router.get("/referrals/starts")
async def starts(
    request: Request,
    workflow_ids: Annotated[str, Query(max_length=STARTS_LIMIT * 37,
                                       description=f"comma-separated workflow ids, at most {STARTS_LIMIT}")],
) -> dict[str, dict[str, Any]]:
    """R-W5: for each workflow, the accepted referral that started it and its person's record, as
    `/people/{id}/referrals` and `/people/{id}` give them (`referral`, `person`): what the first step is
    prefilled from, one read for the workflows of a batch. A workflow no referral started is left out."""
    pool, reader = _pool(request), bearer.reader_of(request)
    rows = await store.starts_of(pool, _id_list(workflow_ids, "workflow_ids", "workflow", STARTS_LIMIT))
    for row in rows:
        bearer.require_person(reader, str(row["person_id"]))
    people = list({row["person_id"] for row in rows})
    relationships = await store.relationships_of(pool, people) if people else []

    def in_it(relationship: asyncpg.Record, person_id: uuid.UUID) -> bool:
        return person_id in (relationship["person_id"], relationship["other_person_id"])

    return {str(row["workflow_id"]): {
        "referral": _referral(row),
        "person": _person(row, [r for r in relationships if in_it(r, row["person_id"])]),
    } for row in rows}


@router.get("/people")
async def find_people(request: Request, nhs_number: str = Query(min_length=10, max_length=12)) -> list[dict[str, Any]]:
    """The people with this NHS number, with only what tells them apart, as `/people/search` answers (§9)."""
    rows = await store.search_people(_pool(request), name_parts=[], date_of_birth=None, postcode=None,
                                     limit=SEARCH_LIMIT, nhs_number=nhs_number.replace(" ", ""))
    return [_told_apart(r) for r in rows]


@router.get("/people/{person_id}/notes")
async def case_notes(person_id: uuid.UUID, request: Request) -> list[dict[str, Any]]:
    return [_note(n) for n in await store.notes_of(_pool(request), person_id)]


def _note(row: asyncpg.Record) -> dict[str, Any]:
    return {"note_id": str(row["note_id"]), "title": row["title"], "type": row["type"], "text": row["text"],
            "author": row["author"], "notify_worker_ids": row["notify_worker_ids"],
            "written_at": row["written_at"].isoformat()}


@router.get("/people/{person_id}/history")
async def record_history(person_id: uuid.UUID, request: Request) -> list[dict[str, Any]]:
    """Who changed which fields of the record, and when."""
    return [_change(c) for c in await store.changes_of(_pool(request), person_id)]


def _change(row: asyncpg.Record) -> dict[str, Any]:
    return {"at": row["at"].isoformat(), "actor": row["actor"], "what": row["what"], "fields": row["fields"],
            "message_id": str(row["message_id"])}


@router.get("/people/{person_id}/file")
async def person_file(person_id: uuid.UUID, request: Request) -> dict[str, Any]:
    """Everything of the person the desk's person page shows, in one read (issue #18 §5): the record with its
    relationships (`person`, as `/people/{id}`), the case notes, the record's history, the accepted referrals
    (each as its own endpoint gives it) and the name of each person the record is related to
    (`related_names`: the people the record itself names, so the same grant)."""
    pool = _pool(request)
    row = await store.load_person(pool, person_id)
    if row is None:
        raise HTTPException(404, "no such person")
    relationships = await store.relationships_of(pool, [person_id])
    related = list({r[side] for r in relationships for side in ("person_id", "other_person_id")} - {person_id})
    return {
        "person": _person(row, relationships),
        "notes": [_note(n) for n in await store.notes_of(pool, person_id)],
        "history": [_change(c) for c in await store.changes_of(pool, person_id)],
        "referrals": [_referral(r) for r in await store.referrals_of(pool, person_id)],
        "related_names": _names(await store.names_of(pool, related)) if related else {},
    }


@router.get("/people/{person_id}/access-reasons")
async def person_access_reasons(person_id: uuid.UUID, request: Request) -> list[dict[str, Any]]:
    """Break-glass: person commands allowed only on a reason the actor gave (issue #11 §3), oldest first."""
    return await access_reasons.of_person(_pool(request), person_id)
