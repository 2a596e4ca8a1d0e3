"""The audit log: who (id, role), what and when of every change, in its transaction, hash-chained (issue 11 §3)."""

import asyncio
import dataclasses
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from shared import audit, db, outbox, signing, topics
from shared.envelope import new_message
from shared.testing import EventLog, ServiceProcess, publish
from tests.factories import actor, referral_message, unique_referral

ROOT = Path(__file__).resolve().parents[2]


async def audit_verify(dsn: str, schema: str, *extra: str) -> tuple[int, str]:
    """`python -m tools.audit_verify` as an operator runs it: its exit code and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tools.audit_verify", "--service", schema, "--dsn", dsn, *extra,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


async def audit_rows(db: asyncpg.Pool, schema: str, message_ids: list[str]) -> list[asyncpg.Record]:
    return await db.fetch(f'SELECT * FROM "{schema}".audit_log WHERE message_id = ANY($1::uuid[]) ORDER BY seq',
                          message_ids)


# --- through the broker ------------------------------------------------------------------------


async def test_a_worker_command_is_audited_with_who_role_what_when_in_its_transaction(
        infra, referrals: ServiceProcess, events: EventLog, db):
    intake = referral_message(unique_referral())
    await publish(infra.bootstrap, topics.REFERRALS_INTAKE, [(None, intake.to_bytes())])
    [accepted] = await events.wait_for(lambda s: s.caused_by(intake.id) and s.type == "referral.accepted")
    person_id = accepted.data["person_id"]
    update = new_message("person.update", "tessera/web",
                         {"actor": actor("w-audit-1", "social_worker", "team_manager", teams=("team-a",)),
                          "person_id": person_id, "changes": {"phone": "0116 496 0123"},
                          "access_reason": "Duty call: new phone number"}, subject=person_id)  # no relationship
    await publish(infra.bootstrap, topics.REFERRALS_COMMANDS, [(person_id, update.to_bytes())])
    [updated] = await events.wait_for(lambda s: s.caused_by(update.id) and s.type == "person.updated")

    [row] = await audit_rows(db, "referrals", [updated.body["id"]])  # visible as soon as the event is
    assert (row["actor_id"], row["actor_roles"]) == ("w-audit-1", ["social_worker", "team_manager"])
    assert (row["action"], row["subject"], row["cause_type"]) == ("person.updated", person_id, "person.update")
    assert row["source"] == "tessera/web" and str(row["causation_id"]) == str(update.id)
    assert row["at"] == updated.envelope.time
    intake_rows = await audit_rows(db, "referrals", [accepted.body["id"]])
    assert [(r["actor_id"], r["source"]) for r in intake_rows] == [("system:referrals", "test-contact-centre")]
    code, out = await audit_verify(infra.dsn, "referrals")
    assert code == 0, out


async def test_a_refused_command_is_audited_as_an_attempt_by_its_actor(infra, referrals, events, db):
    """A refusal changes nothing but who tried what is kept: `command.rejected` with the actor's roles."""
    attempt = new_message("person.update", "tessera/web",
                          {"actor": actor("w-audit-2", "business_support"), "person_id": str(uuid.uuid4()),
                           "changes": {"favourite_colour": "blue"}})
    await publish(infra.bootstrap, topics.REFERRALS_COMMANDS, [(None, attempt.to_bytes())])
    [rejected] = await events.wait_for(lambda s: s.caused_by(attempt.id) and s.type == "command.rejected")
    [row] = await audit_rows(db, "referrals", [rejected.body["id"]])
    assert (row["actor_id"], row["actor_roles"], row["action"]) == ("w-audit-2", ["business_support"],
                                                                    "command.rejected")


# --- the chain itself, on a schema of its own ----------------------------------------------------


class Audited:
    """A pool on a fresh schema with the shared tables, so tampering here touches no service's log."""

    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self.pool, self.schema = pool, schema

    def __getattr__(self, name: str) -> object:
        return getattr(self.pool, name)


@pytest.fixture
async def audited(infra, tmp_path) -> AsyncIterator[Audited]:
    schema = f"audit_test_{uuid.uuid4().hex[:8]}"
    pool = await db.open_pool(infra.dsn, schema, max_size=8)
    await db.migrate(pool, schema, tmp_path)
    yield Audited(pool, schema)
    await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
    await pool.close()


