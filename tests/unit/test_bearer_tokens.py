"""Issue #21 §3: what a read token proves and what the services refuse (shared/bearer.py), without a network.

Through the real services: tests/integration/test_read_tokens.py.
"""

import asyncio
import time
import uuid

import httpx
import pytest
from fastapi import HTTPException

from shared import bearer, signing, testing
from tessera import signer as cli

SW = {"worker_id": "sw-1", "roles": ["social_worker"], "team_ids": ["t1"]}
PERSON = str(uuid.uuid4())


def refusal(verifier: signing.Verifier, token: str, now: float | None = None) -> str:
    with pytest.raises(signing.Unauthenticated) as refused:
        bearer.verify(verifier, token, now)
    return refused.value.reason


def test_a_desk_token_proves_the_worker_and_the_one_person_granted(keys, verifier):
    token = bearer.mint(signing.load_signer(keys, "web"), actor=SW, grant=bearer.Grant(PERSON, "relationship"))
    reader = bearer.verify(verifier, token)
    assert (reader.producer, reader.worker_id, reader.team_ids, reader.grant) == (
        "tessera/web", "sw-1", frozenset({"t1"}), bearer.Grant(PERSON, "relationship"))
    bearer.require_person(reader, PERSON)
    bearer.require_team(reader, "t1")
    bearer.require_worker(reader, "sw-1")
    for check, other in ((bearer.require_person, str(uuid.uuid4())), (bearer.require_team, "t2"),
                         (bearer.require_worker, "sw-2")):
        with pytest.raises(HTTPException) as refused:
            check(reader, other)
        assert refused.value.status_code == 403 and "sw-1" in refused.value.detail


def test_a_service_token_reads_any_record(keys, verifier):
    reader = bearer.verify(verifier, bearer.mint(signing.load_signer(keys, "allocation")))
    assert reader.is_service and reader.producer == "tessera/allocation"
    bearer.require_person(reader, PERSON)
    bearer.require_team(reader, "any-team")


def test_R_A3_a_manager_above_teams_reads_any_team_and_person_a_team_manager_any_workers_work(keys, verifier):
    web = signing.load_signer(keys, "web")
    hos = bearer.verify(verifier, bearer.mint(web, actor={"worker_id": "hos", "roles": ["head_of_service"],
                                                           "team_ids": []}))
    bearer.require_person(hos, PERSON)
    bearer.require_team(hos, "t9")
    tm = bearer.verify(verifier, bearer.mint(web, actor={**SW, "worker_id": "tm", "roles": ["team_manager"]}))
    bearer.require_worker(tm, "sw-1")
    with pytest.raises(HTTPException):
        bearer.require_team(tm, "t9")


def test_expired_long_lived_future_and_misaddressed_tokens_are_refused(keys, verifier):
    web = signing.load_signer(keys, "web")
    now = time.time()
    assert refusal(verifier, bearer.mint(web, actor=SW, now=now - 1000), now) == "token expired"
    assert refusal(verifier, bearer.mint(web, actor=SW, now=now + 1000), now) == "token issued in the future"
    assert "longer than" in refusal(verifier, bearer.mint(web, actor=SW, lifetime_seconds=3600))
    message_signature = web.signature({"id": "x", "type": "t", "data": {}})
    assert "not a read token" in refusal(verifier, message_signature)
    assert refusal(verifier, "not.a.token") == "signature: not a compact JWS"


