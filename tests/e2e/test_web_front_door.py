"""A front-door worker's day in the desk (issue #22 §9): find a person without an NHS number, by name, date of
birth and postcode; the person page shows the referral itself (its source and referrer, reason, urgency and when
it was received) and the person id, discreetly, for the worker to quote. Through the desk, referrals and its
database, as the Wellbeing Service Hub's GSO (seed 000: the Hub screens what the front door receives)."""

import re

import pytest

from tests.e2e.web_client import Desk, error_beside, markup
from tests.factories import unique_referral
from tests.workflow_harness import new_case

pytestmark = pytest.mark.e2e


def _found_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-person-id="([^"]+)"', html)


async def test_R_P5_a_front_door_worker_finds_a_person_by_name_birth_date_and_postcode_and_sees_the_referral(
        infra, web, events):
    """R-P5 (the summary shows the referral), R-P1: found by any of name, date of birth and postcode, all that
    are given matching; fields at fault are named and what was typed is not echoed in the message."""
    referral = unique_referral(urgency="urgent")
    person = referral["person"]
    person_id, _ = await new_case(infra, events, **referral)
    surname, born, postcode = person["last_name"], person["date_of_birth"], person["address"]["postcode"]
    desk = Desk(web.url)
    try:
        await desk.sign_in("hub")
        by_name = await desk.post("/people", name=f"{person['first_name'][:6].lower()} {surname.upper()}")
        assert _found_ids(by_name.text) == [person_id]
        assert f'<code class="person-id muted">{person_id}</code>' in by_name.text
        by_birth_and_postcode = await desk.post("/people", date_of_birth=born,
                                                postcode=postcode.replace(" ", "").lower())
        assert person_id in _found_ids(by_birth_and_postcode.text)
        elsewhere = await desk.post("/people", name=surname, postcode="LE9 9ZZ")
        assert _found_ids(elsewhere.text) == [] and "No one matches" in elsewhere.text

        refused = await desk.post("/people", name="x", date_of_birth="31/02/1950")
        assert "Name: 2 to 100 characters" in refused.text and "Date of birth: a date" in refused.text
        assert "31/02/1950" not in refused.text.split('id="find-problems"')[1].split("</ul>")[0]
        # issue #19 §4: the summary heads the page and each field says its own fault beside it, never echoing it
        assert refused.text.index('id="find-problems"') < refused.text.index("<h1")
        assert error_beside(refused.text, "find-dob") == "Date of birth: a date"
        assert error_beside(refused.text, "find-name") == "Name: 2 to 100 characters"
        assert error_beside(refused.text, "find-postcode") == ""
        nothing = await desk.post("/people")
        assert "Give an NHS number, or a name, date of birth or postcode" in nothing.text

        page = (await desk.get(f"/people/{person_id}")).text
        assert f'<code id="person-id">{person_id}</code>' in page
        shown = page.split('id="referral"')[1].split("</section>")[0]
        for seen in ("01 May 2024 09:30", "test-contact-centre", referral["referrer"]["name"],
                     referral["referrer"]["organisation"], "Struggling with daily living since a fall",
                     "Urgent", referral["referral_id"]):
            assert seen in shown, seen
    finally:
        await desk.close()


async def test_teams_are_shown_by_the_names_people_know_them_by_never_by_id(infra, web, events):
    """§9: the desk names teams from the one catalogue (shared/teams.yaml) in Team work (the menu's Team work
    leads there), the person's work and the step page, and the Assign picker offers every team of the step's pack
    by name, Wellbeing Service South included (no desk account works in it)."""
    person_id, step_id = await new_case(infra, events, **unique_referral())
    desk = Desk(web.url)
    try:
        home = await desk.sign_in("hub")
        assert 'href="/teams/wellbeing-service-hub/work">Team work</a>' in home.text
        team_work = markup((await desk.get("/teams/wellbeing-service-hub/work")).text)
        assert "<h1>Team work: Wellbeing Service Hub Team</h1>" in team_work
        person = markup((await desk.get(f"/people/{person_id}")).text)
        assert "<td>Wellbeing Service Hub Team</td>" in person and "team wellbeing-service-hub" not in person
        step = (await desk.get(f"/steps/{step_id}")).text
        assert "assigned to <strong>Wellbeing Service Hub Team</strong>" in step
        assert '<option value="wellbeing-service-south">Wellbeing Service South</option>' in step
    finally:
        await desk.close()


