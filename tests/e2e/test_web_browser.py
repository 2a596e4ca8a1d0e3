"""Tessera desk in headless Chromium (Debian's, driven by Playwright), every service a process.

The Wellbeing journey's Support Action Plan Delivery (a GSO records, is refused Finish with every
blocker listed, sends the REQUIRED request; the Senior Officer finishes), the Planned Work Tray (a TM
places, reviews and allocates a case), and break-glass access. Each main page gets an axe check and a
screenshot (a temporary folder, or bench/results/screenshots with SCREENSHOTS=1).
"""

import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from services.web.chronology import LONDON
from shared import topics
from shared.testing import EventLog, service_auth
from tests.allocation_harness import referral_seen
from tests.factories import unique_referral
from tests.workflow_harness import (
    MONITORING,
    SAP,
    SCREENING,
    SCREENING_VALUES,
    SO_TRANSFER,
    TA,
    TA_VALUES,
    TRIAGE,
    TRIAGE_VALUES,
    Commands,
    actor,
    new_case,
)

pytestmark = pytest.mark.e2e
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
ROOT = Path(__file__).resolve().parents[2]
HUB = actor("hub", "gso", teams=("wellbeing-service-hub",))
GSO = actor("gso", "gso", teams=("wellbeing-service-north",))
SO = actor("so", "senior_officer", teams=("wellbeing-service-management",))

try:
    from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
except ImportError:  # pragma: no cover - `make test` installs it
    async_playwright = None  # type: ignore[assignment]


@pytest.fixture(scope="module")
def screenshots() -> Path:
    if os.environ.get("SCREENSHOTS") == "1":
        folder = ROOT / "bench" / "results" / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return Path(tempfile.mkdtemp(prefix="tessera-screenshots-"))


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator["Browser"]:
    if async_playwright is None or not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        pytest.fail(f"needs the playwright package and Chromium at {CHROMIUM}: make test installs both (as root)")
    async with async_playwright() as p:
        launched = await p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"])
        yield launched
        await launched.close()


async def sign_in(browser: "Browser", base: str, user: str) -> tuple["BrowserContext", "Page"]:
    context = await browser.new_context(base_url=base, viewport={"width": 1366, "height": 900}, locale="en-GB")
    context.set_default_timeout(30_000)
    page = await context.new_page()
    await page.goto("/login")
    await page.get_by_label("User name").fill(user)
    await page.get_by_label("Password").fill("tessera-demo")
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/work")
    return context, page


async def axe_violations(page: "Page") -> list[str]:
    """WCAG 2 A/AA problems axe-core finds on the page (injected from the vendored file)."""
    await page.add_script_tag(url="/static/vendor/axe.min.js")  # same origin: the CSP allows it
    result = await page.evaluate(
        "async () => (await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}}))"
        ".violations.map(v => v.id + ': ' + v.nodes.length + ' x ' + v.nodes[0].target.join(' '))")
    return result


async def check_page(page: "Page", screenshots: Path, name: str) -> None:
    await page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
    assert await axe_violations(page) == [], name


async def overflow(page: "Page") -> int:
    """How many pixels the page is wider than the window (a horizontal scroll bar when above 0)."""
    return await page.evaluate("document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth")


async def flash(page: "Page", text: str) -> None:
    await expect(page.locator("#flash")).to_contain_text(text)


async def wellbeing_to_sap(infra, events, commands: Commands) -> tuple[str, str]:
    """Referral → screening → triage → trusted assessment, driven as commands; SAP Delivery to the GSO."""
    person_id, screening = await new_case(infra, events)

    async def ok(type_: str, who: dict, **data):
        return (await commands.send(type_, who, key=person_id, **data)).ok()

    await ok("step.start", HUB, step_id=screening)
    await ok("step.save", HUB, step_id=screening, values=SCREENING_VALUES)
    await ok("step.add_next_action", HUB, step_id=screening, action=TRIAGE)
    triage = (await ok("step.finish", HUB, step_id=screening)).of("step.created")["step_id"]
    await ok("step.start", HUB, step_id=triage)
    await ok("step.save", HUB, step_id=triage, values=TRIAGE_VALUES)
    await ok("step.add_next_action", HUB, step_id=triage, action=MONITORING, send_immediately=True)
    await ok("step.add_next_action", HUB, step_id=triage, action=TA,
             assignee={"kind": "team", "id": "wellbeing-service-north"})
    ta = (await ok("step.finish", HUB, step_id=triage)).of("step.created")["step_id"]
    await ok("step.start", GSO, step_id=ta)
    await ok("step.save", GSO, step_id=ta, values=TA_VALUES)
    await ok("step.add_next_action", GSO, step_id=ta, action=SAP)
    sap = (await ok("step.finish", GSO, step_id=ta)).of("step.created")["step_id"]
    await ok("step.assign", SO, step_id=sap, to={"kind": "worker", "id": "gso"})
    return person_id, sap


