"""The scheduler service: durable timers, fired once at their due time through the outbox."""

from pathlib import Path

from services.scheduler import handlers, jobs, queries
from services.scheduler.clock import Clock
from services.scheduler.settings import SchedulerSettings
from shared.service import Runtime, create_app

settings = SchedulerSettings(service_name="scheduler")
firing = jobs.Firing(
    Clock(settings.scheduler_clock_offset_seconds, stored=settings.scheduler_test_clock),
    poll_seconds=settings.scheduler_poll_seconds,
    batch_size=settings.scheduler_batch_size,
    service=settings.service_name,
)


async def start_firing(runtime: Runtime) -> None:
    assert runtime.pool is not None
    runtime.broker.context.set_global("firing", firing)
    runtime.broker.context.set_global("timer_limits", settings.timer_limits)
    await firing.start(runtime.pool, runtime.health)


async def stop_firing(_: Runtime) -> None:
    await firing.stop()


app = create_app(
    settings,
    service_dir=Path(__file__).parent,
    routers=[handlers.router],
    queries=queries.router,
    on_pool_ready=[start_firing],
    on_stopping=[stop_firing],
    description=__doc__ or "",
)
