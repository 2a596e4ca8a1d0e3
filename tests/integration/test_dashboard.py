"""The manager's dashboard through the real broker, database and scheduler (R-CL7): a team's tray placements with
their RAG, a review, an allocation and a Child and Family Assessment at risk → the figures its manager reads; no
one outside the team's management reads them; the read model rebuilt from the topics gives the same figures."""

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

import services.clocks
from services.clocks import insights, queries
from services.clocks.calendar import WorkingDays, bank_holidays
from shared import db as shared_db
from shared import topics
from shared.calendar import london_date, start_of_day
from shared.envelope import new_message
from shared.testing import EventLog, poll_until, publish, worker_auth
from tests.integration.test_clocks import of_clock, step_created

DAYS = WorkingDays(bank_holidays())
CFA_TITLE = "Child and Family Assessment within 45 working days of referral"
PWT_TITLE = "Nobody waits on a Planned Work Tray more than 28 days"


def allocation_event(kind: str, person_id: str, data: dict[str, object]) -> tuple[str, bytes]:
    return person_id, new_message(kind, "tessera/allocation", {"person_id": person_id, **data},
                                  subject=person_id).to_bytes()


def placed(entry_id: str, person_id: str, team: str, rag: str, days_ago: int, review_in: timedelta,
           now: datetime) -> tuple[str, bytes]:
    at = now - timedelta(days=days_ago)
    return allocation_event("tray.entry_added", person_id, {
        "entry_id": entry_id, "team_id": team, "priority": "medium", "complexity": "low", "support": "moderate",
        "risk": "moderate", "rag": rag, "placed_at": at.isoformat(), "next_review_at": (now + review_in).isoformat(),
        "actor": "tm"})


def chart(figures: dict, key: str) -> dict:
    return next(c for c in figures["charts"] if c["key"] == key)


async def figures_of(http: httpx.AsyncClient, team: str) -> dict:
    response = await http.get(f"/teams/{team}/dashboard", params={"days": 7})
    assert response.status_code == 200, response.text
    return response.json()


async def test_R_CL7_a_teams_dashboard_counts_its_tray_by_rag_its_waits_reviews_clocks_and_workers(
        infra, db, clocks, scheduler, scheduler_clock):
    run = uuid.uuid4().hex[:8]
    team, now = f"children-response-{run}", datetime.now(UTC)
    people = {n: str(uuid.uuid4()) for n in ("long", "reviewed", "allocated", "new", "child")}
    entries = {n: str(uuid.uuid4()) for n in people}
    manager = worker_auth(f"rm-{run}", ["response_manager"], [team])
    events = [
        placed(entries["long"], people["long"], team, "red", 30, timedelta(days=5), now),
        placed(entries["reviewed"], people["reviewed"], team, "amber", 10, timedelta(days=2), now),
        allocation_event("tray.entry_reviewed", people["reviewed"], {
            "entry_id": entries["reviewed"], "team_id": team, "contacted": True, "priority": "high",
            "complexity": "low", "support": "substantial", "risk": "high", "rag": "red", "previous_rag": "amber",
            "increased_risk": True, "next_review_at": (now + timedelta(days=9)).isoformat(), "version": 2,
            "actor": "tm"}),
        placed(entries["allocated"], people["allocated"], team, "green", 2, timedelta(days=3), now),
        allocation_event("case.allocated", people["allocated"], {
            "worker_id": f"sw-{run}", "team_id": team, "relationship_id": str(uuid.uuid4()), "assigned_step_ids": [],
            "removed_entry_id": entries["allocated"], "actor": "tm"}),
        placed(entries["new"], people["new"], team, "amber", 1, -timedelta(hours=2), now),  # its review overdue
    ]
    async with EventLog(infra.bootstrap, [topics.CLOCKS_EVENTS]) as log, \
            httpx.AsyncClient(auth=manager, base_url=clocks.url) as http:
        for key, value in events:
            await publish(infra.bootstrap, topics.ALLOCATION_EVENTS, [(key, value)])
        child_step = str(uuid.uuid4())
        await publish(infra.bootstrap, topics.WORKFLOW_EVENTS,
                      [(people["child"], step_created(people["child"], child_step, team))])
        [started] = await log.wait_for(lambda s: s.type == "clock.started" and s.data["person_id"] == people["child"])
        due = DAYS.add(london_date(datetime.fromisoformat(started.data["started_at"])), 45)

        # the assessment five working days before its due date: at risk, not breached
        await scheduler_clock.move_to(start_of_day(DAYS.add(due, -5)) + timedelta(seconds=1))
        await log.wait_for(of_clock(started.data["clock_id"], "clock.warning"))
        await log.wait_for(lambda s: s.type == "clock.breached" and s.data["team_id"] == team, 60, count=3)

        async def settled() -> dict | None:
            figures = await figures_of(http, team)
            return figures if chart(figures, "clocks")["rows"] == [[CFA_TITLE, 0, 1, 0], [PWT_TITLE, 0, 0, 3]] \
                and chart(figures, "work_per_worker")["rows"] else None
        figures = await poll_until(settled, 60, "the dashboard caught up with the events")

    assert chart(figures, "waiting_by_rag")["rows"][-1] == [london_date(now).isoformat(), 2, 1, 0]
    assert dict(map(tuple, chart(figures, "days_waiting")["rows"])) == {
        "0 to 7 days": 1, "8 to 14 days": 1, "15 to 21 days": 0, "22 to 28 days": 0, "over 28 days": 1}
    reviews = chart(figures, "reviews_by_week")["rows"]
    assert (sum(r[1] for r in reviews), sum(r[2] for r in reviews)) == (2, 1)
    assert chart(figures, "work_per_worker")["rows"] == [[f"sw-{run}", 1]]
    assert [(c["person_id"], c["status"]) for c in figures["clocks_needing_action"]][-1] == (people["child"],
                                                                                            "at_risk")
    async with httpx.AsyncClient(base_url=clocks.url) as http:
        other_manager = worker_auth(f"tm-{run}", ["response_manager"], [f"children-locality-{run}"])
        practitioner = worker_auth(f"sw-{run}", ["response_social_worker"], [team])
        for outsider in (other_manager, practitioner):
            assert (await http.get(f"/teams/{team}/dashboard", auth=outsider)).status_code == 403

    await _rebuilt_from_the_topics_gives_the_same_figures(infra, team, figures,
                                                          {json.loads(value)["id"] for _, value in events})