async def test_gso_is_shown_every_blocker_then_the_senior_officer_finishes_sap_delivery(
        infra, web, events, commands: Commands, browser, screenshots):
    person_id, sap = await wellbeing_to_sap(infra, events, commands)
    gso_context, page = await sign_in(browser, web.url, "gso")
    try:
        await check_page(page, screenshots, "01-my-work-gso")
        await page.locator(f'a[href="/steps/{sap}"]').first.click()
        await page.locator("#start-step").click()
        await flash(page, "Started")

        # the form comes from GET /steps/{id}: numbered sections, blue cogs, carried sections read-only
        await expect(page.locator("#s-1 legend")).to_contain_text("1. Personal Details")
        await expect(page.locator("#s-1 .cog-blue").first).to_be_visible()
        # R-W7: a carried section names the step it came from and when that finished
        await expect(page.locator("#s-3 .carried-from")).to_have_text(re.compile(
            r"Carried from WB Trusted Assessment and Support Planning, finished \d{2} \w{3} \d{4}: read-only"))
        await expect(page.locator("#s-3")).to_contain_text(TA_VALUES["what_matters_to_me"])
        assert await page.locator("#f-support_start_date").count() == 1

        # record the first domain and save
        await page.locator("#f-support_start_date").fill("2024-06-03")
        await page.locator("#f-support_delivery-0-support_provided").fill("Grab rails fitted")
        await page.locator("#f-support_delivery-0-support_date").fill("2024-06-10")
        await page.locator("#f-support_delivery-0-exit_score").fill("4")
        await page.locator("#done-12").check()
        await page.locator("#save-step").click()
        await flash(page, "Saved.")
        await expect(page.locator("#s-12 legend")).to_contain_text("Section completed")
        await check_page(page, screenshots, "02-step-form")
        # issue #19 §4: its repeating rows scroll inside their own box; the page fits a laptop's screen
        await page.set_viewport_size({"width": 1280, "height": 800})
        assert await overflow(page) == 0
        await page.set_viewport_size({"width": 1366, "height": 900})
        await page.locator("#s-12").screenshot(path=str(screenshots / "02b-section-12-rows.png"))

        # a draft survives a reload (as it would a time-out) and comes back on request
        await page.locator("#f-support_delivery-1-support_provided").fill("Weekly lunch club")
        await expect(page.locator("#draft-status")).to_contain_text("Draft kept")
        await page.reload()
        await expect(page.locator("#draft-banner")).to_be_visible()
        await page.get_by_role("button", name="Restore my unsaved changes").click()
        await expect(page.locator("#f-support_delivery-1-support_provided")).to_have_value("Weekly lunch club")

        # §9: a Senior Officer finishes it, so the GSO is offered no Finish: what still needs doing is listed,
        # each item linking to what fixes it
        assert await page.locator("#finish-step").count() == 0
        await expect(page.locator("#sign-off-needed")).to_contain_text("A Senior Officer finishes a")
        await page.locator("#check-blockers summary").click()
        blockers = page.locator("#check-blockers")
        await expect(blockers).to_contain_text("REQUIRED request")
        await expect(blockers).to_contain_text("row 2")
        await expect(blockers).to_contain_text("next action")
        await check_page(page, screenshots, "03-finish-refused-blockers")
        await blockers.locator('a[href="#f-support_delivery-1-support_date"]').click()
        assert page.url.endswith("#f-support_delivery-1-support_date")

        # nothing typed was lost: complete the second domain, save
        await page.locator("#f-support_delivery-1-support_date").fill("2024-06-12")
        await page.locator("#f-support_delivery-1-exit_score").fill("3")
        await page.locator("#f-support_end_date").fill("2024-06-28")
        await page.locator("#save-step").click()
        await flash(page, "Saved.")
        await expect(page.locator("#f-support_delivery-1-support_provided")).to_have_value("Weekly lunch club")

        # send the REQUIRED transfer to the Senior Officer
        await page.locator("form.request-form", has_text=SO_TRANSFER).get_by_role(
            "button", name="Send request").click()
        await flash(page, "Sent")
        await expect(page.locator("#step-state")).to_have_text("Awaiting authorisation")
        # §9: sent for sign-off, the GSO has nothing left to press
        await expect(page.locator("#sent-for-sign-off")).to_contain_text("a Senior Officer authorises and finishes it")
        assert await page.locator("#finish-step, #check-blockers").count() == 0
    finally:
        await gso_context.close()

    so_context, page = await sign_in(browser, web.url, "so")
    try:
        await page.get_by_role("link", name="Authorisations").click()
        row = page.locator("#queue tr", has_text=SO_TRANSFER).filter(has=page.locator(f'a[href="/steps/{sap}"]'))
        await expect(row).to_have_count(1)
        await check_page(page, screenshots, "04-authorisation-queue")
        await row.get_by_role("link", name="Open to authorise").click()
        # §9: the signer is offered Authorise and finish, and Return, not a Finish that would be refused
        await expect(page.locator("#authorise-step")).to_be_visible()
        assert await page.locator("#finish-step").count() == 0
        await page.get_by_role("button", name="Complete request").click()
        await flash(page, "Request completed")
        await page.locator("#add-next-action").click()
        dialog = page.locator("#next-action-dialog")
        await expect(dialog).to_be_visible()
        await dialog.get_by_label("Action").select_option("Adult Proposed Case Closure")
        await expect(dialog.locator("#na-about")).to_contain_text("Assigned to you")
        await check_page(page, screenshots, "05-next-action-dialog")
        await dialog.get_by_role("button", name="Add next action").click()
        await flash(page, "Next action Adult Proposed Case Closure added")
        await page.locator("#finish-step").click()
        await flash(page, "Finished. Created: Adult Proposed Case Closure")
        await expect(page.locator("#step-state")).to_have_text("Finished")
    finally:
        await so_context.close()


