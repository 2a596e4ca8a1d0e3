"""Local accounts: argon2 password hashes, signed session cookies, CSRF tokens, sign-in limits, the demo users.

The web service is the only place a signed-in user becomes a command's `actor`: it is built here,
from the users table, and never from anything the browser sends.
"""

import asyncio
import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, URLSafeSerializer

from services.web import store
from services.web.settings import WebSettings
from shared.actor import (
    DASHBOARD_ROLES,
    DUTY_ROLES,
    MANAGER_ROLES,
    ROLE_NAMES,
    TRAY_REVIEW_ROLES,
    TRAY_ROLES,
    held_roles,
)

SESSION_COOKIE = "tessera_session"
LOGIN_CSRF_COOKIE = "tessera_login_csrf"
ADMINISTRATOR = "administrator"  # manages accounts; does no casework
# stored instead of a hash for a council (OIDC) account: no password can ever match it
NO_LOCAL_PASSWORD = "!oidc: signs in with the council's provider only"

_hasher = PasswordHasher()
# verifying against this keeps an unknown user's sign-in as slow as a known one's
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class User:
    """The signed-in worker, as the users table holds them."""

    user_id: str
    name: str
    roles: tuple[str, ...]
    team_ids: tuple[str, ...]
    csrf_token: str = ""
    flash: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def is_manager(self) -> bool:
        return bool(MANAGER_ROLES & set(self.roles))

    @property
    def sees_dashboard(self) -> bool:
        return bool(DASHBOARD_ROLES & set(self.roles))

    @property
    def runs_trays(self) -> bool:
        return bool(TRAY_ROLES & set(self.roles)) or "head_of_service" in self.roles \
            or "assistant_team_manager" in self.roles

    @property
    def reviews_trays(self) -> bool:
        return bool(TRAY_REVIEW_ROLES & held_roles(self.roles))

    @property
    def does_duty(self) -> bool:
        return bool(DUTY_ROLES & held_roles(self.roles))

    @property
    def places_on_trays(self) -> bool:
        return bool(TRAY_ROLES & set(self.roles))

    @property
    def is_administrator(self) -> bool:
        return ADMINISTRATOR in self.roles

    def actor(self) -> dict[str, Any]:
        """The `actor` of every command this user sends (docs/contracts.md)."""
        return {"worker_id": self.user_id, "roles": list(self.roles), "team_ids": list(self.team_ids)}

    def role_names(self) -> str:
        return ", ".join(ROLE_NAMES.get(r, r) for r in self.roles)


async def hash_password(password: str) -> str:
    """argon2id, in a worker thread: it takes tens of milliseconds of CPU on purpose."""
    return await asyncio.to_thread(_hasher.hash, password)