def step_events(worker: str, n: int = 2) -> list[outbox.Outgoing]:
    person = str(uuid.uuid4())
    changes = [new_message("step.started", "tessera/workflow", {"step_id": str(uuid.uuid4()), "actor": worker},
                           subject=person) for _ in range(n)]
    timer = new_message("timer.set", "tessera/workflow", {"key": "k"}, subject=person)
    return [*(outbox.Outgoing.event(topics.WORKFLOW_EVENTS, person, e) for e in changes),
            outbox.Outgoing.event(topics.SCHEDULER_TIMERS, person, timer)]


async def change(pool: asyncpg.Pool, worker: str = "w-1") -> None:
    async with pool.acquire() as conn, conn.transaction():
        await outbox.add(conn, step_events(worker))


async def test_a_rolled_back_transaction_leaves_no_audit_row(audited):
    with pytest.raises(RuntimeError):
        async with audited.acquire() as conn, conn.transaction():
            await outbox.add(conn, step_events("w-1"))
            raise RuntimeError("the handler failed after deciding")
    assert await audited.fetchval("SELECT count(*) FROM audit_log") == 0
    await change(audited)
    rows = await audited.fetch("SELECT chain, chain_seq, action, actor_id, actor_roles FROM audit_log ORDER BY seq")
    # events only: the timer command is not a change; one transaction's rows follow each other in one chain
    assert [(r["chain_seq"], r["action"], r["actor_id"], r["actor_roles"]) for r in rows] == [
        (1, "step.started", "w-1", []), (2, "step.started", "w-1", [])]
    assert rows[0]["chain"] == rows[1]["chain"]


async def test_the_application_cannot_change_or_delete_an_audit_row(audited):
    await change(audited)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await audited.execute("UPDATE audit_log SET actor_id = 'someone-else' WHERE chain_seq = 1")
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await audited.execute("DELETE FROM audit_log WHERE chain_seq = 1")
    async with audited.acquire() as conn:
        await audit.checkpoint(conn)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await audited.execute("DELETE FROM audit_checkpoints")


