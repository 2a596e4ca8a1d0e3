"""The Planned Work Tray in the desk as its workers use it (issue #22 §3, seed 004), each a demo account of one role.

The Team Manager chooses the RAG with the guide's definitions and high-risk indicators in front of them and
overrides the matrix with a reason; the team's social worker records the check-in call and moves the next
review; the Team Manager finds the review in My work.
"""

import html
import re
from datetime import date, timedelta

import pytest

from shared.testing import poll_until
from tests.allocation_harness import referral_seen, tray_args
from tests.e2e.web_client import Desk, error_beside, markup
from tests.workflow_harness import new_case

pytestmark = pytest.mark.e2e
TEAM = "adult-front-door"  # users.yaml: tm (Team Manager) and sw (Social Worker) work in it


def row_of(page: str, person_id: str) -> str:
    found = re.search(rf"<tr[^>]*>(?:(?!</tr>).)*/people/{person_id}(?:(?!</tr>).)*</tr>", page, re.S)
    assert found, "the person is not on the tray"
    return words_of(found.group(0))


def words_of(markup: str) -> str:
    """What a reader sees of some HTML: its text, tags dropped, entities read, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split()).replace(" )", ")").replace("( ", "(")


async def test_R_T3_R_T5_the_rag_is_chosen_with_the_guide_and_a_social_worker_records_the_review_contact(
        infra, web, events, db):
    person_id, _ = await new_case(infra, events, category="assessment")  # front door work: both may open it
    await referral_seen(db, person_id)
    manager, worker = Desk(web.url), Desk(web.url)
    try:
        await manager.sign_in("tm")
        record = await manager.get(f"/people/{person_id}")
        placing = words_of(record.text[record.text.index('id="tray-h"'):])
        for words in ("High-risk indicators", "The person is wandering at night", "Moderate support",
                      "the person has no formal or informal support", "RAG by professional judgement"):
            assert words.lower() in placing.lower(), words
        # issue #19 §4: a RAG of the manager's own with no reason is refused, the reason said beside its input
        refused = await manager.post(f"/people/{person_id}/tray", **tray_args(TEAM, urgent="false"),
                                     rag_override="red")
        assert "say why the RAG differs from the matrix" in error_beside(refused.text, "tray-override-reason")
        placed = await manager.post(f"/people/{person_id}/tray", **tray_args(TEAM, urgent="false"),
                                    rag_override="red", rag_override_reason="Lives alone; two falls this month")
        assert "RAG RED" in placed.text, placed.text[:300]
        assert "Professional judgement (the matrix gives Amber): Lives alone; two falls this month" in row_of(
            placed.text, person_id)

        await worker.sign_in("sw")
        tray = await worker.get(f"/tray?team={TEAM}")
        assert "The person is wandering at night" in words_of(tray.text)  # the guide, beside the review forms
        entry_id = re.search(rf'data-entry-id="([^"]+)">\s*<td><a href="/people/{person_id}"', markup(tray.text))
        assert entry_id and "Record review" in row_of(tray.text, person_id)
        assert "Remove from tray" not in row_of(tray.text, person_id)  # taking a case off is the TM/TL's
        # issue #19 §4: a refused review opens its form again, the reason beside the input it names (R-T3)
        refused = await worker.post(f"/tray/{entry_id.group(1)}/review", contacted="true", rag_override="red",
                                    note="Spoke to her daughter; managing for now", notify_worker_ids="tm")
        assert "say why the RAG differs from the matrix" in error_beside(
            refused.text, f"rv-{entry_id.group(1)}-override-reason")
        assert "<details open><summary><span>Review</span></summary>" in markup(refused.text)
        reviewed = await worker.post(f"/tray/{entry_id.group(1)}/review", contacted="true",
                                     note="Spoke to her daughter; managing for now", notify_worker_ids="tm")
        assert "Review recorded: RAG AMBER." in reviewed.text, reviewed.text[:300]
        review_on = date.today() + timedelta(days=10)
        moved = await worker.post(f"/tray/{entry_id.group(1)}/next-review", next_review_on=review_on.isoformat(),
                                  reason="I am on leave next week")
        assert "Set by hand: I am on leave next week" in row_of(moved.text, person_id)

        async def review_in_my_work() -> bool:
            return "Case note: PWT" in row_of_work((await manager.get("/work")).text, person_id)
        await poll_until(review_in_my_work, 30, "the review's task in the Team Manager's My work")
    finally:
        await manager.close()
        await worker.close()


def row_of_work(page: str, person_id: str) -> str:
    """The My work rows about the person (empty when none)."""
    return " ".join(re.findall(rf"<tr[^>]*>(?:(?!</tr>).)*/people/{person_id}(?:(?!</tr>).)*</tr>", page, re.S))


async def test_R_A3_the_trays_allocate_form_names_who_is_already_involved_as_the_person_page_does(
        infra, web, events, db):
    """R-A3: allocating from the tray, the Team Manager sees each worker and team already involved with the
    person and why (the person page's list, the same macro), and no worker is chosen for them."""
    person_id, _ = await new_case(infra, events, category="assessment")
    await referral_seen(db, person_id)
    manager = Desk(web.url)
    try:
        await manager.sign_in("tm")
        await manager.get(f"/people/{person_id}")
        placed = await manager.post(f"/people/{person_id}/tray", **tray_args(TEAM, urgent="false"))
        assert "RAG" in placed.text, placed.text[:300]
        tray = (await manager.get(f"/tray?team={TEAM}")).text
        entry_id = re.search(rf'data-entry-id="([^"]+)">\s*<td><a href="/people/{person_id}"', markup(tray))
        assert entry_id
        involved = tray.split(f'id="involved-{entry_id.group(1)}"')[1].split("</div>")[0]
        assert "Team Adult Social Care Front Door : holds Adult Contact (Incoming)" in words_of(involved)
        assert f'<select id="al-{entry_id.group(1)}" name="worker_id" required><option value="">Choose…</option>' \
            in markup(tray)
    finally:
        await manager.close()