async def test_a_refusal_speaks_the_guides_words_and_links_its_rule_to_the_rule_book(infra, web, events):
    """§9: a refused next action comes back in its dialog (reopened, what was chosen kept) with each reason in
    the guide's words, its rule id (R-NA2) a link to the rule book the desk serves, where the rule is anchored."""
    _, screening = await new_case(infra, events, **unique_referral())
    desk = Desk(web.url)
    try:
        await desk.sign_in("hub")
        await desk.post(f"/steps/{screening}/start")
        refused = await desk.post(f"/steps/{screening}/next_action", action="WB Initial Risk Assessment and Triage",
                                  assignee_kind="team", assignee_team="wellbeing-service-hub", priority="high")
        dialog = refused.text.split('id="next-action-dialog"')[1].split("</dialog>")[0]
        assert 'data-reopen="1"' in dialog.split(">")[0]
        problems = dialog.split('id="na-problems"')[1].split("</ul>")[0]
        # issue #19 §4: the error summary links the note it names, which says the reason beside it
        assert ('<a href="#na-note">a priority other than normal needs a note</a>'
                ' (<a href="/rules#R-NA2" class="rule">R-NA2</a>)' in problems)
        note_error = markup(dialog).split('id="na-note-error">')[1].split("</p>")[0]
        assert 'a priority other than normal needs a note (<a href="/rules#R-NA2"' in note_error
        assert '<option value="high" selected>High</option>' in dialog
        assert '<option value="WB Initial Risk Assessment and Triage" selected' in dialog
        rules = await desk.get("/rules")
        assert rules.status_code == 200 and '<li id="R-NA2">' in rules.text
    finally:
        await desk.close()


async def test_the_nhs_number_lookup_answers_only_what_tells_people_apart(infra, web, referrals, events):
    """§9: GET /people?nhs_number= answers as the search does — names, birth and death dates, postcode and town
    — not the whole record (address lines, phone, email, communication needs stay on the person's own page)."""
    import httpx

    from shared.testing import service_auth

    referral = unique_referral()
    person_id, _ = await new_case(infra, events, **referral)
    async with httpx.AsyncClient(auth=service_auth(), base_url=referrals.url) as http:
        found = (await http.get("/people", params={"nhs_number": referral["person"]["nhs_number"]})).json()
    assert [p["person_id"] for p in found] == [person_id]
    assert set(found[0]) == {"person_id", "first_name", "last_name", "date_of_birth", "date_of_death", "postcode",
                             "town"}


async def test_the_steps_own_history_and_its_requests_name_people_not_ids(infra, web, events):
    """§9: the step page's History says who did each thing by name and what in words, as the person's chronology
    does; a request sent to a named worker names them (the Senior Officer), never "worker so"."""
    _, screening = await new_case(infra, events, **unique_referral())
    desk = Desk(web.url)
    try:
        await desk.sign_in("hub")
        await desk.post(f"/steps/{screening}/start")
        sent = await desk.post(f"/steps/{screening}/send_request", name="(R) WB Please action", to_kind="worker",
                               to_worker="so", note="Please look at this referral")
        assert "Sent (R) WB Please action." in sent.text
        page = markup((await desk.get(f"/steps/{screening}")).text)
        history = page.split('id="history"')[1].split("</ol>")[0]
        assert "– Hana Hub (GSO, Hub Team) – WB Wellbeing Screening started" in history
        assert "sent to Sam Okafor (Senior Officer)" in history
        assert "– hub –" not in history and "request.sent" not in history
        row = page.split('<tr id="request-')[1].split("</tr>")[0]
        assert ">Sam Okafor (Senior Officer)</td>" in row and "Hana Hub (GSO, Hub Team)" in row
        assert "worker so" not in row
    finally:
        await desk.close()
