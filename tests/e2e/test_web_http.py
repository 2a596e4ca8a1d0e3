"""Tessera desk without a browser: sign-in, CSRF, pages render, and commands carry the signed-in actor."""

import json
import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from shared import audit, topics
from shared.testing import EventLog, ServiceProcess, free_port, service_auth
from tests.allocation_harness import referral_seen, tray_args
from tests.e2e.test_web_browser import GSO, wellbeing_to_sap
from tests.e2e.web_client import Desk, error_beside, markup
from tests.factories import unique_referral
from tests.workflow_harness import SCREENING, SO_TRANSFER, Commands, new_case

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
            # the newest waiting first: the session's other tests leave more than a page of the team's work
            team = await desk.get("/teams/wellbeing-service-hub/work?sort=-waiting")
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
                "completed_sections.__present": "1", "v.referral_source": "Self", "v.consent_to_share": "false",
                "v.first_name": "Forged"})
            assert "Saved." in saved.text
            [save] = sent.matching(lambda s: s.type == "step.save")
            # only what changed: the referral's consent (prefilled, R-W5) was withdrawn
            assert save.data["values"] == {"referral_source": "Self", "consent_to_share": False}

            refused = await desk.post(f"/steps/{screening}/finish")
            assert "cannot finish yet" in refused.text
            assert 'href="#f-screening_rationale"' in refused.text and 'href="#next-actions"' in refused.text
        finally:
            await desk.close()


async def test_a_note_written_on_a_recorded_reason_carries_the_reason_to_referrals_which_keeps_it(
        infra, web, referrals, events, db):
    """Break-glass (issue #11 §3): the web passes the worker's reason with the command; referrals records it.
    The reason is a row of the desk's tamper-evident audit chain too (issue #21 §5)."""
    person_id, _ = await new_case(infra, events)
    desk = Desk(web.url)
    try:
        await desk.sign_in("sw2")  # Carers team: no relationship with, nor work for, this person
        assert (await desk.get(f"/people/{person_id}")).url.path == f"/people/{person_id}/access"
        reason = "Duty call from the daughter at 14:10"
        opened = await desk.post(f"/people/{person_id}/access", reason=reason)
        assert "Your reason was recorded" in opened.text
        added = await desk.post(f"/people/{person_id}/notes", title="Duty call", type="Case Note",
                                text="Daughter called about a fall.")
        assert "Case note added." in added.text
    finally:
        await desk.close()
    async with httpx.AsyncClient(auth=service_auth(), base_url=referrals.url) as http:
        kept = (await http.get(f"/people/{person_id}/access-reasons")).json()
        notes = (await http.get(f"/people/{person_id}/notes")).json()
    assert [(k["reason"], k["actor"], k["command_type"]) for k in kept] == [(reason, "worker:sw2", "case_note.add")]
    assert [(n["title"], n["author"]) for n in notes] == [("Duty call", "worker:sw2")]
    chained = await db.fetch("SELECT actor_id, actor_roles, details FROM web.audit_log"
                             " WHERE action = 'record.break_glass' AND subject = $1", person_id)
    assert [(r["actor_id"], r["actor_roles"], json.loads(r["details"])["reason"]) for r in chained] == [
        ("sw2", ["social_worker"], reason)]
    async with db.acquire() as conn:
        assert (await audit.verify(conn, "web")).ok


