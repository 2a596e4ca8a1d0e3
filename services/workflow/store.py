"""Queries of the workflow schema: workflows, steps and their history."""

import uuid
from dataclasses import asdict
from typing import Any

import asyncpg

from services.workflow.domain import Step, Workflow

STEP_COLUMNS = (
    "step_id, workflow_id, person_id, linked_person_id, step_type, pack_version, state,"
    " assignee_kind, assignee_id, priority, due_date, version, values, completed_sections,"
    " provenance, created_at, created_by, updated_at, updated_by"
)


async def workflow_exists(conn: asyncpg.Connection, workflow_id: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM workflows WHERE workflow_id = $1", uuid.UUID(workflow_id)))


async def insert_workflow(conn: asyncpg.Connection, workflow: Workflow) -> None:
    await conn.execute(
        "INSERT INTO workflows (workflow_id, person_id, status, origin, started_at, started_by)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        uuid.UUID(workflow.workflow_id), uuid.UUID(workflow.person_id), workflow.status,
        workflow.origin, workflow.started_at, workflow.started_by,
    )


async def insert_step(conn: asyncpg.Connection, step: Step) -> None:
    s = asdict(step)
    await conn.execute(
        f"INSERT INTO steps ({STEP_COLUMNS}) VALUES"
        " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $16, $17)",
        uuid.UUID(step.step_id), uuid.UUID(step.workflow_id), uuid.UUID(step.person_id),
        uuid.UUID(step.linked_person_id) if step.linked_person_id else None, step.step_type,
        step.pack_version, step.state, step.assignee_kind, step.assignee_id, step.priority,
        step.due_date, step.version, s["values"], list(step.completed_sections), step.provenance,
        step.created_at, step.created_by,
    )
    await add_history(conn, step.step_id, at=step.created_at, actor=step.created_by,
                      what="step.created", details={"state": step.state})


async def add_history(
    conn: asyncpg.Connection, step_id: str, *, at: Any, actor: str, what: str, details: dict[str, Any]
) -> None:
    await conn.execute(
        "INSERT INTO step_history (step_id, at, actor, what, details) VALUES ($1, $2, $3, $4, $5)",
        uuid.UUID(step_id), at, actor, what, details,
    )


async def steps_of_person(pool: asyncpg.Pool, person_id: uuid.UUID) -> list[asyncpg.Record]:
    return await pool.fetch(
        f"SELECT {STEP_COLUMNS} FROM steps WHERE person_id = $1 ORDER BY created_at", person_id
    )


async def work_of(pool: asyncpg.Pool, kind: str, assignee_id: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        f"SELECT {STEP_COLUMNS} FROM steps WHERE assignee_kind = $1 AND assignee_id = $2"
        " AND state IN ('incoming', 'incomplete', 'returned', 'future')"
        " ORDER BY CASE priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 ELSE 2 END, created_at",
        kind, assignee_id,
    )
