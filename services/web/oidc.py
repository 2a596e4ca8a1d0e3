"""Sign-in with a council's OpenID Connect provider: the authorization-code flow with PKCE (authlib).

The provider is found from `WEB_OIDC_ISSUER/.well-known/openid-configuration`. The ID token is checked
against the issuer's JWKS (signature, issuer, audience, expiry, nonce). Its claims name a local user:
roles and teams come from the token's claims when it carries them (the user row is created or updated
to match), else from the local users table, where the user must already exist.
"""

import secrets
import time
import urllib.parse
import warnings
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

with warnings.catch_warnings():  # authlib 1.9 announces its httpx2 move on import
    warnings.simplefilter("ignore")
    from authlib.integrations.httpx_client import AsyncOAuth2Client
from itsdangerous import BadSignature, URLSafeTimedSerializer
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from services.web import auth, store
from services.web.settings import WebSettings

STATE_COOKIE = "tessera_oidc"
STATE_MAX_AGE = 600
DISCOVERY_TTL = 3600.0


class SignInFailed(Exception):
    """The provider's answer cannot sign anyone in; the message is safe to show."""


@dataclass
class Provider:
    """The issuer's endpoints from its discovery document."""

    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    fetched: float
    end_session_endpoint: str | None = None  # RP-initiated logout, when the provider offers it


class Oidc:
    """One council provider, as the WEB_OIDC_* settings describe it."""

    def __init__(self, settings: WebSettings, secret_key: str) -> None:
        self.settings = settings
        self.issuer = settings.web_oidc_issuer.rstrip("/")
        self._signer = URLSafeTimedSerializer(secret_key, salt="tessera-oidc-state")
        self._provider: Provider | None = None

    def _client(self, redirect_uri: str) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.settings.web_oidc_client_id, client_secret=self.settings.web_oidc_client_secret,
            scope=self.settings.web_oidc_scopes, redirect_uri=redirect_uri, code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_basic", timeout=self.settings.http_timeout_seconds)

    async def provider(self) -> Provider:
        if self._provider is None or time.monotonic() - self._provider.fetched > DISCOVERY_TTL:
            async with httpx.AsyncClient(timeout=self.settings.http_timeout_seconds) as http:
                try:
                    response = await http.get(f"{self.issuer}/.well-known/openid-configuration")
                    response.raise_for_status()
                    doc = response.json()
                except (httpx.HTTPError, ValueError):
                    raise SignInFailed("the council sign-in service could not be reached") from None
            if doc.get("issuer", "").rstrip("/") != self.issuer:
                raise SignInFailed("the council sign-in service names a different issuer")
            self._provider = Provider(doc["authorization_endpoint"], doc["token_endpoint"], doc["jwks_uri"],
                                      time.monotonic(), doc.get("end_session_endpoint"))
        return self._provider

    async def start(self, redirect_uri: str, next_path: str) -> tuple[str, str]:
        """The issuer's authorize URL to send the browser to, and the signed cookie holding the flow's secrets."""
        provider = await self.provider()
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        async with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(provider.authorization_endpoint, state=state, nonce=nonce,
                                                     code_verifier=verifier)
        cookie = self._signer.dumps({"state": state, "nonce": nonce, "verifier": verifier, "next": next_path,
                                     "redirect_uri": redirect_uri})
        return url, cookie

    def pending(self, cookie: str | None, state: str | None) -> dict[str, Any]:
        """The flow this callback belongs to; refused unless the state matches the browser's cookie."""
        if not cookie or not state:
            raise SignInFailed("the sign-in took too long or was started elsewhere: try again")
        try:
            flow = self._signer.loads(cookie, max_age=STATE_MAX_AGE)
        except BadSignature:
            raise SignInFailed("the sign-in took too long or was started elsewhere: try again") from None
        if not isinstance(flow, dict) or not secrets.compare_digest(str(flow.get("state")), state):
            raise SignInFailed("the sign-in took too long or was started elsewhere: try again")
        return flow

    async def finish(self, flow: dict[str, Any], code: str) -> tuple[dict[str, Any], str]:
        """Exchange the code (with the PKCE verifier); the ID token's checked claims and the token itself."""
        provider = await self.provider()
        async with self._client(flow["redirect_uri"]) as client:
            try:
                token = await client.fetch_token(provider.token_endpoint, code=code,
                                                 code_verifier=flow["verifier"], grant_type="authorization_code")
            except Exception:  # authlib raises OAuthError and httpx errors alike
                raise SignInFailed("the council sign-in service did not accept the sign-in") from None
            try:
                jwks = (await client.get(provider.jwks_uri)).json()
            except (httpx.HTTPError, ValueError):
                raise SignInFailed("the council sign-in service's keys could not be read") from None
        id_token = token.get("id_token")
        if not id_token:
            raise SignInFailed("the council sign-in service sent no ID token")
        try:
            decoded = jwt.decode(id_token, KeySet.import_key_set(jwks))
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.settings.web_oidc_client_id},
                nonce={"essential": True, "value": flow["nonce"]},
                exp={"essential": True}, sub={"essential": True},
            ).validate(decoded.claims)
        except (JoseError, ValueError):
            raise SignInFailed("the council sign-in service's ID token did not check out") from None
        return dict(decoded.claims), id_token

    async def logout_url(self, id_token: str, post_logout_redirect_uri: str) -> str | None:
        """Where to send the browser so the provider ends its session too (RP-initiated logout); None when the
        provider offers no end_session_endpoint or cannot be reached (the local session is ended either way)."""
        try:
            endpoint = (await self.provider()).end_session_endpoint
        except SignInFailed:
            return None
        if not endpoint:
            return None
        query = urllib.parse.urlencode({"id_token_hint": id_token, "post_logout_redirect_uri": post_logout_redirect_uri,
                                        "client_id": self.settings.web_oidc_client_id})
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


def _listed(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [v for v in value.replace(",", " ").split() if v]
    if not isinstance(value, list):
        return None
    return [str(v) for v in value if str(v)]


async def local_user(pool: asyncpg.Pool, settings: WebSettings, claims: dict[str, Any]) -> str:
    """The local user id the claims map to; roles and teams from the claims when present."""
    user_id = str(claims.get(settings.web_oidc_username_claim) or claims.get("email") or "").strip().lower()
    if not user_id:
        raise SignInFailed(f"the council account has no {settings.web_oidc_username_claim} or email")
    roles = _listed(claims.get(settings.web_oidc_roles_claim))
    teams = _listed(claims.get(settings.web_oidc_teams_claim))
    if roles is not None:
        unknown = sorted(set(roles) - set(auth.ROLE_NAMES))
        roles = [r for r in roles if r in auth.ROLE_NAMES]
        if not roles:
            raise SignInFailed(f"the council account's roles are not Tessera roles: {', '.join(unknown)}")
        name = str(claims.get("name") or user_id)
        await store.upsert_oidc_user(pool, user_id, name[:200], auth.NO_LOCAL_PASSWORD, roles, teams or [])
    row = await store.load_user(pool, user_id)
    if row is None:
        raise SignInFailed("there is no Tessera account for this council account: ask an administrator")
    if not row["active"]:
        raise SignInFailed("this Tessera account is disabled: ask an administrator")
    return user_id