async def test_a_manager_sees_every_reason_given_to_reach_a_record_in_the_desk_and_in_the_services(
        infra, web, events):
    """Issue #21: the record's access audit lists, newest first, who reached it on a reason — opened in the desk,
    and the commands referrals and allocation allowed on one (their GET /people/{id}/access-reasons) — with
    when and why; for managers only."""
    person_id, _ = await new_case(infra, events)
    worker, manager = Desk(web.url), Desk(web.url)
    try:
        await worker.sign_in("sw2")  # Carers team: no relationship with, nor work for, this person
        reason = f"Duty call from the daughter {uuid.uuid4().hex[:6]}"
        await worker.post(f"/people/{person_id}/access", reason=reason)
        assert "Case note added." in (await worker.post(f"/people/{person_id}/notes", title="Duty call",
                                                        type="Case Note", text="Daughter called.")).text
        added = await worker.post(f"/people/{person_id}/relationships/organisational", team_id="adult-carers",
                                  relationship="Involved Team")
        assert "Relationship added." in added.text
        assert (await worker.get(f"/people/{person_id}/access-audit")).status_code == 403
        assert 'id="access-audit-link"' not in (await worker.get(f"/people/{person_id}")).text

        await manager.sign_in("tm")  # Front Door: no relationship either
        checking = f"Checking the carers involvement {uuid.uuid4().hex[:6]}"
        opened = await manager.post(f"/people/{person_id}/access", reason=checking)
        assert 'id="access-audit-link"' in opened.text
        page = await manager.get(f"/people/{person_id}/access-audit")
        rows = re.findall(r"<tr><td><time[^>]*>[^<]*</time></td><td>([^<]*)</td><td>[^<]*</td><td>([^<]*)</td>"
                          r"<td>([^<]*)</td><td>([^<]*)</td></tr>", markup(page.text))
        # workers by the names the desk knows them by (issue #22 §9)
        tm, sw2 = "Tom Mensah (Team Manager)", "Chris Carer (Social Worker, Carers)"
        assert rows[0] == (tm, "Desk", "Opened the record (break-glass)", checking)
        assert set(rows[1:]) == {(sw2, "Desk", "Opened the record (break-glass)", reason),
                                 (sw2, "Referrals", "case_note.add", reason),
                                 (sw2, "Allocation", "org_relationship.add", reason)}
    finally:
        await worker.close()
        await manager.close()


async def test_find_a_person_by_nhs_number_is_a_post_and_the_number_is_never_in_a_url(infra, web, events):
    """Issue #21 §5: the NHS number goes in the body of a POST (with the CSRF token), not the query string."""
    referral = unique_referral()
    nhs_number = referral["person"]["nhs_number"]
    person_id, _ = await new_case(infra, events, person=referral["person"])
    desk = Desk(web.url)
    try:
        await desk.sign_in("sw")
        by_url = await desk.get(f"/people?nhs_number={nhs_number}")
        assert by_url.status_code == 200 and f"/people/{person_id}" not in by_url.text
        assert 'method="post" action="/people"' in by_url.text
        found = await desk.post("/people", nhs_number=f"{nhs_number[:3]} {nhs_number[3:6]} {nhs_number[6:]}")
        assert f'href="/people/{person_id}"' in found.text
        assert all(nhs_number not in str(r.url) for r in (found, *found.history))
        assert (await desk.http.post("/people", data={"nhs_number": nhs_number})).status_code == 403  # no token
    finally:
        await desk.close()


@pytest.fixture
async def web_without_notifications(infra, web) -> AsyncIterator[ServiceProcess]:
    """A second web replica (same database) whose notifications service never answers."""
    urls = {k: v for k, v in web._env.items() if k.endswith("_URL")}
    process = ServiceProcess("web", {**infra.env, **urls, "TESSERA_ENVIRONMENT": "development",
                                     "NOTIFICATIONS_URL": f"http://127.0.0.1:{free_port()}"}, infra.log_dir)
    process.start()
    try:
        await process.ready()
        yield process
    finally:
        process.stop()


