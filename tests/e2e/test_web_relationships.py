"""The desk's Person details > Worker relationships and Organisational relationships pages (issue #22 §10, seed
000 "Worker and Organisational Relationships", "End Worker Relationship and Organisational Relationship"): a
worker adds one, ends it with a date and a reason, sees it open then ended; allocation's refusals are shown with
every reason. Driven through the desk, the broker, allocation and its database as single-role workers."""

import re
from datetime import date, timedelta

import pytest

from shared.testing import poll_until
from tests.allocation_harness import referral_seen
from tests.e2e.web_client import Desk, error_beside, form_fields, markup
from tests.workflow_harness import SCREENING, new_case

pytestmark = pytest.mark.e2e


def _section(html: str, table_id: str) -> str:
    found = re.search(rf'<table class="work" id="{table_id}">(.*?)</table>', markup(html), re.S)
    assert found, table_id
    return found.group(1)


def _end_form(html: str) -> str:
    found = re.search(r'<form method="post" action="([^"]+/end)"', _section(html, "open-relationships"))
    assert found, "an End relationship form"
    return found.group(1)


async def test_R_A1_a_worker_records_their_involvement_and_ends_it_with_a_date_and_reason_refusals_shown(
        infra, web, events, db):
    """R-A1: the Hub's GSO (whose team holds the screening: R-A6 grounds) adds their own Involved Worker
    relationship and the case is in their Allocations; a second one, an end date before the start and an end
    with no reason are refused with the reason named; ended with a date and reason it leaves My work."""
    person_id, _ = await new_case(infra, events)
    await referral_seen(db, person_id)
    page_path = f"/people/{person_id}/relationships/worker"
    started = (date.today() - timedelta(days=7)).isoformat()
    desk = Desk(web.url)
    try:
        await desk.sign_in("hub")
        page = await desk.get(page_path)
        assert page.status_code == 200 and "No open worker relationship" in page.text
        assert 'value="gso"' not in page.text  # a worker records their own involvement, not another's
        added = await desk.post(page_path, worker_id="hub", relationship="Involved Worker", start_date=started)
        assert "Relationship added." in added.text
        assert "Involved Worker" in _section(added.text, "open-relationships")
        assert person_id in (await desk.get("/work")).text  # R-A1: in the worker's Allocations

        again = await desk.post(page_path, worker_id="hub", relationship="Involved Worker", start_date=started)
        assert "That was not done" in again.text and "already has an open" in again.text

        end = _end_form(again.text)
        relationship_id = end.split("/")[-2]
        too_early = await desk.post(end, end_date=(date.today() - timedelta(days=10)).isoformat(),
                                    end_reason="Involvement complete")
        assert "That was not done" in too_early.text and "the end date is before the start date" in too_early.text
        # issue #19 §4: said beside the end date of that relationship, which the error summary links to
        assert "the end date is before the start date" in error_beside(too_early.text, f"end-date-{relationship_id}")
        no_reason = await desk.post(end, end_date=date.today().isoformat(), end_reason="")
        assert "choose the reason the relationship ends" in no_reason.text
        assert error_beside(no_reason.text, f"end-reason-{relationship_id}") == (
            "choose the reason the relationship ends")
        assert error_beside(no_reason.text, f"end-date-{relationship_id}") == ""

        ended = await desk.post(end, end_date=date.today().isoformat(), end_reason="Involvement complete")
        assert "Relationship ended." in ended.text
        assert "No open worker relationship" in ended.text
        assert "Involvement complete" in _section(ended.text, "ended-relationships")
        assert person_id not in (await desk.get("/work")).text  # out of Allocations at once
    finally:
        await desk.close()


async def test_R_A2_a_team_relationship_added_and_ended_on_the_page_still_shows_until_midnight(
        infra, web, events, db):
    """R-A2, R-A6: the Hub's GSO records the North team as the Involved Team (seed 000) and, the involvement
    over, ends it with the reason: ended on the page, still on the person summary until midnight."""
    person_id, _ = await new_case(infra, events)
    await referral_seen(db, person_id)
    page_path = f"/people/{person_id}/relationships/organisational"
    desk = Desk(web.url)
    try:
        await desk.sign_in("hub")
        page = await desk.get(page_path)
        assert '<option value="wellbeing-service-north">Wellbeing Service North</option>' in page.text
        assert "No open team relationship" in page.text
        added = await desk.post(page_path, team_id="wellbeing-service-north", relationship="Involved Team",
                                start_date=date.today().isoformat())
        assert "Relationship added." in added.text
        assert "Wellbeing Service North" in _section(added.text, "open-relationships")
        summary = await desk.get(f"/people/{person_id}")
        assert "Wellbeing Service North – Involved Team" in summary.text

        end = _end_form(added.text)
        fields = form_fields(added.text, f"end-{end.split('/')[-2]}")
        assert fields["end_date"] == [date.today().isoformat()]
        ended = await desk.post(end, end_date=date.today().isoformat(), end_reason="Involvement complete")
        assert "Relationship ended." in ended.text
        row = _section(ended.text, "ended-relationships")
        assert "Involvement complete" in row and "shown until midnight" in row

        async def still_shown() -> bool:
            text = (await desk.get(f"/people/{person_id}")).text
            return "Wellbeing Service North – Involved Team" in text and "(ends " in text
        await poll_until(still_shown, timeout=10, what="the ended team shown until midnight")
    finally:
        await desk.close()


def _involved(html: str) -> dict[tuple[str, str], str]:
    found = re.search(r'<div id="already-involved">(.*?)</div>', html, re.S)
    assert found, "the allocate form's list of who is already involved"
    return {(kind, ident): re.sub(r"<[^>]+>", "", text) for kind, ident, text in
            re.findall(r'<li data-kind="([^"]+)" data-id="([^"]+)">(.*?)</li>', found.group(1), re.S)}


async def test_R_A3_the_allocate_form_names_who_is_already_involved_before_the_senior_officer_picks(
        infra, web, events, db):
    """R-A3: before allocating, the Senior Officer sees each worker and team already involved — open
    relationships and the holders of the person's work — and picks with no worker chosen for them; a second
    involved worker is allocated beside the first (the Wellbeing Service's TA and GSO)."""
    person_id, _ = await new_case(infra, events)
    await referral_seen(db, person_id)
    hub, so = Desk(web.url), Desk(web.url)
    try:
        await hub.sign_in("hub")
        await hub.post(f"/people/{person_id}/relationships/worker", worker_id="hub", relationship="Involved Worker")
        await hub.post(f"/people/{person_id}/relationships/organisational", team_id="wellbeing-service-north",
                       relationship="Involved Team")
        await so.sign_in("so")
        page = await so.get(f"/people/{person_id}")
        involved = _involved(page.text)
        assert "Involved Worker since" in involved[("worker", "hub")]
        assert "Involved Team since" in involved[("team", "wellbeing-service-north")]
        assert f"holds {SCREENING} (Incoming)" in involved[("team", "wellbeing-service-hub")]
        assert form_fields(page.text, "allocate-form").get("worker_id", [""]) == [""]  # no default worker

        allocated = await so.post(f"/people/{person_id}/allocate", worker_id="gso", team_id="wellbeing-service-north")
        assert "Allocated to Gail Stone" in allocated.text
        after = _involved(allocated.text)
        assert "Involved Worker" in after[("worker", "gso")] and ("worker", "hub") in after
    finally:
        await hub.close()
        await so.close()
