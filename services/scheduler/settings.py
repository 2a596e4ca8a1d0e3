"""Settings of the scheduler service, each read from the environment variable of the same name."""

from pydantic import AwareDatetime

from services.scheduler.domain import TimerLimits
from shared.settings import Settings

DEFAULT_LIMITS = TimerLimits()


class SchedulerSettings(Settings):
    """The shared settings plus how often and how much the firing job claims, and its clock."""

    scheduler_poll_seconds: float = 0.2
    scheduler_batch_size: int = 500
    # Move this scheduler's "now" forward (tests, rehearsals); 0 in production.
    scheduler_clock_offset_seconds: float = 0.0
    # Tests only: also add the offset stored in the `clock` table, read on every poll.
    scheduler_test_clock: bool = False
    # What a timer.set may ask for; anything beyond goes to scheduler.timers.dlq with the reason.
    scheduler_earliest_due_at: AwareDatetime = DEFAULT_LIMITS.earliest_due_at
    scheduler_latest_due_at: AwareDatetime = DEFAULT_LIMITS.latest_due_at
    scheduler_max_payload_bytes: int = DEFAULT_LIMITS.max_payload_bytes
    scheduler_max_payload_depth: int = DEFAULT_LIMITS.max_payload_depth

    @property
    def timer_limits(self) -> TimerLimits:
        return TimerLimits(self.scheduler_earliest_due_at, self.scheduler_latest_due_at,
                           self.scheduler_max_payload_bytes, self.scheduler_max_payload_depth)
