"""A pooled connection is handed on without a reset query (shared/db.py `_nothing_to_reset`), which is only safe
while no code leaves session state on it: no session-level advisory lock, no plain SET, no LISTEN outside the
relay (which unlistens itself). Were one added, the next user of the connection would inherit it (a lock held
for good, another search_path)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SESSION_STATE = [
    (re.compile(r"pg_(try_)?advisory_lock(_shared)?\s*\("), "a session-level advisory lock (use the _xact_ one)"),
    # a session setting (SQL is written in capitals here), not an UPDATE's SET: the TO form, or a setting's name
    (re.compile(r"\bSET\s+(SESSION\s+)?(?!LOCAL\b)([a-z_.]+\s+TO\b|[a-z_]*(timeout|path|role|zone|mem|name)\s*=)"),
     "a plain SET (use SET LOCAL in a transaction)"),
    (re.compile(r"set_config\([^)]*,\s*false\s*\)", re.IGNORECASE), "set_config for the session"),
    (re.compile(r"""(^|["'])\s*LISTEN\s""", re.MULTILINE), "LISTEN outside the relay"),
    (re.compile(r"add_listener\("), "LISTEN outside the relay"),
]
ALLOWED = {("shared/relay.py", "LISTEN outside the relay")}


def session_state_left(text: str) -> list[str]:
    return [why for pattern, why in SESSION_STATE if pattern.search(text)]


def test_no_service_code_leaves_session_state_on_a_pooled_connection() -> None:
    found = []
    for folder in ("shared", "services"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in (".py", ".sql"):
                continue
            name = str(path.relative_to(ROOT))
            found += [(name, why) for why in session_state_left(path.read_text(encoding="utf-8"))
                      if (name, why) not in ALLOWED]
    assert found == []


def test_the_scan_sees_each_kind_of_session_state() -> None:
    assert session_state_left('await conn.execute("SELECT pg_advisory_lock(hashtext($1))", key)')
    assert session_state_left("SET search_path TO referrals;")
    assert session_state_left("await conn.execute('SET statement_timeout = 1000')")
    assert session_state_left("SELECT set_config('search_path', 'x', false)")
    assert session_state_left('await conn.execute("LISTEN outbox")')
    assert not session_state_left('await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", key)')
    assert not session_state_left("await conn.execute(f'SET LOCAL search_path TO \"{schema}\"')")
    assert not session_state_left('"UPDATE steps SET state = $2 WHERE step_id = $1"')
