"""Queries of the referrals schema: people, their relationships and accepted referrals."""

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import asyncpg


async def lock_identity(conn: asyncpg.Connection, *keys: str) -> None:
    """Serialise intake of the same identity so two referrals cannot create two records (the keys locked in the
    order given, in one round trip)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('identity:' || k))"
                       " FROM unnest($1::text[]) WITH ORDINALITY AS keys(k, n) ORDER BY n", list(keys))


_MATCHING = ("(SELECT person_id FROM people WHERE nhs_number = $1) AS by_nhs,"
             " (SELECT person_id FROM people WHERE name_key = $2"
             "  AND (nhs_number IS NULL OR $1::text IS NULL OR nhs_number = $1)"
             "  ORDER BY created_at LIMIT 1) AS by_name")


async def people_matching(conn: asyncpg.Connection, nhs_number: str | None,
                          name_key: str | None) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """The person with this NHS number, and the first with the same name, birth date and postcode unless their NHS
    number differs (one round trip)."""
    row = await conn.fetchrow(f"SELECT {_MATCHING}", nhs_number, name_key)
    return row["by_nhs"], row["by_name"]


async def referral_and_matches(conn: asyncpg.Connection, source: str, referral_id: str, nhs_number: str | None,
                               name_key: str | None) -> tuple[bool, uuid.UUID | None, uuid.UUID | None]:
    """Whether this referral was received before, and `people_matching` for its person (one round trip)."""
    row = await conn.fetchrow(
        f"SELECT {_MATCHING}, EXISTS (SELECT 1 FROM referrals WHERE source = $3 AND referral_id = $4) AS received",
        nhs_number, name_key, source, referral_id)
    return row["received"], row["by_nhs"], row["by_name"]


async def insert_person(
    conn: asyncpg.Connection,
    person_id: uuid.UUID,
    record: dict[str, Any],
    *,
    nhs_number: str | None,
    name_key: str | None,
    actor: str,
    at: datetime,
    message_id: uuid.UUID,
) -> None:
    await conn.execute(  # the record and its first change in one round trip
        "WITH person AS (INSERT INTO people (person_id, nhs_number, name_key, record, created_at, created_by,"
        " updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $5, $6) RETURNING person_id)"
        " INSERT INTO person_changes (person_id, at, actor, what, message_id, fields)"
        " SELECT person_id, $5, $6, 'person.created', $7, $8 FROM person",
        person_id, nhs_number, name_key, record, at, actor, message_id, sorted(record),
    )


async def record_change(
    conn: asyncpg.Connection,
    person_id: uuid.UUID,
    *,
    actor: str,
    at: datetime,
    what: str,
    message_id: uuid.UUID,
    fields: list[str],
) -> None:
    await conn.execute(
        "INSERT INTO person_changes (person_id, at, actor, what, message_id, fields)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        person_id, at, actor, what, message_id, fields,
    )


async def insert_relationship(
    conn: asyncpg.Connection,
    relationship_id: uuid.UUID,
    person_id: uuid.UUID,
    other_person_id: uuid.UUID,
    relationship: str,
    *,
    is_main_carer: bool,
    start_date: date,
    actor: str,
    at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO person_relationships (relationship_id, person_id, other_person_id,"
        " relationship, is_main_carer, start_date, created_at, created_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        relationship_id, person_id, other_person_id, relationship, is_main_carer, start_date, at, actor,
    )


async def insert_referral(conn: asyncpg.Connection, row: dict[str, Any]) -> None:
    columns = ", ".join(row)
    params = ", ".join(f"${i}" for i in range(1, len(row) + 1))
    await conn.execute(f"INSERT INTO referrals ({columns}) VALUES ({params})", *row.values())


async def load_person(conn: asyncpg.Connection | asyncpg.Pool, person_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM people WHERE person_id = $1", person_id)


async def names_of(pool: asyncpg.Pool, person_ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    """First and last name of each of these people (one read for a page of work)."""
    return await pool.fetch("SELECT person_id, record ->> 'first_name' AS first_name,"
                            " record ->> 'last_name' AS last_name FROM people WHERE person_id = ANY($1::uuid[])",
                            person_ids)


async def latest_referral(pool: asyncpg.Pool, person_id: uuid.UUID) -> asyncpg.Record | None:
    """The person's most recently accepted referral (the one whose referrer is told about the case)."""
    return await pool.fetchrow(
        "SELECT referral_id, accepted_at, details -> 'referrer' AS referrer FROM referrals WHERE person_id = $1"
        " ORDER BY accepted_at DESC LIMIT 1", person_id)


# a referral as the read endpoints give it (`r`: the referrals table)
REFERRAL_COLUMNS = (
    "r.source, r.referral_id, r.workflow_id, r.service, r.category, r.urgency, r.first_step_type, r.received_at,"
    " r.accepted_at, r.details -> 'reason' AS reason, r.details -> 'consent_to_share' AS consent_to_share,"
    " r.details -> 'referrer' AS referrer")