async def _rebuilt_from_the_topics_gives_the_same_figures(infra, team: str, live: dict, published: set[str]) -> None:
    """Every allocation.events and clocks.events record from the start, through the same projection, into empty
    insight tables of a schema of their own (the runbook's rebuild, without stopping the service). The log is read
    until it holds the breaches and every allocation event the test published: the topics hold the whole test
    session's messages, and one partition can be read far behind another."""
    schema = f"clocks_rebuilt_{uuid.uuid4().hex[:8]}"
    pool = await asyncpg.create_pool(infra.dsn, min_size=1, max_size=2, server_settings={"search_path": schema})
    try:
        await shared_db.migrate(pool, schema, Path(services.clocks.__file__).parent)
        async with EventLog(infra.bootstrap, [topics.ALLOCATION_EVENTS, topics.CLOCKS_EVENTS],
                            from_beginning=True) as log:
            await log.wait_for(lambda s: s.topic == topics.CLOCKS_EVENTS and s.type == "clock.breached"
                               and s.data.get("team_id") == team, 60, count=3)
            await log.wait_for(lambda s: s.topic == topics.ALLOCATION_EVENTS and s.body.get("id") in published, 60,
                               count=len(published))
            async with pool.acquire() as conn:
                for seen in list(log.seen):
                    async with conn.transaction():
                        if seen.type in insights.PROJECTIONS[seen.topic]:
                            await insights.apply(conn, seen.topic, seen.envelope)
        rebuilt = await queries.dashboard_figures(pool, [team], 7, datetime.fromisoformat(live["as_of"]))
    finally:
        await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()
    assert rebuilt["charts"] == live["charts"]
    assert rebuilt["clocks_needing_action"] == live["clocks_needing_action"]


async def test_R_CL7_a_service_areas_dashboard_is_for_its_strategic_service_managers_and_managers_above_teams(
        clocks):
    area = "adult-social-care"
    readers = {
        "ssm": worker_auth("ssm", ["strategic_service_manager"], ["ssm-adult-social-care"]),
        "hos": worker_auth("hos", ["head_of_service"], ["adult-front-door"]),
        "tm": worker_auth("tm", ["team_manager"], ["adult-front-door"]),
        "wellbeing ssm": worker_auth("ssm-w", ["strategic_service_manager"], ["ssm-wellbeing"]),
    }
    async with httpx.AsyncClient(base_url=clocks.url) as http:
        answers = {who: await http.get(f"/service-areas/{area}/dashboard", auth=auth) for who, auth in readers.items()}
        missing = await http.get("/service-areas/nowhere/dashboard", auth=readers["hos"])
    assert {who: r.status_code for who, r in answers.items()} == {"ssm": 200, "hos": 200, "tm": 403,
                                                                   "wellbeing ssm": 403}
    figures = answers["ssm"].json()
    assert (figures["area"], "adult-front-door" in figures["team_ids"]) == ("Adult Social Care", True)
    assert [c["key"] for c in figures["charts"]] == ["waiting_by_rag", "days_waiting", "reviews_by_week", "clocks",
                                                     "work_per_worker"]
    assert missing.status_code == 404
