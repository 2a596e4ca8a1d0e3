"""The migration runner (issue #16 §4): each file once, and a service whose applied migration was edited since
does not start (before, it skipped the file silently and the database differed from the code)."""

import uuid

import pytest

from shared import db


async def test_an_edited_applied_migration_stops_the_start_and_a_new_file_is_applied_once(infra, tmp_path):
    schema = f"migrate_test_{uuid.uuid4().hex[:8]}"
    (tmp_path / "migrations").mkdir()
    first = tmp_path / "migrations" / "0001_cases.sql"
    first.write_text("CREATE TABLE cases (person_id uuid PRIMARY KEY);\n")
    pool = await db.open_pool(infra.dsn, schema)
    try:
        applied = await db.migrate(pool, schema, tmp_path)
        assert applied[-1] == "0001_cases.sql" and await db.migrate(pool, schema, tmp_path) == []
        (tmp_path / "migrations" / "0002_notes.sql").write_text("ALTER TABLE cases ADD COLUMN note text;\n")
        assert await db.migrate(pool, schema, tmp_path) == ["0002_notes.sql"]

        first.write_text("CREATE TABLE cases (person_id uuid PRIMARY KEY, urgent boolean);\n")
        with pytest.raises(db.MigrationChanged, match="0001_cases.sql .* edited after it was applied"):
            await db.migrate(pool, schema, tmp_path)
        columns = await pool.fetch("SELECT column_name FROM information_schema.columns WHERE table_schema = $1"
                                   " AND table_name = 'cases' ORDER BY ordinal_position", schema)
        assert [c["column_name"] for c in columns] == ["person_id", "note"]  # nothing half-applied
    finally:
        await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()
