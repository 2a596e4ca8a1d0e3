"""asyncpg queries for the web schema: users, sessions, council identities, sign-in failures, the break-glass
access log and the desk's entries in the audit chain."""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from shared import audit

USER_COLUMNS = "user_id, display_name, password_hash, roles, team_ids, active, sign_in, demo, email, created_at"
SOURCE = "tessera/web"


async def lock_council_identity(conn: asyncpg.Connection, issuer: str, subject: str) -> None:
    """Until the transaction ends: one first sign-in of a council identity at a time."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"council:{issuer}:{subject}")


async def load_user(conn: asyncpg.Pool | asyncpg.Connection, user_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE user_id = $1", user_id)


async def all_users(conn: asyncpg.Pool | asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(f"SELECT {USER_COLUMNS} FROM users WHERE active ORDER BY user_id")


async def every_user(conn: asyncpg.Pool | asyncpg.Connection) -> list[asyncpg.Record]:
    """Every account, disabled ones too (account management)."""
    return await conn.fetch(f"SELECT {USER_COLUMNS} FROM users ORDER BY user_id")


async def set_active(conn: asyncpg.Connection, user_id: str, active: bool) -> bool:
    """Disable (ending every session) or enable an account; False if no such user."""
    status = await conn.execute("UPDATE users SET active = $2 WHERE user_id = $1", user_id, active)
    if not active:
        await conn.execute("DELETE FROM sessions WHERE user_id = $1", user_id)
    return status.endswith(" 1")


async def set_password(conn: asyncpg.Connection, user_id: str, password_hash: str) -> bool:
    """A new password for a local account, ending every session it has (whoever held the old password is out);
    False unless a local account."""
    status = await conn.execute("UPDATE users SET password_hash = $2 WHERE user_id = $1 AND sign_in = 'local'",
                                user_id, password_hash)
    if not status.endswith(" 1"):
        return False
    await conn.execute("DELETE FROM sessions WHERE user_id = $1", user_id)
    return True


async def disable_demo_accounts(conn: asyncpg.Connection) -> list[str]:
    """Disable every active demo account, ending its sessions; the ids disabled."""
    disabled = [r["user_id"] for r in await conn.fetch(
        "UPDATE users SET active = false WHERE demo AND active RETURNING user_id")]
    await conn.execute("DELETE FROM sessions WHERE user_id = ANY($1::text[])", disabled)
    return disabled


async def audit_account(conn: asyncpg.Connection, actor: str, user_id: str, action: str,
                        details: dict[str, Any]) -> None:
    await conn.execute("INSERT INTO account_audit (actor, user_id, action, details) VALUES ($1, $2, $3, $4)",
                       actor, user_id, action, details)


async def account_audit(conn: asyncpg.Pool, limit: int = 200) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT audit_id, at, actor, user_id, action, details FROM account_audit"
                            " ORDER BY at DESC, audit_id DESC LIMIT $1", limit)


async def insert_user_if_missing(conn: asyncpg.Pool | asyncpg.Connection, user_id: str, name: str,
                                 password_hash: str, roles: list[str], team_ids: list[str], *, demo: bool = False,
                                 email: str | None = None) -> bool:
    """False when the user id (or the email) is taken."""
    status = await conn.execute(
        "INSERT INTO users (user_id, display_name, password_hash, roles, team_ids, demo, email)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        user_id, name, password_hash, roles, team_ids, demo, email)
    return status.endswith(" 1")


async def rehash(conn: asyncpg.Pool, user_id: str, password_hash: str) -> None:
    await conn.execute("UPDATE users SET password_hash = $2 WHERE user_id = $1", user_id, password_hash)


async def sign_in_throttled(conn: asyncpg.Pool, address: str, user_id: str, window_seconds: float,
                            per_account: int, per_address: int) -> bool:
    """Whether this address failed too often within the window, for this account or for any."""
    counts = await conn.fetchrow(
        "SELECT count(*) AS any_account, count(*) FILTER (WHERE user_id = $2) AS this_account"
        " FROM sign_in_failures WHERE address = $1 AND at > now() - make_interval(secs => $3)",
        address, user_id, window_seconds)
    return counts["this_account"] >= per_account or counts["any_account"] >= per_address


async def record_sign_in_failure(conn: asyncpg.Connection, address: str, user_id: str,
                                 window_seconds: float) -> None:
    await conn.execute("DELETE FROM sign_in_failures WHERE at <= now() - make_interval(secs => $1)", window_seconds)
    await conn.execute("INSERT INTO sign_in_failures (address, user_id) VALUES ($1, $2)", address, user_id)


async def forget_sign_in_failures(conn: asyncpg.Connection, address: str, user_id: str) -> None:
    await conn.execute("DELETE FROM sign_in_failures WHERE address = $1 AND user_id = $2", address, user_id)


async def audit_act(conn: asyncpg.Connection, action: str, *, actor: str, roles: Sequence[str] = (),
                    subject: str | None = None, object_id: str | None = None,
                    details: dict[str, str] | None = None) -> None:
    """One act of the desk (a sign-in, an account change, a break-glass reason) appended to the web schema's
    tamper-evident audit chain (shared/audit.py), in the caller's transaction."""
    await audit.append(conn, [audit.Entry(
        at=datetime.now(UTC), actor_id=actor, actor_roles=tuple(roles), action=action, subject=subject,
        object_id=object_id, message_id=str(uuid.uuid4()), causation_id=None, cause_type=None, source=SOURCE,
        details=details)])


