"""WB Case Monitoring on the desk's step page (issue #22 §2, R-W13, seed 000 "WB Case Monitoring": "completed with
relevant activity … by each worker"): a worker involved with the person whose step it is not is offered the
activity log and nothing else, saves their row, and the row keeps its author — the assignee's team sees it locked.
Through the desk, the broker, workflow (reading allocation's relationships) and their databases, as single-role
workers: the Hub's GSO (the team holding the step) and the North team's GSO (the Trusted Assessor's team)."""

import json
import re

import pytest

from tests.allocation_harness import referral_seen
from tests.e2e.web_client import Desk, form_fields, markup
from tests.workflow_harness import MONITORING, actor, given_step, new_case

pytestmark = pytest.mark.e2e
HUB = actor("hub", "gso", teams=("wellbeing-service-hub",))


def _log(html: str) -> list[dict]:
    """The activity log as the step form renders it (from the values it was rendered with)."""
    return json.loads(form_fields(html, "step-form")["rendered"][0])["values"].get("activity_log") or []


async def test_R_W13_an_involved_worker_who_is_not_the_assignee_adds_activity_on_the_desk_and_keeps_their_row(
        infra, web, events, db, workflow_db):
    person_id, _ = await new_case(infra, events)
    await referral_seen(db, person_id)
    monitoring = await given_step(workflow_db, HUB, person_id, MONITORING,
                                  {"kind": "team", "id": "wellbeing-service-hub"})
    hub, north = Desk(web.url), Desk(web.url)
    try:
        await hub.sign_in("hub")
        added = await hub.post(f"/people/{person_id}/relationships/organisational",
                               team_id="wellbeing-service-north", relationship="Involved Team")
        assert "Relationship added." in added.text

        await north.sign_in("gso")
        page = await north.get(f"/steps/{monitoring}")
        assert page.status_code == 200 and 'id="activity-only"' in page.text
        shown = form_fields(page.text, "step-form")
        assert "t.activity_log.__present" in shown and "v.reason_involvement_ending" not in shown
        assert "completed_sections.__present" not in shown
        assert 'id="finish-step"' not in page.text and 'id="next-action-form"' not in page.text

        saved = await north.post(f"/steps/{monitoring}/save", **{
            **{k: v for k, v in shown.items() if k != "csrf_token"},
            "t.activity_log.__row": ["n1"], "t.activity_log.n1.activity_datetime": "2024-06-04T10:00",
            "t.activity_log.n1.activity": "Introductory call with the person"})
        assert "Saved." in saved.text, re.findall(r'<div[^>]*id="flash".*?</div>', saved.text, re.S)
        assert [(r["activity"], r["recorded_by"]) for r in _log(saved.text)] == [
            ("Introductory call with the person", "gso")]

        # the Hub holds the step: all of it is theirs, but the North GSO's row is locked; they add their own
        theirs = await hub.get(f"/steps/{monitoring}")
        own = markup(theirs.text)
        assert 'id="activity-only"' not in theirs.text and 'id="finish-step"' in theirs.text
        # issue #22 §9: the assign picker picks nobody and lists the Wellbeing pack's workers only
        picker = re.search(r'<select id="as-worker" name="to_worker">(.*?)</select>', own, re.S)
        offered = re.findall(r'<option value="([^"]*)"', picker.group(1)) if picker else []
        assert offered[0] == "" and {"hub", "gso", "so"} <= set(offered)
        assert not {"sw", "tm", "admin", "administrator"} & set(offered)
        assert re.search(r'<tr data-row-id="0" class="locked-row" data-locked="1">', own)
        fields = form_fields(theirs.text, "step-form")
        assert not any(k.startswith("t.activity_log.0.") for k in fields)
        again = await hub.post(f"/steps/{monitoring}/save", **{
            **{k: v for k, v in fields.items() if k != "csrf_token"},
            "t.activity_log.__row": ["0", "n1"], "t.activity_log.n1.activity_datetime": "2024-06-05T09:00",
            "t.activity_log.n1.activity": "Letter sent"})
        assert "Saved." in again.text
        assert [(r["activity"], r["recorded_by"]) for r in _log(again.text)] == [
            ("Introductory call with the person", "gso"), ("Letter sent", "hub")]
    finally:
        await hub.close()
        await north.close()
