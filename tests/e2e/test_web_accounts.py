"""Safe accounts on Tessera desk (issue #21 §5), each desk on a database of its own: demo accounts only in
development, production defaults (HSTS, Secure cookies), sign-in rate limits that lock nobody out, and argon2 that
leaves the event loop free."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import yaml
from argon2 import PasswordHasher

from services import web
from shared import audit
from shared.testing import ServiceProcess, create_database, poll_until
from tests.e2e.web_client import CSRF, Desk

pytestmark = pytest.mark.e2e
DEMO = tuple(u["user_id"] for u in yaml.safe_load((Path(web.__file__).parent / "users.yaml").read_text()))


async def fresh_database(infra) -> str:
    return await create_database(infra.dsn, "tessera_web")


def desk_process(infra, dsn: str, **env: str) -> ServiceProcess:
    return ServiceProcess("web", {**infra.env, "DATABASE_URL": dsn, **env}, infra.log_dir)


async def started(process: ServiceProcess) -> ServiceProcess:
    process.start()
    await process.ready()
    return process


def from_address(desk: Desk, address: str) -> Desk:
    """The desk's requests come from another loopback address (another computer, to the rate limits)."""
    desk.http = httpx.AsyncClient(base_url=desk.http.base_url, follow_redirects=True, timeout=30,
                                  transport=httpx.AsyncHTTPTransport(local_address=address))
    return desk


def set_cookies(response: httpx.Response) -> dict[str, str]:
    return {c.split("=", 1)[0]: c for c in response.headers.get_list("set-cookie")}


async def test_demo_accounts_exist_only_in_development_and_switching_them_off_disables_them(infra):
    dsn = await fresh_database(infra)
    development = await started(desk_process(infra, dsn, TESSERA_ENVIRONMENT="development"))
    try:
        async with httpx.AsyncClient(base_url=development.url) as http:
            page = await http.get("/login")
            assert "Demo accounts" in page.text and "tessera-demo" in page.text
            assert "strict-transport-security" not in page.headers  # make run serves plain HTTP
            assert "secure" not in set_cookies(page)["tessera_login_csrf"].lower()
            assert (await http.get("/openapi.json")).status_code == 200  # a developer's map, in development only
        desk = Desk(development.url)
        assert (await desk.sign_in("hub")).url.path == "/work"
    finally:
        development.stop()

    refused = desk_process(infra, dsn, WEB_SEED_DEMO_USERS="true")  # production is the default
    refused.start()
    assert refused.process is not None and await asyncio.to_thread(refused.process.wait, 60) != 0
    assert "refuses to start: WEB_SEED_DEMO_USERS=true is refused in production" in refused.log_text()

    switched_off = await started(desk_process(infra, dsn, TESSERA_ENVIRONMENT="development",
                                              WEB_SEED_DEMO_USERS="false"))
    session = desk.http.cookies
    await desk.close()
    desk = Desk(switched_off.url)
    desk.http.cookies = session  # cookies are not per port: the same browser, the desk restarted
    try:
        assert (await desk.get("/work")).url.path == "/login"  # the demo session ended
        assert (await desk.sign_in("hub")).status_code == 401
        assert "Demo accounts" not in (await desk.get("/login")).text
    finally:
        switched_off.stop()
        await desk.close()
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM web.users WHERE active AND demo") == 0
        disabled = await conn.fetch("SELECT actor_id, object_id FROM web.audit_log WHERE action = 'account.disabled'")
        assert sorted(r["object_id"] for r in disabled) == sorted(DEMO)
        assert {r["actor_id"] for r in disabled} == {"system:web"}
        await conn.execute("INSERT INTO web.users (user_id, display_name, password_hash, roles, team_ids)"
                           " VALUES ('prod.sw', 'Pat Production', $1, '{social_worker}', '{adult-carers}')",
                           PasswordHasher().hash("a-production-password"))
    finally:
        await conn.close()

    production = await started(desk_process(infra, dsn))  # no demo account is active: it starts
    try:
        async with httpx.AsyncClient(base_url=production.url) as http:
            page = await http.get("/login")
            assert "Demo accounts" not in page.text and "tessera-demo" not in page.text
            for hidden in ("/docs", "/redoc", "/openapi.json"):  # issue #21 §3: no API map for strangers
                assert (await http.get(hidden)).status_code == 404, hidden
            assert (await http.get("/metrics")).status_code == 200
            assert page.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
            login_cookie = set_cookies(page)["tessera_login_csrf"]
            assert "; secure" in login_cookie.lower() and "httponly" in login_cookie.lower()
            csrf = login_cookie.split("=", 1)[1].split(";", 1)[0]
            token = CSRF.search(page.text)
            assert token
            signed_in = await http.post("/login", headers={"Cookie": f"tessera_login_csrf={csrf}"}, data={
                "username": "prod.sw", "password": "a-production-password", "csrf_token": token.group(1)})
            assert signed_in.status_code == 303 and signed_in.headers["location"] == "/work"
            session = set_cookies(signed_in)["tessera_session"].lower()
            assert "; secure" in session and "httponly" in session and "samesite=lax" in session
    finally:
        production.stop()