async def audit_chain(conn: asyncpg.Pool, actions: Sequence[str], limit: int = 200) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT seq, at, actor_id, action, subject, object_id, details FROM audit_log"
                            " WHERE action = ANY($1::text[]) ORDER BY seq DESC LIMIT $2", list(actions), limit)


async def create_session(conn: asyncpg.Pool, token_hash: bytes, user_id: str, csrf_token: str,
                         id_token: str | None = None) -> None:
    await conn.execute("INSERT INTO sessions (token_hash, user_id, csrf_token, id_token) VALUES ($1, $2, $3, $4)",
                       token_hash, user_id, csrf_token, id_token)


# a session's idle clock moves on at most once in this long: a page read sooner writes nothing (a read-only
# transaction makes no WAL flush). The clock may lag by this much, so a session can expire up to this much
# early, never late.
TOUCH_SECONDS = 30


async def touch_session(conn: asyncpg.Pool, token_hash: bytes, idle_after: datetime,
                        created_after: datetime) -> asyncpg.Record | None:
    """The live session (and its user), its idle clock restarted if it last moved TOUCH_SECONDS ago or more;
    None if expired or unknown."""
    return await conn.fetchrow(
        "WITH live AS ("
        "  SELECT s.token_hash, s.last_seen_at, s.csrf_token, s.flash, u.user_id, u.display_name, u.roles,"
        "   u.team_ids FROM sessions s JOIN users u ON u.user_id = s.user_id"
        "  WHERE s.token_hash = $1 AND u.active AND s.last_seen_at > $2 AND s.created_at > $3),"
        " touched AS ("
        "  UPDATE sessions s SET last_seen_at = now() FROM live"
        "  WHERE s.token_hash = live.token_hash AND live.last_seen_at < now() - make_interval(secs => $4))"
        " SELECT csrf_token, flash, user_id, display_name, roles, team_ids FROM live",
        token_hash, idle_after, created_after, TOUCH_SECONDS)


async def delete_session(conn: asyncpg.Pool, token_hash: bytes) -> str | None:
    """End the session; the council ID token it was opened with, if any (for the provider's logout)."""
    return await conn.fetchval("DELETE FROM sessions WHERE token_hash = $1 RETURNING id_token", token_hash)


async def delete_expired_sessions(conn: asyncpg.Pool, idle_after: datetime, created_after: datetime) -> None:
    await conn.execute("DELETE FROM sessions WHERE last_seen_at <= $1 OR created_at <= $2", idle_after,
                       created_after)


async def set_flash(conn: asyncpg.Pool, token_hash: bytes, flash: dict[str, Any] | None) -> None:
    await conn.execute("UPDATE sessions SET flash = $2 WHERE token_hash = $1", token_hash, flash)


async def record_access(conn: asyncpg.Pool | asyncpg.Connection, user_id: str, roles: list[str], team_ids: list[str],
                        person_id: uuid.UUID, reason: str, kind: str = "break_glass") -> None:
    await conn.execute(
        "INSERT INTO access_log (user_id, roles, team_ids, person_id, reason, kind) VALUES ($1, $2, $3, $4, $5, $6)",
        user_id, roles, team_ids, person_id, reason, kind)


