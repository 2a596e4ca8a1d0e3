"""The desk in the GOV.UK design system (issue #19 §4), in headless Chromium: a refused step shows GOV.UK's error
summary with each field at fault linked and its message beside the field (R-W4), the step page fits a 1280 px
screen, and a Team Manager's menu fits on one line; every page passes axe."""

import pytest

from tests.allocation_harness import referral_seen, tray_args
from tests.e2e.test_web_browser import (  # noqa: F401 (fixtures)
    GSO,
    browser,
    check_page,
    expect,
    overflow,
    screenshots,
    sign_in,
    wellbeing_to_sap,
)
from tests.e2e.web_client import Desk
from tests.workflow_harness import SO_TRANSFER, Commands, new_case

pytestmark = pytest.mark.e2e

LAPTOP = {"width": 1280, "height": 800}
TRAY_TEAM = "adult-front-door"  # users.yaml: tm, its Team Manager
PYDANTIC_WORDS = ("Field required", "String should", "Input should", "Value error")


async def fields_at_fault(page) -> list[tuple[str, str]]:
    """Each field the error summary links: (its id, the error message said beside it, '' when none)."""
    return await page.locator("#blockers a[href^='#f-']").evaluate_all("""links => links.map(a => {
        const id = a.getAttribute('href').slice(1);
        const group = document.getElementById(id).closest('.govuk-form-group--error, .desk-cell--error');
        const said = group && group.querySelector('#' + CSS.escape(id) + '-error');
        return [id, said ? said.textContent : ''];
    })""")


async def test_R_W4_a_refused_finish_links_each_field_at_fault_and_says_why_beside_it(
        infra, web, events, browser, screenshots):  # noqa: F811 (fixtures)
    """The Hub's GSO (seed 000: the Hub screens) finishes a screening with nothing recorded: the GOV.UK error summary
    heads the page, each mandatory field it names is a link to the field, which is marked at fault with the same
    reason beside it; the page fits a laptop's screen and passes axe."""
    _, screening = await new_case(infra, events)
    context, page = await sign_in(browser, web.url, "hub")
    try:
        await page.set_viewport_size(LAPTOP)
        await page.goto(f"/steps/{screening}")
        await page.locator("#start-step").click()
        await expect(page.locator("#flash")).to_contain_text("Started")
        assert await overflow(page) == 0

        await page.locator("#finish-step").click()
        summary = page.locator("#blockers")
        await expect(summary).to_contain_text("This step cannot finish yet")
        assert await page.locator("main > *:first-child").get_attribute("id") == "blockers"
        faults = await fields_at_fault(page)
        assert faults, "the screening's mandatory fields are named"
        for field_id, said in faults:
            reason = await summary.locator(f"a[href='#{field_id}']").first.inner_text()
            assert reason in said, (field_id, said)
        assert await overflow(page) == 0
        await check_page(page, screenshots, "15-step-refused-inline-errors")

        first_id = faults[0][0]  # GOV.UK's error summary moves the focus to the field itself
        await summary.locator(f"a[href='#{first_id}']").first.click()
        await expect(page.locator(f"#{first_id}")).to_be_focused()
    finally:
        await context.close()


async def test_a_team_managers_menu_fits_on_one_line(infra, web, browser, screenshots):  # noqa: F811
    """The Team Manager has the most menu items of one team (trays, authorisations, the dashboard, the audit):
    at 1280 px every item sits on the service navigation's one line."""
    context, page = await sign_in(browser, web.url, "tm")
    try:
        await page.set_viewport_size(LAPTOP)
        await page.reload()
        tops = await page.locator("#desk-menu > li").evaluate_all("items => items.map(i => i.offsetTop)")
        assert len(tops) >= 6 and len(set(tops)) == 1, tops
        assert await overflow(page) == 0
        await check_page(page, screenshots, "16-team-manager-menu")
    finally:
        await context.close()


