"""Verify the audit chains: recompute every row's hash, the heads and the checkpoints; report the first break.

    python -m tools.audit_verify                      # every service schema holding an audit_log
    python -m tools.audit_verify --service workflow --dsn postgresql://...
    python -m tools.audit_verify --service workflow --expect 3f2a...   # a checkpoint digest kept earlier
    python -m tools.audit_verify --keys /etc/tessera/keys              # and every checkpoint signed by its service
    python -m tools.audit_verify --service workflow --keys DIR --checkpoint   # a signed checkpoint now, then verify

Exit code 0 when every chain holds, 1 when one is broken (changed, deleted or truncated rows, a
checkpoint that no longer matches or, with --keys, is not signed by its service), 2 when a named service
has no audit log. Prints seqs, counts and hashes only, never row contents. `--dsn` defaults to DATABASE_URL;
`--keys` is a signing-keys folder with trusted.json (and, for --checkpoint, the service's own key).
See deploy/runbooks/audit.md.
"""

import argparse
import asyncio
import sys
from pathlib import Path

import asyncpg

from shared import audit, signing
from shared.settings import Settings

OK, BROKEN, MISSING = 0, 1, 2


async def audited_schemas(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch("SELECT table_schema FROM information_schema.tables"
                            " WHERE table_name = 'audit_log' ORDER BY table_schema")
    return [r["table_schema"] for r in rows]


def _expectation(text: str | None) -> str | None:
    if text is not None and (len(text) != 64 or any(c not in "0123456789abcdef" for c in text)):
        raise SystemExit("--expect must be a checkpoint digest (64 hexadecimal characters)")
    return text


async def run(dsn: str, services: list[str], expect: str | None, checkpoint: bool = False,
              keys: Path | None = None) -> int:
    verifier = signing.load_verifier(keys) if keys is not None else None
    conn = await asyncpg.connect(dsn)
    try:
        present = await audited_schemas(conn)
        unknown = sorted(set(services) - set(present))
        if unknown:
            print(f"no audit log for: {', '.join(unknown)}")
            return MISSING
        code = OK
        for schema in services or present:
            if checkpoint:
                await conn.execute(f'SET search_path TO "{schema}"')
                await audit.checkpoint(conn, signing.load_signer(keys, schema))
            verdict = await audit.verify(conn, schema, expect, verifier)
            print(_line(schema, verdict))
            code = code if verdict.ok else BROKEN
        return code
    finally:
        await conn.close()


def _line(schema: str, verdict: audit.Verdict) -> str:
    if verdict.ok:
        signed = f", signed by {verdict.signed_by}" if verdict.signed_by else ""
        return (f"{schema}: ok, {verdict.rows} rows in {verdict.chains} chains, latest checkpoint "
                f"{verdict.checkpoint or 'none yet'}{signed}")
    return f"{schema}: BROKEN at {verdict.broken_at}: {verdict.reason} ({verdict.rows} rows checked before)"


def main() -> None:
    parser = argparse.ArgumentParser(description="Recompute the audit hash chains and report the first break.")
    parser.add_argument("--service", action="append", default=[], help="a service schema; repeat for several")
    parser.add_argument("--dsn", default=None, help="PostgreSQL URL (default: DATABASE_URL)")
    parser.add_argument("--expect", default=None, help="a checkpoint digest printed and kept earlier")
    parser.add_argument("--keys", type=Path, default=None,
                        help="signing-keys folder: check that every checkpoint is signed by its service")
    parser.add_argument("--checkpoint", action="store_true",
                        help="a checkpoint of every chain's head, signed with the service's key from --keys, first")
    args = parser.parse_args()
    if args.expect is not None and len(args.service) != 1:
        parser.error("--expect needs exactly one --service")
    if args.checkpoint and args.keys is None:
        parser.error("--checkpoint signs with the service's own key: give the folder holding it with --keys")
    dsn = args.dsn or Settings().database_url
    try:
        code = asyncio.run(run(dsn, args.service, _expectation(args.expect), args.checkpoint, args.keys))
    except signing.MissingKeys as missing:
        parser.error(str(missing))
    sys.exit(code)


if __name__ == "__main__":
    main()
