"""The manager's dashboard in the desk, in headless Chromium (R-CL7): the children's Response Manager sees a Child
and Family Assessment at risk before it breaches, and the tray's chart with its numbers in a table and as a CSV
download; the page passes axe; a manager of another team is refused it."""

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.clocks.calendar import WorkingDays, bank_holidays
from shared import topics
from shared.calendar import london_date, start_of_day
from shared.testing import EventLog, publish
from tests.e2e.test_web_browser import browser, check_page, screenshots, sign_in  # noqa: F401 (fixtures)
from tests.integration.test_clocks import next_18_december, of_clock, step_created
from tests.integration.test_dashboard import placed
from tests.workflow_harness import new_case

pytestmark = pytest.mark.e2e
TEAM = "children-response"  # users.yaml: rm, the Response Manager, works in it
DAYS = WorkingDays(bank_holidays())


def cells(rows: list[list[str]]) -> list[list[str]]:
    return [[c.strip() for c in row] for row in rows]


async def table_of(page, key: str) -> list[list[str]]:
    """The chart's table as a reader sees it: the header row, then each row's cells."""
    table = page.locator(f'table[data-chart="{key}"]')
    return cells(await table.locator("tr").evaluate_all(
        "rows => rows.map(r => Array.from(r.children).map(c => c.textContent))"))


async def test_R_CL7_the_response_manager_sees_an_assessment_at_risk_before_it_breaches_and_the_trays_chart(
        infra, web, clocks, scheduler, scheduler_clock, browser, screenshots):  # noqa: F811
    child, now = str(uuid.uuid4()), datetime.now(UTC)
    red, amber = (str(uuid.uuid4()), str(uuid.uuid4())), (str(uuid.uuid4()), str(uuid.uuid4()))
    async with EventLog(infra.bootstrap, [topics.CLOCKS_EVENTS]) as log:
        for entry_id, person_id, rag in ((red[0], red[1], "red"), (amber[0], amber[1], "amber")):
            await publish(infra.bootstrap, topics.ALLOCATION_EVENTS,
                          [placed(entry_id, person_id, TEAM, rag, 3, timedelta(days=7), now)])
        await publish(infra.bootstrap, topics.WORKFLOW_EVENTS, [(child, step_created(child, str(uuid.uuid4()), TEAM))])
        [started] = await log.wait_for(lambda s: s.type == "clock.started" and s.data["person_id"] == child)
        due = DAYS.add(london_date(datetime.fromisoformat(started.data["started_at"])), 45)
        await scheduler_clock.move_to(start_of_day(DAYS.add(due, -5)) + timedelta(seconds=1))
        await log.wait_for(of_clock(started.data["clock_id"], "clock.warning"))

    context, page = await sign_in(browser, web.url, "rm")
    try:
        await page.get_by_role("link", name="Dashboard").click()
        await page.wait_for_url("**/dashboard")
        at_risk = page.locator(f'#clocks-needing-action tr:has(a[href="/people/{child}"])')
        await at_risk.wait_for()
        assert " ".join((await at_risk.inner_text()).split()).endswith(
            f"Child and Family Assessment within 45 working days of referral {due.strftime('%d %b %Y')} At risk")

        rag_table = await table_of(page, "waiting_by_rag")
        assert rag_table[0] == ["Date", "Red", "Amber", "Green"]
        today = rag_table[-1]
        assert today[0] == london_date(datetime.now(UTC)).isoformat()
        assert int(today[1]) >= 1 and int(today[2]) >= 1  # this test's two; others' entries of the team may add
        chart = page.locator('section#waiting_by_rag img')
        assert await chart.evaluate("img => img.complete && img.naturalWidth > 0"), "the SVG chart did not load"
        clocks_table = await table_of(page, "clocks")
        at_risk_counts = {r[0]: int(r[2]) for r in clocks_table[1:]}
        assert at_risk_counts["Child and Family Assessment within 45 working days of referral"] >= 1

        async with page.expect_download() as waiting:
            await page.locator("section#waiting_by_rag").get_by_role("link", name="CSV").click()
        download = await waiting.value
        with open(await download.path(), newline="") as f:
            rows = list(csv.reader(io.StringIO(f.read())))
        assert rows == [["date", "red", "amber", "green"], *rag_table[1:]]

        await check_page(page, screenshots, "dashboard")
    finally:
        await context.close()

    context, page = await sign_in(browser, web.url, "tm")  # the adult front door's manager
    try:
        response = await page.goto(f"/dashboard?team={TEAM}")
        assert response is not None and response.status == 403
        assert "not a manager of that team" in await page.inner_text("main")
        assert (await page.request.get(f"/dashboard/charts/clocks.csv?team={TEAM}")).status == 403
    finally:
        await context.close()


async def test_R_CL7_a_strategic_service_manager_sees_their_service_areas_dashboard(web, browser):  # noqa: F811
    context, page = await sign_in(browser, web.url, "ssm")  # users.yaml: the SSMs of adult social care
    try:
        await page.get_by_role("link", name="Dashboard").click()
        await page.wait_for_url("**/dashboard")
        assert await page.inner_text("h1") == "Dashboard: Adult Social Care"
        assert await page.locator('section#clocks img').evaluate("img => img.complete && img.naturalWidth > 0")
        response = await page.goto("/dashboard?area=wellbeing")
        assert response is not None and response.status == 403
    finally:
        await context.close()


async def test_R_CL3_R_CL6_the_response_manager_sees_a_childs_assessment_timescale_on_the_person_page(
        infra, web, clocks, events, browser, screenshots):  # noqa: F811
    """A child in need referral received on 18 December, through intake: the person page shows the assessment's
    timescale, its version, its due date past Christmas and New Year as the desk writes dates, and when it warns."""
    received = next_18_december(london_date(datetime.now(UTC)))
    due = DAYS.add(received, 45)
    async with EventLog(infra.bootstrap, [topics.CLOCKS_EVENTS]) as log:
        person_id, _ = await new_case(infra, events, service="children", category="child_in_need",
                                      received_at=f"{received.isoformat()}T10:30:00+00:00")
        [started] = await log.wait_for(lambda s: s.type == "clock.started" and s.data["person_id"] == person_id, 60)
    context, page = await sign_in(browser, web.url, "rm")
    try:
        await page.goto(f"/people/{person_id}")
        row = page.locator(f'#timescales tr[data-clock-id="{started.data["clock_id"]}"]')
        cells = [" ".join(c.split()) for c in await row.locator("td").all_inner_texts()]
        assert cells == [
            f"Child and Family Assessment within 45 working days of referral (R-CL3, version"
            f" {started.data['definition_version']})", due.strftime("%d %b %Y"), "On track",
            f"Warns the manager at {DAYS.add(due, -5).strftime('%d %b %Y')} 00:00"]
        await check_page(page, screenshots, "person-timescales")
    finally:
        await context.close()