async def test_r_rq7_the_authorisation_queue_comes_from_workflow_even_while_notifications_is_down(
        infra, workflow, events, commands: Commands, web_without_notifications):
    person_id, sap = await wellbeing_to_sap(infra, events, commands)
    (await commands.send("step.start", GSO, key=person_id, step_id=sap)).ok()
    raised = (await commands.send("step.send_request", GSO, key=person_id, step_id=sap, name=SO_TRANSFER)).ok()
    request_id = raised.of("request.raised")["request_id"]
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        team = (await http.get("/teams/wellbeing-service-management/awaiting-authorisation")).json()
        [item] = [s for s in team if s["step_id"] == sap]
        assert item["state"] == "awaiting_authorisation" and item["person_id"] == person_id
        assert item["request"]["request_id"] == request_id and item["request"]["name"] == SO_TRANSFER
        assert item["request"]["sent_by"] == "gso"
        # the GSO who sent it is not asked to authorise their own work
        mine = (await http.get("/workers/gso/awaiting-authorisation")).json()
        assert sap not in {s["step_id"] for s in mine}

    so, gso = Desk(web_without_notifications.url), Desk(web_without_notifications.url)
    try:
        await so.sign_in("so")
        queue = await so.get("/authorisations")
        assert queue.status_code == 200 and "could not be read" not in queue.text
        row = re.search(rf'<tr data-step-id="{sap}">.*?</tr>', queue.text, re.S)
        assert row and SO_TRANSFER in row.group(0) and f'href="/steps/{sap}#authorise"' in row.group(0)
        assert "Testperson" in row.group(0)
        # issue #19 §4: a return with no note is refused, the reason said beside that step's note (R-RQ4)
        refused = await so.post(f"/steps/{sap}/return", note="", next="/authorisations")
        assert error_beside(refused.text, f"ret-{sap}"), refused.text[:500]
        on_the_step = await so.post(f"/steps/{sap}/return", note="")  # and on the step page, beside its note
        assert error_beside(on_the_step.text, "return-note") == error_beside(refused.text, f"ret-{sap}")
        await gso.sign_in("gso")
        assert sap not in (await gso.get("/authorisations")).text
    finally:
        await so.close()
        await gso.close()


def audit_rows(page: str) -> list[str]:
    table = markup(page).split('id="account-audit"', 1)[1]
    return [re.sub(r"<[^>]+>", " ", r) for r in re.findall(r"<tr><td><time.*?</tr>", table, re.S)]


async def test_an_administrator_creates_disables_enables_and_resets_an_account_every_change_audited(web, db):
    new_user = f"nw{uuid.uuid4().hex[:6]}"
    admin, worker, manager = Desk(web.url), Desk(web.url), Desk(web.url)
    try:
        await manager.sign_in("tm")
        assert (await manager.get("/admin/accounts")).status_code == 403
        assert 'href="/admin/accounts"' not in (await manager.get("/work")).text

        page = await admin.sign_in("administrator")
        assert 'href="/admin/accounts"' in page.text
        # §9: the teams are a picker of the catalogue's teams by name, not typed ids
        accounts = await admin.get("/admin/accounts")
        south = '<label for="new-team-wellbeing-service-south">Wellbeing Service South</label>'
        assert 'value="wellbeing-service-south">' + south in markup(accounts.text)
        refused = await admin.post("/admin/accounts", user_id="Bad Name!", name="", teams=["ok-team", "Bad_Team!"],
                                   password="short")
        for named in ("user name", "name is required", "choose at least one role",
                      "not a known team: ok-team, Bad_Team!", "at least 12 characters"):
            assert named in refused.text, named
        for field_id in ("new-user-id", "new-name", "new-roles", "new-teams", "new-password"):  # issue #19 §4
            assert f'href="#{field_id}"' in refused.text and f'id="{field_id}-error"' in refused.text, field_id
        created = await admin.post("/admin/accounts", user_id=new_user, name="Nia West (Social Worker)",
                                   roles="social_worker", teams=["adult-carers"], password="first-password-1")
        assert f"Account {new_user} created." in created.text
        again = await admin.post("/admin/accounts", user_id=new_user, name="Someone else", roles="gso",
                                 password="first-password-1")
        assert f"{new_user} already exists" in again.text

        home = await worker.sign_in(new_user, "first-password-1")
        assert home.url.path == "/work" and "Nia West" in home.text
        assert 'href="/teams/adult-carers/work"' in home.text

        disabled = await admin.post(f"/admin/accounts/{new_user}/disable")
        assert f"{new_user} disabled: they cannot sign in." in disabled.text
        assert (await worker.get("/work")).url.path == "/login"  # the open session ended at once
        assert (await worker.sign_in(new_user, "first-password-1")).status_code == 401
        own = await admin.post("/admin/accounts/administrator/disable")
        assert "cannot disable your own account" in own.text

        await admin.post(f"/admin/accounts/{new_user}/enable")
        weak = await admin.post(f"/admin/accounts/{new_user}/password", password="too-short")
        assert "was not reset" in weak.text and "at least 12 characters" in weak.text
        assert (await worker.sign_in(new_user, "first-password-1")).url.path == "/work"
        reset = await admin.post(f"/admin/accounts/{new_user}/password", password="second-password-2")
        assert (await worker.get("/work")).url.path == "/login"  # the reset ended the session (issue #21 §5)
        assert f"{new_user} has a new password; their sessions have ended." in reset.text
        assert (await worker.sign_in(new_user, "first-password-1")).status_code == 401
        assert (await worker.sign_in(new_user, "second-password-2")).url.path == "/work"

        stored = await admin.get("/admin/accounts")
        assert "$argon2" not in stored.text
        changes = [r for r in audit_rows(stored.text) if new_user in r]
        actions = ("password reset", "enabled", "disabled", "created")
        assert [next(a for a in actions if a in r) for r in changes] == list(actions)  # newest first
        assert all("administrator" in r for r in changes)
        assert "social_worker in Adult Carers Team" in changes[-1]
        chained = await db.fetch("SELECT actor_id, action FROM web.audit_log WHERE object_id = $1 AND actor_id"
                                 " = 'administrator' ORDER BY seq", new_user)
        assert [r["action"] for r in chained] == ["account.created", "account.disabled", "account.enabled",
                                                  "account.password_reset"]  # in the chain too (issue #21 §5)
    finally:
        for desk in (admin, worker, manager):
            await desk.close()


