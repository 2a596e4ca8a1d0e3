"""Health of a service's background jobs: a job that keeps failing shows on /readyz.

Each job reports every run (`succeeded` / `failed`). After `FAILING_AFTER` failures in a row it is
failing: /readyz answers 503 and names it with its last error type and since when, so operations see
a stuck firing job or relay instead of a silent log line. One success clears it.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from shared import metrics

FAILING_AFTER = 3


@dataclass
class JobState:
    failures: int = 0
    first_failure_at: datetime | None = None
    last_error: str | None = None


class JobHealth:
    """The run history of each background job of this process, by job name."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._jobs: dict[str, JobState] = {}

    def succeeded(self, job: str) -> None:
        self._jobs[job] = JobState()

    def failed(self, job: str, error: BaseException | str) -> None:
        state = self._jobs.setdefault(job, JobState())
        state.failures += 1
        state.first_failure_at = state.first_failure_at or datetime.now(UTC)
        state.last_error = error if isinstance(error, str) else type(error).__name__
        metrics.JOB_FAILURES.labels(self.service, job).inc()

    def failing(self) -> dict[str, dict[str, object]]:
        """The jobs failing now: consecutive failures, the last error's type, and since when."""
        return {
            job: {"failures": s.failures, "error": s.last_error,
                  "since": s.first_failure_at.isoformat() if s.first_failure_at else None}
            for job, s in sorted(self._jobs.items()) if s.failures >= FAILING_AFTER
        }
