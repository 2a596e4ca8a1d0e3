"""Read endpoints of the scheduler service, for operators: a pending timer, and timers by owner."""

from datetime import datetime
from typing import Any

import asyncpg
from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import AwareDatetime

from services.scheduler import store
from services.scheduler.domain import Timer

router = APIRouter(tags=["timers"])


def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.runtime.pool


def _timer(timer: Timer) -> dict[str, Any]:
    return {
        "key": timer.key,
        "due_at": timer.due_at.isoformat(),
        "owner": timer.owner,
        "payload": timer.payload,
        "subject": timer.subject,
        "set_by": str(timer.set_by),
        "generation": timer.generation,
        "created_at": timer.created_at.isoformat(),
        "updated_at": timer.updated_at.isoformat(),
    }


@router.get("/timers/{key:path}")
async def get_timer(key: str, request: Request) -> dict[str, Any]:
    """A pending timer; 404 once it has fired or been cancelled (or was never set)."""
    timer = await store.load_timer(_pool(request), key)
    if timer is None:
        raise HTTPException(404, "no pending timer with this key")
    return _timer(timer)


@router.get("/timers")
async def find_timers(
    request: Request,
    owner: str | None = Query(default=None, max_length=100),
    due_before: AwareDatetime | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    """Pending timers, earliest first, of one owner and/or due before a time."""
    due: datetime | None = due_before
    return [_timer(t) for t in await store.timers_of_owner(_pool(request), owner, due, limit)]
