"""Read endpoints of the workflow service: a person's steps and a worker's or team's work."""

import uuid
from typing import Any

import asyncpg
from fastapi import APIRouter, Request

from services.workflow import store

router = APIRouter(tags=["work"])
BUCKETS = {"incoming": "incoming", "incomplete": "incomplete", "returned": "incomplete", "future": "future"}


def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.runtime.pool


def _item(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "step_id": str(row["step_id"]),
        "workflow_id": str(row["workflow_id"]),
        "step_type": row["step_type"],
        "person_id": str(row["person_id"]),
        "linked_person_id": str(row["linked_person_id"]) if row["linked_person_id"] else None,
        "state": row["state"],
        "assignee": {"kind": row["assignee_kind"], "id": row["assignee_id"]},
        "priority": row["priority"],
        "created_at": row["created_at"].isoformat(),
        "due_date": row["due_date"].isoformat() if row["due_date"] else None,
        "pack_version": row["pack_version"],
        "version": row["version"],
    }


def _work(rows: list[asyncpg.Record]) -> dict[str, list[dict[str, Any]]]:
    work: dict[str, list[dict[str, Any]]] = {"incoming": [], "incomplete": [], "future": []}
    for row in rows:
        work[BUCKETS[row["state"]]].append(_item(row))
    return work


@router.get("/people/{person_id}/steps")
async def steps_of_person(person_id: uuid.UUID, request: Request) -> list[dict[str, Any]]:
    return [_item(r) for r in await store.steps_of_person(_pool(request), person_id)]


@router.get("/workers/{worker_id}/work")
async def worker_work(worker_id: str, request: Request) -> dict[str, list[dict[str, Any]]]:
    return _work(await store.work_of(_pool(request), "worker", worker_id))


@router.get("/teams/{team_id}/work")
async def team_work(team_id: str, request: Request) -> dict[str, list[dict[str, Any]]]:
    return _work(await store.work_of(_pool(request), "team", team_id))
