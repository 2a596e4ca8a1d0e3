"""Read endpoints of the clocks service: a person's clocks and a team's open clocks by status (R-CL6); the
manager's dashboard of a team or a service area from the insights read model (R-CL7)."""

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import asyncpg
from fastapi import APIRouter, HTTPException, Query, Request

from services.clocks import dashboard, store
from services.clocks.calendar import WorkingDays
from services.clocks.domain import Clock, points
from shared import bearer, service_areas
from shared.actor import DASHBOARD_ROLES, above_teams

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


async def dashboard_figures(pool: asyncpg.Pool, team_ids: list[str], days: int, now: datetime) -> dict[str, Any]:
    """The teams' figures as of `now`, from the insight tables the pool's schema holds."""
    rows = await store.tray_entries(pool, team_ids, now - timedelta(days=days + 1))
    entries = [dashboard.Entry(r["entry_id"], r["person_id"], r["placed_at"], r["removed_at"], r["next_review_at"],
                               tuple(zip(r["rag_at"], r["rags"], strict=True))) for r in rows]
    clocks = [dashboard.OpenClock(**r) for r in await store.open_clocks(pool, team_ids)]
    cases = [(r["worker_id"], r["cases"]) for r in await store.allocations_per_worker(pool, team_ids)]
    return dashboard.figures(entries, clocks, cases, now, days)


def _require_manager(reader: bearer.Reader) -> None:
    if not (reader.is_service or reader.roles & DASHBOARD_ROLES):
        raise HTTPException(403, f"worker {reader.worker_id} is not a manager: the dashboard is for managers")


@router.get("/teams/{team_id}/dashboard")
async def team_dashboard(team_id: str, request: Request, days: int = Query(28, ge=1, le=366)) -> dict[str, Any]:
    """The team's dashboard (R-CL7), for its managers: people waiting by RAG over `days`, days waiting, tray
    reviews by week, clocks by status and those needing action, cases per worker; each chart's numbers a table."""
    _require_manager(bearer.reader_of(request))
    return {"team_ids": [team_id], **await dashboard_figures(_pool(request), [team_id], days, datetime.now(UTC))}


@router.get("/service-areas/{area_id}/dashboard")
async def service_dashboard(area_id: str, request: Request, days: int = Query(28, ge=1, le=366)) -> dict[str, Any]:
    """A service area's dashboard: its teams' figures added up (R-CL7). For managers above teams and the
    area's Strategic Service Managers."""
    area = service_areas.areas().get(area_id)
    if area is None:
        raise HTTPException(404, f"no service area {area_id}")
    reader = bearer.reader_of(request)
    _require_manager(reader)
    if not (reader.is_service or above_teams(reader.roles) or area.strategic_service_manager_team in reader.team_ids):
        raise HTTPException(403, f"worker {reader.worker_id} does not manage service area {area_id}")
    figures = await dashboard_figures(_pool(request), list(area.teams), days, datetime.now(UTC))
    return {"area": area.name, "team_ids": list(area.teams), **figures}
