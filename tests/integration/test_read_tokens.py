"""Issue #21 §3, closed service APIs: every read endpoint of every service needs a bearer token signed by a Tessera
component; a worker's token (the desk's) reads only their own work, their own teams' work and the person the desk
granted; probes and /metrics stay open. Through the real services, broker and PostgreSQL.

Every route of every service's read router is tried, so a route added without the check fails here.
"""

import json
import time
import uuid
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from joserfc import jws
from joserfc.jwk import OKPKey

from services.allocation import queries as allocation_queries
from services.documents import queries as documents_queries
from services.notifications import queries as notifications_queries
from services.referrals import queries as referrals_queries
from services.scheduler import queries as scheduler_queries
from services.workflow import brokerage
from services.workflow import queries as workflow_queries
from shared import bearer, signing
from shared.testing import ServiceProcess, service_auth, signer_of, worker_auth
from tests.workflow_harness import new_case

ROUTERS = {
    "referrals": [referrals_queries.router], "workflow": [workflow_queries.router, brokerage.queries],
    "allocation": [allocation_queries.router], "notifications": [notifications_queries.router],
    "documents": [documents_queries.router], "scheduler": [scheduler_queries.router],
}
OUR_TEAM, OTHER_TEAM = "read-test-team", "wellbeing-service-hub"
SOCIAL_WORKER = {"worker_id": "sw-read-1", "roles": ["social_worker"], "team_ids": [OUR_TEAM]}


@pytest.fixture
async def running(referrals, workflow, allocation, documents, notifications, scheduler) -> dict[str, ServiceProcess]:
    return {"referrals": referrals, "workflow": workflow, "allocation": allocation, "documents": documents,
            "notifications": notifications, "scheduler": scheduler}


def _routes(service: str) -> list[APIRoute]:
    return [r for router in ROUTERS[service] for r in router.routes if isinstance(r, APIRoute)]


def _path(route: APIRoute, ids: dict[str, str]) -> str:
    path = route.path.replace("{key:path}", "{key}")
    return path.format(**{name: ids.get(name, str(uuid.uuid4())) for name in route.param_convertors})


def _forged(claims: dict[str, Any], key: OKPKey | None = None) -> str:
    """A token as an outsider would make one: by a key nobody trusts, or with claims the services refuse."""
    key = key or OKPKey.generate_key("Ed25519")
    payload = {"iss": "tessera/web", "aud": bearer.AUDIENCE, "iat": int(time.time()), "exp": int(time.time()) + 60,
               **claims}
    return jws.serialize_compact({"alg": signing.ALGORITHM, "kid": key.thumbprint()},
                                 json.dumps(payload).encode(), key, algorithms=[signing.ALGORITHM])


async def test_every_read_endpoint_of_every_service_refuses_a_reader_without_a_valid_token(infra, events, running):
    assert all(_routes(service) for service in ROUTERS)
    person_id, step_id = await new_case(infra, events)
    ids = {"person_id": person_id, "step_id": step_id, "team_id": OTHER_TEAM, "worker_id": "sw-read-1"}
    web_key = signer_of("web").key
    refusals = {
        "no token": {},
        "not a bearer token": {"Authorization": "Basic c3c6c3c="},
        "garbage": {"Authorization": "Bearer not-a-token"},
        "a key nobody trusts": {"Authorization": "Bearer " + _forged({"actor": SOCIAL_WORKER})},
        "expired": {"Authorization": "Bearer " + _forged({"iat": int(time.time()) - 900,
                                                           "exp": int(time.time()) - 300}, web_key)},
        "a message signature, not a read token": {"Authorization": "Bearer " + _forged({"aud": None}, web_key)},
        "signed by the desk's key as another component": {
            "Authorization": "Bearer " + _forged({"iss": "tessera/referrals"}, web_key)},
    }
    async with httpx.AsyncClient(timeout=10) as http:
        for service, process in running.items():
            for route in _routes(service):
                url = process.url + _path(route, ids)
                for method in route.methods:
                    for why, headers in refusals.items():
                        answer = await http.request(method, url, headers=headers)
                        assert answer.status_code == 401, (service, method, route.path, why, answer.text)
                        assert answer.headers["www-authenticate"].startswith("Bearer")
            for open_path in ("/healthz", "/readyz", "/metrics"):
                assert (await http.get(process.url + open_path)).status_code == 200, (service, open_path)


