"""The audit log: who (id, role), what and when of every change, in its transaction, hash-chained (issue 11 §3)."""

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from shared import db, outbox, topics
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
    rows = await audited.fetch("SELECT seq, action, actor_id, actor_roles FROM audit_log ORDER BY seq")
    # events only: the timer command is not a change
    assert [(r["seq"], r["action"], r["actor_id"], r["actor_roles"]) for r in rows] == [
        (1, "step.started", "w-1", []), (2, "step.started", "w-1", [])]


async def test_the_application_cannot_change_or_delete_an_audit_row(audited):
    await change(audited)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await audited.execute("UPDATE audit_log SET actor_id = 'someone-else' WHERE seq = 1")
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await audited.execute("DELETE FROM audit_log WHERE seq = 1")


async def tamper(pool: asyncpg.Pool, sql: str) -> None:
    """What an owner of the database can still do: switch the guard off and rewrite."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        await conn.execute(sql)
        await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")


async def test_verify_names_the_first_changed_or_deleted_row_and_exits_non_zero(infra, audited):
    for worker in ("w-1", "w-2", "w-3"):
        await change(audited, worker)  # rows 1..6
    schema = audited.schema
    code, out = await audit_verify(infra.dsn, schema)
    assert code == 0 and f"{schema}: ok, 6 rows" in out, out

    await tamper(audited, "UPDATE audit_log SET actor_id = 'w-9' WHERE seq = 3")
    code, out = await audit_verify(infra.dsn, schema)
    assert code == 1 and "BROKEN at seq 3" in out, out

    await tamper(audited, "UPDATE audit_log SET actor_id = 'w-2' WHERE seq = 3")
    assert (await audit_verify(infra.dsn, schema))[0] == 0
    await tamper(audited, "DELETE FROM audit_log WHERE seq = 4")
    code, out = await audit_verify(infra.dsn, schema)
    assert code == 1 and "BROKEN at seq 4" in out and "deleted" in out, out


async def test_verify_with_a_kept_head_detects_a_truncated_tail(infra, audited):
    await change(audited)
    await change(audited)
    head = await audited.fetchrow("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
    await tamper(audited, f"DELETE FROM audit_log WHERE seq >= {head['seq'] - 1}")
    code, out = await audit_verify(infra.dsn, audited.schema, "--expect", f"{head['seq']}:{head['hash']}")
    assert code == 1 and "truncated" in out, out


async def test_concurrent_writers_keep_one_unbroken_chain(infra, audited):
    writers, each = 8, 15

    async def writer(n: int) -> None:
        for _ in range(each):
            await change(audited, f"w-{n}")

    await asyncio.gather(*(writer(n) for n in range(writers)))
    seqs = [r["seq"] for r in await audited.fetch("SELECT seq FROM audit_log ORDER BY seq")]
    assert seqs == list(range(1, writers * each * 2 + 1))
    code, out = await audit_verify(infra.dsn, audited.schema)
    assert code == 0 and f"ok, {writers * each * 2} rows" in out, out
