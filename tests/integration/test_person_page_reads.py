"""What the desk's person page reads in one go (issue #18 §5), read as a worker reads it, through the real services
and their databases: referrals' whole file of the person and allocation's account of where the person waits, each
refused or narrowed as the single-purpose reads they replace are (R-P5: the desk's grant; R-T1: a tray is its
team's)."""

import httpx

from shared.testing import service_auth, worker_auth
from tests.allocation_harness import Staff, referral, referral_seen, tray_args


async def test_R_P5_the_persons_file_is_the_record_notes_history_and_referrals_with_the_desks_grant_only(
        infra, referrals, workflow, out):
    person_id, _ = await referral(infra, out, reason="Lives alone since a stroke")
    s = Staff()
    without = worker_auth(s.sw["worker_id"], s.sw["roles"], s.sw["team_ids"])
    granted = worker_auth(s.sw["worker_id"], s.sw["roles"], s.sw["team_ids"], person_id=person_id)
    async with httpx.AsyncClient(base_url=referrals.url, auth=without) as worker, \
            httpx.AsyncClient(base_url=referrals.url, auth=granted) as desk, \
            httpx.AsyncClient(base_url=referrals.url, auth=service_auth()) as service:
        refused = await worker.get(f"/people/{person_id}/file")
        assert refused.status_code == 403 and person_id in refused.text
        found = await desk.get(f"/people/{person_id}/file")
        assert found.status_code == 200, found.text
        file = found.json()
        assert file["person"] == (await service.get(f"/people/{person_id}")).json()
        assert file["referrals"] == (await service.get(f"/people/{person_id}/referrals")).json()
        assert [r["reason"] for r in file["referrals"]] == ["Lives alone since a stroke"]
        assert file["notes"] == (await service.get(f"/people/{person_id}/notes")).json()
        assert file["history"] == (await service.get(f"/people/{person_id}/history")).json()
        assert file["related_names"] == {}
        assert (await desk.get("/people/00000000-0000-0000-0000-000000000000/file")).status_code == 403


async def test_R_T1_R_T2_where_a_person_waits_shows_a_tray_entry_only_to_the_trays_team(
        infra, allocation, out, alloc, db):
    s, other = Staff(), Staff()
    person_id, _ = await referral(infra, out)
    await referral_seen(db, person_id)
    added = (await alloc.send("tray.add", s.tm, person_id=person_id, **tray_args(s.team))).ok()
    entry_id = added.of("tray.entry_added")["entry_id"]

    async def waiting(who: dict) -> dict:
        async with httpx.AsyncClient(base_url=allocation.url, auth=worker_auth(
                who["worker_id"], who["roles"], who["team_ids"], person_id=person_id)) as http:
            response = await http.get(f"/people/{person_id}/waiting")
        assert response.status_code == 200, response.text
        return response.json()

    theirs, elsewhere = await waiting(s.sw), await waiting(other.tm)
    assert [(e["entry_id"], e["team_id"], e["rationale"]) for e in theirs["planned_work"]] == [
        (entry_id, s.team, tray_args(s.team)["rationale"])]
    assert elsewhere["planned_work"] == []
    assert theirs["urgency"] == elsewhere["urgency"]
    assert theirs["urgency"]["person_id"] == person_id and theirs["urgency"]["may_be_placed"] is True