async def test_team_manager_places_reviews_and_allocates_a_case_from_the_tray(
        infra, db, web, events, browser, screenshots):
    person_id, contact = await new_case(infra, events, category="assessment")
    await referral_seen(db, person_id)
    context, page = await sign_in(browser, web.url, "tm")
    try:
        await page.get_by_role("link", name="Team work").click()
        await page.locator(f'a[href="/people/{person_id}"]').first.click()
        await check_page(page, screenshots, "06-person-summary")
        await page.get_by_label("Rationale").fill("No worker with capacity this week")
        await page.get_by_role("button", name="Place on tray").click()
        await flash(page, "RAG AMBER")
        row = page.locator(f'tr:has(a[href="/people/{person_id}"])')
        await expect(row.locator(".rag")).to_have_text("AMBER")

        await row.locator("summary", has_text="Review").click()
        await row.get_by_label("No, could not be reached").check()
        await row.get_by_label("Review note").fill("No answer; neighbour reports a fall")
        await row.get_by_label("Support in place").select_option("none")
        await row.get_by_label("Risk of harm").select_option("high")
        await row.get_by_label("Increased risk: escalate").check()
        await row.get_by_role("button", name="Record review").click()
        await flash(page, "RAG RED")
        await expect(row.locator(".rag")).to_have_text("RED")
        # the manager's lists: escalated cases, and reviews due
        await expect(page.locator("#escalations")).to_contain_text("Testperson")
        await expect(page.locator("#escalations .rag")).to_contain_text(["RED"])
        await expect(page.locator("#reviews-due h2")).to_contain_text("Reviews due")

        await page.get_by_role("link", name="Days waiting").click()
        assert "sort=days_waiting" in page.url
        # issue #19 §4: the header says how the tray is sorted (MOJ's sortable table), the filter panel (MOJ's
        # filter layout) shows each filter chosen as a tag that takes it off
        await expect(page.locator('#tray-table th[aria-sort="ascending"]')).to_have_text("Days waiting")
        await page.get_by_label("RAG", exact=True).select_option("red")
        await page.get_by_role("button", name="Apply filters").click()
        await expect(row).to_have_count(1)
        await expect(page.locator("#tray-filter .moj-filter__tag")).to_have_text(["Remove this filter: RAG: Red"])
        await expect(page.locator('#tray-table th[aria-sort="ascending"]')).to_have_text("Days waiting")
        await check_page(page, screenshots, "07-planned-work-tray")

        await row.locator("summary", has_text="Allocate").click()
        await row.get_by_label("Worker").select_option("sw")
        await row.get_by_role("button", name="Allocate").click()
        await flash(page, "Allocated to Sally Walker")
        await expect(page.locator(f'tr:has(a[href="/people/{person_id}"])')).to_have_count(0)
    finally:
        await context.close()

    context, page = await sign_in(browser, web.url, "sw")
    try:
        for _ in range(30):  # allocation assigns the team's step to the worker through workflow.commands
            if await page.locator(f'a[href="/steps/{contact}"]').count():
                break
            await page.wait_for_timeout(500)
            await page.reload()
        await expect(page.locator(f'a[href="/steps/{contact}"]')).to_have_count(1)
        await expect(page.locator("table", has_text="My allocations")).to_contain_text(re.compile("Testperson"))
    finally:
        await context.close()


