"""Sign-in with a council's OpenID Connect provider: the authorization-code flow with PKCE (authlib).

The provider is found from `WEB_OIDC_ISSUER/.well-known/openid-configuration`. The ID token is checked
against the issuer's JWKS (signature, issuer, audience, expiry, nonce). The account is the one bound to the
token's issuer and `sub` (never to a name the token carries): on the first sign-in it is linked to the local
account holding the token's email when the token says `email_verified`, else created when the token carries
roles. Roles and teams come from the token's claims when present, else from the local account; no claim ever
grants `administrator`, and an administrator's account signs in locally only.
"""

import hashlib
import re
import secrets
import time
import urllib.parse
import warnings
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from itsdangerous import BadSignature, URLSafeTimedSerializer
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from services.web import auth, directory, store
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


def _oauth_client_class() -> Any:
    """authlib is the `oidc` extra (pip install tessera[oidc]): needed only where council sign-in is set up."""
    try:
        with warnings.catch_warnings():  # authlib 1.9 announces its httpx2 move on import
            warnings.simplefilter("ignore")
            from authlib.integrations.httpx_client import AsyncOAuth2Client
    except ImportError as error:
        raise RuntimeError("WEB_OIDC_ISSUER is set, so council sign-in needs authlib: install tessera[oidc]") from error
    return AsyncOAuth2Client


class Oidc:
    """One council provider, as the WEB_OIDC_* settings describe it."""

    def __init__(self, settings: WebSettings, secret_key: str) -> None:
        self.settings = settings
        self.issuer = settings.web_oidc_issuer.rstrip("/")
        self._signer = URLSafeTimedSerializer(secret_key, salt="tessera-oidc-state")
        self._provider: Provider | None = None
        self._oauth_client = _oauth_client_class()

    def _client(self, redirect_uri: str) -> Any:
        return self._oauth_client(
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


async def local_user(pool: asyncpg.Pool, settings: WebSettings, claims: dict[str, Any], address: str) -> str:
    """The local user id of the council identity (issuer, `sub`), linked or created on its first sign-in."""
    issuer, subject = str(claims["iss"]), str(claims["sub"])
    roles, teams = _roles(settings, claims), _listed(claims.get(settings.web_oidc_teams_claim))
    async with pool.acquire() as conn, conn.transaction():
        # one first sign-in of an identity at a time: two at once would both link or create
        await store.lock_council_identity(conn, issuer, subject)
        row = await store.council_account(conn, issuer, subject)
        if row is None:
            row = await _link_by_email(conn, issuer, subject, claims) or await _create(
                conn, settings, issuer, subject, claims, roles, teams)
        if auth.ADMINISTRATOR in row["roles"]:
            raise SignInFailed("an administrator's account signs in with its Tessera password, not the council's")
        if not row["active"]:
            raise SignInFailed("this Tessera account is disabled: ask an administrator")
        if roles is not None and (roles, teams or []) != (list(row["roles"]), list(row["team_ids"])):
            await store.set_roles(conn, row["user_id"], roles, teams or [])
            await directory.list_accounts(conn, [row["user_id"]])
            await store.audit_act(conn, "account.roles_from_council", actor=f"council:{issuer}",
                                  object_id=row["user_id"], details={"roles": ",".join(roles),
                                                                      "team_ids": ",".join(teams or [])})
        await store.audit_act(conn, "account.signed_in", actor=row["user_id"], roles=roles or row["roles"],
                              object_id=row["user_id"], details={"address": address, "with": "council",
                                                                 "issuer": issuer, "subject": subject})
    return row["user_id"]


def _roles(settings: WebSettings, claims: dict[str, Any]) -> list[str] | None:
    """The Tessera roles the token claims, without `administrator`; None when it claims none."""
    claimed = _listed(claims.get(settings.web_oidc_roles_claim))
    if claimed is None:
        return None
    roles = [r for r in claimed if r in auth.ROLE_NAMES and r != auth.ADMINISTRATOR]
    if not roles:
        raise SignInFailed("the council account's roles are not Tessera roles a council sign-in can hold: "
                           + ", ".join(sorted(set(claimed))))
    return roles


async def _link_by_email(conn: asyncpg.Connection, issuer: str, subject: str,
                         claims: dict[str, Any]) -> asyncpg.Record | None:
    """The local account with the token's email, linked to the identity, when the provider verified the email."""
    email = claims.get("email")
    if claims.get("email_verified") is not True or not isinstance(email, str) or not email:
        return None
    row = await store.user_by_email(conn, email)
    if row is None or auth.ADMINISTRATOR in row["roles"] or await store.is_linked(conn, issuer, row["user_id"]):
        return None
    await store.link_council_identity(conn, issuer, subject, row["user_id"])
    await store.audit_act(conn, "account.linked_to_council", actor=f"council:{issuer}", object_id=row["user_id"],
                          details={"issuer": issuer, "subject": subject, "by": "verified email"})
    return row


async def _create(conn: asyncpg.Connection, settings: WebSettings, issuer: str, subject: str,
                  claims: dict[str, Any], roles: list[str] | None, teams: list[str] | None) -> asyncpg.Record:
    """A new council account for an identity whose token carries roles; named after the username claim, made
    unique: a name already taken (by anyone, the same name from another `sub` too) gets a suffix from the `sub`."""
    if roles is None:
        raise SignInFailed("there is no Tessera account for this council account: ask an administrator")
    base = _user_id(str(claims.get(settings.web_oidc_username_claim) or claims.get("email") or "council"))
    suffix = hashlib.sha256(f"{issuer} {subject}".encode()).hexdigest()[:8]
    name = str(claims.get("name") or base)[:200]
    for user_id in (base, f"{base[:50]}-{suffix}"):
        if await store.insert_council_user(conn, user_id, name, auth.NO_LOCAL_PASSWORD, roles, teams or []):
            await store.link_council_identity(conn, issuer, subject, user_id)
            await directory.list_accounts(conn, [user_id])
            await store.audit_act(conn, "account.created", actor=f"council:{issuer}", object_id=user_id,
                                  details={"issuer": issuer, "subject": subject, "roles": ",".join(roles),
                                           "team_ids": ",".join(teams or [])})
            row = await store.load_user(conn, user_id)
            assert row is not None
            return row
    raise SignInFailed("a Tessera account could not be made for this council account: ask an administrator")


def _user_id(claimed: str) -> str:
    """A user id (lower-case letters, digits, dots, dashes, @) from what the token names the person."""
    cleaned = re.sub(r"[^a-z0-9._@-]+", "-", claimed.strip().lower()).strip(".-_@")[:50]
    return cleaned if len(cleaned) >= 2 else "council"
