"""Issue #20 §2: a background job that keeps failing is visible; one success clears it."""

import asyncio

from shared.health import FAILING_AFTER, JobHealth
from shared.service import Runtime
from shared.settings import Settings


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


async def test_a_background_job_that_stops_with_an_error_is_started_again_and_its_crashes_counted():
    """The relay, pruning, checkpointing and sampling jobs run for the service's life: one that raised used to
    end unseen, and the service stayed unready for good with nothing in its log saying why."""
    runtime = Runtime(settings=Settings(service_name="scheduler"), broker=None)  # type: ignore[arg-type]
    runs: list[int] = []
    again = asyncio.Event()

    async def job() -> None:
        runs.append(len(runs))
        if len(runs) <= FAILING_AFTER:
            raise RuntimeError("lost")
        again.set()
        await asyncio.Event().wait()  # runs for good

    runtime.run_in_background("outbox-relay", job)
    await asyncio.wait_for(again.wait(), 10)
    assert len(runs) == FAILING_AFTER + 1
    assert runtime.health.failing()["outbox-relay"]["error"] == "RuntimeError"
    for task in runtime.tasks:
        task.cancel()
    await asyncio.gather(*runtime.tasks, return_exceptions=True)