async def recent_access(conn: asyncpg.Pool, user_id: str, person_id: uuid.UUID, since: datetime) -> str | None:
    """The reason of the user's latest break-glass access to the person since `since`."""
    return await conn.fetchval(
        "SELECT reason FROM access_log WHERE user_id = $1 AND person_id = $2 AND at > $3 AND kind = 'break_glass'"
        " ORDER BY at DESC LIMIT 1",
        user_id, person_id, since)


async def access_log(conn: asyncpg.Pool, limit: int = 200) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT access_id, user_id, roles, team_ids, person_id, reason, kind, at FROM access_log"
        " ORDER BY at DESC LIMIT $1", limit)


async def accounts_for_listing(conn: asyncpg.Connection, user_ids: Sequence[str] | None) -> list[asyncpg.Record]:
    """The accounts (all when `user_ids` is None) for the staff directory, row-locked FOR SHARE: a change of the
    same account in another transaction is listed after this one, never before."""
    return await conn.fetch("SELECT user_id, display_name, roles, team_ids, active, listed FROM users"
                            " WHERE $1::text[] IS NULL OR user_id = ANY($1::text[]) ORDER BY user_id FOR SHARE",
                            None if user_ids is None else list(user_ids))


async def note_listed(conn: asyncpg.Connection, listings: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """What the staff directory said of each account, in the transaction that said it."""
    await conn.executemany("UPDATE users SET listed = $2 WHERE user_id = $1", listings)


async def access_log_of(conn: asyncpg.Pool, person_id: uuid.UUID) -> list[asyncpg.Record]:
    """The desk's access records of one person (break-glass, self-allocation, tray placement), newest first."""
    return await conn.fetch(
        "SELECT access_id, user_id, roles, team_ids, person_id, reason, kind, at FROM access_log"
        " WHERE person_id = $1 ORDER BY at DESC", person_id)


async def secret(conn: asyncpg.Pool, name: str, make: str) -> str:
    """A named secret, created with `make` the first time (the first replica's value wins)."""
    await conn.execute("INSERT INTO web_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                       name, make)
    return await conn.fetchval("SELECT value FROM web_secrets WHERE name = $1", name)


async def council_account(conn: asyncpg.Connection, issuer: str, subject: str) -> asyncpg.Record | None:
    """The account bound to this council identity (issuer and `sub`), if any."""
    return await conn.fetchrow(
        f"SELECT {', '.join('u.' + c for c in USER_COLUMNS.split(', '))} FROM council_identities i"
        " JOIN users u USING (user_id) WHERE i.issuer = $1 AND i.subject = $2", issuer, subject)


async def user_by_email(conn: asyncpg.Connection, email: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE lower(email) = lower($1)", email)


async def is_linked(conn: asyncpg.Connection, issuer: str, user_id: str) -> bool:
    """Whether the account is already bound to an identity of this issuer (another `sub`: another person)."""
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM council_identities WHERE issuer = $1 AND user_id = $2)",
                               issuer, user_id)


async def link_council_identity(conn: asyncpg.Connection, issuer: str, subject: str, user_id: str) -> None:
    await conn.execute("INSERT INTO council_identities (issuer, subject, user_id) VALUES ($1, $2, $3)",
                       issuer, subject, user_id)


async def insert_council_user(conn: asyncpg.Connection, user_id: str, name: str, no_password: str,
                              roles: list[str], team_ids: list[str]) -> bool:
    """A new council account: signs in only through the provider (`no_password` is no hash at all)."""
    status = await conn.execute(
        "INSERT INTO users (user_id, display_name, password_hash, roles, team_ids, sign_in)"
        " VALUES ($1, $2, $3, $4, $5, 'oidc') ON CONFLICT (user_id) DO NOTHING",
        user_id, name, no_password, roles, team_ids)
    return status.endswith(" 1")


async def set_roles(conn: asyncpg.Connection, user_id: str, roles: list[str], team_ids: list[str]) -> None:
    await conn.execute("UPDATE users SET roles = $2, team_ids = $3 WHERE user_id = $1", user_id, roles, team_ids)
