"""Issue #20 §2: a background job that keeps failing is visible; one success clears it."""

from shared.health import FAILING_AFTER, JobHealth


def test_a_job_is_failing_only_after_consecutive_failures_and_one_success_clears_it():
    health = JobHealth("scheduler")
    for _ in range(FAILING_AFTER - 1):
        health.failed("fire-due", TypeError("x"))
    assert health.failing() == {}
    health.failed("fire-due", KeyError("y"))
    failing = health.failing()
    assert failing["fire-due"]["failures"] == FAILING_AFTER and failing["fire-due"]["error"] == "KeyError"
    assert failing["fire-due"]["since"] is not None
    health.succeeded("fire-due")
    assert health.failing() == {}


def test_jobs_are_told_apart():
    health = JobHealth("workflow")
    for _ in range(FAILING_AFTER):
        health.failed("outbox-relay", "OSError")
    health.failed("inbox-pruning", "OSError")
    assert list(health.failing()) == ["outbox-relay"]