async def test_a_worker_without_a_relationship_must_give_a_reason_which_managers_see(
        infra, web, events, browser, screenshots):
    person_id, _ = await new_case(infra, events)
    context, page = await sign_in(browser, web.url, "sw2")
    try:
        await page.goto(f"/people/{person_id}")
        await expect(page.get_by_role("heading", level=1)).to_have_text("You have no relationship with this person")
        assert page.url.endswith(f"/people/{person_id}/access")
        assert "Testperson" not in await page.content()
        await check_page(page, screenshots, "08-break-glass")
        await page.get_by_role("button", name="Record my reason and open the record").click()
        assert page.url.endswith("/access")  # an empty reason is not accepted
        await page.get_by_label("Why do you need this record?").fill("Duty call from the daughter at 14:10")
        await page.get_by_role("button", name="Record my reason and open the record").click()
        await flash(page, "Your reason was recorded")
        await expect(page.locator("main")).to_contain_text("you recorded a reason: Duty call from the daughter")
    finally:
        await context.close()

    context, page = await sign_in(browser, web.url, "tm")
    try:
        await page.get_by_role("link", name="Access audit").click()
        row = page.locator("tr", has_text="Duty call from the daughter at 14:10")
        await expect(row.first).to_contain_text("Chris Carer (Social Worker, Carers)")
        await check_page(page, screenshots, "09-access-audit")
    finally:
        await context.close()


@pytest.fixture
async def doc_events(infra) -> AsyncIterator[EventLog]:
    async with EventLog(infra.bootstrap, [topics.DOCUMENTS_EVENTS]) as log:
        yield log


