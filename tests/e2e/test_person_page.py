"""The person page as the people who open it see it, from the fewest reads of the other services (issue #18 §5):
every step's history in the chronology, Duty's urgent-referral panel and the case's place on the team's Planned
Work Tray. Through the desk, the broker, every service and their databases, as single-role workers of the teams
the guides name: the Hub's GSO (seed 000), the front door's Social Worker and Team Manager (seed 004)."""

import re

import httpx
import pytest

from shared.testing import poll_until, service_auth
from tests.allocation_harness import referral_seen, tray_args
from tests.e2e.web_client import Desk
from tests.workflow_harness import MONITORING, SCREENING, actor, given_step, new_case

pytestmark = pytest.mark.e2e
HUB = actor("hub", "gso", teams=("wellbeing-service-hub",))
FRONT_DOOR = "adult-front-door"  # users.yaml: sw (Social Worker, on Duty) and tm (Team Manager, runs the tray)


async def reads_of(process, resource: str) -> int:
    """How many reads of another service's `resource` the process made since it started, from its /metrics."""
    async with httpx.AsyncClient(auth=service_auth(), base_url=process.url) as http:
        text = (await http.get("/metrics")).text
    return sum(int(float(line.split()[-1])) for line in text.splitlines()
               if line.startswith("tessera_reads_total{") and f'resource="{resource}"' in line)


def chronology_of(page: str) -> str:
    return page.split('id="chronology"')[1].split("</section>")[0]


def section(page: str, section_id: str) -> str:
    found = re.search(rf'<section[^>]*id="{section_id}".*?</section>', page, re.S)
    return found.group(0) if found else ""


async def test_every_steps_history_is_in_the_chronology_from_one_read_of_the_persons_steps(
        infra, web, events, db, workflow_db):
    """The Hub's GSO opens a person with two steps: both steps' events are in the chronology, with who did them,
    and the desk read no step on its own for it (one read of the person's steps, histories included)."""
    person_id, screening = await new_case(infra, events)
    await referral_seen(db, person_id)
    monitoring = await given_step(workflow_db, HUB, person_id, MONITORING,
                                  {"kind": "team", "id": "wellbeing-service-hub"})
    hub = Desk(web.url)
    try:
        await hub.sign_in("hub")
        before = await reads_of(web, "steps")
        page = await hub.get(f"/people/{person_id}")
        assert page.status_code == 200
        assert await reads_of(web, "steps") == before, "the person page read a step on its own"
        shown = chronology_of(page.text)
        assert f"{SCREENING} created" in shown and f'href="/steps/{screening}"' in shown
        assert f"{MONITORING} created" in shown and f'href="/steps/{monitoring}"' in shown
        assert "Hana Hub" in shown  # who opened the monitoring step, by name
    finally:
        await hub.close()


async def test_R_T2_R_T1_duty_sees_an_urgent_referral_and_the_team_manager_the_case_on_the_tray(
        infra, web, events, db):
    """R-T2: an urgent referral shows Duty's panel to the Social Worker and the Team Manager, until the urgent
    actions are recorded done; then R-T1: the Team Manager places the case on the team's tray and the person
    page says where it waits, instead of offering to place it again. The Social Worker sees no tray actions."""
    person_id, _ = await new_case(infra, events, category="assessment", urgency="urgent")
    await referral_seen(db, person_id)
    worker, manager = Desk(web.url), Desk(web.url)
    try:
        await worker.sign_in("sw")
        duty = section((await worker.get(f"/people/{person_id}")).text, "urgent-actions")
        assert "Record urgent actions done" in duty
        done = await worker.post(f"/people/{person_id}/urgent-actions", note="Safeguarding call made")
        assert "Urgent actions recorded as done" in done.text, done.text[:300]

        await manager.sign_in("tm")

        async def recorded() -> bool:
            panel = section((await manager.get(f"/people/{person_id}")).text, "urgent-actions")
            return "The urgent actions were recorded as done by sw" in panel
        await poll_until(recorded, 30, "Duty's record on the Team Manager's person page")
        page = (await manager.get(f"/people/{person_id}")).text
        assert "Place on a Planned Work Tray" in section(page, "tray")
        placed = await manager.post(f"/people/{person_id}/tray", **tray_args(FRONT_DOOR, urgent="false"))
        assert "RAG" in placed.text, placed.text[:300]

        async def on_the_tray() -> bool:
            return "On the Planned Work Tray of Adult Social Care Front Door" in section(
                (await manager.get(f"/people/{person_id}")).text, "tray")
        await poll_until(on_the_tray, 30, "the tray entry on the Team Manager's person page")
        tray = section((await manager.get(f"/people/{person_id}")).text, "tray")
        assert "waiting 0 days" in tray and "Place on a Planned Work Tray" not in tray

        theirs = (await worker.get(f"/people/{person_id}")).text
        assert section(theirs, "tray") == "" and "Record urgent actions done" not in theirs
    finally:
        await worker.close()
        await manager.close()