def check_password(password_hash: str | None, password: str) -> tuple[bool, str | None]:
    """Whether the password fits the hash, and a new hash when the parameters have moved on."""
    try:
        _hasher.verify(password_hash or _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, None
    if password_hash is None:
        return False, None
    return True, _hasher.hash(password) if _hasher.check_needs_rehash(password_hash) else None


class Sessions:
    """Signed session cookies whose token is kept (hashed) in the sessions table."""

    def __init__(self, settings: WebSettings, secret_key: str) -> None:
        self._settings = settings
        self._signer = URLSafeSerializer(secret_key, salt="tessera-session")
        self._login_signer = URLSafeSerializer(secret_key, salt="tessera-login-csrf")

    def _limits(self) -> tuple[datetime, datetime]:
        now = datetime.now(UTC)
        return (now - timedelta(minutes=self._settings.web_session_idle_minutes),
                now - timedelta(hours=self._settings.web_session_max_hours))

    @staticmethod
    def token_hash(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    async def open(self, pool: asyncpg.Pool, user_id: str, id_token: str | None = None) -> str:
        """A new session for the user (a council one keeps its ID token for signing out); the cookie value."""
        token = secrets.token_urlsafe(32)
        await store.create_session(pool, self.token_hash(token), user_id, secrets.token_urlsafe(32), id_token)
        await store.delete_expired_sessions(pool, *self._limits())
        return self._signer.dumps(token)

    def token(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            token = self._signer.loads(cookie)
        except BadSignature:
            return None
        return token if isinstance(token, str) else None

    async def user(self, pool: asyncpg.Pool, cookie: str | None) -> User | None:
        token = self.token(cookie)
        if token is None:
            return None
        row = await store.touch_session(pool, self.token_hash(token), *self._limits())
        if row is None:
            return None
        return User(row["user_id"], row["display_name"], tuple(row["roles"]), tuple(row["team_ids"]),
                    row["csrf_token"], row["flash"])

    async def close(self, pool: asyncpg.Pool, cookie: str | None) -> str | None:
        """End the session; the council ID token it was opened with, if any."""
        token = self.token(cookie)
        return None if token is None else await store.delete_session(pool, self.token_hash(token))

    async def flash(self, pool: asyncpg.Pool, cookie: str | None, flash: dict[str, Any] | None) -> None:
        token = self.token(cookie)
        if token is not None:
            await store.set_flash(pool, self.token_hash(token), flash)

    def login_csrf(self) -> tuple[str, str]:
        """A token for the sign-in form and the signed cookie that must come back with it."""
        token = secrets.token_urlsafe(24)
        return token, self._login_signer.dumps(token)

    def login_csrf_ok(self, cookie: str | None, sent: str | None) -> bool:
        if not cookie or not sent:
            return False
        try:
            expected = self._login_signer.loads(cookie)
        except BadSignature:
            return False
        return isinstance(expected, str) and hmac.compare_digest(expected, sent)


def csrf_ok(user: User, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(user.csrf_token, sent or "")


class SignIn(enum.Enum):
    """The answer to a password sign-in."""

    OK = "ok"
    REFUSED = "refused"
    THROTTLED = "throttled"  # too many failures from this address: 429, nothing checked


async def sign_in(pool: asyncpg.Pool, settings: WebSettings, user_id: str, password: str,
                  address: str) -> tuple[SignIn, str | None]:
    """Check a password sign-in and audit it; the outcome and, when OK, the user id.

    Failures are counted per address (to this account and to any), never per account alone: whoever guesses
    from one address is slowed down, and nobody can lock named staff out. argon2 runs in a worker thread so a
    burst of sign-ins does not stall every other page.
    """
    user_id = user_id.strip().lower()
    window = settings.web_sign_in_window_seconds
    if await store.sign_in_throttled(pool, address, user_id, window, settings.web_sign_in_failures_per_account,
                                     settings.web_sign_in_failures_per_address):
        return SignIn.THROTTLED, None
    row = await store.load_user(pool, user_id)
    ok, rehash = await asyncio.to_thread(check_password, row["password_hash"] if row else None, password)
    why = _refusal(row, ok)
    async with pool.acquire() as conn, conn.transaction():
        if why:
            await store.record_sign_in_failure(conn, address, user_id, window)
            await store.audit_act(conn, "account.sign_in_failed", actor="anonymous",
                                  object_id=row["user_id"] if row else None, details={"address": address, "why": why})
            return SignIn.REFUSED, None
        assert row is not None
        if rehash:
            await store.rehash(conn, user_id, rehash)
        await store.forget_sign_in_failures(conn, address, user_id)
        await store.audit_act(conn, "account.signed_in", actor=user_id, roles=row["roles"], object_id=user_id,
                              details={"address": address, "with": "password"})
    return SignIn.OK, user_id


def _refusal(row: asyncpg.Record | None, password_ok: bool) -> str | None:
    """Why the sign-in is refused (audited, never shown: the page says only "not right"), or None."""
    if row is None:
        return "no such account"
    if row["sign_in"] != "local":
        return "a council account"
    if not row["active"]:
        return "account disabled"
    return None if password_ok else "wrong password"


def demo_users(path: Path) -> list[dict[str, Any]]:
    return yaml.safe_load(path.read_text()) or []


async def seed_demo_users(pool: asyncpg.Pool, path: Path, password: str) -> list[str]:
    """Add the demo accounts that are missing (development only); existing accounts are left as they are."""
    added = []
    existing = {r["user_id"] for r in await store.every_user(pool)}
    for user in demo_users(path):
        if user["user_id"] in existing:
            continue
        if await store.insert_user_if_missing(pool, user["user_id"], user["name"], await hash_password(password),
                                              list(user.get("roles", [])), list(user.get("teams", [])), demo=True):
            added.append(user["user_id"])
    return added


async def disable_demo_users(pool: asyncpg.Pool) -> list[str]:
    """With the demo accounts switched off, none of them can sign in any more (audited)."""
    async with pool.acquire() as conn, conn.transaction():
        disabled = await store.disable_demo_accounts(conn)
        for user_id in disabled:
            await store.audit_act(conn, "account.disabled", actor="system:web", object_id=user_id,
                                  details={"why": "demo accounts are switched off"})
    return disabled
