"""HTTP errors of every service carry no stack trace and no personal data (issue #11 §3, PII canary).

A caller that puts a person's details where an id belongs, or sends a malformed query, gets an error
that names what is wrong without repeating the details back (they end up in browser histories,
proxies and bug reports) and without a traceback.
"""

import uuid

import httpx

from shared.testing import service_auth
from tests.factories import person_data, unique_seed
from tests.pii_canary import REGISTRY, TRACEBACK


def _bad_requests(person: dict) -> dict[str, list[tuple[str, str]]]:
    """Per service: requests that must fail, each holding some of `person`'s details."""
    name, nhs, postcode = person["last_name"], person["nhs_number"], person["address"]["postcode"]
    unknown = uuid.uuid4()
    return {
        "referrals": [("GET", f"/people/{unknown}"), ("GET", f"/people/{name}"),
                      ("GET", f"/people?nhs_number={nhs}%20{nhs}"), ("GET", f"/people/{nhs}/history")],
        "workflow": [("GET", f"/steps/{name}"), ("GET", f"/people/{nhs}/steps"), ("GET", f"/no-such-page/{name}")],
        "allocation": [("GET", f"/localities/team?postcode={postcode}%20{postcode}"),
                       ("GET", f"/people/{name}/relationships"), ("GET", f"/tray/entries/{nhs}")],
        "notifications": [("GET", f"/people/{name}/messages"), ("GET", f"/people/{unknown}/messages?limit=0")],
        "documents": [("GET", f"/people/{name}/documents"), ("GET", f"/documents/{nhs}.pdf"),
                      ("POST", f"/people/{unknown}/documents")],
        "scheduler": [("GET", f"/timers?limit=0&owner={name}"), ("GET", f"/no-such-page/{postcode}")],
    }


async def _assert_clean_errors(service: str, url: str) -> None:
    """4xx, no traceback, and no personal detail in any body."""
    person = person_data(unique_seed())
    async with httpx.AsyncClient(auth=service_auth(), base_url=url, timeout=10) as http:
        for method, path in _bad_requests(person)[service]:
            answer = await http.request(method, path)
            assert 400 <= answer.status_code < 500, (path, answer.status_code)
            assert TRACEBACK not in answer.text, path
            assert REGISTRY.find(answer.text, path) == set(), answer.text


async def test_referrals_errors_are_clean(referrals):
    await _assert_clean_errors("referrals", referrals.url)


async def test_workflow_errors_are_clean(workflow):
    await _assert_clean_errors("workflow", workflow.url)


async def test_allocation_errors_are_clean(allocation):
    await _assert_clean_errors("allocation", allocation.url)


async def test_notifications_errors_are_clean(notifications):
    await _assert_clean_errors("notifications", notifications.url)


async def test_documents_errors_are_clean(documents):
    await _assert_clean_errors("documents", documents.url)


async def test_scheduler_errors_are_clean(scheduler):
    await _assert_clean_errors("scheduler", scheduler.url)


async def test_validation_errors_do_not_echo_personal_details(referrals, allocation):
    person = person_data(unique_seed())
    async with httpx.AsyncClient(auth=service_auth(), timeout=10) as http:
        by_name = await http.get(f"{referrals.url}/people/{person['last_name']}")
        by_postcode = await http.get(f"{allocation.url}/localities/team",
                                     params={"postcode": f"{person['address']['postcode']} flat 2"})
    assert (by_name.status_code, by_postcode.status_code) == (422, 422)
    assert "person_id" in by_name.text and "postcode" in by_postcode.text  # the field at fault is named
    assert REGISTRY.find(by_name.text + by_postcode.text, "422 bodies") == set()