async def test_placing_on_a_tray_needs_the_same_grounds_as_opening_the_record_and_self_allocation_is_audited(
        infra, web, allocation, events, db):
    """Issue #21 §6: the desk's tray and allocate routes check the relationship like every person page; a case a
    manager allocates to themselves is in the access audit (and the audit chain), and gives no break-glass."""
    ours, _ = await new_case(infra, events, category="assessment")  # in adult-front-door's work
    theirs, _ = await new_case(infra, events)  # the Wellbeing Hub's: the team manager has no grounds
    await referral_seen(db, ours)
    await referral_seen(db, theirs)
    desk = Desk(web.url)
    try:
        await desk.sign_in("tm")
        # valid: allocation would place them (the desk answers only once allocation has answered a command)
        refused = await desk.post(f"/people/{theirs}/tray", **tray_args("adult-front-door", urgent="false"))
        assert refused.url.path == f"/people/{theirs}/access"
        await desk.get(f"/people/{ours}")
        allocated = await desk.post(f"/people/{ours}/allocate", worker_id="tm", team_id="adult-front-door")
        assert "Allocated to Tom Mensah" in allocated.text, allocated.text[:500]
        audit_page = await desk.get("/audit/access")
    finally:
        await desk.close()
    await events.wait_for(lambda s: s.type == "case.allocated" and s.data.get("person_id") == ours)
    about_theirs = events.matching(lambda s: s.topic == topics.ALLOCATION_EVENTS and theirs in (
        s.body.get("subject"), s.data.get("person_id")))
    assert about_theirs == []  # no tray.add was sent for them, so allocation said nothing
    assert await db.fetchval("SELECT count(*) FROM allocation.tray_entries WHERE person_id = $1",
                             uuid.UUID(theirs)) == 0
    listed = re.search(rf"<tr>(?:(?!</tr>).)*{ours}(?:(?!</tr>).)*</tr>", markup(audit_page.text), re.S)
    assert listed and "Allocated to themselves" in listed.group(0)
    # §9: the worker and their teams by name, as people know them
    assert "<td>Tom Mensah (Team Manager)</td><td>Adult Social Care Front Door</td>" in listed.group(0)
    assert await db.fetchval("SELECT kind FROM web.access_log WHERE person_id = $1", uuid.UUID(ours)) == \
        "self_allocation"
    assert await db.fetchval("SELECT count(*) FROM web.access_log WHERE person_id = $1", uuid.UUID(theirs)) == 0
    chained = await db.fetchval("SELECT count(*) FROM web.audit_log WHERE action = 'record.self_allocation'"
                                " AND subject = $1", ours)
    assert chained == 1