async def referrals_of(pool: asyncpg.Pool, person_id: uuid.UUID) -> list[asyncpg.Record]:
    """The person's accepted referrals, newest first: what was asked, by whom, when (R-W5, issue #22 §7)."""
    return await pool.fetch(
        f"SELECT {REFERRAL_COLUMNS} FROM referrals r WHERE r.person_id = $1 ORDER BY r.accepted_at DESC", person_id)


async def starts_of(pool: asyncpg.Pool, workflow_ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    """The accepted referral that started each of these workflows, with its person's record (R-W5)."""
    return await pool.fetch(
        f"SELECT {REFERRAL_COLUMNS}, p.person_id, p.record, p.version, p.created_at, p.created_by, p.updated_at,"
        " p.updated_by FROM referrals r JOIN people p USING (person_id) WHERE r.workflow_id = ANY($1::uuid[])",
        workflow_ids)


async def relationships_of(pool: asyncpg.Pool, person_ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    """The personal relationships each of these people is in, on either side, oldest first."""
    return await pool.fetch(
        "SELECT * FROM person_relationships WHERE person_id = ANY($1::uuid[]) OR other_person_id = ANY($1::uuid[])"
        " ORDER BY start_date, created_at",
        person_ids,
    )


async def search_people(pool: asyncpg.Pool, *, name_parts: list[str], date_of_birth: date | None,
                        postcode: str | None, limit: int, nhs_number: str | None = None) -> list[asyncpg.Record]:
    """People whose names start with each of `name_parts` (first or last name, any case), born on the date and
    living at the postcode (spaces and case ignored), with the NHS number, those given; by last name then first
    name. Only what tells people apart."""
    return await pool.fetch(
        "SELECT person_id, record ->> 'first_name' AS first_name, record ->> 'last_name' AS last_name,"
        " record ->> 'date_of_birth' AS date_of_birth, record ->> 'date_of_death' AS date_of_death,"
        " record -> 'address' ->> 'postcode' AS postcode, record -> 'address' ->> 'town' AS town FROM people"
        " WHERE NOT EXISTS (SELECT 1 FROM unnest($1::text[]) AS part WHERE NOT ("
        "   starts_with(lower(record ->> 'first_name'), part) OR starts_with(lower(record ->> 'last_name'), part)))"
        " AND ($2::text IS NULL OR record ->> 'date_of_birth' = $2)"
        " AND ($3::text IS NULL OR replace(upper(record -> 'address' ->> 'postcode'), ' ', '') = $3)"
        " AND ($5::text IS NULL OR nhs_number = $5)"
        " ORDER BY lower(record ->> 'last_name'), lower(record ->> 'first_name'), person_id LIMIT $4",
        [p.lower() for p in name_parts], date_of_birth.isoformat() if date_of_birth else None,
        postcode.replace(" ", "").upper() if postcode else None, limit, nhs_number)


async def lock_person(conn: asyncpg.Connection, person_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM people WHERE person_id = $1 FOR UPDATE", person_id)


async def nhs_number_taken(conn: asyncpg.Connection, nhs_number: str, person_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval(
        "SELECT 1 FROM people WHERE nhs_number = $1 AND person_id <> $2", nhs_number, person_id))


async def save_person(
    conn: asyncpg.Connection, person_id: uuid.UUID, record: dict[str, Any], *, nhs_number: str | None,
    name_key: str | None, actor: str, at: datetime,
) -> int:
    """Write the record and bump its version; returns the new version."""
    return await conn.fetchval(
        "UPDATE people SET record = $2, nhs_number = $3, name_key = $4, version = version + 1,"
        " updated_at = $5, updated_by = $6 WHERE person_id = $1 RETURNING version",
        person_id, record, nhs_number, name_key, at, actor,
    )


async def lock_relationship(conn: asyncpg.Connection, relationship_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM person_relationships WHERE relationship_id = $1 FOR UPDATE", relationship_id)


async def end_relationship(
    conn: asyncpg.Connection, relationship_id: uuid.UUID, end_date: date, end_reason: str, actor: str
) -> None:
    await conn.execute(
        "UPDATE person_relationships SET end_date = $2, end_reason = $3, ended_by = $4"
        " WHERE relationship_id = $1",
        relationship_id, end_date, end_reason, actor,
    )


async def _insert(conn: asyncpg.Connection, table: str, row: Mapping[str, Any]) -> None:
    """One row whose keys are the table's column names."""
    placeholders = ", ".join(f"${i}" for i in range(1, len(row) + 1))
    await conn.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({placeholders})", *row.values())


async def insert_case_note(conn: asyncpg.Connection, note: Mapping[str, Any]) -> None:
    await _insert(conn, "case_notes", note)


async def notes_of(pool: asyncpg.Pool, person_id: uuid.UUID) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM case_notes WHERE person_id = $1 ORDER BY written_at", person_id)


async def changes_of(pool: asyncpg.Pool, person_id: uuid.UUID) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM person_changes WHERE person_id = $1 ORDER BY change_id", person_id)


async def relationship_person(pool: asyncpg.Pool, relationship_id: uuid.UUID) -> uuid.UUID | None:
    return await pool.fetchval("SELECT person_id FROM person_relationships WHERE relationship_id = $1",
                               relationship_id)