def test_a_token_whose_signature_was_checked_once_is_still_refused_once_expired_and_a_forgery_never_passes(
        keys, verifier):
    """The signature of a token sent again is checked once (bearer._signed_by); its expiry on every use."""
    web = signing.load_signer(keys, "web")
    now = time.time()
    token = bearer.mint(web, actor=SW, now=now)
    assert bearer.verify(verifier, token, now).worker_id == "sw-1"
    assert bearer.verify(verifier, token, now + 60).worker_id == "sw-1"
    assert refusal(verifier, token, now + bearer.LIFETIME_SECONDS + 120) == "token expired"
    header, payload, signature = token.split(".")
    forged = ".".join((header, payload, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")))
    for _ in range(2):
        assert refusal(verifier, forged, now) != ""


def test_an_actor_that_is_not_a_worker_is_refused(keys, verifier):
    web = signing.load_signer(keys, "web")
    for actor in ({"worker_id": "", "roles": [], "team_ids": []}, {"worker_id": "w\n1", "roles": [], "team_ids": []},
                  {"worker_id": "w1", "roles": "head_of_service", "team_ids": []}, {"worker_id": "w1"}):
        assert refusal(verifier, bearer.mint(web, actor=actor)).startswith("actor:")


def test_read_token_tool_makes_a_worker_token_with_development_keys_only(keys, verifier, tmp_path):
    token = cli.read_token(keys, "web", cli.actor_of("sw-1", "social_worker", "t1"), PERSON, 300)
    reader = bearer.verify(verifier, token)
    assert (reader.worker_id, reader.grant.person_id if reader.grant else None) == ("sw-1", PERSON)
    production = tmp_path / "production"
    signing.make_keys(production, development=False)
    with pytest.raises(cli.NotDevelopment):
        cli.read_token(production, "web", None, None, 300)
    with pytest.raises(ValueError):
        cli.read_token(keys, "web", None, PERSON, 300)  # a grant is for a worker



async def test_the_desks_reads_carry_the_signed_in_worker_and_the_grant_only_after_its_check(keys, verifier):
    """The desk's HTTP client mints per request from the request's context (services/web/pages.py sets it);
    another request's worker never leaks into the next."""
    seen: list[bearer.Reader] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(bearer.verify(verifier, request.headers["authorization"].removeprefix("Bearer ")))
        return httpx.Response(200, json={})

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer),
                             auth=testing.BearerAuth(lambda: signing.load_signer(keys, "web")))

    async def a_page_request() -> None:
        bearer.act_for(SW)
        await http.get("http://referrals/people")
        with bearer.as_component():
            await http.get("http://workflow/people/x/steps")
        bearer.grant(PERSON, "relationship")
        await http.get(f"http://referrals/people/{PERSON}")

    async def another_request() -> None:
        await http.get("http://referrals/people")

    await asyncio.create_task(a_page_request())  # each request runs as its own task in the desk's server
    await asyncio.create_task(another_request())
    await http.aclose()
    assert [(r.worker_id, r.grant) for r in seen] == [
        ("sw-1", None), ("", None), ("sw-1", bearer.Grant(PERSON, "relationship")), ("", None)]


async def test_reads_with_the_same_reader_and_grant_reuse_a_token_while_it_has_most_of_its_life(keys, monkeypatch):
    """Issue #18 §5: one page's reads send one token, not one minted each; another worker, another grant or the
    component itself get their own, and a token older than REUSE_SECONDS is not sent again."""
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers["authorization"])
        return httpx.Response(200, json={})

    web = signing.load_signer(keys, "web")
    http = httpx.AsyncClient(transport=httpx.MockTransport(answer), auth=testing.BearerAuth(lambda: web))
    clock = [time.time()]
    monkeypatch.setattr(bearer.time, "time", lambda: clock[0])

    async def reads() -> None:
        bearer.act_for(SW)
        await asyncio.gather(*(http.get("http://referrals/people") for _ in range(3)))
        bearer.grant(PERSON, "relationship")
        await asyncio.gather(*(http.get(f"http://referrals/people/{PERSON}") for _ in range(3)))
        with bearer.as_component():
            await http.get("http://workflow/people/x/steps")
        bearer.act_for({**SW, "worker_id": "sw-2"})
        await http.get("http://referrals/people")
        bearer.act_for(SW)
        await http.get("http://referrals/people")
        clock[0] += bearer.REUSE_SECONDS
        await http.get("http://referrals/people")

    await asyncio.create_task(reads())
    await http.aclose()
    assert len(set(sent[:3])) == 1 and len(set(sent[3:6])) == 1
    assert sent[8] == sent[0]  # the worker's own token again, for their next page
    assert len({sent[0], sent[3], sent[6], sent[7], sent[9]}) == 5
