"""Tessera desk without a browser: sign-in, CSRF, pages render, and commands carry the signed-in actor."""

import pytest

from shared import topics
from shared.testing import EventLog
from tests.e2e.web_client import Desk
from tests.workflow_harness import SCREENING, new_case

pytestmark = pytest.mark.e2e


async def test_a_wrong_password_or_a_missing_csrf_token_signs_nobody_in(web):
    desk = Desk(web.url)
    try:
        refused = await desk.sign_in("hub", "not-the-password")
        assert refused.status_code == 401 and "not right" in refused.text
        no_token = await desk.http.post("/login", data={"username": "hub", "password": "tessera-demo"})
        assert no_token.status_code == 401
        assert (await desk.http.get("/work")).url.path == "/login"
    finally:
        await desk.close()


async def test_a_signed_in_worker_sends_commands_as_themselves_whatever_the_form_says(infra, web, events):
    person_id, screening = await new_case(infra, events)
    desk = Desk(web.url)
    async with EventLog(infra.bootstrap, [topics.WORKFLOW_COMMANDS]) as sent:
        try:
            home = await desk.sign_in("hub")
            assert home.url.path == "/work" and "Hana Hub" in home.text
            team = await desk.get("/teams/wellbeing-service-hub/work")
            assert screening in team.text and SCREENING in team.text

            page = await desk.get(f"/steps/{screening}")
            assert page.status_code == 200 and "Start this step" in page.text
            forged = await desk.http.post(f"/steps/{screening}/start", data={"csrf_token": "forged"})
            assert forged.status_code == 403

            started = await desk.post(f"/steps/{screening}/start", actor="so", worker_id="so")
            assert "Started" in started.text
            [command] = sent.matching(lambda s: s.type == "step.start")
            assert command.data["actor"] == {"worker_id": "hub", "roles": ["gso"],
                                             "team_ids": ["wellbeing-service-hub"]}
            assert command.key == person_id

            saved = await desk.post(f"/steps/{screening}/save", **{
                "completed_sections.__present": "1", "v.referral_source": "Self", "v.consent_to_share": "true",
                "v.first_name": "Forged"})
            assert "Saved." in saved.text
            [save] = sent.matching(lambda s: s.type == "step.save")
            assert save.data["values"] == {"referral_source": "Self", "consent_to_share": True}

            refused = await desk.post(f"/steps/{screening}/finish")
            assert "cannot finish yet" in refused.text
            assert 'href="#f-reason_for_referral"' in refused.text and 'href="#next-actions"' in refused.text
        finally:
            await desk.close()