async def tamper(pool: asyncpg.Pool, sql: str) -> None:
    """What an owner of the database can still do: switch the guards off and rewrite."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        await conn.execute("ALTER TABLE audit_checkpoints DISABLE TRIGGER audit_checkpoints_append_only")
        await conn.execute(sql)
        await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
        await conn.execute("ALTER TABLE audit_checkpoints ENABLE TRIGGER audit_checkpoints_append_only")


async def test_verify_names_the_first_changed_or_deleted_row_and_exits_non_zero(infra, audited):
    for worker in ("w-1", "w-2", "w-3"):
        await change(audited, worker)  # 6 rows, two a transaction
    schema = audited.schema
    code, out = await audit_verify(infra.dsn, schema)
    assert code == 0 and f"{schema}: ok, 6 rows" in out, out
    third = await audited.fetchval("SELECT seq FROM audit_log ORDER BY seq OFFSET 2 LIMIT 1")

    await tamper(audited, f"UPDATE audit_log SET actor_id = 'w-9' WHERE seq = {third}")
    code, out = await audit_verify(infra.dsn, schema)
    assert code == 1 and f"BROKEN at seq {third}" in out, out

    await tamper(audited, f"UPDATE audit_log SET actor_id = 'w-2' WHERE seq = {third}")
    assert (await audit_verify(infra.dsn, schema))[0] == 0
    await tamper(audited, f"DELETE FROM audit_log WHERE seq = {third}")  # the first of its transaction's two
    code, out = await audit_verify(infra.dsn, schema)
    chain, n = await audited.fetchrow("SELECT chain, chain_seq - 1 FROM audit_log WHERE seq = $1", third + 1)
    assert code == 1 and f"BROKEN at chain {chain} row {n}" in out and "deleted" in out, out


async def test_a_cut_off_tail_is_caught_by_the_heads_and_a_hidden_one_by_a_kept_checkpoint(
        infra, audited, tmp_path):
    """Cutting rows off a chain's end leaves its head pointing past them; an owner who also moves the head back
    and deletes the checkpoints is caught by a checkpoint digest kept outside the database."""
    await change(audited)
    await change(audited)
    keys = keys_of(audited.schema, tmp_path)
    code, out = await audit_verify(infra.dsn, audited.schema, "--checkpoint", "--keys", str(keys))
    kept = out.split("latest checkpoint ")[1].split(",")[0]
    assert code == 0 and len(kept) == 64, out
    last = await audited.fetchrow("SELECT chain, chain_seq, prev_hash FROM audit_log ORDER BY seq DESC LIMIT 1")
    await tamper(audited, f"DELETE FROM audit_log WHERE chain = {last['chain']} AND chain_seq = {last['chain_seq']}")
    code, out = await audit_verify(infra.dsn, audited.schema)
    assert code == 1 and "truncated" in out, out

    await tamper(audited, f"UPDATE audit_heads SET seq = {last['chain_seq'] - 1}, hash = '{last['prev_hash']}'"
                          f" WHERE chain = {last['chain']}; DELETE FROM audit_checkpoints")
    assert (await audit_verify(infra.dsn, audited.schema))[0] == 0  # consistent again, as far as it can tell
    code, out = await audit_verify(infra.dsn, audited.schema, "--expect", kept)
    assert code == 1 and "kept digest" in out, out


async def test_a_checkpoint_names_heads_a_rewritten_chain_no_longer_has(infra, audited):
    await change(audited)
    async with audited.acquire() as conn:
        await audit.checkpoint(conn)
    first = await audited.fetchrow("SELECT chain, chain_seq FROM audit_log ORDER BY seq LIMIT 1")
    await tamper(audited, f"DELETE FROM audit_log WHERE chain = {first['chain']}; UPDATE audit_heads SET seq = 0,"
                          f" hash = '{audit.GENESIS}' WHERE chain = {first['chain']}")
    code, out = await audit_verify(infra.dsn, audited.schema)
    assert code == 1 and "checkpoint 1 names row 2" in out, out


def keys_of(schema: str, folder: Path) -> Path:
    """Signing keys as a service whose schema is `schema` has them (its own key, and trusted.json with another)."""
    signing.make_keys(folder / "keys", components=(schema, "referrals"))
    return folder / "keys"


async def rewrite_last_row(pool: asyncpg.Pool, actor_id: str) -> None:
    """What an owner of the database can do without the service's key: change the last row, recompute its hash
    and its chain's head, and write the checkpoints again over the new heads."""
    row = await pool.fetchrow("SELECT * FROM audit_log ORDER BY seq DESC LIMIT 1")
    entry = dataclasses.replace(audit._entry(row), actor_id=actor_id)
    forged = audit.link_hash(row["prev_hash"], row["chain"], row["chain_seq"], entry)
    old = await pool.fetch("SELECT signature FROM audit_checkpoints ORDER BY id")
    await tamper(pool, f"UPDATE audit_log SET actor_id = '{actor_id}', hash = '{forged}' WHERE seq = {row['seq']};"
                       f" UPDATE audit_heads SET hash = '{forged}' WHERE chain = {row['chain']};"
                       " DELETE FROM audit_checkpoints")
    async with pool.acquire() as conn:
        await audit.checkpoint(conn)  # recomputed, but with no key to sign it
    if old[-1]["signature"] is not None:
        await tamper(pool, f"UPDATE audit_checkpoints SET signature = '{old[-1]['signature']}'")


async def test_checkpoints_signed_by_the_service_catch_a_rewrite_the_hashes_alone_cannot(
        infra, audited, tmp_path):
    """Issue #18 §2: whoever owns the database can recompute every hash and checkpoint, but cannot sign them. The
    service signs each checkpoint with its own key; `--keys` checks it, and names what does not hold."""
    keys = keys_of(audited.schema, tmp_path)
    await change(audited)
    async with audited.acquire() as conn:
        await audit.checkpoint(conn, signing.load_signer(keys, audited.schema))
    code, out = await audit_verify(infra.dsn, audited.schema, "--keys", str(keys))
    assert code == 0 and f"signed by tessera/{audited.schema}" in out, out

    await rewrite_last_row(audited, "w-forged")  # the old signature copied onto the recomputed checkpoint
    assert (await audit_verify(infra.dsn, audited.schema))[0] == 0  # the hashes alone hold
    code, out = await audit_verify(infra.dsn, audited.schema, "--keys", str(keys))
    assert code == 1 and "BROKEN at checkpoint" in out and "signature is of another checkpoint" in out, out

    await tamper(audited, "UPDATE audit_checkpoints SET signature = NULL")  # the signature dropped instead
    code, out = await audit_verify(infra.dsn, audited.schema, "--keys", str(keys))
    assert code == 1 and "the latest checkpoint is not signed by the service" in out, out

    other = signing.load_signer(keys, "referrals").seal({"schema": audited.schema, "digest": "0" * 64})
    await tamper(audited, f"UPDATE audit_checkpoints SET signature = '{other}'")  # another service's key
    code, out = await audit_verify(infra.dsn, audited.schema, "--keys", str(keys))
    assert code == 1 and f"signed by tessera/referrals, not by the service tessera/{audited.schema}" in out, out