async def test_R_P4_a_refused_nhs_number_is_said_beside_it_and_the_page_passes_axe(infra, web, events, browser,  # noqa: F811
                                                                                  screenshots):  # noqa: F811
    """The Hub's GSO (seed 000: the Hub holds the screening) changes the person's NHS number to one whose check digit
    is wrong: the error summary heads the page and links the NHS number, which says why beside it; axe passes."""
    person_id, _ = await new_case(infra, events)
    context, page = await sign_in(browser, web.url, "hub")
    try:
        await page.set_viewport_size(LAPTOP)
        await page.goto(f"/people/{person_id}/details")
        await page.get_by_label("NHS number").fill("1234567890")
        await page.get_by_role("button", name="Save person details").click()
        await expect(page.locator("#flash")).to_contain_text("That was not done")
        await expect(page.locator("#nhs_number-error")).to_contain_text("NHS number")
        await expect(page.locator(".govuk-form-group--error #nhs_number")).to_have_count(1)
        await page.locator("#flash a[href='#nhs_number']").click()
        await expect(page.locator("#nhs_number")).to_be_focused()
        assert await overflow(page) == 0
        await check_page(page, screenshots, "17-person-details-refused")
    finally:
        await context.close()


async def test_a_head_of_service_moves_between_their_teams_work_from_one_menu_item(web, browser,  # noqa: F811
                                                                                  screenshots):  # noqa: F811
    """The Head of Service works in four teams: the menu's one Team work item leads to the first, whose page lists
    each of their teams (MOJ sub navigation, the one shown marked current); the menu keeps one line."""
    context, page = await sign_in(browser, web.url, "hos")
    try:
        await page.set_viewport_size(LAPTOP)
        await page.get_by_role("link", name="Team work").click()
        teams = page.get_by_role("navigation", name="Your teams")
        await expect(teams.get_by_role("link")).to_have_count(4)
        await teams.get_by_role("link", name="Adult Carers Team").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("Team work: Adult Carers Team")
        await expect(teams.locator('[aria-current="page"]')).to_have_text("Adult Carers Team")
        await expect(page.locator("#desk-menu [aria-current=page]")).to_have_text("Team work")
        tops = await page.locator("#desk-menu > li").evaluate_all("items => items.map(i => i.offsetTop)")
        assert len(set(tops)) == 1, tops
        await check_page(page, screenshots, "18-head-of-service-team-work")
    finally:
        await context.close()


async def test_R_W4_a_refused_return_cancel_or_assign_says_what_to_do_never_field_required(
        infra, web, events, commands: Commands, browser, screenshots):  # noqa: F811 (fixtures)
    """The Senior Officer (seed 000: signs off SAP Delivery) returns it with a blank note, cancels it with a blank
    reason and assigns it to nobody: each refusal says, in the form's words and beside the input at fault, what to
    do, and pydantic's "Field required" shows nowhere."""
    person_id, sap = await wellbeing_to_sap(infra, events, commands)
    (await commands.send("step.start", GSO, key=person_id, step_id=sap)).ok()
    (await commands.send("step.send_request", GSO, key=person_id, step_id=sap, name=SO_TRANSFER)).ok()
    context, page = await sign_in(browser, web.url, "so")
    try:
        await page.goto(f"/steps/{sap}")
        await page.locator("#return-note").fill("   ")
        await page.get_by_role("button", name="Return with note").click()
        await expect(page.locator("#return-note-error")).to_contain_text("Say why you are returning this step")
        await expect(page.locator("#flash a[href='#return-note']")).to_contain_text("Say why you are returning")
        await check_page(page, screenshots, "19-return-refused-in-words")

        await page.get_by_text("Cancel this step").click()
        await page.locator("#cancel-reason").fill(" ")
        await page.get_by_role("button", name="Cancel step").click()
        await expect(page.locator("#cancel-reason-error")).to_contain_text("Say why this step is cancelled")

        await page.locator("#assign summary").click()
        await page.locator("#assign").get_by_role("button", name="Assign").click()
        await expect(page.locator("#flash")).to_contain_text("Choose the worker or team to assign this step to")
        shown = await page.locator("body").inner_text()
        assert [w for w in PYDANTIC_WORDS if w in shown] == []
    finally:
        await context.close()


