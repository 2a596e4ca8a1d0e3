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