async def test_a_workers_token_reads_their_own_teams_work_and_the_person_granted_never_anothers(
        infra, events, running):
    """R-P5: the desk's token for a worker is scoped like the desk itself: another team's tray, inbox or work,
    another worker's work, and a person the desk has not granted are 403; the services read everything."""
    person_id, step_id = await new_case(infra, events)  # a Wellbeing Hub case: not this worker's team
    ids = {"person_id": person_id, "step_id": step_id, "team_id": OTHER_TEAM, "worker_id": "another-worker"}
    worker = worker_auth(SOCIAL_WORKER["worker_id"], SOCIAL_WORKER["roles"], SOCIAL_WORKER["team_ids"])
    scoped = [(s, r) for s in running for r in _routes(s) if "GET" in r.methods
              and {"person_id", "team_id", "worker_id", "step_id"} & set(r.param_convertors)]
    assert len(scoped) >= 20
    async with httpx.AsyncClient(timeout=10) as http:
        for service, route in scoped:
            url = running[service].url + _path(route, ids)
            refused = await http.get(url, auth=worker)
            assert refused.status_code == 403, (service, route.path, refused.text)
            assert SOCIAL_WORKER["worker_id"] in refused.json()["detail"]
        person_reads = [f"{running['referrals'].url}/people/{person_id}",
                        f"{running['workflow'].url}/people/{person_id}/steps",
                        f"{running['workflow'].url}/steps/{step_id}",
                        f"{running['allocation'].url}/people/{person_id}/relationships",
                        f"{running['documents'].url}/people/{person_id}/documents",
                        f"{running['notifications'].url}/people/{person_id}/messages"]
        granted = worker_auth(SOCIAL_WORKER["worker_id"], SOCIAL_WORKER["roles"], SOCIAL_WORKER["team_ids"],
                              person_id=person_id)
        other_person = worker_auth(SOCIAL_WORKER["worker_id"], SOCIAL_WORKER["roles"], SOCIAL_WORKER["team_ids"],
                                   person_id=uuid.uuid4())
        for url in person_reads:
            assert (await http.get(url, auth=granted)).status_code == 200, url
            assert (await http.get(url, auth=other_person)).status_code == 403, url
            assert (await http.get(url, auth=service_auth("notifications"))).status_code == 200, url
        own = [f"{running['workflow'].url}/teams/{OUR_TEAM}/work",
               f"{running['workflow'].url}/workers/{SOCIAL_WORKER['worker_id']}/work",
               f"{running['allocation'].url}/teams/{OUR_TEAM}/tray",
               f"{running['notifications'].url}/teams/{OUR_TEAM}/inbox"]
        for url in own:
            assert (await http.get(url, auth=worker)).status_code == 200, url
        head_of_service = worker_auth("hos-read-1", ["head_of_service"], [])
        assert (await http.get(f"{running['referrals'].url}/people/{person_id}", auth=head_of_service)
                ).status_code == 200  # a manager above teams sees any record (R-A3)


async def test_names_for_a_page_of_work_are_read_at_once_and_a_workers_token_names_only_the_person_granted(
        infra, events, running):
    """Issue #18 §5: referrals' `/people/names` answers a page's names in one read, names only, with the same
    checks as `/people/{id}`: the desk (reading as itself) names anyone, a worker's token only the person the
    desk granted (R-P5)."""
    (first, _), (second, _) = [await new_case(infra, events) for _ in range(2)]
    url = f"{running['referrals'].url}/people/names"
    nobody = str(uuid.uuid4())
    ids = {"ids": f"{first},{second},{nobody}"}
    granted = worker_auth(SOCIAL_WORKER["worker_id"], SOCIAL_WORKER["roles"], SOCIAL_WORKER["team_ids"],
                          person_id=first)
    async with httpx.AsyncClient(timeout=10) as http:
        names = (await http.get(url, params=ids, auth=service_auth("web"))).json()
        one = await http.get(url, params={"ids": first}, auth=granted)
        both = await http.get(url, params=ids, auth=granted)
        too_many = await http.get(url, params={"ids": ",".join(str(uuid.uuid4()) for _ in range(201))},
                                  auth=service_auth("web"))
    records = {}
    async with httpx.AsyncClient(timeout=10, auth=service_auth()) as http:
        for person in (first, second):
            record = (await http.get(f"{running['referrals'].url}/people/{person}")).json()
            records[person] = f"{record['first_name']} {record['last_name']}"
    assert names == records  # the unknown id left out, nothing but the names
    assert one.status_code == 200 and one.json() == {first: records[first]}
    # refused naming an id the grant does not cover (ids are checked in order: either may come first)
    assert both.status_code == 403 and any(other in both.json()["detail"] for other in (second, nobody))
    assert too_many.status_code == 422 and "ids" in too_many.text  # at most 200 ids