async def test_an_unsigned_checkpoint_after_signed_ones_is_caught(infra, audited, tmp_path):
    keys = keys_of(audited.schema, tmp_path)
    signer = signing.load_signer(keys, audited.schema)
    for sign in (signer, None, signer):
        await change(audited)
        async with audited.acquire() as conn:
            await audit.checkpoint(conn, sign)
    code, out = await audit_verify(infra.dsn, audited.schema, "--keys", str(keys))
    assert code == 1 and "BROKEN at checkpoint 2: not signed, after checkpoints signed by" in out, out


async def test_concurrent_writers_append_to_several_chains_each_unbroken(infra, audited):
    """Issue #18 §2: writers no longer queue on one lock; each takes a chain no one else holds."""
    writers, each = 8, 15

    async def writer(n: int) -> None:
        for _ in range(each):
            await change(audited, f"w-{n}")

    await asyncio.gather(*(writer(n) for n in range(writers)))
    rows = await audited.fetch("SELECT chain, array_agg(chain_seq ORDER BY chain_seq) AS places FROM audit_log"
                               " GROUP BY chain")
    assert len(rows) > 1, "every writer appended to one chain"
    assert all(r["places"] == list(range(1, len(r["places"]) + 1)) for r in rows)
    assert sum(len(r["places"]) for r in rows) == writers * each * 2
    code, out = await audit_verify(infra.dsn, audited.schema)
    assert code == 0 and f"ok, {writers * each * 2} rows" in out, out


async def test_rows_chained_before_the_chains_existed_still_verify_and_seal_the_new_chains(infra, tmp_path):
    """Migration 0007 on a log written as one chain (seq 1..n): those rows verify as before, every new chain starts
    from their last hash, so changing one of them or cutting off their tail is still caught."""
    schema = f"audit_legacy_{uuid.uuid4().hex[:8]}"
    pool = await db.open_pool(infra.dsn, schema, max_size=2)
    try:
        await _migrate_up_to(pool, schema, "0006")
        prev = audit.GENESIS
        for seq in (1, 2, 3):
            entry = audit.Entry(at=datetime.now(UTC), actor_id="w-old", actor_roles=("gso",), action="step.saved",
                                subject="p-1", object_id=None, message_id=str(uuid.uuid4()), causation_id=None,
                                cause_type=None, source="tessera/workflow")
            digest = audit.chain_hash(prev, seq, entry)
            await pool.execute(
                "INSERT INTO audit_log (seq, at, actor_id, actor_roles, action, subject, object_id, message_id,"
                " causation_id, cause_type, source, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
                " $10, $11, $12, $13)", seq, entry.at, entry.actor_id, list(entry.actor_roles), entry.action,
                entry.subject, entry.object_id, entry.message_id, None, None, entry.source, prev, digest)
            prev = digest
        await db.migrate(pool, schema, tmp_path)
        await change(pool)
        code, out = await audit_verify(infra.dsn, schema)
        assert code == 0 and f"{schema}: ok, 5 rows in 1 chains" in out, out
        assert await pool.fetchval("SELECT prev_hash FROM audit_log WHERE chain_seq = 1") == prev

        await tamper(pool, "DELETE FROM audit_log WHERE seq = 3")  # the old chain's tail
        code, out = await audit_verify(infra.dsn, schema)
        assert code == 1 and "prev_hash does not match" in out, out
    finally:
        await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()


async def _migrate_up_to(pool: asyncpg.Pool, schema: str, last: str) -> None:
    """The shared migrations up to `last`, recorded as applied, as a database that ran them long ago."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.execute(f'SET LOCAL search_path TO "{schema}"')
        await conn.execute("CREATE TABLE schema_migrations (name text PRIMARY KEY,"
                           " applied_at timestamptz NOT NULL DEFAULT now(), sha256 text)")
        for path in sorted(db.SHARED_MIGRATIONS.glob("*.sql")):
            if path.name[:4] <= last:
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", f"shared/{path.name}")
