"""The manager's dashboard (R-CL7): a team's or a service area's figures from the clocks service's read model, each
chart an SVG image beside the table of its numbers, and each table as a CSV download. A page view asks the clocks
service once: its charts and downloads draw the figures the page fetched (RecentFigures)."""

import re
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.web import charts
from services.web.auth import User
from services.web.pages import current_user, readers, render
from shared import service_areas
from shared.actor import DASHBOARD_ROLES, above_teams
from shared.teams import team_name

router = APIRouter()
DAYS = Query(28, ge=7, le=366)
FIGURES_KEPT_SECONDS = 60.0
Key = tuple[str, str, int]  # (team or area, its id, days)


class RecentFigures:
    """The figures each page view fetched, kept a minute by scope and days: the page's five chart images and its CSV
    downloads show exactly the page's numbers, without asking the clocks service again for each."""

    def __init__(self, seconds: float = FIGURES_KEPT_SECONDS) -> None:
        self.seconds = seconds
        self.kept: dict[Key, tuple[float, dict[str, Any]]] = {}

    def put(self, key: Key, figures: dict[str, Any]) -> None:
        now = time.monotonic()
        self.kept = {k: kept for k, kept in self.kept.items() if kept[0] > now}
        self.kept[key] = (now + self.seconds, figures)

    def get(self, key: Key) -> dict[str, Any] | None:
        found = self.kept.get(key)
        return found[1] if found and found[0] > time.monotonic() else None


RECENT = RecentFigures()


def _scope(user: User, team: str, area: str) -> tuple[str, str]:
    """("team", id) or ("area", id) the user may see: a manager's own team, an area's SSMs' area, any from above."""
    if not DASHBOARD_ROLES & set(user.roles):
        raise HTTPException(403, "the dashboard is for managers")
    if area:
        found = service_areas.areas().get(area)
        if found is None:
            raise HTTPException(404, "no such service area")
        if not (above_teams(user.roles) or found.strategic_service_manager_team in user.team_ids):
            raise HTTPException(403, "you do not manage that service area")
        return "area", area
    if not team:
        led = [a.area_id for a in service_areas.areas().values() if a.strategic_service_manager_team in user.team_ids]
        if led:  # a Strategic Service Manager's own picture is their service area's
            return "area", led[0]
        if not user.team_ids:
            raise HTTPException(403, "you are in no team")
        team = user.team_ids[0]
    if not (team in user.team_ids or above_teams(user.roles)):
        raise HTTPException(403, "you are not a manager of that team")
    return "team", team


async def _fetched(request: Request, scope: tuple[str, str], days: int) -> dict[str, Any]:
    kind, ident = scope
    clocks = readers(request).clocks
    found = await (clocks.team_dashboard(ident, days) if kind == "team" else clocks.service_dashboard(ident, days))
    if found is None:
        raise HTTPException(404, "no dashboard for that")
    RECENT.put((kind, ident, days), found)
    return found


async def _page_figures(request: Request, scope: tuple[str, str], days: int) -> dict[str, Any]:
    """The figures the page was drawn from (a chart or download opened later, or elsewhere, fetches them afresh)."""
    return RECENT.get((*scope, days)) or await _fetched(request, scope, days)


def _table(figures: dict[str, Any], key: str) -> dict[str, Any]:
    for table in figures["charts"]:
        if table["key"] == key:
            return dict(table)
    raise HTTPException(404, "no such chart")


@router.get("/dashboard")
async def dashboard(request: Request, team: str = "", area: str = "", days: int = DAYS) -> HTMLResponse:
    user = await current_user(request)
    scope = _scope(user, team, area)
    figures = await _fetched(request, scope, days)
    needing = figures["clocks_needing_action"]
    names = await readers(request).names({c["person_id"] for c in needing})
    kind, ident = scope
    label = service_areas.areas()[ident].name if kind == "area" else team_name(ident)
    areas = [a for a in service_areas.areas().values()
             if above_teams(user.roles) or a.strategic_service_manager_team in user.team_ids]
    return await render(request, "dashboard.html", user, figures=figures, needing=needing, names=names,
                        scope={kind: ident}, days=days, label=label, areas=areas,
                        title=f"Dashboard: {label}")


@router.get("/dashboard/charts/{key}.svg")
async def chart_svg(request: Request, key: str, team: str = "", area: str = "", days: int = DAYS) -> Response:
    user = await current_user(request)
    table = _table(await _page_figures(request, _scope(user, team, area), days), key)
    return Response(charts.svg(table), media_type="image/svg+xml",
                    headers={"Content-Security-Policy": charts.SVG_POLICY})


@router.get("/dashboard/charts/{key}.csv")
async def chart_csv(request: Request, key: str, team: str = "", area: str = "", days: int = DAYS) -> Response:
    user = await current_user(request)
    scope = _scope(user, team, area)
    table = _table(await _page_figures(request, scope, days), key)
    name = f"{re.sub(r'[^A-Za-z0-9_-]', '-', scope[1])}-{key}-{datetime.now(UTC).date().isoformat()}.csv"
    return Response(charts.to_csv(table), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
