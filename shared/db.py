"""PostgreSQL helpers: the service's pool (own schema, jsonb codec) and the migration runner."""

import json
from importlib import resources
from pathlib import Path

import asyncpg

SHARED_MIGRATIONS = Path(str(resources.files("shared") / "migrations"))


async def _init_connection(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def open_pool(dsn: str, schema: str, min_size: int = 1, max_size: int = 5) -> asyncpg.Pool:
    """A pool whose connections see only this service's schema by default."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        server_settings={"search_path": schema, "application_name": f"tessera-{schema}"},
    )
    assert pool is not None
    return pool


def _migration_files(service_dir: Path) -> list[tuple[str, Path]]:
    shared = [(f"shared/{p.name}", p) for p in sorted(SHARED_MIGRATIONS.glob("*.sql"))]
    own = [(p.name, p) for p in sorted((service_dir / "migrations").glob("*.sql"))]
    return shared + own


async def migrate(pool: asyncpg.Pool, schema: str, service_dir: Path) -> list[str]:
    """Apply the shared messaging tables and the service's numbered .sql files, once each."""
    applied: list[str] = []
    async with pool.acquire() as conn, conn.transaction():
        # one migrating replica at a time; the others wait and then find nothing to do
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrate:{schema}")
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(f'SET LOCAL search_path TO "{schema}"')
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for name, path in _migration_files(service_dir):
            if name in done:
                continue
            await conn.execute(path.read_text())
            await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
            applied.append(name)
    return applied
