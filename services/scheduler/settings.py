"""Settings of the scheduler service, each read from the environment variable of the same name."""

from shared.settings import Settings


class SchedulerSettings(Settings):
    """The shared settings plus how often and how much the firing job claims, and its clock."""

    scheduler_poll_seconds: float = 0.2
    scheduler_batch_size: int = 500
    # Move this scheduler's "now" forward (tests, rehearsals); 0 in production.
    scheduler_clock_offset_seconds: float = 0.0
    # Tests only: also add the offset stored in the `clock` table, read on every poll.
    scheduler_test_clock: bool = False
