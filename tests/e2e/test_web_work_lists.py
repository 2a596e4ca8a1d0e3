"""Tessera desk at a team's size (issue #18 §5): Team work paged and sorted by workflow, each row named from one
read of referrals, and the person page's access decided by asking about that one person."""

import html
import re
import uuid

import httpx
import pytest

from shared import topics
from shared.envelope import new_message
from shared.testing import EventLog, poll_until, publish, service_auth
from tests.e2e.web_client import Desk
from tests.factories import referral_message, unique_referral
from tests.workflow_harness import new_case

pytestmark = pytest.mark.e2e

TEAM = "wellbeing-service-hub"  # where intake sends a wellbeing referral's first step
PAGE = 25  # the desk's smallest page
ROW = re.compile(r'<a href="/steps/([0-9a-f-]{36})"[^>]*>.*?<a href="/people/([0-9a-f-]{36})"[^>]*>([^<]*)</a>', re.S)
UUID_TEXT = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


async def referred(infra, events: EventLog, count: int) -> dict[str, str]:
    """`count` wellbeing referrals at once through intake: each person's id → their name, once their first step
    is in the team's work."""
    sent = [unique_referral() for _ in range(count)]
    envelopes = [referral_message(data) for data in sent]
    await publish(infra.bootstrap, topics.REFERRALS_INTAKE,
                  [(data["referral_id"], e.to_bytes()) for data, e in zip(sent, envelopes, strict=True)])
    accepted = await events.wait_for(
        lambda s: s.type == "referral.accepted" and any(s.caused_by(e.id) for e in envelopes), 120, count=count)
    workflows = {a.data["workflow_id"] for a in accepted}
    await events.wait_for(lambda s: s.type == "step.created" and s.data.get("workflow_id") in workflows, 120,
                          count=count)
    by_referral = {data["referral_id"]: data["person"] for data in sent}
    return {a.data["person_id"]: "{first_name} {last_name}".format(**by_referral[a.data["referral_id"]])
            for a in accepted}


async def incoming_in_order(workflow_url: str, sort: str) -> list[tuple[str, str]]:
    """(step id, person id) of the team's whole incoming work in `sort` order, as workflow pages it."""
    found: list[tuple[str, str]] = []
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow_url) as http:
        page = 1
        while True:
            work = (await http.get(f"/teams/{TEAM}/work", params={"sort": sort, "size": 200,
                                                                   "incoming_page": page})).json()
            found += [(s["step_id"], s["person_id"]) for s in work["incoming"]]
            if len(found) >= work["total"]["incoming"]:
                return found
            page += 1


def incoming_table(page: str) -> tuple[int, list[tuple[str, str, str]], str | None]:
    """The Incoming table's count, its rows (step id, person id, person shown as) and its Next link."""
    table = page[re.search(r"<caption[^>]*>Incoming team work", page).start():]
    table = table[:table.index("</table>")]
    count = int(re.search(r'class="count">\((\d+)\)', table).group(1))
    pager = re.search(r'<nav [^>]*id="pager-incoming">(.*?)</nav>', page, re.S)
    following = re.search(r'<a [^>]*href="([^"]+)" rel="next">', pager.group(1)) if pager else None
    return count, ROW.findall(table), html.unescape(following.group(1)) if following else None


async def pages_of(desk: Desk, first: str) -> tuple[int, list[tuple[str, str, str]]]:
    """Every row of the Incoming table, following its Next links from `first` to the last page."""
    count, rows, following = incoming_table((await desk.get(first)).text)
    while following:
        _, more, following = incoming_table((await desk.get(f"/teams/{TEAM}/work{following}")).text)
        rows += more
    return count, rows


async def test_R_W15_team_work_counts_pages_through_and_sorts_every_open_step_each_named(infra, web, workflow,
                                                                                          events):
    """More open steps than a page: the count is the whole list's, the Next links reach every step once in the
    server's order (each person named, never an id), and another sort reorders the same steps."""
    people = await referred(infra, events, PAGE + 5)
    by_person = await incoming_in_order(workflow.url, "person")
    desk = Desk(web.url)
    try:
        await desk.sign_in("hub")
        count, rows = await pages_of(desk, f"/teams/{TEAM}/work?sort=person&size={PAGE}")
        _, longest_waiting = await pages_of(desk, f"/teams/{TEAM}/work?sort=-waiting&size={PAGE}")
    finally:
        await desk.close()
    assert count == len(by_person) > PAGE
    assert [(step, person) for step, person, _ in rows] == by_person  # all of them, once, in order
    assert [person for _, person, _ in rows] == sorted(person for _, person, _ in rows)
    shown = {person: name for _, person, name in rows}
    assert all(shown[person] == name for person, name in people.items())
    assert not any(UUID_TEXT.match(name) for name in shown.values())
    newest_first = await incoming_in_order(workflow.url, "-waiting")
    assert [(step, person) for step, person, _ in longest_waiting] == newest_first != by_person


async def test_R_P5_the_person_page_admits_on_an_item_sent_to_the_team_and_refuses_without_grounds(
        infra, web, notifications, events):
    """The desk asks notifications whether anything about this one person was sent to the worker or their team:
    the Strategic Service Manager (no relationship, no work, no tray of the person) is sent to give a reason,
    then opens the record once an escalation about the person is in their team's inbox."""
    person_id, _ = await new_case(infra, events)
    team = "ssm-adult-social-care"
    desk = Desk(web.url)
    try:
        await desk.sign_in("ssm")
        refused = await desk.get(f"/people/{person_id}")
        assert refused.url.path == f"/people/{person_id}/access" and refused.status_code == 403
        escalated = new_message("tray.entry_escalated", "tessera/allocation", {
            "entry_id": str(uuid.uuid4()), "person_id": person_id, "team_id": "adult-front-door",
            "reason": "increased_risk", "rag": "red", "placed_at": "2026-10-01T09:00:00+00:00", "actor": "tm"},
            subject=person_id)
        await publish(infra.bootstrap, topics.ALLOCATION_EVENTS, [(person_id, escalated.to_bytes())])

        async def in_team_inbox() -> bool:
            async with httpx.AsyncClient(auth=service_auth(), base_url=notifications.url) as http:
                items = (await http.get(f"/teams/{team}/inbox", params={"kind": "task"})).json()
            return any(i["person_id"] == person_id for i in items)
        await poll_until(in_team_inbox, 30, "the escalation in the SSM team's inbox")
        admitted = await desk.get(f"/people/{person_id}")
        assert admitted.url.path == f"/people/{person_id}" and admitted.status_code == 200
        assert "is in your inbox" in admitted.text
    finally:
        await desk.close()
