"""The dashboard page in the desk's templates, its services stood in for (R-CL7, issue #19 §4): one view of the
page — the page, its five chart images and a CSV download — asks the clocks service for the figures once, and
every chart draws the page's numbers."""

import re
from types import SimpleNamespace
from typing import Any

import httpx
from fastapi import FastAPI

from services.web import dashboard_pages
from services.web.auth import User

TEAM = "children-response"
CHARTS = ("waiting_by_rag", "days_waiting", "reviews_by_week", "clocks", "work_per_worker")


def figures(served: int) -> dict[str, Any]:
    """The clocks service's answer, each answer told apart by `served` (the red count of its one row)."""
    return {"as_of": "2026-12-03T12:00:00+00:00", "clocks_needing_action": [],
            "charts": [{"key": key, "title": key.replace("_", " "), "kind": "bar", "columns": ["date", "red"],
                        "rows": [["2026-12-03", served]]} for key in CHARTS]}


class Clocks:
    def __init__(self) -> None:
        self.asked = 0

    async def team_dashboard(self, team_id: str, days: int) -> dict[str, Any]:
        self.asked += 1
        return figures(self.asked)


class Readers:
    def __init__(self) -> None:
        self.clocks = Clocks()

    async def names(self, person_ids: set[str]) -> dict[str, str]:
        return {}


class Sessions:
    async def user(self, pool: Any, cookie: str | None) -> User:
        return User("rm", "Rita Moss", ("response_manager",), (TEAM,))


def desk() -> tuple[httpx.AsyncClient, Readers]:
    app = FastAPI()
    app.include_router(dashboard_pages.router)
    readers = Readers()
    app.state.readers, app.state.sessions, app.state.runtime = readers, Sessions(), SimpleNamespace(pool=None)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://desk"), readers


async def test_R_CL7_a_view_of_the_dashboard_asks_the_clocks_service_once_and_its_charts_draw_the_pages_numbers(
        ) -> None:
    client, readers = desk()
    async with client:
        page = await client.get(f"/dashboard?team={TEAM}&days=28")
        assert page.status_code == 200
        images = re.findall(r'<img[^>]* src="([^"]+\.svg[^"]*)"', page.text)
        assert len(images) == len(CHARTS)
        drawn = [await client.get(src.replace("&amp;", "&")) for src in images]
        csv = await client.get(f"/dashboard/charts/waiting_by_rag.csv?team={TEAM}&days=28")
    assert all(svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml" for svg in drawn)
    assert readers.clocks.asked == 1
    assert csv.text.splitlines()[1] == "2026-12-03,1"  # the page's numbers, not a second answer's


async def test_R_CL7_another_number_of_days_is_asked_for_afresh() -> None:
    client, readers = desk()
    async with client:
        await client.get(f"/dashboard?team={TEAM}&days=28")
        await client.get(f"/dashboard/charts/clocks.svg?team={TEAM}&days=56")
    assert readers.clocks.asked == 2
