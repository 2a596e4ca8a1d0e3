"""The desk's staff directory reaches workflow (R-RQ9, R-RQ10): accounts made in the desk that have never acted
are judged when a sign-off is sent to them — through the real desk, broker and databases."""

import uuid

import asyncpg

from shared.testing import poll_until
from tests.allocation_harness import actor
from tests.e2e.web_client import Desk
from tests.workflow_harness import Commands, new_case

MCA = "Mental Capacity Assessment"  # started by a social worker for themselves; signed by an ATM or TM
SIGN_OFF = "REQUIRED Please review information and confirm outcome"


async def listed(workflow_db: asyncpg.Pool, workers: dict[str, bool]) -> bool:
    """Whether workflow keeps each worker as listed by the directory, enabled or not as given."""
    rows = await workflow_db.fetch("SELECT worker_id, active FROM known_workers WHERE listed_at IS NOT NULL"
                                   " AND worker_id = ANY($1::text[])", list(workers))
    return {r["worker_id"]: r["active"] for r in rows} == workers


async def test_R_RQ9_R_RQ10_accounts_that_never_acted_are_judged_by_the_desks_directory(
        infra, web, events, commands: Commands, workflow_db):
    suffix = uuid.uuid4().hex[:8]
    team = "locality-west"  # a team of the council's catalogue (the desk refuses another); no demo account's
    sw = actor(f"sw-{suffix}", "social_worker", teams=(team,))
    colleague, signer, gone = f"sw2-{suffix}", f"atm-{suffix}", f"gone-{suffix}"
    admin = Desk(web.url)
    try:
        await admin.sign_in("administrator")
        for user_id, role in ((colleague, "social_worker"), (signer, "assistant_team_manager"),
                              (gone, "team_manager")):
            created = await admin.post("/admin/accounts", user_id=user_id, name=f"Test {role}", roles=role,
                                       teams=team, password="a-long-password-1")
            assert f"Account {user_id} created." in created.text
        assert f"{gone} disabled" in (await admin.post(f"/admin/accounts/{gone}/disable")).text
    finally:
        await admin.close()
    # the demo ATM was seeded before the directory was said: the desk lists every account when it starts
    await poll_until(lambda: listed(workflow_db, {colleague: True, signer: True, gone: False, "atm": True}), 60,
                     "the desk's accounts listed in workflow")

    person_id, _ = await new_case(infra, events)
    started = (await commands.send("step.start_new", sw, key=person_id, person_id=person_id, step_type=MCA)).ok()
    step_id = started.of("step.created")["step_id"]

    # never acted, yet known from the directory: a social worker cannot sign; the team's signer is named
    refused = await commands.send("step.send_request", sw, key=person_id, step_id=step_id, name=SIGN_OFF,
                                  to={"kind": "worker", "id": colleague})
    [why] = refused.reasons
    assert (why["code"], why["field"]) == ("cannot_sign", "to")
    assert f"worker {colleague} cannot sign" in why["message"]
    assert "Team Manager or Assistant Team Manager" in why["message"] and signer in why["message"]
    assert gone not in why["message"]  # a disabled account is never offered as a signer

    # R-RQ10: a disabled account would never see it, signer or not
    disabled = await commands.send("step.send_request", sw, key=person_id, step_id=step_id, name=SIGN_OFF,
                                   to={"kind": "worker", "id": gone})
    [why] = disabled.reasons
    assert (why["code"], why["field"]) == ("account_disabled", "to") and gone in why["message"]

    sent = (await commands.send("step.send_request", sw, key=person_id, step_id=step_id, name=SIGN_OFF,
                                to={"kind": "worker", "id": signer})).ok()
    assert sent.of("request.raised")["to"] == {"kind": "worker", "id": signer}


async def test_R_RQ10_no_step_is_assigned_or_started_for_a_disabled_account(
        infra, web, events, commands: Commands, workflow_db):
    """An account the administrator disabled in the desk: workflow refuses to assign a step to it, and to start one
    for it, each naming the field (`to`, `assignee`), through the real desk, broker and databases; the step stays
    with the worker who had it."""
    suffix = uuid.uuid4().hex[:8]
    team = "locality-west"
    sw, gone = actor(f"sw-{suffix}", "social_worker", teams=(team,)), f"left-{suffix}"
    admin = Desk(web.url)
    try:
        await admin.sign_in("administrator")
        await admin.post("/admin/accounts", user_id=gone, name="Test Leaver", roles="social_worker", teams=team,
                         password="a-long-password-1")
        assert f"{gone} disabled" in (await admin.post(f"/admin/accounts/{gone}/disable")).text
    finally:
        await admin.close()
    await poll_until(lambda: listed(workflow_db, {gone: False}), 60, "the disabled account listed in workflow")

    person_id, _ = await new_case(infra, events)
    started = (await commands.send("step.start_new", sw, key=person_id, person_id=person_id, step_type=MCA)).ok()
    step_id = started.of("step.created")["step_id"]
    to_gone = {"kind": "worker", "id": gone}
    assigned = await commands.send("step.assign", sw, key=person_id, step_id=step_id, to=to_gone)
    assert [(r["code"], r["field"]) for r in assigned.reasons] == [("account_disabled", "to")]
    assert gone in assigned.reasons[0]["message"]
    for_them = await commands.send("step.start_new", sw, key=person_id, person_id=person_id, step_type=MCA,
                                   assignee=to_gone)
    assert ("account_disabled", "assignee") in {(r["code"], r["field"]) for r in for_them.reasons}
    holder = await workflow_db.fetchval("SELECT assignee_id FROM steps WHERE step_id = $1", uuid.UUID(step_id))
    assert holder == sw["worker_id"]


async def test_issue_21_a_restarted_desk_lists_only_the_accounts_changed_since_it_last_listed_them(
        infra, web, db, workflow_db):
    """The desk notes what it listed of each account (users.listed): restarted with nothing changed, it puts no
    account.listed in its outbox for the broker at all; an account its note does not match (changed in the
    database behind its back, as accounts made before the directory were never listed) is listed alone, and
    workflow learns it."""
    account = f"renamed-{uuid.uuid4().hex[:8]}"
    admin = Desk(web.url)
    try:
        await admin.sign_in("administrator")
        await admin.post("/admin/accounts", user_id=account, name="Test Before", roles="social_worker",
                         teams="locality-west", password="a-long-password-1")
    finally:
        await admin.close()
    await poll_until(lambda: listed(workflow_db, {account: True}), 60, "the new account listed in workflow")

    async def listings_at_restart() -> list[str]:
        before = await db.fetchval("SELECT coalesce(max(seq), 0) FROM web.outbox")
        web.stop()
        web.start()
        await web.ready()  # the desk lists what changed before it answers ready
        return [r["key"] for r in await db.fetch(
            "SELECT key FROM web.outbox WHERE topic = 'web.events' AND seq > $1", before)]

    assert await listings_at_restart() == []
    await db.execute("UPDATE web.users SET display_name = 'Test After' WHERE user_id = $1", account)
    assert await listings_at_restart() == [account]

    async def named() -> bool:
        return await workflow_db.fetchval("SELECT display_name FROM known_workers WHERE worker_id = $1",
                                          account) == "Test After"

    await poll_until(named, 60, "workflow learns the account listed at the restart")
