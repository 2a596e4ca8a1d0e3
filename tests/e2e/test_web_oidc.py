"""Council sign-in (OIDC): a tiny in-test provider (discovery, authorize, token, JWKS) on a free port and a
second web process with the WEB_OIDC_* settings; the authorization-code flow with PKCE end to end."""

import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from shared.testing import ServiceProcess, free_port
from tests.e2e.web_client import Desk

pytestmark = pytest.mark.e2e
CLIENT_ID, CLIENT_SECRET = "tessera-desk", "s3cret-of-the-council"


class Provider:
    """Discovery, authorize (auto-approves as `self.claims`), token endpoint, JWKS and end-session (logout)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})
        self.claims: dict[str, Any] = {}
        self.signing_key = self.key  # a test may sign with a key the JWKS does not publish
        self.codes: dict[str, dict[str, Any]] = {}
        self.authorize_queries: list[dict[str, str]] = []
        self.id_tokens: list[str] = []  # every ID token issued, newest last
        self.logouts: list[dict[str, str]] = []  # the query of each RP-initiated logout
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _json(self, body: Any, status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                url = urllib.parse.urlsplit(self.path)
                if url.path == "/.well-known/openid-configuration":
                    self._json({"issuer": provider.issuer, "authorization_endpoint": f"{provider.issuer}/authorize",
                                "token_endpoint": f"{provider.issuer}/token", "jwks_uri": f"{provider.issuer}/jwks",
                                "end_session_endpoint": f"{provider.issuer}/logout",
                                "response_types_supported": ["code"], "id_token_signing_alg_values_supported":
                                ["RS256"], "subject_types_supported": ["public"]})
                elif url.path == "/jwks":
                    self._json(KeySet([provider.key]).as_dict(private=False))
                elif url.path == "/authorize":
                    query = dict(urllib.parse.parse_qsl(url.query))
                    provider.authorize_queries.append(query)
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = query
                    back = f"{query['redirect_uri']}?{urllib.parse.urlencode({'code': code, 'state': query['state']})}"
                    self.send_response(302)
                    self.send_header("Location", back)
                    self.end_headers()
                elif url.path == "/logout":
                    query = dict(urllib.parse.parse_qsl(url.query))
                    provider.logouts.append(query)
                    self.send_response(302)
                    self.send_header("Location", query["post_logout_redirect_uri"])
                    self.end_headers()
                else:
                    self._json({"error": "not_found"}, 404)

            def do_POST(self) -> None:  # noqa: N802
                form = dict(urllib.parse.parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
                basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
                asked = provider.codes.pop(form.get("code", ""), None)
                challenge = base64.urlsafe_b64encode(hashlib.sha256(
                    form.get("code_verifier", "").encode()).digest()).rstrip(b"=").decode()
                if self.headers.get("Authorization") != f"Basic {basic}" or asked is None \
                        or challenge != asked.get("code_challenge") \
                        or form.get("redirect_uri") != asked["redirect_uri"]:
                    self._json({"error": "invalid_grant"}, 400)
                    return
                now = int(time.time())
                claims = {"iss": provider.issuer, "aud": CLIENT_ID, "sub": "council-123", "iat": now,
                          "exp": now + 300, "nonce": asked["nonce"], **provider.claims}
                id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, provider.signing_key)
                provider.id_tokens.append(id_token)
                self._json({"access_token": "at", "token_type": "Bearer", "expires_in": 300, "id_token": id_token})

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def new_sub() -> str:
    """A council identity of its own: accounts are bound to the issuer and `sub`."""
    return f"council-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    stub = Provider()
    yield stub
    stub.server.shutdown()


@pytest.fixture
async def council_web(infra, web, provider: Provider) -> AsyncIterator[ServiceProcess]:
    """A second web replica (same database) with council sign-in set up."""
    process = ServiceProcess("web", {**infra.env, "TESSERA_ENVIRONMENT": "development",
                                     "WEB_OIDC_ISSUER": provider.issuer, "WEB_OIDC_CLIENT_ID": CLIENT_ID,
                                     "WEB_OIDC_CLIENT_SECRET": CLIENT_SECRET,
                                     **{k: v for k, v in web._env.items() if k.endswith("_URL")}},
                             infra.log_dir)
    process.start()
    try:
        await process.ready()
        yield process
    finally:
        process.stop()


async def test_without_oidc_settings_the_sign_in_page_offers_local_accounts_only(web):
    async with httpx.AsyncClient(base_url=web.url) as http:
        page = await http.get("/login")
        assert "Sign in with your council account" not in page.text and "User name" in page.text
        assert (await http.get("/login/oidc")).status_code == 404


async def test_council_sign_in_redirects_to_the_issuer_and_signs_the_mapped_user_in(council_web, provider):
    provider.claims = {"sub": new_sub(), "preferred_username": "Council.TM", "name": "Chris Council",
                       "tessera_roles": ["team_manager"], "tessera_teams": ["adult-front-door"]}
    desk = Desk(council_web.url)
    try:
        page = await desk.get("/login")
        assert "Sign in with your council account" in page.text and "User name" in page.text
        start = await desk.http.get("/login/oidc?next=/tray", follow_redirects=False)
        assert start.status_code == 303
        location = urllib.parse.urlsplit(start.headers["location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == f"{provider.issuer}/authorize"
        query = dict(urllib.parse.parse_qsl(location.query))
        assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
        assert query["redirect_uri"] == f"{council_web.url}/login/oidc/callback"
        assert "openid" in query["scope"].split() and query["code_challenge_method"] == "S256"
        assert query["state"] and query["nonce"] and query["code_challenge"]

        # the whole round trip: authorize → callback → token + JWKS → a session as the mapped user
        signed_in = await desk.http.get("/login/oidc?next=/tray")
        assert signed_in.url.path == "/tray", signed_in.text[:300]
        assert "Chris Council" in signed_in.text and "Planned Work Tray: Adult Social Care Front Door" in signed_in.text

        # a name in the token names no account: "sw" without roles or a verified email is nobody (issue #21 §5)
        provider.claims = {"sub": new_sub(), "preferred_username": "sw", "name": "whoever"}
        other = Desk(council_web.url)
        try:
            refused = await other.http.get("/login/oidc")
            assert refused.url.path == "/login" and "no Tessera account" in refused.text
        finally:
            await other.close()

        # a callback whose state is not the browser's is refused
        forged = await Desk(council_web.url).http.get("/login/oidc/callback?code=x&state=forged")
        assert forged.url.path == "/login" and "Council sign-in did not work" in forged.text
    finally:
        await desk.close()


async def test_an_unknown_council_user_without_role_claims_is_refused(council_web, provider):
    provider.claims = {"sub": new_sub(), "preferred_username": "nobody-here"}
    desk = Desk(council_web.url)
    try:
        page = await desk.http.get("/login/oidc")
        assert page.url.path == "/login" and "no Tessera account" in page.text
    finally:
        await desk.close()


async def test_an_id_token_of_another_issuer_audience_nonce_key_or_time_signs_nobody_in(council_web, provider, db):
    """Issue #21: the desk checks the ID token itself (OWASP ASVS V3.5): each forgery is refused, and audited."""
    now = int(time.time())
    role = {"tessera_roles": ["team_manager"], "tessera_teams": ["adult-front-door"]}
    forgeries = {"another issuer": {"iss": "http://127.0.0.1:1/evil"}, "another audience": {"aud": "someone-else"},
                 "expired": {"iat": now - 900, "exp": now - 600}, "a nonce of another sign-in": {"nonce": "replayed"}}
    try:
        for why, forged in [*forgeries.items(), ("a key the provider does not publish", {})]:
            provider.claims = {"sub": new_sub(), "name": "Forged Council", **role, **forged}
            if not forged:
                provider.signing_key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
            desk = Desk(council_web.url)
            try:
                refused = await desk.http.get("/login/oidc?next=/tray")
                assert refused.url.path == "/login", why
                assert "ID token did not check out" in urllib.parse.unquote_plus(str(refused.url)), why
                assert (await desk.http.get("/tray")).url.path == "/login", why  # no session was opened
            finally:
                await desk.close()
    finally:
        provider.signing_key = provider.key
    assert await db.fetchval("SELECT count(*) FROM web.users WHERE display_name = 'Forged Council'") == 0