async def test_R_RQ8_R_T6_an_escalation_is_in_the_ssm_teams_tasks_with_its_count_and_mark_done_records_who(
        infra, web, notifications, events):
    """The demo Strategic Service Manager (one role, the SSM team of adult social care) sees the escalation of a
    front-door tray case in My work's team count and on Team work, and marks it done as themselves."""
    from shared.envelope import new_message
    from shared.testing import poll_until, publish

    person_id, _ = await new_case(infra, events)
    team = "ssm-adult-social-care"
    escalated = new_message("tray.entry_escalated", "tessera/allocation", {
        "entry_id": str(uuid.uuid4()), "person_id": person_id, "team_id": "adult-front-door",
        "reason": "increased_risk", "rag": "red", "placed_at": "2026-10-01T09:00:00+00:00", "actor": "tm"},
        subject=person_id)
    await publish(infra.bootstrap, topics.ALLOCATION_EVENTS, [(person_id, escalated.to_bytes())])

    async def open_tasks() -> list[dict]:
        async with httpx.AsyncClient(auth=service_auth(), base_url=notifications.url) as http:
            return (await http.get(f"/teams/{team}/inbox", params={"kind": "task", "state": "open"})).json()

    async def ours() -> dict | None:
        return next((t for t in await open_tasks() if t["person_id"] == person_id), None)
    task = await poll_until(ours, 30, "the escalation task in the SSM team's inbox")
    desk = Desk(web.url)
    try:
        home = await desk.sign_in("ssm")
        count = len(await open_tasks())
        named = "Adult Social Care Strategic Service Managers"  # §9: the team by its name
        assert f'href="/teams/{team}/work#tasks">{named} ({count})</a>' in home.text
        page = await desk.get(f"/teams/{team}/work")
        assert f'Team tasks <span class="count">({count})</span>' in page.text
        assert "Escalation from the Planned Work Tray" in page.text
        assert 'Rule <a href="/rules#R-T6" class="rule">R-T6</a>' in page.text
        assert f'action="/tasks/{task["request_id"]}/complete"' in page.text
        done = await desk.post(f"/tasks/{task['request_id']}/complete", person_id=person_id,
                               next=f"/teams/{team}/work")
        assert done.url.path == f"/teams/{team}/work" and "Task done." in done.text
        assert f'action="/tasks/{task["request_id"]}/complete"' not in done.text
    finally:
        await desk.close()
    async with httpx.AsyncClient(auth=service_auth(), base_url=notifications.url) as http:
        [closed] = [t for t in (await http.get(f"/teams/{team}/inbox", params={"kind": "task"})).json()
                    if t["request_id"] == task["request_id"]]
    assert (closed["state"], closed["closed_by"], closed["closed_reason"]) == ("completed", "ssm", "done")


async def test_R_RQ5_a_sign_off_request_lists_only_the_workers_who_can_sign_the_step(infra, web, events, commands):
    """Issue #17 §1: a Care and Support Plan's REQUIRED authorisation goes to a team manager or head of service
    (R-RQ5), never to an assistant team manager who could not then sign; no account is picked for the worker."""
    person_id, _ = await new_case(infra, events)
    sw = {"worker_id": "sw", "roles": ["social_worker"], "team_ids": ["adult-front-door"]}
    plan = await commands.given_step(sw, person_id, "Care and Support Plan")
    desk = Desk(web.url)
    try:
        await desk.sign_in("sw")
        page = markup((await desk.get(f"/steps/{plan}")).text)
    finally:
        await desk.close()

    def workers_offered(request: str) -> list[str]:
        form = next(f for f in re.findall(r'<form[^>]*class="request-form".*?</form>', page, re.S)
                    if request in f)
        select = re.search(r'<select[^>]*name="to_worker"[^>]*>(.*?)</select>', form, re.S)
        assert select is not None
        return re.findall(r'<option value="([^"]*)"', select.group(1))

    # not atm (cannot sign a plan), nor sw, admin or the administrator; the first option picks nobody
    assert workers_offered("REQUIRED Please Authorise Support Plan") == ["", "hos", "tm"]


