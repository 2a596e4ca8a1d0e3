"""Verify the audit chains: recompute every row's hash and report the first broken row.

    python -m tools.audit_verify                      # every service schema holding an audit_log
    python -m tools.audit_verify --service workflow --dsn postgresql://...
    python -m tools.audit_verify --service workflow --expect 1200:3f2a...   # a head kept earlier

Exit code 0 when every chain holds, 1 when one is broken (changed, deleted or truncated rows),
2 when a named service has no audit log. Prints seqs, counts and hashes only, never row
contents. `--dsn` defaults to DATABASE_URL. See deploy/runbooks/audit.md.
"""

import argparse
import asyncio
import sys

import asyncpg

from shared import audit
from shared.settings import Settings

OK, BROKEN, MISSING = 0, 1, 2


async def audited_schemas(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch("SELECT table_schema FROM information_schema.tables"
                            " WHERE table_name = 'audit_log' ORDER BY table_schema")
    return [r["table_schema"] for r in rows]


def _expectation(text: str | None) -> tuple[int, str] | None:
    if text is None:
        return None
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        raise SystemExit("--expect must be SEQ:HASH (a row number and its 64-character hash)")
    return int(seq), digest


async def run(dsn: str, services: list[str], expect: tuple[int, str] | None) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        present = await audited_schemas(conn)
        unknown = sorted(set(services) - set(present))
        if unknown:
            print(f"no audit log for: {', '.join(unknown)}")
            return MISSING
        code = OK
        for schema in services or present:
            verdict = await audit.verify(conn, schema, expect)
            print(_line(schema, verdict))
            code = code if verdict.ok else BROKEN
        return code
    finally:
        await conn.close()


def _line(schema: str, verdict: audit.Verdict) -> str:
    if verdict.ok:
        return f"{schema}: ok, {verdict.rows} rows, head {verdict.head_seq}:{verdict.head_hash}"
    return (f"{schema}: BROKEN at seq {verdict.broken_seq}: {verdict.reason}"
            f" (last good row {verdict.head_seq}:{verdict.head_hash})")


def main() -> None:
    parser = argparse.ArgumentParser(description="Recompute the audit hash chains and report the first break.")
    parser.add_argument("--service", action="append", default=[], help="a service schema; repeat for several")
    parser.add_argument("--dsn", default=None, help="PostgreSQL URL (default: DATABASE_URL)")
    parser.add_argument("--expect", default=None, help="SEQ:HASH of a head printed and kept earlier")
    args = parser.parse_args()
    if args.expect is not None and len(args.service) != 1:
        parser.error("--expect needs exactly one --service")
    dsn = args.dsn or Settings().database_url
    sys.exit(asyncio.run(run(dsn, args.service, _expectation(args.expect))))


if __name__ == "__main__":
    main()