async def test_signing_out_of_a_council_session_ends_it_at_the_provider_too(council_web, provider):
    provider.claims = {"sub": new_sub(), "preferred_username": "council.so", "name": "Cleo Council",
                       "tessera_roles": ["senior_officer"], "tessera_teams": ["wellbeing-service-management"]}
    desk = Desk(council_web.url)
    try:
        work = await desk.get("/login/oidc")
        assert work.url.path == "/work" and "Cleo Council" in work.text
        issued = provider.id_tokens[-1]
        signed_out = await desk.post("/logout")
        # RP-initiated logout: the provider got the session's ID token and sent the browser back to sign-in
        assert provider.logouts[-1] == {"id_token_hint": issued, "client_id": CLIENT_ID,
                                        "post_logout_redirect_uri": f"{council_web.url}/login"}
        assert signed_out.url.path == "/login" and [str(r.url).split("?")[0] for r in signed_out.history] == [
            f"{council_web.url}/logout", f"{provider.issuer}/logout"]
        assert (await desk.http.get("/work")).url.path == "/login"
    finally:
        await desk.close()

    local = Desk(council_web.url)
    try:  # a local account's sign-out stays local
        await local.sign_in("hub")
        before = len(provider.logouts)
        assert (await local.post("/logout")).url.path == "/login" and len(provider.logouts) == before
    finally:
        await local.close()