async def test_R_K13_future_work_is_assigned_only_to_a_team_on_the_step_page(infra, web, events, commands):
    """Issue #17: the desk offers a team manager no worker for Future Work (the service refuses one, R-K13); a
    Care and Support Plan still offers both."""
    person_id, _ = await new_case(infra, events)
    tm = {"worker_id": "tm", "roles": ["team_manager"], "team_ids": ["adult-front-door"]}
    future = await commands.given_step(tm, person_id, "Future Work", {"kind": "team", "id": "adult-front-door"})
    plan = await commands.given_step(tm, person_id, "Care and Support Plan")
    desk = Desk(web.url)
    try:
        await desk.sign_in("tm")
        future_page, plan_page = (await desk.get(f"/steps/{future}")).text, (await desk.get(f"/steps/{plan}")).text
    finally:
        await desk.close()

    def assign_form(page: str) -> str:
        found = re.search(r'<form method="post" action="/steps/[^"]+/assign".*?</form>', page, re.S)
        assert found is not None
        return found.group(0)

    assert 'name="to_worker"' not in assign_form(future_page)
    assert '<input type="hidden" name="to_kind" value="team">' in assign_form(future_page)
    assert 'name="to_worker"' in assign_form(plan_page)


def start_new_menu(page: str) -> list[str]:
    """The step types the person page's Start > New offers."""
    select = re.search(r'<select id="start-type" name="step_type"[^>]*>(.*?)</select>', markup(page), re.S)
    return re.findall(r"<option>([^<]*)</option>", select.group(1)) if select else []


async def test_R_W12_start_new_offers_each_worker_exactly_what_their_guide_lists(infra, web, workflow, events,
                                                                                  commands):
    """Issue #22 §5 / #17 §3: a Wellbeing worker's Start > New is seed 000's three steps; a step type not on it
    is refused before anything is sent; an Adult Care practitioner (social worker) starts a WB Wellbeing
    Screening, which is in their incomplete work; the workflow refuses through the broker what is not offered."""
    person_id, _ = await new_case(infra, events)  # a wellbeing referral: in the hub's inbox
    desk = Desk(web.url)
    try:
        await desk.sign_in("hub")
        assert start_new_menu((await desk.get(f"/people/{person_id}")).text) == [
            "Adult Proposed Case Closure", "WB Covid 19 Response", SCREENING]
        refused = (await desk.post(f"/people/{person_id}/start_new", step_type="Care and Support Plan")).text
        assert ('Care and Support Plan is not on your Start &gt; New menu'
                ' (<a href="/rules#R-W12" class="rule">R-W12</a>)') in refused
    finally:
        await desk.close()

    desk = Desk(web.url)
    try:
        await desk.sign_in("sw")
        await desk.get(f"/people/{person_id}/access")
        await desk.post(f"/people/{person_id}/access", reason="Screening a carer's neighbour for Wellbeing")
        menu = start_new_menu((await desk.get(f"/people/{person_id}")).text)
        assert SCREENING in menu and "WB Covid 19 Response" not in menu and "Professional Support" not in menu
        opened = await desk.post(f"/people/{person_id}/start_new", step_type=SCREENING)
        assert re.search(r"/steps/[0-9a-f-]{36}$", str(opened.url)), "Start > New opens the new step"
    finally:
        await desk.close()
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        work = (await http.get("/workers/sw/work")).json()
    assert str(opened.url).rsplit("/", 1)[1] in {s["step_id"] for s in work["incomplete"]
                                                   if s["step_type"] == SCREENING}

    sw = {"worker_id": "sw", "roles": ["social_worker"], "team_ids": ["adult-front-door"]}
    outcome = await commands.send("step.start_new", sw, key=person_id, person_id=person_id,
                                  step_type="WB Covid 19 Response")
    [reason] = outcome.reasons
    assert (outcome.rejection["code"], reason["field"]) == ("not_startable", "step_type")
    assert "WB Covid 19 Response" in reason["message"]