async def test_person_summary_shows_documents_chronology_and_the_work_as_at_an_earlier_moment(
        infra, web, workflow, events, commands: Commands, doc_events, browser, screenshots):
    person_id, screening = await new_case(infra, events)
    (await commands.send("step.start", HUB, key=person_id, step_id=screening)).ok()
    (await commands.send("step.save", HUB, key=person_id, step_id=screening, values=SCREENING_VALUES)).ok()
    (await commands.send("step.add_next_action", HUB, key=person_id, step_id=screening, action=TRIAGE)).ok()
    triage = (await commands.send("step.finish", HUB, key=person_id, step_id=screening)).ok().of(
        "step.created")["step_id"]
    [rendered] = await doc_events.wait_for(lambda s: s.type == "document.rendered"
                                           and s.data.get("step_id") == screening)
    document_id = rendered.data["document_id"]
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        history = (await http.get(f"/steps/{screening}")).json()["history"]
    saved_at = next(h["time"] for h in history if h["what"] == "step.saved")

    context, page = await sign_in(browser, web.url, "hub")
    try:
        await page.goto(f"/people/{person_id}")
        # a case note from the page joins the chronology
        await page.locator("#notes summary").click()
        await page.locator("#note-title").fill("Phone call with daughter")
        await page.locator("#note-text").fill("Daughter confirms the fall last week.")
        await page.get_by_role("button", name="Add note").click()
        await flash(page, "Case note added")

        # documents: the finished screening's form, shareable, its PDF through the web service
        docs = page.locator("#documents-table")
        link = docs.locator(f'a[href="/people/{person_id}/documents/{document_id}.pdf"]')
        await expect(link).to_contain_text(SCREENING)
        await expect(docs.locator(f'tr[data-document-id="{document_id}"]')).to_contain_text("Shareable")
        pdf = await page.request.get(await link.get_attribute("href") or "")
        assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
        assert (await pdf.body()).startswith(b"%PDF")

        # chronology: every step event, the note, the record's creation, oldest first, with who and when
        chron = page.locator("#chronology-timeline .moj-timeline__item")
        times = [datetime.fromisoformat(t) for t in await chron.evaluate_all(
            "items => items.map(i => i.dataset.at)")]
        assert times == sorted(times) and len(times) >= 6
        texts = [t.strip() for t in await chron.all_inner_texts()]
        order = [f"{SCREENING} created", f"{SCREENING} started", f"{SCREENING} saved",
                 f"{SCREENING}: next action {TRIAGE} added", f"{SCREENING} finished", f"{TRIAGE} created",
                 "Case note: Phone call with daughter"]
        at = [next(i for i, t in enumerate(texts) if what in t) for what in order]
        assert at == sorted(at), texts
        # §9: people by name and fields by the form's labels, never ids or field keys
        assert any("Hana Hub" in t and f"{SCREENING} started" in t for t in texts), texts
        assert any("Is the person eligible for the Wellbeing Service?" in t for t in texts), texts
        assert not any("eligible_for_wellbeing_service" in t for t in texts), texts
        await expect(page.locator("#chronology-timeline")).to_contain_text("Case note: Phone call with daughter")
        await check_page(page, screenshots, "10-person-documents-chronology")

        # as at today: the screening finished (its kept form) and the triage incoming
        await page.locator("#as-at").fill(date.today().isoformat())
        await page.get_by_role("button", name="Show").click()
        view = page.locator("#as-at-steps")
        await expect(view.locator(f'tr[data-step-id="{screening}"]')).to_contain_text("Finished")
        await expect(view.locator(f'tr[data-step-id="{screening}"] a', has_text="Form as finished")).to_have_count(1)
        await expect(view.locator(f'tr[data-step-id="{triage}"]')).to_contain_text("Incoming")
        await expect(page.locator("#as-at-view")).to_contain_text("cannot show")

        # as at the moment of the save: the screening was incomplete, the triage did not exist yet
        await page.goto(f"/people/{person_id}?{urlencode({'as_at': saved_at})}")
        row = view.locator(f'tr[data-step-id="{screening}"]')
        await expect(row).to_contain_text("Incomplete")
        await expect(row).to_contain_text("Values not kept for unfinished work")
        await expect(row).to_contain_text("hub")
        await expect(view.locator(f'tr[data-step-id="{triage}"]')).to_have_count(0)
        await expect(page.locator("#chronology-timeline")).not_to_contain_text(f"{SCREENING} finished")
        await expect(page.locator("#chronology-timeline")).not_to_contain_text("Case note")
        # every section says what moment it shows; what cannot be shown is said
        await expect(page.get_by_role("heading", level=1)).to_contain_text("as at ")
        await expect(page.locator("#as-at-banner")).to_contain_text("You are looking at this record as at")
        headings = await page.locator("main h2").all_inner_texts()
        assert len(headings) >= 6 and all(" as at " in h for h in headings), headings
        await expect(page.locator("#as-at-limits")).to_contain_text("Cannot be shown")
        await expect(page.locator("#cw-h")).to_have_count(0)  # no "current work" in a view of the past
        await check_page(page, screenshots, "11-person-as-at")

        # as at yesterday: no work at all
        yesterday = (date.today() - timedelta(days=1)).isoformat()
        await page.goto(f"/people/{person_id}?as_at={yesterday}")
        await expect(view).to_contain_text("No work for this person at that moment")
    finally:
        await context.close()


async def test_issue_22_s9_a_front_door_worker_finds_a_person_by_name_birth_date_and_postcode_in_the_browser(
        infra, web, events, browser, screenshots):
    """§9, R-P1: Find a person without an NHS number — part of the name, the date of birth and the postcode (as
    typed, spaces and case aside) — lists the person with what tells them apart, and opens their page."""
    referral = unique_referral()
    person = referral["person"]
    person_id, _ = await new_case(infra, events, **referral)
    context, page = await sign_in(browser, web.url, "hub")
    try:
        await page.get_by_role("link", name="Find a person").click()
        await page.get_by_label("Name").fill(person["first_name"][:4].lower())
        await page.get_by_label("Date of birth").fill(person["date_of_birth"])
        await page.get_by_label("Postcode").fill(person["address"]["postcode"].replace(" ", "").lower())
        await page.get_by_role("button", name="Find").click()
        found = page.locator("#found-people tbody tr")
        await expect(found).to_have_count(1)
        await expect(found).to_contain_text(person["last_name"])
        await expect(found).to_contain_text(person["address"]["postcode"])
        await check_page(page, screenshots, "11-find-a-person")
        await found.get_by_role("link").first.click()
        await page.wait_for_url(f"**/people/{person_id}")
        await expect(page.locator("#person-id")).to_have_text(person_id)
    finally:
        await context.close()