async def table_overflow(page) -> int:
    """How many pixels the tray's table is wider than its area (it scrolls sideways when above 0)."""
    return await page.locator("#tray-table").evaluate(
        "t => Math.max(t.scrollWidth - t.parentElement.clientWidth,"
        " t.parentElement.scrollWidth - t.parentElement.clientWidth)")


@pytest.mark.parametrize("width", [1280, 1366])
async def test_the_planned_work_tray_fits_a_laptops_screen_without_sideways_scrolling(
        infra, web, events, db, browser, screenshots, width):  # noqa: F811 (fixtures)
    """Issue #19 §4 (R-T3): the Team Manager (seed 004: places and reviews) reads the tray of a case with a RAG by
    professional judgement and a long rationale at 1280 and 1366 px: the table fits its area, its review and
    allocate forms opened too; the page passes axe."""
    person_id, _ = await new_case(infra, events, category="assessment")
    await referral_seen(db, person_id)
    desk = Desk(web.url)
    try:
        await desk.sign_in("tm")
        await desk.get(f"/people/{person_id}")
        placed = await desk.post(f"/people/{person_id}/tray", **{
            **tray_args(TRAY_TEAM, urgent="false"), "rationale": "No worker with capacity this week; " * 6,
            "rag_override": "red", "rag_override_reason": "Lives alone; two falls this month; carer in hospital"})
        assert "RAG RED" in placed.text, placed.text[:300]
    finally:
        await desk.close()
    context, page = await sign_in(browser, web.url, "tm")
    try:
        await page.set_viewport_size({"width": width, "height": 900})
        await page.goto(f"/tray?team={TRAY_TEAM}")
        row = page.locator(f'tr:has(a[href="/people/{person_id}"])')
        await expect(row).to_have_count(1)
        assert (await table_overflow(page), await overflow(page)) == (0, 0)
        for action in ("Review", "Allocate"):
            await row.locator("summary", has_text=action).click()
            assert (await table_overflow(page), await overflow(page)) == (0, 0), action
        await check_page(page, screenshots, f"22-tray-at-{width}")
    finally:
        await context.close()


async def test_the_step_pages_blocks_are_gov_uk_summary_cards_with_no_card_look_of_the_desks_own(
        infra, web, events, browser, screenshots):  # noqa: F811 (fixtures)
    """Issue #19 §4: the Hub's GSO (seed 000: the Hub screens) opens the screening: its Next actions, Requests and
    Finish are GOV.UK summary cards titled by their heading, its form sections GOV.UK fieldsets; no block keeps the
    desk's own card look (no `.card` rule is left in its style sheets); axe passes."""
    _, screening = await new_case(infra, events)
    context, page = await sign_in(browser, web.url, "hub")
    try:
        await page.goto(f"/steps/{screening}")
        for block, title in (("next-actions", "Next actions"), ("requests", "Requests and notifications"),
                             ("finish", "Finish")):
            card = page.locator(f"section#{block}.govuk-summary-card")
            await expect(card.locator(".govuk-summary-card__title-wrapper h2.govuk-summary-card__title")).to_have_text(
                title)
            await expect(card.locator(":scope > .govuk-summary-card__content")).to_have_count(1)
        await expect(page.locator("#s-1.govuk-fieldset > legend.govuk-fieldset__legend")).to_contain_text("1.")
        assert await page.locator(".card").count() == 0
        desk_cards = await page.evaluate("""() => [...document.styleSheets].flatMap(sheet => [...sheet.cssRules])
            .map(rule => rule.selectorText || '')
            .filter(selector => /(^|[\\s,])\\.(card|section)\\b/.test(selector))""")
        assert desk_cards == []
        await check_page(page, screenshots, "23-step-summary-cards")
    finally:
        await context.close()
