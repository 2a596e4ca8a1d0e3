"""R-C5 in the desk (issue #22), in headless Chromium, with single-role workers of the teams seed 000 "Full Case
Closures" names: the Hub's GSO closes the case of a person who died with a live direct payment; the step page says
beside "had a direct payment" that it was answered Yes from that order, naming it; the LCC Adult Care (Area) Team's
social worker, to whose team the closure's request went, can write only the direct payment checklist, and the
closer cannot write the checklist."""

import httpx
import pytest

from shared.testing import poll_until, service_auth
from tests.e2e.test_web_browser import HUB, browser, check_page, expect, flash, screenshots, sign_in  # noqa: F401
from tests.integration.test_closure_direct_payment import AREA_TEAM, team_requests
from tests.purchasing_harness import PA, coordinator, plan_values, support_plan
from tests.workflow_harness import PROPOSED_CLOSURE_VALUES, Commands, actor, new_case

pytestmark = pytest.mark.e2e
PROPOSED = "Adult Proposed Case Closure"
DP_REQUEST = "Adult Please review information and authorise"
CLOSER_FIELDS = ("f-closure_reason", "f-proposed_closure_date", "f-had_direct_payment")
CHECKLIST_FIELDS = ("f-dp_suspended", "f-dp_termination_date", "f-dp_final_reconciliation_requested")
AREA = actor("area", "social_worker", teams=(AREA_TEAM,))  # users.yaml: the team's social worker


async def closure_of_a_death_with_a_live_direct_payment(infra, events, workflow, commands: Commands
                                                        ) -> tuple[str, str, str]:
    """A live direct payment order (an STS co-ordinator's support plan, seed 002), then the Hub's Adult Proposed
    Case Closure: the person died, the request sent to the Adult Care (Area) Team. The person, the step and the
    order's id."""
    person_id, _ = await new_case(infra, events)
    sts = coordinator()
    plan = await support_plan(commands, sts, person_id, plan_values(PA), [{"action": "Direct payments"}])
    (await commands.send("step.finish", sts, key=person_id, step_id=plan)).ok()
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        [order] = await poll_until(
            lambda: _orders(http, person_id), 30, "the direct payment order workflow holds")
    started = await commands.send("step.start_new", HUB, key=person_id, person_id=person_id, step_type=PROPOSED)
    proposed = started.ok().of("step.created")["step_id"]
    for type_, data in (("step.save", {"values": {**PROPOSED_CLOSURE_VALUES, "closure_reason": "Person has died",
                                                  "had_direct_payment": True}}),
                        ("step.send_request", {"name": DP_REQUEST, "note": "Died on 1 July"})):
        (await commands.send(type_, HUB, key=person_id, step_id=proposed, **data)).ok()
    return person_id, proposed, order["po_request_id"]


async def _orders(http: httpx.AsyncClient, person_id: str) -> list[dict]:
    return [o for o in (await http.get(f"/people/{person_id}/purchase-orders")).json()
            if o["kind"] == "direct_payment"]


async def editable(page, ids: tuple[str, ...]) -> list[str]:
    """Which of these fields the page offers for writing (an input, select or textarea, not a read-only box)."""
    return [i for i in ids if await page.locator(f"#{i}").evaluate(
        "e => ['INPUT', 'SELECT', 'TEXTAREA'].includes(e.tagName)")]


async def test_R_C5_the_closer_sees_which_live_order_answered_yes_and_cannot_write_the_area_teams_checklist(
        infra, web, events, workflow, commands: Commands, browser, screenshots):  # noqa: F811 (fixtures)
    _, proposed, order_id = await closure_of_a_death_with_a_live_direct_payment(infra, events, workflow, commands)
    context, page = await sign_in(browser, web.url, "hub")
    try:
        await page.goto(f"/steps/{proposed}")
        said = page.locator("#f-had_direct_payment-prefilled")
        await expect(said).to_contain_text("Answered Yes when the step began")
        await expect(said).to_contain_text(f"live direct payment purchase order raised in Tessera (order {order_id})")
        assert await editable(page, CLOSER_FIELDS) == list(CLOSER_FIELDS)
        assert await editable(page, CHECKLIST_FIELDS) == []
        await check_page(page, screenshots, "20-closure-prefilled-from-orders")
    finally:
        await context.close()


async def test_R_C5_the_adult_care_area_worker_writes_only_the_checklist_the_request_asks_of_their_team(
        infra, web, events, workflow, notifications, commands: Commands, browser, screenshots):  # noqa: F811
    person_id, proposed, _ = await closure_of_a_death_with_a_live_direct_payment(infra, events, workflow, commands)
    await poll_until(lambda: team_requests(notifications, AREA, AREA_TEAM, person_id), 30,
                     "the request in the Adult Care (Area) team's inbox")  # what lets its worker open the step
    context, page = await sign_in(browser, web.url, "area")  # one role, the Adult Care (Area) team
    try:
        await page.goto(f"/steps/{proposed}")
        await expect(page.locator("#answer-only")).to_contain_text("a request it sent came to you")
        assert await editable(page, CLOSER_FIELDS) == []
        await expect(page.locator("#s-2")).to_contain_text("Read-only: completed by the step's worker")
        assert await editable(page, CHECKLIST_FIELDS) == list(CHECKLIST_FIELDS)
        assert await page.locator("#add-next-action, form.request-form, #cancel-reason, #done-2:enabled").count() == 0
        await expect(page.locator("#finish-step")).to_be_visible()  # the team finishes the closure (R-C5)
        await page.locator("#f-dp_suspended").select_option("true")
        await page.locator("#f-dp_termination_date").fill("2024-07-02")
        await page.locator("#f-dp_final_reconciliation_requested").select_option("true")
        await page.locator("#save-step").click()
        await flash(page, "Saved.")
        await expect(page.locator("#f-dp_suspended")).to_have_value("true")
        await check_page(page, screenshots, "21-closure-checklist-by-the-area-team")
    finally:
        await context.close()