async def _visible_options(page: "Page", select: str) -> list[str]:
    return await page.locator(f"{select} option:not([hidden])").evaluate_all("os => os.map(o => o.value)")


async def test_issue_22_s9_the_triage_team_carries_into_the_next_action_and_a_refused_one_keeps_its_dialog(
        infra, web, events, commands, browser, screenshots):
    """§9: the Involved Team chosen in triage is the team the next action proposes; the pickers list only the
    workers and teams who can do the step the action creates; a refused next action opens its dialog again with
    what was chosen and every reason (R-NA6), nothing lost. As the Hub's GSO (seed 000: the Hub triages)."""
    person_id, screening = await new_case(infra, events)

    async def ok(type_: str, **data):
        return (await commands.send(type_, HUB, key=person_id, **data)).ok()

    await ok("step.start", step_id=screening)
    await ok("step.save", step_id=screening, values=SCREENING_VALUES)
    await ok("step.add_next_action", step_id=screening, action=TRIAGE)
    triage = (await ok("step.finish", step_id=screening)).of("step.created")["step_id"]
    await ok("step.start", step_id=triage)
    await ok("step.save", step_id=triage, values={**TRIAGE_VALUES, "involved_team": "Wellbeing Service South"})
    context, page = await sign_in(browser, web.url, "hub")
    try:
        await page.goto(f"/steps/{triage}")
        await page.locator("#add-next-action").click()
        dialog = page.locator("#next-action-dialog")
        await dialog.get_by_label("Action").select_option(TA)
        await expect(dialog.locator("#na-team")).to_have_value("wellbeing-service-south")
        await expect(dialog.locator("#na-about")).to_contain_text("proposed: Wellbeing Service South")
        teams = await _visible_options(page, "#na-team")
        assert "wellbeing-service-north" in teams and "adult-front-door" not in teams, teams
        workers = await _visible_options(page, "#na-worker")
        assert "gso" in workers and "sw" not in workers and "administrator" not in workers, workers

        closure_started = "Adult Case Closure Already Started (NFA)"
        await dialog.get_by_label("Action").select_option(closure_started)
        await dialog.locator("#na-priority").select_option("high")
        await dialog.locator("#na-note").fill("Daughter says a closure was started last week")
        await dialog.get_by_role("button", name="Add next action").click()
        await expect(dialog).to_be_visible()
        await expect(dialog.locator("#na-problems")).to_contain_text("(R-NA6)")
        await expect(dialog.locator("#na-action")).to_have_value(closure_started)
        await expect(dialog.locator("#na-priority")).to_have_value("high")
        await expect(dialog.locator("#na-note")).to_have_value("Daughter says a closure was started last week")
        await check_page(page, screenshots, "09-next-action-refused")
    finally:
        await context.close()


async def test_start_new_from_the_person_page_opens_the_new_step(infra, web, events, browser, screenshots):
    person_id, _ = await new_case(infra, events)
    context, page = await sign_in(browser, web.url, "hub")
    try:
        await page.goto(f"/people/{person_id}")
        await page.locator("#start-new summary").click()
        await page.get_by_label("Step type").select_option("WB Covid 19 Response")
        await page.get_by_role("button", name="Start", exact=True).click()
        await flash(page, "Started WB Covid 19 Response")
        await page.wait_for_url(re.compile(r"/steps/[0-9a-f-]{36}$"))
        await expect(page.locator("#step-state")).to_have_text("Incomplete")
    finally:
        await context.close()


