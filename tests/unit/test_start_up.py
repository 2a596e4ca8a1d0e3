"""What a restarted service does before it handles messages again (issue #18 §3/§4): as little as it can before it
asks to join its consumer groups, and its retries notice a peer's return within a second."""

import subprocess
import sys
from pathlib import Path

from shared.broker import RETRY_BACKOFF_MAX_SECONDS, retry_backoff

ROOT = Path(__file__).resolve().parents[2]


def _loaded_at_import(app: str, modules: tuple[str, ...]) -> list[str]:
    """Which of `modules` importing the app loads (in a fresh interpreter: this one has loaded everything)."""
    probe = f"import sys, {app}; print(' '.join(m for m in {modules!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_a_transient_failure_is_tried_again_soon_then_every_second_however_long_it_lasts():
    assert [retry_backoff(attempt) for attempt in (1, 2, 3)] == [0.2, 0.4, 0.8]
    assert retry_backoff(4) == retry_backoff(40) == RETRY_BACKOFF_MAX_SECONDS == 1.0


def test_notifications_loads_the_notify_client_when_it_first_sends_through_notify_not_at_import():
    assert _loaded_at_import("services.notifications.app", ("notifications_python_client", "requests")) == []


def test_a_service_can_say_how_long_its_interpreter_and_imports_took_before_start_up():
    """The "started" line's `process` seconds: a fresh interpreter that imported a service's app reads its own
    age, more than nothing and less than this test has run; what is left of a restart is then the join."""
    probe = ("import time; began = time.monotonic(); import services.workflow.app;"
             " from shared.service import seconds_since_process_start as age; print(age(), time.monotonic() - began)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    age, importing = (float(word) for word in done.stdout.split())
    assert importing <= age + 0.02 < 120  # /proc counts in hundredths of a second
