"""The desk's Person details page (issue #22 §10, #17 §3): a worker keeps the record up to date and records a
death; what the worker changed, and only that, reaches referrals as themselves; the death reaches their tasks."""

from datetime import UTC, datetime, timedelta

import pytest

from shared import topics
from shared.testing import EventLog, poll_until
from tests.e2e.web_client import Desk, error_beside, form_fields
from tests.workflow_harness import SCREENING, new_case

pytestmark = pytest.mark.e2e


async def test_R_P1_the_details_a_worker_changes_and_only_those_are_saved_as_them_and_a_stale_page_is_refused(
        infra, web, events):
    person_id, _ = await new_case(infra, events)
    desk = Desk(web.url)
    async with EventLog(infra.bootstrap, [topics.REFERRALS_COMMANDS]) as sent:
        try:
            await desk.sign_in("hub")  # the Wellbeing Hub's GSO, whose team holds the person's screening
            page = await desk.get(f"/people/{person_id}/details")
            assert page.status_code == 200 and "Record a death" in page.text
            shown = form_fields(page.text, "person-details")
            edited = {**shown, "phone": ["07700 900123"], "employment_status": ["Retired"],
                      "preferred_contact": ["letter"], "communication_needs": ["Large print\nInterpreter: Polish"]}
            saved = await desk.post(f"/people/{person_id}/details", **{k: v for k, v in edited.items()
                                                                      if k != "csrf_token"})
            assert "Person details saved." in saved.text
            [update] = await sent.wait_for(lambda s: s.type == "person.update")
            assert update.data["changes"] == {"phone": "07700 900123", "employment_status": "Retired",
                                              "preferred_contact": "letter",
                                              "communication_needs": ["Large print", "Interpreter: Polish"]}
            assert update.data["actor"]["worker_id"] == "hub"
            again = form_fields(saved.text, "person-details")
            assert (again["phone"], again["employment_status"], again["communication_needs"]) == (
                ["07700 900123"], ["Retired"], ["Large print\nInterpreter: Polish"])
            assert int(again["version"][0]) == int(shown["version"][0]) + 1

            stale = await desk.post(f"/people/{person_id}/details", **{
                **{k: v for k, v in edited.items() if k != "csrf_token"}, "gender": ["Prefers not to say"]})
            assert "That was not done" in stale.text and "the record is at version" in stale.text
            assert form_fields(stale.text, "person-details")["gender"] != ["Prefers not to say"]

            # issue #19 §4: a refused change is said beside its input, which the error summary links to (R-P4)
            current = form_fields(stale.text, "person-details")
            bad = await desk.post(f"/people/{person_id}/details", **{
                **{k: v for k, v in current.items() if k != "csrf_token"}, "nhs_number": ["1234567890"]})
            assert "That was not done" in bad.text
            assert "NHS number" in error_beside(bad.text, "nhs_number"), error_beside(bad.text, "nhs_number")
            assert error_beside(bad.text, "phone") == ""
        finally:
            await desk.close()


async def test_R_K8_a_death_recorded_on_the_details_page_puts_each_open_step_in_the_recorders_tasks(
        infra, web, events):
    person_id, screening = await new_case(infra, events)
    desk = Desk(web.url)
    try:
        await desk.sign_in("hub")
        page = await desk.get(f"/people/{person_id}/details")
        version = form_fields(page.text, "person-details")["version"]
        # issue #19 §4: a date of death before the birth is refused, said beside the date of death
        too_early = await desk.post(f"/people/{person_id}/death", date_of_death="1900-01-01", confirm="yes",
                                    version=version)
        assert "before the date of birth" in error_beside(too_early.text, "date_of_death")
        died = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
        recorded = await desk.post(f"/people/{person_id}/death", date_of_death=died, confirm="yes", version=version)
        assert "The death is recorded" in recorded.text
        [death] = await events.wait_for(lambda s: s.type == "person.death_recorded"
                                        and s.data.get("person_id") == person_id)
        assert [s["step_id"] for s in death.data["open_steps"]] == [screening]

        async def task_shown() -> bool:
            work = await desk.get("/work")
            return f"Person has died: close {SCREENING}" in work.text and f"/steps/{screening}" in work.text
        await poll_until(task_shown, timeout=30, what="the open screening in the recorder's tasks")
    finally:
        await desk.close()