async def test_r_t8_team_manager_puts_a_case_in_the_review_tray_sees_it_fall_due_and_takes_it_out(
        infra, db, web, events, scheduler_clock, browser, screenshots):
    person_id, _ = await new_case(infra, events, category="assessment")
    await referral_seen(db, person_id)
    review_day = date.today() + timedelta(days=1)
    context, page = await sign_in(browser, web.url, "tm")
    try:
        await page.goto(f"/people/{person_id}")
        await page.get_by_label("Review date").fill(review_day.isoformat())
        await page.locator("#rt-reason").fill("Annual review agreed for next year; stable at home")
        await page.get_by_role("button", name="Put in Review tray").click()
        await flash(page, "Put in the Review tray of Adult Social Care Front Door")
        row = page.locator(f'#review-tray-table tr:has(a[href="/people/{person_id}"])')
        await expect(row).to_contain_text("Due in 1 day")
        await expect(row).to_contain_text("Annual review agreed")
        entry_id = await row.get_attribute("data-entry-id")

        # reached from the Planned Work Tray and the navigation
        await page.get_by_role("link", name="Planned Work Tray", exact=True).click()
        await page.get_by_role("link", name="Review tray of Adult Social Care Front Door").click()
        await expect(row).to_have_count(1)
        await check_page(page, screenshots, "12-review-tray")

        # the review date comes: the scheduler fires the timer, allocation marks the entry due
        await scheduler_clock.move_to(datetime.combine(review_day, datetime.min.time(), LONDON)
                                      + timedelta(minutes=1))
        await events.wait_for(lambda s: s.type == "review_tray.entry_due" and s.data["entry_id"] == entry_id)
        await page.reload()
        await expect(row.locator(".badge")).to_have_text("Due today")
        await expect(row).to_have_class(re.compile("review-due"))
        await expect(page.locator("#due-count")).not_to_have_text("0")

        await row.locator("summary", has_text="Remove").click()
        await row.get_by_label("Reason for taking it out").fill("Review booked with the worker")
        await row.get_by_role("button", name="Remove from Review tray").click()
        await flash(page, "Taken out of the Review tray")
        await expect(page.locator(f'#review-tray-table tr:has(a[href="/people/{person_id}"])')).to_have_count(0)
    finally:
        await context.close()


async def test_an_administrator_manages_accounts_on_an_accessible_page(web, browser, screenshots):
    new_user = f"bw{datetime.now().strftime('%H%M%S%f')}"
    context, page = await sign_in(browser, web.url, "administrator")
    try:
        await page.get_by_role("link", name="Accounts").click()
        await page.locator("#create-account summary").click()
        await page.get_by_label("User name").fill(new_user)
        await page.get_by_label("Full name and job title").fill("Bea Wood (Team Leader)")
        await page.get_by_label("Team Leader").check()
        await page.get_by_label("Adult Social Care Front Door", exact=True).check()
        await page.get_by_label("First password").fill("a-first-password")
        await page.get_by_role("button", name="Create account").click()
        await flash(page, f"Account {new_user} created.")
        await page.get_by_role("button", name=f"Disable {new_user}").click()
        await flash(page, f"{new_user} disabled")
        await expect(page.locator(f'#accounts-table tr[data-user-id="{new_user}"] .account-status')).to_have_text(
            "Disabled")
        await expect(page.locator("#account-audit tbody tr").first.locator("td")).to_have_text(
            [re.compile(r"\d{2} \w{3} \d{4} \d{2}:\d{2}"), "administrator", new_user, "disabled"])
        await check_page(page, screenshots, "13-accounts")
    finally:
        await context.close()


