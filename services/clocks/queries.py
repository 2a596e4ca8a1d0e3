"""Read endpoints of the clocks service: a person's clocks and a team's open clocks by status (R-CL6)."""

from typing import Any, Literal

import asyncpg
from fastapi import APIRouter, Query, Request

from services.clocks import store
from services.clocks.calendar import WorkingDays
from services.clocks.domain import Clock, points

router = APIRouter(tags=["clocks"])


def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.runtime.pool


def _days(request: Request) -> WorkingDays:
    return request.app.state.working_days


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _clock(clock: Clock, days: WorkingDays) -> dict[str, Any]:
    d = clock.definition
    upcoming = points(clock, days) if clock.state == "running" else []
    return {
        "clock_id": clock.clock_id, "clock": d.name, "title": d.title, "rule": d.rule,
        "definition_version": clock.definition_version, "person_id": clock.person_id, "team_id": clock.team_id,
        "subject": clock.subject_key, "state": clock.state, "status": clock.status,
        "unit": d.length.unit, "length": d.length.count,
        "started_at": _iso(clock.started_at), "due_date": clock.due_date.isoformat(),
        "breach_at": _iso(clock.breach_at), "warned_at": _iso(clock.warned_at),
        "breached_at": _iso(clock.breached_at),
        "next_point": {"point": upcoming[0].name, "at": _iso(upcoming[0].at)} if upcoming else None,
        # R-CL5: a paused clock explains why and since when
        "paused": {"since": _iso(clock.paused_at), "reason": clock.paused_reason} if clock.state == "paused" else None,
        "stopped_at": _iso(clock.stopped_at), "stopped_by": clock.stopped_by,
        "concerns": d.concerns,
    }


@router.get("/people/{person_id}/clocks")
async def person_clocks(person_id: str, request: Request,
                        limit: int = Query(200, ge=1, le=1000)) -> list[dict[str, Any]]:
    """Every clock of the person, newest first: state, status (on_track, at_risk, breached), due date, pauses."""
    days = _days(request)
    return [_clock(c, days) for c in await store.clocks_of_person(_pool(request), person_id, limit)]


@router.get("/teams/{team_id}/clocks")
async def team_clocks(team_id: str, request: Request,
                      status: Literal["on_track", "at_risk", "breached"] | None = None,
                      limit: int = Query(200, ge=1, le=1000)) -> list[dict[str, Any]]:
    """The team's open clocks, soonest due first; `status=at_risk` (warned) or `breached`."""
    days = _days(request)
    return [_clock(c, days) for c in await store.open_clocks_of_team(_pool(request), team_id, status, limit)]