async def test_a_council_account_has_no_usable_local_password_and_a_disabled_one_is_refused(council_web, provider):
    provider.claims = {"sub": new_sub(), "preferred_username": "council.gso", "name": "Gus Council",
                       "tessera_roles": ["gso"], "tessera_teams": ["wellbeing-service-north"]}
    council, admin, stranger = Desk(council_web.url), Desk(council_web.url), Desk(council_web.url)
    try:
        assert (await council.get("/login/oidc")).url.path == "/work"
        for guess in ("", "tessera-demo", "!oidc: signs in with the council's provider only"):
            assert (await stranger.sign_in("council.gso", guess)).status_code == 401

        await admin.sign_in("administrator")
        accounts = await admin.get("/admin/accounts")
        row = accounts.text.split('data-user-id="council.gso"', 1)[1].split("</tr>", 1)[0]
        assert "Council account" in row and "Reset password" not in row
        reset = await admin.post("/admin/accounts/council.gso/password", password="a-long-enough-password")
        assert "has no Tessera password" in reset.text
        assert (await stranger.sign_in("council.gso", "a-long-enough-password")).status_code == 401

        await admin.post("/admin/accounts/council.gso/disable")
        assert (await council.http.get("/work")).url.path == "/login"  # the session ended
        again = await council.http.get("/login/oidc")
        assert again.url.path == "/login" and "disabled" in again.text
    finally:
        for desk in (council, admin, stranger):
            await desk.close()


async def council_sign_in(council_web, provider: Provider, **claims: Any) -> tuple[Desk, httpx.Response]:
    provider.claims = claims
    desk = Desk(council_web.url)
    return desk, await desk.get("/login/oidc")


async def test_a_council_account_is_its_issuer_and_sub_never_the_name_the_token_gives(council_web, provider):
    """Issue #21 §5: the same preferred_username from another `sub` is another person and another account."""
    roles = {"tessera_roles": ["social_worker"], "tessera_teams": ["adult-carers"]}
    first_sub = new_sub()
    first, page = await council_sign_in(council_web, provider, sub=first_sub, preferred_username="Pat.Shared",
                                        name="Pat One", **roles)
    second, other = await council_sign_in(council_web, provider, sub=new_sub(), preferred_username="Pat.Shared",
                                          name="Pat Two", **roles)
    again, same = await council_sign_in(council_web, provider, sub=first_sub, preferred_username="someone.else",
                                        name="renamed at the council", **roles)
    try:
        assert page.url.path == other.url.path == same.url.path == "/work"
        first_id = page.text.split('data-user-id="', 1)[1].split('"', 1)[0]
        second_id = other.text.split('data-user-id="', 1)[1].split('"', 1)[0]
        assert first_id == "pat.shared" and second_id.startswith("pat.shared-") and second_id != first_id
        assert "Pat One" in page.text and "Pat Two" in other.text
        assert f'data-user-id="{first_id}"' in same.text  # a new name at the council: the same account
    finally:
        for desk in (first, second, again):
            await desk.close()