async def test_issue_20_a_save_from_an_older_tab_never_blanks_what_the_newer_tab_saved(
        infra, web, workflow, events, commands: Commands, browser, screenshots):
    """#20 part 5: the same worker, two tabs on one step. Tab A saves the referral date, source and reason;
    tab B, still at the older version, changes the rationale and the reason and is refused. Restoring its
    changes brings back only what B changed, shows the reason (changed in both) as theirs vs yours, and the
    save keeps everything A saved; the history says which fields changed, from what to what."""
    person_id, step_id = await new_case(infra, events)
    (await commands.send("step.start", HUB, key=person_id, step_id=step_id)).ok()
    context, tab_a = await sign_in(browser, web.url, "hub")
    try:
        tab_b = await context.new_page()
        await tab_a.goto(f"/steps/{step_id}")
        await tab_b.goto(f"/steps/{step_id}")

        await tab_a.locator("#f-referral_date").fill("2024-05-02")  # prefilled 2024-05-01 from the referral (R-W5)
        await tab_a.locator("#f-referral_source").select_option("GP or health professional")
        await tab_a.locator("#f-reason_for_referral").fill("Struggling at home after a fall")
        await tab_a.locator("#save-step").click()
        await flash(tab_a, "Saved.")

        await tab_b.locator("#f-screening_rationale").fill("Lives alone, recent fall")
        await tab_b.locator("#f-reason_for_referral").fill("Fell on the stairs")
        await tab_b.locator("#save-step").click()
        await flash(tab_b, "the step is at version 3, not 2")
        banner = tab_b.locator("#draft-banner")
        await expect(banner).to_be_visible()
        conflict = banner.locator("fieldset.conflict")
        await expect(conflict).to_have_count(1)  # only the reason was changed in both tabs
        await expect(conflict.locator("legend")).to_contain_text("Reason for referral")
        await expect(conflict.get_by_label("Keep theirs (saved): Struggling at home after a fall")).to_be_checked()
        await expect(conflict.get_by_label("Take yours: Fell on the stairs")).not_to_be_checked()
        await check_page(tab_b, screenshots, "14-two-tabs-conflict")
        await tab_b.get_by_role("button", name="Restore my unsaved changes").click()
        await expect(tab_b.locator("#f-screening_rationale")).to_have_value("Lives alone, recent fall")
        await expect(tab_b.locator("#f-referral_date")).to_have_value("2024-05-02")
        await expect(tab_b.locator("#f-reason_for_referral")).to_have_value("Struggling at home after a fall")
        await tab_b.locator("#save-step").click()
        await flash(tab_b, "Saved.")

        async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
            step = (await http.get(f"/steps/{step_id}")).json()
        assert {k: step["values"].get(k) for k in ("referral_date", "referral_source", "reason_for_referral",
                                                  "screening_rationale")} == {
            "referral_date": "2024-05-02", "referral_source": "GP or health professional",
            "reason_for_referral": "Struggling at home after a fall", "screening_rationale": "Lives alone, recent fall"}
        saves = [h["details"] for h in step["history"] if h["what"] == "step.saved"]
        assert [[c["field"] for c in s["changes"]] for s in saves] == [
            ["reason_for_referral", "referral_date", "referral_source"], ["screening_rationale"]]
        assert saves[1]["fields"] == ["screening_rationale"]  # nothing untouched was sent
        history = tab_b.locator("#history")
        await expect(history).to_contain_text("Date referral received: 2024-05-01 → 2024-05-02")
        await expect(history).to_contain_text("Rationale for screening decision: — → Lives alone, recent fall")

        # the other way round: the older tab chooses its own value for a field changed in both
        await tab_a.reload()
        await tab_a.locator("#f-reason_for_referral").fill("Fall at home; daughter worried")
        await tab_a.locator("#save-step").click()
        await flash(tab_a, "Saved.")
        await tab_b.locator("#f-reason_for_referral").fill("Fell on the stairs")
        await tab_b.locator("#save-step").click()
        await flash(tab_b, "the step is at version 5, not 4")
        await tab_b.locator("#draft-banner").get_by_label("Take yours: Fell on the stairs").check()
        await tab_b.get_by_role("button", name="Restore my unsaved changes").click()
        await tab_b.locator("#save-step").click()
        await flash(tab_b, "Saved.")
        await expect(history).to_contain_text(
            "Reason for referral: Fall at home; daughter worried → Fell on the stairs")
        async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
            values = (await http.get(f"/steps/{step_id}")).json()["values"]
        assert (values["reason_for_referral"], values["referral_date"], values["screening_rationale"]) == (
            "Fell on the stairs", "2024-05-02", "Lives alone, recent fall")
    finally:
        await context.close()


DRAFT_KEYS = "() => Object.keys(localStorage).filter(k => k.startsWith('tessera-draft:'))"


async def test_unsaved_drafts_leave_the_browser_at_sign_out_and_when_the_session_expires(
        infra, web, events, commands: Commands, browser):
    """Issue #21 §5: a shared computer keeps no unsaved record after its user signs out or times out."""
    person_id, screening = await new_case(infra, events)
    (await commands.send("step.start", HUB, key=person_id, step_id=screening)).ok()
    context, page = await sign_in(browser, web.url, "hub")
    try:
        await page.goto(f"/steps/{screening}")
        await page.locator("#step-form textarea, #step-form input[type=text]").first.fill("Said on the phone: …")
        await expect(page.locator("#draft-status")).to_contain_text("Draft kept")
        assert await page.evaluate(DRAFT_KEYS) == [f"tessera-draft:hub:{screening}"]
        await page.get_by_role("button", name="Sign out").click()
        await page.wait_for_url("**/login")
        assert await page.evaluate(DRAFT_KEYS) == []

        await page.get_by_label("User name").fill("hub")
        await page.get_by_label("Password").fill("tessera-demo")
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url("**/work")
        await page.goto(f"/steps/{screening}")
        await page.locator("#step-form textarea, #step-form input[type=text]").first.fill("Typed, then left")
        await expect(page.locator("#draft-status")).to_contain_text("Draft kept")
        await context.clear_cookies()  # the session has expired
        await page.goto(f"/steps/{screening}")
        await page.wait_for_url("**/login?**")
        assert await page.evaluate(DRAFT_KEYS) == []
    finally:
        await context.close()
