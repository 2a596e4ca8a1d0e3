"""asyncpg queries for the web schema: users, sessions and the break-glass access log."""

import uuid
from datetime import datetime
from typing import Any

import asyncpg

USER_COLUMNS = ("user_id, display_name, password_hash, roles, team_ids, active, failed_logins, locked_until,"
                " sign_in, created_at")


async def load_user(conn: asyncpg.Pool | asyncpg.Connection, user_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE user_id = $1", user_id)


async def all_users(conn: asyncpg.Pool | asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(f"SELECT {USER_COLUMNS} FROM users WHERE active ORDER BY user_id")


async def every_user(conn: asyncpg.Pool | asyncpg.Connection) -> list[asyncpg.Record]:
    """Every account, disabled ones too (account management)."""
    return await conn.fetch(f"SELECT {USER_COLUMNS} FROM users ORDER BY user_id")


async def set_active(conn: asyncpg.Connection, user_id: str, active: bool) -> bool:
    """Disable (ending every session) or enable an account, clearing any lock-out; False if no such user."""
    status = await conn.execute("UPDATE users SET active = $2, failed_logins = 0, locked_until = NULL"
                                " WHERE user_id = $1", user_id, active)
    if not active:
        await conn.execute("DELETE FROM sessions WHERE user_id = $1", user_id)
    return status.endswith(" 1")


async def set_password(conn: asyncpg.Connection, user_id: str, password_hash: str) -> bool:
    """A new password for a local account, clearing any lock-out; False unless a local account."""
    status = await conn.execute("UPDATE users SET password_hash = $2, failed_logins = 0, locked_until = NULL"
                                " WHERE user_id = $1 AND sign_in = 'local'", user_id, password_hash)
    return status.endswith(" 1")


async def audit_account(conn: asyncpg.Connection, actor: str, user_id: str, action: str,
                        details: dict[str, Any]) -> None:
    await conn.execute("INSERT INTO account_audit (actor, user_id, action, details) VALUES ($1, $2, $3, $4)",
                       actor, user_id, action, details)


async def account_audit(conn: asyncpg.Pool, limit: int = 200) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT audit_id, at, actor, user_id, action, details FROM account_audit"
                            " ORDER BY at DESC, audit_id DESC LIMIT $1", limit)


async def insert_user_if_missing(conn: asyncpg.Pool | asyncpg.Connection, user_id: str, name: str,
                                 password_hash: str, roles: list[str], team_ids: list[str]) -> bool:
    status = await conn.execute(
        "INSERT INTO users (user_id, display_name, password_hash, roles, team_ids) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (user_id) DO NOTHING", user_id, name, password_hash, roles, team_ids)
    return status.endswith(" 1")


async def record_failed_login(conn: asyncpg.Pool, user_id: str, max_failures: int, lock_until: datetime) -> None:
    await conn.execute(
        "UPDATE users SET failed_logins = failed_logins + 1,"
        " locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $3 ELSE locked_until END WHERE user_id = $1",
        user_id, max_failures, lock_until)


async def record_good_login(conn: asyncpg.Pool, user_id: str, password_hash: str | None) -> None:
    await conn.execute(
        "UPDATE users SET failed_logins = 0, locked_until = NULL,"
        " password_hash = COALESCE($2, password_hash) WHERE user_id = $1", user_id, password_hash)


async def create_session(conn: asyncpg.Pool, token_hash: bytes, user_id: str, csrf_token: str,
                         id_token: str | None = None) -> None:
    await conn.execute("INSERT INTO sessions (token_hash, user_id, csrf_token, id_token) VALUES ($1, $2, $3, $4)",
                       token_hash, user_id, csrf_token, id_token)


async def touch_session(conn: asyncpg.Pool, token_hash: bytes, idle_after: datetime,
                        created_after: datetime) -> asyncpg.Record | None:
    """The live session (and its user), its idle clock restarted; None if expired or unknown."""
    return await conn.fetchrow(
        "UPDATE sessions s SET last_seen_at = now() FROM users u"
        " WHERE s.token_hash = $1 AND s.user_id = u.user_id AND u.active"
        " AND s.last_seen_at > $2 AND s.created_at > $3"
        " RETURNING s.csrf_token, s.flash, u.user_id, u.display_name, u.roles, u.team_ids",
        token_hash, idle_after, created_after)


async def delete_session(conn: asyncpg.Pool, token_hash: bytes) -> str | None:
    """End the session; the council ID token it was opened with, if any (for the provider's logout)."""
    return await conn.fetchval("DELETE FROM sessions WHERE token_hash = $1 RETURNING id_token", token_hash)


async def delete_expired_sessions(conn: asyncpg.Pool, idle_after: datetime, created_after: datetime) -> None:
    await conn.execute("DELETE FROM sessions WHERE last_seen_at <= $1 OR created_at <= $2", idle_after,
                       created_after)


async def set_flash(conn: asyncpg.Pool, token_hash: bytes, flash: dict[str, Any] | None) -> None:
    await conn.execute("UPDATE sessions SET flash = $2 WHERE token_hash = $1", token_hash, flash)


async def record_access(conn: asyncpg.Pool, user_id: str, roles: list[str], team_ids: list[str],
                        person_id: uuid.UUID, reason: str) -> None:
    await conn.execute(
        "INSERT INTO access_log (user_id, roles, team_ids, person_id, reason) VALUES ($1, $2, $3, $4, $5)",
        user_id, roles, team_ids, person_id, reason)


async def recent_access(conn: asyncpg.Pool, user_id: str, person_id: uuid.UUID, since: datetime) -> str | None:
    """The reason of the user's latest break-glass access to the person since `since`."""
    return await conn.fetchval(
        "SELECT reason FROM access_log WHERE user_id = $1 AND person_id = $2 AND at > $3 ORDER BY at DESC LIMIT 1",
        user_id, person_id, since)


async def access_log(conn: asyncpg.Pool, limit: int = 200) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT access_id, user_id, roles, team_ids, person_id, reason, at FROM access_log"
        " ORDER BY at DESC LIMIT $1", limit)


async def secret(conn: asyncpg.Pool, name: str, make: str) -> str:
    """A named secret, created with `make` the first time (the first replica's value wins)."""
    await conn.execute("INSERT INTO web_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                       name, make)
    return await conn.fetchval("SELECT value FROM web_secrets WHERE name = $1", name)


async def upsert_oidc_user(conn: asyncpg.Pool, user_id: str, name: str, no_password: str, roles: list[str],
                           team_ids: list[str]) -> None:
    """A council (OIDC) user as their token's claims describe them. A new one signs in only through the
    provider (`no_password` is no hash at all); an existing account keeps its password and `active`."""
    await conn.execute(
        "INSERT INTO users (user_id, display_name, password_hash, roles, team_ids, sign_in)"
        " VALUES ($1, $2, $3, $4, $5, 'oidc')"
        " ON CONFLICT (user_id) DO UPDATE SET display_name = EXCLUDED.display_name, roles = EXCLUDED.roles,"
        " team_ids = EXCLUDED.team_ids", user_id, name, no_password, roles, team_ids)