@pytest.fixture(scope="module")
async def limited_desk(infra) -> AsyncIterator[ServiceProcess]:
    """A development desk whose sign-in limits are small: 3 failures per account, 6 per address, in 15 s.

    The window is long enough that a loaded CI machine makes its six guesses inside it (at 3 s one run did not,
    and the seventh sign-in went through to a /work page no service answered here)."""
    process = await started(desk_process(
        infra, await fresh_database(infra), TESSERA_ENVIRONMENT="development", WEB_SIGN_IN_WINDOW_SECONDS="15",
        WEB_SIGN_IN_FAILURES_PER_ACCOUNT="3", WEB_SIGN_IN_FAILURES_PER_ADDRESS="6"))
    yield process
    process.stop()


async def test_failed_sign_ins_are_answered_429_from_that_address_and_lock_nobody_out(limited_desk):
    """Issue #21 §5: per-address limits, 429, no lock-out anyone can trigger; the right password works after."""
    guesser, colleague, elsewhere = Desk(limited_desk.url), Desk(limited_desk.url), Desk(limited_desk.url)
    from_address(colleague, "127.0.0.2")
    from_address(elsewhere, "127.0.0.3")
    try:
        for _ in range(3):
            assert (await guesser.sign_in("tm", "a-wrong-guess")).status_code == 401
        throttled = await guesser.sign_in("tm")  # even the right password: nothing is checked
        assert throttled.status_code == 429 and "Too many sign-ins" in throttled.text
        assert throttled.headers["retry-after"] == "15"
        assert (await colleague.sign_in("tm")).url.path == "/work"  # tm is not locked out
        assert (await guesser.sign_in("sw")).url.path == "/work"  # other accounts from the same address

        for n in range(6):  # one address guessing at many accounts
            assert (await elsewhere.sign_in(f"someone-{n}", "a-wrong-guess")).status_code == 401
        assert (await elsewhere.sign_in("hub")).status_code == 429

        async def signed_in_after_the_window() -> bool:
            return (await guesser.sign_in("tm")).url.path == "/work"  # (a page no other service answers here)
        await poll_until(signed_in_after_the_window, timeout=45, what="tm signs in once the window has passed")
    finally:
        for desk in (guesser, colleague, elsewhere):
            await desk.close()


async def test_a_burst_of_sign_ins_does_not_stall_other_pages(limited_desk):
    """Issue #21 §5: argon2 runs in worker threads; a page answers while 20 sign-ins are being checked."""
    accounts = [DEMO[n % 9] for n in range(20)]  # never tm, whom the other test guesses at
    desks = [Desk(limited_desk.url) for _ in accounts]
    bystander = Desk(limited_desk.url)
    try:
        forms = []
        for desk, user in zip(desks, accounts, strict=True):
            token = CSRF.search((await desk.http.get("/login")).text)
            assert token
            forms.append({"username": user, "password": "tessera-demo", "csrf_token": token.group(1)})
        burst = [asyncio.create_task(d.http.post("/login", data=f)) for d, f in zip(desks, forms, strict=True)]
        await asyncio.wait(burst, return_when=asyncio.FIRST_COMPLETED)  # passwords are being checked now
        page = await bystander.http.get("/login")
        still_checking = sum(not task.done() for task in burst)
        assert page.status_code == 200
        # with argon2 on the event loop the page waits behind most of them (6 to 8 of 20 left when it answers)
        assert still_checking >= 12, f"the page waited for {20 - still_checking} of 20 sign-ins"
        assert all(r.url.path == "/work" for r in await asyncio.gather(*burst))
    finally:
        for desk in (*desks, bystander):
            await desk.close()


async def test_a_failed_sign_in_a_sign_in_and_a_sign_out_are_in_the_verifiable_audit_chain(limited_desk):
    """Issue #21 §5: the desk's own acts are rows of the web schema's tamper-evident chain, with the address."""
    desk = Desk(limited_desk.url)
    try:
        await desk.sign_in("gso", "not-the-password")
        await desk.sign_in("gso")
        await desk.get("/people")  # a page only the desk answers: its sign-out form
        assert (await desk.post("/logout")).url.path == "/login"
    finally:
        await desk.close()
    dsn = limited_desk._env["DATABASE_URL"]
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT actor_id, action, object_id, details FROM web.audit_log"
                                " WHERE object_id = 'gso' ORDER BY seq DESC LIMIT 3")
        assert [(r["actor_id"], r["action"]) for r in reversed(rows)] == [
            ("anonymous", "account.sign_in_failed"), ("gso", "account.signed_in"), ("gso", "account.signed_out")]
        assert [json.loads(r["details"])["address"] for r in rows] == ["127.0.0.1"] * 3
        assert (await audit.verify(conn, "web")).ok
    finally:
        await conn.close()