async def test_no_council_token_makes_anyone_an_administrator(council_web, provider):
    """Issue #21 §5: `preferred_username: Administrator` never becomes the local administrator, and the
    administrator role is never taken from a claim."""
    named, page = await council_sign_in(council_web, provider, sub=new_sub(), preferred_username="Administrator")
    claimed, granted = await council_sign_in(council_web, provider, sub=new_sub(), preferred_username="Administrator",
                                             name="Mallory", tessera_roles=["administrator", "team_manager"],
                                             tessera_teams=["adult-front-door"])
    only, refused = await council_sign_in(council_web, provider, sub=new_sub(), preferred_username="root",
                                          tessera_roles=["administrator"])
    try:
        assert page.url.path == "/login" and "no Tessera account" in page.text
        assert 'data-user-id="administrator"' not in granted.text and "Mallory" in granted.text
        assert 'href="/admin/accounts"' not in granted.text
        assert (await claimed.get("/admin/accounts")).status_code == 403
        assert refused.url.path == "/login" and "not Tessera roles a council sign-in can hold" in refused.text
    finally:
        for desk in (named, claimed, only):
            await desk.close()


async def test_a_council_sign_in_links_to_a_local_account_only_by_an_email_the_provider_verified(council_web,
                                                                                               provider):
    """Issue #21 §5: email linking only with `email_verified: true`; an administrator's account is never linked."""
    user_id, email = f"lk{uuid.uuid4().hex[:6]}", f"linked.{uuid.uuid4().hex[:6]}@council.example"
    admin = Desk(council_web.url)
    try:
        await admin.sign_in("administrator")
        created = await admin.post("/admin/accounts", user_id=user_id, name="Lena Linked (Social Worker)",
                                   roles="social_worker", teams="adult-carers", email=email.upper(),
                                   password="first-password-1")
        assert f"Account {user_id} created." in created.text
        await admin.post("/admin/accounts", user_id=f"{user_id}-admin", name="Ada Two (Administrator)",
                         roles="administrator", email=f"admin.{email}", password="first-password-1")
    finally:
        await admin.close()
    to_admin, not_admin = await council_sign_in(council_web, provider, sub=new_sub(), email=f"admin.{email}",
                                                email_verified=True)
    unverified, refused = await council_sign_in(council_web, provider, sub=new_sub(), email=email,
                                                email_verified=False)
    claimed, as_string = await council_sign_in(council_web, provider, sub=new_sub(), email=email,
                                               email_verified="true")
    verified_sub = new_sub()
    verified, linked = await council_sign_in(council_web, provider, sub=verified_sub, email=email,
                                             email_verified=True)
    thief, other = await council_sign_in(council_web, provider, sub=new_sub(), email=email, email_verified=True)
    back, again = await council_sign_in(council_web, provider, sub=verified_sub)  # bound now: no email needed
    try:
        assert refused.url.path == as_string.url.path == "/login" and "no Tessera account" in refused.text
        assert linked.url.path == "/work" and f'data-user-id="{user_id}"' in linked.text
        # the account is bound to the first verified identity; another `sub` with the same email is not it
        assert other.url.path == "/login" and f'data-user-id="{user_id}"' not in other.text
        assert f'data-user-id="{user_id}"' in again.text
        assert not_admin.url.path == "/login" and "no Tessera account" in not_admin.text
    finally:
        for desk in (unverified, claimed, verified, thief, back, to_admin):
            await desk.close()
