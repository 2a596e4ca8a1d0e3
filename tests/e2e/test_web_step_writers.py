"""Issue #22 §9 "offer only the actions that person can take" on a step's form, in headless Chromium, with
single-role workers of seed 000 "Full Case Closures": the Hub's GSO, whose Adult Proposed Case Closure it is, is
offered its fields and Save; a Senior Officer, who may open any person but neither works, signs nor answers the
step (R-W10, R-C5), sees the same fields read-only, saying why, and no Save."""

import pytest

from tests.e2e.test_web_browser import HUB, browser, check_page, expect, screenshots, sign_in  # noqa: F401
from tests.e2e.test_web_closure_checklist import CLOSER_FIELDS, PROPOSED, editable
from tests.workflow_harness import PROPOSED_CLOSURE_VALUES, Commands, new_case

pytestmark = pytest.mark.e2e


async def proposed_closure(infra, events, commands: Commands) -> str:
    """The Hub's GSO proposes a person's full case closure (assigned to herself) and records its details."""
    person_id, _ = await new_case(infra, events)
    started = await commands.send("step.start_new", HUB, key=person_id, person_id=person_id, step_type=PROPOSED)
    proposed = started.ok().of("step.created")["step_id"]
    (await commands.send("step.save", HUB, key=person_id, step_id=proposed,
                         values=PROPOSED_CLOSURE_VALUES)).ok()
    return proposed


async def test_issue_22_R_W10_the_closer_is_offered_the_closure_form_and_save(
        infra, web, events, workflow, commands: Commands, browser):  # noqa: F811 (fixtures)
    proposed = await proposed_closure(infra, events, commands)
    context, page = await sign_in(browser, web.url, "hub")
    try:
        await page.goto(f"/steps/{proposed}")
        assert await editable(page, CLOSER_FIELDS) == list(CLOSER_FIELDS)
        await expect(page.locator("#save-step")).to_be_visible()
    finally:
        await context.close()


async def test_issue_22_R_W10_R_C5_a_senior_officer_who_may_open_the_person_sees_the_closure_read_only_and_no_save(
        infra, web, events, workflow, commands: Commands, browser, screenshots):  # noqa: F811 (fixtures)
    proposed = await proposed_closure(infra, events, commands)
    context, page = await sign_in(browser, web.url, "so")  # one role: Senior Officer, above teams
    try:
        await page.goto(f"/steps/{proposed}")
        await expect(page.locator("#f-closure_reason")).to_have_text("No social care needs")
        assert await editable(page, CLOSER_FIELDS) == []
        await expect(page.locator("#s-2")).to_contain_text(
            "Read-only: completed by the step's worker and those the guide names for it")
        assert await page.locator("#save-step").count() == 0
        await check_page(page, screenshots, "22-closure-read-only-for-a-senior-officer")
    finally:
        await context.close()
